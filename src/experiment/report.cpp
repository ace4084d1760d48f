#include "basin/experiment/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/data/dataset.h"
#include "basin/experiment/store.h"
#include "basin/report/figure.h"

namespace basin {

namespace {

using nlohmann::json;

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

std::string fixed(double v, int digits = 4) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string pct(double v) { return fixed(100 * v, 2); }

// The report under construction: HTML sections, and figures written beside it.
class Report {
  public:
    explicit Report(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_ / "figures"); }

    void heading(const std::string& text, const std::string& intro = "") {
        html_ << "<h2>" << escape(text) << "</h2>\n";
        if (!intro.empty()) html_ << "<p>" << escape(intro) << "</p>\n";
    }
    void paragraph(const std::string& text) { html_ << "<p>" << escape(text) << "</p>\n"; }
    void figure(const std::string& name, const Canvas& canvas, const std::string& caption) {
        canvas.save((dir_ / "figures" / name).string());
        ++figures_;
        html_ << "<figure class=\"chart\" id=\"fig-" << escape(name) << "\">" << canvas.svg() << "<figcaption>Figure "
              << figures_ << ". " << escape(caption) << " <a href=\"figures/" << escape(name) << ".svg\">SVG</a> <a href=\"figures/"
              << escape(name) << ".pdf\">PDF</a></figcaption></figure>\n";
    }
    void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
               const std::string& caption) {
        ++tables_;
        html_ << "<table><caption>Table " << tables_ << ". " << escape(caption) << "</caption><tr>";
        for (const auto& h : header) html_ << "<th>" << escape(h) << "</th>";
        html_ << "</tr>\n";
        for (const auto& row : rows) {
            html_ << "<tr>";
            for (const auto& cell : row) html_ << "<td>" << escape(cell) << "</td>";
            html_ << "</tr>\n";
        }
        html_ << "</table>\n";
    }
    void raw(const std::string& text) { html_ << text; }
    std::size_t figures() const { return figures_; }
    std::size_t tables() const { return tables_; }
    std::string body() const { return html_.str(); }

  private:
    fs::path dir_;
    std::ostringstream html_;
    std::size_t figures_ = 0, tables_ = 0;
};

std::string safe(const std::string& s) {
    std::string out;
    for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return out;
}

double alpha_of(const std::string& subject) { return std::stod(subject.substr(subject.find('=') + 1)); }

struct Lookup { // metrics of one job: (subject, dataset, metric) -> value
    std::map<std::tuple<std::string, std::string, std::string>, double> values;
    std::vector<std::string> subjects, datasets; // in first-seen order
};

Lookup lookup(const std::vector<Metric>& metrics) {
    Lookup l;
    for (const auto& m : metrics) {
        l.values[{m.subject, m.dataset, m.metric}] = m.value;
        if (std::find(l.subjects.begin(), l.subjects.end(), m.subject) == l.subjects.end()) l.subjects.push_back(m.subject);
        if (!m.dataset.empty() && std::find(l.datasets.begin(), l.datasets.end(), m.dataset) == l.datasets.end())
            l.datasets.push_back(m.dataset);
    }
    return l;
}

} // namespace

ReportResult write_report(const fs::path& experiment) {
    const fs::path store_path = experiment / "store.sqlite";
    BASIN_CHECK(fs::exists(store_path), experiment.string(), ": no store.sqlite (run `basin run SPEC` first)");
    Store store(store_path);
    const std::string name = store.meta("name").value_or(experiment.filename().string());
    const auto jobs = store.jobs();
    std::map<std::string, JobRecord> job_of;
    for (const auto& j : jobs) job_of[j.id] = j;
    auto labels = [&](const std::string& id) {
        const json j = json::parse(job_of[id].labels, nullptr, false);
        return j.is_object() ? j : json::object();
    };
    auto jobs_of_kind = [&](const std::string& kind) {
        std::vector<std::string> ids;
        for (const auto& j : jobs)
            if (j.kind == kind && j.state == "done") ids.push_back(j.id);
        return ids;
    };
    const fs::path dir = experiment / "report";
    Report r(dir);
    std::size_t done = 0, failed = 0;
    for (const auto& j : jobs) (j.state == "done" ? done : failed) += j.state == "done" || j.state == "failed" || j.state == "blocked";

    // ---- fine-tuned models
    std::vector<std::vector<std::string>> rows;
    std::map<std::string, std::string> family_of_model;
    for (const auto& id : jobs_of_kind("finetune")) {
        const json l = labels(id);
        const auto m = lookup(store.metrics(id));
        const std::string model = l.value("model", id), dataset = l.value("dataset", "");
        family_of_model[model] = l.value("family", "");
        const auto acc = m.values.find({model, dataset, "accuracy"});
        rows.push_back({model, dataset, l.value("family", ""), l.value("seed", ""),
                        acc != m.values.end() ? pct(acc->second) : "-", fixed(job_of[id].seconds, 1)});
    }
    if (!rows.empty()) {
        r.heading("Fine-tuned models", "The zoo: the base model fine-tuned on every dataset with every seed.");
        r.table({"model", "dataset", "family", "seed", "test accuracy (%)", "seconds"}, rows, "Fine-tuned models.");
    }

    // ---- the map
    if (job_of.count("map") && job_of["map"].state == "done") {
        r.heading("Weight-space map", "Cosine similarity of task vectors (model - base); spectral clustering on (cos + 1) / 2.");
        const auto m = lookup(store.metrics("map"));
        std::vector<std::vector<std::string>> acc;
        for (const auto& [key, value] : m.values) {
            const std::string& metric = std::get<2>(key);
            if (metric.rfind("clustering_accuracy/", 0) != 0) continue;
            const auto slash = metric.find('/', 20);
            acc.push_back({metric.substr(20, slash - 20), metric.substr(slash + 1), pct(value)});
        }
        r.table({"groups", "method", "clustering accuracy (%)"}, acc,
                "Clustering accuracy (each cluster mapped to its majority group, every group given a cluster).");
        std::vector<std::vector<std::string>> wb;
        for (const std::string kind : {"dataset", "family"}) {
            const auto w = m.values.find({"map", "", "within/" + kind}), b = m.values.find({"map", "", "between/" + kind});
            if (w != m.values.end() && b != m.values.end()) wb.push_back({kind, fixed(w->second), fixed(b->second)});
        }
        r.table({"groups", "mean cosine within", "mean cosine between"}, wb, "Tight versus loose: similarity within and between groups.");
        const fs::path embedding = fs::path(job_of["map"].output) / "embedding.csv";
        if (fs::exists(embedding)) {
            std::ifstream in(embedding);
            std::vector<std::string> header, cells;
            std::size_t line = 0;
            read_csv_record(in, ',', true, header, line, embedding);
            std::vector<std::vector<std::string>> table;
            while (read_csv_record(in, ',', true, cells, line, embedding))
                if (cells.size() == header.size()) table.push_back(cells);
            auto column = [&](const std::string& name) {
                return std::size_t(std::find(header.begin(), header.end(), name) - header.begin());
            };
            for (const std::string kind : {"dataset", "family"}) {
                const std::size_t k = column(kind), tx = column("tsne_1"), ty = column("tsne_2");
                if (k >= header.size() || tx >= header.size()) continue;
                std::vector<std::pair<double, double>> points;
                std::vector<int> group;
                std::vector<std::string> names, tips;
                for (const auto& row : table) {
                    auto at = std::find(names.begin(), names.end(), row[k]);
                    if (at == names.end()) names.push_back(row[k]), at = names.end() - 1;
                    group.push_back(int(at - names.begin()));
                    points.emplace_back(std::stod(row[tx]), std::stod(row[ty]));
                    tips.push_back(row[0] + " (" + row[k] + ")");
                }
                r.figure("tsne-" + kind, scatter_plot(points, group, names, "t-SNE of 1 - cosine, by " + kind, "t-SNE 1", "t-SNE 2", tips),
                         "Fine-tuned models in two dimensions (t-SNE on the cosine distance of task vectors), coloured by " + kind + ".");
            }
        }
    }

    // ---- interpolation and extrapolation
    for (const std::string kind : {"interpolate", "extrapolate"}) {
        const auto ids = jobs_of_kind(kind);
        if (ids.empty()) continue;
        const bool extra = kind == "extrapolate";
        r.heading(extra ? "Extrapolation" : "Interpolation",
                  extra ? "Past the endpoints along the same line: alpha from 1 to 32 and from 0 to -31, log-spaced."
                        : "The generalized loss (linear probe on the frozen body) along (1 - alpha) A + alpha B.");
        std::map<std::string, std::map<double, std::vector<double>>> by_relation; // relation -> alpha -> mean losses
        for (const auto& id : ids) {
            const json l = labels(id);
            const auto m = lookup(store.metrics(id));
            std::vector<Series> series;
            std::map<double, std::vector<double>> mean;
            for (const auto& dataset : m.datasets) {
                Series s{dataset, {}, {}};
                for (const auto& subject : m.subjects) {
                    auto v = m.values.find({subject, dataset, "loss"});
                    if (v == m.values.end()) continue;
                    s.x.push_back(alpha_of(subject));
                    s.y.push_back(v->second);
                    mean[alpha_of(subject)].push_back(v->second);
                }
                series.push_back(s);
            }
            Series avg{"average", {}, {}, true};
            for (const auto& [a, values] : mean) {
                avg.x.push_back(a);
                double sum = 0;
                for (double v : values) sum += v;
                avg.y.push_back(sum / double(values.size()));
                by_relation[l.value("relation", "")][a].push_back(avg.y.back());
            }
            if (series.size() > 1) series.push_back(avg);
            const std::string title = l.value("A", "A") + " -> " + l.value("B", "B");
            r.figure(kind + "-" + safe(id.substr(kind.size() + 1)),
                     line_plot(series, title, extra ? "alpha (symlog)" : "alpha (0 = A, 1 = B)", "generalized loss", extra),
                     (extra ? "Extrapolation " : "Interpolation ") + title + " (" + l.value("relation", "") +
                         "): generalized loss per target dataset.");
        }
        if (!extra && by_relation.size() > 1) {
            std::vector<Series> series;
            for (const auto& [relation, curve] : by_relation) {
                Series s{relation, {}, {}};
                for (const auto& [a, values] : curve) {
                    double sum = 0;
                    for (double v : values) sum += v;
                    s.x.push_back(a), s.y.push_back(sum / double(values.size()));
                }
                series.push_back(s);
            }
            r.figure("interpolation-average", line_plot(series, "Interpolation, averaged by relation", "alpha", "generalized loss"),
                     "Mean generalized loss along the line, averaged over the pairs of each relation (same dataset, same family, different families).");
        }
    }

    // ---- hull: In / In' / Ex and PB
    if (const auto ids = jobs_of_kind("hull"); !ids.empty()) {
        r.heading("Inside and outside the region",
                  "In: the group's models; In': Dirichlet(1) weighted averages of them; Ex: models outside the group and the base "
                  "moved along random directions of the members' mean task-vector norm. PB(X, Y): the fraction of pairs where x's "
                  "generalized loss is no higher than y's (same dataset).");
        std::vector<std::vector<std::string>> pb_rows;
        for (const auto& id : ids) {
            const json l = labels(id);
            const auto m = lookup(store.metrics(id));
            auto cell = [&](const std::string& name) {
                auto v = m.values.find({"pb", "all datasets", name});
                auto n = m.values.find({"pb", "all datasets", name + " pairs"});
                return v == m.values.end() ? std::string("-") : pct(v->second) + " (" + std::to_string(long(n->second)) + ")";
            };
            pb_rows.push_back({l.value("level", ""), l.value("group", "") == "" ? "all models" : l.value("group", ""),
                               cell("PB(In', In)"), cell("PB(In', Ex)"), cell("PB(In, Ex)")});
            std::map<std::string, std::string> set_of;
            for (const auto& p : store.points(id)) set_of[p.name] = p.set;
            std::vector<Series> groups = {{"In", {}, {}}, {"In'", {}, {}}, {"Ex", {}, {}}};
            for (const auto& subject : m.subjects) {
                if (subject == "pb") continue;
                double sum = 0;
                int n = 0;
                for (const auto& d : m.datasets)
                    if (auto v = m.values.find({subject, d, "loss"}); v != m.values.end()) sum += v->second, ++n;
                for (auto& g : groups)
                    if (g.name == set_of[subject] && n) g.y.push_back(sum / n);
            }
            r.figure("hull-" + safe(id.substr(5)), strip_plot(groups, "In / In' / Ex: " + id.substr(5), "generalized loss"),
                     "Generalized loss (mean over the group's datasets) of members, hull samples and outside models: " + id.substr(5) + ".");
        }
        r.table({"level", "group", "PB(In', In) % (pairs)", "PB(In', Ex) % (pairs)", "PB(In, Ex) % (pairs)"}, pb_rows,
                "PB over all datasets of each group; the paper: 88 / 96.7 / 90% (dataset / task / general) for PB(In', In) and 100% for PB(In', Ex).");
    }

    // ---- plane
    if (job_of.count("plane") && job_of["plane"].state == "done") {
        const auto m = lookup(store.metrics("plane"));
        std::map<std::string, std::pair<double, double>> uv;
        for (const auto& p : store.points("plane")) {
            const json c = json::parse(p.coefficients);
            uv[p.name] = {c.at("u").get<double>(), c.at("v").get<double>()};
        }
        std::size_t nx = 0, ny = 0;
        for (const auto& [name, _] : uv) {
            const auto comma = name.find(',');
            nx = std::max<std::size_t>(nx, std::stoul(name.substr(1, comma - 1)) + 1);
            ny = std::max<std::size_t>(ny, std::stoul(name.substr(comma + 1)) + 1);
        }
        std::vector<std::vector<double>> values(ny, std::vector<double>(nx, NAN));
        double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
        for (const auto& [name, c] : uv) {
            const auto comma = name.find(',');
            const std::size_t i = std::stoul(name.substr(1, comma - 1)), j = std::stoul(name.substr(comma + 1));
            double sum = 0;
            int n = 0;
            for (const auto& d : m.datasets)
                if (auto v = m.values.find({name, d, "loss"}); v != m.values.end()) sum += v->second, ++n;
            values[j][i] = n ? sum / n : NAN;
            x0 = std::min(x0, c.first), x1 = std::max(x1, c.first), y0 = std::min(y0, c.second), y1 = std::max(y1, c.second);
        }
        const json l = labels("plane");
        std::vector<Marker> markers;
        const fs::path summary = fs::path(job_of["plane"].output) / "summary.json";
        if (fs::exists(summary))
            for (const auto& mk : json::parse(read_text_file(summary)).at("markers"))
                markers.push_back({mk.at("u").get<double>(), mk.at("v").get<double>(), mk.at("model").get<std::string>()});
        r.heading("Loss surface", "The plane through three fine-tuned models (orthonormalised directions).");
        r.figure("plane", surface_map(values, x0, x1, y0, y1, markers, "Generalized loss on the plane", "loss"),
                 "A = " + l.value("A", "") + ", B = " + l.value("B", "") + ", C = " + l.value("C", "") + ".");
    }

    // ---- centroid vs pretrained
    if (job_of.count("centroid") && job_of["centroid"].state == "done") {
        const auto m = lookup(store.metrics("centroid"));
        std::vector<std::vector<std::string>> table;
        Series pre{"pretrained", {}, {}}, cen{"centroid", {}, {}};
        std::vector<std::string> targets;
        double gain = 0;
        int wins = 0;
        for (const auto& d : m.datasets) {
            auto get = [&](const std::string& s, const std::string& metric) {
                auto v = m.values.find({s, d, metric});
                return v == m.values.end() ? NAN : v->second;
            };
            const double diff = get("centroid - pretrained", "difference");
            targets.push_back(d);
            pre.y.push_back(100 * get("pretrained", "accuracy_mean"));
            cen.y.push_back(100 * get("centroid", "accuracy_mean"));
            gain += diff;
            wins += diff >= 0;
            table.push_back({d, pct(get("pretrained", "accuracy_mean")) + " +- " + pct(get("pretrained", "accuracy_std")),
                             pct(get("centroid", "accuracy_mean")) + " +- " + pct(get("centroid", "accuracy_std")),
                             (diff >= 0 ? "+" : "") + pct(diff), fixed(get("centroid - pretrained", "p_value"), 3)});
        }
        if (!table.empty())
            table.push_back({"mean", "", "", (gain >= 0 ? "+" : "") + pct(gain / double(m.datasets.size())),
                             std::to_string(wins) + " of " + std::to_string(m.datasets.size()) + " better or equal"});
        r.heading("The centroid as a starting point",
                  "Fine-tuning from the leave-one-dataset-out centroid versus from the pretrained model, same settings and seeds.");
        r.table({"target", "pretrained (%)", "centroid (%)", "difference", "p (paired t)"}, table,
                "Test accuracy, mean +- std over seeds; the paper: better or equal on 11 of 12 targets, +3.06 to +4.03 points.");
        r.figure("centroid", bar_chart(targets, {pre, cen}, "Centroid versus pretrained start", "test accuracy (%)"),
                 "Accuracy after fine-tuning from each start, per target dataset (mean over seeds).");
    }

    // ---- provenance
    r.heading("Spec and provenance");
    std::vector<std::vector<std::string>> job_rows;
    for (const auto& j : jobs) job_rows.push_back({j.id, j.state, fixed(j.seconds, 1), std::to_string(j.attempts), j.error});
    r.table({"job", "state", "seconds", "attempts", "error"}, job_rows, "Jobs.");
    std::vector<std::vector<std::string>> model_rows;
    for (const auto& m : store.models()) model_rows.push_back({fs::path(m.path).filename().string(), m.sha256.substr(0, 16)});
    r.table({"model", "SHA-256 (first 16)"}, model_rows, "Fine-tuned models and the hashes of their weights.");
    r.raw("<h3>Experiment spec</h3>\n<pre>" + escape(store.meta("spec").value_or("")) + "</pre>\n");

    const std::string page =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>basin report: " + escape(name) +
        "</title>\n<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "caption{text-align:left;font-style:italic;margin-bottom:4px}figure{margin:1.5em 0}figcaption{font-size:90%}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}svg circle:hover{stroke-width:2}</style></head>\n<body>\n"
        "<h1>basin report: " + escape(name) + "</h1>\n<p>" + std::to_string(done) + " jobs done, " + std::to_string(failed) +
        " failed or blocked. Hover over a point for its value. Generated by <code>basin report</code> from " +
        escape(store_path.filename().string()) + ".</p>\n" + r.body() +
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
    write_text_atomically(dir / "report.html", page);
    return {dir / "report.html", r.figures(), r.tables()};
}

} // namespace basin
