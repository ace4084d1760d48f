// The Gram matrix of task vectors (model - base) of many checkpoints, in one streaming pass.
//
// Every checkpoint's bytes are read once (pread, as cat reads: no mapping), all N models at a time.
// The parameter stream is cut into blocks of at most kGramBlockColumns parameters of one layer
// group; a block becomes an N x columns float32 (or bfloat16) matrix X (rows: task-vector pieces)
// and X X^T is added, in double, to the Gram matrix of the block's group. Up to 8 consecutive
// blocks form a span, read together (then converted and multiplied block by block); span s goes to
// thread s mod threads. Spans are grouped into chunks, sized from the memory limit: the unit of
// read-ahead, of the ranks' shares and of progress. Memory is O(N^2 + threads x N x span), never
// O(N x parameters), and since spans do not depend on the chunk size, the result does not depend
// on the memory limit (bitwise, for a given thread count).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace basin {

namespace fs = std::filesystem;

constexpr std::int64_t kGramBlockColumns = 4096;

// A dense symmetric matrix of doubles, row-major.
struct SquareMatrix {
    std::size_t n = 0;
    std::vector<double> values;
    SquareMatrix() = default;
    explicit SquareMatrix(std::size_t size) : n(size), values(size * size, 0.0) {}
    double& operator()(std::size_t i, std::size_t j) { return values[i * n + j]; }
    double operator()(std::size_t i, std::size_t j) const { return values[i * n + j]; }
};

struct StreamProgress {
    std::uint64_t bytes_done = 0;
    std::uint64_t bytes_total = 0;
    double seconds = 0;
};

// How task-vector values are multiplied: float32 (default), or rounded to bfloat16 first, which
// halves the arithmetic on CPUs with AVX-512 BF16 (products exact, sums in float32; docs/MAP.md).
enum class GramPrecision { f32, bf16 };

struct GramOptions {
    std::string include;                     // ECMAScript regex searched in tensor names; empty: all
    std::string exclude;                     // tensors whose name it matches are left out
    std::uint64_t memory_limit = 2ull << 30; // bytes for the whole process
    bool per_layer = false;                  // one Gram matrix per layer group as well
    GramPrecision precision = GramPrecision::f32;
    bool skip_mismatched = false; // skip models whose body does not match, instead of failing
    // The first `known` models' products among themselves are known (an update of a map holds
    // them): only the N_new x N products with a model from `known` on are formed, and the known
    // block of the result is left 0 for the caller to fill. Those models must all match the body.
    std::size_t known = 0;
    int threads = 1;
    std::function<void(const StreamProgress&)> progress; // called about once a second
    // Splitting the stream over processes (MPI ranks): this one reads chunks c with
    // c % ranks == rank, and sum_across_ranks adds a vector element-wise over all of them
    // (MPI_Allreduce); every rank then holds the whole Gram matrix.
    int rank = 0, ranks = 1;
    std::function<void(std::vector<double>&)> sum_across_ranks;
};

struct GramResult {
    std::vector<fs::path> models;                              // used, in input order
    std::vector<std::pair<fs::path, std::string>> skipped;     // model, why (--skip-mismatched)
    std::vector<std::pair<std::string, std::string>> excluded; // tensor, why
    std::vector<std::string> body;   // the tensors the task vectors are made of, in the base's order
    std::vector<std::string> layers; // layer groups in stream order (one, "all", without per_layer)
    std::vector<std::int64_t> layer_parameters;
    std::vector<SquareMatrix> layer_gram; // per group; they add up to gram
    SquareMatrix gram;                    // of the task vectors model - base
    std::int64_t parameters = 0;          // elements of one task vector
    std::uint64_t pairs = 0;              // model pairs (i <= j) whose products the pass formed
    // What the pass read of each used model and of the base: per block, XXH3 (64-bit) of the bytes
    // of its tensor pieces with their dtypes, seeded by the block's index, summed over blocks. It
    // depends only on the stored body (not on spans, threads or ranks), so a map can tell in a
    // later pass whether a model's weights changed, at no extra read (map_state.h).
    std::vector<std::uint64_t> digests;
    std::uint64_t base_digest = 0;
    std::uint64_t bytes_read = 0;      // tensor bytes of the base and all models
    std::int64_t chunk_parameters = 0; // parameters per model per chunk, from the memory limit
    std::uint64_t peak_rss = 0;        // of the process, bytes
    double seconds = 0;
};

// What the memory bound of a Gram pass depends on: the stream's shape (task_vector_gram works it
// out from the checkpoints; exposed so that tests can check the sizing directly).
struct GramStreamShape {
    std::size_t models = 0, groups = 1; // N, and the layer groups (1 without per_layer)
    std::size_t blocks = 0, spans = 0;  // of the whole stream
    std::size_t span_columns = 0;       // parameters a thread reads at once (one span)
    std::size_t raw_column_bytes = 0;   // one column's stored bytes over base and models, at each input's widest dtype
    std::uint64_t bytes_per_column = 0; // the widest tensor's stored bytes per column over base and models
    bool bf16 = false;                  // rows held as bfloat16 instead of float32
};

// fixed: the pass's own buffers (per thread one span of raw bytes, its base values, a block's N
// rows and block Gram, the per-group accumulators; the results; the plans; 32 MB of slack).
// needed: rss + fixed + two chunks of one span each (the chunk read and the one read ahead count
// against the limit as page cache). enough: memory_limit >= needed. chunk_columns: the
// parameters per model read per chunk, (limit - rss - fixed) / (2 bytes_per_column), at least one
// span; 0 when not enough.
struct GramMemoryPlan {
    std::uint64_t fixed = 0, needed = 0;
    std::int64_t chunk_columns = 0;
    bool enough = false;
};
GramMemoryPlan plan_gram_memory(const GramStreamShape& shape, int threads, std::uint64_t memory_limit,
                                std::uint64_t rss);

// Tensors of the body: those of the base that are floating point, not a head (names with a
// classifier, lm_head, cls, score, qa_outputs or pooler component), selected by include/exclude,
// and present with the base's shape in the models. A tensor absent from (or reshaped in) every
// model is excluded and listed; one absent from or reshaped in some models only is an error naming
// the model and the tensor (or, with skip_mismatched, those models are skipped and listed).
GramResult task_vector_gram(const fs::path& base, const std::vector<fs::path>& models, const GramOptions& options);

class CheckpointTensors;
// The base's tensors a task vector is made of before the models are looked at: not a head (is_head_tensor),
// floating point, selected by include / exclude; every other tensor goes into excluded with why.
std::vector<std::string> body_candidates(const CheckpointTensors& base, const GramOptions& options,
                                         std::vector<std::pair<std::string, std::string>>& excluded);

// The layer group of a tensor name: "layer N" for names with a layer/layers/h/block/blocks index
// component, "embeddings" for embedding tables, otherwise "other".
std::string layer_group(const std::string& tensor_name);

// True for tensor names of task heads (`classifier`, `lm_head`, `cls`, `score`, `qa_outputs`):
// what a new task replaces, so merge drops them by default.
bool is_task_head_tensor(const std::string& tensor_name);

// True for BERT's pooler (`pooler.` component). It is part of the body (transformers keeps it in
// BertModel, starts it pretrained and BertForSequenceClassification reads it), so merge merges it;
// the map leaves it out of task vectors with the task heads, because the generalized loss reads
// first-token features before it and RoBERTa classifiers have none (docs/MAP.md).
bool is_pooler_tensor(const std::string& tensor_name);

// True for what map leaves out of task vectors: task heads and the pooler.
bool is_head_tensor(const std::string& tensor_name);

} // namespace basin
