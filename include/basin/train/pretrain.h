// Masked-language-model pretraining of a BERT/RoBERTa encoder from a text corpus: 15% of
// tokens selected, of which 80% become the mask token, 10% a random token and 10% stay;
// masks are drawn anew for every batch (dynamic masking). AdamW with linear warm-up and decay,
// periodic held-out MLM loss and accuracy, resumable after a kill, deterministic for a seed.
// Output: a ...ForMaskedLM checkpoint folder with basin_run.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace basin {

struct PretrainOptions {
    std::filesystem::path corpus;    // text file or folder
    std::filesystem::path tokenizer; // tokenizer.json; its vocabulary must match the config
    std::filesystem::path config;    // config.json (architecture and sizes)
    std::filesystem::path out;
    std::uint64_t seed = 0;
    std::int64_t max_steps = 1000;
    std::size_t batch_size = 32;
    std::size_t max_length = 128; // tokens per sequence, specials included
    double lr = 5e-4;
    double warmup_ratio = 0.06;
    double weight_decay = 0.01;
    double max_grad_norm = 1.0;
    double mask_prob = 0.15;
    double heldout_fraction = 0.01; // share of sequences kept for held-out evaluation
    std::int64_t eval_every = 200;  // steps between held-out evaluations (0: only at the end)
    std::size_t heldout_max = 256;  // at most this many held-out sequences are scored
    std::int64_t save_every = 0;    // steps between resumable states (0: never)
    std::string dtype = "F32";      // stored dtype of the output weights
    bool overwrite = false;
    std::string device = "cpu";
    int threads = 0;
    std::string command_line;
    std::function<void(const std::string&)> log;
    std::int64_t stop_after_step = -1; // testing: exit abruptly after this step
};

// The corpus's token stream cut into sequences: chunks of max_length - 2 tokens (the start and
// separator tokens make max_length), every `every`-th (every = round(1 / heldout_fraction), at
// least 2) held out, at most heldout_max of those scored. An error when either part is empty.
struct PretrainBlocks {
    std::size_t chunk = 0, every = 0;
    std::vector<std::size_t> train, heldout; // block indices into the stream
};
PretrainBlocks plan_pretrain_blocks(std::size_t tokens, const PretrainOptions& options);

struct HeldoutMetrics {
    std::int64_t step = 0;
    double loss = 0, accuracy = 0;
    std::int64_t tokens_seen = 0;
};

struct PretrainResult {
    std::vector<HeldoutMetrics> heldout; // in step order; the last is the final model's
    std::int64_t steps = 0;
    std::int64_t tokens_seen = 0;
    double seconds = 0, tokens_per_second = 0;
    bool resumed = false;
    nlohmann::json run_record;
};

PretrainResult pretrain(const PretrainOptions& options);

} // namespace basin
