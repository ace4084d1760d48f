// Reading JSON files, and integers from JSON files, written by others. nlohmann's get<integer>() also converts
// floats, and a float out of the integer's range is undefined behaviour (found by fuzzing
// config.json); these checks make such values an error naming the place.
#pragma once

#include "basin/core/error.h"
#include "basin/core/fs.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace basin {

// A JSON file read up to max_bytes (core/limits.h); malformed JSON is an error naming the file.
inline nlohmann::json read_json_file(const fs::path& path, std::uint64_t max_bytes) {
    try {
        return nlohmann::json::parse(read_text_file(path, max_bytes));
    } catch (const nlohmann::json::parse_error& e) {
        fail(path.string(), ": malformed JSON (", e.what(), ")");
    }
}

template <typename T> T json_integer(const nlohmann::json& value, const std::string& what) {
    BASIN_CHECK(value.is_number_integer(), what, " must be an integer, got ",
                value.is_number() ? value.dump() : std::string(value.type_name()));
    if (value.is_number_unsigned()) {
        const auto v = value.get<std::uint64_t>();
        BASIN_CHECK(v <= std::uint64_t(std::numeric_limits<T>::max()), what, " is too large: ", v);
        return T(v);
    }
    const auto v = value.get<std::int64_t>();
    BASIN_CHECK(v >= std::int64_t(std::numeric_limits<T>::min()) &&
                    (v < 0 || std::uint64_t(v) <= std::uint64_t(std::numeric_limits<T>::max())),
                what, " is out of range: ", v);
    return T(v);
}

// json_integer of object[key], or fallback when the key is absent or null.
template <typename T>
T json_integer_or(const nlohmann::json& object, const char* key, T fallback, const std::string& where) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    return json_integer<T>(*it, where + ": '" + key + "'");
}

} // namespace basin
