// What a map folder keeps so that it can grow and answer queries with one pass over new models:
// `basin map --update DIR --models NEW` (the map of old and new models, equal to a full
// recomputation) and `basin locate DIR --models NEW` (where new checkpoints lie among the map's
// groups). Both stream the old and the new models once and form only the N_new x (N_old + N_new)
// products that involve a new model (GramOptions::known); the old block comes from here.
//
// Files: gram.safetensors holds the Gram matrices of the task vectors as float64 [N, N] tensors
// ("gram", and "layer/<group>" per layer group with --per-layer): exact, unlike the CSV tables'
// 10 digits. state.json holds the base and every model with the digest of what the pass read of it
// (GramResult::digests: XXH3 of its body's bytes; an update reads the old models again and refuses
// to go on when one no longer gives its digest), the body's digest (the tensors the task vectors
// are made of, so that new models that change it are refused), the settings of the pass (which
// cannot change in an update) and of the analyses (which an update takes unless given again), and
// the models' labels per kind. The digests are not SHA-256 of the files: hashing every file before
// a map would cost more than the map (about 1 GB/s against the pass's 3-8 GB/s), while the pass
// digests what it reads anyway; heads, which the map leaves out, may change freely. Torch-free.
#pragma once

#include "basin/space/gram.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace basin {

struct MapState {
    std::string base; // absolute path
    std::uint64_t base_digest = 0;
    std::vector<std::string> paths;     // per model, in the map's order; absolute
    std::vector<std::uint64_t> digests; // per model (GramResult::digests)
    // the pass
    std::string include, exclude, precision = "f32";
    bool per_layer = false, skip_mismatched = false;
    std::int64_t parameters = 0;
    std::string body_sha256; // of the body's tensor names (GramResult::body), one per line
    std::vector<std::string> layers;
    std::vector<std::int64_t> layer_parameters;
    SquareMatrix gram;
    std::vector<SquareMatrix> layer_gram; // per layer group (per_layer only)
    // the analyses
    std::string reference = "base", assign = "discretize", geometry = "cosine";
    std::string groups; // the groups file (absolute; empty: none)
    std::uint64_t seed = 0;
    std::size_t bootstrap = 1000;
    int clusters = 0;
    // labels per kind of the groups file, per model
    std::vector<std::string> kinds;
    std::vector<std::vector<std::string>> labels; // [kind][model]

    bool empty() const { return paths.empty(); }
};

// The digest a state keeps of a body.
std::string body_digest(const std::vector<std::string>& body);

// state.json and gram.safetensors into a folder being written.
void write_map_state(const MapState& state, const fs::path& dir);

// The state of a map folder. A folder without one (a map of a given matrix, or one written before
// maps kept it) is an error saying so; every check names the file and the place.
MapState read_map_state(const fs::path& dir);

// `pass` with the map's own pass settings (include, exclude, precision, per_layer,
// skip_mismatched), which an update or a query keeps; memory, threads, ranks and progress as given.
GramOptions map_pass_options(const MapState& state, GramOptions pass);

// The checks of an update or a query before any pass: the base and every model of the map still
// exist, and no new model is one of the map's (or given twice). Errors name state.json and the row.
void check_map_state_inputs(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models);

// The Gram pass of an update or a query: the map's models then the new ones, only the products
// with a new model formed; the old block and (per layer) its layers filled from the state. Pass
// settings come from the state (map_pass_options); memory, threads, ranks and progress from `pass`. New models skipped
// as mismatched are listed in the result. Errors: the base or a model of the map whose digest is not the map's (it
// changed: named by state.json's row, with both digests), a body or a parameter count that differs from the map's.
GramResult extend_gram(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models,
                       const GramOptions& pass);

} // namespace basin
