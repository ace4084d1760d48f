// The simplex search on planted problems whose optimum is known: a mixture inside the simplex,
// a corner (one member alone), a face; the stick-breaking map and its inverse; errors carried
// out of the optimiser.
#include "basin/core/error.h"
#include "basin/region/simplex_search.h"

#include <cmath>
#include <gtest/gtest.h>
#include <numeric>

namespace basin {
namespace {

double squared_distance(const std::vector<double>& a, const std::vector<double>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        d += (a[i] - b[i]) * (a[i] - b[i]);
    return d;
}

TEST(SimplexSearch, StickBreakingMapsTheBoxOntoTheSimplexAndBack) {
    for (const std::vector<double>& w :
         {std::vector<double>{0.2, 0.3, 0.5}, {1, 0, 0}, {0, 0, 1}, {0, 0.5, 0.5}, {0.25, 0.25, 0.25, 0.25}}) {
        const auto s = stick_coordinates(w);
        ASSERT_EQ(s.size(), w.size() - 1);
        for (double v : s) {
            EXPECT_GE(v, 0);
            EXPECT_LE(v, 1);
        }
        const auto back = stick_breaking(s);
        EXPECT_NEAR(std::accumulate(back.begin(), back.end(), 0.0), 1.0, 1e-12);
        EXPECT_LT(squared_distance(back, w), 1e-24);
    }
}

TEST(SimplexSearch, FindsAPlantedMixture) {
    const std::vector<double> optimum = {0.1, 0.6, 0.3, 0.0};
    std::size_t calls = 0;
    const auto r = search_simplex(4,
                                  [&](const std::vector<double>& w) {
                                      ++calls;
                                      EXPECT_NEAR(std::accumulate(w.begin(), w.end(), 0.0), 1.0, 1e-12);
                                      for (double v : w)
                                          EXPECT_GE(v, -1e-15);
                                      return squared_distance(w, optimum);
                                  },
                                  {200});
    EXPECT_LE(calls, 200u);
    EXPECT_EQ(r.trials.size(), calls);
    EXPECT_LT(squared_distance(r.best, optimum), 1e-5) << r.stopped;
    EXPECT_NEAR(r.best_value, squared_distance(r.best, optimum), 0);
}

TEST(SimplexSearch, FindsACornerAndAFaceFromTheCentroid) {
    // a linear objective's minimum is a corner: member 2 alone
    const auto corner =
        search_simplex(3, [](const std::vector<double>& w) { return 1.0 * w[0] + 0.5 * w[1] + 0.0 * w[2]; }, {100});
    EXPECT_GT(corner.best[2], 0.999) << corner.stopped;
    // the best mixture of members 0 and 1 only (member 2 is bad): on the face w_2 = 0
    const std::vector<double> face = {0.4, 0.6, 0.0};
    const auto r =
        search_simplex(3, [&](const std::vector<double>& w) { return squared_distance(w, face) + w[2]; }, {150});
    EXPECT_LT(squared_distance(r.best, face), 1e-4) << r.stopped;
}

TEST(SimplexSearch, RespectsTheBudgetAndTheStart) {
    SimplexSearchOptions o;
    o.evaluations = 5;
    o.start = {0, 0, 1};
    std::vector<std::vector<double>> seen;
    const auto r = search_simplex(
        3,
        [&](const std::vector<double>& w) {
            seen.push_back(w);
            return w[0];
        },
        o);
    ASSERT_EQ(seen.size(), 5u);
    EXPECT_LT(squared_distance(seen[0], o.start), 1e-24); // the first evaluation is the start
    EXPECT_EQ(r.stopped, "budget spent");
    // one checkpoint: one point
    const auto one = search_simplex(1, [](const std::vector<double>&) { return 3.0; });
    EXPECT_EQ(one.trials.size(), 1u);
    EXPECT_EQ(one.best, std::vector<double>{1.0});
}

TEST(SimplexSearch, CarriesTheObjectivesErrorOut) {
    EXPECT_THROW(search_simplex(3, [](const std::vector<double>&) -> double { fail("objective broke"); }),
                 basin::Error);
    try {
        search_simplex(3, [](const std::vector<double>&) -> double { fail("objective broke"); });
    } catch (const basin::Error& e) {
        EXPECT_STREQ(e.what(), "objective broke");
    }
    EXPECT_THROW(search_simplex(2, [](const std::vector<double>&) { return std::nan(""); }), basin::Error);
    EXPECT_THROW(search_simplex(2, [](const std::vector<double>&) { return 0.0; }, {0}), basin::Error);
}

} // namespace
} // namespace basin
