// Small string helpers shared across the library.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>
#include <string_view>

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

// A duration for progress lines: 42s, 3m05s, 2h10m.
inline std::string duration_text(double seconds) {
    char buf[32];
    if (seconds < 60) std::snprintf(buf, sizeof buf, "%.0fs", seconds);
    else if (seconds < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
    else std::snprintf(buf, sizeof buf, "%dh%02dm", int(seconds) / 3600, int(seconds) / 60 % 60);
    return buf;
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
