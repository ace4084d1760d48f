// Normalizers: BertNormalizer, Lowercase, NFC/NFD/NFKC/NFKD, StripAccents, Strip, Replace,
// Prepend, Precompiled (SentencePiece charsmap) and Sequence.
#include "basin/core/error.h"
#include "basin/text/components.h"
#include "basin/text/unicode.h"

#include <cstring>
#include <memory>
#include <unicode/ubrk.h>
#include <unicode/utext.h>

namespace basin::text {
namespace {

using nlohmann::json;

bool flag(const json& spec, const char* key, bool fallback) {
    auto it = spec.find(key);
    return it == spec.end() || it->is_null() ? fallback : it->get<bool>();
}

class BertNormalizer : public Normalizer {
  public:
    explicit BertNormalizer(const json& spec)
        : clean_text_(flag(spec, "clean_text", true)), chinese_chars_(flag(spec, "handle_chinese_chars", true)),
          lowercase_(flag(spec, "lowercase", true)), strip_accents_(flag(spec, "strip_accents", lowercase_)) {}

    void normalize(std::u32string& text) const override {
        std::u32string out;
        out.reserve(text.size());
        for (char32_t c : text) {
            if (clean_text_) {
                if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
                if (is_whitespace(c)) c = ' ';
            }
            if (chinese_chars_ && is_cjk(c)) {
                out.push_back(' ');
                out.push_back(c);
                out.push_back(' ');
            } else {
                out.push_back(c);
            }
        }
        if (strip_accents_) {
            out = nfd_as_rust(out);
            std::u32string kept;
            kept.reserve(out.size());
            for (char32_t c : out)
                if (!is_bert_accent(c)) kept.push_back(c);
            out.swap(kept);
        }
        if (lowercase_) out = to_lower(out);
        text.swap(out);
    }

  private:
    // NFD, except for U+11938 (DIVES AKURU VOWEL SIGN O), whose decomposition (Unicode 13) the
    // Rust tokenizers' normalization tables lack: it is kept whole, as they keep it.
    static std::u32string nfd_as_rust(const std::u32string& text) {
        constexpr char32_t kUndecomposed = 0x11938;
        if (text.find(kUndecomposed) == std::u32string::npos) return text::normalize(text, NormalForm::NFD);
        std::u32string out;
        std::size_t start = 0;
        for (std::size_t at; (at = text.find(kUndecomposed, start)) != std::u32string::npos; start = at + 1) {
            out += text::normalize(std::u32string_view(text).substr(start, at - start), NormalForm::NFD);
            out.push_back(kUndecomposed);
        }
        return out + text::normalize(std::u32string_view(text).substr(start), NormalForm::NFD);
    }

    bool clean_text_, chinese_chars_, lowercase_, strip_accents_;
};

class LowercaseNormalizer : public Normalizer {
  public:
    void normalize(std::u32string& text) const override { text = to_lower(text); }
};

class UnicodeNormalizer : public Normalizer {
  public:
    explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
    void normalize(std::u32string& text) const override { text = text::normalize(text, form_); }

  private:
    NormalForm form_;
};

class StripAccents : public Normalizer {
  public:
    void normalize(std::u32string& text) const override {
        std::u32string kept;
        for (char32_t c : text)
            if (!is_mark(c)) kept.push_back(c);
        text.swap(kept);
    }
};

class Strip : public Normalizer {
  public:
    explicit Strip(const json& spec) : left_(flag(spec, "strip_left", true)), right_(flag(spec, "strip_right", true)) {}
    void normalize(std::u32string& text) const override {
        std::size_t b = 0, e = text.size();
        if (left_)
            while (b < e && is_whitespace(text[b]))
                ++b;
        if (right_)
            while (e > b && is_whitespace(text[e - 1]))
                --e;
        text = text.substr(b, e - b);
    }

  private:
    bool left_, right_;
};

// Pattern of Replace and Split: {"String": "..."} (literal) or {"Regex": "..."}.
struct Pattern {
    bool is_regex = false;
    std::u32string text;

    static Pattern parse(const json& spec, const std::string& where) {
        Pattern p;
        BASIN_CHECK(spec.is_object(), where, ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
        if (spec.contains("String")) {
            p.text = utf8_decode(spec["String"].get<std::string>(), where);
        } else if (spec.contains("Regex")) {
            p.is_regex = true;
            p.text = utf8_decode(spec["Regex"].get<std::string>(), where);
        } else {
            fail(where, ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
        }
        return p;
    }

    std::vector<std::pair<std::size_t, std::size_t>> find_all(const std::u32string& s, const std::string& where) const {
        if (is_regex) return regex_matches(text, s, where);
        std::vector<std::pair<std::size_t, std::size_t>> out;
        if (text.empty()) return out;
        for (std::size_t pos = s.find(text); pos != std::u32string::npos; pos = s.find(text, pos + text.size()))
            out.emplace_back(pos, pos + text.size());
        return out;
    }
};

class Replace : public Normalizer {
  public:
    Replace(const json& spec, const std::string& where)
        : where_(where), pattern_(Pattern::parse(spec.at("pattern"), where)),
          content_(utf8_decode(spec.at("content").get<std::string>(), where)) {}
    void normalize(std::u32string& text) const override {
        std::u32string out;
        std::size_t last = 0;
        for (auto [b, e] : pattern_.find_all(text, where_)) {
            out.append(text, last, b - last);
            out += content_;
            last = e;
        }
        out.append(text, last, std::u32string::npos);
        text.swap(out);
    }

  private:
    std::string where_;
    Pattern pattern_;
    std::u32string content_;
};

class Prepend : public Normalizer {
  public:
    Prepend(const json& spec, const std::string& where)
        : prefix_(utf8_decode(spec.at("prepend").get<std::string>(), where)) {}
    void normalize(std::u32string& text) const override {
        if (!text.empty()) text = prefix_ + text;
    }

  private:
    std::u32string prefix_;
};

// SentencePiece's precompiled normalization map: a little-endian uint32 trie size, a
// darts-clone double-array trie over UTF-8 bytes, then NUL-terminated replacement strings.
class Precompiled : public Normalizer {
  public:
    Precompiled(const json& spec, const std::string& where) : where_(where) {
        std::string blob = base64_decode(spec.at("precompiled_charsmap").get<std::string>());
        if (blob.empty()) return; // an empty map normalizes nothing
        BASIN_CHECK(blob.size() >= 4, where, ": precompiled_charsmap is truncated");
        std::uint32_t trie_bytes = std::uint8_t(blob[0]) | (std::uint8_t(blob[1]) << 8) |
                                   (std::uint8_t(blob[2]) << 16) | (std::uint32_t(std::uint8_t(blob[3])) << 24);
        BASIN_CHECK(trie_bytes % 4 == 0 && 4 + std::size_t(trie_bytes) <= blob.size(), where,
                    ": precompiled_charsmap trie size ", trie_bytes, " does not fit the map (", blob.size(), " bytes)");
        units_.resize(trie_bytes / 4);
        std::memcpy(units_.data(), blob.data() + 4, trie_bytes);
        normalized_ = blob.substr(4 + trie_bytes);
    }

    void normalize(std::u32string& text) const override {
        if (units_.empty()) return;
        // Hugging Face's semantics (the Rust tokenizers, checked against 0.20.3): the text is cut
        // into extended grapheme clusters; a cluster of fewer than 6 UTF-8 bytes whose start
        // matches a key of the map is replaced whole by the shortest matching key's value (so
        // "a" U+0308 U+0304 becomes "ä": the macron goes); any other cluster is mapped
        // character by character, a character without a key copied unchanged.
        const std::string utf8 = utf8_encode(text);
        std::string out;
        out.reserve(utf8.size());
        std::string replacement;
        std::size_t length = 0;
        for_each_grapheme(utf8, [&](std::string_view g) {
            if (g.size() < 6 && first_prefix(g, &length, &replacement)) {
                out += replacement;
                return;
            }
            for (std::size_t pos = 0; pos < g.size();) {
                const std::size_t n = std::min(g.size() - pos, utf8_char_length(static_cast<unsigned char>(g[pos])));
                const std::string_view c = g.substr(pos, n);
                if (first_prefix(c, &length, &replacement) && length == n)
                    out += replacement;
                else
                    out.append(c);
                pos += n;
            }
        });
        text = utf8_decode(out, where_);
    }

  private:
    static std::size_t utf8_char_length(unsigned char c) {
        return c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    }

    // Calls f with each extended grapheme cluster of utf8 (ICU's character break iterator).
    template <typename F> void for_each_grapheme(const std::string& utf8, F&& f) const {
        UErrorCode status = U_ZERO_ERROR;
        std::unique_ptr<UText, decltype(&utext_close)> ut(
            utext_openUTF8(nullptr, utf8.data(), std::int64_t(utf8.size()), &status), &utext_close);
        std::unique_ptr<UBreakIterator, decltype(&ubrk_close)> it(ubrk_open(UBRK_CHARACTER, "", nullptr, 0, &status),
                                                                  &ubrk_close);
        if (U_SUCCESS(status)) ubrk_setUText(it.get(), ut.get(), &status);
        BASIN_CHECK(U_SUCCESS(status), where_, ": grapheme segmentation failed (", u_errorName(status), ")");
        std::int32_t start = ubrk_first(it.get());
        for (std::int32_t end = ubrk_next(it.get()); end != UBRK_DONE; start = end, end = ubrk_next(it.get()))
            f(std::string_view(utf8).substr(std::size_t(start), std::size_t(end - start)));
    }

    // Walks the darts-clone double array over key; reports the shortest key that is a prefix.
    bool first_prefix(std::string_view key, std::size_t* length, std::string* replacement) const {
        auto offset = [](std::uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
        auto label = [](std::uint32_t unit) { return unit & ((1u << 31) | 0xff); };
        auto has_leaf = [](std::uint32_t unit) { return ((unit >> 8) & 1) == 1; };
        auto value = [](std::uint32_t unit) { return unit & ((1u << 31) - 1); };
        std::size_t node = offset(units_[0]);
        for (std::size_t i = 0; i < key.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(key[i]);
            if (c == 0) break;
            node ^= c;
            if (node >= units_.size() || label(units_[node]) != c) break;
            const std::uint32_t unit = units_[node];
            node ^= offset(unit);
            if (node >= units_.size()) break;
            if (has_leaf(unit)) {
                const std::size_t start = value(units_[node]);
                if (start >= normalized_.size()) break;
                const std::size_t end = normalized_.find('\0', start);
                *replacement = normalized_.substr(start, end == std::string::npos ? end : end - start);
                *length = i + 1;
                return true;
            }
        }
        return false;
    }

    static std::string base64_decode(const std::string& in) {
        auto value = [](char c) -> int {
            if (c >= 'A' && c <= 'Z') return c - 'A';
            if (c >= 'a' && c <= 'z') return c - 'a' + 26;
            if (c >= '0' && c <= '9') return c - '0' + 52;
            if (c == '+' || c == '-') return 62;
            if (c == '/' || c == '_') return 63;
            return -1;
        };
        std::string out;
        int bits = 0, buffer = 0;
        for (char c : in) {
            int v = value(c);
            if (v < 0) continue; // padding or whitespace
            buffer = (buffer << 6) | v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out.push_back(char((buffer >> bits) & 0xff));
            }
        }
        return out;
    }

    std::string where_;
    std::vector<std::uint32_t> units_;
    std::string normalized_;
};

class SequenceNormalizer : public Normalizer {
  public:
    SequenceNormalizer(const json& spec, const std::string& where) {
        for (const auto& child : spec.at("normalizers"))
            if (auto n = make_normalizer(child, where)) children_.push_back(std::move(n));
    }
    void normalize(std::u32string& text) const override {
        for (const auto& n : children_)
            n->normalize(text);
    }

  private:
    std::vector<std::unique_ptr<Normalizer>> children_;
};

} // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec, const std::string& where) {
    if (spec.is_null()) return nullptr;
    BASIN_CHECK(spec.is_object() && spec.contains("type"), where, ": normalizer must be an object with a 'type'");
    const std::string type = spec["type"].get<std::string>();
    const std::string at = where + ": normalizer " + type;
    try {
        if (type == "BertNormalizer") return std::make_unique<BertNormalizer>(spec);
        if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
        if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
        if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
        if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
        if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
        if (type == "StripAccents") return std::make_unique<StripAccents>();
        if (type == "Strip") return std::make_unique<Strip>(spec);
        if (type == "Replace") return std::make_unique<Replace>(spec, at);
        if (type == "Prepend") return std::make_unique<Prepend>(spec, at);
        if (type == "Precompiled") return std::make_unique<Precompiled>(spec, at);
        if (type == "Sequence") return std::make_unique<SequenceNormalizer>(spec, where);
    } catch (const nlohmann::json::exception& e) {
        fail(at, ": malformed (", e.what(), ")");
    }
    fail(where, ": unsupported normalizer type '", type, "'");
}

} // namespace basin::text
