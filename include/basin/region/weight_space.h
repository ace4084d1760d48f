// Points in the weight space of checkpoints that share one architecture: linear combinations of
// their bodies plus seeded random directions, written into one model at a time. The sources stay
// memory-mapped; building a point reads each source tensor once per point and never holds more
// than the model being built (plus one tensor of scratch).
#pragma once

#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"
#include "basin/models/config.h"
#include "basin/models/encoder.h"
#include "basin/text/tokenizer.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin {

enum class DirectionKind {
    // Xavier-normal per tensor (std sqrt(2 / (fan_in + fan_out))), the random-direction baseline of
    // PAPER.md. One-dimensional tensors (biases, LayerNorm) have no Xavier scale and stay at zero.
    Xavier,
    // Gaussian, each filter (slice along dim 0) rescaled to the norm of the same filter of a source
    // (Li et al., 2018, "Visualizing the Loss Landscape"); one-dimensional tensors stay at zero.
    FilterNormalized,
};

struct RandomDirection {
    std::uint64_t seed = 0;
    double coefficient = 1; // the point moves by coefficient * direction
    DirectionKind kind = DirectionKind::Xavier;
    std::size_t relative_to = 0; // FilterNormalized: the source whose filter norms it copies
};

// sum_i weights[i] * source_i + sum_k random[k].coefficient * direction_k, over the body.
struct Combination {
    std::vector<double> weights; // one per source (missing trailing entries are 0)
    std::vector<RandomDirection> random;
};

class WeightSpace {
  public:
    // sources[0] fixes the architecture (config.json, tokenizer.json). Every source's body must
    // have sources[0]'s body tensors with the same shapes (heads are ignored); otherwise one error
    // names the source and the tensor.
    // A source may be a PEFT LoRA adapter folder (io/adapter.h): its weights are adapter_base's with
    // each adapted tensor's s B A added (formed when the tensor is read); without adapter_base, an
    // adapter's base_model_name_or_path where that is a model folder here (else one error asking
    // for it). The base also fixes the architecture when sources[0] is an adapter.
    explicit WeightSpace(const std::vector<std::filesystem::path>& sources,
                         const std::filesystem::path& adapter_base = {});
    ~WeightSpace();

    std::size_t size() const { return sources_.size(); }
    const std::filesystem::path& source(std::size_t i) const { return sources_.at(i).dir; }
    // SHA-256 of the source's weights (all shards), for cache keys; computed once, on first use.
    const std::string& source_hash(std::size_t i) const;
    const EncoderConfig& config() const { return config_; }
    const text::Tokenizer& tokenizer() const;                             // sources[0]'s tokenizer.json
    const std::vector<std::string>& body_names() const { return names_; } // model parameter names
    std::int64_t body_numel() const;

    // A model of the architecture without head or pooler (weights unset), on device.
    EncoderModel new_model(torch::Device device = torch::kCPU) const;
    // Writes the combination into model's body (a model from new_model).
    void build(const Combination& point, EncoderModel& model) const;
    // The combination's values of one body tensor (float32, CPU).
    torch::Tensor tensor(const Combination& point, std::size_t index) const;
    // One body tensor of a source (float32, CPU).
    torch::Tensor source_tensor(std::size_t source, std::size_t index) const;
    // One body tensor of a direction, before its coefficient (float32, CPU).
    torch::Tensor direction_tensor(const RandomDirection& direction, std::size_t index) const;
    // ||direction|| over the body, before its coefficient.
    double direction_norm(const RandomDirection& direction) const;
    // G[i][j] = <source_i - source_o, source_j - source_o> over the body, in double precision.
    std::vector<std::vector<double>> gram(std::size_t origin) const;
    // A stable text naming the combination by its sources' hashes, for cache keys.
    std::string point_key(const Combination& point) const;

  private:
    struct Source {
        std::filesystem::path dir;
        std::unique_ptr<CheckpointTensors> tensors;
        std::vector<const CheckpointTensors::Ref*> body; // in names_ order
        std::unique_ptr<LoraAdapter> adapter;            // an adapter: tensors are its base's
        std::vector<const LoraWeight*> delta;            // per body tensor: the adapter's weight on it, or null
        mutable std::string hash;
    };
    std::vector<Source> sources_;
    EncoderConfig config_;
    std::unique_ptr<text::Tokenizer> tokenizer_;
    std::vector<std::string> names_;
    std::vector<std::vector<std::int64_t>> shapes_;
};

// Scale that moves a random direction to a given norm: target / ||direction||.
double scale_to_norm(const WeightSpace& space, const RandomDirection& direction, double target_norm);

// The mean norm of the task vectors source_i - source_origin over the given members.
double mean_task_vector_norm(const WeightSpace& space, std::size_t origin, const std::vector<std::size_t>& members);

} // namespace basin
