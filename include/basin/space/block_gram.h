// The inner product of the weight-space map: for one block of N task-vector rows (N x columns
// floats), out[i * n + j] = sum_c x[i][c] * x[j][c] for every j >= i (the upper triangle).
#pragma once

#include <cstddef>

namespace basin {

// AVX-512 register-tiled kernel where the CPU has it (4 x 4 tiles of rows: 16 accumulators, 8 loads
// per 16 multiply-adds), else OpenBLAS's ssyrk. Only the upper triangle of out is written.
void block_gram_upper(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out);

// The portable path, for tests: OpenBLAS ssyrk.
void block_gram_upper_blas(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out);

} // namespace basin
