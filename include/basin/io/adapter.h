// PEFT LoRA adapters as zoo members. An adapter folder holds adapter_config.json (peft_type LORA,
// r, lora_alpha, target_modules, use_rslora, fan_in_fan_out, base_model_name_or_path,
// rank_pattern, alpha_pattern) and adapter_model.safetensors (or adapter_model.bin, read without
// running its pickle) with one pair of factors per adapted module under PEFT's key names:
//
//   base_model.model.<module>.lora_A[.<adapter name>].weight   A: [r, in]
//   base_model.model.<module>.lora_B[.<adapter name>].weight   B: [out, r]
//
// Its task vector is scale * B @ A on the weight <module>.weight of the base ([out, in], or
// [in, out] with fan_in_fan_out, GPT-2's Conv1D, where the stored weight's delta is (B A)^T) and
// zero everywhere else; scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora, with r and
// alpha taken from rank_pattern / alpha_pattern where a key matches the module (PEFT's rule: the
// first key k with the module name matching `.*\.k$`). Task heads trained as modules_to_save are
// not part of the body (the map leaves heads out) and are listed as ignored.
//
// Checks, each one line naming the file, the tensor, what was expected and what was found: a
// peft_type other than LORA (IA3, prefix tuning, ...) and DoRA are refused with the type named; an
// lora_A without its lora_B (or the reverse); ranks of A and B that disagree with each other or
// with the config; a module the base lacks, or factors whose product has another shape than the
// base weight; a base_model_name_or_path that names another model than the base; tensors that are
// neither factors nor a head (trained biases, modules_to_save of body modules).
#pragma once

#include "basin/io/checkpoint.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace basin {

// A folder with an adapter_config.json.
bool is_adapter_folder(const fs::path& folder);

// The base of an adapter folder: given when not empty, else its base_model_name_or_path where that
// names a model folder here (absolute, or relative to the adapter folder; basin finetune --mode
// lora writes the start's absolute path); else one error asking for the base (--adapter-base).
fs::path adapter_base_folder(const fs::path& adapter, const fs::path& given);

struct LoraConfig {
    std::string peft_type, base_model; // base_model: base_model_name_or_path
    std::int64_t r = 0;
    double alpha = 0;
    bool rslora = false, fan_in_fan_out = false;
    std::vector<std::string> target_modules; // as written (a list, or one regex)
};

// One adapted weight: its factors in the adapter file and where its product goes in the base.
struct LoraWeight {
    std::string module; // PEFT's module name without base_model.model. (e.g. encoder.layer.0.attention.self.query)
    std::string target; // the base's tensor it adapts, in the base's own spelling
    const TensorInfo* a = nullptr; // [rank, in]
    const TensorInfo* b = nullptr; // [out, rank]
    std::int64_t rank = 0, out = 0, in = 0;
    double scale = 0;
    bool transposed = false; // fan_in_fan_out: the stored weight is [in, out] and its delta (B A)^T
};

class LoraAdapter;

// The weights several adapters adapt, grouped by the base tensor (LoraWeight::target, sorted), each
// with its adapters in order as (index in adapters, weight). Two adapters that store one weight
// differently (fan_in_fan_out) are one error naming both.
using WeightsByTarget = std::map<std::string, std::vector<std::pair<std::size_t, const LoraWeight*>>>;
WeightsByTarget weights_by_target(const std::vector<std::unique_ptr<LoraAdapter>>& adapters);

class LoraAdapter {
  public:
    // Reads adapter_config.json and the factors, and checks them against the base checkpoint.
    LoraAdapter(const fs::path& folder, const CheckpointTensors& base);

    const fs::path& folder() const { return folder_; }
    const LoraConfig& config() const { return config_; }
    const std::vector<LoraWeight>& weights() const { return weights_; }  // in the file's order
    const std::vector<std::string>& ignored() const { return ignored_; } // head tensors, with why
    const SafetensorsFile& file() const { return *file_; }

    // A and B of a weight as float32, row-major (converted from the file's dtype).
    std::vector<float> a(const LoraWeight& w) const;
    std::vector<float> b(const LoraWeight& w) const;
    // scale * B A as the stored base weight's delta (transposed with fan_in_fan_out), row-major
    // float32 of the base weight's shape: materialised, for merging into a full checkpoint.
    std::vector<float> delta(const LoraWeight& w) const;

  private:
    fs::path folder_;
    LoraConfig config_;
    std::unique_ptr<SafetensorsFile> file_;
    std::vector<LoraWeight> weights_;
    std::vector<std::string> ignored_;
};

} // namespace basin
