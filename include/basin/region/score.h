// Scoring weight-space points with the generalized loss (PAPER.md): for every point and target
// dataset, first-token features of the point's body on the dataset's train and test splits
// (cached per point, dataset and tokenizer), then a linear probe fitted on train and measured
// on test. Datasets are read and tokenized once and shared by all points; a point is built only
// when some of its features are not cached; independent points run on parallel workers.
#pragma once

#include "basin/region/records.h"
#include "basin/region/weight_space.h"
#include "basin/train/probe.h"

#include <filesystem>
#include <functional>
#include <string>
#include <torch/torch.h>
#include <vector>

namespace basin {

// A probe target: FOLDER/train.{jsonl,json,csv,tsv} and FOLDER/test.{...}.
struct TargetDataset {
    std::string name; // the folder's name
    Dataset train, test;
    std::vector<std::string> labels;
    torch::Tensor train_labels, test_labels; // class indices
    PreparedData train_prepared, test_prepared;
    std::string sample_tag; // names the sample (limits, seed) in feature cache keys
};

// Probing on large datasets: fit on a seeded sample of at most `train` examples and score on at
// most `test` (0: all). Test examples whose label the sample lacks are dropped.
struct TargetLimits {
    std::size_t train = 0, test = 0;
    std::uint64_t seed = 0;
};
// Reads both splits (errors name the folder and the files looked for). Not tokenized yet.
TargetDataset read_target(const std::filesystem::path& folder, const TargetLimits& limits = {});
// The target as records name it (files, labels, sizes, sample).
TargetInfo target_info(const TargetDataset& target);

struct NamedPoint {
    std::string name;
    Combination combination;
};

struct ScoreOptions {
    FeatureOptions features;
    ProbeFitOptions fit;
    torch::Device device = torch::kCPU;
    int jobs = 1;          // points scored at once (each worker holds one model)
    bool progress = false; // a line on stderr per point: done, rate, time left
    // called after each point with (points done, points in all), one call at a time (the Python
    // package's progress callbacks); an exception it throws stops the scoring and is rethrown
    std::function<void(std::size_t, std::size_t)> on_point;
};

// scores[p][d]: point p on target d. Targets are tokenized here if they are not yet.
ScoreGrid score_points(const WeightSpace& space, std::vector<TargetDataset>& targets,
                       const std::vector<NamedPoint>& points, const ScoreOptions& options, ScoreTimes* times = nullptr);

} // namespace basin
