// The stages of a Hugging Face tokenizer pipeline, each built from its tokenizer.json object:
//   normalizer -> pre-tokenizer -> model -> post-processor (in tokenizer.h).
// Pipeline text is UTF-32 so that every stage works on whole characters.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace basin::text {

class Normalizer {
  public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::u32string& text) const = 0;
};

class PreTokenizer {
  public:
    virtual ~PreTokenizer() = default;
    // Splits every piece further. first_segment: the pieces come from the start of the input
    // (Metaspace's prepend_scheme "first" needs it).
    virtual void split(std::vector<std::u32string>& pieces, bool first_segment) const = 0;
};

struct Token {
    std::int32_t id;
    std::string text;
};

class TokenModel {
  public:
    virtual ~TokenModel() = default;
    virtual void tokenize(const std::u32string& piece, std::vector<Token>& out) const = 0;
    virtual std::int32_t token_to_id(const std::string& token) const = 0; // -1 if absent
    virtual std::string id_to_token(std::int32_t id) const = 0;           // "" if absent
    virtual std::size_t vocab_size() const = 0;
    virtual std::string type() const = 0;
    virtual nlohmann::json to_json() const = 0;
};

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec, const std::string& where);
std::unique_ptr<TokenModel> make_model(const nlohmann::json& spec, const std::string& where);

// Matches of a regular expression (ICU syntax, which covers the Oniguruma patterns used in
// tokenizer.json) as [begin, end) character ranges.
std::vector<std::pair<std::size_t, std::size_t>> regex_matches(const std::u32string& pattern,
                                                               const std::u32string& text, const std::string& where);

// GPT-2's byte <-> printable character table used by byte-level BPE.
const std::u32string& bytes_to_unicode();
int unicode_to_byte(char32_t c); // -1 if not a byte-level character

} // namespace basin::text
