// Reading the JSON files basin writes (summary.json, basin_run.json, clusters.json) with errors
// that name the file and the field: an object read whole, its fields looked up and typed.
// Header-only; for the record readers (region/records, space/map, experiment/results).
#pragma once

#include "basin/core/error.h"
#include "basin/core/fs.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace basin {

// The file as a JSON object; an error when it is not valid JSON or not an object.
inline nlohmann::json read_json_object(const std::filesystem::path& file) {
    nlohmann::json j = nlohmann::json::parse(read_text_file(file), nullptr, false);
    BASIN_CHECK(!j.is_discarded(), file.string(), ": not valid JSON");
    BASIN_CHECK(j.is_object(), file.string(), ": expected a JSON object");
    return j;
}

// j[name], or an error naming the file and the field.
inline const nlohmann::json& json_field(const nlohmann::json& j, const std::string& name,
                                        const std::filesystem::path& file) {
    BASIN_CHECK(j.is_object() && j.contains(name), file.string(), ": no field '", name, "'");
    return j.at(name);
}

// j[name] as a T, or an error naming the file, the field and its value.
template <class T> T json_value(const nlohmann::json& j, const std::string& name, const std::filesystem::path& file) {
    const nlohmann::json& v = json_field(j, name, file);
    try {
        return v.get<T>();
    } catch (const nlohmann::json::exception&) {
        fail(file.string(), ": field '", name, "' is ", v.dump(), ", not of the expected type");
    }
}

// j[name] as a number, NaN where the writer put null (JSON has no NaN).
inline double json_number_or_nan(const nlohmann::json& j, const std::string& name, const std::filesystem::path& file) {
    return json_field(j, name, file).is_null() ? NAN : json_value<double>(j, name, file);
}

// The whole text as a finite number (std::stod, nothing left over), or nothing.
inline std::optional<double> parse_finite(std::string_view text) {
    const std::string s(text);
    std::size_t used = 0;
    double v = NAN;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (used == 0 || used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

} // namespace basin
