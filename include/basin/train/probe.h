// Linear probing: the generalized loss of PAPER.md. The body is frozen and any head dropped;
// the first-token vector after the encoder (what RoBERTa's classification head reads) is
// extracted once per (weights, data, max length) and cached; a multinomial logistic regression
// with L2 is fitted on the training features with full-batch L-BFGS in double precision, and
// its loss and accuracy are reported on the test features.
#pragma once

#include "basin/data/batching.h"
#include "basin/data/dataset.h"
#include "basin/models/encoder.h"
#include "basin/text/tokenizer.h"

#include <filesystem>
#include <optional>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin {

// Features are standardised with the training set's mean and standard deviation before the fit,
// and the head is folded back to apply to raw features; the L2 penalty acts on the weights of
// the standardised problem.
struct ProbeFitOptions {
    double l2 = 1e-3; // penalty (l2 / 2) * ||W||^2 on the (standardised) weights, not the bias
    int max_iterations = 500;
    double tolerance = 1e-6; // converged when the gradient's largest entry is below this
};

struct ProbeFit {
    torch::Tensor weight; // [L, H] float64
    torch::Tensor bias;   // [L] float64
    int iterations = 0;
    double gradient_norm = 0; // max |gradient| at the end
    bool converged = false;
    double train_loss = 0, train_accuracy = 0;
};

// Fits the head on features [N, H] with labels [N] in 0..num_classes-1.
ProbeFit fit_probe(const torch::Tensor& features, const torch::Tensor& labels, std::int64_t num_classes,
                   const ProbeFitOptions& options = {});
// Mean cross-entropy and accuracy of a fitted head on features.
std::pair<double, double> probe_loss_accuracy(const ProbeFit& fit, const torch::Tensor& features,
                                              const torch::Tensor& labels);

// SHA-256 of a model's body parameters (names, shapes, float32 values), for cache keys.
std::string body_hash(EncoderModel& model);

struct FeatureOptions {
    std::size_t batch_size = 64;
    std::size_t max_length = 128;
    std::filesystem::path cache_dir; // empty: no cache
    int threads = 0;
};

struct Features {
    torch::Tensor values; // [N, H] float32
    bool from_cache = false;
    double seconds = 0;
};

// A dataset tokenized once, with the hashes that key its cached features: shared by every
// weight-space point scored on it.
struct PreparedData {
    const Dataset* data = nullptr;
    std::string data_sha256, tokenizer_sha256;
    std::size_t max_length = 0; // after clamping to the model's positions
    TokenizedExamples tokens;
};
// tokenize = false: hashes only (enough to look features up in the cache).
PreparedData prepare_features(const Dataset& data, const text::Tokenizer& tokenizer, const EncoderConfig& config,
                              const FeatureOptions& options, bool tokenize = true);

// Where the features of (model, data) are cached; empty without a cache folder.
std::filesystem::path feature_cache_file(const std::string& model_hash, const PreparedData& data,
                                         const FeatureOptions& options);
// The cached features, if present and of the expected size [examples, hidden].
std::optional<torch::Tensor> read_cached_features(const std::filesystem::path& file, std::int64_t examples,
                                                  std::int64_t hidden);

// First-token features of every example, from the cache when the key matches.
Features extract_features(EncoderModel& model, const std::string& model_hash, const PreparedData& data,
                          const FeatureOptions& options);
Features extract_features(EncoderModel& model, const std::string& model_hash, const text::Tokenizer& tokenizer,
                          const Dataset& data, const FeatureOptions& options);

struct ProbeResult {
    std::vector<std::string> labels;
    double test_loss = 0, test_accuracy = 0, train_loss = 0, train_accuracy = 0;
    int iterations = 0;
    bool converged = false;
    double gradient_norm = 0;
    double extract_seconds = 0, fit_seconds = 0;
    bool train_cached = false, test_cached = false;
    ProbeFit fit;
};

// The probe's classes: the training labels (at least two); every test label must be among them.
std::vector<std::string> probe_labels(const Dataset& train, const Dataset& test);

ProbeResult probe(EncoderModel& model, const std::string& model_hash, const text::Tokenizer& tokenizer,
                  const Dataset& train, const Dataset& test, const FeatureOptions& features,
                  const ProbeFitOptions& fit);

} // namespace basin
