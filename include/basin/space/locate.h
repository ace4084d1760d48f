// Where a task vector lies relative to groups of others, from Gram matrix entries alone: its
// distance to each group's convex hull (with the barycentric weights of the nearest hull point)
// and affine hull, and the group it is nearest to. Torch-free; O(members^3) per group.
//
// Convex hull: min over w >= 0, sum w = 1 of ||q - sum_i w_i t_i||^2 = G_qq - 2 w.G_Sq + w' G_SS w,
// solved as non-negative least squares (Lawson and Hanson) on a factor A' A = G_SS (from its
// eigendecomposition) with the sum-to-one condition as one more, heavily weighted row. Affine
// hull: the same without w >= 0, from the equality-constrained normal equations (least-norm
// solution when the members are dependent).
#pragma once

#include "basin/space/gram.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace basin {

struct HullFit {
    double convex_distance = 0, affine_distance = 0;
    std::vector<double> weights; // per member: the convex-hull point's barycentric weights
};

// gram: of the query and the members' task vectors (indices into it).
HullFit fit_to_hull(const SquareMatrix& gram, std::size_t query, const std::vector<std::size_t>& members);

// min ||A x - b|| over x >= 0 (Lawson and Hanson's active-set method); A is rows x columns,
// row-major.
std::vector<double> nonnegative_least_squares(const std::vector<double>& a, std::size_t rows, std::size_t columns,
                                              const std::vector<double>& b);

} // namespace basin
