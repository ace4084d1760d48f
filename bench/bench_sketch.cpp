// Benchmark (issue 23): the sketched map's pass is linear in the number of models. N synthetic task
// vectors of P = 1,000,000 parameters each are generated one at a time (never more than one in
// memory: the pass needs no N x model bytes), each sketched into K = 65,536 buckets (sketch_add,
// one thread, as one model per thread in the map), for N = 1,250, 2,500, 5,000 and 10,000; the
// seconds per model should stay flat. The sketches' Gram matrix (N^2 K / 2, dsyrk, 2 threads) is
// timed at N = 1,250 and 2,500 and its quadratic growth stated. Generation (a counter-based
// normal-ish draw standing in for reading a checkpoint) is timed apart from sketching.
//   build/bench/bench_sketch [--out bench/results/sketch.json]
#include "basin/core/hash.h"
#include "basin/space/sketch.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kParameters = 1'000'000, kBuckets = 65536;

double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A synthetic task vector: 8 planted directions plus noise, from a counter-based generator.
void generate(std::size_t model, std::vector<float>& tau) {
    for (std::size_t p = 0; p < tau.size(); ++p) {
        const std::uint64_t h = basin::splitmix64(model * 0x9E3779B97F4A7C15ull ^ p),
                            c = basin::splitmix64((model % 8) * 0x9E3779B97F4A7C15ull ^ p);
        tau[p] = float(double(std::int64_t(h >> 11) - (1ll << 52)) * 0x1p-52 +
                       double(std::int64_t(c >> 11) - (1ll << 52)) * 0x1p-52);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string out_file;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--out") == 0) out_file = argv[i + 1];
    nlohmann::json rows = nlohmann::json::array();
    std::vector<float> tau(kParameters);
    std::vector<basin::ModelSketch> kept; // for the Gram timings (up to 2,500 models)
    double generate_seconds = 0, sketch_seconds = 0;
    std::size_t done = 0;
    for (std::size_t target : {1250, 2500, 5000, 10000}) {
        for (; done < target; ++done) {
            auto t0 = std::chrono::steady_clock::now();
            generate(done, tau);
            generate_seconds += since(t0);
            t0 = std::chrono::steady_clock::now();
            std::vector<double> sketch(kBuckets, 0.0);
            basin::sketch_add(sketch.data(), kBuckets, 3, 0, tau.data(), tau.size());
            sketch_seconds += since(t0);
            if (done < 2500) {
                basin::ModelSketch s;
                s.values.assign(sketch.begin(), sketch.end());
                double n2 = 0;
                for (float v : tau)
                    n2 += double(v) * v;
                s.norm2 = n2;
                kept.push_back(std::move(s));
            }
        }
        nlohmann::json row = {{"models", target},
                              {"sketch_seconds", sketch_seconds},
                              {"sketch_seconds_per_model", sketch_seconds / double(target)},
                              {"generate_seconds", generate_seconds}};
        if (target <= 2500) {
            const std::vector<basin::ModelSketch> first(kept.begin(), kept.begin() + std::ptrdiff_t(target));
            const auto t0 = std::chrono::steady_clock::now();
            const basin::SquareMatrix g = basin::sketched_gram(first, 2);
            row["gram_seconds"] = since(t0);
            row["gram_check"] = g(0, 1);
        }
        std::printf("N = %5zu: sketching %.1f s in all, %.2f ms per model%s\n", target, sketch_seconds,
                    1e3 * sketch_seconds / double(target),
                    row.contains("gram_seconds")
                        ? (", Gram of the sketches " + std::to_string(row["gram_seconds"].get<double>()) + " s").c_str()
                        : "");
        rows.push_back(row);
    }
    const double first = rows.front()["sketch_seconds_per_model"].get<double>(),
                 last = rows.back()["sketch_seconds_per_model"].get<double>();
    std::printf("seconds per model at N = 10,000 over N = 1,250: %.2fx (1 = linear in N)\n", last / first);
    const nlohmann::json result = {{"benchmark", "sketch"},
                                   {"parameters_per_model", kParameters},
                                   {"k", kBuckets},
                                   {"rows", rows},
                                   {"per_model_ratio_10000_over_1250", last / first}};
    if (!out_file.empty()) std::ofstream(out_file) << result.dump(2) << "\n";
    return 0;
}
