// An experiment: one TOML spec (base model, datasets with families, seeds, fine-tuning settings,
// analyses) expanded into jobs with explicit dependencies. Each job is one basin command; its key
// is the SHA-256 of its command line and of everything it reads (data files, the base model, its
// dependencies' keys), so a rerun skips finished work and redoes only what changed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace basin {

struct DatasetSpec {
    std::string name, family;
    std::vector<std::uint64_t> seeds; // its fine-tuning seeds: [experiment] seeds unless the dataset sets its own
};

// One centroid-versus-pretrained comparison (leave-one-dataset-out centroids, every dataset a target).
struct CentroidSpec {
    std::string name; // empty for a lone [centroid] table (job id "centroid"), else job id "centroid/NAME"
    std::string mode = "bitfit";
    std::vector<std::uint64_t> seeds;
    int epochs = 2;
    double lr = 1e-3;
    std::size_t train_limit = 0; // 0: all the training data
    int workers = 1;             // fine-tunes at once (init-compare --workers); not in the job's key
};

struct ExperimentSpec {
    std::filesystem::path file; // the spec itself
    std::string text;           // its text, for the report
    std::string name;
    std::filesystem::path base;      // pretrained model
    std::filesystem::path data_root; // one folder per dataset (train and test splits)
    std::filesystem::path out;       // experiment folder (store, jobs, models)
    std::vector<DatasetSpec> datasets;
    std::vector<std::uint64_t> seeds;
    int threads = 1; // threads per job (1 makes every job bitwise reproducible)
    std::size_t max_length = 64;
    // fine-tuning
    std::string mode = "full";
    int epochs = 1;
    double lr = 3e-4;
    std::size_t batch_size = 32, train_limit = 0;
    // mode "lora": each fine-tune is a PEFT adapter of the base (train/finetune.h), and the jobs that
    // read the models are given the base (--adapter-base); a lora centroid uses the same settings
    std::int64_t lora_rank = 8;
    double lora_alpha = 16;
    std::vector<std::string> lora_targets{"query", "value"};
    // analyses (a missing table in the spec turns the analysis off)
    bool map = false;
    // [map]: spectral clustering's label assignment, the geometry of k-means and PCA, and the
    // resamples of the uncertainty (docs/MAP.md)
    std::string map_assign = "discretize", map_geometry = "cosine";
    std::size_t map_bootstrap = 1000;
    bool interpolate = false;
    std::string alphas = "0:1:5";
    bool extrapolate = false;
    bool hull = false;
    std::size_t hull_random = 2;
    std::size_t hull_max_samples = 0; // 0: as many samples as members (the paper)
    bool plane = false;
    std::string plane_grid = "5x5";
    std::vector<CentroidSpec> centroids; // [centroid] or several [[centroid]] variants
    // [search]: per dataset, the region of the other datasets' models (first seed, as the
    // centroid's zoo) searched for the lowest generalized loss on it (basin search)
    bool search = false;
    std::size_t search_budget = 20;
    double search_held_out = 0.25;
    double probe_l2 = 1e-2;
    std::size_t probe_train_limit = 0, probe_test_limit = 0; // 0: whole splits
};

// Reads and checks a spec. Relative paths are taken from the spec's folder; `--set KEY=VALUE`
// style overrides (e.g. data_root=/data/suite) replace top-level [experiment] values first.
ExperimentSpec read_experiment(const std::filesystem::path& file,
                               const std::map<std::string, std::string>& overrides = {});

struct Job {
    std::string id;                // e.g. finetune/spam-s1, map, hull/dataset/spam
    std::string kind;              // finetune, map, interpolate, extrapolate, hull, plane, centroid, search
    std::vector<std::string> args; // the basin command line (without the program)
    // The last neutral_args of args say how the job runs, not what it computes (init-compare's
    // --workers): they are left out of its key, so changing them keeps its results and pieces.
    std::size_t neutral_args = 0;
    // How many of `basin run --jobs`' slots it fills while it runs: a centroid variant with
    // workers = W runs W fine-tunes at once, so it counts as W jobs (at most --jobs; not in its key).
    std::size_t slots = 1;
    std::vector<std::string> depends;                      // job ids
    std::vector<std::filesystem::path> reads;              // files whose content goes into the key
    std::filesystem::path output;                          // the folder the command writes
    std::map<std::filesystem::path, std::string> prepared; // small input files (model lists) written before it runs
    std::map<std::string, std::string> labels;             // dataset, seed, family, level, ... for the store
    std::string key;                                       // filled by expand_jobs
};

// The jobs in dependency order, with their keys.
std::vector<Job> expand_jobs(const ExperimentSpec& spec);

} // namespace basin
