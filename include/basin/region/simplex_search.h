// Gradient-free search over the probability simplex: the weights w (w_i >= 0, sum_i w_i = 1) of a
// combination of m checkpoints that minimise an objective, where each evaluation is expensive
// (building a model and probing it) and no gradient is available.
//
// Algorithm: the simplex is the image of the box [0, 1]^(m-1) under stick breaking
// (w_1 = s_1, w_k = s_k prod_{j<k} (1 - s_j), w_m = prod_j (1 - s_j)), so a bound-constrained
// derivative-free method searches it without constraints of its own: NLopt's COBYLA (Powell's
// linear-approximation trust region; libnlopt from Debian) from the given start, at most
// `evaluations` calls of the objective. Every corner and face of the simplex is reachable (s on the
// box's boundary). m = 1 has one point, returned after one evaluation.
//
// Memory: the trials (m + 1 numbers each). Determinism: COBYLA is deterministic, so the same
// objective and options give the same trials.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace basin {

struct SimplexSearchOptions {
    std::size_t evaluations = 30; // the budget: calls of the objective, the start's included
    std::vector<double> start;    // weights to start from (empty: the centroid, 1/m each)
    double initial_step = 0.25;   // COBYLA's first trust-region radius in stick coordinates
    double tolerance = 1e-4;      // stop when a step changes the stick coordinates by less
};

struct SimplexTrial {
    std::vector<double> weights;
    double value = 0;
};

struct SimplexSearchResult {
    std::vector<double> best; // the weights of the lowest value found
    double best_value = 0;
    std::vector<SimplexTrial> trials; // every evaluation, in order
    std::string stopped;              // why the search ended (budget, converged)
};

using SimplexObjective = std::function<double(const std::vector<double>& weights)>;

SimplexSearchResult search_simplex(std::size_t dimension, const SimplexObjective& objective,
                                   const SimplexSearchOptions& options = {});

// [0, 1]^(m-1) -> the simplex in R^m, and back (for weights with w_k = 0 after a remaining share
// of 0, the inverse picks s_k = 0).
std::vector<double> stick_breaking(const std::vector<double>& sticks);
std::vector<double> stick_coordinates(const std::vector<double>& weights);

} // namespace basin
