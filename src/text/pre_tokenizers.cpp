// Pre-tokenizers: ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, Split,
// Punctuation, Digits, CharDelimiterSplit and Sequence.
#include "basin/core/error.h"
#include "basin/text/components.h"
#include "basin/text/unicode.h"

#include <unicode/uregex.h>

namespace basin::text {

using nlohmann::json;
using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;

const std::u32string& bytes_to_unicode() {
    static const std::u32string table = [] {
        std::u32string t(256, 0);
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            t[std::size_t(b)] = printable ? char32_t(b) : next++;
        }
        return t;
    }();
    return table;
}

int unicode_to_byte(char32_t c) {
    static const std::vector<int> inverse = [] {
        std::vector<int> inv(512, -1);
        const auto& table = bytes_to_unicode();
        for (int b = 0; b < 256; ++b)
            inv[table[std::size_t(b)]] = b;
        return inv;
    }();
    return c < inverse.size() ? inverse[c] : -1;
}

Ranges regex_matches(const std::u32string& pattern, const std::u32string& text, const std::string& where) {
    auto to_utf16 = [](const std::u32string& s, std::vector<std::size_t>* index) {
        std::vector<UChar> out;
        for (std::size_t i = 0; i < s.size(); ++i) {
            char32_t c = s[i];
            if (index) index->push_back(i);
            if (c < 0x10000) {
                out.push_back(UChar(c));
            } else {
                out.push_back(UChar(0xD800 + ((c - 0x10000) >> 10)));
                out.push_back(UChar(0xDC00 + ((c - 0x10000) & 0x3ff)));
                if (index) index->push_back(i);
            }
        }
        if (index) index->push_back(s.size());
        return out;
    };
    std::vector<UChar> pat = to_utf16(pattern, nullptr);
    std::vector<std::size_t> index;
    std::vector<UChar> str = to_utf16(text, &index);
    UErrorCode status = U_ZERO_ERROR;
    UParseError parse_error;
    URegularExpression* re = uregex_open(pat.data(), int32_t(pat.size()), 0, &parse_error, &status);
    BASIN_CHECK(U_SUCCESS(status), where, ": cannot compile regex '", utf8_encode(pattern), "' (", u_errorName(status),
                ")");
    uregex_setText(re, str.data(), int32_t(str.size()), &status);
    Ranges out;
    while (uregex_findNext(re, &status)) {
        int32_t b = uregex_start(re, 0, &status), e = uregex_end(re, 0, &status);
        if (U_FAILURE(status)) break;
        if (e > b) out.emplace_back(index[std::size_t(b)], index[std::size_t(e)]);
    }
    uregex_close(re);
    BASIN_CHECK(U_SUCCESS(status), where, ": regex matching failed (", u_errorName(status), ")");
    return out;
}

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& spec, const std::string& where) {
    const std::string name = spec.value("behavior", std::string("Isolated"));
    if (name == "Removed") return Behavior::Removed;
    if (name == "Isolated") return Behavior::Isolated;
    if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
    if (name == "MergedWithNext") return Behavior::MergedWithNext;
    if (name == "Contiguous") return Behavior::Contiguous;
    fail(where, ": unknown split behavior '", name, "'");
}

// Splits text around matches according to behavior; empty pieces are dropped.
void split_by(const std::u32string& text, const Ranges& matches, Behavior behavior, std::vector<std::u32string>& out) {
    // (begin, end, is_match) covering the whole text
    std::vector<std::tuple<std::size_t, std::size_t, bool>> parts;
    std::size_t last = 0;
    for (auto [b, e] : matches) {
        if (b > last) parts.emplace_back(last, b, false);
        if (behavior == Behavior::Contiguous && !parts.empty() && std::get<2>(parts.back()) &&
            std::get<1>(parts.back()) == b)
            std::get<1>(parts.back()) = e;
        else
            parts.emplace_back(b, e, true);
        last = e;
    }
    if (last < text.size()) parts.emplace_back(last, text.size(), false);

    std::vector<std::pair<std::size_t, std::size_t>> pieces;
    bool pending_next = false; // MergedWithNext: the previous match waits for the next piece
    for (auto [b, e, is_match] : parts) {
        switch (behavior) {
        case Behavior::Removed:
            if (!is_match) pieces.emplace_back(b, e);
            break;
        case Behavior::Isolated:
        case Behavior::Contiguous:
            pieces.emplace_back(b, e);
            break;
        case Behavior::MergedWithPrevious:
            if (is_match && !pieces.empty() && pieces.back().second == b)
                pieces.back().second = e;
            else
                pieces.emplace_back(b, e);
            break;
        case Behavior::MergedWithNext:
            if (pending_next)
                pieces.back().second = e;
            else
                pieces.emplace_back(b, e);
            pending_next = is_match;
            break;
        }
    }
    for (auto [b, e] : pieces)
        if (e > b) out.push_back(text.substr(b, e - b));
}

template <typename Fn> void split_each(std::vector<std::u32string>& pieces, Fn&& fn) {
    std::vector<std::u32string> out;
    out.reserve(pieces.size());
    for (const auto& piece : pieces)
        fn(piece, out);
    pieces.swap(out);
}

// GPT-2's pattern, hand-coded for speed:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
Ranges gpt2_split(const std::u32string& s) {
    Ranges out;
    const std::size_t n = s.size();
    std::size_t i = 0;
    auto other = [](char32_t c) { return !is_whitespace(c) && !is_letter(c) && !is_number(c); };
    while (i < n) {
        std::size_t start = i;
        char32_t c = s[i];
        if (c == '\'' && i + 1 < n) {
            char32_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
            std::size_t len = 0;
            if (a == 's' || a == 't' || a == 'm' || a == 'd')
                len = 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                len = 3;
            if (len) {
                out.emplace_back(i, i + len);
                i += len;
                continue;
            }
        }
        std::size_t j = (c == ' ' && i + 1 < n) ? i + 1 : i; // optional leading space
        if (j < n && is_letter(s[j])) {
            while (j < n && is_letter(s[j]))
                ++j;
            out.emplace_back(start, j);
            i = j;
            continue;
        }
        if (j < n && is_number(s[j])) {
            while (j < n && is_number(s[j]))
                ++j;
            out.emplace_back(start, j);
            i = j;
            continue;
        }
        if (j < n && other(s[j])) {
            while (j < n && other(s[j]))
                ++j;
            out.emplace_back(start, j);
            i = j;
            continue;
        }
        // whitespace: \s+(?!\S) keeps the last space for the next token, else \s+
        std::size_t k = i;
        while (k < n && is_whitespace(s[k]))
            ++k;
        if (k == n || k - i == 1) {
            out.emplace_back(i, k);
            i = k;
        } else {
            out.emplace_back(i, k - 1);
            i = k - 1;
        }
    }
    return out;
}

class ByteLevel : public PreTokenizer {
  public:
    explicit ByteLevel(const json& spec)
        : add_prefix_space_(spec.value("add_prefix_space", true)), use_regex_(spec.value("use_regex", true)) {}

    void split(std::vector<std::u32string>& pieces, bool) const override {
        const auto& table = bytes_to_unicode();
        split_each(pieces, [&](const std::u32string& piece, std::vector<std::u32string>& out) {
            std::u32string text = piece;
            if (add_prefix_space_ && (text.empty() || text[0] != ' ')) text.insert(text.begin(), ' ');
            Ranges parts = use_regex_ ? gpt2_split(text) : Ranges{{0, text.size()}};
            for (auto [b, e] : parts) {
                std::string bytes = utf8_encode(std::u32string_view(text).substr(b, e - b));
                std::u32string mapped;
                mapped.reserve(bytes.size());
                for (unsigned char byte : bytes)
                    mapped.push_back(table[byte]);
                out.push_back(std::move(mapped));
            }
        });
    }

  private:
    bool add_prefix_space_, use_regex_;
};

class BertPreTokenizer : public PreTokenizer {
  public:
    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [](const std::u32string& piece, std::vector<std::u32string>& out) {
            std::u32string word;
            for (char32_t c : piece) {
                if (is_whitespace(c)) {
                    if (!word.empty()) out.push_back(std::move(word));
                    word.clear();
                } else if (is_bert_punctuation(c)) {
                    if (!word.empty()) out.push_back(std::move(word));
                    word.clear();
                    out.push_back(std::u32string(1, c));
                } else {
                    word.push_back(c);
                }
            }
            if (!word.empty()) out.push_back(std::move(word));
        });
    }
};

// Oniguruma's Unicode \w: letters, marks, decimal numbers, connector punctuation.
bool is_word_char(char32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    return is_letter(c) || is_mark(c) || (is_number(c) && u_charType(UChar32(c)) == U_DECIMAL_DIGIT_NUMBER) ||
           u_charType(UChar32(c)) == U_CONNECTOR_PUNCTUATION;
}

class Whitespace : public PreTokenizer { // \w+|[^\w\s]+
  public:
    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [](const std::u32string& s, std::vector<std::u32string>& out) {
            std::size_t i = 0;
            while (i < s.size()) {
                if (is_whitespace(s[i])) {
                    ++i;
                    continue;
                }
                bool word = is_word_char(s[i]);
                std::size_t j = i;
                while (j < s.size() && !is_whitespace(s[j]) && is_word_char(s[j]) == word)
                    ++j;
                out.push_back(s.substr(i, j - i));
                i = j;
            }
        });
    }
};

class WhitespaceSplit : public PreTokenizer {
  public:
    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [](const std::u32string& s, std::vector<std::u32string>& out) {
            std::size_t i = 0;
            while (i < s.size()) {
                while (i < s.size() && is_whitespace(s[i]))
                    ++i;
                std::size_t j = i;
                while (j < s.size() && !is_whitespace(s[j]))
                    ++j;
                if (j > i) out.push_back(s.substr(i, j - i));
                i = j;
            }
        });
    }
};

class Metaspace : public PreTokenizer {
  public:
    Metaspace(const json& spec, const std::string& where) {
        std::u32string r = utf8_decode(spec.value("replacement", std::string("\xE2\x96\x81")), where);
        BASIN_CHECK(r.size() == 1, where, ": Metaspace replacement must be one character");
        replacement_ = r[0];
        if (spec.contains("prepend_scheme")) {
            prepend_ = spec["prepend_scheme"].get<std::string>();
        } else {
            prepend_ = spec.value("add_prefix_space", true) ? "always" : "never";
        }
        BASIN_CHECK(prepend_ == "always" || prepend_ == "first" || prepend_ == "never", where,
                    ": unknown prepend_scheme '", prepend_, "'");
        split_ = spec.value("split", true);
    }

    void split(std::vector<std::u32string>& pieces, bool first_segment) const override {
        bool first = true;
        split_each(pieces, [&](const std::u32string& piece, std::vector<std::u32string>& out) {
            std::u32string text = piece;
            for (auto& c : text)
                if (c == ' ') c = replacement_;
            bool prepend = prepend_ == "always" || (prepend_ == "first" && first_segment && first);
            first = false;
            if (prepend && (text.empty() || text[0] != replacement_)) text.insert(text.begin(), replacement_);
            if (!split_) {
                out.push_back(text);
                return;
            }
            Ranges matches;
            for (std::size_t i = 0; i < text.size(); ++i)
                if (text[i] == replacement_) matches.emplace_back(i, i + 1);
            split_by(text, matches, Behavior::MergedWithNext, out);
        });
    }

  private:
    char32_t replacement_;
    std::string prepend_;
    bool split_ = true;
};

class SplitPreTokenizer : public PreTokenizer {
  public:
    SplitPreTokenizer(const json& spec, const std::string& where) : where_(where) {
        auto pattern = spec.at("pattern");
        if (pattern.contains("String")) {
            literal_ = utf8_decode(pattern["String"].get<std::string>(), where);
        } else {
            BASIN_CHECK(pattern.contains("Regex"), where, ": Split pattern must be String or Regex");
            regex_ = utf8_decode(pattern["Regex"].get<std::string>(), where);
            is_regex_ = true;
        }
        behavior_ = parse_behavior(spec, where);
        invert_ = spec.value("invert", false);
    }

    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [&](const std::u32string& s, std::vector<std::u32string>& out) {
            Ranges matches;
            if (is_regex_) {
                matches = regex_matches(regex_, s, where_);
            } else if (!literal_.empty()) {
                for (std::size_t p = s.find(literal_); p != std::u32string::npos;
                     p = s.find(literal_, p + literal_.size()))
                    matches.emplace_back(p, p + literal_.size());
            }
            if (invert_) {
                Ranges inverted;
                std::size_t last = 0;
                for (auto [b, e] : matches) {
                    if (b > last) inverted.emplace_back(last, b);
                    last = e;
                }
                if (last < s.size()) inverted.emplace_back(last, s.size());
                matches.swap(inverted);
            }
            split_by(s, matches, behavior_, out);
        });
    }

  private:
    std::string where_;
    std::u32string literal_, regex_;
    bool is_regex_ = false, invert_ = false;
    Behavior behavior_ = Behavior::Isolated;
};

// Splits on characters for which pred holds, with a behavior.
template <typename Pred> class CharClassSplit : public PreTokenizer {
  public:
    CharClassSplit(Pred pred, Behavior behavior) : pred_(pred), behavior_(behavior) {}
    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [&](const std::u32string& s, std::vector<std::u32string>& out) {
            Ranges matches;
            for (std::size_t i = 0; i < s.size(); ++i)
                if (pred_(s[i])) matches.emplace_back(i, i + 1);
            split_by(s, matches, behavior_, out);
        });
    }

  private:
    Pred pred_;
    Behavior behavior_;
};

template <typename Pred> std::unique_ptr<PreTokenizer> char_split(Pred pred, Behavior behavior) {
    return std::make_unique<CharClassSplit<Pred>>(pred, behavior);
}

class Digits : public PreTokenizer {
  public:
    explicit Digits(bool individual) : individual_(individual) {}
    void split(std::vector<std::u32string>& pieces, bool) const override {
        split_each(pieces, [&](const std::u32string& s, std::vector<std::u32string>& out) {
            Ranges matches;
            for (std::size_t i = 0; i < s.size(); ++i)
                if (is_number(s[i]) && u_charType(UChar32(s[i])) == U_DECIMAL_DIGIT_NUMBER)
                    matches.emplace_back(i, i + 1);
            split_by(s, matches, individual_ ? Behavior::Isolated : Behavior::Contiguous, out);
        });
    }

  private:
    bool individual_;
};

class SequencePreTokenizer : public PreTokenizer {
  public:
    SequencePreTokenizer(const json& spec, const std::string& where) {
        for (const auto& child : spec.at("pretokenizers"))
            if (auto p = make_pre_tokenizer(child, where)) children_.push_back(std::move(p));
    }
    void split(std::vector<std::u32string>& pieces, bool first_segment) const override {
        for (const auto& p : children_)
            p->split(pieces, first_segment);
    }

  private:
    std::vector<std::unique_ptr<PreTokenizer>> children_;
};

} // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, const std::string& where) {
    if (spec.is_null()) return nullptr;
    BASIN_CHECK(spec.is_object() && spec.contains("type"), where, ": pre_tokenizer must be an object with a 'type'");
    const std::string type = spec["type"].get<std::string>();
    const std::string at = where + ": pre_tokenizer " + type;
    try {
        if (type == "ByteLevel") return std::make_unique<ByteLevel>(spec);
        if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
        if (type == "Whitespace") return std::make_unique<Whitespace>();
        if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplit>();
        if (type == "Metaspace") return std::make_unique<Metaspace>(spec, at);
        if (type == "Split") return std::make_unique<SplitPreTokenizer>(spec, at);
        if (type == "Punctuation")
            return char_split([](char32_t c) { return is_bert_punctuation(c); }, parse_behavior(spec, at));
        if (type == "CharDelimiterSplit") {
            std::u32string d = utf8_decode(spec.at("delimiter").get<std::string>(), at);
            BASIN_CHECK(d.size() == 1, at, ": delimiter must be one character");
            char32_t delimiter = d[0];
            return char_split([delimiter](char32_t c) { return c == delimiter; }, Behavior::Removed);
        }
        if (type == "Digits") return std::make_unique<Digits>(spec.value("individual_digits", false));
        if (type == "Sequence") return std::make_unique<SequencePreTokenizer>(spec, where);
    } catch (const nlohmann::json::exception& e) {
        fail(at, ": malformed (", e.what(), ")");
    }
    fail(where, ": unsupported pre_tokenizer type '", type, "'");
}

} // namespace basin::text
