#include "basin/data/dataset.h"

#include "basin/core/error.h"
#include "basin/core/json_file.h"
#include "basin/core/limits.h"
#include "basin/core/strings.h"
#include "basin/data/table.h"
#include "basin/text/unicode.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace basin {
namespace {

bool is_integer(const std::string& s) {
    if (s.empty()) return false;
    std::size_t i = (s[0] == '-') ? 1 : 0;
    if (i == s.size()) return false;
    for (; i < s.size(); ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

std::string where(const std::filesystem::path& path, std::size_t line) {
    return path.string() + ":" + std::to_string(line);
}

void check_utf8(const std::string& s, const std::filesystem::path& path, std::size_t line) {
    std::size_t bad = 0;
    BASIN_CHECK(text::utf8_valid(s, &bad), where(path, line), ": invalid UTF-8 at byte ", bad, " of the line");
}

std::optional<std::size_t> column_index(const std::vector<std::string>& header, const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i;
    if (header.empty() && is_integer(name) && name[0] != '-') return std::stoul(name);
    return std::nullopt;
}

void read_delimited(std::ifstream& in, char delimiter, bool quoting, const ReadOptions& options, Dataset& data) {
    std::vector<std::string> header, fields;
    std::size_t line = 0;
    if (options.header) {
        BASIN_CHECK(read_csv_record(in, delimiter, quoting, header, line, data.path), data.path.string(),
                    ": empty file (expected a header row)");
        if (!header.empty() && header[0].rfind("\xEF\xBB\xBF", 0) == 0) header[0] = header[0].substr(3);
    }
    auto text_col = column_index(header, options.columns.text);
    auto pair_col = column_index(header, options.columns.text_pair);
    auto label_col = column_index(header, options.columns.label);
    std::string columns;
    for (const auto& h : header)
        columns += (columns.empty() ? "" : ", ") + h;
    BASIN_CHECK(text_col, data.path.string(), ": no text column '", options.columns.text,
                "' (columns: ", columns.empty() ? "none; pass indices for files without a header" : columns, ")");
    BASIN_CHECK(label_col || !options.require_labels, data.path.string(), ": no label column '", options.columns.label,
                "' (columns: ", columns, ")");
    data.has_pair = pair_col.has_value();
    while (read_csv_record(in, delimiter, quoting, fields, line, data.path)) {
        if (fields.size() == 1 && fields[0].empty()) continue; // blank line
        std::size_t needed = std::max({*text_col, pair_col.value_or(0), label_col.value_or(0)}) + 1;
        BASIN_CHECK(fields.size() >= needed, where(data.path, line), ": expected at least ", needed, " fields, found ",
                    fields.size());
        Example ex;
        ex.line = line;
        ex.text = fields[*text_col];
        if (pair_col) ex.text_pair = fields[*pair_col];
        if (label_col) ex.label = fields[*label_col];
        for (const auto* s : {&ex.text, &ex.label})
            check_utf8(*s, data.path, line);
        if (ex.text_pair) check_utf8(*ex.text_pair, data.path, line);
        data.examples.push_back(std::move(ex));
    }
}

void read_jsonl(std::ifstream& in, const ReadOptions& options, Dataset& data) {
    std::string row;
    std::size_t line = 0;
    bool first = true;
    while (read_bounded_line(in, row, data.path, line + 1)) {
        ++line;
        if (!row.empty() && row.back() == '\r') row.pop_back();
        if (first && row.rfind("\xEF\xBB\xBF", 0) == 0) row = row.substr(3);
        first = false;
        if (row.find_first_not_of(" \t") == std::string::npos) continue;
        check_utf8(row, data.path, line);
        nlohmann::json obj;
        try {
            obj = nlohmann::json::parse(row);
        } catch (const nlohmann::json::parse_error& e) {
            fail(where(data.path, line), ": malformed JSON (", e.what(), ")");
        }
        BASIN_CHECK(obj.is_object(), where(data.path, line), ": expected a JSON object");
        Example ex;
        ex.line = line;
        auto field = [&](const std::string& key, bool required) -> std::optional<std::string> {
            auto it = obj.find(key);
            if (it == obj.end() || it->is_null()) {
                BASIN_CHECK(!required, where(data.path, line), ": missing field '", key, "'");
                return std::nullopt;
            }
            if (it->is_string()) return it->get<std::string>();
            if (it->is_number_integer()) return std::to_string(it->get<std::int64_t>());
            if (it->is_boolean()) return std::string(it->get<bool>() ? "1" : "0");
            fail(where(data.path, line), ": field '", key, "' must be a string or an integer, found ", it->type_name());
        };
        ex.text = *field(options.columns.text, true);
        ex.text_pair = field(options.columns.text_pair, false);
        if (auto label = field(options.columns.label, options.require_labels)) ex.label = *label;
        if (ex.text_pair) data.has_pair = true;
        data.examples.push_back(std::move(ex));
    }
    if (data.has_pair)
        for (const auto& ex : data.examples)
            BASIN_CHECK(ex.text_pair, where(data.path, ex.line), ": missing field '", options.columns.text_pair,
                        "' (other lines have it)");
}

} // namespace

bool read_bounded_line(std::istream& in, std::string& row, const std::filesystem::path& path, std::size_t line) {
    row.clear();
    char buffer[1 << 16];
    bool any = false;
    while (true) {
        in.get(buffer, sizeof buffer, '\n');
        const std::streamsize got = in.gcount();
        row.append(buffer, std::size_t(got));
        any = any || got > 0;
        BASIN_CHECK(row.size() <= limits::dataset_line, path.string(), ":", line, ": a line longer than ",
                    limits::dataset_line >> 20, " MiB (basin's limit for one example)");
        if (in.eof()) return any;
        if (in.fail()) in.clear(); // nothing read: the next character is the newline
        if (in.peek() == '\n') {
            in.get();
            return true;
        }
    }
}

bool read_csv_record(std::istream& in, char delimiter, bool quoting, std::vector<std::string>& fields,
                     std::size_t& line, const std::filesystem::path& path) {
    fields.clear();
    std::string row;
    if (!read_bounded_line(in, row, path, line + 1)) return false;
    ++line;
    const std::size_t first_line = line;
    std::string field;
    bool in_quotes = false, was_quoted = false;
    for (std::size_t i = 0;; ++i) {
        if (i == row.size()) {
            if (in_quotes) { // the quoted field continues on the next line
                std::string next;
                BASIN_CHECK(read_bounded_line(in, next, path, line + 1), where(path, first_line),
                            ": unterminated quoted field");
                BASIN_CHECK(row.size() + field.size() <= limits::dataset_line, where(path, first_line),
                            ": a record longer than ", limits::dataset_line >> 20,
                            " MiB (basin's limit for one example)");
                ++line;
                field += '\n';
                row = next;
                i = std::size_t(-1);
                continue;
            }
            if (!row.empty() && row.back() == '\r' && !was_quoted && !field.empty() && field.back() == '\r')
                field.pop_back();
            fields.push_back(std::move(field));
            return true;
        }
        char c = row[i];
        if (in_quotes) {
            if (c == '"') {
                if (i + 1 < row.size() && row[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    in_quotes = false;
                }
            } else {
                field += c;
            }
        } else if (c == delimiter) {
            fields.push_back(std::move(field));
            field.clear();
            was_quoted = false;
        } else if (quoting && c == '"' && field.empty()) {
            in_quotes = was_quoted = true;
        } else {
            field += c;
        }
    }
}

namespace {

std::string unquoted(std::string cell) {
    if (cell.size() < 2 || cell.front() != '"' || cell.back() != '"') return cell;
    std::string out;
    for (std::size_t i = 1; i + 1 < cell.size(); ++i) {
        out += cell[i];
        if (cell[i] == '"' && cell[i + 1] == '"') ++i; // "" inside quotes
    }
    return out;
}

} // namespace

bool read_trimmed_csv_record(std::istream& in, std::vector<std::string>& fields, std::size_t& line,
                             const std::filesystem::path& path) {
    while (read_csv_record(in, ',', true, fields, line, path)) {
        for (auto& c : fields)
            c = unquoted(trim(c));
        const bool blank = fields.size() == 1 && fields[0].empty();
        if (!blank && fields[0].rfind('#', 0) != 0) return true;
    }
    return false;
}

DataFormat parse_format(const std::string& name) {
    if (name == "auto") return DataFormat::Auto;
    if (name == "jsonl") return DataFormat::Jsonl;
    if (name == "csv") return DataFormat::Csv;
    if (name == "tsv") return DataFormat::Tsv;
    fail("--format: expected auto, jsonl, csv or tsv, got '", name, "'");
}

std::filesystem::path find_split(const std::filesystem::path& folder, const std::string& split) {
    for (const char* ext : {".jsonl", ".json", ".csv", ".tsv"})
        if (std::filesystem::is_regular_file(folder / (split + ext))) return folder / (split + ext);
    throw Error(folder.string() + ": no " + split + " split (looked for " + split + ".jsonl, " + split + ".json, " +
                split + ".csv, " + split + ".tsv)");
}

Dataset read_dataset(const std::filesystem::path& path, const ReadOptions& options) {
    Dataset data;
    data.path = path;
    BASIN_CHECK(std::filesystem::is_regular_file(path), path.string(), ": dataset file not found");
    std::ifstream in(path, std::ios::binary);
    BASIN_CHECK(in, path.string(), ": cannot open dataset file");
    DataFormat format = options.format;
    if (format == DataFormat::Auto) {
        const std::string ext = path.extension().string();
        if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson")
            format = DataFormat::Jsonl;
        else if (ext == ".csv")
            format = DataFormat::Csv;
        else if (ext == ".tsv" || ext == ".txt")
            format = DataFormat::Tsv;
        else
            fail(path.string(), ": cannot tell the format from the extension '", ext,
                 "' (use .jsonl, .csv or .tsv, or pass --format)");
    }
    switch (format) {
    case DataFormat::Jsonl:
        read_jsonl(in, options, data);
        break;
    case DataFormat::Csv:
        read_delimited(in, ',', /*quoting=*/true, options, data);
        break;
    case DataFormat::Tsv:
        read_delimited(in, '\t', /*quoting=*/false, options, data);
        break;
    case DataFormat::Auto:
        break;
    }
    BASIN_CHECK(!data.examples.empty(), path.string(), ": dataset is empty (no examples)");
    return data;
}

std::vector<std::string> Dataset::label_names() const {
    std::set<std::string> distinct;
    for (const auto& ex : examples)
        if (!ex.label.empty()) distinct.insert(ex.label);
    std::vector<std::string> names(distinct.begin(), distinct.end());
    bool numeric = std::all_of(names.begin(), names.end(), is_integer);
    if (numeric)
        std::sort(names.begin(), names.end(),
                  [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
    return names;
}

std::vector<std::int64_t> map_labels(const Dataset& data, const std::vector<std::string>& labels) {
    std::map<std::string, std::int64_t> index;
    for (std::size_t i = 0; i < labels.size(); ++i)
        index[labels[i]] = std::int64_t(i);
    std::vector<std::int64_t> out;
    out.reserve(data.examples.size());
    for (const auto& ex : data.examples) {
        auto it = index.find(ex.label);
        if (it != index.end()) {
            out.push_back(it->second);
            continue;
        }
        if (is_integer(ex.label) && ex.label.size() < 18) {
            std::int64_t k = std::stoll(ex.label);
            if (k >= 0 && k < std::int64_t(labels.size())) {
                out.push_back(k);
                continue;
            }
        }
        std::string known;
        for (const auto& l : labels)
            known += (known.empty() ? "" : ", ") + l;
        fail(where(data.path, ex.line), ": label '", ex.label, "' is not one the model knows (", known, ")");
    }
    return out;
}

} // namespace basin

// ---- CsvTable (data/table.h)

namespace basin {

CsvTable::CsvTable(const std::filesystem::path& file) : file_(file) {
    std::ifstream in(file, std::ios::binary);
    BASIN_CHECK(in, file.string(), ": cannot open");
    std::size_t line = 0;
    BASIN_CHECK(read_csv_record(in, ',', true, header_, line, file), file.string(), ": empty, expected a header row");
    std::vector<std::string> cells;
    for (std::size_t start = line + 1; read_csv_record(in, ',', true, cells, line, file); start = line + 1) {
        if (cells.size() == 1 && cells[0].empty()) continue;
        BASIN_CHECK(cells.size() == header_.size(), where(file, start), ": ", cells.size(), " fields, expected ",
                    header_.size(), " (the header's)");
        Row row;
        row.line = start;
        for (std::size_t i = 0; i < header_.size(); ++i)
            row.cells[header_[i]] = std::move(cells[i]);
        rows_.push_back(std::move(row));
    }
}

bool CsvTable::has(const std::string& column) const {
    return std::find(header_.begin(), header_.end(), column) != header_.end();
}

const std::string& CsvTable::text(const Row& row, const std::string& column) const {
    const auto it = row.cells.find(column);
    BASIN_CHECK(it != row.cells.end(), file_.string(), ": no column '", column, "'");
    return it->second;
}

double CsvTable::number(const Row& row, const std::string& column) const {
    const std::string& cell = text(row, column);
    const auto v = parse_finite(cell);
    BASIN_CHECK(v, where(file_, row.line), ": column '", column, "' is '", cell, "', expected a number");
    return *v;
}

std::size_t CsvTable::index(const Row& row, const std::string& column) const {
    const double v = number(row, column);
    BASIN_CHECK(v >= 0 && v == std::floor(v) && v < 1e15, where(file_, row.line), ": column '", column, "' is '",
                text(row, column), "', expected a whole number");
    return std::size_t(v);
}

} // namespace basin
