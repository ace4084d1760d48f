// The stream plan of a Gram pass (space/gram.h): how the body's parameters are cut into blocks,
// spans and chunks, apart from any file, so that tests can check the cuts directly.
//
// The body is a list of tensors in stream order, each with its layer group and, per input (the N
// models, then the base), the bytes one stored value takes. Blocks hold at most kGramBlockColumns
// parameters of one group; a span is up to kGramMaxSpanBlocks consecutive blocks of one group,
// whose raw bytes over all N + 1 inputs stay under kGramSpanBytes, read together (one read per
// tensor piece and input); chunks are runs of spans, sized by the memory plan. Blocks and spans
// depend only on the tensors and N, never on the memory limit, the thread count or the ranks:
// that is what makes the Gram matrix independent of the limit. Torch-free.
#pragma once

#include "basin/space/gram.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace basin {

// A span's raw bytes (all N + 1 inputs as stored) are kept under 8 MB per thread; at most 8 blocks
// (32,768 columns: 64 KB reads of F16, 256 KB of F64).
constexpr std::size_t kGramSpanBytes = std::size_t(8) << 20;
constexpr std::size_t kGramMaxSpanBlocks = 8;

// One body tensor as the plan sees it.
struct GramTensorLayout {
    std::int64_t numel = 0;
    std::size_t group = 0;
    std::vector<std::size_t> value_bytes; // per input: models 0..N-1, then the base
};

// count parameters of tensor from offset.
struct GramSegment {
    std::size_t tensor = 0;
    std::int64_t offset = 0;
    std::int64_t count = 0;
};

// At most kGramBlockColumns parameters of one layer group.
struct GramBlock {
    std::size_t group = 0;
    std::int64_t columns = 0;
    std::vector<GramSegment> segments;
};

// Blocks [first_block, last_block) of one group, with the tensor pieces they cover merged into one
// per tensor (pieces: what is read).
struct GramSpan {
    std::size_t first_block = 0, last_block = 0;
    std::int64_t columns = 0;
    std::vector<GramSegment> pieces;
};

struct GramStreamPlan {
    std::size_t models = 0; // N
    std::vector<GramBlock> blocks;
    std::vector<GramSpan> spans;
    std::size_t span_blocks = 1;  // the most blocks of one span
    std::size_t span_columns = 0; // span_blocks x kGramBlockColumns: a thread's buffers hold this
    // A span's raw bytes are laid out input after input: input i at raw_offset[i] (N: the base),
    // span_columns values at the widest size of that input's values; raw_column_bytes is their sum.
    std::vector<std::size_t> value_bytes, raw_offset;
    std::size_t raw_column_bytes = 0;
};

// The stream cut into blocks never mixing layer groups (tensors of one group must be adjacent).
std::vector<GramBlock> cut_gram_blocks(const std::vector<GramTensorLayout>& tensors);

// Runs of at most span_blocks consecutive blocks of one group, each tensor piece read once.
std::vector<GramSpan> cut_gram_spans(const std::vector<GramBlock>& blocks, std::size_t span_blocks);

// Blocks, spans and the span buffer layout of N models' stream. A small model keeps at least 64
// spans, so that threads and ranks get even shares.
GramStreamPlan plan_gram_stream(const std::vector<GramTensorLayout>& tensors, std::size_t models);

// Chunks [first span, last span): consecutive spans of at most chunk_columns parameters together,
// at least one span each.
std::vector<std::pair<std::size_t, std::size_t>> cut_gram_chunks(const std::vector<GramSpan>& spans,
                                                                 std::int64_t chunk_columns);

// The shape plan_gram_memory sizes the pass from.
GramStreamShape gram_stream_shape(const GramStreamPlan& plan, const std::vector<GramTensorLayout>& tensors,
                                  std::size_t groups, bool bf16);

} // namespace basin
