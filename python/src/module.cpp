// basin's Python extension (_basin): the library, not the command line. Checkpoints (tensors as
// numpy arrays, zero-copy views of the memory-mapped file where numpy has the dtype), merging
// with every streaming method and from mergekit configurations, and the map's Gram matrix of task
// vectors. Long calls release the GIL. Library errors raise basin.Error (a RuntimeError) with the
// library's one-line message.
#include "basin/core/error.h"
#include "basin/core/interrupt.h"
#include "basin/experiment/store.h"
#include "basin/io/checkpoint.h"
#include "basin/merge/config.h"
#include "basin/merge/merge.h"
#include "basin/space/adapter_gram.h"
#include "basin/space/given_matrix.h"
#include "basin/space/gram.h"
#include "basin/space/map.h"
#include "calls.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <memory>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

namespace py = pybind11;
using namespace basin;
using basin::python::Progress;
using basin::python::released;

namespace {

// numpy's name for a safetensors dtype, or nullptr where numpy has none (BF16, FP8)
const char* numpy_dtype(Dtype d) {
    switch (d) {
    case Dtype::BOOL:
        return "bool";
    case Dtype::U8:
        return "uint8";
    case Dtype::I8:
        return "int8";
    case Dtype::I16:
        return "int16";
    case Dtype::U16:
        return "uint16";
    case Dtype::F16:
        return "float16";
    case Dtype::I32:
        return "int32";
    case Dtype::U32:
        return "uint32";
    case Dtype::F32:
        return "float32";
    case Dtype::F64:
        return "float64";
    case Dtype::I64:
        return "int64";
    case Dtype::U64:
        return "uint64";
    default:
        return nullptr;
    }
}

// A checkpoint folder, a .safetensors file or a shard index, kept open (memory-mapped).
class Checkpoint {
  public:
    explicit Checkpoint(const std::filesystem::path& path) : tensors_(std::make_shared<CheckpointTensors>(path)) {}

    std::vector<std::string> names() const { return tensors_->names(); }

    const CheckpointTensors::Ref& ref(const std::string& name) const {
        const auto* r = tensors_->find(name);
        if (!r) throw py::key_error(tensors_->source().string() + ": no tensor '" + name + "'");
        return *r;
    }

    std::vector<std::int64_t> shape(const std::string& name) const {
        const auto& s = ref(name).info->shape;
        return {s.begin(), s.end()};
    }

    std::string dtype(const std::string& name) const { return dtype_name(ref(name).info->dtype); }

    // The tensor as a numpy array: a read-only view of the mapped file where numpy has the dtype
    // (the array keeps the file open), else (BF16, FP8) a float32 copy.
    py::array tensor(py::object self, const std::string& name) const {
        const auto& r = ref(name);
        std::vector<py::ssize_t> shape(r.info->shape.begin(), r.info->shape.end());
        if (const char* dt = numpy_dtype(r.info->dtype)) {
            py::array view(py::dtype(dt), shape, {}, r.data(), self); // `self` keeps the mapping alive
            py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
            return view;
        }
        py::array_t<float> out(shape);
        convert_to_f32(r.info->dtype, r.data(), out.mutable_data(), std::size_t(r.info->numel()));
        return std::move(out);
    }

  private:
    std::shared_ptr<CheckpointTensors> tensors_;
};

std::vector<std::filesystem::path> paths(const std::vector<std::string>& items) {
    return {items.begin(), items.end()};
}

nlohmann::json to_json(const py::handle& value) {
    return nlohmann::json::parse(py::module_::import("json").attr("dumps")(value).cast<std::string>());
}

py::object from_json(const nlohmann::json& value) {
    return py::module_::import("json").attr("loads")(value.dump());
}

// merge()'s keyword parameters: each sets one MergeOptions field (docs/MERGE.md names them).
using MergeSetter = void (*)(MergeOptions&, const py::handle&);
const std::vector<std::pair<std::string, MergeSetter>>& merge_parameters() {
    static const std::vector<std::pair<std::string, MergeSetter>> table = {
        {"lambda_", [](MergeOptions& o, const py::handle& v) { o.lambda = v.cast<double>(); }},
        {"density", [](MergeOptions& o, const py::handle& v) { o.density = v.cast<double>(); }},
        {"drop", [](MergeOptions& o, const py::handle& v) { o.drop = v.cast<double>(); }},
        {"t", [](MergeOptions& o, const py::handle& v) { o.t = v.cast<double>(); }},
        {"seed", [](MergeOptions& o, const py::handle& v) { o.seed = v.cast<std::uint64_t>(); }},
        {"sparsify", [](MergeOptions& o, const py::handle& v) { o.sparsify = v.cast<std::string>(); }},
        {"consensus", [](MergeOptions& o, const py::handle& v) { o.consensus = v.cast<std::string>(); }},
        {"normalize", [](MergeOptions& o, const py::handle& v) { o.normalize = v.cast<bool>(); }},
        {"rescale", [](MergeOptions& o, const py::handle& v) { o.rescale = v.cast<bool>(); }},
        {"gamma", [](MergeOptions& o, const py::handle& v) { o.gamma = v.cast<double>(); }},
        {"epsilon", [](MergeOptions& o, const py::handle& v) { o.epsilon = v.cast<double>(); }},
        {"select_topk", [](MergeOptions& o, const py::handle& v) { o.select_topk = v.cast<double>(); }},
        {"vectors", [](MergeOptions& o, const py::handle& v) { o.vectors = v.cast<std::string>(); }},
        {"max_iter", [](MergeOptions& o, const py::handle& v) { o.karcher_iterations = v.cast<int>(); }},
        {"tol", [](MergeOptions& o, const py::handle& v) { o.karcher_tolerance = v.cast<double>(); }},
        {"keep_head", [](MergeOptions& o, const py::handle& v) { o.keep_head = v.cast<bool>(); }},
        {"overwrite", [](MergeOptions& o, const py::handle& v) { o.overwrite = v.cast<bool>(); }},
        {"threads", [](MergeOptions& o, const py::handle& v) { o.threads = v.cast<int>(); }},
        {"adapter_out", [](MergeOptions& o, const py::handle& v) { o.adapter_out = v.cast<std::string>(); }},
        {"rank", [](MergeOptions& o, const py::handle& v) { o.adapter_rank = v.cast<std::int64_t>(); }},
    };
    return table;
}

py::object merge(const std::string& method, const std::vector<std::string>& models, const std::string& out,
                 const std::optional<std::string>& base, const std::optional<std::vector<double>>& weights,
                 const py::kwargs& parameters) {
    MergeOptions o;
    std::unique_ptr<Progress> progress;
    if (method == "regmean") // data-aware: its own function with its own parameters
        throw py::type_error("merge(): regmean reads each model's data; call basin.regmean(models, data, out)");
    o.method = parse_merge_method(method);
    o.models = paths(models), o.out = out;
    if (base) o.base = *base;
    if (weights) o.weights = *weights;
    for (const auto& [key, value] : parameters) {
        const std::string k = py::str(key);
        if (k == "progress") {
            if (!value.is_none()) progress = std::make_unique<Progress>(py::reinterpret_borrow<py::object>(value));
            continue;
        }
        const auto& table = merge_parameters();
        const auto it = std::find_if(table.begin(), table.end(),
                                     [&](const auto& p) { return p.first == (k == "lam" ? "lambda_" : k); });
        if (it == table.end()) {
            std::string known;
            for (const auto& p : table)
                known += p.first + ", ";
            throw py::type_error("merge() got an unexpected keyword argument '" + k + "' (" + known + "progress)");
        }
        it->second(o, value);
    }
    if (progress) o.progress = [&progress](std::size_t done, std::size_t total) { (*progress)(done, total); };
    const MergeResult r = released(progress.get(), [&] { return merge_checkpoints(o); });
    return from_json(r.provenance);
}

py::object merge_config(const std::string& config, const std::string& out, bool overwrite, int threads) {
    MergeOptions o;
    o.out = out, o.overwrite = overwrite, o.threads = threads;
    o = read_merge_config(config, o);
    const MergeResult r = released(nullptr, [&] { return merge_checkpoints(o); });
    return from_json(r.provenance);
}

py::array_t<double> matrix(const SquareMatrix& m) {
    const auto n = py::ssize_t(m.n);
    py::array_t<double> out({n, n});
    std::copy(m.values.begin(), m.values.end(), out.mutable_data());
    return out;
}

// The Gram matrix of the task vectors (model - base) over the body, in double, as numpy.
py::array_t<double> gram(const std::string& base, const std::vector<std::string>& models, int threads,
                         std::uint64_t memory_limit, py::object progress) {
    GramOptions o;
    o.threads = threads, o.memory_limit = memory_limit;
    Progress report(progress);
    if (!progress.is_none()) o.progress = [&report](const StreamProgress& p) { report(p.bytes_done, p.bytes_total); };
    const GramResult r = released(&report, [&] { return zoo_gram(base, paths(models), o); });
    return matrix(r.gram);
}

py::array_t<double> points(const Points& p) {
    const auto rows = py::ssize_t(p.size()), cols = py::ssize_t(p.empty() ? 0 : p[0].size());
    py::array_t<double> out({rows, cols});
    for (py::ssize_t i = 0; i < rows; ++i)
        std::copy(p[std::size_t(i)].begin(), p[std::size_t(i)].end(), out.mutable_data() + i * cols);
    return out;
}

py::dict clustering(const MapClustering& c) {
    return py::dict(py::arg("method") = c.method, py::arg("clusters") = c.clusters,
                    py::arg("group_of_cluster") = c.group_of_cluster, py::arg("accuracy") = c.accuracy,
                    py::arg("macro_f1") = c.macro_f1, py::arg("silhouette") = c.silhouette, py::arg("f1") = c.f1);
}

py::dict interval(const Interval& i) {
    return py::dict(py::arg("estimate") = i.estimate, py::arg("low") = i.low, py::arg("high") = i.high);
}

py::dict summary(const Summary& s) {
    return py::dict(py::arg("n") = s.n, py::arg("mean") = s.mean, py::arg("median") = s.median, py::arg("q05") = s.q05,
                    py::arg("q95") = s.q95);
}

py::dict permutation(const PermutationTest& t) {
    return py::dict(py::arg("statistic") = t.statistic, py::arg("p_value") = t.p_value,
                    py::arg("permutations") = t.permutations);
}

// A map record as the dict map() and map_matrix() return (the same fields as the map's folder).
py::dict map_dict(const MapRecord& r) {
    py::list kinds;
    for (const auto& k : r.kinds) {
        py::list methods;
        for (const auto& c : k.methods)
            methods.append(clustering(c));
        kinds.append(py::dict(py::arg("kind") = k.name, py::arg("groups") = k.groups, py::arg("label") = k.label,
                              py::arg("clusterings") = methods, py::arg("within") = k.similarity.within,
                              py::arg("between") = k.similarity.between,
                              py::arg("within_mean") = k.similarity.within_mean,
                              py::arg("between_mean") = k.similarity.between_mean));
    }
    py::list unlabelled;
    for (const auto& c : r.unlabelled)
        unlabelled.append(clustering(c));
    py::list nestings;
    for (const auto& n : r.nestings)
        nestings.append(py::dict(py::arg("fine") = n.fine, py::arg("coarse") = n.coarse,
                                 py::arg("same_fine") = summary(n.pairs.same_fine),
                                 py::arg("same_coarse") = summary(n.pairs.same_coarse),
                                 py::arg("different_coarse") = summary(n.pairs.different_coarse)));
    py::list kind_intervals, nesting_intervals;
    for (const auto& k : r.uncertainty.kinds)
        kind_intervals.append(py::dict(py::arg("kind") = k.kind,
                                       py::arg("spectral_accuracy") = interval(k.spectral_accuracy),
                                       py::arg("silhouette") = interval(k.silhouette)));
    for (const auto& n : r.uncertainty.nestings)
        nesting_intervals.append(py::dict(
            py::arg("fine") = n.fine, py::arg("coarse") = n.coarse, py::arg("fine_gap") = interval(n.fine_gap),
            py::arg("coarse_gap") = interval(n.coarse_gap), py::arg("fine_structure") = permutation(n.fine_structure),
            py::arg("coarse_structure") = permutation(n.coarse_structure)));
    py::dict uncertainty(py::arg("resampled_within") = r.uncertainty.resampled_kind,
                         py::arg("resamples") = r.uncertainty.resamples, py::arg("kinds") = kind_intervals,
                         py::arg("nestings") = nesting_intervals);
    // per_layer: one block per layer group of the stream, in stream order
    py::list layers;
    if (r.per_layer)
        for (std::size_t l = 0; l < r.layers.size(); ++l)
            layers.append(py::dict(py::arg("layer") = r.layers[l], py::arg("parameters") = r.layer_parameters.at(l),
                                   py::arg("cosine") = matrix(r.layer_cosine.at(l)),
                                   py::arg("distance") = matrix(r.layer_distance.at(l))));
    py::object distance = r.distance.n ? py::object(matrix(r.distance)) : py::object(py::none());
    return py::dict(py::arg("names") = r.names, py::arg("paths") = r.paths, py::arg("cosine") = matrix(r.cosine),
                    py::arg("distance") = distance, py::arg("pca") = points(r.pca.coordinates),
                    py::arg("pca_explained") = r.pca.explained, py::arg("tsne") = points(r.tsne),
                    py::arg("kinds") = kinds, py::arg("clusterings") = unlabelled, py::arg("nestings") = nestings,
                    py::arg("uncertainty") = uncertainty, py::arg("layers") = layers,
                    py::arg("not_computed") = r.not_computed);
}

MapOptions map_options(int clusters, std::uint64_t seed, std::size_t bootstrap) {
    MapOptions o;
    o.clusters = clusters, o.seed = seed, o.bootstrap = bootstrap, o.quiet = true;
    return o;
}

// The weight-space map (as `basin map` computes it; nothing written): similarity and distance
// matrices as numpy, PCA and t-SNE coordinates, and per groups-file column
// its groups, each model's label, the clusterings and their scores, within / between similarity.
py::dict map(const std::string& base, const std::vector<std::string>& models, const std::optional<std::string>& groups,
             const std::string& reference, int clusters, std::uint64_t seed, std::size_t bootstrap, bool per_layer,
             int threads, py::object progress) {
    MapOptions o = map_options(clusters, seed, bootstrap);
    o.reference = reference;
    o.gram.threads = threads, o.gram.per_layer = per_layer;
    Progress report(progress);
    if (!progress.is_none())
        o.gram.progress = [&report](const StreamProgress& p) { report(p.bytes_done, p.bytes_total); };
    const std::filesystem::path groups_file = groups ? std::filesystem::path(*groups) : std::filesystem::path();
    return map_dict(released(&report, [&] { return map_models(base, paths(models), groups_file, o); }));
}

// A numpy array argument as a square matrix of doubles: TypeError for what is not an array,
// ValueError for the wrong shape; the values themselves are the library's to check.
SquareMatrix square_matrix(const py::object& value, const char* what) {
    if (!py::isinstance<py::array>(value))
        throw py::type_error(std::string(what) + ": expected a 2-D numpy array, got " +
                             py::str(py::type::of(value).attr("__name__")).cast<std::string>());
    const auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(value);
    if (!a) throw py::type_error(std::string(what) + ": expected an array of numbers");
    if (a.ndim() != 2 || a.shape(0) != a.shape(1))
        throw py::value_error(std::string(what) + ": expected a square 2-D array, got shape " +
                              py::str(py::tuple(value.attr("shape"))).cast<std::string>());
    SquareMatrix m(std::size_t(a.shape(0)));
    std::copy(a.data(), a.data() + a.size(), m.values.begin());
    return m;
}

// Labels in memory: {kind: one label per model}, or a groups CSV naming the models.
ModelGroups groups_of(const py::object& groups, const std::vector<std::string>& names) {
    if (groups.is_none()) return {};
    if (py::isinstance<py::str>(groups) || py::hasattr(groups, "__fspath__"))
        return read_named_groups(py::str(py::module_::import("os").attr("fspath")(groups)).cast<std::string>(), names);
    if (!py::isinstance<py::dict>(groups))
        throw py::type_error("groups: expected a dict {kind: [label per model]} or a groups CSV path");
    ModelGroups g;
    for (const auto& [kind, labels] : groups.cast<py::dict>()) {
        g.kinds.push_back(py::str(kind));
        std::vector<std::string> row;
        for (const auto& label : labels)
            row.push_back(py::str(label));
        if (row.size() != names.size())
            throw py::value_error("groups['" + g.kinds.back() + "']: " + std::to_string(row.size()) + " labels for " +
                                  std::to_string(names.size()) + " models");
        g.labels.push_back(std::move(row));
    }
    return g;
}

// The map of a given matrix (as `basin map --similarity`, with --norms or --gram): the cosines, or
// a Gram matrix alone (its cosines follow), checked as the CLI checks a file.
py::dict map_matrix(const py::object& similarity, const py::object& gram, const py::object& norms,
                    const std::optional<std::vector<std::string>>& names, const py::object& groups, int clusters,
                    std::uint64_t seed, std::size_t bootstrap) {
    if (similarity.is_none() && gram.is_none()) throw py::type_error("map_matrix: give similarity, gram or both");
    if (!norms.is_none() && !gram.is_none()) throw py::type_error("map_matrix: give norms or gram, not both");
    const std::vector<std::string> given_names = names.value_or(std::vector<std::string>{});
    GivenSimilarity s;
    if (similarity.is_none()) {
        s = similarity_from_gram("gram", square_matrix(gram, "gram"), given_names);
    } else {
        s = similarity_from_values("similarity", square_matrix(similarity, "similarity"), given_names);
        if (!gram.is_none()) s.gram = gram_from_values("gram", square_matrix(gram, "gram"), s);
        if (!norms.is_none()) {
            const auto n = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(norms);
            if (!py::isinstance<py::array>(norms) || !n || n.ndim() != 1 || std::size_t(n.size()) != s.names.size())
                throw py::value_error("norms: expected a 1-D numpy array of " + std::to_string(s.names.size()) +
                                      " norms");
            std::vector<double> v(n.data(), n.data() + n.size());
            for (std::size_t i = 0; i < v.size(); ++i)
                if (!std::isfinite(v[i]) || v[i] < 0)
                    throw py::value_error("norms[" + std::to_string(i) + "] is " + std::to_string(v[i]) +
                                          "; expected a finite number, 0 or more");
            s.gram = gram_from_cosine(s.cosine, v);
        }
    }
    const ModelGroups g = groups_of(groups, s.names);
    const MapOptions o = map_options(clusters, seed, bootstrap);
    return map_dict(released(nullptr, [&] { return map_similarity(s, g, o); }));
}

// An experiment's results store (store.sqlite), opened read-only: its rows as lists of dicts.
class StoreReader {
  public:
    explicit StoreReader(const std::filesystem::path& path)
        : store_(std::make_unique<Store>(std::filesystem::is_directory(path) ? path / "store.sqlite" : path,
                                         Store::Mode::read_only)) {}

    py::list jobs() const {
        py::list out;
        for (const auto& j : store_->jobs())
            out.append(py::dict(py::arg("id") = j.id, py::arg("kind") = j.kind, py::arg("state") = j.state,
                                py::arg("key") = j.key, py::arg("error") = j.error, py::arg("output") = j.output,
                                py::arg("labels") = from_json(nlohmann::json::parse(j.labels, nullptr, false)),
                                py::arg("started") = j.started, py::arg("finished") = j.finished,
                                py::arg("seconds") = j.seconds, py::arg("attempts") = j.attempts));
        return out;
    }
    py::list metrics(const std::string& job_prefix) const {
        py::list out;
        for (const auto& m : store_->metrics(job_prefix))
            out.append(py::dict(py::arg("job") = m.job, py::arg("subject") = m.subject, py::arg("dataset") = m.dataset,
                                py::arg("metric") = m.metric, py::arg("value") = m.value));
        return out;
    }
    py::list points(const std::string& job_prefix) const {
        py::list out;
        for (const auto& p : store_->points(job_prefix))
            out.append(
                py::dict(py::arg("job") = p.job, py::arg("name") = p.name, py::arg("set") = p.set,
                         py::arg("coefficients") = from_json(nlohmann::json::parse(p.coefficients, nullptr, false))));
        return out;
    }
    py::list models() const {
        py::list out;
        for (const auto& m : store_->models())
            out.append(
                py::dict(py::arg("path") = m.path, py::arg("sha256") = m.sha256, py::arg("job") = m.job,
                         py::arg("provenance") = from_json(nlohmann::json::parse(m.provenance, nullptr, false))));
        return out;
    }
    std::optional<std::string> meta(const std::string& key) const { return store_->meta(key); }

  private:
    std::unique_ptr<Store> store_;
};

} // namespace

namespace basin::python {
bool add_torch_functions(py::module_& m); // module_torch.cpp, or module_no_torch.cpp without libtorch
}

PYBIND11_MODULE(_basin, m) {
    m.doc() = "basin: the weight space of fine-tuned language models (the C++ library, from Python)";
    static py::exception<basin::Error> error(m, "Error", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const basin::Interrupted& e) {
            PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
        } catch (const basin::Error& e) {
            error(e.what());
        }
    });

    py::class_<Checkpoint>(m, "Checkpoint", "A checkpoint folder, a .safetensors file or a shard index, memory-mapped.")
        .def(py::init<const std::filesystem::path&>(), py::arg("path"))
        .def("names", &Checkpoint::names, "Tensor names, in file order.")
        .def("shape", &Checkpoint::shape, py::arg("name"), "The tensor's shape.")
        .def("dtype", &Checkpoint::dtype, py::arg("name"), "The tensor's safetensors dtype (F32, F16, BF16, ...).")
        .def(
            "tensor",
            [](py::object self, const std::string& name) { return self.cast<const Checkpoint&>().tensor(self, name); },
            py::arg("name"),
            "The tensor as a numpy array: a read-only view of the file where numpy has the dtype, else (BF16, FP8) a "
            "float32 copy.");

    py::class_<StoreReader>(m, "Store",
                            "An experiment's results store (EXPERIMENT_DIR or its store.sqlite), read-only.")
        .def(py::init<const std::filesystem::path&>(), py::arg("path"))
        .def("jobs", &StoreReader::jobs, "Every job: id, kind, state, key, error, output, labels, times, attempts.")
        .def("metrics", &StoreReader::metrics, py::arg("job_prefix") = "",
             "Metrics (job, subject, dataset, metric, value) of the jobs whose id starts with job_prefix.")
        .def("points", &StoreReader::points, py::arg("job_prefix") = "",
             "Weight-space points (job, name, set, coefficients) of the jobs whose id starts with job_prefix.")
        .def("models", &StoreReader::models, "The fine-tuned models: path, sha256 of their weights, job, provenance.")
        .def("meta", &StoreReader::meta, py::arg("key"), "A value the runner recorded (spec, name, ...), or None.");

    m.def("merge", &merge, py::arg("method"), py::arg("models"), py::arg("out"), py::arg("base") = py::none(),
          py::arg("weights") = py::none(),
          "Merge checkpoints into the folder `out` with a streaming method (as `basin merge --method`); the "
          "method's parameters as keywords (lambda_, density, drop, t, seed, sparsify, consensus, normalize, "
          "rescale, gamma, epsilon, select_topk, vectors, max_iter, tol, keep_head), overwrite, threads, and progress "
          "(a callable, given tensors done and tensors in all after each tensor). Returns "
          "basin_merge.json.");
    m.def("merge_config", &merge_config, py::arg("config"), py::arg("out"), py::kw_only(), py::arg("overwrite") = false,
          py::arg("threads") = 0,
          "Run a mergekit YAML configuration (as `basin merge --config`). Returns basin_merge.json.");
    m.attr("has_torch") = basin::python::add_torch_functions(m);

    m.def("map", &map, py::arg("base"), py::arg("models"), py::arg("groups") = py::none(), py::kw_only(),
          py::arg("reference") = "base", py::arg("clusters") = 0, py::arg("seed") = 0, py::arg("bootstrap") = 0,
          py::arg("per_layer") = false, py::arg("threads") = 1, py::arg("progress") = py::none(),
          "The weight-space map (as basin map; nothing written): a dict with names, paths, cosine and "
          "distance (numpy [N, N]), pca and tsne (numpy [N, 2]), pca_explained, kinds (per groups-file column: "
          "groups, label, clusterings with accuracy / macro_f1 / silhouette, within / between similarity), "
          "clusterings (without groups, with clusters=K), nestings (pair levels of nested kinds), uncertainty "
          "(with bootstrap=R: intervals and permutation tests), layers (with per_layer: cosine and distance per "
          "layer group), not_computed. progress: a callable given bytes read and bytes in all.");
    m.def("map_matrix", &map_matrix, py::arg("similarity") = py::none(), py::kw_only(), py::arg("gram") = py::none(),
          py::arg("norms") = py::none(), py::arg("names") = py::none(), py::arg("groups") = py::none(),
          py::arg("clusters") = 0, py::arg("seed") = 0, py::arg("bootstrap") = 0,
          "The map of a given matrix (as basin map --similarity): similarity, a numpy [N, N] cosine matrix, "
          "and/or gram, the Gram matrix (for distances; alone, its cosines are used), or norms [N]; names (default "
          "model1..modelN); groups: {kind: [label per model]} or a groups CSV. Checked as the CLI checks a file "
          "(square, symmetric, diagonal 1, cosines in [-1, 1]). Returns the same dict as map().");
    m.def("gram", &gram, py::arg("base"), py::arg("models"), py::kw_only(), py::arg("threads") = 1,
          py::arg("memory_limit") = std::uint64_t(2) << 30, py::arg("progress") = py::none(),
          "The Gram matrix <m_i - base, m_j - base> over the body, float64 [N, N] (as `basin map` forms it); "
          "progress: a callable given bytes read and bytes in all, about once a second.");
}
