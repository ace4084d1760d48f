#include "basin/eval/evaluate.h"

#include "basin/core/error.h"
#include "basin/core/interrupt.h"

#include <chrono>

namespace basin {

double macro_f1(const std::vector<std::int64_t>& labels, const std::vector<std::int64_t>& predicted,
                std::size_t num_classes, std::vector<double>* per_class) {
    std::vector<double> tp(num_classes), fp(num_classes), fn(num_classes);
    std::vector<bool> present(num_classes);
    for (std::size_t i = 0; i < labels.size(); ++i) {
        auto y = std::size_t(labels[i]), p = std::size_t(predicted[i]);
        present[y] = present[p] = true;
        if (y == p)
            tp[y] += 1;
        else {
            fp[p] += 1;
            fn[y] += 1;
        }
    }
    double sum = 0;
    std::size_t counted = 0;
    if (per_class) per_class->assign(num_classes, 0.0);
    for (std::size_t c = 0; c < num_classes; ++c) {
        if (!present[c]) continue;
        double denom = 2 * tp[c] + fp[c] + fn[c];
        double f1 = denom > 0 ? 2 * tp[c] / denom : 0.0;
        if (per_class) (*per_class)[c] = f1;
        sum += f1;
        ++counted;
    }
    return counted ? sum / double(counted) : 0.0;
}

Batch collate(const std::vector<text::Encoding>& encodings, const std::vector<std::size_t>& indices,
              std::int32_t pad_id, torch::Device device) {
    std::size_t T = 0;
    for (auto i : indices)
        T = std::max(T, encodings[i].size());
    const auto B = std::int64_t(indices.size());
    auto ids = torch::full({B, std::int64_t(T)}, pad_id, torch::kLong);
    auto mask = torch::zeros({B, std::int64_t(T)}, torch::kLong);
    auto types = torch::zeros({B, std::int64_t(T)}, torch::kLong);
    auto ids_a = ids.accessor<std::int64_t, 2>();
    auto mask_a = mask.accessor<std::int64_t, 2>();
    auto types_a = types.accessor<std::int64_t, 2>();
    for (std::int64_t b = 0; b < B; ++b) {
        const auto& e = encodings[indices[std::size_t(b)]];
        for (std::size_t t = 0; t < e.size(); ++t) {
            ids_a[b][std::int64_t(t)] = e.ids[t];
            mask_a[b][std::int64_t(t)] = 1;
            types_a[b][std::int64_t(t)] = e.type_ids[t];
        }
    }
    return {ids.to(device), mask.to(device), types.to(device)};
}

EvalResult evaluate(EncoderModel& model, const text::Tokenizer& tokenizer, const Dataset& data,
                    const EvalOptions& options) {
    const auto& config = model->config;
    BASIN_CHECK(config.head == HeadKind::SequenceClassification, "evaluating ", data.path.string(), ": the model (",
                config.architecture_name(), ") has no sequence-classification head");
    BASIN_CHECK(tokenizer.vocab_size() <= std::size_t(config.vocab_size), "evaluating: the tokenizer has ",
                tokenizer.vocab_size(), " tokens but the model's vocab_size is ", config.vocab_size);
    const std::size_t model_max = std::size_t(config.max_positions - config.position_offset());
    const std::size_t max_length = options.max_length ? std::min(options.max_length, model_max) : model_max;
    const auto labels = map_labels(data, config.labels);

    EvalResult result;
    result.labels = config.labels;
    result.examples = data.examples.size();
    auto t0 = std::chrono::steady_clock::now();
    auto tokenized = tokenize_examples(data, tokenizer, max_length, options.threads);
    auto t1 = std::chrono::steady_clock::now();
    result.tokenize_seconds = std::chrono::duration<double>(t1 - t0).count();
    result.tokens = tokenized.total_tokens;
    for (const auto& e : tokenized.encodings)
        for (auto id : e.ids)
            BASIN_CHECK(id >= 0 && id < config.vocab_size, "evaluating: token id ", id,
                        " is outside the model's vocabulary (", config.vocab_size, ")");

    const torch::Device device = model->parameters().front().device();
    const std::int32_t pad_id = std::int32_t(config.pad_token_id);
    auto batches = make_batches(tokenized.encodings, options.batch_size, options.sort_by_length);

    std::vector<std::int64_t> predicted(data.examples.size());
    std::vector<double> losses(data.examples.size());
    if (options.keep_predictions) result.predictions.resize(data.examples.size());
    model->eval();
    torch::InferenceMode inference;
    auto t2 = std::chrono::steady_clock::now();
    for (const auto& batch_indices : batches) {
        check_interrupted("evaluating");
        Batch batch = collate(tokenized.encodings, batch_indices, pad_id, device);
        result.padded_tokens += std::size_t(batch.input_ids.numel());
        auto hidden = model->body(batch.input_ids, batch.attention_mask, batch.type_ids);
        auto logits = model->classify_hidden(hidden).to(torch::kCPU, torch::kFloat32);
        torch::Tensor first;
        if (options.keep_predictions && options.keep_features)
            first = hidden.select(1, 0).to(torch::kCPU, torch::kFloat32).contiguous();
        std::vector<std::int64_t> targets;
        for (auto i : batch_indices)
            targets.push_back(labels[i]);
        auto target = torch::tensor(targets, torch::kLong);
        auto loss = torch::nn::functional::cross_entropy(
            logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
        auto argmax = logits.argmax(1);
        auto logits_a = logits.accessor<float, 2>();
        for (std::size_t k = 0; k < batch_indices.size(); ++k) {
            const std::size_t i = batch_indices[k];
            predicted[i] = argmax[std::int64_t(k)].item<std::int64_t>();
            losses[i] = loss[std::int64_t(k)].item<double>();
            if (options.keep_predictions) {
                auto& p = result.predictions[i];
                p.logits.assign(&logits_a[std::int64_t(k)][0], &logits_a[std::int64_t(k)][0] + logits.size(1));
                p.predicted = predicted[i];
                p.label = labels[i];
                p.loss = float(losses[i]);
                p.input_ids = tokenized.encodings[i].ids;
                if (first.defined()) {
                    const float* row = first.data_ptr<float>() + std::int64_t(k) * first.size(1);
                    p.features.assign(row, row + first.size(1));
                }
            }
        }
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
    double correct = 0, loss_sum = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        correct += predicted[i] == labels[i];
        loss_sum += losses[i];
    }
    result.accuracy = correct / double(labels.size());
    result.mean_loss = loss_sum / double(labels.size());
    result.macro_f1 = macro_f1(labels, predicted, config.labels.size(), &result.f1_per_label);
    return result;
}

} // namespace basin
