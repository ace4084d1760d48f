// The weight-space map's block kernel: the AVX-512 tiles and their AVX2 twin against OpenBLAS's
// ssyrk, a double precision sum and a scalar sum in the kernels' own order, for every edge case of
// the 4 x 4 and 2 x 2 tilings and of the 16-wide vectors.
#include "basin/core/cpu.h"
#include "basin/core/error.h"
#include "basin/io/safetensors.h"
#include "basin/merge/methods.h"
#include "basin/space/adapter_gram.h"
#include "basin/space/analysis.h"
#include "basin/space/block_gram.h"
#include "basin/space/given_matrix.h"
#include "basin/space/gram.h"
#include "basin/space/gram_plan.h"
#include "basin/space/locate.h"
#include "test_util.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <vector>

using namespace basin;

namespace {

constexpr float kSentinel = -12345.0f; // where the kernels must not write

// Each kernel's output (n x n, upper triangle) against the double sums of the rows' products
// (rows: n x columns of `values` at `stride`), to float32 summation error; the lower triangle must
// be untouched.
void expect_upper_gram(const std::vector<std::vector<float>>& outputs, const std::vector<float>& values, std::size_t n,
                       std::size_t columns, std::size_t stride) {
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double exact = 0, scale = 0;
            for (std::size_t c = 0; c < columns && j >= i; ++c) {
                const double product = double(values[i * stride + c]) * double(values[j * stride + c]);
                exact += product, scale += std::abs(product);
            }
            for (std::size_t k = 0; k < outputs.size(); ++k) {
                if (j < i)
                    EXPECT_EQ(outputs[k][i * n + j], kSentinel) << "kernel " << k;
                else
                    EXPECT_NEAR(outputs[k][i * n + j], exact, 1e-6 * scale + 1e-6)
                        << "kernel " << k << ", n " << n << " columns " << columns << " (" << i << "," << j << ")";
            }
        }
}

// The sum the AVX-512 and AVX2 kernels form for one entry, in scalar code: lane l of 16 adds the
// products of columns l, l + 16, l + 32, ... in that order, each with one rounding (std::fma), and
// the lanes are folded as (per quarter q: (l0 + l2) + (l1 + l3)), then (q0 + q1) + (q2 + q3).
float sixteen_lane_sum(const float* a, const float* b, std::size_t columns) {
    float lane[16] = {};
    for (std::size_t c = 0; c < columns; ++c)
        lane[c % 16] = std::fma(a[c], b[c], lane[c % 16]);
    float q[4];
    for (int i = 0; i < 4; ++i)
        q[i] = (lane[4 * i] + lane[4 * i + 2]) + (lane[4 * i + 1] + lane[4 * i + 3]);
    return (q[0] + q[1]) + (q[2] + q[3]);
}

} // namespace

TEST(Space, BlockGramMatchesBlasAndDoubleSums) {
    const bool avx2 = cpu_has_avx2_fma();
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64}) {
        for (std::size_t columns : {1, 15, 16, 17, 33, 4095, 4096}) {
            const std::size_t stride = 4096;
            std::vector<float> x(n * stride, 0.0f);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t c = 0; c < columns; ++c)
                    x[i * stride + c] = normal(rng);
            std::vector<std::vector<float>> out(avx2 ? 3 : 2, std::vector<float>(n * n, kSentinel));
            block_gram_upper(n, columns, x.data(), stride, out[0].data());
            block_gram_upper_blas(n, columns, x.data(), stride, out[1].data());
            if (avx2) block_gram_upper_avx2(n, columns, x.data(), stride, out[2].data());
            expect_upper_gram(out, x, n, columns, stride);
        }
    }
    if (!cpu_has_avx512bw() && !avx2)
        GTEST_SKIP() << "neither AVX-512 nor AVX2 here: block_gram_upper used OpenBLAS, compared with itself";
}

// Both vector kernels form, for every entry, exactly the scalar sum of their lane order: so a map
// is the same number on CPUs with AVX-512 and on CPUs with AVX2 only, whichever tile formed it.
TEST(Space, BlockGramKernelsAreTheSixteenLaneSumBitForBit) {
    const bool avx512 = cpu_has_avx512bw(), avx2 = cpu_has_avx2_fma();
    if (!avx512 && !avx2) GTEST_SKIP() << "neither AVX-512 nor AVX2 here: no lane-ordered kernel to check";
    std::mt19937 rng(10);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 9, 17}) {
        for (std::size_t first : {0, 1, 2, 3, 5}) {
            if (first >= n && first > 0) continue;
            for (std::size_t columns : {1, 7, 8, 9, 15, 16, 17, 31, 33, 1000}) {
                const std::size_t stride = 1024;
                std::vector<float> x(n * stride);
                for (auto& v : x)
                    v = normal(rng);
                std::vector<float> dispatched(n * n, kSentinel), twin(n * n, kSentinel);
                block_gram_upper(n, columns, x.data(), stride, dispatched.data(), first);
                if (avx2) block_gram_upper_avx2(n, columns, x.data(), stride, twin.data(), first);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = std::max(i, first); j < n; ++j) {
                        const float want = sixteen_lane_sum(&x[i * stride], &x[j * stride], columns);
                        const std::string at =
                            str("n ", n, " first ", first, " columns ", columns, " (", i, ",", j, ")");
                        EXPECT_EQ(dispatched[i * n + j], want) << at;
                        if (avx2) EXPECT_EQ(twin[i * n + j], want) << "AVX2, " << at;
                    }
                for (std::size_t i = 0; i < n; ++i) // nothing written below the diagonal or among the old rows
                    for (std::size_t j = 0; j < n; ++j)
                        if (j < i || j < first) {
                            EXPECT_EQ(dispatched[i * n + j], kSentinel);
                            if (avx2) EXPECT_EQ(twin[i * n + j], kSentinel);
                        }
            }
        }
    }
}

// bfloat16 rows: products of the bfloat16 values are exact, so both paths must equal the double
// sums of those products to float32 summation error.
TEST(Space, BlockGramBf16MatchesDoubleSumsOfTheRoundedValues) {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t n : {1, 2, 3, 4, 5, 9, 16, 17, 64}) {
        for (std::size_t columns : {1, 31, 32, 33, 63, 4095, 4096}) {
            const std::size_t stride = 4096;
            std::vector<float> values(n * stride, 0.0f);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t c = 0; c < columns; ++c)
                    values[i * stride + c] = normal(rng) + (i % 3 == 0 ? 2.0f : 0.0f);
            std::vector<std::uint16_t> x(values.size());
            convert_from_f32(Dtype::BF16, values.data(), x.data(), x.size());
            std::vector<float> wide(values.size());
            convert_to_f32(Dtype::BF16, x.data(), wide.data(), x.size());
            std::vector<std::vector<float>> out(2, std::vector<float>(n * n, kSentinel));
            block_gram_upper_bf16(n, columns, x.data(), stride, out[0].data());
            block_gram_upper_bf16_portable(n, columns, x.data(), stride, out[1].data());
            expect_upper_gram(out, wide, n, columns, stride);
        }
    }
    if (!cpu_has_avx512bf16()) GTEST_SKIP() << "no AVX-512 BF16 here: both paths widened to float32";
}

// An update's products (rows from `first` on against all): the entries of the full square, bit for
// bit on the AVX-512 and AVX2 paths (the same sums in the same order whichever tile forms them), to
// float32 rounding on OpenBLAS's; the entries among the rows before `first` are not written.
TEST(Space, BlockGramFromAFirstRowEqualsTheSquare) {
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    // bfloat16 rows are widened and summed by block_gram_upper where AVX-512 BF16 is missing
    const bool lanes = cpu_has_avx512bw() || cpu_has_avx2_fma(), lanes_bf16 = cpu_has_avx512bf16() || lanes;
    for (std::size_t n : {2, 3, 5, 8, 9, 13, 17}) {
        for (std::size_t first : {1, 2, 3, 4, 5, 7, 8, 12, 16}) {
            if (first >= n) continue;
            for (std::size_t columns : {1, 17, 100, 4096}) {
                const std::size_t stride = 4096;
                std::vector<float> x(n * stride, 0.0f);
                for (auto& v : x)
                    v = normal(rng);
                std::vector<std::uint16_t> h(x.size());
                convert_from_f32(Dtype::BF16, x.data(), h.data(), h.size());
                std::vector<float> square(n * n, kSentinel), part(n * n, kSentinel);
                std::vector<float> square_blas(n * n, kSentinel), part_blas(n * n, kSentinel);
                std::vector<float> square_h(n * n, kSentinel), part_h(n * n, kSentinel);
                block_gram_upper(n, columns, x.data(), stride, square.data());
                block_gram_upper(n, columns, x.data(), stride, part.data(), first);
                block_gram_upper_blas(n, columns, x.data(), stride, square_blas.data());
                block_gram_upper_blas(n, columns, x.data(), stride, part_blas.data(), first);
                block_gram_upper_bf16(n, columns, h.data(), stride, square_h.data());
                block_gram_upper_bf16(n, columns, h.data(), stride, part_h.data(), first);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < n; ++j) {
                        const std::size_t k = i * n + j;
                        const std::string at =
                            str("n ", n, " first ", first, " columns ", columns, " (", i, ",", j, ")");
                        if (j < i || j < first) {
                            EXPECT_EQ(part[k], kSentinel) << at;
                            EXPECT_EQ(part_blas[k], kSentinel) << at;
                            EXPECT_EQ(part_h[k], kSentinel) << at;
                            continue;
                        }
                        if (lanes)
                            EXPECT_EQ(part[k], square[k]) << at;
                        else
                            EXPECT_NEAR(part[k], square[k], 1e-5 * (std::abs(square[k]) + columns)) << at;
                        if (lanes_bf16)
                            EXPECT_EQ(part_h[k], square_h[k]) << at;
                        else
                            EXPECT_NEAR(part_h[k], square_h[k], 1e-5 * (std::abs(square_h[k]) + columns)) << at;
                        EXPECT_NEAR(part_blas[k], square_blas[k], 1e-5 * (std::abs(square_blas[k]) + columns)) << at;
                    }
            }
        }
    }
    if (!lanes) GTEST_SKIP() << "neither AVX-512 nor AVX2 here: only the agreement to float32 rounding was checked";
}

// ---- the merge method table (merge/methods.h)

namespace {

using namespace basin;

TensorPlan plan_of(MergeMethod method, const MergeOptions& o, std::size_t n, const TensorStatistics& s = {}) {
    TensorPlan p;
    merge_method_entry(method).plan(o, n, s, p);
    return p;
}

} // namespace

// 150 adapters of ranks 1-3 on one 12 x 9 weight (three tiles): every entry equals the
// materialised task vectors' inner product, and with known = 100 the known pairs are not formed
// while every new one is, equal to the full matrix's (an update adds k products per new adapter).
TEST(LoraBlockGram, EqualsMaterialisedProductsAndKnownPairsAreLeftOut) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal;
    const std::int64_t out = 12, in = 9;
    const std::size_t k = 150, known = 100;
    std::vector<std::vector<float>> a(k), b(k);
    std::vector<LoraFactors> factors;
    for (std::size_t i = 0; i < k; ++i) {
        const std::int64_t r = 1 + std::int64_t(i % 3);
        a[i].resize(std::size_t(r * in));
        b[i].resize(std::size_t(out * r));
        for (auto& v : a[i])
            v = normal(rng);
        for (auto& v : b[i])
            v = normal(rng);
        factors.push_back({a[i].data(), b[i].data(), r, out, in, 0.5 + double(i % 4)});
    }
    auto delta = [&](std::size_t i) { // s B A, in double
        std::vector<double> d(std::size_t(out * in), 0.0);
        const auto& f = factors[i];
        for (std::int64_t o = 0; o < out; ++o)
            for (std::int64_t c = 0; c < in; ++c)
                for (std::int64_t r = 0; r < f.rank; ++r)
                    d[std::size_t(o * in + c)] += f.scale * double(f.b[o * f.rank + r]) * double(f.a[r * in + c]);
        return d;
    };
    std::vector<std::vector<double>> deltas;
    for (std::size_t i = 0; i < k; ++i)
        deltas.push_back(delta(i));
    const SquareMatrix all = lora_block_gram(factors, 2), update = lora_block_gram(factors, 2, known);
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) {
            double want = 0;
            for (std::size_t e = 0; e < deltas[i].size(); ++e)
                want += deltas[i][e] * deltas[j][e];
            ASSERT_NEAR(all(i, j), want, 1e-10 * std::max(1.0, std::abs(want))) << i << ", " << j;
            if (i < known && j < known)
                ASSERT_EQ(update(i, j), 0.0) << i << ", " << j;
            else
                ASSERT_NEAR(update(i, j), all(i, j), 1e-12 * std::max(1.0, std::abs(want))) << i << ", " << j;
        }
}

TEST(MergeMethods, EveryMethodHasOneEntryAndParsesByName) {
    std::set<std::string> names;
    std::set<int> methods;
    for (const auto& e : merge_method_table()) {
        EXPECT_TRUE(names.insert(e.name).second) << e.name;
        EXPECT_TRUE(methods.insert(int(e.method)).second) << e.name;
        EXPECT_EQ(parse_merge_method(e.name), e.method);
        EXPECT_STREQ(merge_method_name(e.method), e.name);
        EXPECT_TRUE(e.check && e.parameters && e.plan) << e.name;
        EXPECT_GE(e.min_models, 1u);
        EXPECT_TRUE(e.max_models == 0 || e.max_models >= e.min_models);
        // a method with a combine step reads the base, where it has one, as source n (nuslerp's is optional)
        if (e.combine && e.method != MergeMethod::Nuslerp) EXPECT_TRUE(e.needs_base) << e.name;
    }
    EXPECT_EQ(names.size(), 12u);
    const std::string e = basin::testing::error_of([] { parse_merge_method("average"); });
    for (const auto& name : names)
        EXPECT_NE(e.find(name), std::string::npos) << e;
}

TEST(MergeMethods, LinearPlansAreTheStatedCoefficients) {
    MergeOptions o;
    const auto mean = plan_of(MergeMethod::Mean, o, 4);
    EXPECT_EQ(mean.coefficients, std::vector<double>(4, 0.25));
    o.weights = {1, 3};
    EXPECT_EQ(plan_of(MergeMethod::Weighted, o, 2).coefficients, (std::vector<double>{0.25, 0.75}));
    o.lambda = 0; // the base bit for bit
    EXPECT_EQ(plan_of(MergeMethod::TaskArithmetic, o, 3).coefficients, (std::vector<double>{0, 0, 0, 1}));
    o.lambda = 0.5;
    EXPECT_EQ(plan_of(MergeMethod::TaskArithmetic, o, 2).coefficients, (std::vector<double>{0.5, 0.5, 0}));
    // model stock: identical task vectors (cos 1) give t = 1, the mean; orthogonal ones (cos 0) the base
    TensorStatistics same{3, std::vector<double>(9, 2.0), {}};
    auto stock = plan_of(MergeMethod::ModelStock, o, 3, same).coefficients;
    ASSERT_EQ(stock.size(), 4u);
    EXPECT_NEAR(stock[0], 1.0 / 3, 1e-15);
    EXPECT_NEAR(stock[3], 0.0, 1e-15);
    TensorStatistics orthogonal{2, {1, 0, 0, 1}, {}};
    EXPECT_EQ(plan_of(MergeMethod::ModelStock, o, 2, orthogonal).coefficients, (std::vector<double>{0, 0, 1}));
    // slerp: parallel weights follow the line; orthogonal unit weights the arc (t = 0.5: both sin(pi/4)/1)
    o.t = 0.25;
    TensorStatistics parallel{2, {1, 2, 2, 4}, {}};
    EXPECT_EQ(plan_of(MergeMethod::Slerp, o, 2, parallel).coefficients, (std::vector<double>{0.75, 0.25}));
    o.t = 0.5;
    const auto arc = plan_of(MergeMethod::Slerp, o, 2, orthogonal).coefficients;
    EXPECT_NEAR(arc[0], std::sqrt(0.5), 1e-15);
    EXPECT_NEAR(arc[1], std::sqrt(0.5), 1e-15);
}

// The spherical methods from their Gram matrices, by hand: two orthogonal unit vectors.
TEST(MergeMethods, SphericalPlansByHand) {
    MergeOptions o;
    o.models = {"a", "b"};
    TensorStatistics orthogonal{2, {1, 0, 0, 1}, {}};
    // nuslerp at t = 1/3 along the quarter circle: sin(pi/3), sin(pi/6)
    o.t = 1.0 / 3;
    const auto nu = plan_of(MergeMethod::Nuslerp, o, 2, orthogonal).coefficients;
    ASSERT_EQ(nu.size(), 2u);
    EXPECT_NEAR(nu[0], std::sin(M_PI / 3), 1e-12);
    EXPECT_NEAR(nu[1], std::sin(M_PI / 6), 1e-12);
    o.weights = {1, 3}; // weights: t = 3 / 4
    const auto weighted = plan_of(MergeMethod::Nuslerp, o, 2, orthogonal).coefficients;
    EXPECT_NEAR(weighted[1], std::sin(0.75 * M_PI / 2), 1e-12);
    // karcher of two orthogonal unit vectors: the arc's midpoint, norm 1
    const auto k = plan_of(MergeMethod::Karcher, o, 2, orthogonal).coefficients;
    EXPECT_NEAR(k[0], std::sqrt(0.5), 1e-9);
    EXPECT_NEAR(k[1], std::sqrt(0.5), 1e-9);
    // multislerp with equal weights: the tangents cancel, the normalised mean scaled to norm 1
    o.weights = {1, 1};
    const auto ms = plan_of(MergeMethod::Multislerp, o, 2, orthogonal).coefficients;
    EXPECT_NEAR(ms[0], std::sqrt(0.5) / (1 + 1e-8), 1e-7);
    EXPECT_NEAR(ms[1], ms[0], 1e-15);
    // with a base: coefficients over the task vectors, the base's the rest
    o.base = "base";
    const auto based = plan_of(MergeMethod::Nuslerp, o, 2, orthogonal).coefficients;
    ASSERT_EQ(based.size(), 3u);
    EXPECT_NEAR(based[2], 1 - based[0] - based[1], 1e-15);
}

// gta (mergekit's generalized task arithmetic) by hand: the elected sign keeps the agreeing
// weighted deltas, divided by their weights; without mask or election, linear coefficients.
TEST(MergeMethods, GtaCombinesAndPlansByHand) {
    MergeOptions o;
    o.method = MergeMethod::Gta;
    o.models = {"a", "b"};
    o.consensus = "sum", o.normalize = true;
    // sources: m0, m1, then the base (zeros); three elements
    const std::vector<float> values = {1, -2, 0.5f, -3, 1, 0.5f, 0, 0, 0};
    TensorPlan plan;
    TensorStatistics stats;
    stats.threshold.assign(2, 0.0f), stats.scale.assign(2, 1.0);
    merge_method_entry(MergeMethod::Gta).plan(o, 2, stats, plan);
    ASSERT_TRUE(plan.coefficients.empty());
    float y[3];
    merge_method_entry(MergeMethod::Gta).combine(o, 2, plan, {values.data(), 3, 3, 0}, y);
    EXPECT_FLOAT_EQ(y[0], -3.0f); // sum -2 elects -: only -3, over weight 1
    EXPECT_FLOAT_EQ(y[1], -2.0f);
    EXPECT_FLOAT_EQ(y[2], 0.5f); // both agree: 1 over weight 2
    o.consensus = "count";       // signs + and - tie: + is elected
    merge_method_entry(MergeMethod::Gta).combine(o, 2, plan, {values.data(), 3, 3, 0}, y);
    EXPECT_FLOAT_EQ(y[0], 1.0f);
    o.consensus = "none", o.weights = {2, 1}, o.lambda = 0.5;
    TensorPlan linear;
    merge_method_entry(MergeMethod::Gta).plan(o, 2, stats, linear);
    ASSERT_EQ(linear.coefficients.size(), 3u);
    EXPECT_DOUBLE_EQ(linear.coefficients[0], 0.5 * 2 / 3);
    EXPECT_DOUBLE_EQ(linear.coefficients[1], 0.5 * 1 / 3);
    EXPECT_DOUBLE_EQ(linear.coefficients[2], 0.5);
}

TEST(MergeMethods, TiesAndDareCombineByHand) {
    // two models and a base, three elements: tau_1 = (1, -2, 0.5), tau_2 = (3, 1, -0.25)
    const std::vector<float> values = {1, -2, 0.5f, /**/ 3, 1, -0.25f, /**/ 0, 0, 0};
    MergeChunk chunk{values.data(), 3, 3, 0};
    MergeOptions o;
    o.lambda = 1;
    TensorPlan plan;
    plan.thresholds = {0.5f, 1.0f}; // model 2's -0.25 is trimmed
    float y[3];
    merge_method_entry(MergeMethod::Ties).combine(o, 2, plan, chunk, y);
    EXPECT_FLOAT_EQ(y[0], 2.0f);  // both positive: their mean
    EXPECT_FLOAT_EQ(y[1], -2.0f); // sum -1 elects minus: only model 1 agrees
    EXPECT_FLOAT_EQ(y[2], 0.5f);  // model 2 trimmed: model 1 alone
    o.drop = 0;                   // nothing dropped: DARE is task arithmetic
    merge_method_entry(MergeMethod::Dare).combine(o, 2, plan, chunk, y);
    EXPECT_FLOAT_EQ(y[0], 4.0f);
    EXPECT_FLOAT_EQ(y[1], -1.0f);
    EXPECT_FLOAT_EQ(y[2], 0.25f);
}

TEST(MergeMethods, ParameterChecksAndProvenance) {
    MergeOptions o;
    o.models = {"a", "b", "c"};
    o.weights = {1, 2};
    EXPECT_NE(basin::testing::error_of([&] {
                  merge_method_entry(MergeMethod::Weighted).check(o);
              }).find("2 weights for 3 models"),
              std::string::npos);
    o.density = 1.5;
    EXPECT_NE(basin::testing::error_of([&] {
                  merge_method_entry(MergeMethod::Ties).check(o);
              }).find("--density must be in [0, 1]"),
              std::string::npos);
    o.drop = 1;
    EXPECT_NE(basin::testing::error_of([&] {
                  merge_method_entry(MergeMethod::Dare).check(o);
              }).find("--drop must be in [0, 1)"),
              std::string::npos);
    o.lambda = 0.3, o.drop = 0.5, o.seed = 9;
    const auto p = merge_method_entry(MergeMethod::Dare).parameters(o);
    EXPECT_EQ(p.at("lambda"), 0.3);
    EXPECT_EQ(p.at("drop"), 0.5);
    EXPECT_EQ(p.at("seed"), 9);
    EXPECT_TRUE(merge_method_entry(MergeMethod::Mean).parameters(o).empty());
}

// ---- the map's memory sizing (space/gram.h), reached directly

TEST(GramMemory, ChunksFollowTheLimitAndTooLittleIsRefused) {
    using basin::GramMemoryPlan;
    basin::GramStreamShape shape;
    shape.models = 10, shape.groups = 1, shape.blocks = 1000, shape.spans = 125;
    shape.span_columns = 8 * 4096, shape.raw_column_bytes = 11 * 4, shape.bytes_per_column = 11 * 4;
    const std::uint64_t rss = 100ull << 20;
    const GramMemoryPlan two = basin::plan_gram_memory(shape, 2, 2ull << 30, rss);
    ASSERT_TRUE(two.enough);
    EXPECT_EQ(two.needed, rss + two.fixed + 2 * shape.bytes_per_column * shape.span_columns);
    EXPECT_EQ(two.chunk_columns, std::int64_t(((2ull << 30) - rss - two.fixed) / (2 * shape.bytes_per_column)));
    // more threads: more buffers, smaller chunks; a larger limit: larger chunks
    const GramMemoryPlan eight = basin::plan_gram_memory(shape, 8, 2ull << 30, rss);
    EXPECT_GT(eight.fixed, two.fixed);
    EXPECT_LT(eight.chunk_columns, two.chunk_columns);
    EXPECT_GT(basin::plan_gram_memory(shape, 2, 4ull << 30, rss).chunk_columns, two.chunk_columns);
    // bfloat16 rows take half the row buffer
    shape.bf16 = true;
    EXPECT_LT(basin::plan_gram_memory(shape, 2, 2ull << 30, rss).fixed, two.fixed);
    shape.bf16 = false;
    // just enough: one span per chunk; a byte less: refused
    const GramMemoryPlan exact = basin::plan_gram_memory(shape, 2, two.needed, rss);
    EXPECT_TRUE(exact.enough);
    EXPECT_EQ(exact.chunk_columns, std::int64_t(shape.span_columns));
    const GramMemoryPlan short_by_one = basin::plan_gram_memory(shape, 2, two.needed - 1, rss);
    EXPECT_FALSE(short_by_one.enough);
    EXPECT_EQ(short_by_one.chunk_columns, 0);
}

// ---- the map's stream plan (space/gram_plan.h), reached directly

namespace {

std::vector<basin::GramTensorLayout> layouts(const std::vector<std::pair<std::int64_t, std::size_t>>& sizes,
                                             std::size_t models, std::size_t bytes) {
    std::vector<basin::GramTensorLayout> out;
    for (const auto& [numel, group] : sizes)
        out.push_back({numel, group, std::vector<std::size_t>(models + 1, bytes)});
    return out;
}

} // namespace

TEST(GramPlan, BlocksSpansAndChunksCoverTheStreamWithinTheirBounds) {
    // three groups, tensors that straddle block ends; float32 base and models, F16 for model 1
    auto tensors = layouts({{5000, 0}, {3000, 0}, {100, 1}, {9000, 1}, {4096, 2}, {1, 2}}, 3, 4);
    tensors[3].value_bytes[1] = 2;
    const basin::GramStreamPlan plan = basin::plan_gram_stream(tensors, 3);
    // blocks: at most 4096 columns, one group each, covering each tensor exactly once in order
    std::vector<std::int64_t> covered(tensors.size(), 0);
    for (const auto& b : plan.blocks) {
        EXPECT_LE(b.columns, basin::kGramBlockColumns);
        std::int64_t columns = 0;
        for (const auto& seg : b.segments) {
            EXPECT_EQ(tensors[seg.tensor].group, b.group);
            EXPECT_EQ(seg.offset, covered[seg.tensor]);
            covered[seg.tensor] += seg.count;
            columns += seg.count;
        }
        EXPECT_EQ(columns, b.columns);
    }
    for (std::size_t t = 0; t < tensors.size(); ++t)
        EXPECT_EQ(covered[t], tensors[t].numel);
    EXPECT_EQ(plan.blocks.size(), 2u + 3u + 2u); // 8000 -> 2, 9100 -> 3, 4097 -> 2
    // a small model: one block per span (fewer than 64 x 8 blocks)
    EXPECT_EQ(plan.span_blocks, 1u);
    EXPECT_EQ(plan.spans.size(), plan.blocks.size());
    // the span buffer: input after input at each input's widest value
    EXPECT_EQ(plan.value_bytes, (std::vector<std::size_t>{4, 4, 4, 4}));
    EXPECT_EQ(plan.raw_column_bytes, 16u);
    EXPECT_EQ(plan.raw_offset, (std::vector<std::size_t>{0, 4 * 4096, 8 * 4096, 12 * 4096}));
    // chunks: every span once, in order, within the columns unless a span alone is larger
    for (std::int64_t limit : {std::int64_t(1), std::int64_t(4096), std::int64_t(10000), std::int64_t(1) << 40}) {
        const auto chunks = basin::cut_gram_chunks(plan.spans, limit);
        std::size_t next = 0;
        for (const auto& [first, last] : chunks) {
            EXPECT_EQ(first, next);
            ASSERT_GT(last, first);
            std::int64_t columns = 0;
            for (std::size_t s = first; s < last; ++s)
                columns += plan.spans[s].columns;
            if (last - first > 1) EXPECT_LE(columns, limit);
            next = last;
        }
        EXPECT_EQ(next, plan.spans.size());
        if (limit == 1) EXPECT_EQ(chunks.size(), plan.spans.size());
        if (limit == (std::int64_t(1) << 40)) EXPECT_EQ(chunks.size(), 1u);
    }
}

TEST(GramPlan, LargeStreamsReadEightBlocksAtOnceUnderTheSpanBytes) {
    // 2,000 blocks of one group: spans of 8 blocks for 10 float32 models; the raw bytes decide for
    // 200 float64 models (8 MB / (201 x 8 x 4096) = 1)
    const auto ten = basin::plan_gram_stream(layouts({{2000 * 4096, 0}}, 10, 4), 10);
    EXPECT_EQ(ten.span_blocks, basin::kGramMaxSpanBlocks);
    EXPECT_EQ(ten.spans.size(), 250u);
    EXPECT_LE(ten.raw_column_bytes * ten.span_columns, basin::kGramSpanBytes);
    for (const auto& span : ten.spans)
        EXPECT_EQ(span.pieces.size(), 1u); // one tensor: one read per input
    const auto many = basin::plan_gram_stream(layouts({{2000 * 4096, 0}}, 200, 8), 200);
    EXPECT_EQ(many.span_blocks, 1u);
    // spans never cross groups, and do not depend on anything but the tensors and N
    const auto split = basin::plan_gram_stream(layouts({{1000 * 4096 + 7, 0}, {1000 * 4096, 1}}, 10, 4), 10);
    for (const auto& span : split.spans)
        for (std::size_t b = span.first_block; b < span.last_block; ++b)
            EXPECT_EQ(split.blocks[b].group, split.blocks[span.first_block].group);
    const basin::GramStreamShape shape = basin::gram_stream_shape(ten, layouts({{2000 * 4096, 0}}, 10, 4), 1, false);
    EXPECT_EQ(shape.spans, 250u);
    EXPECT_EQ(shape.span_columns, 8u * 4096u);
    EXPECT_EQ(shape.bytes_per_column, 44u);
}

// ---- given similarity matrices (space/given_matrix.h) and the two cluster mappings

TEST(GivenMatrix, PrintedPrecisionDecidesWhatIsSymmetric) {
    basin::testing::TempDir dir;
    // four decimals: 0.5001 against 0.5000 is rounding; 1 printed without a point is exact
    basin::testing::write_bytes(dir / "ok.csv", "\"a\", \"b\", \"c\"\n1, 0.5001, -0.2\n0.5000, 1, 0.3\n-0.2, 0.3, 1\n");
    const auto m = basin::read_similarity_matrix(dir / "ok.csv");
    EXPECT_EQ(m.names, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_DOUBLE_EQ(m.cosine(0, 1), 0.50005);
    EXPECT_DOUBLE_EQ(m.cosine(1, 0), 0.50005);
    EXPECT_DOUBLE_EQ(m.cosine(2, 2), 1.0);
    // one decimal more is not rounding any more
    basin::testing::write_bytes(dir / "asym.csv", "a,b,c\n1,0.50012,-0.2\n0.50000,1,0.3\n-0.2,0.3,1\n");
    EXPECT_ERROR_CONTAINS(basin::read_similarity_matrix(dir / "asym.csv"), "asym.csv:2:", "not symmetric",
                          "row 'a' column 'b'");
    // named rows, basin's own header
    basin::testing::write_bytes(dir / "named.csv", "model,a,b\na,1,0.25\nb,0.25,1\n");
    EXPECT_DOUBLE_EQ(basin::read_similarity_matrix(dir / "named.csv").cosine(0, 1), 0.25);
    basin::testing::write_bytes(dir / "diag.csv", "a,b\n0.99,0.25\n0.25,1\n");
    EXPECT_ERROR_CONTAINS(basin::read_similarity_matrix(dir / "diag.csv"), "diag.csv:2:", "diagonal of 'a'");
    // norms in the matrix's order, each once
    basin::testing::write_bytes(dir / "norms.csv", "model,norm\nb,2\na,0.5\n");
    EXPECT_EQ(basin::read_norms(dir / "norms.csv", {"a", "b"}), (std::vector<double>{0.5, 2}));
    basin::testing::write_bytes(dir / "norms2.csv", "a,0.5\n");
    EXPECT_ERROR_CONTAINS(basin::read_norms(dir / "norms2.csv", {"a", "b"}), "no norm for model 'b'");
}

TEST(ClusterScores, MajorityRuleIsPurityAndNeverBelowOneToOne) {
    // both clusters mostly group 0: one-to-one must give one of them to group 1
    const std::vector<int> clusters = {0, 0, 0, 0, 1, 1, 1};
    const std::vector<int> groups = {0, 0, 0, 1, 0, 0, 1};
    const auto majority = basin::score_clusters_majority(clusters, groups, 2);
    const auto hungarian = basin::score_clusters(clusters, groups, 2);
    EXPECT_EQ(majority.group_of_cluster, (std::vector<int>{0, 0}));
    EXPECT_DOUBLE_EQ(majority.accuracy, 5.0 / 7.0);
    EXPECT_EQ(hungarian.group_of_cluster, (std::vector<int>{0, 1}));
    EXPECT_DOUBLE_EQ(hungarian.accuracy, 4.0 / 7.0);
    EXPECT_DOUBLE_EQ(majority.f1[1], 0.0); // group 1 gets no cluster
}

TEST(Spectral, DiscretizeRecoversSeparatedBlocksFromAnyStart) {
    // three blocks of four, cosine 0.9 within and 0 between
    const std::size_t n = 12;
    basin::SquareMatrix affinity(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            affinity(i, j) = i == j ? 1.0 : (i / 4 == j / 4 ? 0.95 : 0.5);
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
        const auto labels = basin::spectral_clustering(affinity, 3, seed);
        for (std::size_t i = 0; i < n; ++i)
            EXPECT_EQ(labels[i] == labels[(i / 4) * 4], true) << "seed " << seed << " model " << i;
        EXPECT_NE(labels[0], labels[4]);
        EXPECT_NE(labels[4], labels[8]);
        EXPECT_NE(labels[0], labels[8]);
    }
}

TEST(Locate, NonnegativeLeastSquaresKeepsTheSignAndHullDistancesFollow) {
    // identity: the negative coordinate is clipped to 0
    const auto x = basin::nonnegative_least_squares({1, 0, 0, 1}, 2, 2, {1, -1});
    EXPECT_NEAR(x[0], 1, 1e-12);
    EXPECT_NEAR(x[1], 0, 1e-12);
    // members e1, e2 in the plane; query (2, 2): the convex hull (the segment) is nearest at
    // (1/2, 1/2), distance sqrt(4.5); the affine hull (the line x + y = 1) the same point
    basin::SquareMatrix gram(3); // vectors: q = (2, 2), e1, e2
    const double v[3][2] = {{2, 2}, {1, 0}, {0, 1}};
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j)
            gram(i, j) = v[i][0] * v[j][0] + v[i][1] * v[j][1];
    const auto fit = basin::fit_to_hull(gram, 0, {1, 2});
    EXPECT_NEAR(fit.convex_distance, std::sqrt(4.5), 1e-9);
    EXPECT_NEAR(fit.affine_distance, std::sqrt(4.5), 1e-9);
    EXPECT_NEAR(fit.weights[0], 0.5, 1e-9);
    // a query beyond an end of the segment: convex distance to the end, affine to the line
    for (std::size_t j = 0; j < 3; ++j)
        gram(0, j) = gram(j, 0) = 3 * v[j][0] - 1 * v[j][1]; // q = (3, -1)
    gram(0, 0) = 10;
    const auto beyond = basin::fit_to_hull(gram, 0, {1, 2});
    EXPECT_NEAR(beyond.convex_distance, std::sqrt(4 + 1), 1e-9); // to e1 = (1, 0)
    EXPECT_NEAR(beyond.affine_distance, std::sqrt(0.5), 1e-9);   // (3, -1) lies 1/sqrt(2) off x + y = 1
    EXPECT_NEAR(beyond.weights[0], 1, 1e-9);
}
