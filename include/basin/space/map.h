// `basin map`: the weight-space map of many checkpoints (similarity, clusters, projections,
// figures), written as one output folder.
#pragma once

#include "basin/space/gram.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace basin {

// Reads a model list: one checkpoint folder (or glob pattern) per line; blank lines and lines
// starting with '#' are skipped; relative paths are relative to the list file's folder. Globs
// expand in sorted order. Errors: a path that does not exist, a glob that matches nothing, a
// model listed twice.
std::vector<fs::path> read_model_list(const fs::path& list);

// Group labels per model: a CSV file with a header "model,KIND[,KIND...]" (for example
// model,dataset,family) and one row per model. A row's model is a path as in the list (relative to
// the groups file's folder) or the model's folder name. Every model needs a row; a row naming no
// listed model is an error.
struct ModelGroups {
    std::vector<std::string> kinds;               // label kinds, in file order
    std::vector<std::vector<std::string>> labels; // [kind][model]
};
ModelGroups read_model_groups(const fs::path& file, const std::vector<fs::path>& models);

struct MapOptions {
    GramOptions gram;
    std::string reference = "base"; // base | mean: origin of the task vectors for cosines
    int clusters = 0;               // without groups: how many clusters to look for (0: none)
    std::uint64_t seed = 0;
    bool overwrite = false;
    bool quiet = false;
};

struct MapSummary {
    std::size_t models = 0;
    std::int64_t parameters = 0;
    double seconds = 0;
    std::map<std::string, double> spectral_accuracy; // per label kind
};

MapSummary run_map(const fs::path& base, const std::vector<fs::path>& models,
                   const fs::path& groups_file, const fs::path& out, const MapOptions& options);

} // namespace basin
