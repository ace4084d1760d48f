// The torch half of basin's Python extension: first-token features of a body on a dataset, and the
// generalized loss (a linear probe fitted on a frozen body), as `basin probe` computes them. Built
// where libtorch is (not with BASIN_PYTHON_ONLY: python/src/module_no_torch.cpp stands in).
#include "basin/core/interrupt.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"
#include "basin/train/probe.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

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
    torch::Tensor values;
    {
        py::gil_scoped_release release;
        if (threads > 0) torch::set_num_threads(threads);
        Loaded m = load(model);
        const Dataset d = read_dataset(data);
        values = extract_features(m.model.model, m.hash, m.tokenizer, d,
                                  feature_options(max_length, batch_size, cache, threads))
                     .values.contiguous();
    }
    py::array_t<float> out({py::ssize_t(values.size(0)), py::ssize_t(values.size(1))});
    std::memcpy(out.mutable_data(), values.data_ptr<float>(), std::size_t(values.numel()) * sizeof(float));
    return out;
}

py::dict probe_model(const std::filesystem::path& model, const std::filesystem::path& train,
                     const std::filesystem::path& test, double l2, std::size_t max_length, const std::string& cache,
                     int threads) {
    ProbeResult r;
    std::string hash;
    {
        py::gil_scoped_release release;
        if (threads > 0) torch::set_num_threads(threads);
        Loaded m = load(model);
        hash = m.hash;
        ProbeFitOptions fit;
        fit.l2 = l2;
        r = probe(m.model.model, m.hash, m.tokenizer, read_dataset(train), read_dataset(test),
                  feature_options(max_length, 64, cache, threads), fit);
    }
    return py::dict(py::arg("labels") = r.labels, py::arg("test_loss") = r.test_loss,
                    py::arg("test_accuracy") = r.test_accuracy, py::arg("train_loss") = r.train_loss,
                    py::arg("train_accuracy") = r.train_accuracy, py::arg("iterations") = r.iterations,
                    py::arg("converged") = r.converged, py::arg("l2") = l2, py::arg("body_sha256") = hash);
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
    return true;
}

} // namespace basin::python
