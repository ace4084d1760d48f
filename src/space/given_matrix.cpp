#include "basin/space/given_matrix.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/space/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

namespace basin {
namespace {

// A number as printed, and half a unit of its last printed digit (0 for an integer written
// without a point or exponent: taken as exact).
struct PrintedNumber {
    double value = 0, half_unit = 0;
};

std::optional<PrintedNumber> parse_printed(const std::string& text) {
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    const std::size_t point = text.find('.'), exponent = text.find_first_of("eE");
    if (point == std::string::npos && exponent == std::string::npos) return PrintedNumber{value, 0};
    int decimals = 0;
    if (point != std::string::npos)
        for (std::size_t i = point + 1; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
            ++decimals;
    if (exponent != std::string::npos) decimals -= std::atoi(text.c_str() + exponent + 1);
    return PrintedNumber{value, 0.5 * std::pow(10.0, -decimals)};
}

// An N x N matrix of numbers under a header of names, as the header comment describes.
struct ParsedMatrix {
    std::vector<std::string> names;
    SquareMatrix values, half_unit;
    std::vector<std::string> place; // of each row in messages: FILE:LINE, or SOURCE row I
};

ParsedMatrix parse_matrix(const fs::path& file, const char* what) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the ", what);
    std::size_t line = 0;
    std::vector<std::string> header, cells;
    BASIN_CHECK(read_trimmed_csv_record(in, header, line, file), file.string(),
                ": empty; expected a header row of model names");
    const std::size_t header_line = line;
    // rows carry names: an empty first header cell, or "model" (as basin's own similarity.csv)
    if (header.size() > 1 && (header[0].empty() || header[0] == "model")) header.erase(header.begin());
    ParsedMatrix m;
    m.names = header;
    const std::size_t n = m.names.size();
    std::set<std::string> seen;
    for (std::size_t j = 0; j < n; ++j) {
        BASIN_CHECK(!m.names[j].empty(), file.string(), ":", header_line, ": header cell ", j + 1,
                    " is empty; expected a model name");
        BASIN_CHECK(seen.insert(m.names[j]).second, file.string(), ":", header_line, ": model name '", m.names[j],
                    "' appears twice in the header");
    }
    BASIN_CHECK(n >= 2, file.string(), ":", header_line, ": expected a header of at least 2 model names, found ", n);
    m.values = SquareMatrix(n), m.half_unit = SquareMatrix(n);
    std::size_t row = 0;
    while (read_trimmed_csv_record(in, cells, line, file)) {
        BASIN_CHECK(row < n, file.string(), ":", line, ": more rows than the ", n, " names of the header (not square)");
        BASIN_CHECK(cells.size() == n || cells.size() == n + 1, file.string(), ":", line, ": expected ", n,
                    " numbers (or the row's model name and ", n, " numbers), found ", cells.size(), " cells");
        const std::size_t first = cells.size() - n;
        BASIN_CHECK(first == 0 || cells[0] == m.names[row], file.string(), ":", line, ": the row is named '", cells[0],
                    "', but row ", row + 1, " of the header's order is '", m.names[row], "'");
        for (std::size_t j = 0; j < n; ++j) {
            const auto number = parse_printed(cells[first + j]);
            BASIN_CHECK(number, file.string(), ":", line, ": column '", m.names[j], "': expected a number, found '",
                        cells[first + j], "'");
            BASIN_CHECK(std::isfinite(number->value), file.string(), ":", line, ": column '", m.names[j],
                        "': the value is ", cells[first + j], "; expected a finite number");
            m.values(row, j) = number->value, m.half_unit(row, j) = number->half_unit;
        }
        m.place.push_back(file.string() + ":" + std::to_string(line));
        ++row;
    }
    BASIN_CHECK(row == n, file.string(), ": not square: ", n, " names in the header but ", row, " rows");
    return m;
}

constexpr double kAbsoluteTolerance = 1e-6;

// Symmetric within the printed precision (scale: what 1e-6 is relative to); the two halves' mean.
void check_symmetric(const ParsedMatrix& m, double scale) {
    const std::size_t n = m.names.size();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j) {
            const double allowed = std::max(kAbsoluteTolerance * scale, m.half_unit(i, j) + m.half_unit(j, i));
            BASIN_CHECK(std::abs(m.values(i, j) - m.values(j, i)) <= allowed, m.place[i], ": not symmetric: row '",
                        m.names[i], "' column '", m.names[j], "' is ", format_g(m.values(i, j), 10), " but row '",
                        m.names[j], "' column '", m.names[i], "' is ", format_g(m.values(j, i), 10),
                        " (allowed difference ", format_g(allowed, 3), ")");
        }
}

SquareMatrix symmetrised(const SquareMatrix& a) {
    SquareMatrix out(a.n);
    for (std::size_t i = 0; i < a.n; ++i)
        for (std::size_t j = 0; j < a.n; ++j)
            out(i, j) = (a(i, j) + a(j, i)) / 2;
    return out;
}

// A matrix handed over in memory, as parse_matrix would have read it from a file: names unique
// and non-empty (default: model1, model2, ...), at least 2 of them, square, finite, exact.
ParsedMatrix matrix_in_memory(const std::string& source, const SquareMatrix& values, std::vector<std::string> names) {
    const std::size_t n = values.n;
    BASIN_CHECK(values.values.size() == n * n, source, ": expected a square matrix");
    if (names.empty())
        for (std::size_t i = 0; i < n; ++i)
            names.push_back("model" + std::to_string(i + 1));
    BASIN_CHECK(names.size() == n, source, ": ", names.size(), " names for a ", n, " x ", n, " matrix");
    BASIN_CHECK(n >= 2, source, ": expected at least 2 models, found ", n);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < n; ++i) {
        BASIN_CHECK(!names[i].empty(), source, ": name ", i + 1, " is empty; expected a model name");
        BASIN_CHECK(seen.insert(names[i]).second, source, ": model name '", names[i], "' appears twice");
    }
    ParsedMatrix m;
    m.names = std::move(names);
    m.values = values, m.half_unit = SquareMatrix(n);
    for (std::size_t i = 0; i < n; ++i) {
        m.place.push_back(source + " row " + std::to_string(i + 1));
        for (std::size_t j = 0; j < n; ++j)
            BASIN_CHECK(std::isfinite(values(i, j)), m.place[i], ": column '", m.names[j], "': the value is ",
                        format_g(values(i, j), 10), "; expected a finite number");
    }
    return m;
}

GivenSimilarity checked_similarity(const ParsedMatrix& m) {
    const std::size_t n = m.names.size();
    for (std::size_t i = 0; i < n; ++i) {
        const double diagonal_allowed = std::max(kAbsoluteTolerance, m.half_unit(i, i));
        BASIN_CHECK(std::abs(m.values(i, i) - 1) <= diagonal_allowed, m.place[i], ": the diagonal of '", m.names[i],
                    "' is ", format_g(m.values(i, i), 10), "; expected 1 (the cosine of a task vector with itself)");
        for (std::size_t j = 0; j < n; ++j)
            BASIN_CHECK(std::abs(m.values(i, j)) <= 1 + std::max(kAbsoluteTolerance, m.half_unit(i, j)), m.place[i],
                        ": column '", m.names[j], "': ", format_g(m.values(i, j), 10),
                        " is not a cosine (expected a value in [-1, 1])");
    }
    check_symmetric(m, 1.0);
    GivenSimilarity s;
    s.names = m.names;
    s.cosine = symmetrised(m.values);
    s.half_unit = m.half_unit;
    for (std::size_t i = 0; i < n; ++i) {
        s.cosine(i, i) = 1;
        for (std::size_t j = 0; j < n; ++j)
            s.cosine(i, j) = std::clamp(s.cosine(i, j), -1.0, 1.0);
    }
    return s;
}

// A Gram matrix's checks (symmetric relative to its largest entry, a non-negative diagonal) and,
// with a similarity, that its cosines equal the similarity's within both precisions.
SquareMatrix checked_gram(const ParsedMatrix& m, const GivenSimilarity* similarity) {
    const std::size_t n = m.names.size();
    double largest = 0;
    for (double v : m.values.values)
        largest = std::max(largest, std::abs(v));
    check_symmetric(m, std::max(largest, 1e-300));
    SquareMatrix gram = symmetrised(m.values);
    for (std::size_t i = 0; i < n; ++i)
        BASIN_CHECK(gram(i, i) >= 0, m.place[i], ": the diagonal of '", m.names[i], "' is ", format_g(gram(i, i), 10),
                    "; expected a squared norm (0 or more)");
    if (!similarity) return gram;
    const SquareMatrix cosine = cosine_from_gram(gram);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            // the cosine's error from the Gram entries' rounding, plus the similarity file's own
            const double from_gram = gram(i, i) > 0 && gram(j, j) > 0
                                         ? m.half_unit(i, j) / std::sqrt(gram(i, i) * gram(j, j)) +
                                               0.5 * std::abs(cosine(i, j)) *
                                                   (m.half_unit(i, i) / gram(i, i) + m.half_unit(j, j) / gram(j, j))
                                         : 0;
            const double allowed = std::max(kAbsoluteTolerance, from_gram + similarity->half_unit(i, j));
            const double given = similarity->cosine(i, j);
            BASIN_CHECK(std::abs(cosine(i, j) - given) <= allowed, m.place[i], ": column '", m.names[j],
                        "': its cosine ", format_g(cosine(i, j), 8), " differs from ", format_g(given, 8),
                        " in the similarity matrix ", similarity->file.string(), " (allowed ", format_g(allowed, 3),
                        ")");
        }
    return gram;
}

} // namespace

GivenSimilarity read_similarity_matrix(const fs::path& file) {
    GivenSimilarity s = checked_similarity(parse_matrix(file, "similarity matrix"));
    s.file = file;
    return s;
}

GivenSimilarity similarity_from_values(const std::string& source, const SquareMatrix& cosine,
                                       std::vector<std::string> names) {
    GivenSimilarity s = checked_similarity(matrix_in_memory(source, cosine, std::move(names)));
    s.file = source;
    return s;
}

std::vector<double> read_norms(const fs::path& file, const std::vector<std::string>& names) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the norms file");
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < names.size(); ++i)
        index[names[i]] = i;
    std::vector<double> norms(names.size(), NAN);
    std::size_t line = 0;
    std::vector<std::string> cells;
    bool first = true;
    while (read_trimmed_csv_record(in, cells, line, file)) {
        BASIN_CHECK(cells.size() == 2, file.string(), ":", line, ": expected 2 cells (model,norm), found ",
                    cells.size());
        const auto number = parse_printed(cells[1]);
        if (first && !number) { // a header row
            first = false;
            continue;
        }
        first = false;
        const auto at = index.find(cells[0]);
        BASIN_CHECK(at != index.end(), file.string(), ":", line, ": '", cells[0],
                    "' is not a model of the similarity matrix");
        BASIN_CHECK(number && std::isfinite(number->value) && number->value >= 0, file.string(), ":", line,
                    ": the norm of '", cells[0], "' is '", cells[1], "'; expected a finite number, 0 or more");
        BASIN_CHECK(std::isnan(norms[at->second]), file.string(), ":", line, ": a second row for '", cells[0], "'");
        norms[at->second] = number->value;
    }
    for (std::size_t i = 0; i < names.size(); ++i)
        BASIN_CHECK(!std::isnan(norms[i]), file.string(), ": no norm for model '", names[i], "'");
    return norms;
}

SquareMatrix read_gram_matrix(const fs::path& file, const GivenSimilarity& similarity) {
    const ParsedMatrix m = parse_matrix(file, "Gram matrix");
    BASIN_CHECK(m.names == similarity.names, file.string(),
                ": its model names (in order) differ from those of the similarity matrix ", similarity.file.string());
    return checked_gram(m, &similarity);
}

SquareMatrix gram_from_values(const std::string& source, const SquareMatrix& gram, const GivenSimilarity& similarity) {
    return checked_gram(matrix_in_memory(source, gram, similarity.names), &similarity);
}

GivenSimilarity similarity_from_gram(const std::string& source, const SquareMatrix& gram,
                                     std::vector<std::string> names) {
    const ParsedMatrix m = matrix_in_memory(source, gram, std::move(names));
    GivenSimilarity s;
    s.file = source;
    s.names = m.names;
    s.gram = checked_gram(m, nullptr);
    s.cosine = cosine_from_gram(*s.gram);
    s.half_unit = SquareMatrix(m.names.size());
    return s;
}

SquareMatrix gram_from_cosine(const SquareMatrix& cosine, const std::vector<double>& norms) {
    SquareMatrix g(cosine.n);
    for (std::size_t i = 0; i < cosine.n; ++i)
        for (std::size_t j = 0; j < cosine.n; ++j)
            g(i, j) = cosine(i, j) * norms[i] * norms[j];
    return g;
}

} // namespace basin
