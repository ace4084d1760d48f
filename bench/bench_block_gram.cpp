// Benchmark: the weight-space map's per-block Gram product, the dispatched kernel (AVX-512 where
// the CPU has it) and its AVX2 twin against OpenBLAS's ssyrk, and the bfloat16 kernel (map --precision bf16), one
// thread, on N x 4,096 blocks of random values (N = 16 and 64). Ratios come from the same invocation. Prints G
// multiply-adds per second for the upper triangle.
//   build/bench/bench_block_gram
#include "basin/core/cpu.h"
#include "basin/io/safetensors.h"
#include "basin/space/block_gram.h"

#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

int main() {
    openblas_set_num_threads(1); // one thread, as inside each of the map's worker threads
    constexpr std::size_t kColumns = 4096;
    for (std::size_t n : {16, 64}) {
        std::vector<float> x(n * kColumns), out(n * n);
        std::mt19937 rng(1);
        std::normal_distribution<float> normal;
        for (auto& v : x)
            v = normal(rng);
        const int reps = n == 16 ? 4000 : 300;
        std::vector<std::uint16_t> x_bf16(x.size());
        basin::convert_from_f32(basin::Dtype::BF16, x.data(), x_bf16.data(), x.size());
        const bool avx2 = basin::cpu_has_avx2_fma();
        double rate[4] = {0, 0, 0, 0};
        for (int kernel = 0; kernel < (avx2 ? 4 : 3); ++kernel) {
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0; i < reps; ++i)
                if (kernel == 0)
                    basin::block_gram_upper_blas(n, kColumns, x.data(), kColumns, out.data());
                else if (kernel == 1)
                    basin::block_gram_upper(n, kColumns, x.data(), kColumns, out.data());
                else if (kernel == 2)
                    basin::block_gram_upper_bf16(n, kColumns, x_bf16.data(), kColumns, out.data());
                else
                    basin::block_gram_upper_avx2(n, kColumns, x.data(), kColumns, out.data());
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            rate[kernel] = double(n) * double(n + 1) / 2 * double(kColumns) * reps / seconds / 1e9;
        }
        std::printf("N %zu: ssyrk %.1f, block_gram_upper %.1f (%.1fx), block_gram_upper_bf16 %.1f G multiply-adds/s "
                    "(%.1fx float32's)",
                    n, rate[0], rate[1], rate[1] / rate[0], rate[2], rate[2] / rate[1]);
        if (avx2) std::printf(", block_gram_upper_avx2 %.1f (%.1fx ssyrk)", rate[3], rate[3] / rate[0]);
        std::printf("\n");
    }
}
