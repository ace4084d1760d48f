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

TEST(Space, BlockGramMatchesBlasAndDoubleSums) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 64}) {
        for (std::size_t columns : {1, 15, 16, 17, 33, 4095, 4096}) {
            const std::size_t stride = 4096;
            std::vector<float> x(n * stride, 0.0f);
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t c = 0; c < columns; ++c) x[i * stride + c] = normal(rng);
            const float sentinel = -12345.0f;
            std::vector<float> fast(n * n, sentinel), blas(n * n, sentinel);
            block_gram_upper(n, columns, x.data(), stride, fast.data());
            block_gram_upper_blas(n, columns, x.data(), stride, blas.data());
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    if (j < i) { // the lower triangle is not written
                        EXPECT_EQ(fast[i * n + j], sentinel);
                        continue;
                    }
                    double exact = 0, scale = 0;
                    for (std::size_t c = 0; c < columns; ++c) {
                        exact += double(x[i * stride + c]) * double(x[j * stride + c]);
                        scale += std::abs(double(x[i * stride + c]) * double(x[j * stride + c]));
                    }
                    EXPECT_NEAR(fast[i * n + j], exact, 1e-6 * scale + 1e-6) << "n " << n << " columns " << columns << " (" << i << "," << j << ")";
                    EXPECT_NEAR(blas[i * n + j], exact, 1e-6 * scale + 1e-6);
                }
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
            const float sentinel = -12345.0f;
            std::vector<float> fast(n * n, sentinel), portable(n * n, sentinel);
            block_gram_upper_bf16(n, columns, x.data(), stride, fast.data());
            block_gram_upper_bf16_portable(n, columns, x.data(), stride, portable.data());
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    if (j < i) {
                        EXPECT_EQ(fast[i * n + j], sentinel);
                        continue;
                    }
                    double exact = 0, scale = 0;
                    for (std::size_t c = 0; c < columns; ++c) {
                        const double product = double(wide[i * stride + c]) * double(wide[j * stride + c]);
                        exact += product, scale += std::abs(product);
                    }
                    EXPECT_NEAR(fast[i * n + j], exact, 1e-6 * scale + 1e-6) << "n " << n << " columns " << columns << " (" << i << "," << j << ")";
                    EXPECT_NEAR(portable[i * n + j], exact, 1e-6 * scale + 1e-6);
                }
        }
    }
    if (!cpu_has_avx512bf16()) GTEST_SKIP() << "no AVX-512 BF16 here: both paths widened to float32";
}
