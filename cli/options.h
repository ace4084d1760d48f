// The options several commands share, bound straight to the library's option structs so that
// every default is the library's (written once, in the struct) and every help text is written
// once here. Torch commands only (probe options come from train/probe.h); the byte-size parser
// for the light commands is in commands.h.
#pragma once

#include "basin/core/fs.h"
#include "basin/core/strings.h"
#include "basin/io/adapter.h"
#include "basin/train/finetune.h"
#include "basin/train/probe.h"
#include "commands.h"

#include <string>

namespace basin::cli {

inline void add_device_option(CLI::App& app, std::string& device) {
    app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
}

inline void add_threads_option(CLI::App& app, int& threads,
                               const char* help = "Compute threads (0: libtorch's default)") {
    app.add_option("--threads", threads, help)->capture_default_str();
}

// The feature cache folder: $BASIN_CACHE/features or ~/.cache/basin/features unless --cache.
inline fs::path default_cache_dir() {
    return cache_root() / "features";
}

// A linear probe on first-token features: the fit (--l2, --max-iterations, --tolerance), the
// features (--batch-size, --max-length) and their cache (--cache, --no-cache).
struct ProbeCliOptions {
    ProbeFitOptions fit;
    FeatureOptions features;
    std::string cache;
    bool no_cache = false;

    void add(CLI::App& app) {
        app.add_option("--l2", fit.l2, "L2 penalty on the probe's weights: (l2 / 2) * ||W||^2")->capture_default_str();
        app.add_option("--max-iterations", fit.max_iterations, "L-BFGS iterations at most per probe")
            ->capture_default_str();
        app.add_option("--tolerance", fit.tolerance, "Probe converged when every gradient entry is below this")
            ->capture_default_str();
        app.add_option("--cache", cache,
                       "Feature cache folder (default: $BASIN_CACHE/features or ~/.cache/basin/features)");
        app.add_flag("--no-cache", no_cache, "Do not read or write cached features");
        app.add_option("--batch-size", features.batch_size, "Examples per forward pass")->capture_default_str();
        app.add_option("--max-length", features.max_length, "Tokens per example")->capture_default_str();
    }
    // The feature options with the cache folder resolved and the given threads.
    FeatureOptions feature_options(int threads) const {
        FeatureOptions f = features;
        f.threads = threads;
        f.cache_dir = no_cache ? fs::path() : cache.empty() ? default_cache_dir() : fs::path(cache);
        return f;
    }
};

// --adapter-base: the base of a PEFT LoRA adapter given as the model (default: the adapter's
// base_model_name_or_path where that is a folder here).
inline void add_adapter_base_option(CLI::App& app, std::string& adapter_base) {
    app.add_option("--adapter-base", adapter_base,
                   "When the model is a LoRA adapter folder: its base (default: its base_model_name_or_path)");
}

// The tokenizer.json of a model folder; an adapter folder without one uses its base's.
inline fs::path tokenizer_file(const fs::path& model, const std::string& adapter_base) {
    const fs::path own = model_folder(model) / "tokenizer.json";
    if (fs::exists(own) || !is_adapter_folder(model)) return own;
    return model_folder(adapter_base_folder(model, adapter_base)) / "tokenizer.json";
}

// LoRA's settings (mode lora): --lora-rank, --lora-alpha and --lora-targets (comma-separated,
// read into targets: call apply(lora) after parsing to set lora.targets).
struct LoraCliOptions {
    std::string targets = "query,value";

    void add(CLI::App& app, LoraOptions& lora) {
        app.add_option("--lora-rank", lora.rank, "LoRA (--mode lora): the factors' rank r")->capture_default_str();
        app.add_option("--lora-alpha", lora.alpha, "LoRA: alpha (the update is alpha / r * B A)")
            ->capture_default_str();
        app.add_option("--lora-targets", targets,
                       "LoRA: comma-separated linear layers of the body (PEFT's names: query, key, value, dense, ...)")
            ->capture_default_str();
    }
    void apply(LoraOptions& lora) const { lora.targets = split_list(targets); }
};

} // namespace basin::cli
