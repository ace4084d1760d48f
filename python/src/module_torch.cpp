// The torch half of basin's Python extension: first-token features of a body on a dataset, the
// generalized loss (a linear probe fitted on a frozen body), as `basin probe` computes them, and
// the region studies' scores (interpolation, hull, plane) as `basin interpolate / hull / plane`
// compute them. Built where libtorch is (not with BASIN_PYTHON_ONLY: python/src/module_no_torch.cpp
// stands in).
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/io/checkpoint.h"
#include "basin/merge/regmean.h"
#include "basin/models/load.h"
#include "basin/region/points.h"
#include "basin/region/studies.h"
#include "basin/train/probe.h"
#include "calls.h"

#include <algorithm>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>
#include <thread>

namespace py = pybind11;

namespace basin::python {

namespace {

struct Loaded {
    LoadedModel model;
    text::Tokenizer tokenizer;
    std::string hash;
};

Loaded load(const std::filesystem::path& folder) {
    LoadedModel model = load_body(folder);
    auto tokenizer = text::Tokenizer::from_file(model_folder(folder) / "tokenizer.json");
    const std::string hash = body_hash(model.model);
    return {std::move(model), std::move(tokenizer), hash};
}

FeatureOptions feature_options(std::size_t max_length, std::size_t batch_size, const std::string& cache, int threads) {
    FeatureOptions f;
    f.max_length = max_length, f.batch_size = batch_size, f.threads = threads;
    if (!cache.empty()) f.cache_dir = cache;
    return f;
}

py::array_t<float> features(const std::filesystem::path& model, const std::filesystem::path& data,
                            std::size_t max_length, std::size_t batch_size, const std::string& cache, int threads) {
    const torch::Tensor values = released(nullptr, [&] {
        if (threads > 0) torch::set_num_threads(threads);
        Loaded m = load(model);
        const Dataset d = read_dataset(data);
        return extract_features(m.model.model, m.hash, m.tokenizer, d,
                                feature_options(max_length, batch_size, cache, threads))
            .values.contiguous();
    });
    py::array_t<float> out({py::ssize_t(values.size(0)), py::ssize_t(values.size(1))});
    std::memcpy(out.mutable_data(), values.data_ptr<float>(), std::size_t(values.numel()) * sizeof(float));
    return out;
}

py::dict probe_model(const std::filesystem::path& model, const std::filesystem::path& train,
                     const std::filesystem::path& test, double l2, std::size_t max_length, const std::string& cache,
                     int threads) {
    std::string hash;
    const ProbeResult r = released(nullptr, [&] {
        if (threads > 0) torch::set_num_threads(threads);
        Loaded m = load(model);
        hash = m.hash;
        ProbeFitOptions fit;
        fit.l2 = l2;
        return probe(m.model.model, m.hash, m.tokenizer, read_dataset(train), read_dataset(test),
                     feature_options(max_length, 64, cache, threads), fit);
    });
    return py::dict(py::arg("labels") = r.labels, py::arg("test_loss") = r.test_loss,
                    py::arg("test_accuracy") = r.test_accuracy, py::arg("train_loss") = r.train_loss,
                    py::arg("train_accuracy") = r.train_accuracy, py::arg("iterations") = r.iterations,
                    py::arg("converged") = r.converged, py::arg("l2") = l2, py::arg("body_sha256") = hash);
}

// What every region study takes (as the CLI's RegionOptions): target folders, the probe, the
// feature cache, and the parallelism; the same defaults.
struct RegionArgs {
    std::vector<std::string> data;
    double l2;
    std::size_t max_length, batch_size, probe_train_limit, probe_test_limit;
    std::string cache;
    int threads, jobs;
    py::object progress; // True: the CLI's lines on stderr; a callable: called with (points done, points)
    std::unique_ptr<Progress> callback;

    std::pair<std::vector<TargetDataset>, ScoreOptions> prepare() const {
        BASIN_CHECK(!data.empty(), "data: no dataset folders");
        BASIN_CHECK(jobs >= 1, "jobs must be at least 1, got ", jobs);
        std::vector<TargetDataset> targets;
        for (const auto& d : data)
            targets.push_back(read_target(d, {probe_train_limit, probe_test_limit, 0}));
        for (std::size_t i = 0; i < targets.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                BASIN_CHECK(targets[i].name != targets[j].name, "data: two datasets are named '", targets[i].name,
                            "' (", data[j], ", ", data[i], ")");
        ScoreOptions s;
        s.fit.l2 = l2;
        s.jobs = jobs;
        if (callback) {
            Progress* c = callback.get();
            s.on_point = [c](std::size_t done, std::size_t total) { (*c)(done, total); };
        } else {
            s.progress = progress.cast<bool>();
        }
        const int total = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
        torch::set_num_threads(std::max(1, total / jobs));
        s.features.max_length = max_length, s.features.batch_size = batch_size;
        s.features.threads = std::max(1, total / jobs);
        if (!cache.empty()) s.features.cache_dir = cache; // as features() and probe(): no cache unless asked
        return {std::move(targets), s};
    }
};

RegionArgs region_args(const py::object& data, double l2, std::size_t max_length, std::size_t batch_size,
                       std::size_t probe_train_limit, std::size_t probe_test_limit, const std::string& cache,
                       int threads, int jobs, const py::object& progress) {
    std::vector<std::string> folders;
    if (py::isinstance<py::str>(data) || py::hasattr(data, "__fspath__"))
        folders.push_back(py::str(py::module_::import("os").attr("fspath")(data)));
    else
        folders = data.cast<std::vector<std::string>>();
    RegionArgs args{folders, l2,   max_length, batch_size, probe_train_limit, probe_test_limit, cache,
                    threads, jobs, progress,   nullptr};
    if (!py::isinstance<py::bool_>(progress) && !progress.is_none()) {
        if (!PyCallable_Check(progress.ptr())) throw py::type_error("progress: expected True, False or a callable");
        args.callback = std::make_unique<Progress>(progress);
    } else if (progress.is_none()) {
        args.progress = py::bool_(false);
    }
    return args;
}

// scores[point][target] as two numpy arrays, loss and accuracy [points, targets]
py::dict score_arrays(const ScoreGrid& scores, const std::vector<TargetInfo>& targets) {
    const auto p = py::ssize_t(scores.size()), t = py::ssize_t(targets.size());
    py::array_t<double> loss({p, t}), accuracy({p, t});
    for (py::ssize_t i = 0; i < p; ++i)
        for (py::ssize_t j = 0; j < t; ++j) {
            loss.mutable_at(i, j) = scores[std::size_t(i)][std::size_t(j)].loss;
            accuracy.mutable_at(i, j) = scores[std::size_t(i)][std::size_t(j)].accuracy;
        }
    std::vector<std::string> names;
    for (const auto& target : targets)
        names.push_back(target.name);
    return py::dict(py::arg("targets") = names, py::arg("loss") = loss, py::arg("accuracy") = accuracy);
}

py::dict interpolate(const std::string& a, const std::string& b, const py::object& data,
                     const std::optional<std::vector<double>>& alphas, bool extrapolate, double l2,
                     std::size_t max_length, std::size_t batch_size, std::size_t probe_train_limit,
                     std::size_t probe_test_limit, const std::string& cache, int threads, int jobs,
                     const py::object& progress) {
    const RegionArgs args = region_args(data, l2, max_length, batch_size, probe_train_limit, probe_test_limit, cache,
                                        threads, jobs, progress);
    InterpolationStudy study{a, b, merge_alphas({}, alphas.value_or(parse_alphas("0:1:11"))), extrapolate, {}};
    if (extrapolate) study.alphas = merge_alphas(study.alphas, extrapolation_alphas());
    const InterpolationRecord r = released(args.callback.get(), [&] {
        auto [targets, options] = args.prepare();
        return run_interpolation(study, targets, options);
    });
    py::dict out = score_arrays(r.scores, r.targets);
    out["alphas"] = py::array_t<double>(py::ssize_t(r.alphas.size()), r.alphas.data());
    return out;
}

py::dict hull(const std::vector<std::string>& members, const py::object& data, const std::vector<std::string>& outside,
              const std::optional<std::string>& base, std::size_t samples, std::size_t random, std::uint64_t seed,
              const std::optional<std::vector<std::vector<double>>>& weights, double l2, std::size_t max_length,
              std::size_t batch_size, std::size_t probe_train_limit, std::size_t probe_test_limit,
              const std::string& cache, int threads, int jobs, const py::object& progress) {
    const RegionArgs args = region_args(data, l2, max_length, batch_size, probe_train_limit, probe_test_limit, cache,
                                        threads, jobs, progress);
    HullStudy study;
    study.members.assign(members.begin(), members.end());
    study.outside.assign(outside.begin(), outside.end());
    BASIN_CHECK(random == 0 || base, "hull: random needs base: random directions start at the pretrained model");
    BASIN_CHECK(!study.outside.empty() || random > 0, "hull: no Ex models; give outside and/or random with base");
    BASIN_CHECK(!weights || samples == 0, "hull: give samples or weights, not both");
    if (weights) study.weights = *weights;
    if (base) study.base = fs::path(*base);
    study.samples = samples, study.random = random, study.seed = seed;
    const HullRecord r = released(args.callback.get(), [&] {
        auto [targets, options] = args.prepare();
        return run_hull(study, targets, options);
    });
    py::dict out = score_arrays(r.scores, r.targets);
    py::list points;
    for (const auto& p : r.points)
        points.append(py::dict(py::arg("name") = p.name, py::arg("set") = p.set, py::arg("weights") = p.weights));
    py::list pb;
    for (const auto& row : r.pb) {
        py::dict d(py::arg("dataset") = row.dataset);
        for (std::size_t k = 0; k < kPbPairs.size(); ++k)
            d[py::str(pb_name(k))] =
                py::dict(py::arg("value") = row.values[k].value, py::arg("pairs") = row.values[k].pairs);
        pb.append(d);
    }
    out["sources"] = r.sources;
    out["points"] = points;
    out["pb"] = pb;
    return out;
}

py::dict plane(const std::vector<std::string>& models, const py::object& data, const std::string& grid, double margin,
               const std::optional<std::uint64_t>& random_seed, double extent, double l2, std::size_t max_length,
               std::size_t batch_size, std::size_t probe_train_limit, std::size_t probe_test_limit,
               const std::string& cache, int threads, int jobs, const py::object& progress) {
    const RegionArgs args = region_args(data, l2, max_length, batch_size, probe_train_limit, probe_test_limit, cache,
                                        threads, jobs, progress);
    BASIN_CHECK(random_seed ? models.size() == 1 : models.size() == 3,
                random_seed ? "plane: random_seed takes one model (A)"
                            : "plane: needs three models A B C (or one with random_seed)");
    PlaneStudy study;
    study.models.assign(models.begin(), models.end());
    std::tie(study.columns, study.rows) = parse_grid(grid, false);
    study.margin = margin, study.random_seed = random_seed, study.extent = extent;
    const PlaneRecord r = released(args.callback.get(), [&] {
        auto [targets, options] = args.prepare();
        return run_plane(study, targets, options);
    });
    py::dict out = score_arrays(r.scores, r.targets); // rows j * columns + i
    std::vector<double> u, v;
    for (std::size_t i = 0; i < r.grid.nx; ++i)
        u.push_back(r.grid.x(i));
    for (std::size_t j = 0; j < r.grid.ny; ++j)
        v.push_back(r.grid.y(j));
    py::list markers;
    for (const auto& mk : r.markers)
        markers.append(py::dict(py::arg("model") = mk.model, py::arg("u") = mk.u, py::arg("v") = mk.v));
    out["u"] = u;
    out["v"] = v;
    out["markers"] = markers;
    return out;
}

// RegMean (as basin merge --method regmean): each linear layer solved from the models' input Gram
// matrices on their own data; the rest averaged. Returns basin_merge.json.
py::object regmean(const std::vector<std::string>& models, const std::vector<std::string>& data, const std::string& out,
                   std::size_t examples, double alpha, std::size_t max_length, std::size_t batch_size,
                   std::uint64_t seed, bool overwrite, int threads) {
    RegMeanOptions o;
    o.models.assign(models.begin(), models.end());
    o.data.assign(data.begin(), data.end());
    BASIN_CHECK(o.data.size() == o.models.size(), "regmean: ", o.data.size(), " data folders for ", o.models.size(),
                " models (one per model, in model order)");
    o.out = out, o.examples = examples, o.alpha = alpha, o.max_length = max_length, o.batch_size = batch_size;
    o.seed = seed, o.overwrite = overwrite, o.threads = threads;
    const RegMeanResult r = released(nullptr, [&] { return regmean_merge(o); });
    return py::module_::import("json").attr("loads")(r.provenance.dump());
}

} // namespace

bool add_torch_functions(py::module_& m) {
    m.def("features", &features, py::arg("model"), py::arg("data"), py::kw_only(), py::arg("max_length") = 128,
          py::arg("batch_size") = 64, py::arg("cache") = "", py::arg("threads") = 0,
          "First-token features of the model's body (any head dropped) on a dataset file: float32 [N, H], "
          "as the generalized loss reads them (cached under `cache` when given).");
    m.def("probe", &probe_model, py::arg("model"), py::arg("train"), py::arg("test"), py::kw_only(),
          py::arg("l2") = 1e-3, py::arg("max_length") = 128, py::arg("cache") = "", py::arg("threads") = 0,
          "The generalized loss (as basin probe): a linear head fitted on the frozen body's features of `train`, "
          "scored on `test`; a dict with test_loss, test_accuracy, train_loss, train_accuracy, labels, ...");
    const ProbeFitOptions fit;
    const FeatureOptions features;
#define BASIN_REGION_ARGS                                                                                              \
    py::arg("l2") = fit.l2, py::arg("max_length") = features.max_length, py::arg("batch_size") = features.batch_size,  \
    py::arg("probe_train_limit") = 0, py::arg("probe_test_limit") = 0, py::arg("cache") = "", py::arg("threads") = 0,  \
    py::arg("jobs") = 1, py::arg("progress") = false
    m.def("interpolate", &interpolate, py::arg("a"), py::arg("b"), py::arg("data"), py::kw_only(),
          py::arg("alphas") = py::none(), py::arg("extrapolate") = false, BASIN_REGION_ARGS,
          "The generalized loss along the line (1 - alpha) A + alpha B (as basin interpolate; nothing written): "
          "alphas (default 0..1 in 11 points; extrapolate adds PAPER.md's points past the ends), targets, and loss "
          "and accuracy as numpy [alphas, targets]. data: dataset folders with train and test splits; cache: a "
          "feature cache folder (default: none).");
    m.def("hull", &hull, py::arg("members"), py::arg("data"), py::kw_only(),
          py::arg("outside") = std::vector<std::string>{}, py::arg("base") = py::none(), py::arg("samples") = 0,
          py::arg("random") = 0, py::arg("seed") = 0, py::arg("weights") = py::none(), BASIN_REGION_ARGS,
          "In / In' / Ex of a group and PB (as basin hull): points (name, set, weights over sources), loss and "
          "accuracy [points, targets], pb (per dataset and over all: PB(In', In), PB(In', Ex), PB(In, Ex)).");
    m.def("plane", &plane, py::arg("models"), py::arg("data"), py::kw_only(), py::arg("grid") = "21x21",
          py::arg("margin") = 0.2, py::arg("random_seed") = py::none(), py::arg("extent") = 1.0, BASIN_REGION_ARGS,
          "The loss surface on the plane through A B C (or around A with random_seed; as basin plane): u, v "
          "(the grid's coordinates), markers, and loss and accuracy [v * len(u) + u index, targets].");
#undef BASIN_REGION_ARGS
    const RegMeanOptions regmean_defaults;
    m.def("regmean", &regmean, py::arg("models"), py::arg("data"), py::arg("out"), py::kw_only(),
          py::arg("examples") = regmean_defaults.examples, py::arg("alpha") = regmean_defaults.alpha,
          py::arg("max_length") = regmean_defaults.max_length, py::arg("batch_size") = regmean_defaults.batch_size,
          py::arg("seed") = regmean_defaults.seed, py::arg("overwrite") = false, py::arg("threads") = 0,
          "RegMean (as basin merge --method regmean): each linear layer from the models' input Gram matrices on "
          "their own data (data: one dataset folder or split file per model), the rest averaged; writes the folder "
          "`out` and returns basin_merge.json.");
    return true;
}

} // namespace basin::python
