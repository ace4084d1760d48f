#include "basin/space/gram.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/io/checkpoint.h"
#include "basin/io/tensor_reader.h"
#include "basin/space/block_gram.h"
#include "basin/space/gram_plan.h"

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
#include <xxhash.h>

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
    Source base;
    std::vector<Source> models;
    GramTensorLayout layout;
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

// One thread's buffers and sums in the pass.
struct Worker {
    std::vector<std::uint8_t> raw;        // the span's bytes, input after input (raw_offset)
    std::vector<float> base, block_gram;  // base: the span's base values as float32
    std::vector<float> rows;              // a block's n task-vector rows (float32)
    std::vector<std::uint16_t> rows_bf16; // or (bf16) as bfloat16
    std::vector<std::vector<double>> acc; // per group, upper triangle used
    std::vector<std::uint64_t> digest;    // per input (models, then the base): sums of block digests
    std::shared_ptr<XXH3_state_t> hash{XXH3_createState(), XXH3_freeState};
};

// The sums of all threads in a fixed order (so the result does not depend on scheduling), per
// group, the upper triangle mirrored; gram is the sum over groups.
void reduce_workers(const std::vector<Worker>& workers, std::size_t groups, std::size_t n, GramResult& result) {
    result.digests.assign(n, 0);
    for (const auto& w : workers) {
        for (std::size_t m = 0; m < n; ++m)
            result.digests[m] += w.digest[m];
        result.base_digest += w.digest[n];
    }
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
} // namespace

std::vector<std::string> body_candidates(const CheckpointTensors& base, const GramOptions& options,
                                         std::vector<std::pair<std::string, std::string>>& excluded) {
    std::regex include, exclude;
    try {
        if (!options.include.empty()) include = std::regex(options.include);
        if (!options.exclude.empty()) exclude = std::regex(options.exclude);
    } catch (const std::regex_error& e) {
        fail("map: --include/--exclude: not a valid regular expression (", e.what(), ")");
    }
    std::vector<std::string> out;
    for (const auto& name : base.names()) {
        const TensorInfo& info = *base.find(name)->info;
        if (is_head_tensor(name))
            excluded.emplace_back(name, "head");
        else if (!is_floating(info.dtype))
            excluded.emplace_back(name, str("not floating point (", dtype_name(info.dtype), ")"));
        else if (!options.include.empty() && !std::regex_search(name, include))
            excluded.emplace_back(name, "not matched by --include");
        else if (!options.exclude.empty() && std::regex_search(name, exclude))
            excluded.emplace_back(name, "matched by --exclude");
        else
            out.push_back(name);
    }
    return out;
}

namespace {

struct BodySelection {
    std::vector<std::string> body;
    std::vector<std::size_t> used; // models matching the body
};

BodySelection select_body(const fs::path& base_path, const CheckpointTensors& base,
                          const std::vector<std::unique_ptr<CheckpointTensors>>& checkpoints,
                          const std::vector<fs::path>& model_paths, const GramOptions& options, GramResult& result) {
    std::vector<std::string> body;
    std::vector<std::string> problem(model_paths.size()); // first mismatch per model
    for (const auto& name : body_candidates(base, options, result.excluded)) {
        const TensorInfo& info = *base.find(name)->info;
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
    // (one model alone is a pass of its own: the full fine-tunes of a zoo that mixes in adapters)
    BASIN_CHECK(used.size() >= std::min<std::size_t>(2, model_paths.size()) && !used.empty(),
                "map: fewer than 2 models match the base's body (", result.skipped.size(), " skipped)");
    BASIN_CHECK(!body.empty(), "map: no tensor of ", base_path.string(),
                " is left to compare (all excluded: check --include/--exclude)");
    return {body, used};
}

// The body's tensors with their sources in stream order (those of one group together, so that
// blocks do not mix groups), and the stream plan over them; result's layer groups filled.
struct Stream {
    std::vector<StreamTensor> tensors;
    GramStreamPlan plan;
    std::vector<GramTensorLayout> layouts; // of tensors, in the same order

    const Source& source(const GramSegment& piece, std::size_t input) const {
        return input == plan.models ? tensors[piece.tensor].base : tensors[piece.tensor].models[input];
    }
    // stored bytes of one parameter over the base and all models
    std::uint64_t column_bytes(std::size_t tensor) const {
        std::uint64_t bytes = 0;
        for (std::size_t b : layouts[tensor].value_bytes)
            bytes += b;
        return bytes;
    }
};

Stream build_stream(const CheckpointTensors& base, const std::vector<std::unique_ptr<CheckpointTensors>>& checkpoints,
                    const BodySelection& selection, bool per_layer, GramResult& result) {
    Stream stream;
    const std::size_t n = selection.used.size();
    std::map<std::string, std::size_t> group_index;
    for (const auto& name : selection.body) {
        StreamTensor t;
        t.name = name;
        const auto* ref = base.find(name);
        t.base = {ref->file, ref->info};
        t.layout.numel = ref->info->numel();
        for (std::size_t m : selection.used) {
            const auto* r = checkpoints[m]->find(name);
            t.models.push_back({r->file, r->info});
            t.layout.value_bytes.push_back(dtype_size(r->info->dtype));
        }
        t.layout.value_bytes.push_back(dtype_size(ref->info->dtype));
        const std::string group = per_layer ? layer_group(name) : "all";
        auto [it, inserted] = group_index.emplace(group, result.layers.size());
        if (inserted) {
            result.layers.push_back(group);
            result.layer_parameters.push_back(0);
        }
        t.layout.group = it->second;
        result.layer_parameters[t.layout.group] += t.layout.numel;
        result.parameters += t.layout.numel;
        stream.tensors.push_back(std::move(t));
    }
    std::stable_sort(stream.tensors.begin(), stream.tensors.end(),
                     [](const StreamTensor& a, const StreamTensor& b) { return a.layout.group < b.layout.group; });
    for (const auto& t : stream.tensors)
        stream.layouts.push_back(t.layout);
    stream.plan = plan_gram_stream(stream.layouts, n);
    return stream;
}

// The parameters per chunk, from the memory plan; with several ranks, all take rank 0's (every rank
// must cut the stream the same way, but each measured its own resident memory: the processes are
// alike within a few MB). The ranks also agree on whether the limit is enough: one that stopped
// here alone would leave the others waiting in the sums of the pass.
std::int64_t agree_chunk_columns(const GramMemoryPlan& memory, std::size_t n, const GramOptions& options) {
    std::int64_t chunk_columns = memory.chunk_columns;
    if (options.ranks > 1) {
        std::vector<double> agreed = {options.rank == 0 ? double(chunk_columns) : 0.0, memory.enough ? 0.0 : 1.0};
        options.sum_across_ranks(agreed);
        BASIN_CHECK(!memory.enough || agreed[1] == 0, "map: --memory-limit ", human_bytes(options.memory_limit),
                    " is too small for another rank (see its message)");
        chunk_columns = std::int64_t(agreed[0]);
    }
    BASIN_CHECK(memory.enough, "map: --memory-limit ", human_bytes(options.memory_limit), " is too small for ", n,
                " models: at least ", human_bytes(memory.needed), " is needed");
    return chunk_columns;
}

std::vector<Worker> make_workers(int threads, const GramStreamPlan& plan, std::size_t groups, bool bf16) {
    const std::size_t n = plan.models;
    std::vector<Worker> workers(threads);
    for (auto& w : workers) {
        w.raw.resize(plan.raw_column_bytes * plan.span_columns);
        w.base.resize(plan.span_columns);
        if (bf16)
            w.rows_bf16.resize(n * kGramBlockColumns);
        else
            w.rows.resize(n * kGramBlockColumns);
        w.block_gram.resize(n * n);
        w.acc.assign(groups, std::vector<double>(n * n, 0.0));
        w.digest.assign(n + 1, 0);
    }
    return workers;
}

// What one thread does with a span: read its bytes (one pread per tensor piece and input),
// convert the base, then per block form the N task-vector rows while in cache, multiply and add
// the block's Gram to its group's sums.
class SpanPass {
  public:
    SpanPass(const Stream& stream, const TensorReader& reader, bool bf16, std::size_t known, const fs::path& base_path,
             const std::vector<fs::path>& models)
        : stream_(stream), reader_(reader), bf16_(bf16), known_(known), base_path_(base_path), models_(models) {}

    // cold files: ask the kernel to read the spans ahead (warm ones: a walk of the page cache)
    void prefetch(std::size_t first_span, std::size_t last_span) const {
        for (std::size_t s = first_span; s < last_span; ++s)
            for (const auto& piece : stream_.plan.spans[s].pieces)
                for (std::size_t input = 0; input <= stream_.plan.models; ++input) {
                    const Source& src = stream_.source(piece, input);
                    const std::uint64_t size = dtype_size(src.info->dtype);
                    reader_.prefetch(*src.file, *src.info, piece.offset * size, piece.count * size);
                }
    }

    // empty, or the error found (a non-finite task vector, named by model and tensor)
    std::string process(Worker& w, const GramSpan& span) const {
        read(w, span);
        const std::size_t n = stream_.plan.models;
        each_piece(w, span, n, 0, std::size_t(span.columns),
                   [&](Dtype dtype, const std::uint8_t* bytes, std::size_t at, std::size_t count) {
                       convert_to_f32(dtype, bytes, w.base.data() + at, count);
                   });
        std::size_t from = 0;
        for (std::size_t bi = span.first_block; bi < span.last_block; ++bi) {
            const GramBlock& block = stream_.plan.blocks[bi];
            const std::size_t to = from + std::size_t(block.columns);
            digest_block(w, span, bi, from, to);
            multiply_block(w, span, block, from, to);
            from = to;
            auto& acc = w.acc[block.group];
            for (std::size_t i = 0; i < n; ++i) {
                // (a known model's diagonal is not formed: it was checked when its map was made)
                if (i >= known_ && !std::isfinite(w.block_gram[i * n + i])) return locate_non_finite(block, i);
                for (std::size_t j = i; j < n; ++j)
                    acc[i * n + j] += w.block_gram[i * n + j];
            }
        }
        return {};
    }

  private:
    void read(Worker& w, const GramSpan& span) const {
        for (std::size_t input = 0; input <= stream_.plan.models; ++input) {
            std::uint8_t* to = w.raw.data() + stream_.plan.raw_offset[input];
            for (const auto& piece : span.pieces) {
                const Source& src = stream_.source(piece, input);
                const std::uint64_t size = dtype_size(src.info->dtype);
                reader_.read(*src.file, *src.info, piece.offset * size, piece.count * size, to);
                to += piece.count * size;
            }
        }
    }

    // For the span's columns [from, to) of one input (N: the base), calls
    // convert(dtype, stored bytes, column - from, count) on each tensor piece they cover.
    template <class Convert>
    void each_piece(const Worker& w, const GramSpan& span, std::size_t input, std::size_t from, std::size_t to,
                    Convert&& convert) const {
        const std::uint8_t* bytes = w.raw.data() + stream_.plan.raw_offset[input];
        std::size_t column = 0;
        for (const auto& piece : span.pieces) {
            if (column >= to) break;
            const Dtype dtype = stream_.source(piece, input).info->dtype;
            const std::size_t size = dtype_size(dtype), end = column + std::size_t(piece.count);
            const std::size_t first = std::max(column, from), last = std::min(end, to);
            if (first < last) convert(dtype, bytes + (first - column) * size, first - from, last - first);
            bytes += std::size_t(piece.count) * size;
            column = end;
        }
    }

    // each input's stored bytes of the block (with their dtypes), hashed into its digest
    void digest_block(Worker& w, const GramSpan& span, std::size_t block_index, std::size_t from,
                      std::size_t to) const {
        for (std::size_t input = 0; input <= stream_.plan.models; ++input) {
            XXH3_64bits_reset_withSeed(w.hash.get(), block_index);
            each_piece(w, span, input, from, to,
                       [&](Dtype dtype, const std::uint8_t* bytes, std::size_t, std::size_t count) {
                           const std::uint8_t code = std::uint8_t(dtype);
                           XXH3_64bits_update(w.hash.get(), &code, 1);
                           XXH3_64bits_update(w.hash.get(), bytes, count * dtype_size(dtype));
                       });
            w.digest[input] += XXH3_64bits_digest(w.hash.get());
        }
    }

    // the block's task-vector rows (columns [from, to) of the span), then their upper Gram
    void multiply_block(Worker& w, const GramSpan& span, const GramBlock& block, std::size_t from,
                        std::size_t to) const {
        const std::size_t n = stream_.plan.models;
        const float* base = w.base.data() + from;
        for (std::size_t m = 0; m < n; ++m)
            each_piece(
                w, span, m, from, to, [&](Dtype dtype, const std::uint8_t* bytes, std::size_t at, std::size_t count) {
                    if (bf16_)
                        convert_minus_bf16(dtype, bytes, base + at, w.rows_bf16.data() + m * kGramBlockColumns + at,
                                           count);
                    else
                        convert_minus_f32(dtype, bytes, base + at, w.rows.data() + m * kGramBlockColumns + at, count);
                });
        if (bf16_)
            block_gram_upper_bf16(n, std::size_t(block.columns), w.rows_bf16.data(), kGramBlockColumns,
                                  w.block_gram.data(), known_);
        else
            block_gram_upper(n, std::size_t(block.columns), w.rows.data(), kGramBlockColumns, w.block_gram.data(),
                             known_);
    }

    // which of the block's inputs holds the NaN or Inf (or, if none, that the difference overflows)
    std::string locate_non_finite(const GramBlock& block, std::size_t model) const {
        std::vector<float> values;
        for (const auto& seg : block.segments) {
            const auto& t = stream_.tensors[seg.tensor];
            values.resize(seg.count);
            convert_to_f32(t.base.info->dtype, t.base.at(seg.offset), values.data(), seg.count);
            for (float v : values)
                if (!std::isfinite(v)) return str(base_path_.string(), ": tensor ", t.name, " holds NaN or Inf");
            const auto& s = t.models[model];
            convert_to_f32(s.info->dtype, s.at(seg.offset), values.data(), seg.count);
            for (float v : values)
                if (!std::isfinite(v)) return str(models_[model].string(), ": tensor ", t.name, " holds NaN or Inf");
        }
        return str(models_[model].string(), ": task vector overflows float32");
    }

    const Stream& stream_;
    const TensorReader& reader_;
    bool bf16_;
    std::size_t known_; // rows before it: their products among themselves are not formed (block_gram.h)
    const fs::path& base_path_;
    const std::vector<fs::path>& models_;
};

// One chunk over the threads: span s to thread s mod threads (so the sums a thread forms depend
// on neither the chunk size nor the ranks). The first error, or empty.
std::string run_chunk(const SpanPass& pass, const std::vector<GramSpan>& spans,
                      std::pair<std::size_t, std::size_t> chunk, std::vector<Worker>& workers) {
    const int threads = int(workers.size());
    std::vector<std::string> errors(threads);
    auto run = [&](int t) {
        try {
            for (std::size_t sp = chunk.first; sp < chunk.second; ++sp)
                if (sp % threads == static_cast<std::size_t>(t) && errors[t].empty())
                    errors[t] = pass.process(workers[t], spans[sp]);
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
        if (!e.empty()) return "map: " + e;
    return {};
}

// This rank's chunks (c % ranks == rank) in order, the next one read ahead; progress about once a
// second. A failure (or a signal) stops the loop, but is returned, not thrown: every rank must
// still join the sums after it.
struct ChunkLoop {
    std::string failure;
    StreamProgress progress;
};

ChunkLoop run_my_chunks(const SpanPass& pass, const GramStreamPlan& plan,
                        const std::vector<std::pair<std::size_t, std::size_t>>& chunks,
                        const std::vector<std::uint64_t>& chunk_bytes, std::vector<Worker>& workers, std::size_t rank,
                        std::size_t ranks, const GramOptions& options, Clock::time_point start) {
    ChunkLoop loop;
    for (std::size_t c = rank; c < chunks.size(); c += ranks)
        loop.progress.bytes_total += chunk_bytes[c];
    auto last_report = Clock::now();
    if (rank < chunks.size()) pass.prefetch(chunks[rank].first, chunks[rank].second);
    for (std::size_t c = rank; c < chunks.size() && loop.failure.empty(); c += ranks) {
        if (interrupted()) {
            loop.failure = "interrupted by " + signal_name(interrupt_signal()) + " while reading the checkpoints";
            break;
        }
        if (c + ranks < chunks.size()) pass.prefetch(chunks[c + ranks].first, chunks[c + ranks].second);
        loop.failure = run_chunk(pass, plan.spans, chunks[c], workers);
        loop.progress.bytes_done += chunk_bytes[c];
        loop.progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (options.progress &&
            (std::chrono::duration<double>(Clock::now() - last_report).count() >= 1.0 || c + 1 == chunks.size())) {
            options.progress(loop.progress);
            last_report = Clock::now();
        }
    }
    return loop;
}

// this rank's failure: a clean stop when a signal caused it, else the error it found
void stop_on_own_failure(const std::string& failure) {
    if (failure.empty()) return;
    if (interrupted()) throw Interrupted(interrupt_signal(), failure);
    fail(failure);
}

// Threads, then ranks: one vector of every group's upper triangle, the bytes read and a failure
// flag, added over the ranks; worker 0 then holds the sums of all.
void sum_over_ranks(std::vector<Worker>& workers, std::size_t groups, std::size_t n, ChunkLoop& loop,
                    const GramOptions& options) {
    const std::size_t cells = groups * n * n, digests = cells + 2;
    std::vector<double> flat(digests + 4 * (n + 1), 0.0);
    for (const auto& w : workers)
        for (std::size_t g = 0; g < groups; ++g)
            for (std::size_t k = 0; k < n * n; ++k)
                flat[g * n * n + k] += w.acc[g][k];
    flat[cells] = double(loop.progress.bytes_done);
    flat[cells + 1] = loop.failure.empty() ? 0.0 : 1.0;
    // the digests, sums modulo 2^64, travel as four 16-bit pieces each: their sums over the ranks
    // are exact in double, and put together again they are the sum modulo 2^64
    for (std::size_t input = 0; input <= n; ++input) {
        std::uint64_t mine = 0;
        for (const auto& w : workers)
            mine += w.digest[input];
        for (std::size_t piece = 0; piece < 4; ++piece)
            flat[digests + 4 * input + piece] = double((mine >> (16 * piece)) & 0xffff);
    }
    options.sum_across_ranks(flat);
    stop_on_own_failure(loop.failure); // before blaming another rank
    BASIN_CHECK(flat[cells + 1] == 0, "map: another rank failed (see its message)");
    for (std::size_t t = 0; t < workers.size(); ++t)
        for (std::size_t g = 0; g < groups; ++g)
            for (std::size_t k = 0; k < n * n; ++k)
                workers[t].acc[g][k] = t == 0 ? flat[g * n * n + k] : 0.0;
    for (std::size_t input = 0; input <= n; ++input) {
        std::uint64_t all = 0;
        for (std::size_t piece = 0; piece < 4; ++piece)
            all += std::uint64_t(flat[digests + 4 * input + piece]) << (16 * piece);
        for (std::size_t t = 0; t < workers.size(); ++t)
            workers[t].digest[input] = t == 0 ? all : 0;
    }
    loop.progress.bytes_done = std::uint64_t(flat[cells]);
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
    BASIN_CHECK(!model_paths.empty(), "map: no models");
    const std::size_t rank = std::size_t(std::max(0, options.rank)), ranks = std::size_t(std::max(1, options.ranks));
    BASIN_CHECK(rank < ranks, "map: rank ", rank, " of ", ranks);
    BASIN_CHECK(ranks == 1 || options.sum_across_ranks, "map: several ranks need a way to add their results");
    CheckpointTensors base(base_path);
    std::vector<std::unique_ptr<CheckpointTensors>> checkpoints;
    for (const auto& path : model_paths)
        checkpoints.push_back(std::make_unique<CheckpointTensors>(path));

    // ---- the plan: body, stream (blocks and spans), memory, chunks
    GramResult result;
    const BodySelection selection = select_body(base_path, base, checkpoints, model_paths, options, result);
    for (std::size_t m : selection.used)
        result.models.push_back(model_paths[m]);
    const std::size_t n = selection.used.size();
    BASIN_CHECK(options.known < n && (options.known == 0 || selection.used[options.known - 1] == options.known - 1),
                "map: the first ", options.known, " models must all match the body, and a new one must follow them");
    result.body = selection.body;
    result.pairs = n * (n + 1) / 2 - options.known * (options.known + 1) / 2;
    const Stream stream = build_stream(base, checkpoints, selection, options.per_layer, result);
    const std::size_t groups = result.layers.size();
    const bool bf16 = options.precision == GramPrecision::bf16;
    const int threads = std::max(1, options.threads);
    const GramMemoryPlan memory = plan_gram_memory(gram_stream_shape(stream.plan, stream.layouts, groups, bf16),
                                                   threads, options.memory_limit, current_rss_bytes());
    result.chunk_parameters = agree_chunk_columns(memory, n, options);
    const auto chunks = cut_gram_chunks(stream.plan.spans, result.chunk_parameters);
    std::vector<std::uint64_t> chunk_bytes; // tensor bytes read per chunk, over all inputs
    for (const auto& [first, last] : chunks) {
        std::uint64_t bytes = 0;
        for (std::size_t s = first; s < last; ++s)
            for (const auto& piece : stream.plan.spans[s].pieces)
                bytes += piece.count * stream.column_bytes(piece.tensor);
        chunk_bytes.push_back(bytes);
    }

    // ---- the pass
    std::vector<const SafetensorsFile*> files;
    for (const auto& f : base.files())
        files.push_back(f.get());
    for (std::size_t m : selection.used)
        for (const auto& f : checkpoints[m]->files())
            files.push_back(f.get());
    const TensorReader reader(files);
    const SpanPass pass(stream, reader, bf16, options.known, base_path, result.models);
    std::vector<Worker> workers = make_workers(threads, stream.plan, groups, bf16);
    SingleThreadedBlas single_threaded;
    ChunkLoop loop = run_my_chunks(pass, stream.plan, chunks, chunk_bytes, workers, rank, ranks, options, start);
    if (ranks > 1) sum_over_ranks(workers, groups, n, loop, options);
    stop_on_own_failure(loop.failure);

    reduce_workers(workers, groups, n, result);
    result.bytes_read = loop.progress.bytes_done;
    result.peak_rss = peak_rss_bytes();
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

} // namespace basin
