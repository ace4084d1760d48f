#include "basin/space/block_gram.h"

#include <algorithm>
#include <cblas.h>
#include <immintrin.h>

#include "basin/core/cpu.h"

namespace basin {

namespace {

// The sum of a vector's 16 lanes, halves added pairwise as _mm512_reduce_add_ps does (GCC 12 warns
// of an uninitialised value inside that intrinsic once inlined here).
__attribute__((target("avx512f"))) inline float sum_lanes(__m512 v) {
    alignas(64) float lane[16];
    _mm512_store_ps(lane, v);
    for (int width = 8; width >= 1; width /= 2)
        for (int i = 0; i < width; ++i) lane[i] += lane[i + width];
    return lane[0];
}

// One R x C tile of the Gram matrix: rows i0.., columns j0... OpenBLAS's ssyrk reaches a third to
// a half of the core's peak at N = 16-64 (docs/PERFORMANCE.md): its kernels are tuned for large
// matrices. Here all R x C sums stay in registers over the whole block. A Diagonal tile (i0 == j0,
// R == C) forms only its upper triangle from its own R rows: 10 of 16 products for 4 x 4, which is
// 15% of the work at N = 16.
template <int R, int C, bool Diagonal = false>
__attribute__((target("avx512f"))) void tile(const float* x, std::size_t stride, std::size_t columns, std::size_t i0,
                                              std::size_t j0, float* out, std::size_t n) {
    __m512 acc[R][C];
    const float* a[R];
    const float* b[C];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
        a[r] = x + (i0 + std::size_t(r)) * stride;
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) b[c] = x + (j0 + std::size_t(c)) * stride;
    static_assert(!Diagonal || R == C, "a diagonal tile is square");
    std::size_t k = 0;
    for (; k + 16 <= columns; k += 16) {
        __m512 va[R], vb[C];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) va[r] = _mm512_loadu_ps(a[r] + k);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) vb[c] = Diagonal ? va[c] : _mm512_loadu_ps(b[c] + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < C; ++c)
                if (!Diagonal || c >= r) acc[r][c] = _mm512_fmadd_ps(va[r], vb[c], acc[r][c]);
    }
    if (k < columns) { // the last partial vector, masked
        const __mmask16 mask = __mmask16((1u << (columns - k)) - 1);
        __m512 va[R], vb[C];
        for (int r = 0; r < R; ++r) va[r] = _mm512_maskz_loadu_ps(mask, a[r] + k);
        for (int c = 0; c < C; ++c) vb[c] = Diagonal ? va[c] : _mm512_maskz_loadu_ps(mask, b[c] + k);
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c)
                if (!Diagonal || c >= r) acc[r][c] = _mm512_fmadd_ps(va[r], vb[c], acc[r][c]);
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            if (Diagonal ? c >= r : j0 + std::size_t(c) >= i0 + std::size_t(r))
                out[(i0 + std::size_t(r)) * n + j0 + std::size_t(c)] = sum_lanes(acc[r][c]);
}

template <int R>
__attribute__((target("avx512f"))) void tile_row(const float* x, std::size_t stride, std::size_t columns, std::size_t i0,
                                                  std::size_t j0, float* out, std::size_t n) {
    switch (std::min<std::size_t>(4, n - j0)) {
    case 4: return tile<R, 4>(x, stride, columns, i0, j0, out, n);
    case 3: return tile<R, 3>(x, stride, columns, i0, j0, out, n);
    case 2: return tile<R, 2>(x, stride, columns, i0, j0, out, n);
    default: return tile<R, 1>(x, stride, columns, i0, j0, out, n);
    }
}

__attribute__((target("avx512f"))) void block_gram_avx512(std::size_t n, std::size_t columns, const float* x,
                                                           std::size_t stride, float* out) {
    for (std::size_t i0 = 0; i0 < n; i0 += 4) {
        switch (std::min<std::size_t>(4, n - i0)) { // the diagonal tile
        case 4: tile<4, 4, true>(x, stride, columns, i0, i0, out, n); break;
        case 3: tile<3, 3, true>(x, stride, columns, i0, i0, out, n); break;
        case 2: tile<2, 2, true>(x, stride, columns, i0, i0, out, n); break;
        default: tile<1, 1, true>(x, stride, columns, i0, i0, out, n); break;
        }
        for (std::size_t j0 = i0 + 4; j0 < n; j0 += 4) switch (std::min<std::size_t>(4, n - i0)) {
            case 4: tile_row<4>(x, stride, columns, i0, j0, out, n); break;
            case 3: tile_row<3>(x, stride, columns, i0, j0, out, n); break;
            case 2: tile_row<2>(x, stride, columns, i0, j0, out, n); break;
            default: tile_row<1>(x, stride, columns, i0, j0, out, n); break;
            }
    }
}

} // namespace

void block_gram_upper_blas(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, int(n), int(columns), 1.0f, x, int(row_stride), 0.0f, out, int(n));
}

void block_gram_upper(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out) {
    static const bool avx512 = cpu_has_avx512f();
    if (avx512) return block_gram_avx512(n, columns, x, row_stride, out);
    block_gram_upper_blas(n, columns, x, row_stride, out);
}

} // namespace basin
