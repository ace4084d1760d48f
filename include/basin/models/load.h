// Loading a checkpoint folder into an EncoderModel and saving one back.
#pragma once

#include "basin/io/checkpoint.h"
#include "basin/models/config.h"
#include "basin/models/encoder.h"

#include <filesystem>
#include <map>
#include <string>
#include <torch/torch.h>

namespace basin {

struct LoadOptions {
    torch::Device device = torch::kCPU;
    // false: load the body only; head tensors in the file are ignored and the model's head keeps
    // its initialisation (a new head for fine-tuning or probing).
    bool load_head = true;
    // load_body only: keep the pooler where the architecture has one (a merge of bodies keeps it;
    // features are read before it and need none)
    bool keep_pooler = false;
    // The base of a PEFT LoRA adapter folder (io/adapter.h); empty: the adapter's
    // base_model_name_or_path where that is a model folder here.
    std::filesystem::path adapter_base;
};

struct LoadedModel {
    std::filesystem::path dir;
    HfConfig hf;
    EncoderConfig config;
    EncoderModel model{nullptr};
    Dtype stored_dtype = Dtype::F32; // dtype of most floating tensors in the file
    std::map<std::string, std::string> metadata;
};

// Reads config.json and the weights of a checkpoint folder, strictly. A PEFT LoRA adapter folder
// loads as its base with each adapted weight's s B A added and the adapter's head (PEFT's
// modules_to_save; load_body drops it); its labels are its basin_run.json's, the base's, or
// LABEL_i.
LoadedModel load_model(const std::filesystem::path& dir, const LoadOptions& options = {});

// Reads only the body of any supported checkpoint (the head, if any, is dropped): the model
// returned has HeadKind::None. For features and probing.
LoadedModel load_body(const std::filesystem::path& dir, const LoadOptions& options = {});

// The checkpoint's tensor names keyed by the model's parameter names: old BERT names
// (LayerNorm.gamma/beta) and bodies saved without the "bert."/"roberta." prefix are resolved.
std::map<std::string, std::string> match_checkpoint_names(const EncoderModel& model, const CheckpointTensors& tensors);

// Copies checkpoint tensors into model parameters. Every missing, unexpected and mis-shaped
// tensor is reported in one error. Accepts old BERT names (LayerNorm.gamma/beta), bodies saved
// without the "bert."/"roberta." prefix, and tied or buffer entries transformers writes.
void load_weights(EncoderModel& model, const CheckpointTensors& tensors, const LoadOptions& options);

// Writes config.json and model.safetensors (atomically each) into dir, creating it.
void save_model(EncoderModel& model, const HfConfig& hf, const std::filesystem::path& dir, Dtype dtype = Dtype::F32,
                const std::map<std::string, std::string>& metadata = {});

// The HfConfig describing model's architecture (labels included), starting from base.
HfConfig config_for(const EncoderConfig& config, HfConfig base);

torch::Dtype torch_dtype(Dtype dtype);

} // namespace basin
