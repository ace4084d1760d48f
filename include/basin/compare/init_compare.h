// Which starting point is better for fine-tuning? Fine-tunes from each candidate start with the
// same settings and seeds, and compares test accuracy per seed, as mean +- std, and with a paired
// t-test over seeds. Over many targets with leave-one-dataset-out centroids of a zoo of
// fine-tuned models, it builds the layout of the paper's Tables 2 and 3 (PAPER.md).
//
// Runs are kept under the output folder (runs/<target>/<candidate>-s<seed>); a rerun reuses every
// finished run, so an interrupted comparison resumes where it stopped.
#pragma once

#include "basin/core/stats.h"
#include "basin/train/finetune.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace basin {

struct StartSettings {
    TrainMode mode = TrainMode::BitFit;
    LoraOptions lora; // mode lora: each run's output is an adapter of its start
    std::vector<std::uint64_t> seeds{1, 2, 3};
    std::size_t train_limit = 0; // few-shot: at most this many training examples (0: all)
    int epochs = 3;
    double lr = 1e-3;
    std::size_t batch_size = 32, max_length = 128;
    int threads = 0;
    std::string device = "cpu";
    // Runs at once: above 1, each target's unfinished runs are `program finetune` child processes,
    // `workers` at a time (each with `threads` threads). The results are the same as one at a
    // time: every run is deterministic on its own and none reads another's output.
    int workers = 1;
    std::filesystem::path program; // the basin program (with workers > 1)
    std::function<void(const std::string&)> log;
};

struct CandidateResult {
    std::string name;
    std::filesystem::path start;
    std::vector<double> accuracy; // per seed
    double mean = 0, std = 0;
};

struct TargetComparison {
    std::string target;
    std::size_t test_examples = 0;
    std::vector<CandidateResult> candidates; // the first is the reference of the differences
    PairedTest test;                         // second candidate against the first
    std::string outcome;                     // win / tie / loss of the second against the first
};

// Fine-tunes every candidate on target (a folder with train and test splits) with every seed.
TargetComparison compare_starts(const std::filesystem::path& target,
                                const std::vector<std::pair<std::string, std::filesystem::path>>& candidates,
                                const StartSettings& settings, const std::filesystem::path& runs);

// The paper's Table 2 / 3: for each target dataset, the centroid of the zoo's models trained on
// other datasets (zoo: CSV model,dataset[,...]; the centroid is written to out/centroids/<target>)
// against the pretrained model.
std::vector<TargetComparison> leave_one_out_centroids(const std::filesystem::path& zoo,
                                                      const std::filesystem::path& data_root,
                                                      const std::filesystem::path& pretrained,
                                                      std::vector<std::string> targets, const StartSettings& settings,
                                                      const std::filesystem::path& out);

// Writes table.md, table.csv and summary.json into out (atomically each) and returns the
// Markdown table.
std::string write_comparison_tables(const std::vector<TargetComparison>& rows, const StartSettings& settings,
                                    const std::filesystem::path& out, const nlohmann::json& inputs);

} // namespace basin
