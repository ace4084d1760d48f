#include "basin/space/gram.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/io/checkpoint.h"
#include "basin/io/tensor_reader.h"
#include "basin/space/block_gram.h"

#include <algorithm>
#include <atomic>
#include <cblas.h>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

namespace basin {
namespace {

using Clock = std::chrono::steady_clock;

struct Source {
    const SafetensorsFile* file = nullptr;
    const TensorInfo* info = nullptr;
    const std::uint8_t* at(std::int64_t element) const {
        return file->data(*info) + element * static_cast<std::int64_t>(dtype_size(info->dtype));
    }
};

// One body tensor, found in the base and in every model.
struct StreamTensor {
    std::string name;
    std::int64_t numel = 0;
    std::size_t group = 0;
    Source base;
    std::vector<Source> models;
    std::uint64_t column_bytes = 0; // bytes per element over the base and all models
};

struct Segment {
    std::size_t tensor = 0;
    std::int64_t offset = 0;
    std::int64_t count = 0;
};

// At most kGramBlockColumns parameters of one layer group.
struct Block {
    std::size_t group = 0;
    std::int64_t columns = 0;
    std::vector<Segment> segments;
};

// A span's raw bytes (all N + 1 inputs as stored) are kept under 8 MB per thread; at most 8 blocks
// (32,768 columns: 64 KB reads of F16, 256 KB of F64).
constexpr std::size_t kSpanBytes = std::size_t(8) << 20;
constexpr std::size_t kMaxSpanBlocks = 8;

// Consecutive blocks of one group, with the tensor pieces they cover merged into one per tensor.
struct Span {
    std::size_t first_block = 0, last_block = 0;
    std::int64_t columns = 0;
    std::vector<Segment> pieces;
};

std::string shape_of(const TensorInfo& info) {
    return shape_string(info.shape);
}

// OpenBLAS runs single-threaded while map's own threads each call it: the blocks are small
// (N x 4096), so threading inside each call would cost more than it gives.
class SingleThreadedBlas {
  public:
    SingleThreadedBlas() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
    ~SingleThreadedBlas() { openblas_set_num_threads(saved_); }

  private:
    int saved_;
};

std::string human_bytes(double bytes) {
    const char* units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1024 && u < 4)
        bytes /= 1024, ++u;
    return str(std::round(bytes * 10) / 10, " ", units[u]);
}

} // namespace

bool is_task_head_tensor(const std::string& name) {
    static const std::regex head(R"((^|\.)(classifier|lm_head|cls|score|qa_outputs)\.)");
    return std::regex_search(name, head);
}

bool is_pooler_tensor(const std::string& name) {
    static const std::regex pooler(R"((^|\.)pooler\.)");
    return std::regex_search(name, pooler);
}

bool is_head_tensor(const std::string& name) {
    return is_task_head_tensor(name) || is_pooler_tensor(name);
}

std::string layer_group(const std::string& name) {
    static const std::regex layer(R"((^|\.)(layer|layers|h|block|blocks)\.(\d+)\.)");
    std::smatch m;
    if (std::regex_search(name, m, layer)) return "layer " + m[3].str();
    static const std::regex embedding(R"(embed|(^|\.)(wte|wpe)\.)");
    if (std::regex_search(name, embedding)) return "embeddings";
    return "other";
}

namespace {

// The stream cut into blocks of at most kGramBlockColumns parameters, none mixing layer groups.
std::vector<Block> cut_blocks(const std::vector<StreamTensor>& tensors) {
    std::vector<Block> blocks;
    for (std::size_t ti = 0; ti < tensors.size(); ++ti) {
        const auto& t = tensors[ti];
        for (std::int64_t offset = 0; offset < t.numel;) {
            if (blocks.empty() || blocks.back().group != t.group || blocks.back().columns == kGramBlockColumns)
                blocks.push_back({t.group, 0, {}});
            Block& b = blocks.back();
            const std::int64_t take = std::min(t.numel - offset, kGramBlockColumns - b.columns);
            b.segments.push_back({ti, offset, take});
            b.columns += take;
            offset += take;
        }
    }
    return blocks;
}

// Runs of at most span_blocks consecutive blocks of one group, each tensor piece read once.
std::vector<Span> cut_spans(const std::vector<Block>& blocks, std::size_t span_blocks) {
    std::vector<Span> spans;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        if (spans.empty() || blocks[spans.back().first_block].group != blocks[b].group ||
            b - spans.back().first_block == span_blocks)
            spans.push_back({b, b, 0, {}});
        Span& span = spans.back();
        span.last_block = b + 1;
        span.columns += blocks[b].columns;
        for (const auto& seg : blocks[b].segments) {
            auto& pieces = span.pieces;
            if (!pieces.empty() && pieces.back().tensor == seg.tensor &&
                pieces.back().offset + pieces.back().count == seg.offset)
                pieces.back().count += seg.count; // one read for the whole piece of the tensor
            else
                pieces.push_back(seg);
        }
    }
    return spans;
}

// One thread's buffers and sums in the pass.
struct Worker {
    std::vector<std::uint8_t> raw;        // the span's bytes, input after input (raw_offset)
    std::vector<float> base, block_gram;  // base: the span's base values as float32
    std::vector<float> rows;              // a block's n task-vector rows (float32)
    std::vector<std::uint16_t> rows_bf16; // or (bf16) as bfloat16
    std::vector<std::vector<double>> acc; // per group, upper triangle used
};

// The sums of all threads in a fixed order (so the result does not depend on scheduling), per
// group, the upper triangle mirrored; gram is the sum over groups.
void reduce_workers(const std::vector<Worker>& workers, std::size_t groups, std::size_t n, GramResult& result) {
    result.gram = SquareMatrix(n);
    for (std::size_t g = 0; g < groups; ++g) {
        SquareMatrix layer(n);
        for (const auto& w : workers)
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = i; j < n; ++j)
                    layer(i, j) += w.acc[g][i * n + j];
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < i; ++j)
                layer(i, j) = layer(j, i);
        for (std::size_t k = 0; k < n * n; ++k)
            result.gram.values[k] += layer.values[k];
        result.layer_gram.push_back(std::move(layer));
    }
}

// Which tensors form the body (the base's floating tensors that are not heads, selected by
// include/exclude, present in some model) and which models match it; what is left out is listed
// in result with the reason.
struct BodySelection {
    std::vector<std::string> body;
    std::vector<std::size_t> used; // models matching the body
};

BodySelection select_body(const fs::path& base_path, const CheckpointTensors& base,
                          const std::vector<std::unique_ptr<CheckpointTensors>>& checkpoints,
                          const std::vector<fs::path>& model_paths, const GramOptions& options, GramResult& result) {
    std::regex include, exclude;
    try {
        if (!options.include.empty()) include = std::regex(options.include);
        if (!options.exclude.empty()) exclude = std::regex(options.exclude);
    } catch (const std::regex_error& e) {
        fail("map: --include/--exclude: not a valid regular expression (", e.what(), ")");
    }

    std::vector<std::string> body;
    std::vector<std::string> problem(model_paths.size()); // first mismatch per model
    for (const auto& name : base.names()) {
        const TensorInfo& info = *base.find(name)->info;
        if (is_head_tensor(name)) {
            result.excluded.emplace_back(name, "head");
            continue;
        }
        if (!is_floating(info.dtype)) {
            result.excluded.emplace_back(name, str("not floating point (", dtype_name(info.dtype), ")"));
            continue;
        }
        if (!options.include.empty() && !std::regex_search(name, include)) {
            result.excluded.emplace_back(name, "not matched by --include");
            continue;
        }
        if (!options.exclude.empty() && std::regex_search(name, exclude)) {
            result.excluded.emplace_back(name, "matched by --exclude");
            continue;
        }
        std::vector<std::string> why(checkpoints.size());
        std::size_t matching = 0;
        for (std::size_t m = 0; m < checkpoints.size(); ++m) {
            const auto* ref = checkpoints[m]->find(name);
            if (!ref)
                why[m] = str("tensor ", name, " is missing (the base has it)");
            else if (ref->info->shape != info.shape)
                why[m] = str("tensor ", name, " has shape ", shape_of(*ref->info), ", the base ", shape_of(info));
            else if (!is_floating(ref->info->dtype))
                why[m] = str("tensor ", name, " is ", dtype_name(ref->info->dtype), ", expected a floating dtype");
            else
                ++matching;
        }
        if (matching == 0) {
            result.excluded.emplace_back(name, checkpoints[0]->find(name) ? "shape differs in every model"
                                                                          : "absent from every model");
            continue;
        }
        for (std::size_t m = 0; m < checkpoints.size(); ++m)
            if (!why[m].empty() && problem[m].empty()) problem[m] = why[m];
        body.push_back(name);
    }
    {
        std::set<std::string> extra;
        for (const auto& ck : checkpoints)
            for (const auto& name : ck->names())
                if (!base.find(name)) extra.insert(name);
        for (const auto& name : extra)
            result.excluded.emplace_back(name, "not in the base");
    }
    std::vector<std::size_t> used;
    for (std::size_t m = 0; m < checkpoints.size(); ++m) {
        if (problem[m].empty()) {
            used.push_back(m);
            continue;
        }
        BASIN_CHECK(options.skip_mismatched, "map: ", model_paths[m].string(), ": ", problem[m],
                    " (pass --skip-mismatched to skip such models)");
        result.skipped.emplace_back(model_paths[m], problem[m]);
    }
    BASIN_CHECK(used.size() >= 2, "map: fewer than 2 models match the base's body (", result.skipped.size(),
                " skipped)");
    BASIN_CHECK(!body.empty(), "map: no tensor of ", base_path.string(),
                " is left to compare (all excluded: check --include/--exclude)");
    return {body, used};
}

} // namespace

GramMemoryPlan plan_gram_memory(const GramStreamShape& s, int threads, std::uint64_t memory_limit, std::uint64_t rss) {
    const std::uint64_t n = s.models, groups = s.groups, span = s.span_columns;
    const std::uint64_t row_bytes = s.bf16 ? 2 : 4; // per parameter of a task-vector row
    GramMemoryPlan p;
    p.fixed = std::uint64_t(std::max(1, threads)) *
                  (s.raw_column_bytes * span + span * 4 + n * std::uint64_t(kGramBlockColumns) * row_bytes + n * n * 4 +
                   groups * n * n * 8) +
              2 * groups * n * n * 8 + (s.blocks + s.spans) * 64 + (32ull << 20);
    p.needed = rss + p.fixed + 2 * s.bytes_per_column * span;
    p.enough = memory_limit >= p.needed;
    p.chunk_columns =
        p.enough ? std::max<std::int64_t>(std::int64_t(span),
                                          std::int64_t((memory_limit - rss - p.fixed) / (2 * s.bytes_per_column)))
                 : 0;
    return p;
}

GramResult task_vector_gram(const fs::path& base_path, const std::vector<fs::path>& model_paths,
                            const GramOptions& options) {
    const auto start = Clock::now();
    BASIN_CHECK(model_paths.size() >= 2, "map: needs at least 2 models, got ", model_paths.size());
    CheckpointTensors base(base_path);
    std::vector<std::unique_ptr<CheckpointTensors>> checkpoints;
    for (const auto& path : model_paths)
        checkpoints.push_back(std::make_unique<CheckpointTensors>(path));

    GramResult result;
    const auto [body, used] = select_body(base_path, base, checkpoints, model_paths, options, result);
    for (std::size_t m : used)
        result.models.push_back(model_paths[m]);
    const std::size_t n = used.size();

    // ---- the parameter stream: tensors in the base's order, cut into blocks
    std::vector<StreamTensor> tensors;
    std::map<std::string, std::size_t> group_index;
    for (const auto& name : body) {
        StreamTensor t;
        t.name = name;
        const auto* ref = base.find(name);
        t.base = {ref->file, ref->info};
        t.numel = ref->info->numel();
        for (std::size_t m : used) {
            const auto* r = checkpoints[m]->find(name);
            t.models.push_back({r->file, r->info});
        }
        const std::string group = options.per_layer ? layer_group(name) : "all";
        auto [it, inserted] = group_index.emplace(group, result.layers.size());
        if (inserted) {
            result.layers.push_back(group);
            result.layer_parameters.push_back(0);
        }
        t.group = it->second;
        t.column_bytes = dtype_size(t.base.info->dtype);
        for (const auto& src : t.models)
            t.column_bytes += dtype_size(src.info->dtype);
        result.layer_parameters[t.group] += t.numel;
        result.parameters += t.numel;
        tensors.push_back(std::move(t));
    }
    // Tensors of one group are placed together so that blocks do not mix groups.
    std::stable_sort(tensors.begin(), tensors.end(),
                     [](const StreamTensor& a, const StreamTensor& b) { return a.group < b.group; });
    const std::vector<Block> blocks = cut_blocks(tensors);

    // ---- spans: up to kMaxSpanBlocks consecutive blocks of one group, read together so that each
    // input is read in pieces of up to 256 KB (one pread per tensor piece), not 8 KB, while the
    // conversion and the products go block by block, on rows that stay in L2. Span s goes to
    // thread s mod threads; spans depend only on N and the model, so neither the memory limit nor
    // the number of ranks changes which sums a thread forms. A small model keeps at least 64
    // spans, so that threads and ranks get even shares.
    const bool bf16 = options.precision == GramPrecision::bf16;
    // per input (n: the base), the most bytes one of its stored values takes; a span's raw bytes
    // are laid out input after input at these strides
    std::vector<std::size_t> value_bytes(n + 1, 0);
    for (const auto& t : tensors) {
        value_bytes[n] = std::max(value_bytes[n], dtype_size(t.base.info->dtype));
        for (std::size_t m = 0; m < n; ++m)
            value_bytes[m] = std::max(value_bytes[m], dtype_size(t.models[m].info->dtype));
    }
    std::size_t raw_column_bytes = 0;
    for (std::size_t b : value_bytes)
        raw_column_bytes += b;
    const std::size_t span_blocks = std::clamp<std::size_t>(
        std::min(kSpanBytes / (raw_column_bytes * std::size_t(kGramBlockColumns)), blocks.size() / 64), 1,
        kMaxSpanBlocks);
    const std::size_t span_stride = span_blocks * std::size_t(kGramBlockColumns); // columns
    std::vector<std::size_t> raw_offset(n + 1, 0);
    for (std::size_t i = 1; i <= n; ++i)
        raw_offset[i] = raw_offset[i - 1] + value_bytes[i - 1] * span_stride;
    const std::vector<Span> spans = cut_spans(blocks, span_blocks);

    // ---- memory: per thread, one span of all N rows and its raw bytes; the chunk (a run of spans)
    // is the unit of read-ahead, of the ranks' shares and of progress, sized from the limit.
    const int threads = std::max(1, options.threads);
    const std::size_t groups = result.layers.size();
    GramStreamShape shape;
    shape.models = n, shape.groups = groups, shape.blocks = blocks.size(), shape.spans = spans.size();
    shape.span_columns = span_stride, shape.raw_column_bytes = raw_column_bytes, shape.bf16 = bf16;
    for (const auto& t : tensors)
        shape.bytes_per_column = std::max(shape.bytes_per_column, t.column_bytes);
    const GramMemoryPlan memory = plan_gram_memory(shape, threads, options.memory_limit, current_rss_bytes());
    const bool enough = memory.enough;
    const std::uint64_t needed = memory.needed;
    std::int64_t chunk_columns = memory.chunk_columns;
    if (options.ranks > 1) {
        // every rank must cut the stream the same way, but each measured its own resident memory:
        // all take rank 0's chunk size (the processes are alike within a few MB). The ranks also
        // agree on whether the limit is enough: one that stopped here alone would leave the
        // others waiting in the sums below.
        BASIN_CHECK(options.sum_across_ranks, "map: several ranks need a way to add their results");
        std::vector<double> agreed = {options.rank == 0 ? double(chunk_columns) : 0.0, enough ? 0.0 : 1.0};
        options.sum_across_ranks(agreed);
        BASIN_CHECK(!enough || agreed[1] == 0, "map: --memory-limit ", human_bytes(options.memory_limit),
                    " is too small for another rank (see its message)");
        chunk_columns = std::int64_t(agreed[0]);
    }
    BASIN_CHECK(enough, "map: --memory-limit ", human_bytes(options.memory_limit), " is too small for ", n,
                " models: at least ", human_bytes(needed), " is needed");
    result.chunk_parameters = chunk_columns;

    std::vector<std::pair<std::size_t, std::size_t>> chunks; // [first span, last span)
    for (std::size_t s = 0; s < spans.size();) {
        std::size_t e = s;
        std::int64_t columns = 0;
        while (e < spans.size() && (e == s || columns + spans[e].columns <= chunk_columns))
            columns += spans[e++].columns;
        chunks.emplace_back(s, e);
        s = e;
    }
    std::vector<std::uint64_t> chunk_bytes; // tensor bytes read per chunk, over all inputs
    for (const auto& [first, last] : chunks) {
        std::uint64_t bytes = 0;
        for (std::size_t s = first; s < last; ++s)
            for (const auto& piece : spans[s].pieces)
                bytes += piece.count * tensors[piece.tensor].column_bytes;
        chunk_bytes.push_back(bytes);
    }

    std::vector<const SafetensorsFile*> files;
    for (const auto& f : base.files())
        files.push_back(f.get());
    for (std::size_t m : used)
        for (const auto& f : checkpoints[m]->files())
            files.push_back(f.get());
    const TensorReader reader(files);
    // cold files: ask the kernel to read a chunk ahead (warm ones: a walk of the page cache)
    auto prefetch = [&](std::size_t chunk) {
        for (std::size_t s = chunks[chunk].first; s < chunks[chunk].second; ++s)
            for (const auto& piece : spans[s].pieces) {
                const auto& t = tensors[piece.tensor];
                auto ask = [&](const Source& src) {
                    const std::uint64_t size = dtype_size(src.info->dtype);
                    reader.prefetch(*src.file, *src.info, piece.offset * size, piece.count * size);
                };
                ask(t.base);
                for (const auto& src : t.models)
                    ask(src);
            }
    };

    // ---- the pass
    std::vector<Worker> workers(threads);
    for (auto& w : workers) {
        w.raw.resize(raw_column_bytes * span_stride);
        w.base.resize(span_stride);
        if (bf16)
            w.rows_bf16.resize(n * kGramBlockColumns);
        else
            w.rows.resize(n * kGramBlockColumns);
        w.block_gram.resize(n * n);
        w.acc.assign(groups, std::vector<double>(n * n, 0.0));
    }
    auto locate_non_finite = [&](const Block& block, std::size_t model) -> std::string {
        std::vector<float> values;
        for (const auto& seg : block.segments) {
            const auto& t = tensors[seg.tensor];
            values.resize(seg.count);
            convert_to_f32(t.base.info->dtype, t.base.at(seg.offset), values.data(), seg.count);
            for (float v : values)
                if (!std::isfinite(v)) return str(base_path.string(), ": tensor ", t.name, " holds NaN or Inf");
            const auto& s = t.models[model];
            convert_to_f32(s.info->dtype, s.at(seg.offset), values.data(), seg.count);
            for (float v : values)
                if (!std::isfinite(v))
                    return str(result.models[model].string(), ": tensor ", t.name, " holds NaN or Inf");
        }
        return str(result.models[model].string(), ": task vector overflows float32");
    };
    auto source = [&](const Segment& piece, std::size_t input) -> const Source& {
        return input == n ? tensors[piece.tensor].base : tensors[piece.tensor].models[input];
    };
    // For the span's columns [from, to) of one input (n: the base), calls
    // convert(dtype, stored bytes, column - from, count) on each tensor piece they cover.
    auto each_piece = [&](Worker& w, const Span& span, std::size_t input, std::size_t from, std::size_t to,
                          auto&& convert) {
        const std::uint8_t* bytes = w.raw.data() + raw_offset[input];
        std::size_t column = 0;
        for (const auto& piece : span.pieces) {
            if (column >= to) break;
            const Dtype dtype = source(piece, input).info->dtype;
            const std::size_t size = dtype_size(dtype), end = column + std::size_t(piece.count);
            const std::size_t first = std::max(column, from), last = std::min(end, to);
            if (first < last) convert(dtype, bytes + (first - column) * size, first - from, last - first);
            bytes += std::size_t(piece.count) * size;
            column = end;
        }
    };
    auto process = [&](Worker& w, const Span& span) -> std::string {
        for (std::size_t input = 0; input <= n; ++input) { // one pread per tensor piece and input
            std::uint8_t* to = w.raw.data() + raw_offset[input];
            for (const auto& piece : span.pieces) {
                const Source& src = source(piece, input);
                const std::uint64_t size = dtype_size(src.info->dtype);
                reader.read(*src.file, *src.info, piece.offset * size, piece.count * size, to);
                to += piece.count * size;
            }
        }
        const std::size_t columns = std::size_t(span.columns);
        each_piece(w, span, n, 0, columns,
                   [&](Dtype dtype, const std::uint8_t* bytes, std::size_t at, std::size_t count) {
                       convert_to_f32(dtype, bytes, w.base.data() + at, count);
                   });
        std::size_t from = 0;
        for (std::size_t bi = span.first_block; bi < span.last_block; ++bi) {
            const Block& block = blocks[bi];
            const std::size_t to = from + std::size_t(block.columns);
            const float* base = w.base.data() + from;
            for (std::size_t m = 0; m < n; ++m) // task-vector rows of the block, formed while in cache
                each_piece(w, span, m, from, to,
                           [&](Dtype dtype, const std::uint8_t* bytes, std::size_t at, std::size_t count) {
                               if (bf16)
                                   convert_minus_bf16(dtype, bytes, base + at,
                                                      w.rows_bf16.data() + m * kGramBlockColumns + at, count);
                               else
                                   convert_minus_f32(dtype, bytes, base + at,
                                                     w.rows.data() + m * kGramBlockColumns + at, count);
                           });
            if (bf16)
                block_gram_upper_bf16(n, std::size_t(block.columns), w.rows_bf16.data(), kGramBlockColumns,
                                      w.block_gram.data());
            else
                block_gram_upper(n, std::size_t(block.columns), w.rows.data(), kGramBlockColumns, w.block_gram.data());
            from = to;
            auto& acc = w.acc[block.group];
            for (std::size_t i = 0; i < n; ++i) {
                if (!std::isfinite(w.block_gram[i * n + i])) return locate_non_finite(block, i);
                for (std::size_t j = i; j < n; ++j)
                    acc[i * n + j] += w.block_gram[i * n + j];
            }
        }
        return {};
    };

    SingleThreadedBlas single_threaded;
    const std::size_t rank = std::size_t(std::max(0, options.rank)), ranks = std::size_t(std::max(1, options.ranks));
    BASIN_CHECK(rank < ranks, "map: rank ", rank, " of ", ranks);
    BASIN_CHECK(ranks == 1 || options.sum_across_ranks, "map: several ranks need a way to add their results");
    std::uint64_t my_bytes = 0;
    for (std::size_t c = rank; c < chunks.size(); c += ranks)
        my_bytes += chunk_bytes[c];
    StreamProgress progress{0, my_bytes, 0};
    auto last_report = Clock::now();
    std::size_t first_mine = rank;
    if (first_mine < chunks.size()) prefetch(first_mine);
    std::string failure; // a rank that fails still joins the sum below, then reports
    for (std::size_t c = first_mine; c < chunks.size() && failure.empty(); c += ranks) {
        if (interrupted()) { // every rank still joins the sum below, then all stop
            failure = "interrupted by " + signal_name(interrupt_signal()) + " while reading the checkpoints";
            break;
        }
        if (c + ranks < chunks.size()) prefetch(c + ranks);
        std::vector<std::string> errors(threads);
        auto run = [&](int t) {
            try {
                for (std::size_t sp = chunks[c].first; sp < chunks[c].second; ++sp)
                    if (sp % threads == static_cast<std::size_t>(t) && errors[t].empty())
                        errors[t] = process(workers[t], spans[sp]);
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < threads; ++t)
            pool.emplace_back(run, t);
        run(0);
        for (auto& th : pool)
            th.join();
        for (const auto& e : errors)
            if (!e.empty() && failure.empty()) failure = "map: " + e;
        progress.bytes_done += chunk_bytes[c];
        progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (options.progress &&
            (std::chrono::duration<double>(Clock::now() - last_report).count() >= 1.0 || c + 1 == chunks.size())) {
            options.progress(progress);
            last_report = Clock::now();
        }
    }

    // this rank's failure: a clean stop when a signal caused it, else the error it found
    auto stop_on_own_failure = [&] {
        if (failure.empty()) return;
        if (interrupted()) throw Interrupted(interrupt_signal(), failure);
        fail(failure);
    };
    if (ranks > 1) { // threads, then ranks: one vector of every group's upper triangle
        std::vector<double> flat(groups * n * n + 2, 0.0);
        for (const auto& w : workers)
            for (std::size_t g = 0; g < groups; ++g)
                for (std::size_t k = 0; k < n * n; ++k)
                    flat[g * n * n + k] += w.acc[g][k];
        flat[groups * n * n] = double(progress.bytes_done);
        flat[groups * n * n + 1] = failure.empty() ? 0.0 : 1.0;
        options.sum_across_ranks(flat);
        stop_on_own_failure(); // before blaming another rank
        BASIN_CHECK(flat[groups * n * n + 1] == 0, "map: another rank failed (see its message)");
        for (std::size_t t = 0; t < workers.size(); ++t)
            for (std::size_t g = 0; g < groups; ++g)
                for (std::size_t k = 0; k < n * n; ++k)
                    workers[t].acc[g][k] = t == 0 ? flat[g * n * n + k] : 0.0;
        progress.bytes_done = std::uint64_t(flat[groups * n * n]);
    }
    stop_on_own_failure();

    reduce_workers(workers, groups, n, result);
    result.bytes_read = progress.bytes_done;
    result.peak_rss = peak_rss_bytes();
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

} // namespace basin
