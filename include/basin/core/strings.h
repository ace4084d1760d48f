// Small string helpers shared across the library.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace basin {

inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// s without leading and trailing whitespace.
inline std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

// ---- numbers and names as text: every report, table, record and file name formats through these

// v with `digits` decimals: 0.1235 (digits 4).
inline std::string format_fixed(double v, int digits = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// A fraction as a percentage without the sign: 0.8814 -> "88.14".
inline std::string format_percent(double fraction, int digits = 2) {
    return format_fixed(100 * fraction, digits);
}

// v with `significant` significant digits, C's %g: 5e-05, 0.25, 1.23457e+06.
inline std::string format_g(double v, int significant = 6) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", significant, v);
    return buf;
}

// v with enough digits to read back as the same double (coefficients, coordinates).
inline std::string format_exact(double v) {
    return format_g(v, 17);
}

// A name fit for a file: letters, digits, '-' and '_' kept, anything else '_'.
inline std::string file_safe_name(std::string_view name) {
    std::string out;
    for (char c : name) {
        const bool keep =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        out += keep ? c : '_';
    }
    return out;
}

// Text for XML and HTML (SVG figures, the report): the five characters that need it escaped.
inline std::string xml_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else if (c == '"')
            out += "&quot;";
        else
            out += c;
    }
    return out;
}

// A duration for progress lines: 42s, 3m05s, 2h10m.
inline std::string duration_text(double seconds) {
    char buf[32];
    if (seconds < 60)
        std::snprintf(buf, sizeof buf, "%.0fs", seconds);
    else if (seconds < 3600)
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(seconds) / 3600, int(seconds) / 60 % 60);
    return buf;
}

// The items with sep between each two.
inline std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        out += items[i];
    }
    return out;
}

// Comma-separated items, each trimmed; empty items dropped.
inline std::vector<std::string> split_list(std::string_view s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto end = std::min(s.find(',', start), s.size());
        std::string item = trim(s.substr(start, end - start));
        if (!item.empty()) out.push_back(std::move(item));
        start = end + 1;
    }
    return out;
}

} // namespace basin
