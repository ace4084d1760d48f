// Small statistics for result tables: mean, sample standard deviation, and the paired t-test
// over seeds (two-sided p-value from Student's t distribution).
#pragma once

#include <cstddef>
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
