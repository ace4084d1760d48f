#include "basin/region/simplex_search.h"

#include "basin/core/error.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <nlopt.hpp>

namespace basin {

std::vector<double> stick_breaking(const std::vector<double>& s) {
    std::vector<double> w(s.size() + 1);
    double remaining = 1;
    for (std::size_t k = 0; k < s.size(); ++k) {
        const double share = std::clamp(s[k], 0.0, 1.0);
        w[k] = remaining * share;
        remaining *= 1 - share;
    }
    w.back() = remaining;
    return w;
}

std::vector<double> stick_coordinates(const std::vector<double>& w) {
    BASIN_CHECK(!w.empty(), "simplex search: no weights");
    std::vector<double> s(w.size() - 1);
    double remaining = 1;
    for (std::size_t k = 0; k + 1 < w.size(); ++k) {
        s[k] = remaining > 1e-15 ? std::clamp(w[k] / remaining, 0.0, 1.0) : 0.0;
        remaining -= w[k];
    }
    return s;
}

SimplexSearchResult search_simplex(std::size_t m, const SimplexObjective& objective,
                                   const SimplexSearchOptions& options) {
    BASIN_CHECK(m >= 1, "simplex search: no checkpoints to weigh");
    BASIN_CHECK(options.evaluations >= 1, "simplex search: the budget must allow at least one evaluation");
    std::vector<double> start = options.start.empty() ? std::vector<double>(m, 1.0 / double(m)) : options.start;
    BASIN_CHECK(start.size() == m, "simplex search: the start has ", start.size(), " weights for ", m, " checkpoints");
    double sum = 0;
    for (double w : start) {
        BASIN_CHECK(std::isfinite(w) && w >= 0, "simplex search: a start weight is ", w, ", expected >= 0");
        sum += w;
    }
    BASIN_CHECK(sum > 0, "simplex search: the start weights sum to 0");
    for (auto& w : start)
        w /= sum;

    SimplexSearchResult result;
    auto evaluate = [&](const std::vector<double>& weights) {
        const double value = objective(weights);
        BASIN_CHECK(std::isfinite(value), "simplex search: the objective is ", value, " at weights ", weights.size(),
                    " (expected a finite number)");
        result.trials.push_back({weights, value});
        if (result.trials.size() == 1 || value < result.best_value) result.best = weights, result.best_value = value;
        return value;
    };
    if (m == 1) {
        evaluate({1.0});
        result.stopped = "one checkpoint: one point";
        return result;
    }

    // COBYLA on the stick coordinates; the objective's own errors are carried out of NLopt's
    // callback and rethrown here, after the optimiser has stopped
    nlopt::opt opt(nlopt::LN_COBYLA, unsigned(m - 1));
    opt.set_lower_bounds(std::vector<double>(m - 1, 0.0));
    opt.set_upper_bounds(std::vector<double>(m - 1, 1.0));
    opt.set_maxeval(int(options.evaluations));
    opt.set_xtol_abs(options.tolerance);
    opt.set_initial_step(options.initial_step);
    struct Context {
        std::function<double(const std::vector<double>&)> evaluate;
        nlopt::opt* opt;
        std::exception_ptr failure;
    } context{[&](const std::vector<double>& sticks) { return evaluate(stick_breaking(sticks)); }, &opt, nullptr};
    opt.set_min_objective(
        [](const std::vector<double>& x, std::vector<double>&, void* data) {
            auto* c = static_cast<Context*>(data);
            try {
                return c->evaluate(x);
            } catch (...) {
                c->failure = std::current_exception();
                c->opt->force_stop();
                return HUGE_VAL;
            }
        },
        &context);
    std::vector<double> x = stick_coordinates(start);
    double value = 0;
    nlopt::result status = nlopt::FAILURE;
    try {
        status = opt.optimize(x, value);
    } catch (const std::exception&) {
        if (!context.failure) throw;
    }
    if (context.failure) std::rethrow_exception(context.failure);
    result.stopped = status == nlopt::MAXEVAL_REACHED ? "budget spent" : "converged (step below the tolerance)";
    if (status == nlopt::ROUNDOFF_LIMITED) result.stopped = "converged (roundoff)";
    return result;
}

} // namespace basin
