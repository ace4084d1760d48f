// Training a RoBERTa-style byte-level BPE tokenizer on a text corpus.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace basin::text {

struct BpeTrainOptions {
    std::size_t vocab_size = 8000;   // including the 256 byte symbols and 5 special tokens
    std::uint64_t min_frequency = 2; // a pair seen fewer times is never merged
    std::function<void(const std::string&)> warn; // skipped files
};

struct BpeTrainResult {
    nlohmann::json tokenizer; // tokenizer.json
    std::size_t files = 0, skipped_files = 0;
    std::uint64_t bytes = 0, words = 0, distinct_words = 0;
    std::size_t merges = 0;
};

// corpus: a text file or a folder (read recursively). Empty or binary files are skipped with a
// warning naming them. A corpus that cannot support the requested vocabulary is an error.
BpeTrainResult train_byte_level_bpe(const std::filesystem::path& corpus, const BpeTrainOptions& options);

} // namespace basin::text
