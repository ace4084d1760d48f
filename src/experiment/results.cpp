#include "basin/experiment/results.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/json_file.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/experiment/job_kinds.h"
#include "basin/io/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

namespace basin {

namespace {

using nlohmann::json;

} // namespace

MetricIndex::MetricIndex(const std::vector<Metric>& metrics) {
    for (const auto& m : metrics) {
        values[{m.subject, m.dataset, m.metric}] = m.value;
        if (std::find(subjects.begin(), subjects.end(), m.subject) == subjects.end()) subjects.push_back(m.subject);
        if (!m.dataset.empty() && std::find(datasets.begin(), datasets.end(), m.dataset) == datasets.end())
            datasets.push_back(m.dataset);
    }
}

double MetricIndex::value(const std::string& subject, const std::string& dataset, const std::string& metric) const {
    const auto v = values.find({subject, dataset, metric});
    return v == values.end() ? NAN : v->second;
}

// ---- region records in the store

namespace {

constexpr const char* kAlphaPrefix = "alpha=";

std::string alpha_subject(double alpha) {
    return kAlphaPrefix + format_exact(alpha);
}
std::string plane_subject(std::size_t i, std::size_t j) {
    return "(" + std::to_string(i) + "," + std::to_string(j) + ")";
}
constexpr const char* kMarkerPrefix = "marker:";

void add_scores(JobResults& r, const std::string& job, const std::string& subject,
                const std::vector<TargetInfo>& targets, const std::vector<PointScore>& row) {
    for (std::size_t d = 0; d < targets.size(); ++d) {
        r.metrics.push_back({job, subject, targets[d].name, "loss", row[d].loss});
        r.metrics.push_back({job, subject, targets[d].name, "accuracy", row[d].accuracy});
    }
}

// A record's targets as the store names them: its datasets (a hull's without its pooled PB row).
std::vector<TargetInfo> targets_of(const MetricIndex& m, bool hull = false) {
    std::vector<TargetInfo> out;
    for (const auto& d : m.datasets)
        if (!hull || d != kAllDatasets) out.push_back({d, "", "", {}, 0, 0, ""});
    return out;
}

// One point's loss and accuracy on each target (NaN where the store has none).
std::vector<PointScore> scores_of(const MetricIndex& m, const std::vector<TargetInfo>& targets,
                                  const std::string& subject) {
    std::vector<PointScore> row;
    for (const auto& t : targets) {
        PointScore s;
        s.loss = m.value(subject, t.name, "loss"), s.accuracy = m.value(subject, t.name, "accuracy");
        s.train_loss = s.train_accuracy = NAN;
        row.push_back(s);
    }
    return row;
}

double alpha_of(const std::string& subject, const std::string& job) {
    BASIN_CHECK(subject.rfind(kAlphaPrefix, 0) == 0, "store: job ", job, ": point '", subject,
                "' is not named alpha=<number>");
    return std::stod(subject.substr(std::string(kAlphaPrefix).size()));
}

} // namespace

JobResults interpolation_rows(const InterpolationRecord& rec, const Job& job) {
    JobResults r;
    for (std::size_t p = 0; p < rec.alphas.size(); ++p) {
        const double a = rec.alphas[p];
        add_scores(r, job.id, alpha_subject(a), rec.targets, rec.scores[p]);
        r.points.push_back(
            {job.id, alpha_subject(a), job.kind, json({{job.labels.at("A"), 1 - a}, {job.labels.at("B"), a}}).dump()});
    }
    return r;
}

InterpolationRecord interpolation_from_store(const std::vector<Metric>& metrics,
                                             const std::vector<PointRecord>& points) {
    InterpolationRecord rec;
    const MetricIndex m(metrics);
    const std::string job = metrics.empty() ? "" : metrics.front().job;
    std::set<std::string> subjects;
    for (const auto& p : points)
        subjects.insert(p.name);
    if (subjects.empty()) // stores from before points were recorded
        for (const auto& x : metrics)
            subjects.insert(x.subject);
    std::vector<std::pair<double, std::string>> order;
    for (const auto& s : subjects)
        order.push_back({alpha_of(s, job), s});
    std::sort(order.begin(), order.end());
    rec.targets = targets_of(m);
    for (const auto& [a, subject] : order) {
        rec.alphas.push_back(a);
        rec.scores.push_back(scores_of(m, rec.targets, subject));
        rec.extrapolate = rec.extrapolate || a < 0 || a > 1;
    }
    if (!points.empty()) rec.extrapolate = points.front().set == "extrapolate";
    return rec;
}

JobResults hull_rows(const HullRecord& rec, const Job& job) {
    JobResults r;
    for (std::size_t p = 0; p < rec.points.size(); ++p) {
        const HullPoint& point = rec.points[p];
        add_scores(r, job.id, point.name, rec.targets, rec.scores[p]);
        r.points.push_back({job.id, point.name, point.set, json(weights_text(point.weights)).dump()});
    }
    for (const auto& row : rec.pb)
        for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
            r.metrics.push_back({job.id, "pb", row.dataset, pb_name(k), row.values[k].value});
            r.metrics.push_back({job.id, "pb", row.dataset, pb_name(k) + " pairs", double(row.values[k].pairs)});
        }
    return r;
}

HullRecord hull_from_store(const std::vector<Metric>& metrics, const std::vector<PointRecord>& points) {
    HullRecord rec;
    const MetricIndex m(metrics);
    rec.targets = targets_of(m, true);
    for (const auto& p : points) {
        std::vector<double> weights;
        const json w = json::parse(p.coefficients, nullptr, false);
        if (w.is_string()) {
            std::istringstream in(w.get<std::string>());
            for (double v; in >> v;)
                weights.push_back(v);
        }
        rec.points.push_back({p.name, p.set, weights});
        rec.scores.push_back(scores_of(m, rec.targets, p.name));
        rec.members += p.set == "In", rec.hull_samples += p.set == "In'";
    }
    std::vector<std::string> rows;
    for (const auto& t : rec.targets)
        rows.push_back(t.name);
    rows.push_back(kAllDatasets);
    for (const auto& dataset : rows) {
        PbRow row{dataset, {}};
        bool any = false;
        for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
            const double v = m.value("pb", dataset, pb_name(k)), n = m.value("pb", dataset, pb_name(k) + " pairs");
            any = any || !std::isnan(v);
            row.values[k] = {v, std::isnan(n) ? 0 : std::size_t(n)};
        }
        if (any) rec.pb.push_back(row);
    }
    return rec;
}

JobResults plane_rows(const PlaneRecord& rec, const Job& job) {
    JobResults r;
    for (std::size_t j = 0; j < rec.grid.ny; ++j)
        for (std::size_t i = 0; i < rec.grid.nx; ++i) {
            const std::string name = plane_subject(i, j);
            add_scores(r, job.id, name, rec.targets, rec.scores[j * rec.grid.nx + i]);
            r.points.push_back({job.id, name, "plane", json({{"u", rec.grid.x(i)}, {"v", rec.grid.y(j)}}).dump()});
        }
    for (const auto& mk : rec.markers)
        r.points.push_back({job.id, kMarkerPrefix + mk.model, "marker", json({{"u", mk.u}, {"v", mk.v}}).dump()});
    return r;
}

PlaneRecord plane_from_store(const std::vector<Metric>& metrics, const std::vector<PointRecord>& points) {
    PlaneRecord rec;
    const MetricIndex m(metrics);
    rec.targets = targets_of(m);
    struct Cell {
        std::size_t i, j;
        std::string name;
    };
    std::vector<Cell> cells;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& p : points) {
        const json c = json::parse(p.coefficients, nullptr, false);
        BASIN_CHECK(c.is_object() && c.contains("u") && c.contains("v"), "store: job ", p.job, ": point '", p.name,
                    "' has no (u, v) coordinates");
        const double u = c.at("u").get<double>(), v = c.at("v").get<double>();
        if (p.set == "marker") {
            rec.markers.push_back({p.name.substr(std::string(kMarkerPrefix).size()), u, v});
            continue;
        }
        std::size_t i = 0, j = 0;
        BASIN_CHECK(std::sscanf(p.name.c_str(), "(%zu,%zu)", &i, &j) == 2, "store: job ", p.job, ": plane point '",
                    p.name, "' is not named (i,j)");
        cells.push_back({i, j, p.name});
        rec.grid.nx = std::max(rec.grid.nx, i + 1), rec.grid.ny = std::max(rec.grid.ny, j + 1);
        x0 = std::min(x0, u), x1 = std::max(x1, u), y0 = std::min(y0, v), y1 = std::max(y1, v);
    }
    if (cells.empty()) return rec;
    rec.grid.x0 = x0, rec.grid.x1 = x1, rec.grid.y0 = y0, rec.grid.y1 = y1;
    PointScore missing;
    missing.loss = missing.accuracy = missing.train_loss = missing.train_accuracy = NAN;
    rec.scores.assign(rec.grid.nx * rec.grid.ny, std::vector<PointScore>(rec.targets.size(), missing));
    for (const auto& c : cells)
        rec.scores[c.j * rec.grid.nx + c.i] = scores_of(m, rec.targets, c.name);
    return rec;
}

JobResults map_rows(const MapRecord& map, const Job& job) {
    JobResults r;
    auto metric = [&](const std::string& subject, const std::string& dataset, const std::string& name, double value) {
        if (!std::isnan(value)) r.metrics.push_back({job.id, subject, dataset, name, value});
    };
    for (const auto& kind : map.kinds) {
        for (const auto& m : kind.methods) {
            metric("map", "", "clustering_accuracy/" + kind.name + "/" + m.method, m.accuracy);
            metric("map", "", "clustering_accuracy_majority/" + kind.name + "/" + m.method, m.accuracy_majority);
        }
        metric("map", "", "within/" + kind.name, kind.similarity.within_mean);
        metric("map", "", "between/" + kind.name, kind.similarity.between_mean);
    }
    // the uncertainty: intervals as ci/.../low|high, permutation p-values as p/...
    for (const auto& k : map.uncertainty.kinds) {
        metric("map", "", "ci/" + k.kind + "/spectral_accuracy/low", k.spectral_accuracy.low);
        metric("map", "", "ci/" + k.kind + "/spectral_accuracy/high", k.spectral_accuracy.high);
        metric("map", "", "ci/" + k.kind + "/silhouette/low", k.silhouette.low);
        metric("map", "", "ci/" + k.kind + "/silhouette/high", k.silhouette.high);
    }
    for (const auto& e : map.uncertainty.nestings) {
        const std::string nest = e.fine + "-in-" + e.coarse;
        for (const auto& [name, i] :
             {std::pair<const char*, const Interval&>{"fine_gap", e.fine_gap}, {"coarse_gap", e.coarse_gap}}) {
            metric("map", "", "ci/" + nest + "/" + name + "/estimate", i.estimate);
            metric("map", "", "ci/" + nest + "/" + name + "/low", i.low);
            metric("map", "", "ci/" + nest + "/" + name + "/high", i.high);
        }
        metric("map", "", "p/" + nest + "/fine_structure", e.fine_structure.p_value);
        metric("map", "", "p/" + nest + "/coarse_structure", e.coarse_structure.p_value);
    }
    // how the map clustered (maps before these settings: k-means assignment, raw geometry)
    metric("map", "", "settings/spectral_assign/" + map.assign, 1);
    metric("map", "", "settings/geometry/" + map.geometry, 1);
    for (const auto& nest : map.nestings) {
        const std::string prefix = "pairs/" + nest.fine + "-in-" + nest.coarse + "/";
        for (const auto& [level, x] : {std::pair<const char*, const Summary&>{"same_fine", nest.pairs.same_fine},
                                       {"same_coarse", nest.pairs.same_coarse},
                                       {"different_coarse", nest.pairs.different_coarse}}) {
            metric("map", "", prefix + level + "/pairs", double(x.n));
            metric("map", "", prefix + level + "/mean", x.mean);
            metric("map", "", prefix + level + "/median", x.median);
            metric("map", "", prefix + level + "/q05", x.q05);
            metric("map", "", prefix + level + "/q95", x.q95);
        }
    }
    // the cosine matrix (upper triangle, by name) and the 2-D coordinates go into the store too,
    // so that the report needs nothing but the store
    const std::size_t n = map.names.size();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (map.names[i] < map.names[j]) metric(map.names[i], map.names[j], "cosine", map.cosine(i, j));
    // coordinates as the text of embedding.csv (10 significant digits), as stores have always held them
    auto text = [](double v) { return format_g(v, 10); };
    for (std::size_t i = 0; i < n; ++i) {
        json fields = json::object();
        for (const auto& kind : map.kinds)
            fields[kind.name] = kind.groups[kind.label[i]];
        fields["pca_1"] = text(map.pca.coordinates[i][0]), fields["pca_2"] = text(map.pca.coordinates[i][1]);
        fields["tsne_1"] = map.tsne.empty() ? "" : text(map.tsne[i][0]);
        fields["tsne_2"] = map.tsne.empty() ? "" : text(map.tsne[i][1]);
        r.points.push_back({job.id, map.names[i], "embedding", fields.dump()});
    }
    return r;
}

namespace {

JobResults finetune_rows(const Job& job) {
    JobResults r;
    const json run = read_json_object(job.output / "basin_run.json");
    const std::string model = job.labels.at("model"), dataset = job.labels.at("dataset");
    const auto& last = run.at("epochs").back();
    auto metric = [&](const std::string& name, double value) {
        r.metrics.push_back({job.id, model, dataset, name, value});
    };
    if (last.contains("eval_accuracy")) metric("accuracy", last["eval_accuracy"].get<double>());
    if (last.contains("eval_loss")) metric("loss", last["eval_loss"].get<double>());
    metric("train_loss", last.at("train_loss").get<double>());
    const json provenance = {{"command", run.value("command", "")}, {"labels", job.labels}};
    r.models.push_back({job.output.string(), checkpoint_weights_sha256(job.output), job.id, provenance.dump()});
    return r;
}

JobResults centroid_rows(const Job& job) {
    JobResults r;
    auto metric = [&](const std::string& subject, const std::string& dataset, const std::string& name, double value) {
        r.metrics.push_back({job.id, subject, dataset, name, value});
    };
    const json s = read_json_object(job.output / "summary.json");
    for (const auto& row : s.at("rows")) {
        const std::string target = row.at("target");
        for (const auto& c : row.at("candidates")) {
            metric(c.at("name"), target, "accuracy_mean", c.at("mean").get<double>());
            metric(c.at("name"), target, "accuracy_std", c.at("std").get<double>());
            for (std::size_t i = 0; i < c.at("accuracy").size(); ++i)
                metric(c.at("name"), target, "accuracy_run" + std::to_string(i + 1), c.at("accuracy")[i].get<double>());
        }
        metric("centroid - pretrained", target, "difference", row.at("mean_difference").get<double>());
        metric("centroid - pretrained", target, "p_value", row.at("p_value").get<double>());
    }
    return r;
}

// basin search's summary.json: per target, each row's test and selection scores
JobResults search_rows(const Job& job) {
    JobResults r;
    const json s = read_json_object(job.output / "summary.json");
    for (const auto& t : s.at("targets"))
        for (const auto& row : t.at("rows"))
            for (const char* metric : {"test_loss", "test_accuracy", "selection_loss", "selection_accuracy"})
                r.metrics.push_back({job.id, row.at("row").get<std::string>(), t.at("dataset").get<std::string>(),
                                     metric, row.at(metric).get<double>()});
    return r;
}

JobResults collect_map(const Job& job) {
    return map_rows(read_map(job.output), job);
}
JobResults collect_line(const Job& job) {
    return interpolation_rows(read_interpolation(job.output), job);
}
JobResults collect_hull(const Job& job) {
    return hull_rows(read_hull(job.output), job);
}
JobResults collect_plane(const Job& job) {
    return plane_rows(read_plane(job.output), job);
}

} // namespace

const std::vector<JobKindEntry>& job_kinds() {
    static const std::vector<JobKindEntry> kinds = {
        {"finetune", "fine-tune the base on one dataset with one seed (basin finetune)", finetune_rows},
        {"map", "the weight-space map of every fine-tuned model (basin map)", collect_map},
        {"interpolate", "the generalized loss along the line between two models (basin interpolate)", collect_line},
        {"extrapolate", "the same line past its endpoints (basin interpolate --extrapolate)", collect_line},
        {"hull", "In / In' / Ex of a group and PB (basin hull)", collect_hull},
        {"plane", "the loss surface on the plane through three models (basin plane)", collect_plane},
        {"centroid", "fine-tuning from the leave-one-out centroid against the base (basin init-compare)", centroid_rows,
         "runs/*/*/basin_run.json"},
        {"search", "the region of the other datasets' models searched for the lowest generalized loss (basin search)",
         search_rows},
    };
    return kinds;
}

const JobKindEntry& job_kind(const std::string& name) {
    std::string known;
    for (const auto& k : job_kinds()) {
        if (name == k.name) return k;
        known += (known.empty() ? "" : ", ") + std::string(k.name);
    }
    fail("unknown job kind '", name, "' (", known, ")");
}

JobResults collect_results(const Job& job) {
    for (const auto& k : job_kinds())
        if (job.kind == k.name) return k.collect(job);
    fail("job ", job.id, ": unknown kind ", job.kind);
}

} // namespace basin
