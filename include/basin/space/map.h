// `basin map`: the weight-space map of many checkpoints (similarity, clusters, projections,
// figures), written as one output folder.
#pragma once

#include "basin/space/analysis.h"
#include "basin/space/gram.h"

#include <cmath>
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
// The models a groups file lists in its model column (paths relative to its folder), in file
// order, read the same way (quotes, '#' comments, blank lines): for a groups file that is also
// the model list, as init-compare's zoo.
std::vector<fs::path> read_group_models(const fs::path& file);

struct MapOptions {
    GramOptions gram;
    std::string reference = "base"; // base | mean: origin of the task vectors for cosines
    int clusters = 0;               // without groups: how many clusters to look for (0: none)
    std::uint64_t seed = 0;
    bool overwrite = false;
    bool quiet = false;
};

// One clustering of the models, and how it matches a label kind's groups (the match fields stay
// empty or NaN for a run without groups).
struct MapClustering {
    std::string method;        // spectral, kmeans_pca, agglomerative
    std::vector<int> clusters; // per model
    std::vector<std::string> group_of_cluster;
    double accuracy = NAN, macro_f1 = NAN, silhouette = NAN;
    std::vector<double> f1; // per group
};

// A label kind of the groups file (dataset, family, ...) over the models the map used.
struct MapLabelKind {
    std::string name;
    std::vector<std::string> groups;    // sorted
    std::vector<int> label;             // per model: its index in groups
    std::vector<MapClustering> methods; // empty unless 2 <= groups <= models
    double silhouette_of_groups = NAN;  // the groups themselves as clusters (with methods only)
    GroupSimilarity similarity;         // mean cosine within and between groups
};

// Everything a map computed: what the output folder holds, as data. The map's stream facts (what
// was read, how fast, under what limit) come with it.
struct MapRecord {
    std::string base, reference;           // reference: base or mean
    std::vector<std::string> names;        // display names: folder names, full paths where they collide
    std::vector<std::string> paths;        // the models used, in input order
    SquareMatrix cosine, distance;         // of the task vectors (cosine from the reference)
    Projection pca;                        // 2-D PCA of the task vectors
    Points tsne;                           // 2-D t-SNE on 1 - cosine (empty below 3 models)
    std::vector<MapLabelKind> kinds;       // one per groups-file column
    std::vector<MapClustering> unlabelled; // without groups: the clusterings for --clusters
    // the layer groups of the stream ("all" unless per_layer) and, with per_layer, their matrices
    // (written to per_layer.csv, not read back)
    std::vector<std::string> layers;
    std::vector<std::int64_t> layer_parameters;
    std::vector<SquareMatrix> layer_cosine, layer_distance;
    bool per_layer = false;
    // the stream
    std::int64_t parameters = 0, chunk_parameters = 0;
    std::vector<std::pair<std::string, std::string>> excluded; // tensor, why
    std::vector<std::pair<std::string, std::string>> skipped;  // model, why
    std::string precision = "f32";
    std::uint64_t memory_limit = 0, bytes_read = 0, peak_rss = 0;
    double seconds = 0;
    int threads = 0;
};

// The map of the models: the Gram pass, similarities, projections and clusterings. Writes nothing.
MapRecord map_models(const fs::path& base, const std::vector<fs::path>& models, const fs::path& groups_file,
                     const MapOptions& options);

// The output folder from a record: similarity.csv, distance.csv, embedding.csv (numbers with 10
// significant digits), per_layer.csv (per_layer), clusters.json, summary.json, and the figures
// (pca, tsne, similarity). write_map_files fills a folder being written.
void write_map_files(const MapRecord& record, const fs::path& dir);
// The record again from such a folder (all but the per-layer tables); errors name file and place.
MapRecord read_map(const fs::path& dir);

struct MapSummary {
    std::size_t models = 0;
    std::int64_t parameters = 0;
    double seconds = 0;
    std::map<std::string, double> spectral_accuracy; // per label kind
};

// map_models, then write_map_files into `out` atomically (checked first: see check_output_folder).
MapSummary run_map(const fs::path& base, const std::vector<fs::path>& models, const fs::path& groups_file,
                   const fs::path& out, const MapOptions& options);

} // namespace basin
