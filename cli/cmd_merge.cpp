// basin merge: one checkpoint from many (the centroid and the usual model-merging methods).
#include "basin/core/error.h"
#include "basin/core/strings.h"
#include "basin/merge/config.h"
#include "basin/merge/merge.h"
#include "basin/space/map.h"
#include "commands.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

namespace basin::cli {

std::uint64_t parse_byte_size(const std::string& text, const char* option); // cmd_map.cpp

// A model list: a file (one folder or glob per line), or folders separated by commas.
std::vector<fs::path> read_models_argument(const std::string& text) {
    if (fs::is_regular_file(text)) return read_model_list(text);
    std::vector<fs::path> models;
    for (const auto& item : split_list(text)) {
        BASIN_CHECK(fs::is_directory(item), "--models: ", item,
                    " is neither a list file nor a model folder (a list file has one folder or glob per line)");
        models.emplace_back(item);
    }
    BASIN_CHECK(!models.empty(), "--models: no models in '", text, "'");
    return models;
}

// Keeps the models whose group labels match none of the KIND=VALUE rules.
std::vector<fs::path> exclude_by_group(const std::vector<fs::path>& models, const std::string& groups_file,
                                       const std::vector<std::string>& rules, nlohmann::json& record) {
    if (rules.empty()) return models;
    BASIN_CHECK(!groups_file.empty(), "--exclude needs --groups (the file that gives each model its labels)");
    const ModelGroups groups = read_model_groups(groups_file, models);
    std::vector<bool> excluded(models.size(), false);
    for (const auto& rule : rules) {
        const auto eq = rule.find('=');
        BASIN_CHECK(eq != std::string::npos && eq > 0, "--exclude '", rule,
                    "': expected KIND=VALUE, e.g. dataset=spam");
        const std::string kind = rule.substr(0, eq), value = rule.substr(eq + 1);
        const auto at = std::find(groups.kinds.begin(), groups.kinds.end(), kind);
        BASIN_CHECK(at != groups.kinds.end(), "--exclude '", rule, "': ", groups_file, " has no column '", kind, "'");
        const auto& labels = groups.labels[std::size_t(at - groups.kinds.begin())];
        bool matched = false;
        for (std::size_t i = 0; i < models.size(); ++i)
            if (labels[i] == value) excluded[i] = true, matched = true;
        BASIN_CHECK(matched, "--exclude '", rule, "': no model has ", kind, " '", value, "' in ", groups_file);
    }
    std::vector<fs::path> kept;
    nlohmann::json left_out = nlohmann::json::array();
    for (std::size_t i = 0; i < models.size(); ++i)
        if (excluded[i])
            left_out.push_back(fs::absolute(models[i]).lexically_normal().string());
        else
            kept.push_back(models[i]);
    BASIN_CHECK(!kept.empty(), "--exclude removes every model (", models.size(), " of ", models.size(), ")");
    record = {{"exclude", rules}, {"groups", groups_file}, {"excluded_models", left_out}};
    return kept;
}

namespace {
RegMeanResult (*regmean_runner)(const RegMeanOptions&) = nullptr;
}

void set_regmean_runner(RegMeanResult (*runner)(const RegMeanOptions&)) {
    regmean_runner = runner;
}

bool is_regmean_merge(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if ((std::strcmp(argv[i], "--method") == 0 && i + 1 < argc && std::strcmp(argv[i + 1], "regmean") == 0) ||
            std::strcmp(argv[i], "--method=regmean") == 0)
            return true;
    return false;
}

// merge --method regmean: the data-aware merge, in basin-torch.
int run_regmean(RegMeanOptions r, const std::vector<fs::path>& models, const std::string& data, bool quiet) {
    BASIN_CHECK(regmean_runner, "merge --method regmean needs libtorch: run it with basin (or basin-torch)");
    r.models = models;
    BASIN_CHECK(!data.empty(), "merge --method regmean needs --data: each model's training data, in model order");
    for (const auto& item : split_list(data))
        r.data.emplace_back(item);
    const RegMeanResult result = regmean_runner(r);
    if (!quiet)
        std::printf("merged %zu models (regmean): %zu linear layers solved, %zu tensors averaged, %llu tokens read "
                    "in %.2f s -> %s\n",
                    models.size(), result.linear_layers, result.averaged, (unsigned long long)result.tokens,
                    result.seconds, r.out.c_str());
    return 0;
}

Runner add_merge(CLI::App& app) {
    struct Options {
        MergeOptions merge;
        std::string method = "mean", models, base, out, groups, dtype, shard_size, config;
        std::vector<std::string> exclude;
        std::vector<double> weights;
        bool quiet = false;
        RegMeanOptions regmean;
        std::string data;
    };
    auto o = std::make_shared<Options>();
    auto* method =
        app.add_option(
               "--method", o->method,
               "mean, weighted, task-arithmetic, ties, dare, slerp, model-stock, gta (generalized "
               "task arithmetic as mergekit computes it), multislerp, karcher, nuslerp, sce or regmean (data-aware)")
            ->capture_default_str();
    auto* models = app.add_option("--models", o->models,
                                  "File listing checkpoint folders or globs (one per line), or DIR1,DIR2,...");
    app.add_option("--config", o->config,
                   "A mergekit YAML configuration (merge_method, base_model, models, parameters, ...) "
                   "instead of --method/--models/--base and the method's options");
    app.add_option("--out", o->out, "Output checkpoint folder")->required();
    auto* base = app.add_option("--base", o->base,
                                "The pretrained model (task vectors: task-arithmetic, ties, dare, model-stock, gta)");
    app.add_option("--groups", o->groups, "CSV model,KIND[,KIND...] giving each model its labels (for --exclude)");
    app.add_option("--exclude", o->exclude,
                   "Leave out models with this label, KIND=VALUE (e.g. dataset=spam); repeatable")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--weights", o->weights,
                   "weighted, gta, multislerp, nuslerp: one weight per model, comma-separated (weighted, multislerp: "
                   "normalised by their sum; nuslerp: t = w2 / (w1 + w2))")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--lambda", o->merge.lambda, "Scale of the merged task vector")->capture_default_str();
    app.add_option("--density", o->merge.density, "ties, gta: share of each task vector's entries kept")
        ->capture_default_str();
    app.add_option(
           "--sparsify", o->merge.sparsify,
           "gta: none, magnitude (largest entries), random (DARE's masks) or outliers (breadcrumbs: the "
           "largest --gamma and the smallest dropped) or della (kept with a probability rising with magnitude rank)")
        ->capture_default_str();
    app.add_option("--gamma", o->merge.gamma, "gta --sparsify outliers: share of the largest entries dropped")
        ->capture_default_str();
    app.add_option("--epsilon", o->merge.epsilon, "gta --sparsify della: spread of the keep probabilities over ranks")
        ->capture_default_str();
    app.add_option("--consensus", o->merge.consensus, "gta: sign election: none, sum or count")->capture_default_str();
    app.add_flag("--rescale", o->merge.rescale, "gta: scale sparsified task vectors back to their L1 norm");
    // (a named description: a string literal is ambiguous between two add_flag overloads in C++20)
    const std::string normalize_help = "gta: divide by the (agreeing) weights; weighted: by their sum";
    app.add_flag("--normalize,!--no-normalize", normalize_help)->each([o](const std::string& v) {
        o->merge.normalize = v != "-1" && v != "false" && v != "0";
    });
    app.add_option("--drop", o->merge.drop, "dare: probability of dropping an entry")->capture_default_str();
    app.add_option("--t", o->merge.t, "slerp, nuslerp: 0 = first model, 1 = second")->capture_default_str();
    app.add_option("--vectors", o->merge.vectors,
                   "nuslerp: SLERP of whole tensors (tensor), of each row (rows) or of each column (columns)")
        ->capture_default_str();
    app.add_option("--select-topk", o->merge.select_topk,
                   "sce: share of entries kept, those whose task vectors vary most across the models")
        ->capture_default_str();
    app.add_option("--max-iter", o->merge.karcher_iterations, "karcher: at most this many steps")
        ->capture_default_str();
    app.add_option("--tol", o->merge.karcher_tolerance, "karcher: stop when a step is shorter than this")
        ->capture_default_str();
    app.add_option("--seed", o->merge.seed, "dare: seed of the drop masks")->capture_default_str();
    app.add_option("--data", o->data,
                   "regmean: each model's training data (dataset folders or split files), comma-separated, in model "
                   "order");
    app.add_option("--examples", o->regmean.examples, "regmean: examples read per model (a seeded sample)")
        ->capture_default_str();
    app.add_option("--alpha", o->regmean.alpha, "regmean: scale of the Gram matrices' off-diagonal entries")
        ->capture_default_str();
    app.add_option("--max-length", o->regmean.max_length, "regmean: tokens per example at most")->capture_default_str();
    app.add_flag("--keep-head", o->merge.keep_head, "Keep head tensors (every input must have the same head shapes)");
    app.add_option("--dtype", o->dtype,
                   "Output dtype of floating tensors: F32, F16 or BF16 (default: as the first model)");
    app.add_option("--shard-size", o->shard_size, "Write shards of at most this size (e.g. 2G) with an index");
    app.add_option("--threads", o->merge.threads, "Threads (0: all cores)")->capture_default_str();
    app.add_option("--adapter-out", o->merge.adapter_out,
                   "LoRA adapter inputs: write one adapter instead of a full checkpoint: concat (exact, the ranks "
                   "add up) or svd (rank --rank, the discarded energy reported)");
    app.add_option("--rank", o->merge.adapter_rank, "--adapter-out svd: the merged adapter's rank");
    app.add_flag("--overwrite", o->merge.overwrite, "Replace a non-empty output folder");
    app.add_flag("--quiet", o->quiet, "Print nothing but errors");
    return [o, method, models, base]() {
        MergeOptions m = o->merge;
        m.out = o->out;
        if (!o->config.empty()) {
            for (const auto* given : {method, models, base})
                BASIN_CHECK(given->count() == 0, "merge: --config ", o->config, " names the method, models and base; ",
                            "give ", given->get_name(), " there, not on the command line");
            BASIN_CHECK(o->exclude.empty() && o->weights.empty(), "merge: --config ", o->config,
                        " holds the models and their weights (no --exclude or --weights)");
            m = read_merge_config(o->config, m);
        } else {
            BASIN_CHECK(!o->models.empty(), "merge: give --models (or --config)");
            if (o->method == "regmean") {
                RegMeanOptions r = o->regmean;
                r.out = o->out, r.seed = m.seed, r.overwrite = m.overwrite, r.threads = m.threads;
                return run_regmean(r, read_models_argument(o->models), o->data, o->quiet);
            }
            BASIN_CHECK(o->data.empty(), "merge: --data is for --method regmean");
            m.method = parse_merge_method(o->method);
            auto listed = read_models_argument(o->models);
            nlohmann::json selection;
            m.models = exclude_by_group(listed, o->groups, o->exclude, selection);
            m.extra_provenance = selection;
            m.weights = o->weights;
            m.base = o->base;
        }
        if (!o->dtype.empty()) {
            Dtype d;
            BASIN_CHECK(parse_dtype(o->dtype, &d) && (d == Dtype::F32 || d == Dtype::F16 || d == Dtype::BF16),
                        "--dtype: expected F32, F16 or BF16, got '", o->dtype, "'");
            m.dtype = d;
        }
        if (!o->shard_size.empty()) m.shard_bytes = parse_byte_size(o->shard_size, "--shard-size");
        const MergeResult r = merge_checkpoints(m);
        if (!o->quiet)
            std::printf(
                "merged %zu models (%s): %zu tensors, %zu head tensors dropped, %.2f GB read, %.2f GB written in "
                "%.2f s -> %s\n",
                m.models.size(), merge_method_name(m.method), r.tensors, r.dropped_heads, double(r.bytes_read) / 1e9,
                double(r.bytes_written) / 1e9, r.seconds, o->out.c_str());
        if (!o->quiet && r.provenance.contains("discarded_energy"))
            std::printf("rank-%lld adapter: %.4g%% of the merged task vector's energy discarded (squared singular "
                        "values dropped; per weight in basin_merge.json)\n",
                        (long long)m.adapter_rank, 100 * r.provenance["discarded_energy"]["overall"].get<double>());
        return 0;
    };
}

} // namespace basin::cli
