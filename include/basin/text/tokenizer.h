// A Hugging Face tokenizer loaded from tokenizer.json: added/special tokens, normalizer,
// pre-tokenizer, model (BPE, WordPiece, Unigram), post-processor, truncation and padding.
// Produces the same ids as the Hugging Face implementation (checked against
// @huggingface/tokenizers in tests/parity).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace basin::text {

class Normalizer;
class PreTokenizer;
class TokenModel;

struct Encoding {
    std::vector<std::int32_t> ids;
    std::vector<std::int32_t> type_ids;
    std::vector<std::int8_t> special_mask; // 1 for tokens added by the post-processor
    std::vector<std::int8_t> attention_mask;
    std::vector<std::string> tokens;
    std::size_t size() const { return ids.size(); }
};

enum class TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond };
enum class PaddingSide { Right, Left };

struct TruncationOptions {
    std::size_t max_length = 0; // 0 = no truncation; counts the special tokens
    TruncationStrategy strategy = TruncationStrategy::LongestFirst;
};

struct PaddingOptions {
    bool enabled = false;
    PaddingSide side = PaddingSide::Right;
    std::size_t fixed_length = 0; // 0 = pad to the longest of the batch
    std::size_t multiple_of = 0;  // 0 = no rounding
    std::int32_t pad_id = 0;
    std::int32_t pad_type_id = 0;
    std::string pad_token = "[PAD]";
};

struct AddedToken {
    std::int32_t id = 0;
    std::string content;
    bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

class Tokenizer {
  public:
    static Tokenizer from_file(const std::filesystem::path& path);
    static Tokenizer from_json(const nlohmann::json& json, const std::string& where);
    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    Encoding encode(std::string_view text, std::optional<std::string_view> pair = std::nullopt,
                    bool add_special_tokens = true) const;
    // The same with explicit truncation options instead of the tokenizer's own, so that one
    // const tokenizer serves callers that need another max_length.
    Encoding encode(std::string_view text, std::optional<std::string_view> pair, bool add_special_tokens,
                    const TruncationOptions& truncation) const;
    // Encodes every input and pads the batch when padding is enabled.
    std::vector<Encoding> encode_batch(const std::vector<std::pair<std::string, std::optional<std::string>>>& inputs,
                                       bool add_special_tokens = true) const;
    void pad(std::vector<Encoding>& batch) const;
    // The normalizer's output for text (added tokens are not split out first).
    std::string normalize(std::string_view text) const;

    std::int32_t token_to_id(const std::string& token) const; // -1 if unknown
    std::string id_to_token(std::int32_t id) const;
    std::size_t vocab_size() const; // model vocab plus added tokens beyond it
    std::size_t num_special_tokens(bool pair) const;
    const std::vector<AddedToken>& added_tokens() const { return added_; }
    std::string model_type() const;

    TruncationOptions& truncation() { return truncation_; }
    const TruncationOptions& truncation() const { return truncation_; }
    PaddingOptions& padding() { return padding_; }
    const PaddingOptions& padding() const { return padding_; }
    // SHA-256 of the tokenizer.json it was made from (canonical dump): names it in cache keys.
    // Only the hash is kept: a copy of the JSON would double the memory of a large vocabulary.
    const std::string& spec_sha256() const { return spec_sha256_; }

  private:
    Tokenizer();
    struct Segment {
        std::u32string text;
        std::int32_t added = -1; // index into added_ when the segment is an added token
    };
    std::vector<Segment> split_added(const std::u32string& text, bool normalized) const;
    Encoding tokenize(std::string_view text) const; // model tokens, no special tokens
    Encoding post_process(Encoding a, std::optional<Encoding> b, bool add_special,
                          const TruncationOptions& truncation) const;

    std::string spec_sha256_;
    std::unique_ptr<Normalizer> normalizer_;
    std::unique_ptr<PreTokenizer> pre_tokenizer_;
    std::unique_ptr<TokenModel> model_;
    struct PostProcessor;
    std::unique_ptr<PostProcessor> post_;
    std::vector<AddedToken> added_;
    std::vector<std::u32string> added_raw_, added_normalized_; // match patterns per added token
    TruncationOptions truncation_;
    PaddingOptions padding_;
};

} // namespace basin::text

namespace basin::text {

// A RoBERTa-style byte-level BPE tokenizer.json: special tokens <s>=0, <pad>=1, </s>=2,
// <unk>=3, then the 256 byte symbols, then one token per merge, then <mask>.
// merges are pairs of byte-level symbol strings (as in merges.txt).
nlohmann::json byte_level_bpe_json(const std::vector<std::pair<std::string, std::string>>& merges);

} // namespace basin::text
