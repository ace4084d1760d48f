#include "basin/text/unicode.h"

#include "basin/core/error.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <vector>

namespace basin::text {

bool utf8_valid(std::string_view bytes, std::size_t* bad_offset) {
    const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        std::size_t len;
        char32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        bool ok = i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            ok = (s[i + k] & 0xc0) == 0x80;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        // reject overlong forms, surrogates and values past U+10FFFF
        ok = ok && !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
             cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
        if (!ok) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

std::u32string utf8_decode(std::string_view bytes, std::string_view where) {
    std::size_t bad = 0;
    BASIN_CHECK(utf8_valid(bytes, &bad), where, ": invalid UTF-8 at byte ", bad);
    std::u32string out;
    out.reserve(bytes.size());
    const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
    for (std::size_t i = 0; i < bytes.size();) {
        unsigned char c = s[i];
        if (c < 0x80) {
            out.push_back(c);
            ++i;
        } else if ((c & 0xe0) == 0xc0) {
            out.push_back(((c & 0x1f) << 6) | (s[i + 1] & 0x3f));
            i += 2;
        } else if ((c & 0xf0) == 0xe0) {
            out.push_back(((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f));
            i += 3;
        } else {
            out.push_back(((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) |
                          (s[i + 3] & 0x3f));
            i += 4;
        }
    }
    return out;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xc0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xe0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(char(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(char(0xf0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(char(0x80 | (cp & 0x3f)));
    }
}

std::string utf8_encode(std::u32string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char32_t cp : text)
        utf8_append(out, cp);
    return out;
}

namespace {
inline std::uint32_t category_mask(char32_t c) {
    return U_GET_GC_MASK(UChar32(c));
}

// The Rust tokenizers classify characters for BERT's normalizer and pre-tokenizer with older
// Unicode tables than ICU's (those of Unicode 8). These are the code points whose class differs,
// found by running every code point through tokenizers 0.20.3 and basin (a fact about that
// library's behaviour; tests/parity/test_rust_tokenizers.py checks the effect). Each table is
// sorted, so code points outside its span (ASCII and most text) are answered at once.
struct Range {
    char32_t first, last;
};
template <std::size_t N> bool in_ranges(const Range (&ranges)[N], char32_t c) {
    if (c < ranges[0].first || c > ranges[N - 1].last) return false;
    for (const Range& r : ranges)
        if (c >= r.first && c <= r.last) return true;
    return false;
}
// A class as the Rust tables have it: ICU's answer, with the code points they add or lack.
template <std::size_t A, std::size_t L>
bool as_rust_tables(bool icu, char32_t c, const Range (&added)[A], const Range (&lacked)[L]) {
    return in_ranges(added, c) || (icu && !in_ranges(lacked, c));
}
// punctuation in ICU, not in the Rust tables (assigned or re-classified after Unicode 8)
constexpr Range kNotRustPunctuation[] = {
    {0x61D, 0x61D},     {0x9FD, 0x9FD},     {0xA76, 0xA76},     {0xC77, 0xC77},     {0xC84, 0xC84},
    {0x1B7D, 0x1B7E},   {0x2E43, 0x2E4F},   {0x2E52, 0x2E5D},   {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59},
    {0x10F86, 0x10F89}, {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C},
    {0x116B9, 0x116B9}, {0x1183B, 0x1183B}, {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46},
    {0x11A9A, 0x11A9C}, {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71},
    {0x11EF7, 0x11EF8}, {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x16E97, 0x16E9A},
    {0x16FE2, 0x16FE2}, {0x1E95E, 0x1E95F}};
// punctuation in the Rust tables, not in ICU (re-classified since)
constexpr Range kRustPunctuation[] = {{0x166D, 0x166D}, {0x111C9, 0x111C9}};
// format characters (Cf) in ICU that the Rust tables do not have: kept by clean_text
constexpr Range kNotRustControl[] = {{0x890, 0x891}, {0x8E2, 0x8E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F}};
// nonspacing marks (Mn) in ICU that the Rust tables do not have: kept by strip_accents
constexpr Range kNotRustNonspacing[] = {
    {0x7FD, 0x7FD},     {0x898, 0x89F},     {0x8CA, 0x8E1},     {0x9FE, 0x9FE},     {0xAFA, 0xAFF},
    {0xB55, 0xB55},     {0xC04, 0xC04},     {0xC3C, 0xC3C},     {0xD00, 0xD00},     {0xD3B, 0xD3C},
    {0xD81, 0xD81},     {0xEBA, 0xEBA},     {0xECE, 0xECE},     {0x180F, 0x180F},   {0x1885, 0x1886},
    {0x1ABF, 0x1ACE},   {0x1DF6, 0x1DFB},   {0xA82C, 0xA82C},   {0xA8C5, 0xA8C5},   {0xA8FF, 0xA8FF},
    {0xA9BD, 0xA9BD},   {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074}, {0x110C2, 0x110C2}, {0x111C9, 0x111C9},
    {0x111CF, 0x111CF}, {0x1123E, 0x1123E}, {0x11241, 0x11241}, {0x1133B, 0x1133B}, {0x11438, 0x1143F},
    {0x11442, 0x11444}, {0x11446, 0x11446}, {0x1145E, 0x1145E}, {0x1182F, 0x11837}, {0x11839, 0x1183A},
    {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943}, {0x119D4, 0x119D7}, {0x119DA, 0x119DB},
    {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38}, {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47},
    {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96}, {0x11A98, 0x11A99}, {0x11C30, 0x11C36},
    {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7}, {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3},
    {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45},
    {0x11D47, 0x11D47}, {0x11D90, 0x11D91}, {0x11D95, 0x11D95}, {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4},
    {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40}, {0x11F42, 0x11F42}, {0x13440, 0x13440},
    {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4}, {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46},
    {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021}, {0x1E023, 0x1E024}, {0x1E026, 0x1E02A},
    {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
    {0x1E944, 0x1E94A}};
constexpr Range kRustNonspacing[] = {{0x1734, 0x1734}}; // Mn in the Rust tables, Mc in ICU
} // namespace

bool is_whitespace(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d);
    return u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE);
}
bool is_letter(char32_t c) {
    return category_mask(c) & U_GC_L_MASK;
}
bool is_number(char32_t c) {
    return category_mask(c) & U_GC_N_MASK;
}
bool is_alphanumeric(char32_t c) {
    return category_mask(c) & (U_GC_L_MASK | U_GC_N_MASK);
}
bool is_punctuation(char32_t c) {
    return category_mask(c) & U_GC_P_MASK;
}
bool is_bert_punctuation(char32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    return as_rust_tables(is_punctuation(c), c, kRustPunctuation, kNotRustPunctuation);
}
bool is_bert_control(char32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    // Cc, Cf, Co (and Cs): what the Rust tokenizers' BertNormalizer removes; unassigned code
    // points (Cn) are kept and become [UNK] (checked code point by code point against
    // tokenizers 0.20.3 by tests/parity/test_rust_tokenizers.py)
    const bool icu = category_mask(c) & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK);
    return icu && !in_ranges(kNotRustControl, c);
}
bool is_mark_nonspacing(char32_t c) {
    return category_mask(c) & U_GC_MN_MASK;
}
bool is_bert_accent(char32_t c) {
    return as_rust_tables(is_mark_nonspacing(c), c, kRustNonspacing, kNotRustNonspacing);
}
bool is_mark(char32_t c) {
    return category_mask(c) & U_GC_M_MASK;
}
bool is_cjk(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B920 && c <= 0x2CEAF) || // sic: the Rust tokenizers' range
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string to_lower(std::u32string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for (char32_t c : text) {
        if (c < 0x80) {
            out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (c == 0x130) { // the one unconditional multi-character lowercase mapping
            out.push_back(U'i');
            out.push_back(0x307);
        } else {
            out.push_back(char32_t(u_tolower(UChar32(c))));
        }
    }
    return out;
}

std::u32string normalize(std::u32string_view text, NormalForm form) {
    UErrorCode status = U_ZERO_ERROR;
    const UNormalizer2* normalizer = nullptr;
    switch (form) {
    case NormalForm::NFC:
        normalizer = unorm2_getNFCInstance(&status);
        break;
    case NormalForm::NFD:
        normalizer = unorm2_getNFDInstance(&status);
        break;
    case NormalForm::NFKC:
        normalizer = unorm2_getNFKCInstance(&status);
        break;
    case NormalForm::NFKD:
        normalizer = unorm2_getNFKDInstance(&status);
        break;
    }
    BASIN_CHECK(U_SUCCESS(status), "unicode normalization: ICU failed (", u_errorName(status), ")");
    // Fast path: already normalized text (the common case for ASCII) is returned as is.
    bool ascii = true;
    for (char32_t c : text)
        ascii = ascii && c < 0x80;
    if (ascii) return std::u32string(text);
    std::vector<UChar> utf16;
    utf16.reserve(text.size() * 2);
    for (char32_t c : text) {
        if (c < 0x10000) {
            utf16.push_back(UChar(c));
        } else {
            utf16.push_back(UChar(0xD800 + ((c - 0x10000) >> 10)));
            utf16.push_back(UChar(0xDC00 + ((c - 0x10000) & 0x3ff)));
        }
    }
    std::vector<UChar> result(utf16.size() * 4 + 16);
    int32_t length = unorm2_normalize(normalizer, utf16.data(), int32_t(utf16.size()), result.data(),
                                      int32_t(result.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
        status = U_ZERO_ERROR;
        result.resize(std::size_t(length));
        length = unorm2_normalize(normalizer, utf16.data(), int32_t(utf16.size()), result.data(),
                                  int32_t(result.size()), &status);
    }
    BASIN_CHECK(U_SUCCESS(status), "unicode normalization: ICU failed (", u_errorName(status), ")");
    std::u32string out;
    out.reserve(std::size_t(length));
    for (int32_t i = 0; i < length; ++i) {
        UChar u = result[std::size_t(i)];
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < length) {
            UChar low = result[std::size_t(++i)];
            out.push_back(0x10000 + ((char32_t(u) - 0xD800) << 10) + (char32_t(low) - 0xDC00));
        } else {
            out.push_back(u);
        }
    }
    return out;
}

} // namespace basin::text
