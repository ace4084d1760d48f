// basin probe: the generalized loss of a model's body on a dataset (a linear probe).
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/io/safetensors.h"
#include "basin/models/load.h"
#include "basin/train/probe.h"
#include "commands.h"

namespace basin::cli {

fs::path default_cache_dir() { return cache_root() / "features"; }

Runner add_probe(CLI::App& app) {
    struct Options {
        std::string model, train, test, cache, device = "cpu", save_head;
        double l2 = 1e-3, tolerance = 1e-6;
        int max_iterations = 500, threads = 0;
        std::size_t batch_size = 64, max_length = 128;
        bool json = false, no_cache = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--model", o->model, "Checkpoint folder (any head is dropped)")->required();
    app.add_option("--train", o->train, "Data the linear head is fitted on")->required();
    app.add_option("--test", o->test, "Data the generalized loss and accuracy are measured on")->required();
    app.add_option("--l2", o->l2, "L2 penalty on the head's weights: (l2 / 2) * ||W||^2")->capture_default_str();
    app.add_option("--max-iterations", o->max_iterations, "L-BFGS iterations at most")->capture_default_str();
    app.add_option("--tolerance", o->tolerance, "Converged when every gradient entry is below this")->capture_default_str();
    app.add_option("--cache", o->cache, "Feature cache folder (default: $BASIN_CACHE/features or ~/.cache/basin/features)");
    app.add_flag("--no-cache", o->no_cache, "Do not read or write cached features");
    app.add_option("--batch-size", o->batch_size, "Examples per forward pass")->capture_default_str();
    app.add_option("--max-length", o->max_length, "Tokens per example")->capture_default_str();
    app.add_option("--threads", o->threads, "Compute threads (0: libtorch's default)")->capture_default_str();
    app.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
    app.add_option("--save-head", o->save_head, "Write the fitted head (weight, bias; float64) to this .safetensors file");
    app.add_flag("--json", o->json, "Print the result as JSON");
    return [o]() {
        set_threads(o->threads);
        LoadOptions load;
        load.device = torch::Device(check_device(o->device));
        auto loaded = load_body(o->model, load);
        auto tokenizer = text::Tokenizer::from_file(model_folder(o->model) / "tokenizer.json");
        Dataset train = read_dataset(o->train), test = read_dataset(o->test);
        FeatureOptions features;
        features.batch_size = o->batch_size;
        features.max_length = o->max_length;
        features.threads = o->threads;
        if (!o->no_cache) features.cache_dir = o->cache.empty() ? default_cache_dir() : fs::path(o->cache);
        ProbeFitOptions fit;
        fit.l2 = o->l2;
        fit.max_iterations = o->max_iterations;
        fit.tolerance = o->tolerance;
        const std::string hash = body_hash(loaded.model);
        ProbeResult r = probe(loaded.model, hash, tokenizer, train, test, features, fit);
        if (!o->save_head.empty()) {
            auto w = r.fit.weight.contiguous();
            auto b = r.fit.bias.contiguous();
            write_safetensors(o->save_head,
                              {{"weight", Dtype::F64, {w.size(0), w.size(1)}, w.data_ptr<double>(), {}},
                               {"bias", Dtype::F64, {b.size(0)}, b.data_ptr<double>(), {}}},
                              {{"labels", nlohmann::json(r.labels).dump()}, {"body_sha256", hash}});
        }
        if (o->json) {
            nlohmann::json j = {{"model", o->model},           {"train", o->train},
                                {"test", o->test},             {"labels", r.labels},
                                {"test_loss", r.test_loss},    {"test_accuracy", r.test_accuracy},
                                {"train_loss", r.train_loss},  {"train_accuracy", r.train_accuracy},
                                {"iterations", r.iterations},  {"converged", r.converged},
                                {"gradient_max", r.gradient_norm}, {"l2", o->l2},
                                {"extract_seconds", r.extract_seconds}, {"fit_seconds", r.fit_seconds},
                                {"features_cached", r.train_cached && r.test_cached}, {"body_sha256", hash}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("test loss      %.6f (generalized loss)\n", r.test_loss);
            std::printf("test accuracy  %.4f\n", r.test_accuracy);
            std::printf("train loss     %.6f, accuracy %.4f\n", r.train_loss, r.train_accuracy);
            std::printf("L-BFGS         %d iterations, max |gradient| %.2e, %s\n", r.iterations, r.gradient_norm,
                        r.converged ? "converged" : "NOT converged (raise --max-iterations or --l2)");
            std::printf("time           %.2f s features%s, %.2f s fitting\n", r.extract_seconds,
                        r.train_cached && r.test_cached ? " (cached)" : "", r.fit_seconds);
        }
        return 0;
    };
}

} // namespace basin::cli
