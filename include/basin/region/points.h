// Where to look in weight space: interpolation and extrapolation coefficients, convex-hull
// samples, plane coordinates and grids, and the PB statistic of PAPER.md. Torch-free arithmetic
// on coefficients; region/weight_space.h turns coefficients into weights.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace basin {

// "start:stop:count" (count evenly spaced values, both ends included, like numpy.linspace) or a
// comma-separated list. Errors quote the text and say what was expected.
std::vector<double> parse_alphas(const std::string& spec);

// PAPER.md's extrapolation: steps log-spaced values from 1 to reach (reach^(k/(steps-1))) and
// their mirror 1 - a from 0 to 1 - reach (to 32 and to -31 by default), sorted.
std::vector<double> extrapolation_alphas(int steps = 10, double reach = 32);

// Sorted union, values within 1e-12 of each other counted once.
std::vector<double> merge_alphas(std::vector<double> a, const std::vector<double>& b);

// samples weight vectors drawn uniformly from the simplex of `members` (Dirichlet(1, ..., 1)),
// seeded.
std::vector<std::vector<double>> dirichlet_samples(std::size_t members, std::size_t samples, std::uint64_t seed);

// Explicit hull weights from a CSV file: one row of member weights per point ('#' comments and
// blank lines skipped), each row with one weight per member, none negative, summing to 1. Errors
// name the file, the line and what was expected.
std::vector<std::vector<double>> read_hull_weights(const std::filesystem::path& file, std::size_t members);

// The k-th seed derived from a study's seed (std::seed_seq over both halves of each): random
// directions and planes take seeds 1, 2, ... so that one --seed fixes them all.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t k);

// The plane through A, B, C with orthonormal directions u = (B - A) / |B - A| and v (C - A with its
// u component removed, normalised), from the inner products of B - A and C - A.
struct PlaneBasis {
    double ab = 0;                                      // |B - A|
    double c_u = 0;                                     // <C - A, u>
    double c_v = 0;                                     // |C - A - c_u u|
    std::array<std::array<double, 2>, 3> coordinates{}; // A, B, C in (u, v) coordinates
    // Weights of A, B, C whose combination is A + x u + y v (they sum to 1).
    std::array<double, 3> weights(double x, double y) const;
};
// bb = <B-A, B-A>, bc = <B-A, C-A>, cc = <C-A, C-A>. Errors if the three points are collinear.
PlaneBasis plane_basis(double bb, double bc, double cc);

struct PlaneGrid {
    std::size_t nx = 0, ny = 0;
    double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    double x(std::size_t i) const { return nx == 1 ? x0 : x0 + (x1 - x0) * double(i) / double(nx - 1); }
    double y(std::size_t j) const { return ny == 1 ? y0 : y0 + (y1 - y0) * double(j) / double(ny - 1); }
};
constexpr std::size_t kMaxGridPoints = 2500; // above this, plane asks for --force
// "21x21" (or "21"): columns x rows. Errors for 0, a malformed text, or more than kMaxGridPoints
// points unless force.
std::pair<std::size_t, std::size_t> parse_grid(const std::string& spec, bool force);
// The grid covering the three points' bounding box widened by margin x its extent on each side.
PlaneGrid plane_grid(const PlaneBasis& basis, std::size_t nx, std::size_t ny, double margin);

// PB(X, Y): the fraction of pairs (x, y) with loss(x) <= loss(y), and the number of pairs.
struct ProbabilityBetter {
    double value = 0;
    std::size_t pairs = 0;
};
ProbabilityBetter probability_better(const std::vector<double>& x, const std::vector<double>& y);

} // namespace basin
