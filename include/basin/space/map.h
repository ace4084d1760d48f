// `basin map`: the weight-space map of many checkpoints (similarity, clusters, projections,
// figures), written as one output folder.
#pragma once

#include "basin/space/analysis.h"
#include "basin/space/given_matrix.h"
#include "basin/space/gram.h"
#include "basin/space/locate.h"
#include "basin/space/map_state.h"
#include "basin/space/uncertainty.h"

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
// The same for models known by name (a given similarity matrix's header): a row's model is one of
// the names, exactly.
ModelGroups read_named_groups(const fs::path& file, const std::vector<std::string>& names);
// The models a groups file lists in its model column (paths relative to its folder), in file
// order, read the same way (quotes, '#' comments, blank lines): for a groups file that is also
// the model list, as init-compare's zoo.
std::vector<fs::path> read_group_models(const fs::path& file);

// The geometry k-means and the PCA embedding see: the task vectors normalised to unit length
// (cosine: their Gram matrix is the cosine matrix; the default, so that the norms, which grow with
// a dataset's size, do not decide the picture), or as they are (raw Gram matrix; needs norms).
enum class MapGeometry { cosine, raw };
MapGeometry parse_map_geometry(const std::string& name); // "cosine" | "raw"
const char* map_geometry_name(MapGeometry geometry);

struct MapOptions {
    GramOptions gram;
    std::string reference = "base"; // base | mean: origin of the task vectors for cosines
    int clusters = 0;               // without groups: how many clusters to look for (0: none)
    std::uint64_t seed = 0;
    SpectralAssign assign = SpectralAssign::discretize; // how spectral clustering labels its embedding
    MapGeometry geometry = MapGeometry::cosine;
    std::size_t bootstrap = 1000;   // resamples and permutations of the uncertainty (0: none); space/uncertainty.h
    std::vector<std::string> query; // models (by name) to locate against the others' groups (space/locate.h)
    bool overwrite = false;
    bool quiet = false;
};

// One clustering of the models, and how it matches a label kind's groups (the match fields stay
// empty or NaN for a run without groups).
// Clusters are read as groups in two ways: by the optimal one-to-one assignment (Hungarian; the
// fields without a suffix) and by the majority rule (each cluster its most common group; _majority).
struct MapClustering {
    std::string method;        // spectral, kmeans_pca, agglomerative
    std::vector<int> clusters; // per model
    std::vector<std::string> group_of_cluster;
    double accuracy = NAN, macro_f1 = NAN, silhouette = NAN;
    std::vector<double> f1; // per group
    std::vector<std::string> group_of_cluster_majority;
    double accuracy_majority = NAN, macro_f1_majority = NAN;
    std::vector<double> f1_majority;
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

// Pair statistics for a label kind nested in another (dataset in family): space/analysis.h.
struct MapNesting {
    std::string fine, coarse; // label kind names
    NestedPairs pairs;
};

// One located model: its nearest models by cosine and, per group of each label kind (the located
// models left out of every group), its distances to the group's convex and affine hull with the
// convex weights; the predicted group is the one with the nearest convex hull.
struct MapGroupFit {
    std::string group;
    std::vector<std::string> members;
    double mean_cosine = NAN; // to the members: how similar the group is
    HullFit fit;
};
struct MapLocation {
    std::string model;
    std::vector<std::pair<std::string, double>> nearest; // up to 5, by cosine
    struct Kind {
        std::string kind, predicted, actual; // actual: the groups file's label
        std::vector<MapGroupFit> groups;
    };
    std::vector<Kind> kinds;
};

// Everything a map computed: what the output folder holds, as data. The map's stream facts (what
// was read, how fast, under what limit) come with it.
struct MapRecord {
    std::string base, reference;           // reference: base or mean ("given" for a given matrix)
    std::string similarity_file;           // the given matrix (empty: computed from checkpoints)
    std::string geometry = "cosine";       // of k-means and the PCA (MapGeometry); "raw" in older folders
    std::string assign = "discretize";     // of spectral clustering; "kmeans" in older folders
    std::vector<std::string> not_computed; // analyses left out, each with why (no norms for distances)
    std::vector<std::string> names;        // display names: folder names, full paths where they collide
    std::vector<std::string> paths;        // the models used, in input order
    SquareMatrix cosine, distance;         // of the task vectors (cosine from the reference); distance
                                           // empty (n = 0) without norms
    Projection pca;                        // 2-D PCA of the task vectors
    Points tsne;                           // 2-D t-SNE on 1 - cosine (empty below 3 models)
    std::vector<MapLabelKind> kinds;       // one per groups-file column
    std::vector<MapClustering> unlabelled; // without groups: the clusterings for --clusters
    std::vector<MapNesting> nestings;      // every pair of kinds where one nests in the other
    MapUncertainty uncertainty;            // bootstrap intervals and permutation tests (none: resamples 0)
    std::vector<MapLocation> locations;    // --query: written to locate.json (not read back)
    // the layer groups of the stream ("all" unless per_layer) and, with per_layer, their matrices
    // (written to per_layer.csv, not read back)
    std::vector<std::string> layers;
    std::vector<std::int64_t> layer_parameters;
    std::vector<SquareMatrix> layer_cosine, layer_distance;
    bool per_layer = false;
    // the stream
    std::int64_t parameters = 0, chunk_parameters = 0;
    std::uint64_t gram_pairs = 0; // model pairs whose products the pass formed (an update: those with a new model)
    std::vector<std::pair<std::string, std::string>> excluded; // tensor, why
    std::vector<std::pair<std::string, std::string>> skipped;  // model, why
    std::string precision = "f32";
    std::uint64_t memory_limit = 0, bytes_read = 0, peak_rss = 0;
    double seconds = 0;
    int threads = 0;
    std::size_t updated_from = 0; // --update: the models of the map it grew from (0: a full map)
    // checkpoint maps: what --update and locate need (state.json, gram.safetensors; not read back
    // by read_map: read_map_state reads it); empty for a given matrix
    MapState state;
};

// The map of the models: the Gram pass, similarities, projections and clusterings. Writes nothing.
MapRecord map_models(const fs::path& base, const std::vector<fs::path>& models, const fs::path& groups_file,
                     const MapOptions& options);

// `map --update`: the map in `dir` (its state, read_map_state) with new models added, from one pass
// over the old and new models that forms only the products with a new model (extend_gram), then
// every analysis as for map_models: equal to the map of all the models made at once (the Gram
// matrix to rounding in the last bits of the double sums). The pass settings are the state's;
// the analysis settings are options' (map_options_of gives the state's). Writes nothing.
MapRecord update_map(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models,
                     const fs::path& groups_file, const MapOptions& options);

// The analysis settings a map was made with, and its pass settings (include, exclude, precision,
// per_layer, skip_mismatched); memory, threads, output and query are left at their defaults.
MapOptions map_options_of(const MapState& state);

// `basin locate`: where new checkpoints lie against a map's groups (the labels the map kept):
// nearest models, distances to each group's convex and affine hull, weights, predicted group, as
// `map --query` reports for models inside a map, from one pass over the old and new models
// (extend_gram); the new models do not join the map. actual is empty (no label).
std::vector<MapLocation> locate_in_map(const MapState& state, const fs::path& dir,
                                       const std::vector<fs::path>& new_models, const GramOptions& pass,
                                       bool quiet = false);
// locate.json's text: one entry per located model.
std::string locations_text(const std::vector<MapLocation>& locations);

// The same analyses on a given cosine matrix (and, where given, its Gram matrix): no stream facts,
// and without a Gram matrix no distances (and no raw-geometry PCA, which is then an error).
MapRecord map_similarity(const GivenSimilarity& similarity, const fs::path& groups_file, const MapOptions& options);
// The same with the labels in memory (labels[kind][model], in the matrix's name order).
MapRecord map_similarity(const GivenSimilarity& similarity, const ModelGroups& groups, const MapOptions& options);

// The output folder from a record: similarity.csv, distance.csv, embedding.csv (numbers with 10
// significant digits), per_layer.csv (per_layer), clusters.json, summary.json, and the figures
// (pca, tsne, similarity). write_map_files fills a folder being written.
void write_map_files(const MapRecord& record, const fs::path& dir);
// The record again from such a folder (all but the per-layer tables); errors name file and place.
MapRecord read_map(const fs::path& dir);

struct MapSummary {
    std::size_t models = 0, updated_from = 0;
    std::int64_t parameters = 0;
    double seconds = 0;
    std::map<std::string, double> spectral_accuracy; // per label kind
};

// `map --sketch K` (space/sketch.h): the map of the models' CountSketches (seed sketch_seed)
// instead of their exact Gram matrix: every analysis on the estimated Gram matrix (exact norms),
// written with the models' sketches (sketches/), sketch.json and each cosine's bound
// (sketch_bound.csv). previous: a sketch map folder whose models keep their sketches (read, not
// made again: only the new models are read); empty for a new map.
struct SketchMapOptions {
    std::size_t k = 65536;
    std::uint64_t seed = 0;
    fs::path previous;
};
MapSummary run_sketch_map(const fs::path& base, const std::vector<fs::path>& new_models, const fs::path& groups_file,
                          const fs::path& out, const MapOptions& options, const SketchMapOptions& sketch);

// map_models, then write_map_files into `out` atomically (checked first: see check_output_folder).
MapSummary run_map(const fs::path& base, const std::vector<fs::path>& models, const fs::path& groups_file,
                   const fs::path& out, const MapOptions& options);
// update_map, then write_map_files into `out` (the map's own folder: replaced atomically) the same
// way.
MapSummary run_map_update(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models,
                          const fs::path& groups_file, const fs::path& out, const MapOptions& options);
// map_similarity, then write_map_files into `out` the same way.
MapSummary run_map_similarity(const GivenSimilarity& similarity, const fs::path& groups_file, const fs::path& out,
                              const MapOptions& options);

} // namespace basin
