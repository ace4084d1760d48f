// A CSV file with a header row, read as named cells: the format of the tables basin writes
// itself (scores, grids, similarity matrices), with RFC 4180 quoting. Every lookup that fails
// names the file, the line and the column.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace basin {

class CsvTable {
  public:
    // Reads the whole file; an empty file, or a row with more or fewer fields than the header,
    // is an error naming the file and the line. Blank lines are skipped.
    explicit CsvTable(const std::filesystem::path& file);

    struct Row {
        std::size_t line = 0; // where the row starts in the file
        std::map<std::string, std::string> cells;
    };
    const std::filesystem::path& file() const { return file_; }
    const std::vector<std::string>& header() const { return header_; }
    const std::vector<Row>& rows() const { return rows_; }
    bool has(const std::string& column) const;

    // The text of a cell; an error when the column is missing.
    const std::string& text(const Row& row, const std::string& column) const;
    // A cell as a finite number (the whole cell); an error naming the cell otherwise.
    double number(const Row& row, const std::string& column) const;
    // A cell as a non-negative integer.
    std::size_t index(const Row& row, const std::string& column) const;

  private:
    std::filesystem::path file_;
    std::vector<std::string> header_;
    std::vector<Row> rows_;
};

} // namespace basin
