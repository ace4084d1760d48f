// RegMean (Jin et al., 2023, "Dataless Knowledge Fusion by Merging Weights of Language Models"):
// a merge that looks at data. For every linear layer y = x W^T + b, the merged W is the one whose
// outputs are closest, in least squares, to each model's own outputs on that model's inputs:
//
//     W^T = (sum_i G_i)^-1 sum_i G_i W_i^T,   G_i = X_i^T X_i over model i's tokens,
//
// X_i the layer's inputs in model i on a sample of model i's training data (padding left out),
// each G_i with its off-diagonal entries scaled by alpha (the paper's regularisation toward the
// diagonal: alpha = 0 is a per-input-feature weighted mean). Everything else (embeddings,
// LayerNorm, biases) is the mean. The inputs come from basin's own forward pass
// (set_linear_input_observer, models/encoder.h).
//
// Memory: one model at a time, plus two sums per linear layer: the Gram matrices (in x in, double)
// and sum_i G_i W_i^T (in x out, double); for BERT-base about 1.2 GB + 0.7 GB. Needs libtorch;
// `basin merge --method regmean` runs it in basin-torch. Output: a checkpoint folder like every
// merge's (body only, the first model's config and tokenizer, basin_merge.json), written atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace basin {

struct RegMeanOptions {
    std::vector<std::filesystem::path> models;
    std::vector<std::filesystem::path> data; // per model: a dataset folder (its train split) or a split file
    std::filesystem::path out;
    std::size_t examples = 256; // per model, a seeded sample of its data
    std::size_t max_length = 128, batch_size = 32;
    double alpha = 0.9;
    std::uint64_t seed = 0;
    std::string device = "cpu";
    bool overwrite = false;
    int threads = 0;
};

struct RegMeanResult {
    std::size_t linear_layers = 0, averaged = 0; // tensors solved by RegMean, tensors averaged
    std::uint64_t tokens = 0;                    // inputs seen, over the models
    double seconds = 0;
    nlohmann::json provenance;
};

RegMeanResult regmean_merge(const RegMeanOptions& options);

} // namespace basin
