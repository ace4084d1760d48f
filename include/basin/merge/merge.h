// Merging checkpoints tensor by tensor: the centroid (mean), weighted averages, task arithmetic,
// TIES, DARE, SLERP, Model Stock, mergekit's generalized task arithmetic, Multi-SLERP, the Karcher
// mean, NuSLERP and SCE (the method table: merge/methods.h). Inputs stay memory-mapped and their pages are released
// after each tensor, so memory is about one output model plus a few chunks, never N models. The output is a Hugging
// Face checkpoint folder (config and tokenizer of the base, or of the first model), written atomically, with a
// basin_merge.json provenance record. Torch-free.
#pragma once

#include "basin/io/safetensors.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace basin {

enum class MergeMethod {
    Mean,
    Weighted,
    TaskArithmetic,
    Ties,
    Dare,
    Slerp,
    ModelStock,
    Gta,
    Multislerp,
    Karcher,
    Nuslerp,
    Sce
};
MergeMethod parse_merge_method(const std::string& name); // errors list the methods
const char* merge_method_name(MergeMethod method);
bool needs_base(MergeMethod method); // task vectors: task-arithmetic, ties, dare, model-stock

struct MergeOptions {
    MergeMethod method = MergeMethod::Mean;
    std::vector<std::filesystem::path> models;
    std::filesystem::path base; // the pretrained model (required by needs_base methods)
    std::filesystem::path out;
    std::vector<double> weights;   // weighted: one per model (normalised by their sum); gta: per model (default 1)
    double lambda = 1.0;           // task-arithmetic, ties, dare: base + lambda * merged task vector
    double density = 0.2;          // ties: share of each task vector's entries kept (largest magnitude)
    double drop = 0.9;             // dare: probability of dropping an entry (survivors scaled 1 / (1 - drop))
    double t = 0.5;                // slerp: 0 = first model, 1 = second; nuslerp without weights
    bool clamp_model_stock = true; // model-stock: t clamped to [0, 1] (mergekit's, from --config: not)
    std::uint64_t seed = 0;        // dare's masks (and gta's random ones)
    // gta (generalized task arithmetic, as mergekit computes task_arithmetic, ties, dare_ties and
    // dare_linear; docs/MERGE.md): per model density (empty: `density` for all), how task vectors
    // are sparsified and signs elected, and the divisor and rescaling
    std::vector<double> densities;
    std::vector<double> gammas; // outliers: per model, the share of largest entries dropped (empty: gamma)
    double gamma = 0.01;
    std::vector<double> epsilons; // della: per model, the spread of keep probabilities (empty: epsilon)
    double epsilon = 0.15;
    std::string sparsify = "none";   // none | magnitude | random | outliers (breadcrumbs) | della
    std::string consensus = "none";  // none | sum | count
    std::optional<bool> normalize;   // gta: divide by the (agreeing) weights (default no); weighted: default yes
    bool rescale = false;            // gta: scale each sparsified task vector back to its L1 norm
    double select_topk = 1.0;        // sce: share of entries kept, those of largest variance across the models
    std::string vectors = "tensor";  // nuslerp: SLERP of whole tensors, or of each row or each column
    int karcher_iterations = 10;     // karcher: at most this many fixed-point steps
    double karcher_tolerance = 1e-5; // karcher: stop when the tangent step is shorter
    // A configuration's per-tensor values (gradients over layers, filters on names): sets the
    // tensor's weights, densities, lambda and t in a copy of these options before its plan (layers:
    // the model's layer count). check_tensor_names sees every merged tensor's name first (filters
    // that match nothing are refused there).
    std::function<void(const std::string& tensor, std::size_t layers, MergeOptions& options)> per_tensor;
    std::function<void(const std::vector<std::string>& tensors, std::size_t layers)> check_tensor_names;
    bool keep_head = false;        // keep head tensors when every input has them with one shape
    std::optional<Dtype> dtype;    // output dtype of floating tensors (default: the first model's per tensor)
    std::uint64_t shard_bytes = 0; // 0: one model.safetensors
    bool overwrite = false;
    int threads = 0;                 // 0: all cores
    nlohmann::json extra_provenance; // e.g. the exclusion rule that chose the models
    // after each merged tensor: tensors done, tensors to merge (the Python package's progress)
    std::function<void(std::size_t done, std::size_t total)> progress;
    nlohmann::json config; // merge --config: its file, method and text (basin_merge.json's "config")
    // LoRA adapter inputs (merge/adapters.h): "" a full checkpoint; "concat" or "svd" one adapter
    std::string adapter_out;
    std::int64_t adapter_rank = 0; // svd: the merged adapter's rank
};

struct MergeResult {
    std::size_t tensors = 0, dropped_heads = 0; // dropped: task heads, and poolers not in every input
    std::uint64_t bytes_read = 0, bytes_written = 0;
    double seconds = 0;
    nlohmann::json provenance; // what basin_merge.json holds
};

MergeResult merge_checkpoints(const MergeOptions& options);

// The folder a merge writes, atomically: the tensors (produced as they are written), config.json
// (config_source's, a body unless keep_head), its tokenizer files and basin_merge.json.
void write_merged_checkpoint(const std::filesystem::path& out, const std::vector<TensorView>& views,
                             const MergeOptions& options, const std::filesystem::path& config_source,
                             const nlohmann::json& provenance);

// DARE's keep decision for element `index` of tensor `name` of model `model`: a counter-based
// draw (splitmix64 of seed, model, FNV-1a of the name, index), so masks do not depend on chunking
// or threads and are reproducible elsewhere (tests/merge recomputes them in numpy).
bool dare_keeps(std::uint64_t seed, std::size_t model, std::uint64_t name_hash, std::uint64_t index, double drop);

// The layer index of a tensor name (a layer/layers/h/block/blocks component followed by a number),
// or -1: where a configuration's gradients place it.
int tensor_layer_index(const std::string& name);

} // namespace basin
