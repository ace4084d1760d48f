#include "basin/core/stats.h"

#include "basin/core/error.h"
#include "basin/core/random.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace basin {

double mean(const std::vector<double>& x) {
    if (x.empty()) return 0;
    double s = 0;
    for (double v : x)
        s += v;
    return s / double(x.size());
}

double sample_std(const std::vector<double>& x) {
    if (x.size() < 2) return 0;
    const double m = mean(x);
    double s = 0;
    for (double v : x)
        s += (v - m) * (v - m);
    return std::sqrt(s / double(x.size() - 1));
}

double quantile(std::vector<double> values, double q) {
    if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    const double at = q * double(values.size() - 1);
    const std::size_t below = static_cast<std::size_t>(std::floor(at));
    const std::size_t above = std::min(below + 1, values.size() - 1);
    return values[below] + (at - double(below)) * (values[above] - values[below]);
}

Summary summarize(const std::vector<double>& values) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (values.empty()) return {0, nan, nan, nan, nan};
    return {values.size(), mean(values), quantile(values, 0.5), quantile(values, 0.05), quantile(values, 0.95)};
}

namespace {

// Continued fraction of the incomplete beta function, evaluated with the modified Lentz method.
double beta_fraction(double x, double a, double b) {
    constexpr double tiny = 1e-300, eps = 1e-15;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::abs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; ++m) {
        const double m2 = 2.0 * m;
        // even step: d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m))
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + num * d;
        c = 1 + num / c;
        if (std::abs(d) < tiny) d = tiny;
        if (std::abs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        // odd step: d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + num * d;
        c = 1 + num / c;
        if (std::abs(d) < tiny) d = tiny;
        if (std::abs(c) < tiny) c = tiny;
        d = 1 / d;
        const double step = d * c;
        h *= step;
        if (std::abs(step - 1) < eps) break;
    }
    return h;
}

} // namespace

double incomplete_beta(double x, double a, double b) {
    BASIN_CHECK(a > 0 && b > 0, "incomplete beta: a and b must be positive");
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double log_front =
        std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
    // the fraction converges fast for x < (a + 1) / (a + b + 2); otherwise use the symmetry
    if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_fraction(x, a, b) / a;
    return 1 - std::exp(log_front) * beta_fraction(1 - x, b, a) / b;
}

double student_t_two_sided_p(double t, double df) {
    if (std::isinf(t)) return 0;
    return incomplete_beta(df / (df + t * t), df / 2, 0.5);
}

PairedTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
    BASIN_CHECK(a.size() == b.size(), "paired t-test: ", a.size(), " and ", b.size(), " values");
    PairedTest r;
    std::vector<double> d;
    for (std::size_t i = 0; i < a.size(); ++i)
        d.push_back(b[i] - a[i]);
    r.mean_difference = mean(d);
    r.degrees_of_freedom = int(d.size()) - 1;
    if (d.size() < 2) return r;
    const double sd = sample_std(d);
    if (sd == 0) {
        if (r.mean_difference == 0) return r;
        r.t =
            r.mean_difference > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
        r.p_value = 0;
        return r;
    }
    r.t = r.mean_difference / (sd / std::sqrt(double(d.size())));
    r.p_value = student_t_two_sided_p(r.t, r.degrees_of_freedom);
    return r;
}

Interval bootstrap_mean_interval(const std::vector<double>& values, std::size_t resamples, std::uint64_t seed) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (values.size() < 3 || resamples == 0) return {mean(values), nan, nan};
    std::mt19937_64 rng(seed);
    std::vector<double> means(resamples);
    for (auto& m : means) {
        double sum = 0;
        for (std::size_t i = 0; i < values.size(); ++i)
            sum += values[uniform_index(rng, values.size())];
        m = sum / double(values.size());
    }
    return {mean(values), quantile(means, 0.025), quantile(means, 0.975)};
}

Interval wilson_interval(std::size_t successes, std::size_t n) {
    if (n == 0) return {};
    const double z = 1.959963984540054, p = double(successes) / double(n), z2n = z * z / double(n);
    const double centre = (p + z2n / 2) / (1 + z2n);
    const double half = z * std::sqrt(p * (1 - p) / double(n) + z2n / (4 * double(n))) / (1 + z2n);
    return {p, std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

} // namespace basin
