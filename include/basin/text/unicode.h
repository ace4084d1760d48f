// Unicode helpers for the tokenizers: UTF-8 <-> code points, character classes with the exact
// definitions Hugging Face tokenizers uses (Rust char semantics), and normalization forms.
// Tables come from ICU, never hand-written.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace basin::text {

// Decodes UTF-8; throws basin::Error "<where>: invalid UTF-8 at byte N" on malformed input.
std::u32string utf8_decode(std::string_view bytes, std::string_view where = "text");
// True when bytes is well-formed UTF-8 (sets *bad_offset to the first bad byte otherwise).
bool utf8_valid(std::string_view bytes, std::size_t* bad_offset = nullptr);
std::string utf8_encode(std::u32string_view text);
void utf8_append(std::string& out, char32_t cp);

bool is_whitespace(char32_t c);   // Unicode White_Space (Rust char::is_whitespace)
bool is_letter(char32_t c);       // general category L*
bool is_number(char32_t c);       // general category N*
bool is_alphanumeric(char32_t c); // L* or N* (Rust char::is_alphanumeric)
bool is_punctuation(char32_t c);  // general category P*
bool is_bert_punctuation(
    char32_t c); // ASCII punctuation or P* as the Rust tokenizers classify (BertPreTokenizer, Punctuation)
bool is_bert_control(
    char32_t c); // Cc, Cf, Co except \t \n \r, as the Rust tokenizers classify (BertNormalizer clean_text)
bool is_mark_nonspacing(char32_t c); // Mn
bool is_bert_accent(char32_t c);     // Mn as the Rust tokenizers classify (BertNormalizer strip_accents)
bool is_mark(char32_t c);            // Mn, Mc, Me
bool is_cjk(char32_t c);             // the CJK ideograph blocks BERT isolates

std::u32string to_lower(std::u32string_view text); // per character, full mappings
enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::u32string normalize(std::u32string_view text, NormalForm form);

} // namespace basin::text
