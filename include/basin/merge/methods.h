// The merge methods as a table. Each method is one entry: its name, whether it works on task
// vectors (needs the base), how many models it takes, its parameter checks and provenance, the
// statistic it needs over a whole tensor first (if any), how that statistic becomes the tensor's
// plan, and, for a method that is not a linear combination of the sources, how it combines one
// chunk. merge_checkpoints (merge.h) runs one streaming loop that reads these entries and knows
// no method by name; docs/ARCHITECTURE.md says how to add one.
//
// Sources are numbered models first (0 .. n-1), then the base (n) where the method needs it.
#pragma once

#include "basin/merge/merge.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace basin {

// What a method needs to know about a whole tensor before it combines any chunk of it.
enum class MergeStatistic {
    none,
    weight_inner_products,      // <x_i, x_j> of the models' values (slerp)
    task_vector_inner_products, // <x_i - base, x_j - base> (model stock)
    top_magnitudes,             // per model, the ceil(density * numel)-th largest |x_i - base| (ties)
    gta,                        // per model: its magnitude threshold and L1 rescaling (sparsify, rescale)
    inner_products,             // of the task vectors where a base is given, else of the weights (multislerp, nuslerp)
    source_inner_products,      // of every source's weights, the base included where given (karcher)
    sce,                        // the variance threshold of the kept entries and the per-model weights (sce)
    vector_inner_products,      // nuslerp: the whole tensor's as inner_products, or <a, a>, <a, b>, <b, b> per row
                                // or column (vectors: rows, columns) of the two task vectors / weights
};

struct TensorStatistics {
    std::size_t models = 0;
    std::vector<double> gram;     // k x k, row-major (inner products: k the models, or every source)
    std::vector<float> threshold; // per model (top_magnitudes, gta magnitude): |tau_i| is kept when >= threshold_i;
                                  // sce: one, the variance an entry needs to be kept
    std::vector<double> scale;    // per model (gta rescale): L1 norm of tau_i over that of its kept entries;
                                  // sce: the models' weights
    std::vector<float> upper;     // per model (gta outliers): |tau_i| is kept when <= upper_i too
    std::vector<std::vector<std::uint64_t>> keep; // per model (gta della): one bit per element, kept or not
    std::vector<double> vectors;                  // nuslerp per row or column: <a, a>, <a, b>, <b, b> each
    std::size_t columns = 1;                      // the tensor's row length (1-D: its length)
};

// One tensor's constants. A method with coefficients is linear: out = sum_s c_s x_s over the
// sources (one per model, then the base); the loop computes that sum itself, in double, starting
// from the first non-zero term so that a one-hot combination returns its source bit for bit.
struct TensorPlan {
    std::vector<double> coefficients;
    std::vector<float> thresholds;
    std::vector<double> scales;                   // gta: per model
    std::vector<float> upper;                     // gta outliers: per model
    std::vector<std::vector<std::uint64_t>> keep; // gta della: per model, one bit per element
    std::vector<double> vector_coefficients;      // nuslerp per row or column: the two coefficients of each
    std::size_t columns = 1;
    std::uint64_t name_hash = 0; // FNV-1a of the tensor's name (DARE's masks)
};

// One chunk of one tensor for a non-linear method: the sources' values as float32 (source s at
// values + s * stride), `count` elements starting at element `from` of the tensor.
struct MergeChunk {
    const float* values = nullptr;
    std::size_t stride = 0, count = 0, from = 0;
    const float* source(std::size_t s) const { return values + s * stride; }
};

// sce's variance of entry e of a chunk across the models' task vectors (population variance of
// x_i - base, computed in double, rounded to float): the statistics pass and the combine step
// decide with the same number.
float sce_variance(const MergeChunk& chunk, std::size_t models, std::size_t e);

struct MergeMethodEntry {
    MergeMethod method;
    const char* name;
    bool needs_base;
    std::size_t min_models, max_models; // max 0: no bound
    // extra checks of the options (the count bounds and the base are checked by the loop)
    void (*check)(const MergeOptions& options);
    // the method's parameters as basin_merge.json records them
    nlohmann::json (*parameters)(const MergeOptions& options);
    MergeStatistic statistic;
    // the tensor's plan from its statistics (for a linear method: set the coefficients)
    void (*plan)(const MergeOptions& options, std::size_t models, const TensorStatistics& stats, TensorPlan& plan);
    // non-linear methods only: out[e] for the chunk's elements
    void (*combine)(const MergeOptions& options, std::size_t models, const TensorPlan& plan, const MergeChunk& chunk,
                    float* out);
};

// gta's per-model density and weight (densities / weights, else --density and 1).
double gta_density(const MergeOptions& options, std::size_t model);
double gta_weight(const MergeOptions& options, std::size_t model);
double gta_gamma(const MergeOptions& options, std::size_t model);
double gta_epsilon(const MergeOptions& options, std::size_t model);

// Every method, in the order `basin merge --help` lists them.
const std::vector<MergeMethodEntry>& merge_method_table();
const MergeMethodEntry& merge_method_entry(MergeMethod method);

} // namespace basin
