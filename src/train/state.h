// Internal to train/: resumable training state and the pieces of a training loop shared by
// fine-tuning and pretraining (deterministic shuffles, the linear schedule).
#pragma once

#include "basin/models/encoder.h"

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin::train_detail {

// A permutation of 0..n-1 from a seed: Fisher-Yates over mt19937_64, the same on every platform
// (std::shuffle's algorithm is implementation-defined).
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed);
std::uint64_t mix_seed(std::uint64_t seed, std::int64_t salt);

// Hugging Face's linear schedule with warm-up, evaluated before optimizer step `step` (0-based).
double lr_factor(std::int64_t step, std::int64_t warmup, std::int64_t total);

// AdamW over the trainable parameters but those named in skip (LoRA's target weights, which train
// through their factors), weight decay on all but biases and LayerNorm weights.
std::unique_ptr<torch::optim::AdamW> make_adamw(EncoderModel& model, double lr, double weight_decay,
                                                const std::set<std::string>& skip = {});
void set_lr(torch::optim::Optimizer& optimizer, double lr);
void clip_gradients(torch::optim::Optimizer& optimizer, double max_norm);

// What a run is: its options and inputs (recorded in basin_run.json) and their signature, which
// covers everything that changes the result (a partial state resumes only under it).
struct RunIdentity {
    nlohmann::json options, inputs;
    std::string signature;
};
RunIdentity identify_run(nlohmann::json options, nlohmann::json inputs);

// OUT.partial/state: all parameters (F32), the optimizer state, libtorch's CPU RNG state and the
// caller's counters (JSON). A new state goes to state.tmp and is swapped in, so a kill at any
// moment leaves one complete state. The signature (of options and inputs) must match to resume.
class StateStore {
  public:
    StateStore(std::filesystem::path partial, std::string signature);
    bool exists() const;
    // true when a state exists whose signature differs from this run's
    bool foreign() const;
    void save(EncoderModel& model, torch::optim::Optimizer& optimizer, const nlohmann::json& counters);
    nlohmann::json load(EncoderModel& model, torch::optim::Optimizer& optimizer); // returns the counters
    void remove();
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path current() const { return dir_ / "state"; }
    std::filesystem::path previous() const { return dir_ / "state.old"; }
    std::filesystem::path dir_;
    std::string signature_;
};

} // namespace basin::train_detail
