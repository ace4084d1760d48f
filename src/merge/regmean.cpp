#include "basin/merge/regmean.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/data/batching.h"
#include "basin/eval/evaluate.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <torch/torch.h>

namespace basin {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A seeded sample of at most n examples of a dataset folder's train split (or of a split file).
Dataset sample_of(const fs::path& data, std::size_t n, std::uint64_t seed) {
    Dataset d = read_dataset(fs::is_directory(data) ? find_split(data, "train") : data);
    BASIN_CHECK(!d.examples.empty(), d.path.string(), ": no examples");
    if (d.examples.size() > n) {
        std::mt19937_64 rng(seed);
        std::shuffle(d.examples.begin(), d.examples.end(), rng);
        d.examples.resize(n);
    }
    return d;
}

// Per linear layer of the body (by parameter name of its weight): the running sums.
struct LayerSums {
    torch::Tensor gram;   // sum_i G_i (alpha-scaled), [in, in] double
    torch::Tensor target; // sum_i G_i W_i^T, [in, out] double
};

// The Gram matrix of every linear layer's inputs in `model` over `data` (padding left out).
std::map<std::string, torch::Tensor> input_grams(EncoderModel& model, const text::Tokenizer& tokenizer,
                                                 const Dataset& data, const RegMeanOptions& o, std::uint64_t& tokens) {
    std::map<const torch::nn::LinearImpl*, std::string> names;
    for (const auto& item : model->body->named_modules())
        if (const auto* linear = item.value()->as<torch::nn::LinearImpl>()) names[linear] = item.key();
    std::map<std::string, torch::Tensor> grams;
    torch::Tensor keep; // [B, T] bool: the batch's real tokens
    set_linear_input_observer([&](const torch::nn::LinearImpl& layer, const torch::Tensor& input) {
        const auto it = names.find(&layer);
        if (it == names.end()) return;
        const torch::Tensor x = (input.dim() == 3 ? input.index({keep}) : input).to(torch::kFloat64);
        auto& g = grams[it->second];
        const torch::Tensor xtx = torch::matmul(x.t(), x);
        g = g.defined() ? g.add_(xtx) : xtx;
    });
    struct Reset {
        ~Reset() { set_linear_input_observer({}); }
    } reset;
    const auto& c = model->config;
    const auto encodings =
        tokenize_examples(data, tokenizer, std::min(o.max_length, std::size_t(c.max_positions - c.position_offset())));
    const torch::Device device = model->parameters().front().device();
    model->eval();
    torch::NoGradGuard no_grad;
    for (const auto& indices : make_batches(encodings.encodings, o.batch_size, true)) {
        check_interrupted("RegMean: reading the layers' inputs");
        Batch batch = collate(encodings.encodings, indices, std::int32_t(model->config.pad_token_id), device);
        keep = batch.attention_mask.to(torch::kBool);
        tokens += std::uint64_t(keep.sum().item<std::int64_t>());
        const torch::Tensor hidden = model->body->forward(batch.input_ids, batch.attention_mask, batch.type_ids);
        if (model->body->pooler) model->body->pooler->forward(hidden);
    }
    return grams;
}

} // namespace

RegMeanResult regmean_merge(const RegMeanOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    BASIN_CHECK(!o.models.empty(), "merge --method regmean: no models given");
    BASIN_CHECK(o.data.size() == o.models.size(), "merge --method regmean: ", o.data.size(), " data folders for ",
                o.models.size(), " models (--data gives each model its own training data, in order)");
    BASIN_CHECK(o.alpha >= 0 && o.alpha <= 1, "merge --method regmean: --alpha must be in [0, 1], got ", o.alpha);
    BASIN_CHECK(o.examples >= 1 && o.batch_size >= 1 && o.max_length >= 2,
                "merge --method regmean: --examples, the batch size and the length must be positive");
    for (const auto& d : o.data)
        BASIN_CHECK(fs::exists(d), "--data: ", d.string(), " not found");
    const fs::path out = check_output_folder(o.out, o.overwrite);
    if (o.threads > 0) torch::set_num_threads(o.threads);
    LoadOptions load;
    load.device = torch::Device(o.device);
    load.keep_pooler = true; // BERT's pooler is body (merge.h): merged like the rest

    RegMeanResult result;
    std::map<std::string, LayerSums> sums;
    std::map<std::string, torch::Tensor> means; // sum over models of every other parameter
    LoadedModel first;
    json models = json::array();
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        LoadedModel m = load_body(o.models[i], load);
        const auto tokenizer = text::Tokenizer::from_file(model_folder(o.models[i]) / "tokenizer.json");
        const Dataset data = sample_of(o.data[i], o.examples, o.seed + i);
        auto grams = input_grams(m.model, tokenizer, data, o, result.tokens);
        for (const auto& p : m.model->body->named_parameters()) {
            const std::string& name = p.key();
            const torch::Tensor value = p.value().detach().to(torch::kCPU, torch::kFloat64);
            const auto dot = name.rfind('.');
            const std::string module = name.substr(0, dot);
            if (name.substr(dot + 1) == "weight" && grams.count(module)) {
                torch::Tensor g = grams.at(module).cpu();
                g = o.alpha * g + (1 - o.alpha) * torch::diag(torch::diag(g)); // off-diagonal scaled by alpha
                auto& s = sums[name];
                const torch::Tensor target = torch::matmul(g, value.t());
                s.gram = s.gram.defined() ? s.gram.add_(g) : g;
                s.target = s.target.defined() ? s.target.add_(target) : target;
            } else {
                auto& s = means[name];
                s = s.defined() ? s.add_(value) : value.clone();
            }
        }
        models.push_back({{"path", fs::absolute(o.models[i]).lexically_normal().string()},
                          {"sha256", checkpoint_weights_sha256(model_folder(o.models[i]))},
                          {"data", fs::absolute(data.path).lexically_normal().string()},
                          {"examples", data.examples.size()}});
        if (i == 0) first = std::move(m);
    }
    // the merged parameters, into the first model's body
    {
        torch::NoGradGuard no_grad;
        for (auto& p : first.model->body->named_parameters()) {
            torch::Tensor merged;
            if (const auto it = sums.find(p.key()); it != sums.end()) {
                // a tiny ridge keeps the system solvable where an input feature is never non-zero
                const auto& s = it->second;
                const double ridge = 1e-10 * std::max(1e-30, s.gram.diagonal().mean().item<double>());
                const torch::Tensor a = s.gram + ridge * torch::eye(s.gram.size(0), s.gram.options());
                merged = at::linalg_solve(a, s.target, /*left=*/true).t(); // (torch::linalg is not in 2.x's torch.h)
                ++result.linear_layers;
            } else {
                merged = means.at(p.key()) / double(o.models.size());
                ++result.averaged;
            }
            p.value().copy_(merged.to(p.value().dtype()));
        }
    }
    result.provenance = {{"format", "basin-merge-v1"},
                         {"method", "regmean"},
                         {"parameters",
                          {{"alpha", o.alpha},
                           {"examples", o.examples},
                           {"max_length", o.max_length},
                           {"seed", o.seed},
                           {"tokens", result.tokens}}},
                         {"models", models},
                         {"tensors_merged", result.linear_layers + result.averaged},
                         {"tensors_solved", result.linear_layers}};
    const fs::path source = model_folder(o.models[0]);
    write_folder_atomically(out, [&](const fs::path& dir) {
        save_model(first.model, config_for(first.config, first.hf), dir, first.stored_dtype,
                   {{"basin_merge", "regmean"}});
        copy_tokenizer_files(source, dir);
        write_text_atomically(dir / "basin_merge.json", result.provenance.dump(2) + "\n");
    });
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace basin
