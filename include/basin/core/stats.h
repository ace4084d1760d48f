// Small statistics for result tables: mean, sample standard deviation, and the paired t-test
// over seeds (two-sided p-value from Student's t distribution).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace basin {

double mean(const std::vector<double>& x);
// Sample standard deviation (n - 1 in the denominator); 0 for fewer than two values.
double sample_std(const std::vector<double>& x);

// The q-quantile (0 <= q <= 1) of values, interpolated linearly between order statistics (numpy's
// default, "linear"); NaN for no values.
double quantile(std::vector<double> values, double q);

// n, mean, median and the 5% and 95% quantiles of some values (NaN but n = 0 when there are none).
struct Summary {
    std::size_t n = 0;
    double mean, median, q05, q95;
};
Summary summarize(const std::vector<double>& values);

// An estimate with its 95% interval (low, high: for the bootstraps, the 2.5% and 97.5% quantiles of
// the resampled values); NaN when it cannot be formed.
struct Interval {
    double estimate = NAN, low = NAN, high = NAN;
};

// The percentile bootstrap interval of the mean: `resamples` means of n values drawn with
// replacement (core/random.h draws, seeded), their 2.5% and 97.5% quantiles. NaN for fewer than 3
// values, where resampling says nothing.
Interval bootstrap_mean_interval(const std::vector<double>& values, std::size_t resamples, std::uint64_t seed);

// Wilson's score interval for a proportion of successes in n trials (95%); NaN for n = 0.
Interval wilson_interval(std::size_t successes, std::size_t n);

struct PairedTest {
    double mean_difference = 0; // mean of b - a
    double t = 0;               // mean difference / (sd / sqrt(n)); +-inf when every difference is equal and non-zero
    int degrees_of_freedom = 0; // n - 1
    double p_value = 1;         // two-sided; 1 when n < 2 or every difference is 0
};
// Paired t-test of b against a (the same seeds in the same order).
PairedTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b);

// P(|T| >= |t|) for Student's t with df degrees of freedom.
double student_t_two_sided_p(double t, double df);
// The regularized incomplete beta function I_x(a, b).
double incomplete_beta(double x, double a, double b);

} // namespace basin
