// Labelled text datasets: JSONL, CSV and TSV (GLUE style) readers with column mapping, and the
// mapping from label names to class indices.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace basin {

struct Example {
    std::string text;
    std::optional<std::string> text_pair;
    std::string label; // as written in the file (numbers as decimal text)
    std::size_t line;  // 1-based line in the source file
};

enum class DataFormat { Auto, Jsonl, Csv, Tsv };

// Column names (or 0-based indices, written as digits, for files without a header).
struct ColumnMap {
    std::string text = "text";
    std::string text_pair = "text_pair"; // optional: used when present
    std::string label = "label";
};

struct ReadOptions {
    DataFormat format = DataFormat::Auto; // Auto: by extension (.jsonl/.json, .csv, .tsv/.txt)
    ColumnMap columns;
    bool header = true;         // CSV/TSV: first row names the columns
    bool require_labels = true; // false: examples without a label are allowed
};

struct Dataset {
    std::filesystem::path path;
    std::vector<Example> examples;
    bool has_pair = false;
    // Distinct labels in a stable order: numeric order when all are integers, else sorted.
    std::vector<std::string> label_names() const;
};

Dataset read_dataset(const std::filesystem::path& path, const ReadOptions& options = {});

// A dataset folder's split file: FOLDER/SPLIT.jsonl, .json, .csv or .tsv (the first that exists);
// otherwise an error naming the folder and the files looked for.
std::filesystem::path find_split(const std::filesystem::path& folder, const std::string& split);

// std::getline with a bound: a line longer than limits::dataset_line (16 MiB) is an error naming
// path and line after reading at most that much. `line` is the number of the line being read.
bool read_bounded_line(std::istream& in, std::string& row, const std::filesystem::path& path, std::size_t line);

// Reads one logical CSV record (quoted fields may span lines; with quoting, "" is a quote) into
// fields, advancing line (counts physical lines). Returns false at end of file.
bool read_csv_record(std::istream& in, char delimiter, bool quoting, std::vector<std::string>& fields,
                     std::size_t& line, const std::filesystem::path& path);

// The same, comma-separated, for small hand-written tables (model lists, groups, matrices): cells
// trimmed, a cell quoted after the separator's space (`a, "b c"`) unquoted, blank records and
// lines starting with '#' skipped.
bool read_trimmed_csv_record(std::istream& in, std::vector<std::string>& fields, std::size_t& line,
                             const std::filesystem::path& path);
DataFormat parse_format(const std::string& name); // "auto", "jsonl", "csv", "tsv"

// Maps each example's label to a class index given the model's label list (index -> name).
// A label that is not a name but an integer in range is taken as the index itself. A label the
// model does not know is an error naming the file, the line and the known labels.
std::vector<std::int64_t> map_labels(const Dataset& data, const std::vector<std::string>& labels);

} // namespace basin
