// The weight-space map's block kernel: the AVX-512 tiles against OpenBLAS's ssyrk and a double
// precision sum, for every edge case of the 4 x 4 tiling and of the 16-wide vectors.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "basin/core/cpu.h"
#include "basin/io/safetensors.h"
#include "basin/space/block_gram.h"

using namespace basin;

namespace {

constexpr float kSentinel = -12345.0f; // where the kernels must not write

// Each kernel's output (n x n, upper triangle) against the double sums of the rows' products
// (rows: n x columns of `values` at `stride`), to float32 summation error; the lower triangle must
// be untouched.
void expect_upper_gram(const std::vector<std::vector<float>>& outputs, const std::vector<float>& values,
                       std::size_t n, std::size_t columns, std::size_t stride) {
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

} // namespace

TEST(Space, BlockGramMatchesBlasAndDoubleSums) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64}) {
        for (std::size_t columns : {1, 15, 16, 17, 33, 4095, 4096}) {
            const std::size_t stride = 4096;
            std::vector<float> x(n * stride, 0.0f);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t c = 0; c < columns; ++c) x[i * stride + c] = normal(rng);
            std::vector<std::vector<float>> out(2, std::vector<float>(n * n, kSentinel));
            block_gram_upper(n, columns, x.data(), stride, out[0].data());
            block_gram_upper_blas(n, columns, x.data(), stride, out[1].data());
            expect_upper_gram(out, x, n, columns, stride);
        }
    }
    if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 here: block_gram_upper used OpenBLAS, compared with itself";
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
                for (std::size_t c = 0; c < columns; ++c) values[i * stride + c] = normal(rng) + (i % 3 == 0 ? 2.0f : 0.0f);
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
