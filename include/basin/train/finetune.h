// Fine-tuning a BERT/RoBERTa checkpoint for sequence classification: full, BitFit (bias terms
// and the head), head-only, or LoRA (low-rank factors on chosen linear layers and the head,
// written as a PEFT adapter folder); AdamW with linear warm-up and decay; evaluation after each epoch;
// deterministic for a seed at one thread; resumable after a kill; output written atomically as
// a Hugging Face checkpoint folder with a basin_run.json provenance record.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace basin {

enum class TrainMode { Full, BitFit, Head, Lora };
TrainMode parse_train_mode(const std::string& name);
const char* train_mode_name(TrainMode mode);

// LoRA (mode lora): each target linear layer's weight W0 [out, in] trains as W0 + scale * B A with
// A [rank, in] (PEFT's initialisation: uniform in +-1/sqrt(in), seeded) and B [out, rank] (zeros),
// scale = alpha / rank; W0 stays frozen, the head trains in full. A target names a module by its
// last components (PEFT's rule: "query" is every ...attention.self.query); only the body's linear
// layers can be targets. The output is a PEFT adapter folder (io/adapter.h reads it back): its
// adapter_config.json and adapter_model.safetensors with the factors and the head (PEFT's
// modules_to_save) under PEFT's key names, loadable with PeftModel.from_pretrained.
struct LoraOptions {
    std::int64_t rank = 8;
    double alpha = 16;
    std::vector<std::string> targets{"query", "value"}; // PEFT's default for BERT and RoBERTa
};

struct FinetuneOptions {
    std::filesystem::path model; // start checkpoint folder
    std::filesystem::path train; // labelled training data
    std::filesystem::path eval;  // optional evaluation data (after each epoch)
    std::filesystem::path out;   // output checkpoint folder
    TrainMode mode = TrainMode::Full;
    LoraOptions lora;       // mode lora only
    std::uint64_t seed = 0; // head initialisation, data order, dropout
    int epochs = 3;
    std::int64_t max_steps = -1; // optimizer steps; -1: epochs decide
    double lr = 5e-5;
    std::size_t batch_size = 32;
    int grad_accum = 1;            // micro-batches per optimizer step
    double warmup_ratio = 0.06;    // share of steps with a linear warm-up
    double weight_decay = 0.01;    // not applied to biases and LayerNorm weights
    double max_grad_norm = 1.0;    // 0: no clipping
    std::size_t max_length = 128;  // tokens per example
    std::optional<double> dropout; // overrides hidden/attention/classifier dropout
    std::size_t train_limit = 0;   // few-shot: a seeded sample of this many examples
    std::int64_t save_every = 0;   // optimizer steps between resumable states; 0: never
    bool overwrite = false;        // replace a non-empty --out
    std::string device = "cpu";
    int threads = 0;
    std::string command_line;                    // recorded in basin_run.json
    std::function<void(const std::string&)> log; // progress lines (may be empty)
    // Testing hook: stop (as if killed) right after this optimizer step; -1: never.
    std::int64_t stop_after_step = -1;
};

// How a fine-tune's steps fall: micro-batches of batch_size, grad_accum of them per optimizer
// step, epochs (or max_steps when positive, the epochs then those it needs), and the warm-up
// steps, ceil(total * warmup_ratio). finetune follows it; exposed for tests and planners.
struct StepPlan {
    std::size_t micro_batches_per_epoch = 0, steps_per_epoch = 0;
    std::int64_t total_steps = 0, warmup_steps = 0;
    int epochs = 0;
};
StepPlan plan_steps(std::size_t examples, const FinetuneOptions& options);

struct EpochMetrics {
    int epoch = 0;
    std::int64_t step = 0;
    double train_loss = 0;
    std::optional<double> eval_accuracy, eval_macro_f1, eval_loss;
};

struct FinetuneResult {
    std::vector<EpochMetrics> epochs;
    std::int64_t steps = 0;
    bool resumed = false;
    double seconds = 0;
    double examples_per_second = 0, tokens_per_second = 0;
    nlohmann::json run_record; // what basin_run.json holds
};

FinetuneResult finetune(const FinetuneOptions& options);

} // namespace basin
