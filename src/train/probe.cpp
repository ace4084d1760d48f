#include "basin/train/probe.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/data/batching.h"
#include "basin/eval/evaluate.h"
#include "basin/io/safetensors.h"

#include <chrono>
#include <cstring>
#include <set>

namespace basin {

namespace {

torch::Tensor objective(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& w, const torch::Tensor& b,
                        double l2) {
    auto logits = torch::addmm(b, x, w.t());
    return torch::nn::functional::cross_entropy(logits, y) + 0.5 * l2 * w.pow(2).sum();
}

} // namespace

ProbeFit fit_probe(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t num_classes,
                   const ProbeFitOptions& options) {
    BASIN_CHECK(features.dim() == 2 && labels.dim() == 1 && features.size(0) == labels.size(0),
                "fit_probe: ", "expected features [N, H] and labels [N]");
    BASIN_CHECK(features.size(0) > 0, "fit_probe: no training examples");
    torch::NoGradGuard outer; // re-enabled below for the closure
    // Standardise with the training statistics (first-token features of a model can vary very
    // little across examples, which makes the problem ill-conditioned); the fitted head is
    // folded back so that it applies to raw features.
    auto raw = features.to(torch::kCPU, torch::kDouble);
    auto mean = raw.mean(0);
    auto scale = raw.std(0, /*unbiased=*/false).clamp_min(1e-8);
    auto x = ((raw - mean) / scale).contiguous();
    auto y = labels.to(torch::kCPU, torch::kLong);
    auto w = torch::zeros({num_classes, x.size(1)}, torch::kDouble).set_requires_grad(true);
    auto b = torch::zeros({num_classes}, torch::kDouble).set_requires_grad(true);
    torch::optim::LBFGS optimizer({w, b}, torch::optim::LBFGSOptions(1.0)
                                              .max_iter(1)
                                              .history_size(20)
                                              .tolerance_grad(0.0)
                                              .tolerance_change(0.0)
                                              .line_search_fn("strong_wolfe"));
    auto closure = [&]() {
        torch::AutoGradMode enable(true);
        optimizer.zero_grad();
        auto loss = objective(x, y, w, b, options.l2);
        loss.backward();
        return loss;
    };
    ProbeFit fit;
    auto gradient_norm = [&]() {
        torch::AutoGradMode enable(true);
        w.mutable_grad() = torch::Tensor();
        b.mutable_grad() = torch::Tensor();
        auto loss = objective(x, y, w, b, options.l2);
        auto grads = torch::autograd::grad({loss}, {w, b});
        return std::max(grads[0].abs().max().item<double>(), grads[1].abs().max().item<double>());
    };
    fit.gradient_norm = gradient_norm();
    double previous_loss = std::numeric_limits<double>::infinity();
    while (fit.iterations < options.max_iterations && fit.gradient_norm >= options.tolerance) {
        const double loss = optimizer.step(closure).item<double>();
        ++fit.iterations;
        fit.gradient_norm = gradient_norm();
        if (loss == previous_loss) break; // no progress possible at double precision
        previous_loss = loss;
    }
    fit.converged = fit.gradient_norm < options.tolerance;
    fit.weight = (w.detach() / scale).contiguous();
    fit.bias = (b.detach() - fit.weight.mv(mean)).contiguous();
    auto [loss, accuracy] = probe_loss_accuracy(fit, features, labels);
    fit.train_loss = loss;
    fit.train_accuracy = accuracy;
    return fit;
}

std::pair<double, double> probe_loss_accuracy(const ProbeFit& fit, const torch::Tensor& features,
                                              const torch::Tensor& labels) {
    torch::NoGradGuard no_grad;
    auto x = features.to(torch::kCPU, torch::kDouble);
    auto y = labels.to(torch::kCPU, torch::kLong);
    auto logits = torch::addmm(fit.bias, x, fit.weight.t());
    const double loss = torch::nn::functional::cross_entropy(logits, y).item<double>();
    const double accuracy = logits.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
    return {loss, accuracy};
}

std::string body_hash(EncoderModel& model) {
    Sha256 h;
    for (const auto& item : model->named_parameters()) {
        if (model->is_head_parameter(item.key())) continue;
        auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
        const std::string header = item.key() + shape_string(Shape(t.sizes().begin(), t.sizes().end()));
        h.update(header.data(), header.size());
        h.update(t.data_ptr<float>(), std::size_t(t.numel()) * 4);
    }
    return h.hex_digest();
}

PreparedData prepare_features(const Dataset& data, const text::Tokenizer& tokenizer, const EncoderConfig& config,
                              const FeatureOptions& options, bool tokenize) {
    PreparedData out;
    out.data = &data;
    const std::size_t model_max = std::size_t(config.max_positions - config.position_offset());
    out.max_length = std::min(options.max_length ? options.max_length : model_max, model_max);
    out.data_sha256 = sha256_file(data.path);
    out.tokenizer_sha256 = tokenizer.spec_sha256(); // the same key as before: SHA-256 of the canonical JSON
    if (tokenize) out.tokens = tokenize_examples(data, tokenizer, out.max_length, options.threads);
    return out;
}

fs::path feature_cache_file(const std::string& model_hash, const PreparedData& data, const FeatureOptions& options) {
    if (options.cache_dir.empty()) return {};
    const std::string key_text = "first-token-features-v1|" + model_hash + "|" + data.data_sha256 + "|" +
                                 std::to_string(data.max_length) + "|" + data.tokenizer_sha256;
    return options.cache_dir / (sha256_hex(key_text.data(), key_text.size()) + ".safetensors");
}

std::optional<torch::Tensor> read_cached_features(const fs::path& file, std::int64_t examples, std::int64_t hidden) {
    if (file.empty() || !fs::exists(file)) return std::nullopt;
    try {
        SafetensorsFile cached(file);
        const auto& info = cached.at("features");
        if (info.dtype != Dtype::F32 || info.shape != Shape{examples, hidden}) return std::nullopt;
        auto values = torch::empty({examples, hidden}, torch::kFloat32);
        std::memcpy(values.data_ptr<float>(), cached.data(info), info.nbytes());
        return values;
    } catch (const Error&) {
        return std::nullopt; // a damaged cache entry is recomputed and replaced
    }
}

Features extract_features(EncoderModel& model, const std::string& model_hash, const PreparedData& data,
                          const FeatureOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    const auto& config = model->config;
    const auto examples = std::int64_t(data.data->examples.size());
    Features out;
    const fs::path cache_file = feature_cache_file(model_hash, data, options);
    if (auto cached = read_cached_features(cache_file, examples, config.hidden_size)) {
        out.values = *cached;
        out.from_cache = true;
        out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return out;
    }
    const auto& encodings = data.tokens.encodings;
    auto batches = make_batches(encodings, options.batch_size, /*sort_by_length=*/true);
    const torch::Device device = model->parameters().front().device();
    out.values = torch::empty({examples, config.hidden_size}, torch::kFloat32);
    model->eval();
    {
        torch::InferenceMode inference;
        for (const auto& indices : batches) {
            check_interrupted("computing features");
            Batch batch = collate(encodings, indices, std::int32_t(config.pad_token_id), device);
            auto f =
                model->features(batch.input_ids, batch.attention_mask, batch.type_ids).to(torch::kCPU, torch::kFloat32);
            auto index = torch::tensor(std::vector<std::int64_t>(indices.begin(), indices.end()), torch::kLong);
            out.values.index_copy_(0, index, f);
        }
    }
    if (!cache_file.empty()) {
        fs::create_directories(options.cache_dir);
        write_safetensors(
            cache_file,
            {{"features", Dtype::F32, {out.values.size(0), out.values.size(1)}, out.values.data_ptr<float>(), {}}},
            {{"model", model_hash},
             {"data", data.data->path.string()},
             {"max_length", std::to_string(data.max_length)}});
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

Features extract_features(EncoderModel& model, const std::string& model_hash, const text::Tokenizer& tokenizer,
                          const Dataset& data, const FeatureOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    // tokenizing is skipped on a cache hit
    PreparedData prepared = prepare_features(data, tokenizer, model->config, options, /*tokenize=*/false);
    if (auto cached = read_cached_features(feature_cache_file(model_hash, prepared, options),
                                           std::int64_t(data.examples.size()), model->config.hidden_size)) {
        Features out;
        out.values = *cached;
        out.from_cache = true;
        out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return out;
    }
    prepared.tokens = tokenize_examples(data, tokenizer, prepared.max_length, options.threads);
    Features out = extract_features(model, model_hash, prepared, options);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

std::vector<std::string> probe_labels(const Dataset& train, const Dataset& test) {
    auto labels = train.label_names();
    BASIN_CHECK(labels.size() >= 2, train.path.string(), ": a probe needs at least 2 labels, found ", labels.size());
    const std::set<std::string> known(labels.begin(), labels.end());
    for (const auto& ex : test.examples)
        BASIN_CHECK(known.count(ex.label), test.path.string(), ":", ex.line, ": label '", ex.label,
                    "' does not occur in the training data ", train.path.string());
    return labels;
}

ProbeResult probe(EncoderModel& model, const std::string& model_hash, const text::Tokenizer& tokenizer,
                  const Dataset& train, const Dataset& test, const FeatureOptions& feature_options,
                  const ProbeFitOptions& fit_options) {
    ProbeResult result;
    result.labels = probe_labels(train, test);
    auto y_train = torch::tensor(map_labels(train, result.labels), torch::kLong);
    auto y_test = torch::tensor(map_labels(test, result.labels), torch::kLong);
    auto f_train = extract_features(model, model_hash, tokenizer, train, feature_options);
    auto f_test = extract_features(model, model_hash, tokenizer, test, feature_options);
    result.extract_seconds = f_train.seconds + f_test.seconds;
    result.train_cached = f_train.from_cache;
    result.test_cached = f_test.from_cache;
    const auto start = std::chrono::steady_clock::now();
    result.fit = fit_probe(f_train.values, y_train, std::int64_t(result.labels.size()), fit_options);
    result.fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.iterations = result.fit.iterations;
    result.converged = result.fit.converged;
    result.gradient_norm = result.fit.gradient_norm;
    result.train_loss = result.fit.train_loss;
    result.train_accuracy = result.fit.train_accuracy;
    std::tie(result.test_loss, result.test_accuracy) = probe_loss_accuracy(result.fit, f_test.values, y_test);
    return result;
}

} // namespace basin
