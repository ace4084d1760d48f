#include "basin/space/block_gram.h"

#include "basin/core/cpu.h"
#include "basin/core/error.h"
#include "basin/io/safetensors.h"

#include <algorithm>
#include <cblas.h>
#include <cstdlib>
#include <immintrin.h>
#include <vector>

// The tiles below are compiled for AVX-512 F, BW and BF16 alike (GCC's avx512bf16 brings BW): one
// template serves both element types. GCC emits BF16 instructions (VDPBF16PS, VCVTNEPS2BF16) only
// for their intrinsics, so the float32 kernel needs only F and BW (every AVX-512 CPU since
// Skylake-SP); each kernel is entered only after its own CPUID check.
#define BASIN_AVX512 __attribute__((target("avx512f,avx512bf16")))

namespace basin {

namespace {

// The sum of a vector's 16 lanes, in the order sum_lanes_16 adds them (so that an entry's value
// does not depend on which tile formed it: an update's rectangle of products equals the square's,
// bit for bit): per 128-bit lane q, (x0 + x2) + (x1 + x3); then (q0 + q1) + (q2 + q3).
// The AVX2 kernel folds its two 8-lane halves with the same function.
inline float sum_16_lanes(const float* lane) {
    float q[4];
    for (int i = 0; i < 4; ++i)
        q[i] = (lane[4 * i] + lane[4 * i + 2]) + (lane[4 * i + 1] + lane[4 * i + 3]);
    return (q[0] + q[1]) + (q[2] + q[3]);
}

BASIN_AVX512 inline float sum_lanes(__m512 v) {
    alignas(64) float lane[16];
    _mm512_store_ps(lane, v);
    return sum_16_lanes(lane);
}

// [a's 128-bit lanes 0 + 1, a's 2 + 3, b's 0 + 1, b's 2 + 3]
BASIN_AVX512 inline __m512 fold_lanes(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xffff, a, b, 0x88),
                         _mm512_maskz_shuffle_f32x4(0xffff, a, b, 0xdd));
}

// The lane sums of 16 vectors at once: sums[i] = the sum of v[i]'s 16 lanes. Pairs of vectors are
// interleaved and added (within 128-bit lanes, then across them), 30 shuffles and 15 adds in all,
// against 16 stores and 240 scalar adds for sum_lanes on each: at 4,096 bfloat16 columns that was
// a seventh of a 4 x 4 tile's time.
BASIN_AVX512 inline void sum_lanes_16(const __m512 (&v)[16], float* sums) {
    // (here and in fold_lanes, the zero-masked forms with every lane kept: GCC 12 warns of the
    // undefined vector inside the plain unpack and shuffle intrinsics)
    constexpr __mmask16 all16 = 0xffff;
    constexpr __mmask8 all8 = 0xff;
    __m512 pair[8], quad[4];
    for (int i = 0; i < 8; ++i) // lane k of 128-bit lane q: sums of v[2i] (k even) or v[2i + 1]
        pair[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all16, v[2 * i], v[2 * i + 1]),
                                _mm512_maskz_unpackhi_ps(all16, v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; ++i) { // 128-bit lane q: its part of the sums of v[4i .. 4i + 3]
        const __m512d a = _mm512_castps_pd(pair[2 * i]), b = _mm512_castps_pd(pair[2 * i + 1]);
        quad[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a, b)),
                                _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a, b)));
    }
    // across 128-bit lanes: lanes 0 + 1 and 2 + 3 of two vectors, then once more
    _mm512_storeu_ps(sums, fold_lanes(fold_lanes(quad[0], quad[1]), fold_lanes(quad[2], quad[3])));
}

// Element types of the kernel: how a vector of them is loaded and multiplied into 16 float lanes.
struct F32 {
    using Element = float;
    using Vector = __m512;
    static constexpr std::size_t kStep = 16; // elements per vector
    BASIN_AVX512 static Vector load(const float* p) { return _mm512_loadu_ps(p); }
    BASIN_AVX512 static Vector load_first(const float* p, std::size_t count) {
        return _mm512_maskz_loadu_ps(__mmask16((1u << count) - 1), p);
    }
    BASIN_AVX512 static __m512 multiply_add(Vector a, Vector b, __m512 acc) { return _mm512_fmadd_ps(a, b, acc); }
};

// Pairs of bfloat16 values per float lane: VDPBF16PS adds both products (exact in float32) to the
// lane, so one instruction does 32 multiply-adds where FMA does 16.
struct Bf16 {
    using Element = std::uint16_t;
    using Vector = __m512i;
    static constexpr std::size_t kStep = 32;
    BASIN_AVX512 static Vector load(const std::uint16_t* p) { return _mm512_loadu_si512(p); }
    BASIN_AVX512 static Vector load_first(const std::uint16_t* p, std::size_t count) {
        return _mm512_maskz_loadu_epi16(__mmask32((1ull << count) - 1), p);
    }
    BASIN_AVX512 static __m512 multiply_add(Vector a, Vector b, __m512 acc) {
        return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
    }
};

// One R x C tile of the Gram matrix: rows i0.., columns j0... OpenBLAS's ssyrk reaches a third to
// a half of the core's peak at N = 16-64 (docs/PERFORMANCE.md): its kernels are tuned for large
// matrices. Here all R x C sums stay in registers over the whole block. A Diagonal tile (i0 == j0,
// R == C) forms only its upper triangle from its own R rows: 10 of 16 products for 4 x 4, which is
// 15% of the work at N = 16.
template <class Op, int R, int C, bool Diagonal = false>
BASIN_AVX512 void tile(const typename Op::Element* x, std::size_t stride, std::size_t columns, std::size_t i0,
                       std::size_t j0, float* out, std::size_t n) {
    using E = typename Op::Element;
    using V = typename Op::Vector;
    __m512 acc[R][C];
    const E* a[R];
    const E* b[C];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
        a[r] = x + (i0 + std::size_t(r)) * stride;
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c)
            acc[r][c] = _mm512_setzero_ps();
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c)
        b[c] = x + (j0 + std::size_t(c)) * stride;
    static_assert(!Diagonal || R == C, "a diagonal tile is square");
    std::size_t k = 0;
    for (; k + Op::kStep <= columns; k += Op::kStep) {
        V va[R], vb[C];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
            va[r] = Op::load(a[r] + k);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c)
            vb[c] = Diagonal ? va[c] : Op::load(b[c] + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
            for (int c = 0; c < C; ++c)
                if (!Diagonal || c >= r) acc[r][c] = Op::multiply_add(va[r], vb[c], acc[r][c]);
    }
    if (k < columns) { // the last partial vector, masked (zeros past the end)
        V va[R], vb[C];
        for (int r = 0; r < R; ++r)
            va[r] = Op::load_first(a[r] + k, columns - k);
        for (int c = 0; c < C; ++c)
            vb[c] = Diagonal ? va[c] : Op::load_first(b[c] + k, columns - k);
        for (int r = 0; r < R; ++r)
            for (int c = 0; c < C; ++c)
                if (!Diagonal || c >= r) acc[r][c] = Op::multiply_add(va[r], vb[c], acc[r][c]);
    }
    constexpr bool full = R == 4 && C == 4; // the common tile: all 16 sums in one pass
    alignas(64) float sums[16];
    if constexpr (full) sum_lanes_16(reinterpret_cast<const __m512(&)[16]>(acc), sums);
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            if (Diagonal ? c >= r : j0 + std::size_t(c) >= i0 + std::size_t(r))
                out[(i0 + std::size_t(r)) * n + j0 + std::size_t(c)] = full ? sums[r * C + c] : sum_lanes(acc[r][c]);
}

template <class Op, int R>
BASIN_AVX512 void tile_row(const typename Op::Element* x, std::size_t stride, std::size_t columns, std::size_t i0,
                           std::size_t j0, float* out, std::size_t n) {
    switch (std::min<std::size_t>(4, n - j0)) {
    case 4:
        return tile<Op, R, 4>(x, stride, columns, i0, j0, out, n);
    case 3:
        return tile<Op, R, 3>(x, stride, columns, i0, j0, out, n);
    case 2:
        return tile<Op, R, 2>(x, stride, columns, i0, j0, out, n);
    default:
        return tile<Op, R, 1>(x, stride, columns, i0, j0, out, n);
    }
}

// A tile of R = rows (1..4) rows from i0 against columns j0.. (tile_row picks C).
template <class Op>
BASIN_AVX512 void tile_rows(std::size_t rows, const typename Op::Element* x, std::size_t stride, std::size_t columns,
                            std::size_t i0, std::size_t j0, float* out, std::size_t n) {
    switch (rows) {
    case 4:
        return tile_row<Op, 4>(x, stride, columns, i0, j0, out, n);
    case 3:
        return tile_row<Op, 3>(x, stride, columns, i0, j0, out, n);
    case 2:
        return tile_row<Op, 2>(x, stride, columns, i0, j0, out, n);
    default:
        return tile_row<Op, 1>(x, stride, columns, i0, j0, out, n);
    }
}

// Rows before `first` against rows from `first` on (a rectangle), then the square of rows from
// `first` on: diagonal tiles, and the tiles right of them.
template <class Op>
BASIN_AVX512 void block_gram_avx512(std::size_t n, std::size_t first, std::size_t columns,
                                    const typename Op::Element* x, std::size_t stride, float* out) {
    for (std::size_t i0 = 0; i0 < first; i0 += 4)
        for (std::size_t j0 = first; j0 < n; j0 += 4)
            tile_rows<Op>(std::min<std::size_t>(4, first - i0), x, stride, columns, i0, j0, out, n);
    for (std::size_t i0 = first; i0 < n; i0 += 4) {
        switch (std::min<std::size_t>(4, n - i0)) { // the diagonal tile
        case 4:
            tile<Op, 4, 4, true>(x, stride, columns, i0, i0, out, n);
            break;
        case 3:
            tile<Op, 3, 3, true>(x, stride, columns, i0, i0, out, n);
            break;
        case 2:
            tile<Op, 2, 2, true>(x, stride, columns, i0, i0, out, n);
            break;
        default:
            tile<Op, 1, 1, true>(x, stride, columns, i0, i0, out, n);
            break;
        }
        for (std::size_t j0 = i0 + 4; j0 < n; j0 += 4)
            tile_rows<Op>(std::min<std::size_t>(4, n - i0), x, stride, columns, i0, j0, out, n);
    }
}

// ---- AVX2 + FMA: the AVX-512 float32 kernel's sums on CPUs without AVX-512 (Haswell, Zen 1-3)
//
// The 16-lane accumulator of an entry is kept as two 8-lane halves (lanes 0-7 and 8-15): each lane
// adds the same products in the same order, each with FMA's single rounding, the masked tail adds
// the same zeros, and sum_16_lanes folds the 16 lanes in sum_lanes's order. So every entry equals
// the AVX-512 kernel's bit for bit, and, as there, does not depend on which tile formed it: an
// update's rectangle equals the full square, and a map is the same number on both kinds of CPU.
// Tiles are 2 x 2 (8 accumulators and 4 loads of AVX2's 16 registers).

#define BASIN_AVX2 __attribute__((target("avx2,fma")))

BASIN_AVX2 inline float sum_halves(__m256 lo, __m256 hi) {
    alignas(32) float lane[16];
    _mm256_store_ps(lane, lo);
    _mm256_store_ps(lane + 8, hi);
    return sum_16_lanes(lane);
}

// acc (lo and hi halves) += a * b for each (r, c) of the tile
template <int R, int C, bool Diagonal>
BASIN_AVX2 inline void multiply_add_avx2(const __m256 (&alo)[R], const __m256 (&ahi)[R], const __m256 (&blo)[C],
                                         const __m256 (&bhi)[C], __m256 (&lo)[R][C], __m256 (&hi)[R][C]) {
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            if (!Diagonal || c >= r) {
                lo[r][c] = _mm256_fmadd_ps(alo[r], blo[c], lo[r][c]);
                hi[r][c] = _mm256_fmadd_ps(ahi[r], bhi[c], hi[r][c]);
            }
}

// One R x C tile (R, C = 1 or 2) of rows i0.. against rows j0..; a Diagonal tile forms its upper
// triangle only.
template <int R, int C, bool Diagonal = false>
BASIN_AVX2 void tile_avx2(const float* x, std::size_t stride, std::size_t columns, std::size_t i0, std::size_t j0,
                          float* out, std::size_t n) {
    static_assert(!Diagonal || R == C, "a diagonal tile is square");
    __m256 lo[R][C], hi[R][C];
    const float* a[R];
    const float* b[C];
    for (int r = 0; r < R; ++r) {
        a[r] = x + (i0 + std::size_t(r)) * stride;
        for (int c = 0; c < C; ++c)
            lo[r][c] = hi[r][c] = _mm256_setzero_ps();
    }
    for (int c = 0; c < C; ++c)
        b[c] = x + (j0 + std::size_t(c)) * stride;
    std::size_t k = 0;
    for (; k + 16 <= columns; k += 16) {
        __m256 alo[R], ahi[R], blo[C], bhi[C];
        for (int r = 0; r < R; ++r)
            alo[r] = _mm256_loadu_ps(a[r] + k), ahi[r] = _mm256_loadu_ps(a[r] + k + 8);
        for (int c = 0; c < C; ++c) {
            blo[c] = Diagonal ? alo[c] : _mm256_loadu_ps(b[c] + k);
            bhi[c] = Diagonal ? ahi[c] : _mm256_loadu_ps(b[c] + k + 8);
        }
        multiply_add_avx2<R, C, Diagonal>(alo, ahi, blo, bhi, lo, hi);
    }
    if (k < columns) { // the last 1-15 columns, masked loads (zeros past the end, nothing read there)
        const int count = int(columns - k);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane);
        const __m256i mask_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(count - 8), lane);
        __m256 alo[R], ahi[R], blo[C], bhi[C];
        for (int r = 0; r < R; ++r)
            alo[r] = _mm256_maskload_ps(a[r] + k, mask_lo), ahi[r] = _mm256_maskload_ps(a[r] + k + 8, mask_hi);
        for (int c = 0; c < C; ++c) {
            blo[c] = Diagonal ? alo[c] : _mm256_maskload_ps(b[c] + k, mask_lo);
            bhi[c] = Diagonal ? ahi[c] : _mm256_maskload_ps(b[c] + k + 8, mask_hi);
        }
        multiply_add_avx2<R, C, Diagonal>(alo, ahi, blo, bhi, lo, hi);
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c)
            if (!Diagonal || c >= r)
                out[(i0 + std::size_t(r)) * n + j0 + std::size_t(c)] = sum_halves(lo[r][c], hi[r][c]);
}

template <int R>
BASIN_AVX2 void tile_row_avx2(const float* x, std::size_t stride, std::size_t columns, std::size_t i0, std::size_t j0,
                              float* out, std::size_t n) {
    if (n - j0 >= 2) return tile_avx2<R, 2>(x, stride, columns, i0, j0, out, n);
    tile_avx2<R, 1>(x, stride, columns, i0, j0, out, n);
}

BASIN_AVX2 void tile_rows_avx2(std::size_t rows, const float* x, std::size_t stride, std::size_t columns,
                               std::size_t i0, std::size_t j0, float* out, std::size_t n) {
    if (rows >= 2) return tile_row_avx2<2>(x, stride, columns, i0, j0, out, n);
    tile_row_avx2<1>(x, stride, columns, i0, j0, out, n);
}

} // namespace

// The same walk as block_gram_avx512: the rectangle of rows before `first`, then the square.
BASIN_AVX2 void block_gram_upper_avx2(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride,
                                      float* out, std::size_t first) {
    first = std::min(first, n);
    for (std::size_t i0 = 0; i0 < first; i0 += 2)
        for (std::size_t j0 = first; j0 < n; j0 += 2)
            tile_rows_avx2(std::min<std::size_t>(2, first - i0), x, row_stride, columns, i0, j0, out, n);
    for (std::size_t i0 = first; i0 < n; i0 += 2) {
        if (n - i0 >= 2)
            tile_avx2<2, 2, true>(x, row_stride, columns, i0, i0, out, n);
        else
            tile_avx2<1, 1, true>(x, row_stride, columns, i0, i0, out, n);
        for (std::size_t j0 = i0 + 2; j0 < n; j0 += 2)
            tile_rows_avx2(std::min<std::size_t>(2, n - i0), x, row_stride, columns, i0, j0, out, n);
    }
}

void block_gram_upper_blas(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out,
                           std::size_t first) {
    if (first >= n) return;
    const std::size_t fresh = n - first;
    if (first > 0) // rows before first against the fresh rows: out[i][first..n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(first), int(fresh), int(columns), 1.0f, x,
                    int(row_stride), x + first * row_stride, int(row_stride), 0.0f, out + first, int(n));
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, int(fresh), int(columns), 1.0f, x + first * row_stride,
                int(row_stride), 0.0f, out + first * n + first, int(n));
}

GramKernel gram_kernel() {
    const bool avx512 = cpu_has_avx512bw(), avx2 = cpu_has_avx2_fma(); // F and BW (see BASIN_AVX512)
    const GramKernel best = avx512 ? GramKernel::Avx512 : avx2 ? GramKernel::Avx2 : GramKernel::Blas;
    const char* forced = std::getenv("BASIN_GRAM_KERNEL");
    if (!forced || !*forced) return best;
    const std::string name = forced;
    if (name == "blas") return GramKernel::Blas;
    if (name == "avx2" && (avx2 || avx512)) return GramKernel::Avx2;
    if (name == "avx512" && avx512) return GramKernel::Avx512;
    throw Error("BASIN_GRAM_KERNEL='" + name + "': expected blas, avx2 or avx512, one this CPU has (it has " +
                (avx512 ? "avx512, avx2 and blas"
                 : avx2 ? "avx2 and blas"
                        : "blas") +
                ")");
}

namespace {
// The process's kernel, chosen once for the float32 and bfloat16 entry points alike.
GramKernel chosen_kernel() {
    static const GramKernel kernel = gram_kernel();
    return kernel;
}
} // namespace

void block_gram_upper(std::size_t n, std::size_t columns, const float* x, std::size_t row_stride, float* out,
                      std::size_t first) {
    const GramKernel kernel = chosen_kernel();
    if (kernel == GramKernel::Avx512) return block_gram_avx512<F32>(n, std::min(first, n), columns, x, row_stride, out);
    if (kernel == GramKernel::Avx2) return block_gram_upper_avx2(n, columns, x, row_stride, out, first);
    block_gram_upper_blas(n, columns, x, row_stride, out, first);
}

void block_gram_upper_bf16_portable(std::size_t n, std::size_t columns, const std::uint16_t* x, std::size_t row_stride,
                                    float* out, std::size_t first) {
    thread_local std::vector<float> wide;
    wide.resize(n * columns);
    for (std::size_t i = 0; i < n; ++i)
        convert_to_f32(Dtype::BF16, x + i * row_stride, wide.data() + i * columns, columns);
    block_gram_upper(n, columns, wide.data(), columns, out, first);
}

void block_gram_upper_bf16(std::size_t n, std::size_t columns, const std::uint16_t* x, std::size_t row_stride,
                           float* out, std::size_t first) {
    static const bool bf16 = cpu_has_avx512bf16() && chosen_kernel() == GramKernel::Avx512;
    if (bf16) return block_gram_avx512<Bf16>(n, std::min(first, n), columns, x, row_stride, out);
    block_gram_upper_bf16_portable(n, columns, x, row_stride, out, first);
}

} // namespace basin
