#include "basin/merge/methods.h"

#include "basin/core/error.h"

#include <algorithm>
#include <cmath>

namespace basin {

namespace {

using nlohmann::json;

void no_check(const MergeOptions&) {}
json no_parameters(const MergeOptions&) {
    return json::object();
}
void no_plan(const MergeOptions&, std::size_t, const TensorStatistics&, TensorPlan&) {}

void check_lambda(const MergeOptions& o) {
    BASIN_CHECK(std::isfinite(o.lambda), "--lambda must be finite, got ", o.lambda);
}

// ---- mean and weighted: fixed coefficients

void mean_plan(const MergeOptions&, std::size_t n, const TensorStatistics&, TensorPlan& p) {
    p.coefficients.assign(n, 1.0 / double(n));
}

void weighted_check(const MergeOptions& o) {
    BASIN_CHECK(o.weights.size() == o.models.size(), "merge --method weighted: ", o.weights.size(), " weights for ",
                o.models.size(), " models");
    double sum = 0;
    for (double w : o.weights) {
        BASIN_CHECK(std::isfinite(w), "merge: weight ", w, " is not a finite number");
        sum += w;
    }
    BASIN_CHECK(sum != 0 || !o.normalize.value_or(true), "merge --method weighted: the weights sum to 0");
}
json weighted_parameters(const MergeOptions& o) {
    json p = {{"weights", o.weights}};
    if (o.normalize) p["normalize"] = *o.normalize;
    return p;
}
void weighted_plan(const MergeOptions& o, std::size_t, const TensorStatistics&, TensorPlan& p) {
    double sum = 0;
    for (double w : o.weights)
        sum += w;
    const bool normalize = o.normalize.value_or(true); // mergekit's linear with normalize: false sums
    for (double w : o.weights)
        p.coefficients.push_back(normalize ? w / sum : w);
}

// ---- task arithmetic: base + lambda sum_i (x_i - base); lambda = 0 is the base bit for bit

json lambda_parameters(const MergeOptions& o) {
    return {{"lambda", o.lambda}};
}
void task_arithmetic_plan(const MergeOptions& o, std::size_t n, const TensorStatistics&, TensorPlan& p) {
    p.coefficients.assign(n, o.lambda);
    p.coefficients.push_back(1 - double(n) * o.lambda);
}

// ---- TIES (Yadav et al., 2023): trim each task vector to its largest entries, elect a sign per
// entry from the trimmed sum, average the entries that agree with it

void ties_check(const MergeOptions& o) {
    check_lambda(o);
    BASIN_CHECK(o.density >= 0 && o.density <= 1, "--density must be in [0, 1], got ", o.density);
}
json ties_parameters(const MergeOptions& o) {
    return {{"lambda", o.lambda}, {"density", o.density}};
}
void ties_plan(const MergeOptions&, std::size_t, const TensorStatistics& s, TensorPlan& p) {
    p.thresholds = s.threshold;
}
void ties_combine(const MergeOptions& o, std::size_t n, const TensorPlan& plan, const MergeChunk& c, float* y) {
    const float* b = c.source(n);
    for (std::size_t e = 0; e < c.count; ++e) {
        double total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const float tau = c.source(i)[e] - b[e];
            if (std::abs(tau) >= plan.thresholds[i]) total += tau;
        }
        double agreeing = 0;
        std::size_t agree = 0;
        if (total != 0)
            for (std::size_t i = 0; i < n; ++i) {
                const float tau = c.source(i)[e] - b[e];
                if (std::abs(tau) >= plan.thresholds[i] && tau != 0 && (tau > 0) == (total > 0))
                    agreeing += tau, ++agree;
            }
        y[e] = agree ? float(double(b[e]) + o.lambda * agreeing / double(agree)) : b[e];
    }
}

// ---- DARE (Yu et al., 2024): drop entries of each task vector at random, rescale the survivors

void dare_check(const MergeOptions& o) {
    check_lambda(o);
    BASIN_CHECK(o.drop >= 0 && o.drop < 1, "--drop must be in [0, 1), got ", o.drop);
}
json dare_parameters(const MergeOptions& o) {
    return {{"lambda", o.lambda}, {"drop", o.drop}, {"seed", o.seed}};
}
void dare_combine(const MergeOptions& o, std::size_t n, const TensorPlan& plan, const MergeChunk& c, float* y) {
    const float* b = c.source(n);
    const double rescale = 1.0 / (1.0 - o.drop);
    for (std::size_t e = 0; e < c.count; ++e) {
        double total = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (dare_keeps(o.seed, i, plan.name_hash, c.from + e, o.drop))
                total += (double(c.source(i)[e]) - double(b[e])) * rescale;
        y[e] = float(double(b[e]) + o.lambda * total);
    }
}

// ---- SLERP: along the great circle between two models' weights, per tensor

void slerp_check(const MergeOptions& o) {
    BASIN_CHECK(std::isfinite(o.t), "--t must be finite, got ", o.t);
}
json slerp_parameters(const MergeOptions& o) {
    return {{"t", o.t}};
}
void slerp_plan(const MergeOptions& o, std::size_t, const TensorStatistics& s, TensorPlan& p) {
    const double na = std::sqrt(s.gram[0]), nb = std::sqrt(s.gram[3]);
    const double cosine = na > 0 && nb > 0 ? std::clamp(s.gram[1] / (na * nb), -1.0, 1.0) : 1.0;
    if (std::abs(cosine) > 0.9995) { // nearly parallel: the arc is a line
        p.coefficients = {1 - o.t, o.t};
        return;
    }
    const double theta = std::acos(cosine), sin_theta = std::sin(theta);
    p.coefficients = {std::sin((1 - o.t) * theta) / sin_theta, std::sin(o.t * theta) / sin_theta};
}

// ---- Model Stock (Jang et al., 2024): t mean + (1 - t) base with t = N cos / (1 + (N - 1) cos),
// cos the mean pairwise cosine of the task vectors, clamped to [0, 1]

void model_stock_plan(const MergeOptions& o, std::size_t n, const TensorStatistics& s, TensorPlan& p) {
    double sum = 0;
    std::size_t pairs = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j) {
            const double d = std::sqrt(s.gram[i * n + i] * s.gram[j * n + j]);
            if (o.clamp_model_stock) {
                if (d > 0) sum += s.gram[i * n + j] / d, ++pairs;
            } else { // mergekit: every pair, the norms' product at least 1e-6, the cosine in [-1, 1]
                sum += std::clamp(s.gram[i * n + j] / std::max(d, 1e-6), -1.0, 1.0), ++pairs;
            }
        }
    const double cosine = pairs ? sum / double(pairs) : 1.0;
    const double denominator = 1 + double(n - 1) * cosine;
    double t = double(n) * cosine / denominator;
    if (o.clamp_model_stock)
        t = std::clamp(t, 0.0, 1.0);
    else if (std::abs(denominator) < 1e-6) // mergekit: no finite estimate, keep the base
        t = 0;
    p.coefficients.assign(n, t / double(n));
    p.coefficients.push_back(1 - t);
}

// ---- generalized task arithmetic, as mergekit computes task_arithmetic, ties, dare_ties and
// dare_linear: per model d_i = w_i * sparsify(tau_i) (rescaled to tau_i's L1 norm with rescale);
// with a consensus, the elected sign per entry (sum: of sum_i d_i, count: of sum_i sign(d_i); ties
// go to +) keeps the d_i of that sign, divided (normalize) by the sum of their weights; without,
// sum_i d_i divided by sum_i w_i; then times lambda, added to the base

void gta_check(const MergeOptions& o) {
    check_lambda(o);
    BASIN_CHECK(o.sparsify == "none" || o.sparsify == "magnitude" || o.sparsify == "random" ||
                    o.sparsify == "outliers" || o.sparsify == "della",
                "merge: sparsification '", o.sparsify, "': expected none, magnitude, random, outliers or della");
    BASIN_CHECK(o.consensus == "none" || o.consensus == "sum" || o.consensus == "count", "merge: consensus '",
                o.consensus, "': expected none, sum or count");
    BASIN_CHECK(o.weights.empty() || o.weights.size() == o.models.size(), "merge --method gta: ", o.weights.size(),
                " weights for ", o.models.size(), " models");
    BASIN_CHECK(o.densities.empty() || o.densities.size() == o.models.size(),
                "merge --method gta: ", o.densities.size(), " densities for ", o.models.size(), " models");
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        BASIN_CHECK(std::isfinite(gta_weight(o, i)), "merge: weight ", gta_weight(o, i), " of ", o.models[i].string(),
                    " is not a finite number");
        const double d = gta_density(o, i);
        BASIN_CHECK(std::isfinite(d) && d >= 0 && d <= 1, "merge: density ", d, " of ", o.models[i].string(),
                    " must be in [0, 1]");
        const double g = gta_gamma(o, i);
        BASIN_CHECK(std::isfinite(g) && g >= 0 && g <= 1, "merge: gamma ", g, " of ", o.models[i].string(),
                    " must be in [0, 1]");
    }
}
json gta_parameters(const MergeOptions& o) {
    std::vector<double> weights, densities, gammas;
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        weights.push_back(gta_weight(o, i));
        densities.push_back(gta_density(o, i));
        gammas.push_back(gta_gamma(o, i));
    }
    json p = {{"lambda", o.lambda},       {"weights", weights},
              {"densities", densities},   {"sparsify", o.sparsify},
              {"consensus", o.consensus}, {"normalize", o.normalize.value_or(false)},
              {"rescale", o.rescale},     {"seed", o.seed}};
    if (o.sparsify == "outliers") p["gammas"] = gammas;
    if (o.sparsify == "della") {
        std::vector<double> epsilons;
        for (std::size_t i = 0; i < o.models.size(); ++i)
            epsilons.push_back(gta_epsilon(o, i));
        p["epsilons"] = epsilons;
    }
    return p;
}
void gta_plan(const MergeOptions& o, std::size_t n, const TensorStatistics& s, TensorPlan& p) {
    p.thresholds = s.threshold;
    p.upper = s.upper;
    p.keep = s.keep;
    p.scales = s.scale;
    if (o.sparsify != "none" || o.consensus != "none") return;
    // no mask, no election: a linear combination, base + (lambda / D) sum_i w_i (x_i - base) with D
    // the weights' sum (normalize; 1 when below 1e-8 in magnitude) or 1, summed by the loop's
    // fast path
    double divisor = 0;
    for (std::size_t i = 0; i < n; ++i)
        divisor += gta_weight(o, i);
    if (std::abs(divisor) < 1e-8 || !o.normalize.value_or(false)) divisor = 1;
    double base = 1;
    for (std::size_t i = 0; i < n; ++i) {
        p.coefficients.push_back(o.lambda * gta_weight(o, i) / divisor);
        base -= p.coefficients.back();
    }
    p.coefficients.push_back(base);
}
void gta_combine(const MergeOptions& o, std::size_t n, const TensorPlan& plan, const MergeChunk& c, float* y) {
    const float* b = c.source(n);
    const bool magnitude = o.sparsify == "magnitude", random = o.sparsify == "random";
    const bool outliers = o.sparsify == "outliers", della = o.sparsify == "della";
    const bool normalize = o.normalize.value_or(false);
    thread_local std::vector<double> d, w;
    d.resize(n), w.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        w[i] = gta_weight(o, i);
    for (std::size_t e = 0; e < c.count; ++e) {
        for (std::size_t i = 0; i < n; ++i) {
            const float tau = c.source(i)[e] - b[e]; // in float32, as the thresholds were found
            const double density = gta_density(o, i);
            bool kept = true;
            if (magnitude && density < 1) kept = std::abs(tau) >= plan.thresholds[i];
            if (random && density < 1) kept = dare_keeps(o.seed, i, plan.name_hash, c.from + e, 1 - density);
            if (outliers && density < 1) kept = std::abs(tau) >= plan.thresholds[i] && std::abs(tau) <= plan.upper[i];
            if (della && density < 1) kept = (plan.keep[i][(c.from + e) / 64] >> ((c.from + e) % 64)) & 1;
            d[i] = kept ? double(tau) * plan.scales[i] * w[i] : 0.0;
        }
        double mixed = 0, divisor = 0;
        if (o.consensus == "none") {
            for (std::size_t i = 0; i < n; ++i)
                mixed += d[i], divisor += w[i];
            if (std::abs(divisor) < 1e-8) divisor = 1;
        } else {
            double vote = 0;
            for (std::size_t i = 0; i < n; ++i)
                vote += o.consensus == "sum" ? d[i] : double((d[i] > 0) - (d[i] < 0));
            const int majority = vote >= 0 ? 1 : -1;
            for (std::size_t i = 0; i < n; ++i)
                if ((d[i] > 0) - (d[i] < 0) == majority) mixed += d[i], divisor += w[i];
            if (divisor == 0) divisor = 1;
        }
        if (normalize) mixed /= divisor;
        y[e] = float(double(b[e]) + o.lambda * mixed);
    }
}

// ---- spherical methods as linear combinations: multislerp, karcher and nuslerp move along great
// circles of the flattened tensors, so every point they reach is sum_i c_i v_i with scalar c_i that
// follow from the inner products <v_i, v_j> alone. Their plans compute the c_i from the Gram
// matrix in double; the loop then sums the sources, never holding a normalised copy.

// a^T G b for the k x k Gram matrix G
double quadratic(const std::vector<double>& gram, std::size_t k, const std::vector<double>& a,
                 const std::vector<double>& b) {
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j)
            sum += a[i] * gram[i * k + j] * b[j];
    return sum;
}

// Coefficients c over the vectors v (task vectors or weights) as the plan's coefficients over the
// sources: with a base, base + sum_i c_i (x_i - base); without, sum_i c_i x_i.
void set_over_sources(const MergeOptions& o, std::vector<double> c, TensorPlan& p) {
    if (!o.base.empty()) {
        double base = 1;
        for (double v : c)
            base -= v;
        c.push_back(base);
    }
    p.coefficients = std::move(c);
}

// Multi-SLERP (Goddard, 2025), as mergekit: the unit vectors u_i = v_i / (|v_i| + eps), their
// weighted mean m normalised, the weighted mean T of the u_i's tangents at m, the exponential map
// m cos|T| + T sin|T| / |T|, scaled to the weighted mean norm sum_i w_i |v_i|
void multislerp_check(const MergeOptions& o) {
    BASIN_CHECK(o.weights.empty() || o.weights.size() == o.models.size(),
                "merge --method multislerp: ", o.weights.size(), " weights for ", o.models.size(), " models");
    double sum = 0;
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        BASIN_CHECK(std::isfinite(gta_weight(o, i)), "merge: weight ", gta_weight(o, i), " is not a finite number");
        sum += gta_weight(o, i);
    }
    BASIN_CHECK(sum != 0 || !o.normalize.value_or(true), "merge --method multislerp: the weights sum to 0");
}
json weights_parameters(const MergeOptions& o) {
    std::vector<double> weights;
    for (std::size_t i = 0; i < o.models.size(); ++i)
        weights.push_back(gta_weight(o, i));
    return {{"weights", weights}, {"normalize", o.normalize.value_or(true)}};
}
void multislerp_plan(const MergeOptions& o, std::size_t n, const TensorStatistics& s, TensorPlan& p) {
    if (n == 1) return set_over_sources(o, {1.0}, p); // the model itself, as mergekit
    constexpr double eps = 1e-8;
    std::vector<double> w(n), a(n), norm(n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i)
        sum += (w[i] = gta_weight(o, i));
    for (std::size_t i = 0; i < n; ++i) {
        if (o.normalize.value_or(true)) w[i] /= sum;
        norm[i] = std::sqrt(std::max(0.0, s.gram[i * n + i]));
        a[i] = 1 / (norm[i] + eps); // u_i = a_i v_i
    }
    std::vector<double> mean(n); // m = sum_i w_i u_i
    for (std::size_t i = 0; i < n; ++i)
        mean[i] = w[i] * a[i];
    const double mean_norm = std::sqrt(std::max(0.0, quadratic(s.gram, n, mean, mean)));
    if (mean_norm < eps) {
        BASIN_CHECK(n == 2, "merge --method multislerp: a tensor's weighted mean direction is zero (antipodal "
                            "models whose weights balance out); give other weights");
        return set_over_sources(o, w, p); // mergekit's fallback for two models: the line
    }
    for (auto& m : mean)
        m /= mean_norm;
    // T = sum_i w_i (u_i - <u_i, m> m)
    double along = 0;
    for (std::size_t i = 0; i < n; ++i) {
        double gm = 0; // (G m)_i
        for (std::size_t j = 0; j < n; ++j)
            gm += s.gram[i * n + j] * mean[j];
        along += w[i] * a[i] * gm;
    }
    std::vector<double> tangent(n);
    for (std::size_t i = 0; i < n; ++i)
        tangent[i] = w[i] * a[i] - along * mean[i];
    const double tangent_norm = std::sqrt(std::max(0.0, quadratic(s.gram, n, tangent, tangent))) + eps;
    double scale = 0; // the weighted mean norm
    for (std::size_t i = 0; i < n; ++i)
        scale += w[i] * norm[i];
    std::vector<double> c(n);
    for (std::size_t i = 0; i < n; ++i)
        c[i] = scale * (mean[i] * std::cos(tangent_norm) + tangent[i] * std::sin(tangent_norm) / tangent_norm);
    set_over_sources(o, c, p);
}

// The Karcher mean on the unit sphere, as mergekit: of every source's weights (the base is one
// more point where given), equal weights; from the normalised mean of the unit vectors, at most
// `karcher_iterations` steps m <- cos|T| m + sin|T| T / |T| with T = sum_i alpha_i theta_i /
// sin(theta_i) (u_i - cos(theta_i) m), stopping when |T| < tol; scaled to the mean norm
void karcher_check(const MergeOptions& o) {
    BASIN_CHECK(o.karcher_iterations >= 0, "merge: karcher: max_iter must be at least 0, got ", o.karcher_iterations);
    BASIN_CHECK(std::isfinite(o.karcher_tolerance) && o.karcher_tolerance >= 0,
                "merge: karcher: tol must be a number >= 0, got ", o.karcher_tolerance);
}
json karcher_parameters(const MergeOptions& o) {
    return {{"max_iter", o.karcher_iterations}, {"tol", o.karcher_tolerance}};
}
void karcher_plan(const MergeOptions& o, std::size_t, const TensorStatistics& s, TensorPlan& p) {
    const std::size_t k = std::size_t(std::lround(std::sqrt(double(s.gram.size())))); // the sources
    const double tol = o.karcher_tolerance;
    p.coefficients.assign(k, 0.0);
    if (k == 1) {
        p.coefficients[0] = 1;
        return;
    }
    std::vector<double> norm(k), alpha(k, 0.0);
    std::vector<std::size_t> valid;
    for (std::size_t i = 0; i < k; ++i) {
        norm[i] = std::sqrt(std::max(0.0, s.gram[i * k + i]));
        if (norm[i] > tol) valid.push_back(i);
    }
    if (valid.empty()) return; // every source (nearly) zero: zero
    for (std::size_t i : valid)
        alpha[i] = 1.0 / double(valid.size());
    auto unit = [&](std::size_t i) { // u_i as coefficients
        std::vector<double> u(k, 0.0);
        u[i] = 1 / norm[i];
        return u;
    };
    std::vector<double> mean(k, 0.0);
    for (std::size_t i : valid)
        mean[i] = alpha[i] / norm[i];
    const double mean_norm = std::sqrt(std::max(0.0, quadratic(s.gram, k, mean, mean)));
    if (mean_norm < tol)
        mean = unit(valid[0]);
    else
        for (auto& m : mean)
            m /= mean_norm;
    for (int step = 0; step < o.karcher_iterations; ++step) {
        std::vector<double> tangent(k, 0.0);
        for (std::size_t i : valid) {
            const double dot = std::clamp(quadratic(s.gram, k, mean, unit(i)), -1.0, 1.0);
            const double theta = std::acos(dot);
            if (theta < tol) continue;
            const double f = alpha[i] * theta / std::sin(theta);
            tangent[i] += f / norm[i];
            for (std::size_t j = 0; j < k; ++j)
                tangent[j] -= f * dot * mean[j];
        }
        const double tangent_norm = std::sqrt(std::max(0.0, quadratic(s.gram, k, tangent, tangent)));
        if (tangent_norm < tol) break;
        for (std::size_t j = 0; j < k; ++j)
            mean[j] = std::cos(tangent_norm) * mean[j] + std::sin(tangent_norm) * tangent[j] / tangent_norm;
        const double unit_norm = std::sqrt(std::max(0.0, quadratic(s.gram, k, mean, mean)));
        if (unit_norm > tol)
            for (auto& m : mean)
                m /= unit_norm;
    }
    double scale = 0; // mergekit: the mean norm over every source, with its unnormalised 1 / k weights
    for (std::size_t i = 0; i < k; ++i)
        scale += norm[i] / double(k);
    for (std::size_t j = 0; j < k; ++j)
        p.coefficients[j] = scale * mean[j];
}

// NuSLERP, as mergekit: SLERP of two models' tensors (their task vectors where a base is given) at
// t = w_2 / (w_1 + w_2) (0.5 when the weights sum to about 0; --t without weights), flattened
// (nuslerp_flatten, the default), or of each row (flatten off) or each column (row_wise) on its
// own; the line where the two vectors are colinear (1 - cos^2 <= 1e-16), norms clamped at 1e-7
void nuslerp_check(const MergeOptions& o) {
    BASIN_CHECK(o.weights.empty() || o.weights.size() == 2, "merge --method nuslerp: ", o.weights.size(),
                " weights for 2 models");
    for (double w : o.weights)
        BASIN_CHECK(std::isfinite(w), "merge: weight ", w, " is not a finite number");
    BASIN_CHECK(std::isfinite(o.t), "--t must be finite, got ", o.t);
    BASIN_CHECK(o.vectors == "tensor" || o.vectors == "rows" || o.vectors == "columns",
                "merge --method nuslerp: --vectors '", o.vectors, "': expected tensor, rows or columns");
}
double nuslerp_t(const MergeOptions& o) {
    if (o.weights.empty()) return o.t;
    const double total = o.weights[0] + o.weights[1];
    return std::abs(total) < 1e-6 ? 0.5 : o.weights[1] / total;
}
json nuslerp_parameters(const MergeOptions& o) {
    json p = {{"t", nuslerp_t(o)}, {"vectors", o.vectors}};
    if (!o.weights.empty()) p["weights"] = o.weights;
    return p;
}
// the two coefficients of SLERP at t between vectors with these inner products
std::pair<double, double> slerp_coefficients(double t, double aa, double ab, double bb) {
    const double n0 = std::max(std::sqrt(std::max(0.0, aa)), 1e-7), n1 = std::max(std::sqrt(std::max(0.0, bb)), 1e-7);
    const double cosine = std::clamp(ab / (n0 * n1), -1.0, 1.0);
    if (1 - cosine * cosine <= 1e-16) return {1 - t, t};
    const double theta = std::acos(cosine), sin_theta = std::sin(theta);
    return {std::sin((1 - t) * theta) / sin_theta, std::sin(t * theta) / sin_theta};
}
void nuslerp_plan(const MergeOptions& o, std::size_t, const TensorStatistics& s, TensorPlan& p) {
    const double t = nuslerp_t(o);
    if (o.vectors == "tensor") {
        const auto [c0, c1] = slerp_coefficients(t, s.gram[0], s.gram[1], s.gram[3]);
        return set_over_sources(o, {c0, c1}, p);
    }
    p.columns = s.columns;
    for (std::size_t v = 0; v + 2 < s.vectors.size(); v += 3) {
        const auto [c0, c1] = slerp_coefficients(t, s.vectors[v], s.vectors[v + 1], s.vectors[v + 2]);
        p.vector_coefficients.push_back(c0);
        p.vector_coefficients.push_back(c1);
    }
}
void nuslerp_combine(const MergeOptions& o, std::size_t, const TensorPlan& plan, const MergeChunk& c, float* y) {
    const bool rows = o.vectors == "rows", based = !o.base.empty();
    const float *a = c.source(0), *b = c.source(1), *base = based ? c.source(2) : nullptr;
    for (std::size_t e = 0; e < c.count; ++e) {
        const std::size_t index = c.from + e, v = rows ? index / plan.columns : index % plan.columns;
        const double c0 = plan.vector_coefficients[2 * v], c1 = plan.vector_coefficients[2 * v + 1];
        y[e] = based ? float(double(base[e]) + c0 * double(a[e] - base[e]) + c1 * double(b[e] - base[e]))
                     : float(c0 * double(a[e]) + c1 * double(b[e]));
    }
}

// ---- SCE (Wan et al., 2024, FuseChat), as mergekit: Select the entries whose task-vector
// variance across the models is among the floor(select_topk * nonzero) largest, Calculate each
// model's weight as its masked task vector's mean square (normalised; equal when they sum below
// 1e-6), Erase the entries against the sign of their masked sum; base + sum_i w_i e_i tau_i /
// max(sum_i w_i e_i, 1e-6)
void sce_check(const MergeOptions& o) {
    BASIN_CHECK(std::isfinite(o.select_topk), "merge: sce: select_topk must be a number, got ", o.select_topk);
}
json sce_parameters(const MergeOptions& o) {
    return {{"select_topk", o.select_topk}};
}
void sce_plan(const MergeOptions&, std::size_t, const TensorStatistics& s, TensorPlan& p) {
    p.thresholds = s.threshold;
    p.scales = s.scale;
}
void sce_combine(const MergeOptions&, std::size_t n, const TensorPlan& plan, const MergeChunk& c, float* y) {
    const float* b = c.source(n);
    thread_local std::vector<float> tau;
    tau.resize(n);
    for (std::size_t e = 0; e < c.count; ++e) {
        const bool kept = sce_variance(c, n, e) >= plan.thresholds[0];
        double vote = 0;
        for (std::size_t i = 0; i < n; ++i) {
            tau[i] = kept ? c.source(i)[e] - b[e] : 0.0f;
            vote += tau[i];
        }
        const int majority = vote >= 0 ? 1 : -1;
        double mixed = 0, divisor = 0;
        for (std::size_t i = 0; i < n; ++i)
            if ((tau[i] > 0) - (tau[i] < 0) == majority) mixed += plan.scales[i] * tau[i], divisor += plan.scales[i];
        y[e] = float(double(b[e]) + mixed / std::max(divisor, 1e-6));
    }
}

} // namespace

float sce_variance(const MergeChunk& c, std::size_t n, std::size_t e) {
    const float base = c.source(n)[e];
    double mean = 0;
    for (std::size_t i = 0; i < n; ++i)
        mean += double(c.source(i)[e] - base);
    mean /= double(n);
    double variance = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = double(c.source(i)[e] - base) - mean;
        variance += d * d;
    }
    return float(variance / double(n));
}

double gta_density(const MergeOptions& o, std::size_t model) {
    return o.densities.empty() ? o.density : o.densities[model];
}

double gta_gamma(const MergeOptions& o, std::size_t model) {
    return o.gammas.empty() ? o.gamma : o.gammas[model];
}

double gta_epsilon(const MergeOptions& o, std::size_t model) {
    return o.epsilons.empty() ? o.epsilon : o.epsilons[model];
}

double gta_weight(const MergeOptions& o, std::size_t model) {
    return o.weights.empty() ? 1.0 : o.weights[model];
}

const std::vector<MergeMethodEntry>& merge_method_table() {
    using S = MergeStatistic;
    static const std::vector<MergeMethodEntry> table = {
        {MergeMethod::Mean, "mean", false, 1, 0, no_check, no_parameters, S::none, mean_plan, nullptr},
        {MergeMethod::Weighted, "weighted", false, 1, 0, weighted_check, weighted_parameters, S::none, weighted_plan,
         nullptr},
        {MergeMethod::TaskArithmetic, "task-arithmetic", true, 1, 0, check_lambda, lambda_parameters, S::none,
         task_arithmetic_plan, nullptr},
        {MergeMethod::Ties, "ties", true, 1, 0, ties_check, ties_parameters, S::top_magnitudes, ties_plan,
         ties_combine},
        {MergeMethod::Dare, "dare", true, 1, 0, dare_check, dare_parameters, S::none, no_plan, dare_combine},
        {MergeMethod::Slerp, "slerp", false, 2, 2, slerp_check, slerp_parameters, S::weight_inner_products, slerp_plan,
         nullptr},
        {MergeMethod::ModelStock, "model-stock", true, 2, 0, no_check, no_parameters, S::task_vector_inner_products,
         model_stock_plan, nullptr},
        {MergeMethod::Gta, "gta", true, 1, 0, gta_check, gta_parameters, S::gta, gta_plan, gta_combine},
        {MergeMethod::Multislerp, "multislerp", false, 1, 0, multislerp_check, weights_parameters, S::inner_products,
         multislerp_plan, nullptr},
        {MergeMethod::Karcher, "karcher", false, 1, 0, karcher_check, karcher_parameters, S::source_inner_products,
         karcher_plan, nullptr},
        {MergeMethod::Nuslerp, "nuslerp", false, 2, 2, nuslerp_check, nuslerp_parameters, S::vector_inner_products,
         nuslerp_plan, nuslerp_combine},
        {MergeMethod::Sce, "sce", true, 1, 0, sce_check, sce_parameters, S::sce, sce_plan, sce_combine},
    };
    return table;
}

const MergeMethodEntry& merge_method_entry(MergeMethod method) {
    for (const auto& e : merge_method_table())
        if (e.method == method) return e;
    fail("merge: method ", int(method), " has no entry in the method table");
}

MergeMethod parse_merge_method(const std::string& name) {
    std::string known;
    for (const auto& e : merge_method_table()) {
        if (name == e.name) return e.method;
        known += (known.empty() ? "" : ", ") + std::string(e.name);
    }
    fail("--method: unknown merge method '", name, "' (", known, ")");
}

const char* merge_method_name(MergeMethod m) {
    return merge_method_entry(m).name;
}

bool needs_base(MergeMethod m) {
    return merge_method_entry(m).needs_base;
}

} // namespace basin
