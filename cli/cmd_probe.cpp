// basin probe: the generalized loss of a model's body on a dataset (a linear probe).
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/io/safetensors.h"
#include "basin/models/load.h"
#include "basin/train/probe.h"
#include "options.h"

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace basin::cli {

Runner add_probe(CLI::App& app) {
    struct Options {
        std::string model, train, test, device = "cpu", save_head, adapter_base;
        ProbeCliOptions probe;
        int threads = 0;
        bool json = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--model", o->model, "Checkpoint folder (any head is dropped), or a LoRA adapter folder")
        ->required();
    add_adapter_base_option(app, o->adapter_base);
    app.add_option("--train", o->train, "Data the linear head is fitted on")->required();
    app.add_option("--test", o->test, "Data the generalized loss and accuracy are measured on")->required();
    o->probe.add(app);
    add_threads_option(app, o->threads);
    add_device_option(app, o->device);
    app.add_option("--save-head", o->save_head,
                   "Write the fitted head (weight, bias; float64) to this .safetensors file");
    app.add_flag("--json", o->json, "Print the result as JSON");
    return [o]() {
        set_threads(o->threads);
        LoadOptions load;
        load.device = torch::Device(check_device(o->device));
        load.adapter_base = o->adapter_base;
        auto loaded = load_body(o->model, load);
        auto tokenizer = text::Tokenizer::from_file(tokenizer_file(o->model, o->adapter_base));
        Dataset train = read_dataset(o->train), test = read_dataset(o->test);
        const FeatureOptions features = o->probe.feature_options(o->threads);
        const ProbeFitOptions& fit = o->probe.fit;
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
            nlohmann::json j = {{"model", o->model},
                                {"train", o->train},
                                {"test", o->test},
                                {"labels", r.labels},
                                {"test_loss", r.test_loss},
                                {"test_accuracy", r.test_accuracy},
                                {"train_loss", r.train_loss},
                                {"train_accuracy", r.train_accuracy},
                                {"iterations", r.iterations},
                                {"converged", r.converged},
                                {"gradient_max", r.gradient_norm},
                                {"l2", o->probe.fit.l2},
                                {"extract_seconds", r.extract_seconds},
                                {"fit_seconds", r.fit_seconds},
                                {"features_cached", r.train_cached && r.test_cached},
                                {"body_sha256", hash}};
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
