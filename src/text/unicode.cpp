#include "basin/text/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <vector>

#include "basin/core/error.h"

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
        ok = ok && !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) &&
             !(len == 4 && cp < 0x10000) && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
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
            out.push_back(((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) |
                          ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f));
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
    for (char32_t cp : text) utf8_append(out, cp);
    return out;
}

namespace {
inline std::uint32_t category_mask(char32_t c) { return U_GET_GC_MASK(UChar32(c)); }
} // namespace

bool is_whitespace(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d);
    return u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE);
}
bool is_letter(char32_t c) { return category_mask(c) & U_GC_L_MASK; }
bool is_number(char32_t c) { return category_mask(c) & U_GC_N_MASK; }
bool is_alphanumeric(char32_t c) { return category_mask(c) & (U_GC_L_MASK | U_GC_N_MASK); }
bool is_punctuation(char32_t c) { return category_mask(c) & U_GC_P_MASK; }
bool is_bert_punctuation(char32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return true;
    return is_punctuation(c);
}
bool is_bert_control(char32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    return category_mask(c) & U_GC_C_MASK;
}
bool is_mark_nonspacing(char32_t c) { return category_mask(c) & U_GC_MN_MASK; }
bool is_mark(char32_t c) { return category_mask(c) & U_GC_M_MASK; }
bool is_cjk(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
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
    case NormalForm::NFC: normalizer = unorm2_getNFCInstance(&status); break;
    case NormalForm::NFD: normalizer = unorm2_getNFDInstance(&status); break;
    case NormalForm::NFKC: normalizer = unorm2_getNFKCInstance(&status); break;
    case NormalForm::NFKD: normalizer = unorm2_getNFKDInstance(&status); break;
    }
    BASIN_CHECK(U_SUCCESS(status), "unicode normalization: ICU failed (", u_errorName(status), ")");
    // Fast path: already normalized text (the common case for ASCII) is returned as is.
    bool ascii = true;
    for (char32_t c : text) ascii = ascii && c < 0x80;
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
    int32_t length = unorm2_normalize(normalizer, utf16.data(), int32_t(utf16.size()),
                                      result.data(), int32_t(result.size()), &status);
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
