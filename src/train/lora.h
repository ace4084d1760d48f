// Internal to train/: LoRA fine-tuning on the encoder as it is, without LoRA layers in its forward.
//
// Algorithm. Each target linear layer keeps its weight tensor W, and W always holds
// W0 + s * B A (W0 the start's weight, s = alpha / rank). The forward and backward passes are the
// model's own, so they give dL/dW = G; the factors' gradients follow from the chain rule,
// dL/dA = s B^T G and dL/dB = s G A^T (exact, not an approximation), and after the optimizer has
// stepped A and B, W is set to W0 + s B A again. This is LoRA with lora_dropout 0: PEFT's
// W0 x + s B (A x) and basin's (W0 + s B A) x differ by float rounding only.
//
// Memory: W0, A and B per target ([out, in] + rank * (out + in) floats) besides the model, and G
// for the targets (what full fine-tuning of those layers would hold too). The factors are
// registered on their linear layer as parameters lora_A and lora_B, so a resumable state saves and
// restores them with the rest; W itself trains only through them (skipped by the optimizer).
#pragma once

#include "basin/models/encoder.h"
#include "basin/train/finetune.h"

#include <filesystem>
#include <set>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin::train_detail {

class LoraTrainer {
  public:
    // Finds the targets among the body's linear layers (one error listing what a target may name
    // when one matches nothing), registers their factors, initialised from seed, and marks W as
    // needing its gradient. Call after the model is on its device and its other parameters'
    // requires_grad are set; options are checked already (check_finetune_options).
    LoraTrainer(EncoderModel& model, const LoraOptions& options, std::uint64_t seed);

    // After backward: the factors' gradients from the targets' (which are then cleared).
    void factor_gradients();
    // After the optimizer step (and after restoring a resumable state): W = W0 + s B A.
    void merge();

    // Names of the target weights (the optimizer must not step them).
    std::set<std::string> target_weights() const;
    std::int64_t factor_parameters() const;

    // The PEFT adapter folder's two files in folder: adapter_config.json and
    // adapter_model.safetensors (the factors, then the model's head under its own names, as PEFT
    // saves modules_to_save); base names the start model (base_model_name_or_path).
    void write_adapter(const std::filesystem::path& folder, const EncoderModel& model,
                       const std::filesystem::path& base) const;

  private:
    struct Target {
        std::string module; // e.g. roberta.encoder.layer.0.attention.self.query
        torch::nn::LinearImpl* layer = nullptr;
        torch::Tensor w0, a, b; // W0 [out, in] (detached copy), A [rank, in], B [out, rank]
    };
    LoraOptions options_;
    double scale_ = 0;
    std::vector<Target> targets_;
};

} // namespace basin::train_detail
