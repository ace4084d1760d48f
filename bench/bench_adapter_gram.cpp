// Benchmark (issue 23): the exact Gram matrix of N rank-16 LoRA adapters on the q, k, v, o weights
// of a Llama-7B-shaped model (32 layers x 4 weights of 4096 x 4096 = 128 weights), against the same
// Gram matrix from materialised task vectors, in one invocation.
//
// The adapters are synthetic (seeded normal factors) and held in memory one weight at a time: the
// 128 weights are independent and of one shape, so a model's time is 128 times one weight's
// (measured on one weight, stated as such). Low rank (lora_block_gram, 2 threads): measured at
// N = 125, 250, 500, 1,000 on one weight. Materialised: every delta s B A formed (float32, m x n)
// and their Gram matrix by OpenBLAS ssyrk (2 threads), measured at N = 8, 16, 32 on one weight and
// extrapolated as its cost grows (N^2 m n / 2 for the products plus N r m n for forming the
// deltas). Also checks that both give the same matrix (relative difference printed).
//
//   build/bench/bench_adapter_gram [--out bench/results/adapter_gram.json]
#include "basin/space/adapter_gram.h"

#include <cblas.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kDim = 4096, kRank = 16, kWeights = 128;

struct Zoo {
    std::vector<std::vector<float>> a, b; // per adapter: A [r, n], B [m, r]
    std::vector<basin::LoraFactors> factors;
};

Zoo make_zoo(std::size_t n, std::uint64_t seed) {
    Zoo z;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (std::size_t i = 0; i < n; ++i) {
        z.a.emplace_back(std::size_t(kRank * kDim));
        z.b.emplace_back(std::size_t(kDim * kRank));
        for (auto& v : z.a.back())
            v = normal(rng);
        for (auto& v : z.b.back())
            v = normal(rng);
    }
    for (std::size_t i = 0; i < n; ++i)
        z.factors.push_back({z.a[i].data(), z.b[i].data(), kRank, kDim, kDim, 2.0});
    return z;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The materialised path on one weight: deltas [N, m n] float32, then ssyrk.
std::vector<double> materialised_gram(const Zoo& z, double& seconds) {
    const std::size_t n = z.factors.size(), size = std::size_t(kDim * kDim);
    const auto start = std::chrono::steady_clock::now();
    std::vector<float> deltas(n * size), gram(n * n);
    for (std::size_t i = 0; i < n; ++i) // delta = s B A: [m, r] x [r, n]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kDim, kDim, kRank, 2.0f, z.b[i].data(), kRank,
                    z.a[i].data(), kDim, 0.0f, deltas.data() + i * size, kDim);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, int(n), int(size), 1.0f, deltas.data(), int(size), 0.0f,
                gram.data(), int(n));
    seconds = seconds_since(start);
    std::vector<double> out(n * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i; j < n; ++j)
            out[i * n + j] = out[j * n + i] = gram[i * n + j];
    return out;
}

} // namespace

int main(int argc, char** argv) {
    std::string out_file;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--out") == 0) out_file = argv[i + 1];
    openblas_set_num_threads(2);
    nlohmann::json low = nlohmann::json::array(), materialised = nlohmann::json::array();

    // both paths on the same small zoo: the same matrix
    double agreement = 0;
    {
        const Zoo z = make_zoo(8, 7);
        double t = 0;
        const auto want = materialised_gram(z, t);
        const basin::SquareMatrix got = basin::lora_block_gram(z.factors, 2);
        double worst = 0, largest = 0;
        for (std::size_t i = 0; i < want.size(); ++i)
            worst = std::max(worst, std::abs(got.values[i] - want[i])), largest = std::max(largest, std::abs(want[i]));
        agreement = worst / largest;
        std::printf("agreement at N = 8: max |low rank - materialised| / max |G| = %.2e (materialised in float32)\n",
                    agreement);
    }
    for (std::size_t n : {8, 16, 32}) {
        const Zoo z = make_zoo(n, n);
        double t = 0;
        materialised_gram(z, t);
        materialised.push_back({{"adapters", n}, {"seconds_one_weight", t}});
        std::printf("materialised N = %4zu: %8.2f s per weight\n", n, t);
    }
    for (std::size_t n : {125, 250, 500, 1000}) {
        const Zoo z = make_zoo(n, n);
        const auto start = std::chrono::steady_clock::now();
        const basin::SquareMatrix g = basin::lora_block_gram(z.factors, 2);
        const double t = seconds_since(start);
        low.push_back({{"adapters", n}, {"seconds_one_weight", t}});
        std::printf("low rank     N = %4zu: %8.2f s per weight, %8.1f s for the 128 weights (trace %.3g)\n", n, t,
                    t * double(kWeights), g(0, 0));
    }
    // extrapolations to N = 1,000 over the whole model
    const double low_1000 = low.back()["seconds_one_weight"].get<double>() * double(kWeights);
    const auto& m_last = materialised.back();
    const double m_n = m_last["adapters"].get<double>(), m_t = m_last["seconds_one_weight"].get<double>();
    // cost model from the largest measured N: products N^2 m n / 2 dominate, forming N r m n
    const double m_cost = [](double n) { return n * n / 2 + n * double(kRank); }(1000.0) /
                          [](double n) { return n * n / 2 + n * double(kRank); }(m_n);
    const double materialised_1000 = m_t * m_cost * double(kWeights);
    std::printf("N = 1,000 rank-16 adapters on q, k, v, o of a Llama-7B shape (128 weights), 2 threads:\n"
                "  low rank (measured on one weight x 128): %.0f s\n"
                "  materialised (extrapolated from N = %.0f): %.0f s, %.1fx the low-rank time\n",
                low_1000, m_n, materialised_1000, materialised_1000 / low_1000);
    const nlohmann::json result = {
        {"benchmark", "adapter_gram"},
        {"shape", {{"weights", kWeights}, {"rows", kDim}, {"columns", kDim}, {"rank", kRank}}},
        {"threads", 2},
        {"agreement_relative", agreement},
        {"low_rank", low},
        {"materialised", materialised},
        {"n1000_model_seconds_low_rank", low_1000},
        {"n1000_model_seconds_materialised_extrapolated", materialised_1000},
        {"ratio_materialised_over_low_rank", materialised_1000 / low_1000},
    };
    if (!out_file.empty()) std::ofstream(out_file) << result.dump(2) << "\n";
    return 0;
}
