#include "basin/experiment/report.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/stats.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/experiment/job_kinds.h"
#include "basin/experiment/paper.h"
#include "basin/experiment/results.h"
#include "basin/experiment/store.h"
#include "basin/report/figure.h"
#include "basin/space/analysis.h"
#include "study.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace basin {

namespace {

using nlohmann::json;
using namespace report_detail;

std::string md_cell(const std::string& s) {
    std::string out;
    for (char c : s)
        out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

// The report under construction: HTML sections with figures written beside it, and the same
// sections as Markdown (for a document in a repository) when a Markdown file is asked for.
class Report {
  public:
    Report(fs::path dir, std::optional<fs::path> markdown) : dir_(std::move(dir)), markdown_(std::move(markdown)) {
        fs::create_directories(dir_ / "figures");
        if (markdown_) fs::create_directories(markdown_figures());
    }

    // Markdown figures go to a folder beside the document, named after it: docs/REPRODUCTION.md ->
    // docs/reproduction/*.svg.
    fs::path markdown_figures() const {
        std::string stem = markdown_->stem().string();
        for (auto& c : stem)
            c = char(std::tolower(static_cast<unsigned char>(c)));
        return markdown_->parent_path() / stem;
    }

    // A document with several studies: each study's sections one level down, its figures named
    // after it (prefix) so that two studies' figures do not overwrite each other.
    void begin_study(const std::string& figure_prefix, int depth) { prefix_ = figure_prefix, depth_ = depth; }
    void heading(const std::string& text, const std::string& intro = "") {
        title(2 + depth_, text);
        if (!intro.empty()) paragraph(intro);
    }
    void subheading(const std::string& text) { title(3 + depth_, text); }
    void title(int level, const std::string& text) {
        html_ << "<h" << level << ">" << xml_escape(text) << "</h" << level << ">\n";
        md_ << std::string(std::size_t(level), '#') << " " << text << "\n\n";
    }
    void paragraph(const std::string& text) {
        html_ << "<p>" << xml_escape(text) << "</p>\n";
        md_ << text << "\n\n";
    }
    void bullets(const std::vector<std::string>& items) {
        if (items.empty()) return;
        html_ << "<ul>";
        for (const auto& i : items)
            html_ << "<li>" << xml_escape(i) << "</li>", md_ << "- " << i << "\n";
        html_ << "</ul>\n";
        md_ << "\n";
    }
    void figure(const std::string& short_name, const Canvas& canvas, const std::string& caption) {
        const std::string name = prefix_ + short_name;
        canvas.save((dir_ / "figures" / name).string());
        written_.insert(name);
        ++figures_;
        html_ << "<figure class=\"chart\" id=\"fig-" << xml_escape(name) << "\">" << canvas.svg()
              << "<figcaption>Figure " << figures_ << ". " << xml_escape(caption) << " <a href=\"figures/"
              << xml_escape(name) << ".svg\">SVG</a> <a href=\"figures/" << xml_escape(name)
              << ".pdf\">PDF</a></figcaption></figure>\n";
        if (markdown_) {
            write_text_atomically(markdown_figures() / (name + ".svg"), canvas.svg());
            md_ << "![Figure " << figures_ << "](" << markdown_figures().filename().string() << "/" << name
                << ".svg)\n\n*Figure " << figures_ << ". " << caption << "*\n\n";
        }
    }
    void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
               const std::string& caption) {
        ++tables_;
        html_ << "<table><caption>Table " << tables_ << ". " << xml_escape(caption) << "</caption><tr>";
        for (const auto& h : header)
            html_ << "<th>" << xml_escape(h) << "</th>";
        html_ << "</tr>\n";
        for (const auto& row : rows) {
            html_ << "<tr>";
            for (const auto& cell : row)
                html_ << "<td>" << xml_escape(cell) << "</td>";
            html_ << "</tr>\n";
        }
        html_ << "</table>\n";
        md_ << "*Table " << tables_ << ". " << caption << "*\n\n|";
        for (const auto& h : header)
            md_ << " " << md_cell(h) << " |";
        md_ << "\n|";
        for (std::size_t i = 0; i < header.size(); ++i)
            md_ << "---|";
        md_ << "\n";
        for (const auto& row : rows) {
            md_ << "|";
            for (std::size_t i = 0; i < header.size(); ++i)
                md_ << " " << md_cell(i < row.size() ? row[i] : "") << " |";
            md_ << "\n";
        }
        md_ << "\n";
    }
    void code(const std::string& heading, const std::string& text) {
        title(3 + depth_, heading);
        html_ << "<pre>" << xml_escape(text) << "</pre>\n";
        md_ << "```toml\n" << text << (text.empty() || text.back() == '\n' ? "" : "\n") << "```\n\n";
    }
    // Figures of an earlier report that this one no longer draws (the folders are the report's own).
    void remove_stale_figures() const {
        std::vector<fs::path> folders = {dir_ / "figures"};
        if (markdown_) folders.push_back(markdown_figures());
        for (const auto& folder : folders)
            for (const auto& f : fs::directory_iterator(folder))
                if ((f.path().extension() == ".svg" || f.path().extension() == ".pdf") &&
                    !written_.count(f.path().stem().string()))
                    fs::remove(f.path());
    }
    std::size_t figures() const { return figures_; }
    std::size_t tables() const { return tables_; }
    std::string body() const { return html_.str(); }
    std::string markdown() const { return md_.str(); }

  private:
    fs::path dir_;
    std::optional<fs::path> markdown_;
    std::ostringstream html_, md_;
    std::size_t figures_ = 0, tables_ = 0;
    std::set<std::string> written_;
    std::string prefix_;
    int depth_ = 0;
};

// Beyond this many jobs of one analysis (a large suite), per-job figures give way to a table.
constexpr std::size_t kMaxFiguresPerAnalysis = 8;

// Tight versus loose in three rows, each pair of models counted once, at the closest level it
// shares: the seeds of one dataset, different datasets of one family, different families.
void write_pair_levels(Report& r, const SimilarityView& view) {
    const std::size_t n = view.names.size();
    std::vector<std::string> families;
    std::vector<int> family(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& f = view.tightness[std::size_t(view.group[i])].family;
        auto at = std::find(families.begin(), families.end(), f);
        if (at == families.end()) at = families.insert(families.end(), f);
        family[i] = int(at - families.begin());
    }
    if (!is_nested(view.group, family)) return; // one family per dataset, fewer families than datasets
    SquareMatrix cosine(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            cosine(i, j) = view.values[i][j];
    const NestedPairs p = nested_pairs(cosine, view.group, family);
    auto row = [](const std::string& level, const Summary& x) -> std::vector<std::string> {
        if (!x.n) return {level, "0", "-", "-", "-", "-"};
        return {level,
                std::to_string(x.n),
                format_fixed(x.mean),
                format_fixed(x.median),
                format_fixed(x.q05),
                format_fixed(x.q95)};
    };
    r.table({"pairs of models", "pairs", "mean cosine", "median", "5%", "95%"},
            {row("seeds of one dataset", p.same_fine), row("different datasets of one family", p.same_coarse),
             row("different families", p.different_coarse)},
            "Tight versus loose: the cosine of every pair of task vectors, counted once at the closest level the "
            "pair shares (so the family row holds no same-dataset pairs). The paper's picture is a tight first "
            "row, a looser second and a loosest third.");
}

void write_similarity_by_dataset(Report& r, const std::optional<SimilarityView>& view) {
    if (!view) return;
    write_pair_levels(r, *view);
    std::vector<std::vector<std::string>> rows;
    auto cell = [](const Spread& s) { return s.n ? format_fixed(s.mean()) : std::string("-"); };
    for (const auto& t : view->tightness)
        rows.push_back({t.dataset, t.family, cell(t.within), cell(t.family_other), cell(t.other),
                        std::to_string(t.nearest_same) + " of " + std::to_string(t.members)});
    r.table({"dataset", "family", "cosine between its seeds", "to its family's other datasets", "to other families",
             "nearest model from the same dataset"},
            rows,
            "Per dataset: how tight its models are. A dataset clusters when its seeds are closer to each other than to "
            "anything else.");
    r.figure(
        "similarity", heatmap(view->values, view->names, view->group, "Cosine similarity of task vectors", -1, 1),
        "Cosine similarity of every pair of task vectors, ordered by family and dataset (lines between datasets).");
}

// The findings table and what it says: where the study agrees with the paper, where not, and why.
// When a finding agrees with the paper, as the tables' introductions state it.
constexpr const char* kTolerances =
    "(clustering: the paper's value inside the map's 95% bootstrap interval where the store has one, "
    "else within 10 points; dataset and family structure: a permutation p-value of at most 0.05; PB: "
    "the paper's value inside the 95% interval of the level's mean (the hull's points resampled), else "
    "within 10 points; the cosine ordering: the 95% Wilson interval of the share of datasets ordered "
    "reaching three quarters; the centroid: the 95% interval of the mean gain over targets (targets "
    "resampled) reaching the paper's gain, in direction only when it lies above 0 but below that gain "
    "(without an interval: better on at least three quarters of the targets, and by at least half the "
    "paper's gain); interpolation: the 95% interval of the mean midpoint-minus-endpoints loss over "
    "pairs (pairs resampled) reaching 0 or below (without one: the mean at most 0.01); extrapolation "
    "at least 1.2 times the endpoint loss, from one line, without an interval)";

// Where the study agrees with the paper, where not, and the likely reasons. see: where the
// findings' table is when it is not just above (a document with several studies), named in
// every item.
void write_findings_account(Report& r, const StudyFindings& study, const std::string& see = "") {
    if (study.findings.empty()) {
        r.paragraph("None of the paper's findings is measured yet: the jobs they need have not finished.");
        return;
    }
    const std::string where = see.empty() ? "" : " (" + see + ")";
    std::vector<std::string> agree, differ;
    for (const auto& f : study.findings)
        if (agrees(f.verdict))
            agree.push_back(f.finding + ": " + f.basin + " (paper " + f.paper + ")" +
                            (f.verdict == Verdict::agrees_in_direction
                                 ? ", in direction only: smaller than half the paper's"
                                 : "") +
                            where + ".");
        else if (f.verdict == Verdict::differs || f.verdict == Verdict::not_shown)
            differ.push_back(f.finding + ": " + f.basin + " (paper " + f.paper + ")" + where + ".");
    r.subheading("Where the results agree");
    if (agree.empty()) r.paragraph("No finding agrees within the tolerances above.");
    r.bullets(agree);
    r.subheading("Where they differ");
    if (differ.empty()) r.paragraph("No finding differs beyond the tolerances above.");
    r.bullets(differ);

    r.subheading("Likely reasons for the differences: this experiment's scale against the paper's");
    r.bullets(study.reasons);
}

// The findings table and what it says.
void write_findings(Report& r, const StudyFindings& study) {
    if (study.findings.empty()) return;
    r.heading("The paper's findings, measured here",
              std::string("Each row: the paper's number (Gueta et al. 2023, RoBERTa-base; PAPER.md), this "
                          "experiment's, its spread, and whether "
                          "they agree ") +
                  kTolerances + ". The sections below hold the tables behind every row.");
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : study.findings)
        rows.push_back({f.finding, f.paper, f.basin, f.spread, verdict_text(f.verdict)});
    r.table({"finding", "paper", "basin", "spread", "verdict"}, rows,
            "The paper's findings side by side with this experiment's.");
    write_findings_account(r, study);
}

// ---- published accuracies for a base, from the spec's [published] table (not measured here)

struct Published {
    std::map<std::string, double> values; // dataset -> accuracy (%)
    std::string source;
};

Published published_accuracies(const toml::table& spec) {
    Published p;
    if (const auto* t = spec["published"].as_table())
        for (const auto& [key, node] : *t) {
            if (key.str() == "source")
                p.source = node.value_or(std::string());
            else if (const auto v = node.value<double>())
                p.values[std::string(key.str())] = *v;
        }
    return p;
}

// Test accuracy of every fine-tuned model, by dataset (over seeds), in store order.
// The spec's workers of each centroid variant (by name; "" for a lone [centroid]): a centroid job
// runs that many fine-tunes at once, each with the experiment's threads.
std::map<std::string, double> centroid_workers(const toml::table& spec) {
    std::map<std::string, double> workers;
    const auto add = [&](const toml::table& t) {
        workers[t["name"].value_or(std::string())] = double(t["workers"].value_or(std::int64_t(1)));
    };
    if (const auto* t = spec["centroid"].as_table()) add(*t);
    if (const auto* a = spec["centroid"].as_array())
        for (const auto& node : *a)
            if (const auto* t = node.as_table()) add(*t);
    return workers;
}

// CPU time by job kind: measured (each job's seconds times the cores it held: its threads, times a
// centroid job's workers) beside the spec's [estimate].
void write_compute(Report& r, const Study& st) {
    const double threads = double(st.spec["experiment"]["threads"].value_or(std::int64_t(1)));
    const auto workers = centroid_workers(st.spec);
    struct Done {
        std::size_t jobs = 0;
        double seconds = 0, core_seconds = 0;
    };
    std::map<std::string, Done> by_kind;
    std::vector<std::string> kinds;
    bool parallel_centroids = false;
    for (const auto& j : st.jobs) {
        if (j.state != "done") continue;
        double cores = threads;
        if (j.kind == "centroid") {
            const auto w = workers.find(st.labels(j.id).value("variant", ""));
            if (w != workers.end()) cores *= w->second, parallel_centroids |= w->second > 1;
        }
        if (!by_kind.count(j.kind)) kinds.push_back(j.kind);
        Done& d = by_kind[j.kind];
        d.jobs += 1, d.seconds += j.seconds, d.core_seconds += j.seconds * cores;
    }
    const auto* estimate = st.spec["estimate"].as_table();
    for (const auto& [kind, node] : estimate ? *estimate : toml::table())
        if (!by_kind.count(std::string(kind.str()))) kinds.push_back(std::string(kind.str()));
    if (kinds.empty()) return;
    std::vector<std::vector<std::string>> rows;
    double measured = 0, expected = 0;
    for (const auto& k : kinds) {
        const Done d = by_kind.count(k) ? by_kind[k] : Done{};
        const std::size_t n = d.jobs;
        const auto e = estimate ? (*estimate)[k].value<double>() : std::nullopt;
        measured += d.core_seconds, expected += e.value_or(0);
        std::vector<std::string> row = {k, std::to_string(n), format_fixed(d.core_seconds / 3600, 2),
                                        n ? format_fixed(d.seconds / double(n), 0) : "-"};
        if (estimate) row.push_back(e ? format_fixed(*e, 2) : "-");
        rows.push_back(row);
    }
    std::vector<std::string> total = {"all", std::to_string(st.done), format_fixed(measured / 3600, 2), "-"};
    std::vector<std::string> header = {"job kind", "jobs done", "CPU-hours", "seconds per job"};
    if (estimate) header.push_back("estimated CPU-hours"), total.push_back(format_fixed(expected, 2));
    rows.push_back(total);
    r.table(header, rows,
            "Compute by job kind: each finished job's seconds times its threads (" + format_fixed(threads, 0) + ")" +
                (parallel_centroids ? ", times its workers for a centroid variant with workers > 1" : "") +
                ", so jobs that shared the machine count their contention; attempts that were interrupted and "
                "resumed count only the finished attempt's time" +
                (estimate ? "; the estimate is the spec's [estimate], sized from measured per-job times before the run"
                          : "") +
                ".");
}

// Every section after the findings: the tables and figures behind them, then provenance.
// The zoo: per dataset over seeds against the majority class (and published numbers), then every model.
void write_finetuned_section(Report& r, const Study& st, const std::string& kind) {
    auto job_of = st.job_of;
    const json& facts = st.facts;
    const toml::table& spec = st.spec;
    const auto published = published_accuracies(spec);
    std::vector<std::vector<std::string>> rows;
    std::map<std::string, std::string> family_of_model, family_of_dataset;
    std::map<std::string, std::vector<double>> by_dataset; // test accuracies over seeds
    std::vector<std::string> dataset_order;
    for (const auto& id : st.done_of("finetune")) {
        const json l = st.labels(id);
        const auto m = st.metrics_of(id);
        const std::string model = l.value("model", id), dataset = l.value("dataset", "");
        family_of_model[model] = l.value("family", "");
        const auto acc = m.values.find({model, dataset, "accuracy"});
        if (acc != m.values.end()) {
            if (!by_dataset.count(dataset)) dataset_order.push_back(dataset);
            by_dataset[dataset].push_back(acc->second);
            family_of_dataset[dataset] = l.value("family", "");
        }
        rows.push_back({model, dataset, l.value("family", ""), l.value("seed", ""),
                        acc != m.values.end() ? format_percent(acc->second) : "-",
                        format_fixed(job_of[id].seconds, 1)});
    }
    if (!rows.empty()) {
        r.heading("Fine-tuned models", "The zoo: the base model fine-tuned on every dataset with every seed.");
        // [finetune] train_limit of the spec: a cap on the examples used
        const std::size_t cap = std::size_t(spec["finetune"]["train_limit"].value_or(std::int64_t(0)));
        auto used = [&](std::size_t available) {
            return std::to_string(available) + (cap && cap < available ? " (" + std::to_string(cap) + " used)" : "");
        };
        std::vector<std::vector<std::string>> summary;
        for (const auto& d : dataset_order) {
            const auto& a = by_dataset[d];
            const json f = facts.is_object() && facts.contains(d) ? facts[d] : json::object();
            summary.push_back(
                {d, family_of_dataset[d],
                 f.contains("train_examples") ? used(f.value("train_examples", std::size_t(0))) : "-",
                 f.contains("classes") ? std::to_string(f.value("classes", 0)) : "-",
                 f.contains("majority_accuracy") ? format_percent(f.value("majority_accuracy", 0.0)) : "-",
                 std::to_string(a.size()), format_percent(mean(a)), a.size() > 1 ? format_percent(sample_std(a)) : "-",
                 format_percent(*std::min_element(a.begin(), a.end())) + "-" +
                     format_percent(*std::max_element(a.begin(), a.end()))});
            if (!published.values.empty())
                summary.back().push_back(published.values.count(d) ? format_fixed(published.values.at(d), 1) : "-");
        }
        std::vector<std::string> header = {"dataset",
                                           "family",
                                           "train examples",
                                           "classes",
                                           "majority class (%)",
                                           "seeds",
                                           "mean test accuracy (%)",
                                           "std over seeds",
                                           "range"};
        if (!published.values.empty()) header.push_back("published (%)");
        r.table(header, summary,
                "Fine-tuned accuracy per dataset, over seeds, against the majority class of the test split" +
                    (published.values.empty() ? std::string(".") : "; published: " + published.source + "."));
        r.table({"model", "dataset", "family", "seed", "test accuracy (%)", "seconds"}, rows, "Fine-tuned models.");
    }
}

// Clustering accuracy, within/between similarity, per-dataset tightness, t-SNE figures.
void write_map_section(Report& r, const Study& st, const std::string& kind) {
    auto job_of = st.job_of;
    const bool map_done = st.map_done;
    const auto& map_points = st.map_points;
    const auto& view = st.view;
    if (map_done) {
        const auto m = st.metrics_of("map");
        const bool discretize = !std::isnan(m.value("map", "", "settings/spectral_assign/discretize"));
        const bool cosine_geometry = !std::isnan(m.value("map", "", "settings/geometry/cosine"));
        r.heading("Weight-space map",
                  std::string("Cosine similarity of task vectors (model - base); spectral clustering on (cos + 1) / 2, "
                              "labels assigned by ") +
                      (discretize ? "discretization (Yu and Shi, as the paper's authors)" : "k-means") +
                      "; k-means and the PCA on the " +
                      (cosine_geometry ? "task vectors at unit length." : "raw task vectors (norms included)."));
        // the one-to-one accuracy, and beside it the majority rule's where the store has it
        std::vector<std::vector<std::string>> acc;
        bool any_majority = false;
        for (const auto& [key, value] : m.values) {
            const std::string& metric = std::get<2>(key);
            if (metric.rfind("clustering_accuracy/", 0) != 0) continue;
            const auto slash = metric.find('/', 20);
            const std::string kind_name = metric.substr(20, slash - 20), method = metric.substr(slash + 1);
            const double majority = m.value("map", "", "clustering_accuracy_majority/" + kind_name + "/" + method);
            any_majority = any_majority || !std::isnan(majority);
            acc.push_back({kind_name, method, format_percent(value),
                           std::isnan(majority) ? std::string("-") : format_percent(majority)});
        }
        if (!any_majority)
            for (auto& row : acc)
                row.pop_back();
        // the spectral rows' bootstrap intervals, where the map made them
        bool any_interval = false;
        for (auto& row : acc) {
            const double low = m.value("map", "", "ci/" + row[0] + "/spectral_accuracy/low"),
                         high = m.value("map", "", "ci/" + row[0] + "/spectral_accuracy/high");
            const bool has = row[1] == "spectral" && !std::isnan(low) && !std::isnan(high);
            any_interval = any_interval || has;
            row.push_back(has ? format_percent(low) + "-" + format_percent(high) : std::string("-"));
        }
        if (!any_interval)
            for (auto& row : acc)
                row.pop_back();
        std::vector<std::string> header = {"groups", "method", "clustering accuracy (%)"};
        if (any_majority) header.push_back("by the majority rule (%)");
        if (any_interval) header.push_back("95% interval (%)");
        r.table(header, acc,
                std::string("Clustering accuracy: each cluster read as a group by the optimal one-to-one assignment "
                            "(Hungarian)") +
                    (any_majority ? "; beside it, each cluster read as its most common group (purity)." : "."));
        write_similarity_by_dataset(r, view);
        // the 2-D coordinates: from the store (older stores: from the map's embedding.csv)
        std::vector<std::map<std::string, std::string>> table;
        for (const auto& p : map_points) {
            if (p.set != "embedding") continue;
            std::map<std::string, std::string> row{{"model", p.name}};
            const json fields = json::parse(p.coefficients);
            for (const auto& [k, v] : fields.items())
                row[k] = v.get<std::string>();
            table.push_back(row);
        }
        const fs::path embedding = fs::path(job_of["map"].output) / "embedding.csv";
        if (table.empty() && fs::exists(embedding)) {
            std::ifstream in(embedding);
            std::vector<std::string> header, cells;
            std::size_t line = 0;
            read_csv_record(in, ',', true, header, line, embedding);
            while (read_csv_record(in, ',', true, cells, line, embedding))
                if (cells.size() == header.size()) {
                    std::map<std::string, std::string> row;
                    for (std::size_t i = 0; i < header.size(); ++i)
                        row[header[i]] = cells[i];
                    table.push_back(row);
                }
        }
        for (const std::string kind : {"dataset", "family"}) {
            std::vector<std::pair<double, double>> points;
            std::vector<int> group;
            std::vector<std::string> names, tips;
            for (const auto& row : table) {
                if (!row.count(kind) || !row.count("tsne_1") || !row.count("tsne_2")) continue;
                auto at = std::find(names.begin(), names.end(), row.at(kind));
                if (at == names.end()) names.push_back(row.at(kind)), at = names.end() - 1;
                group.push_back(int(at - names.begin()));
                points.emplace_back(std::stod(row.at("tsne_1")), std::stod(row.at("tsne_2")));
                tips.push_back(row.at("model") + " (" + row.at(kind) + ")");
            }
            if (points.empty()) continue;
            r.figure(
                "tsne-" + kind,
                scatter_plot(points, group, names, "t-SNE of 1 - cosine, by " + kind, "t-SNE 1", "t-SNE 2", tips),
                "Fine-tuned models in two dimensions (t-SNE on the cosine distance of task vectors), coloured by " +
                    kind + ".");
        }
    }
}

// Interpolation (kind "interpolate") or extrapolation ("extrapolate"): a figure per line, or a table for many.
void write_line_sections(Report& r, const Study& st, const std::string& kind) {
    const auto ids = st.done_of(kind);
    if (ids.empty()) return;
    const bool extra = kind == "extrapolate";
    r.heading(extra ? "Extrapolation" : "Interpolation",
              extra ? "Past the endpoints along the same line: alpha from 1 to 32 and from 0 to -31, log-spaced."
                    : "The generalized loss (linear probe on the frozen body) along (1 - alpha) A + alpha B.");
    std::map<std::string, std::map<double, std::vector<double>>> by_relation; // relation -> alpha -> mean losses
    // many pairs (a large suite): one table row per pair instead of one figure each
    const bool per_pair_figures = ids.size() <= kMaxFiguresPerAnalysis;
    std::vector<std::vector<std::string>> pair_rows;
    std::vector<double> pair_alphas;
    for (const auto& id : ids) {
        const json l = st.labels(id);
        const InterpolationRecord line = st.interpolation(id);
        std::vector<Series> series;
        std::map<double, std::vector<double>> mean;
        for (std::size_t d = 0; d < line.targets.size(); ++d) {
            Series s{line.targets[d].name, {}, {}};
            for (std::size_t p = 0; p < line.alphas.size(); ++p) {
                const double v = line.scores[p][d].loss;
                if (std::isnan(v)) continue;
                s.x.push_back(line.alphas[p]);
                s.y.push_back(v);
                mean[line.alphas[p]].push_back(v);
            }
            series.push_back(s);
        }
        Series avg{"average", {}, {}, true};
        for (const auto& [a, values] : mean) {
            avg.x.push_back(a);
            double sum = 0;
            for (double v : values)
                sum += v;
            avg.y.push_back(sum / double(values.size()));
            by_relation[l.value("relation", "")][a].push_back(avg.y.back());
        }
        if (series.size() > 1) series.push_back(avg);
        const std::string title = l.value("A", "A") + " -> " + l.value("B", "B");
        if (!per_pair_figures) {
            if (pair_alphas.empty()) pair_alphas = avg.x;
            std::vector<std::string> row = {l.value("A", ""), l.value("B", ""), l.value("relation", "")};
            for (double a : pair_alphas) {
                const auto at = std::find(avg.x.begin(), avg.x.end(), a);
                row.push_back(at == avg.x.end() ? "-" : format_fixed(avg.y[std::size_t(at - avg.x.begin())]));
            }
            pair_rows.push_back(row);
            continue;
        }
        r.figure(kind + "-" + file_safe_name(id.substr(kind.size() + 1)),
                 line_plot(series, title, extra ? "alpha (symlog)" : "alpha (0 = A, 1 = B)", "generalized loss", extra),
                 (extra ? "Extrapolation " : "Interpolation ") + title + " (" + l.value("relation", "") +
                     "): generalized loss per target dataset.");
    }
    if (!pair_rows.empty()) {
        std::vector<std::string> header = {"A", "B", "relation"};
        for (double a : pair_alphas)
            header.push_back("alpha " + format_fixed(a, 2));
        r.table(header, pair_rows,
                std::string(extra ? "Extrapolation" : "Interpolation") +
                    ": generalized loss along each line, mean over the two models' datasets.");
    }
    if (!extra && by_relation.size() > 1) {
        std::vector<Series> series;
        for (const auto& [relation, curve] : by_relation) {
            Series s{relation, {}, {}};
            for (const auto& [a, values] : curve) {
                double sum = 0;
                for (double v : values)
                    sum += v;
                s.x.push_back(a), s.y.push_back(sum / double(values.size()));
            }
            series.push_back(s);
        }
        r.figure("interpolation-average",
                 line_plot(series, "Interpolation, averaged by relation", "alpha", "generalized loss"),
                 "Mean generalized loss along the line, averaged over the pairs of each relation (same dataset, same "
                 "family, different families).");
    }
}

// In / In' / Ex strip plots and the PB table.
void write_hull_section(Report& r, const Study& st, const std::string& kind) {
    if (const auto ids = st.done_of("hull"); !ids.empty()) {
        r.heading("Inside and outside the region", "In: the group's models; In': Dirichlet(1) weighted averages of "
                                                   "them; Ex: models outside the group and the base "
                                                   "moved along random directions of the members' mean task-vector "
                                                   "norm. PB(X, Y): the fraction of pairs where x's "
                                                   "generalized loss is no higher than y's (same dataset).");
        std::vector<std::vector<std::string>> pb_rows;
        std::size_t dataset_hulls = 0;
        for (const auto& id : ids)
            dataset_hulls += st.labels(id).value("level", "") == "dataset";
        for (const auto& id : ids) {
            const json l = st.labels(id);
            const HullRecord hull = st.hull(id);
            const PbRow* all = !hull.pb.empty() && hull.pb.back().dataset == kAllDatasets ? &hull.pb.back() : nullptr;
            auto cell = [&](std::size_t k) {
                return !all || std::isnan(all->values[k].value)
                           ? std::string("-")
                           : format_percent(all->values[k].value) + " (" + std::to_string(all->values[k].pairs) + ")";
            };
            pb_rows.push_back({l.value("level", ""), l.value("group", "") == "" ? "all models" : l.value("group", ""),
                               cell(0), cell(1), cell(2)});
            std::vector<Series> groups = {{"In", {}, {}}, {"In'", {}, {}}, {"Ex", {}, {}}};
            for (std::size_t p = 0; p < hull.points.size(); ++p) {
                double sum = 0;
                int n = 0;
                for (const auto& score : hull.scores[p])
                    if (!std::isnan(score.loss)) sum += score.loss, ++n;
                for (auto& g : groups)
                    if (g.name == hull.points[p].set && n) g.y.push_back(sum / n);
            }
            if (l.value("level", "") == "dataset" && dataset_hulls > kMaxFiguresPerAnalysis)
                continue; // the PB table has them
            r.figure("hull-" + file_safe_name(id.substr(5)),
                     strip_plot(groups, "In / In' / Ex: " + id.substr(5), "generalized loss"),
                     "Generalized loss (mean over the group's datasets) of members, hull samples and outside models: " +
                         id.substr(5) + ".");
        }
        r.table(
            {"level", "group", "PB(In', In) % (pairs)", "PB(In', Ex) % (pairs)", "PB(In, Ex) % (pairs)"}, pb_rows,
            "PB over all datasets of each group; the paper: " + format_fixed(100 * paper::number("pb_in/dataset"), 0) +
                " / " + format_fixed(100 * paper::number("pb_in/family"), 1) + " / " +
                format_fixed(100 * paper::number("pb_in/general"), 0) +
                "% (dataset / task / general) for PB(In', In) and " + format_fixed(100 * paper::number("pb_ex"), 0) +
                "% for PB(In', Ex).");
    }
}

// The loss surface on the plane through three models.
void write_plane_section(Report& r, const Study& st, const std::string& kind) {
    auto job_of = st.job_of;
    if (job_of.count("plane") && job_of["plane"].state == "done") {
        const PlaneRecord plane = st.plane("plane");
        std::vector<std::vector<double>> values(plane.grid.ny, std::vector<double>(plane.grid.nx, NAN));
        for (std::size_t j = 0; j < plane.grid.ny; ++j)
            for (std::size_t i = 0; i < plane.grid.nx; ++i) {
                double sum = 0;
                int n = 0;
                for (const auto& score : plane.scores[j * plane.grid.nx + i])
                    if (!std::isnan(score.loss)) sum += score.loss, ++n;
                values[j][i] = n ? sum / n : NAN;
            }
        const json l = st.labels("plane");
        std::vector<Marker> markers;
        for (const auto& mk : plane.markers)
            markers.push_back({mk.u, mk.v, mk.model});
        const fs::path summary = fs::path(job_of["plane"].output) / "summary.json";
        if (markers.empty() && fs::exists(summary)) { // older stores kept the markers in the job's folder only
            const json old = json::parse(read_text_file(summary), nullptr, false);
            if (old.is_object() && old.contains("markers"))
                for (const auto& mk : old.at("markers"))
                    markers.push_back(
                        {mk.at("u").get<double>(), mk.at("v").get<double>(), mk.at("model").get<std::string>()});
        }
        r.heading("Loss surface", "The plane through three fine-tuned models (orthonormalised directions).");
        r.figure("plane",
                 surface_map(values, plane.grid.x0, plane.grid.x1, plane.grid.y0, plane.grid.y1, markers,
                             "Generalized loss on the plane", "loss"),
                 "A = " + l.value("A", "") + ", B = " + l.value("B", "") + ", C = " + l.value("C", "") + ".");
    }
}

// Fine-tuning from the centroid against the pretrained start: a table and figure per variant.
void write_centroid_section(Report& r, const Study& st, const std::string& kind) {
    if (const auto ids = st.done_of("centroid"); !ids.empty()) {
        r.heading("The centroid as a starting point", "Fine-tuning from the leave-one-dataset-out centroid versus from "
                                                      "the pretrained model, same settings and seeds.");
        for (const auto& id : ids) {
            const CentroidComparison c = centroid_comparison(st.metrics_of(id), st.labels(id));
            if (ids.size() > 1) r.subheading(c.title);
            std::vector<std::vector<std::string>> table;
            Series pre{"pretrained", {}, {}}, cen{"centroid", {}, {}};
            for (const auto& t : c.targets) {
                pre.y.push_back(100 * t.pretrained), cen.y.push_back(100 * t.centroid);
                table.push_back({t.name, format_percent(t.pretrained) + " +- " + format_percent(t.pretrained_std),
                                 format_percent(t.centroid) + " +- " + format_percent(t.centroid_std),
                                 signed_pct(t.difference), format_fixed(t.p_value, 3)});
            }
            if (!table.empty())
                table.push_back({"mean", "", "", signed_pct(c.mean_difference),
                                 std::to_string(c.better_or_equal) + " of " + std::to_string(c.targets.size()) +
                                     " better or equal"});
            const std::string suffix = ids.size() > 1 ? " (" + c.title + ")" : "";
            r.table({"target", "pretrained (%)", "centroid (%)", "difference", "p (paired t)"}, table,
                    "Test accuracy, mean +- std over seeds" + suffix + "; the paper (BitFit): better or equal on " +
                        format_fixed(paper::number("centroid/bitfit/better"), 0) + " of " +
                        format_fixed(paper::number("centroid/bitfit/targets"), 0) + " targets, " +
                        signed_fixed(paper::number("centroid/bitfit/low"), 2) + " to " +
                        signed_fixed(paper::number("centroid/bitfit/high"), 2) + " points, " +
                        signed_fixed(paper::number("centroid/bitfit/few_shot"), 2) + " few-shot.");
            std::vector<std::string> names;
            for (const auto& t : c.targets)
                names.push_back(t.name);
            r.figure(ids.size() > 1 ? "centroid-" + file_safe_name(id.substr(9)) : "centroid",
                     bar_chart(names, {pre, cen}, "Centroid versus pretrained start" + suffix, "test accuracy (%)"),
                     "Accuracy after fine-tuning from each start, per target dataset (mean over seeds)" + suffix + ".");
        }
    }
}

// The searched point against the centroid and the merges, on each target's test split.
void write_search_section(Report& r, const Study& st, const std::string& kind) {
    const auto ids = st.done_of(kind);
    if (ids.empty()) return;
    r.heading("Searching the region",
              "For each target, simplex weights over the other datasets' models (the centroid's zoo) that minimise "
              "the generalized loss on a held-out part of the target's training split (basin search, COBYLA), "
              "compared on the target's test split with the centroid, TIES, DARE, a greedy soup and the best member "
              "(the member of lowest test loss: an oracle).");
    const std::vector<std::string> rows = {"searched", "centroid", "ties", "dare", "greedy-soup", "best-member"};
    std::vector<std::vector<std::string>> table;
    std::map<std::string, std::size_t> wins, present;
    std::vector<double> differences; // centroid - searched, per target
    for (const auto& id : ids) {
        const auto m = st.metrics_of(id);
        const std::string target = st.labels(id).value("dataset", id.substr(7));
        std::vector<std::string> cells = {target};
        const double searched = m.value("searched", target, "test_loss");
        for (const auto& row : rows) {
            const double loss = m.value(row, target, "test_loss");
            cells.push_back(std::isnan(loss) ? "-" : format_fixed(loss, 3));
            if (row == "searched" || std::isnan(loss)) continue;
            ++present[row];
            wins[row] += searched < loss;
        }
        const double centroid = m.value("centroid", target, "test_loss");
        if (!std::isnan(centroid) && !std::isnan(searched)) differences.push_back(centroid - searched);
        table.push_back(cells);
    }
    std::vector<std::string> last = {"searched lower on"};
    for (const auto& row : rows)
        last.push_back(row == "searched" ? "" : std::to_string(wins[row]) + " of " + std::to_string(present[row]));
    table.push_back(last);
    const Interval gain = bootstrap_mean_interval(differences, 2000, 1);
    r.table({"target", "searched", "centroid", "TIES", "DARE", "greedy soup", "best member"}, table,
            "Generalized loss on each target's test split (lower is better). The centroid's loss minus the searched "
            "point's, mean over targets: " +
                format_fixed(gain.estimate, 3) +
                (std::isnan(gain.low) ? std::string()
                                      : " (95% bootstrap interval over targets " + format_fixed(gain.low, 3) + " to " +
                                            format_fixed(gain.high, 3) + ")") +
                ". The paper has no searched point: every anchor it reports is a fixed combination.");
}

// The jobs, the models with their weights' hashes, and the spec behind the sections.
void write_provenance_section(Report& r, const Study& st) {
    r.heading("Spec and provenance");
    write_compute(r, st);
    const Store& store = *st.store;
    std::vector<std::vector<std::string>> job_rows;
    for (const auto& j : st.jobs)
        job_rows.push_back({j.id, j.state, format_fixed(j.seconds, 1), std::to_string(j.attempts), j.error});
    r.table({"job", "state", "seconds", "attempts", "error"}, job_rows, "Jobs.");
    std::vector<std::vector<std::string>> model_rows;
    for (const auto& m : store.models())
        model_rows.push_back({fs::path(m.path).filename().string(), m.sha256.substr(0, 16)});
    r.table({"model", "SHA-256 (first 16)"}, model_rows, "Fine-tuned models and the hashes of their weights.");
    r.code("Experiment spec", store.meta("spec").value_or(""));
}

using SectionWriter = void (*)(Report& r, const Study& st, const std::string& kind);

// Each job kind's section of a study (experiment/job_kinds.h names the kinds and their order).
const std::map<std::string, SectionWriter>& section_writers() {
    static const std::map<std::string, SectionWriter> writers = {
        {"finetune", write_finetuned_section}, {"map", write_map_section},       {"interpolate", write_line_sections},
        {"extrapolate", write_line_sections},  {"hull", write_hull_section},     {"plane", write_plane_section},
        {"centroid", write_centroid_section},  {"search", write_search_section},
    };
    return writers;
}

// One study's sections: one per job kind, in the registry's order, then what they rest on.
void write_study_sections(Report& r, const Study& st) {
    for (const auto& kind : job_kinds()) {
        const auto writer = section_writers().find(kind.name);
        BASIN_CHECK(writer != section_writers().end(), "report: job kind ", kind.name, " has no section");
        writer->second(r, st, kind.name);
    }
    write_provenance_section(r, st);
}

// ---- several studies in one document: the same findings side by side, then each study in full

// The base a study fine-tuned, by its folder's name (basin-mini, real-base).
std::string base_label(const Study& st) {
    const auto base = st.spec["experiment"]["base"].value<std::string>();
    return base ? fs::path(*base).filename().string() : st.name;
}

// A change of one finding between two studies, in the finding's unit.
std::string change_text(const Finding& a, const Finding& b) {
    if (std::isnan(a.value) || std::isnan(b.value)) return "-";
    const double d = b.value - a.value;
    if (a.unit == "%" || a.unit == "points") return signed_fixed(d, 2) + " points";
    if (a.unit == "x") return format_fixed(b.value / a.value, 2) + " times";
    return signed_fixed(d, 4);
}

const Finding* find_finding(const StudyFindings& f, const std::string& name) {
    for (const auto& x : f.findings)
        if (x.finding == name) return &x;
    return nullptr;
}

// The findings of every study in one table (rows: the union of findings, in first-seen order).
void write_findings_side_by_side(Report& r, const std::vector<Study>& studies, const std::vector<StudyFindings>& found,
                                 const std::vector<std::string>& names) {
    std::vector<std::string> header = {"finding", "paper"};
    for (const auto& st : studies) {
        const std::string b = base_label(st);
        header.insert(header.end(), {b, b + ": spread", b + ": verdict"});
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& name : names) {
        std::vector<std::string> row = {name, "-"};
        for (const auto& f : found) {
            const Finding* x = find_finding(f, name);
            if (x && row[1] == "-") row[1] = x->paper;
            if (x)
                row.insert(row.end(), {x->basin, x->spread, verdict_text(x->verdict)});
            else
                row.insert(row.end(), {"-", "-", "not measured"});
        }
        rows.push_back(row);
    }
    r.heading("The paper's findings on each base",
              std::string("Each row: the paper's number (Gueta et al. 2023, RoBERTa-base; PAPER.md) and each study's, "
                          "with its spread "
                          "and whether it agrees ") +
                  kTolerances + ". Each study's sections below hold the tables behind every row.");
    r.table(header, rows, "The paper's findings, measured on each base.");
}

// What the same finding on two bases shows: the change, and which findings appear, vanish or stay.
void write_base_comparison(Report& r, const Study& a, const Study& b, const StudyFindings& fa, const StudyFindings& fb,
                           const std::vector<std::string>& names) {
    const std::string la = base_label(a), lb = base_label(b);
    r.heading("What comparing the two bases shows",
              "The same finding measured with one base (" + la + ") and with another (" + lb +
                  "): the change from the first to the second, and whether each agrees with the paper.");
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> both, only_b, only_a, neither;
    for (const auto& name : names) {
        const Finding *x = find_finding(fa, name), *y = find_finding(fb, name);
        if (!x || !y) continue;
        rows.push_back({name, x->basin, y->basin, change_text(*x, *y),
                        verdict_text(x->verdict) + " -> " + verdict_text(y->verdict)});
        if (x->verdict == Verdict::no_paper_number) continue;
        const std::string line =
            name + ": " + x->basin + " on " + la + ", " + y->basin + " on " + lb + " (paper " + x->paper;
        (agrees(x->verdict) && agrees(y->verdict) ? both
         : agrees(y->verdict)                     ? only_b
         : agrees(x->verdict)                     ? only_a
                                                  : neither)
            .push_back(line);
    }
    if (rows.empty()) return;
    r.table({"finding", la, lb, "change (" + lb + " vs " + la + ")", "verdicts"}, rows,
            "Per finding: " + la + " against " + lb + ".");
    const std::string table = "Table " + std::to_string(r.tables());
    const std::size_t compared = both.size() + only_a.size() + only_b.size() + neither.size();
    r.paragraph("Of " + std::to_string(compared) + " findings with a paper number measured on both bases, " +
                std::to_string(both.size() + only_a.size()) + " agree with the paper on " + la + " and " +
                std::to_string(both.size() + only_b.size()) + " on " + lb + ": " + std::to_string(only_b.size()) +
                " appear only on " + lb + ", " + std::to_string(only_a.size()) + " only on " + la + " (" + table +
                ").");
    auto section = [&](const std::string& title, std::vector<std::string> items) {
        for (auto& i : items)
            i += "; " + table + ").";
        r.subheading(title);
        if (items.empty()) r.paragraph("None.");
        r.bullets(items);
    };
    section("Agree with the paper on both bases", both);
    section("Agree with the paper only on " + lb, only_b);
    section("Agree with the paper only on " + la, only_a);
    section("Differ from the paper on both bases", neither);
}

// Fine-tuned accuracy per dataset on every base, beside the majority class and published numbers.
void write_accuracy_side_by_side(Report& r, const std::vector<Study>& studies) {
    std::vector<std::string> datasets;
    std::vector<std::map<std::string, std::vector<double>>> by_study;
    for (const auto& st : studies) {
        by_study.emplace_back();
        for (const auto& a : finetuned_accuracies(st)) {
            by_study.back()[a.dataset].push_back(a.accuracy);
            if (std::find(datasets.begin(), datasets.end(), a.dataset) == datasets.end()) datasets.push_back(a.dataset);
        }
    }
    std::sort(datasets.begin(), datasets.end());
    std::vector<std::string> header = {"dataset", "majority class (%)"};
    for (const auto& st : studies)
        header.push_back(base_label(st) + ": mean +- std (seeds)");
    std::vector<std::string> sources;
    std::vector<Published> published;
    for (const auto& st : studies) {
        published.push_back(published_accuracies(st.spec));
        if (!published.back().values.empty()) {
            header.push_back("published for " + base_label(st) + " (%)");
            sources.push_back(base_label(st) + ": " + published.back().source);
        }
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : datasets) {
        std::string majority = "-";
        for (const auto& st : studies)
            if (st.facts.is_object() && st.facts.contains(d))
                majority = format_percent(st.facts[d].value("majority_accuracy", 0.0));
        std::vector<std::string> row = {d, majority};
        for (const auto& acc : by_study) {
            const auto at = acc.find(d);
            row.push_back(at == acc.end() ? "-"
                                          : format_percent(mean(at->second)) + " +- " +
                                                (at->second.size() > 1 ? format_percent(sample_std(at->second)) : "-") +
                                                " (" + std::to_string(at->second.size()) + ")");
        }
        for (const auto& p : published)
            if (!p.values.empty()) row.push_back(p.values.count(d) ? format_fixed(p.values.at(d), 1) : "-");
        rows.push_back(row);
    }
    std::string caption = "Fine-tuned test accuracy per dataset on each base, over seeds";
    for (const auto& s : sources)
        caption += "; published, " + s;
    r.heading("Fine-tuned accuracy on each base");
    r.table(header, rows, caption + ".");
}

std::string html_page(const std::string& title, const std::string& intro_html, const std::string& body) {
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>basin report: " +
           xml_escape(title) +
           "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
           "caption{text-align:left;font-style:italic;margin-bottom:4px}figure{margin:1.5em 0}figcaption{font-size:90%}"
           "pre{background:#f6f6f6;padding:1em;overflow:auto}svg circle:hover{stroke-width:2}</style></head>\n<body>\n"
           "<h1>basin report: " +
           xml_escape(title) + "</h1>\n<p>" + intro_html + "</p>\n" + body +
           "<script>\n// marks each chart that the browser laid out with a visible size (checked by the tests)\n"
           "window.addEventListener('load', function () {\n"
           "  var shown = 0;\n"
           "  document.querySelectorAll('figure.chart').forEach(function (f) {\n"
           "    var svg = f.querySelector('svg'); var box = svg ? svg.getBoundingClientRect() : null;\n"
           "    var ok = box && box.width > 0 && box.height > 0 && svg.querySelectorAll('*').length > 10;\n"
           "    f.setAttribute('data-rendered', ok ? 'yes' : 'no'); if (ok) shown++;\n"
           "  });\n"
           "  document.body.setAttribute('data-figures-shown', String(shown));\n"
           "});\n</script>\n</body></html>\n";
}

} // namespace

bool report_has_section(const std::string& kind) {
    return section_writers().count(kind) > 0;
}

ReportResult write_report(const fs::path& experiment, const ReportOptions& options) {
    const Study st = load_study(experiment);
    const fs::path dir = experiment / "report";
    Report r(dir, options.markdown);
    // the paper's findings side by side with this experiment's, first: the rest backs them up
    write_findings(r, study_findings(st));
    write_study_sections(r, st);

    const std::string status_line = st.status_line();
    const std::string page = html_page(
        st.name,
        xml_escape(status_line) + " Hover over a point for its value. Generated by <code>basin report</code> from " +
            xml_escape(st.store_path.filename().string()) + ".",
        r.body());
    write_text_atomically(dir / "report.html", page);
    r.remove_stale_figures();
    ReportResult result{dir / "report.html", r.figures(), r.tables(), {}};
    if (options.markdown) {
        write_text_atomically(
            *options.markdown,
            "# basin report: " + st.name +
                "\n\n<!-- Generated by `basin report` from the experiment store; do not edit. -->\n\n" + status_line +
                " Regenerate with `" + options.command + "`.\n\n" + r.markdown());
        result.markdown = *options.markdown;
    }
    return result;
}

ReportResult write_comparison_report(const std::vector<fs::path>& experiments, const ReportOptions& options) {
    BASIN_CHECK(experiments.size() >= 2, "a comparison report needs at least two experiment folders");
    std::vector<Study> studies;
    std::vector<StudyFindings> found;
    for (const auto& e : experiments)
        studies.push_back(load_study(e)), found.push_back(study_findings(studies.back()));
    std::vector<std::string> names; // the union of findings, in first-seen order
    for (const auto& f : found)
        for (const auto& x : f.findings)
            if (std::find(names.begin(), names.end(), x.finding) == names.end()) names.push_back(x.finding);
    std::string title;
    for (const auto& st : studies)
        title += (title.empty() ? "" : " and ") + st.name;

    const fs::path dir = experiments.front() / "report-comparison";
    Report r(dir, options.markdown);
    write_findings_side_by_side(r, studies, found, names);
    write_base_comparison(r, studies[studies.size() - 2], studies.back(), found[found.size() - 2], found.back(), names);
    write_accuracy_side_by_side(r, studies);
    for (std::size_t i = 0; i < studies.size(); ++i) {
        const Study& st = studies[i];
        r.begin_study("", 0);
        r.heading("Study " + std::to_string(i + 1) + ": " + st.name + " (base " + base_label(st) + ")",
                  st.status_line());
        // the study's own agreement lists and reasons (its findings are in the first table), then its sections
        r.begin_study(file_safe_name(st.folder.filename().string()) + "-", 0);
        write_findings_account(r, found[i], "Table 1, column " + base_label(st));
        r.begin_study(file_safe_name(st.folder.filename().string()) + "-", 1);
        write_study_sections(r, st);
    }
    std::string status;
    for (const auto& st : studies)
        status += (status.empty() ? "" : " ") + st.name + ": " + st.status_line();
    write_text_atomically(dir / "report.html",
                          html_page(title,
                                    xml_escape(status) + " Generated by <code>basin report</code> from the stores of " +
                                        std::to_string(studies.size()) + " experiments.",
                                    r.body()));
    r.remove_stale_figures();
    ReportResult result{dir / "report.html", r.figures(), r.tables(), {}};
    if (options.markdown) {
        write_text_atomically(
            *options.markdown,
            "# basin report: " + title +
                "\n\n<!-- Generated by `basin report` from the experiment stores; do not edit. -->\n\n" + status +
                " Regenerate with `" + options.command + "`.\n\n" + r.markdown());
        result.markdown = *options.markdown;
    }
    return result;
}

std::vector<Finding> paper_findings(const fs::path& experiment) {
    return study_findings(load_study(experiment)).findings;
}

} // namespace basin
