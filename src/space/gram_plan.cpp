#include "basin/space/gram_plan.h"

#include "basin/core/error.h"

#include <algorithm>
#include <numeric>

namespace basin {

std::vector<GramBlock> cut_gram_blocks(const std::vector<GramTensorLayout>& tensors) {
    std::vector<GramBlock> blocks;
    for (std::size_t ti = 0; ti < tensors.size(); ++ti) {
        const auto& t = tensors[ti];
        for (std::int64_t offset = 0; offset < t.numel;) {
            if (blocks.empty() || blocks.back().group != t.group || blocks.back().columns == kGramBlockColumns)
                blocks.push_back({t.group, 0, {}});
            GramBlock& b = blocks.back();
            const std::int64_t take = std::min(t.numel - offset, kGramBlockColumns - b.columns);
            b.segments.push_back({ti, offset, take});
            b.columns += take;
            offset += take;
        }
    }
    return blocks;
}

std::vector<GramSpan> cut_gram_spans(const std::vector<GramBlock>& blocks, std::size_t span_blocks) {
    std::vector<GramSpan> spans;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        if (spans.empty() || blocks[spans.back().first_block].group != blocks[b].group ||
            b - spans.back().first_block == span_blocks)
            spans.push_back({b, b, 0, {}});
        GramSpan& span = spans.back();
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

GramStreamPlan plan_gram_stream(const std::vector<GramTensorLayout>& tensors, std::size_t models) {
    GramStreamPlan plan;
    plan.models = models;
    plan.value_bytes.assign(models + 1, 0);
    for (const auto& t : tensors) {
        BASIN_CHECK(t.value_bytes.size() == models + 1, "gram plan: a tensor lists ", t.value_bytes.size(),
                    " value sizes, expected ", models + 1);
        for (std::size_t i = 0; i <= models; ++i)
            plan.value_bytes[i] = std::max(plan.value_bytes[i], t.value_bytes[i]);
    }
    plan.raw_column_bytes = std::accumulate(plan.value_bytes.begin(), plan.value_bytes.end(), std::size_t(0));
    plan.blocks = cut_gram_blocks(tensors);
    // bytes are at least one per input, so the division is safe once there is a tensor
    const std::size_t by_bytes = plan.raw_column_bytes == 0
                                     ? kGramMaxSpanBlocks
                                     : kGramSpanBytes / (plan.raw_column_bytes * std::size_t(kGramBlockColumns));
    plan.span_blocks = std::clamp<std::size_t>(std::min(by_bytes, plan.blocks.size() / 64), 1, kGramMaxSpanBlocks);
    plan.span_columns = plan.span_blocks * std::size_t(kGramBlockColumns);
    plan.raw_offset.assign(models + 1, 0);
    for (std::size_t i = 1; i <= models; ++i)
        plan.raw_offset[i] = plan.raw_offset[i - 1] + plan.value_bytes[i - 1] * plan.span_columns;
    plan.spans = cut_gram_spans(plan.blocks, plan.span_blocks);
    return plan;
}

std::vector<std::pair<std::size_t, std::size_t>> cut_gram_chunks(const std::vector<GramSpan>& spans,
                                                                 std::int64_t chunk_columns) {
    std::vector<std::pair<std::size_t, std::size_t>> chunks;
    for (std::size_t s = 0; s < spans.size();) {
        std::size_t e = s;
        std::int64_t columns = 0;
        while (e < spans.size() && (e == s || columns + spans[e].columns <= chunk_columns))
            columns += spans[e++].columns;
        chunks.emplace_back(s, e);
        s = e;
    }
    return chunks;
}

GramStreamShape gram_stream_shape(const GramStreamPlan& plan, const std::vector<GramTensorLayout>& tensors,
                                  std::size_t groups, bool bf16) {
    GramStreamShape shape;
    shape.models = plan.models, shape.groups = groups, shape.blocks = plan.blocks.size();
    shape.spans = plan.spans.size(), shape.span_columns = plan.span_columns;
    shape.raw_column_bytes = plan.raw_column_bytes, shape.bf16 = bf16;
    for (const auto& t : tensors)
        shape.bytes_per_column = std::max<std::uint64_t>(
            shape.bytes_per_column, std::accumulate(t.value_bytes.begin(), t.value_bytes.end(), std::uint64_t(0)));
    return shape;
}

} // namespace basin
