// The inner product of the weight-space map: for one block of N task-vector rows (N x columns
// values), out[i * n + j] = sum_c x[i][c] * x[j][c] for every j >= i (the upper triangle).
//
// `first` > 0 forms only the products that involve a row from `first` on (j >= first): what an
// update of a map adds, N_new x N products instead of N^2 / 2; the entries of rows before `first`
// among themselves are not written. On the AVX-512 paths every entry is the same sum in the same
// order whichever tile forms it (and the AVX2 path forms the same sums), so these entries equal
// the full square's bit for bit; on the OpenBLAS path (sgemm for the rectangle, ssyrk for the square) they agree to
// float32 rounding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace basin {

// Which float32 kernel block_gram_upper runs: the best the CPU has, unless the environment variable
// BASIN_GRAM_KERNEL names another (blas, avx2 or avx512; one the CPU lacks is an error), so that
// tests can take every path on one machine. Read once per process.
enum class GramKernel { Blas, Avx2, Avx512 };
GramKernel gram_kernel();

// AVX-512 register-tiled kernel where the CPU has it (4 x 4 tiles of rows: 16 accumulators, 8 loads
// per 16 multiply-adds), else its sums on AVX2 + FMA, else OpenBLAS's ssyrk. Only the upper triangle of out is written.
void block_gram_upper(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out,
                      std::size_t first = 0);

// The AVX2 + FMA path (callers check cpu_has_avx2_fma()): the AVX-512 float32 kernel's sums, bit
// for bit, in 2 x 2 tiles of 8-lane halves. block_gram_upper takes it where AVX-512 is missing.
void block_gram_upper_avx2(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out,
                           std::size_t first = 0);

// The portable path, for tests: OpenBLAS ssyrk (and sgemm for the rectangle before `first`).
void block_gram_upper_blas(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out,
                           std::size_t first = 0);

// bfloat16 rows (`map --precision bf16`): the products of the bfloat16 values (exact in float32),
// summed in float32. With AVX-512 BF16 (VDPBF16PS: 32 multiply-adds per instruction, twice FMA's
// 16), the same tiles as above; else (or when BASIN_GRAM_KERNEL names another kernel, so that a test
// run takes a CPU without AVX-512's paths) the rows are widened to float32 and block_gram_upper sums them.
void block_gram_upper_bf16(std::size_t n, std::size_t columns, const std::uint16_t* x, std::size_t row_stride,
                           float* out, std::size_t first = 0);

// The widening path, for tests.
void block_gram_upper_bf16_portable(std::size_t n, std::size_t columns, const std::uint16_t* x, std::size_t row_stride,
                                    float* out, std::size_t first = 0);

} // namespace basin
