// Training a RoBERTa-style byte-level BPE tokenizer on a text corpus.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace basin::text {

struct BpeTrainOptions {
    std::size_t vocab_size = 8000;   // including the 256 byte symbols and 5 special tokens
    std::uint64_t min_frequency = 2; // a pair seen fewer times is never merged
};

struct BpeTrainResult {
    nlohmann::json tokenizer; // tokenizer.json
    std::uint64_t words = 0, distinct_words = 0;
    std::size_t merges = 0;
};

// texts: the corpus, one string per document, lines split at '\n' (data/corpus.h reads files and
// folders into them). `source` names the corpus in errors: one that cannot support the requested
// vocabulary is an error naming it.
BpeTrainResult train_byte_level_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options,
                                    const std::string& source);

} // namespace basin::text
