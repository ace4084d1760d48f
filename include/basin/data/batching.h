// Tokenizing a dataset once and grouping it into batches of similar length, so that each batch
// pads only to its own longest example (dynamic padding).
#pragma once

#include "basin/data/dataset.h"
#include "basin/text/tokenizer.h"

#include <cstdint>
#include <vector>

namespace basin {

struct TokenizedExamples {
    std::vector<text::Encoding> encodings; // truncated to max_length, not padded
    std::size_t total_tokens = 0;
};

// Tokenizes every example (text and optional pair) with truncation to max_length, on `threads`
// threads (0 = hardware concurrency).
TokenizedExamples tokenize_examples(const Dataset& data, const text::Tokenizer& tokenizer, std::size_t max_length,
                                    int threads = 0);

// Groups example indices into batches of at most batch_size. sort_by_length: examples are
// ordered by length first (stable, so ties keep file order); otherwise file order.
std::vector<std::vector<std::size_t>> make_batches(const std::vector<text::Encoding>& encodings, std::size_t batch_size,
                                                   bool sort_by_length);

} // namespace basin
