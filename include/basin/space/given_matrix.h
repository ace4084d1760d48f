// A similarity matrix given as a file instead of computed from checkpoints (`basin map
// --similarity`): the cosines of N task vectors as CSV, with the norms or the Gram matrix where
// the analyses that need lengths (distances, the raw-geometry PCA) should run. Torch-free.
//
// The CSV: a header row of the N model names (quoted or not, cells separated by a comma with or
// without spaces; a first cell that is empty or "model" when rows carry names, as in basin's own
// similarity.csv), then N rows of N numbers, each
// optionally preceded by its model's name (which must be the header's name for that row). Lines
// that are blank or start with '#' are skipped.
//
// Checks (each a single line naming the file, the row and column, what was expected and found):
// square; finite; symmetric, diagonal 1 and values in [-1, 1] within the printed precision (a cell
// printed with d decimals stands for any value within half a unit of its last digit) or 1e-6,
// whichever is larger; names unique and non-empty. The matrix kept is the mean of the two halves,
// with an exact diagonal of 1 and values clamped to [-1, 1].
#pragma once

#include "basin/space/gram.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace basin {

struct GivenSimilarity {
    std::filesystem::path file;
    std::vector<std::string> names;
    SquareMatrix cosine;
    SquareMatrix half_unit;           // of each cell as printed (0: exact)
    std::optional<SquareMatrix> gram; // from --gram, or from the cosines and --norms
};

// The cosine matrix of a CSV file as described above.
GivenSimilarity read_similarity_matrix(const std::filesystem::path& file);

// Norms of the task vectors: a CSV with a header `model,norm` (or no header) and one row per model
// of the matrix, each name once; norms finite and non-negative. Returns the norms in the matrix's
// name order.
std::vector<double> read_norms(const std::filesystem::path& file, const std::vector<std::string>& names);

// A Gram matrix in the same CSV layout as the similarity matrix, over the same names in the same
// order; symmetric within the printed precision relative to its largest entry, a non-negative
// diagonal; its cosines must equal the similarity matrix's within that file's precision.
SquareMatrix read_gram_matrix(const std::filesystem::path& file, const GivenSimilarity& similarity);

// The same checks for matrices handed over in memory (the Python package's map of a numpy
// matrix): `source` names the matrix in messages ("similarity row 3: ..."); the values are exact
// (the tolerances are the 1e-6 ones); names default to model1, model2, ...
GivenSimilarity similarity_from_values(const std::string& source, const SquareMatrix& cosine,
                                       std::vector<std::string> names = {});
SquareMatrix gram_from_values(const std::string& source, const SquareMatrix& gram, const GivenSimilarity& similarity);
// A Gram matrix alone: its cosines (cosine_from_gram) with the Gram matrix kept for distances.
GivenSimilarity similarity_from_gram(const std::string& source, const SquareMatrix& gram,
                                     std::vector<std::string> names = {});

// G_ij = cos_ij n_i n_j.
SquareMatrix gram_from_cosine(const SquareMatrix& cosine, const std::vector<double>& norms);

} // namespace basin
