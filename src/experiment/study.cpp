#include "study.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <algorithm>

namespace basin::report_detail {

// The finished jobs of one kind, in store order.
std::vector<std::string> done_jobs(const std::vector<JobRecord>& jobs, const std::string& kind) {
    std::vector<std::string> ids;
    for (const auto& j : jobs)
        if (j.kind == kind && j.state == "done") ids.push_back(j.id);
    return ids;
}

std::optional<SimilarityView> similarity_view(const Lookup& m, const std::vector<PointRecord>& points) {
    struct Model {
        std::string name, dataset, family;
    };
    std::vector<Model> models;
    for (const auto& p : points)
        if (p.set == "embedding") {
            const json f = json::parse(p.coefficients);
            models.push_back({p.name, f.value("dataset", ""), f.value("family", "")});
        }
    if (models.size() < 2) return std::nullopt;
    auto cosine = [&](const std::string& a, const std::string& b) {
        return a == b ? 1.0 : m.value(std::min(a, b), std::max(a, b), "cosine");
    };
    if (std::isnan(cosine(models[0].name, models[1].name))) return std::nullopt; // an older store: no matrix
    std::stable_sort(models.begin(), models.end(), [](const Model& a, const Model& b) {
        return std::tie(a.family, a.dataset) < std::tie(b.family, b.dataset);
    });
    SimilarityView view;
    for (const auto& x : models)
        if (std::find(view.datasets.begin(), view.datasets.end(), x.dataset) == view.datasets.end()) {
            view.datasets.push_back(x.dataset);
            view.tightness.push_back({x.dataset, x.family, {}, {}, {}, 0, 0});
        }
    for (auto& t : view.tightness)
        for (const auto& a : models) {
            if (a.dataset != t.dataset) continue;
            ++t.members;
            double best = -2;
            bool best_same = false;
            for (const auto& b : models) {
                if (a.name == b.name) continue;
                const double c = cosine(a.name, b.name);
                if (c > best) best = c, best_same = b.dataset == t.dataset;
                if (b.dataset == t.dataset) {
                    if (a.name < b.name) t.within.add(c);
                } else if (b.family == a.family) {
                    t.family_other.add(c);
                } else {
                    t.other.add(c);
                }
            }
            t.nearest_same += best_same;
        }
    view.values.assign(models.size(), std::vector<double>(models.size()));
    for (std::size_t i = 0; i < models.size(); ++i) {
        view.names.push_back(models[i].name);
        view.group.push_back(
            int(std::find(view.datasets.begin(), view.datasets.end(), models[i].dataset) - view.datasets.begin()));
        for (std::size_t j = 0; j < models.size(); ++j)
            view.values[i][j] = cosine(models[i].name, models[j].name);
    }
    return view;
}

std::string signed_pct(double v) {
    return (v >= 0 ? "+" : "") + format_percent(v);
}
std::string signed_fixed(double v, int digits) {
    return (v >= 0 ? "+" : "") + format_fixed(v, digits);
}

// ---- centroid versus pretrained, from one init-compare job's metrics

CentroidComparison centroid_comparison(const Lookup& m, const json& labels) {
    CentroidComparison c;
    c.mode = labels.value("mode", "");
    c.train_limit = labels.contains("train_limit") ? std::stoul(labels.value("train_limit", "0")) : 0;
    c.title = c.mode == "bitfit" ? "BitFit"
              : c.mode == "full" ? "full fine-tuning"
              : c.mode == "lora" ? "LoRA"
              : c.mode.empty()   ? "centroid"
                                 : c.mode;
    if (!c.mode.empty())
        c.title +=
            c.train_limit ? ", at most " + std::to_string(c.train_limit) + " training examples" : ", all training data";
    auto get = [&](const std::string& s, const std::string& d, const std::string& metric) {
        return m.value(s, d, metric);
    };
    double sum = 0;
    for (const auto& d : m.datasets) {
        TargetComparison t{d,
                           get("pretrained", d, "accuracy_mean"),
                           get("pretrained", d, "accuracy_std"),
                           get("centroid", d, "accuracy_mean"),
                           get("centroid", d, "accuracy_std"),
                           get("centroid - pretrained", d, "difference"),
                           get("centroid - pretrained", d, "p_value")};
        sum += t.difference;
        c.better_or_equal += t.difference >= 0;
        for (std::size_t run = 1;; ++run) {
            const double a = get("centroid", d, "accuracy_run" + std::to_string(run)),
                         b = get("pretrained", d, "accuracy_run" + std::to_string(run));
            if (std::isnan(a) || std::isnan(b)) break;
            if (c.per_seed.size() < run) c.per_seed.push_back(0);
            c.per_seed[run - 1] += (a - b) / double(m.datasets.size());
        }
        c.targets.push_back(t);
    }
    if (!c.targets.empty()) c.mean_difference = sum / double(c.targets.size());
    return c;
}

// ---- one experiment's store, read once for every section that uses it

Study load_study(const fs::path& experiment) {
    Study st;
    st.folder = experiment.lexically_normal(); // "results/x/" names its study x, like "results/x"
    if (st.folder.filename().empty()) st.folder = st.folder.parent_path();
    st.store_path = experiment / "store.sqlite";
    BASIN_CHECK(fs::exists(st.store_path), experiment.string(), ": no store.sqlite (run `basin run SPEC` first)");
    st.store = std::make_unique<Store>(st.store_path, Store::Mode::read_only); // a report writes nothing into it
    st.name = st.store->meta("name").value_or(experiment.filename().string());
    st.jobs = st.store->jobs();
    for (const auto& j : st.jobs) {
        st.job_of[j.id] = j;
        if (j.state == "done")
            ++st.done;
        else if (j.state == "failed" || j.state == "blocked")
            ++st.failed;
        else
            ++st.pending;
    }
    st.facts = json::parse(st.store->meta("datasets").value_or("{}"), nullptr, false);
    if (const auto planned = st.store->meta("jobs")) st.planned = std::stoul(*planned);
    try {
        st.spec = toml::parse(st.store->meta("spec").value_or(""));
    } catch (const toml::parse_error&) { // a store without a readable spec: the sections that need it say less
    }
    st.map_done = st.is_done("map");
    if (st.map_done) {
        st.map_points = st.store->points("map");
        st.view = similarity_view(st.metrics_of("map"), st.map_points);
    }
    return st;
}

std::vector<ModelAccuracy> finetuned_accuracies(const Study& st) {
    std::vector<ModelAccuracy> out;
    for (const auto& id : st.done_of("finetune")) {
        const json l = st.labels(id);
        const double a = st.metrics_of(id).value(l.value("model", ""), l.value("dataset", ""), "accuracy");
        if (!std::isnan(a)) out.push_back({l.value("model", ""), l.value("dataset", ""), a});
    }
    return out;
}

std::map<double, Spread> loss_by_alpha(const InterpolationRecord& line) {
    std::map<double, Spread> curve;
    for (std::size_t p = 0; p < line.alphas.size(); ++p)
        for (const auto& score : line.scores[p])
            if (!std::isnan(score.loss)) curve[line.alphas[p]].add(score.loss);
    return curve;
}

} // namespace basin::report_detail
