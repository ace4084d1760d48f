#include "basin/region/points.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

namespace basin {

namespace {

double parse_number(const std::string& text, const std::string& spec, const char* what) {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    BASIN_CHECK(used == text.size() && !text.empty() && std::isfinite(v), what, " '", spec, "': '", text,
                "' is not a number (expected start:stop:count, e.g. 0:1:11, or a list such as 0,0.5,1)");
    return v;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const auto end = text.find(sep, start);
        parts.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) return parts;
        start = end + 1;
    }
}

} // namespace

std::vector<double> parse_alphas(const std::string& spec) {
    BASIN_CHECK(!spec.empty(), "alphas: empty (expected start:stop:count, e.g. 0:1:11, or a list such as 0,0.5,1)");
    std::vector<double> alphas;
    if (spec.find(':') != std::string::npos) {
        const auto parts = split(spec, ':');
        BASIN_CHECK(parts.size() == 3, "alphas '", spec, "': expected start:stop:count, e.g. 0:1:11");
        const double start = parse_number(parts[0], spec, "alphas"), stop = parse_number(parts[1], spec, "alphas");
        const double count = parse_number(parts[2], spec, "alphas");
        BASIN_CHECK(count >= 1 && count <= 100000 && count == std::floor(count), "alphas '", spec,
                    "': the count must be a whole number from 1 to 100000");
        const auto n = std::size_t(count);
        for (std::size_t i = 0; i < n; ++i)
            alphas.push_back(n == 1 ? start : i + 1 == n ? stop : start + (stop - start) * double(i) / double(n - 1));
    } else {
        for (const auto& part : split(spec, ','))
            alphas.push_back(parse_number(trim(part), spec, "alphas"));
    }
    return alphas;
}

std::vector<double> extrapolation_alphas(int steps, double reach) {
    std::vector<double> out;
    for (int k = 0; k < steps; ++k) {
        const double a = steps == 1 ? 1.0 : std::pow(reach, double(k) / double(steps - 1));
        out.push_back(a);
        out.push_back(1.0 - a);
    }
    return merge_alphas({}, out);
}

std::vector<double> merge_alphas(std::vector<double> a, const std::vector<double>& b) {
    a.insert(a.end(), b.begin(), b.end());
    std::sort(a.begin(), a.end());
    std::vector<double> out;
    for (double v : a)
        if (out.empty() || std::abs(v - out.back()) > 1e-12) out.push_back(v);
    return out;
}

std::vector<std::vector<double>> dirichlet_samples(std::size_t members, std::size_t samples, std::uint64_t seed) {
    BASIN_CHECK(members >= 1, "hull samples of an empty group");
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> exponential(1.0); // Gamma(1): normalised, Dirichlet(1, ..., 1)
    std::vector<std::vector<double>> out(samples, std::vector<double>(members));
    for (auto& w : out) {
        double sum = 0;
        for (auto& v : w)
            sum += (v = exponential(rng));
        for (auto& v : w)
            v /= sum;
    }
    return out;
}

std::array<double, 3> PlaneBasis::weights(double x, double y) const {
    // A + x u + y v with u = (B - A) / ab and v = (C - A - c_u u) / c_v
    const double wc = y / c_v;
    const double wb = x / ab - y * c_u / (ab * c_v);
    return {1.0 - wb - wc, wb, wc};
}

PlaneBasis plane_basis(double bb, double bc, double cc) {
    PlaneBasis p;
    BASIN_CHECK(bb > 0, "plane: the first two models are the same point");
    p.ab = std::sqrt(bb);
    p.c_u = bc / p.ab;
    const double v2 = cc - p.c_u * p.c_u;
    BASIN_CHECK(v2 > 1e-12 * std::max(bb, cc), "plane: the three models lie on one line; they span no plane");
    p.c_v = std::sqrt(v2);
    p.coordinates = {{{0.0, 0.0}, {p.ab, 0.0}, {p.c_u, p.c_v}}};
    return p;
}

std::pair<std::size_t, std::size_t> parse_grid(const std::string& spec, bool force) {
    const auto parts = split(spec, 'x');
    BASIN_CHECK(parts.size() <= 2, "grid '", spec, "': expected COLUMNSxROWS, e.g. 21x21");
    std::vector<std::size_t> n;
    for (const auto& part : parts) {
        const double v = parse_number(part, spec, "grid");
        BASIN_CHECK(v >= 1 && v == std::floor(v) && v <= 1e6, "grid '", spec,
                    "': sizes must be whole numbers of at least 1, e.g. 21x21");
        n.push_back(std::size_t(v));
    }
    const std::size_t nx = n[0], ny = n.size() == 2 ? n[1] : n[0];
    BASIN_CHECK(force || nx * ny <= kMaxGridPoints, "grid '", spec, "': ", nx * ny, " points, more than the limit of ",
                kMaxGridPoints, " (each point is a model scored on every dataset); pass --force to run it anyway");
    return {nx, ny};
}

PlaneGrid plane_grid(const PlaneBasis& basis, std::size_t nx, std::size_t ny, double margin) {
    BASIN_CHECK(margin >= 0 && std::isfinite(margin), "plane: the margin must be 0 or more, got ", margin);
    PlaneGrid g;
    g.nx = nx, g.ny = ny;
    g.x0 = g.y0 = 1e300, g.x1 = g.y1 = -1e300;
    for (const auto& [x, y] : basis.coordinates)
        g.x0 = std::min(g.x0, x), g.x1 = std::max(g.x1, x), g.y0 = std::min(g.y0, y), g.y1 = std::max(g.y1, y);
    const double wx = g.x1 - g.x0, wy = g.y1 - g.y0;
    g.x0 -= margin * wx, g.x1 += margin * wx, g.y0 -= margin * wy, g.y1 += margin * wy;
    return g;
}

ProbabilityBetter probability_better(const std::vector<double>& x, const std::vector<double>& y) {
    ProbabilityBetter pb;
    pb.pairs = x.size() * y.size();
    if (pb.pairs == 0) return pb;
    std::size_t wins = 0;
    for (double a : x)
        for (double b : y)
            wins += a <= b;
    pb.value = double(wins) / double(pb.pairs);
    return pb;
}

std::vector<std::vector<double>> read_hull_weights(const std::filesystem::path& file, std::size_t members) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the weights file");
    std::vector<std::vector<double>> rows;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        std::vector<double> row;
        std::stringstream cells(line);
        for (std::string cell; std::getline(cells, cell, ',');) {
            cell = trim(cell);
            std::size_t used = 0;
            double v = 0;
            try {
                v = std::stod(cell, &used);
            } catch (...) {
                used = 0;
            }
            BASIN_CHECK(used == cell.size() && used > 0 && std::isfinite(v), file.string(), ":", number, ": '", cell,
                        "' is not a number");
            BASIN_CHECK(v >= 0, file.string(), ":", number, ": weight ", cell,
                        " is negative (hull weights lie on the simplex)");
            row.push_back(v);
        }
        BASIN_CHECK(row.size() == members, file.string(), ":", number, ": ", row.size(),
                    " weights, expected one per member (", members, ")");
        double sum = 0;
        for (double v : row)
            sum += v;
        BASIN_CHECK(std::abs(sum - 1) <= 1e-6, file.string(), ":", number, ": the weights sum to ", format_g(sum),
                    ", expected 1");
        rows.push_back(row);
    }
    BASIN_CHECK(!rows.empty(), file.string(), ": no weight rows");
    return rows;
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t k) {
    std::seed_seq seq{std::uint32_t(seed), std::uint32_t(seed >> 32), std::uint32_t(k), std::uint32_t(k >> 32)};
    std::uint32_t out[2];
    seq.generate(out, out + 2);
    return (std::uint64_t(out[0]) << 32) | out[1];
}

} // namespace basin
