// Evaluating a sequence-classification model on a labelled dataset: accuracy, macro-F1, mean
// cross-entropy loss, and per-example predictions.
#pragma once

#include "basin/data/batching.h"
#include "basin/data/dataset.h"
#include "basin/models/encoder.h"
#include "basin/text/tokenizer.h"

#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin {

struct EvalOptions {
    std::size_t batch_size = 32;
    std::size_t max_length = 0; // 0: the model's maximum
    bool sort_by_length = true; // dynamic padding with length-sorted batches
    int threads = 0;            // tokenization threads (0 = all cores)
    bool keep_predictions = false;
    bool keep_features = false; // with keep_predictions: each example's first-token feature
};

struct Prediction {
    std::vector<float> logits;
    std::int64_t predicted = 0;
    std::int64_t label = 0;
    float loss = 0;
    std::vector<std::int32_t> input_ids;
    std::vector<float> features; // first-token output of the body [H] (before any pooler), if kept
};

struct EvalResult {
    std::size_t examples = 0;
    std::size_t tokens = 0;        // non-padding tokens
    std::size_t padded_tokens = 0; // tokens computed including padding
    double accuracy = 0, macro_f1 = 0, mean_loss = 0;
    double seconds = 0; // forward passes only
    double tokenize_seconds = 0;
    std::vector<std::string> labels;
    std::vector<double> f1_per_label;
    std::vector<Prediction> predictions; // in dataset order, when requested
};

// Macro-F1 over classes 0..num_classes-1 that occur in labels or predictions.
double macro_f1(const std::vector<std::int64_t>& labels, const std::vector<std::int64_t>& predicted,
                std::size_t num_classes, std::vector<double>* per_class = nullptr);

EvalResult evaluate(EncoderModel& model, const text::Tokenizer& tokenizer, const Dataset& data,
                    const EvalOptions& options);

// Stacks encodings into padded [B, T] tensors on device.
struct Batch {
    torch::Tensor input_ids, attention_mask, type_ids;
};
Batch collate(const std::vector<text::Encoding>& encodings, const std::vector<std::size_t>& indices,
              std::int32_t pad_id, torch::Device device);

} // namespace basin
