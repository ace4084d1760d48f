#include "basin/region/score.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace basin {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Keeps `limit` examples chosen with a seeded shuffle, in file order.
void sample(Dataset& data, std::size_t limit, std::uint64_t seed) {
    if (limit == 0 || data.examples.size() <= limit) return;
    std::vector<std::size_t> order(data.examples.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(limit);
    std::sort(order.begin(), order.end());
    std::vector<Example> kept;
    for (auto i : order)
        kept.push_back(data.examples[i]);
    data.examples.swap(kept);
}

} // namespace

TargetDataset read_target(const fs::path& folder, const TargetLimits& limits) {
    BASIN_CHECK(fs::is_directory(folder), folder.string(),
                ": dataset folder not found (expected a folder with train and test splits)");
    TargetDataset t;
    t.name = fs::path(folder).lexically_normal().filename().string();
    if (t.name.empty()) t.name = fs::path(folder).lexically_normal().parent_path().filename().string();
    t.train = read_dataset(find_split(folder, "train"));
    t.test = read_dataset(find_split(folder, "test"));
    BASIN_CHECK(!t.train.examples.empty(), t.train.path.string(), ": the train split is empty");
    BASIN_CHECK(!t.test.examples.empty(), t.test.path.string(), ": the test split is empty");
    if (limits.train || limits.test) {
        sample(t.train, limits.train, limits.seed);
        sample(t.test, limits.test, limits.seed + 1);
        // a test example whose label the sampled training data lacks cannot be scored by the probe
        const std::set<std::string> known = [&] {
            std::set<std::string> k;
            for (const auto& e : t.train.examples)
                k.insert(e.label);
            return k;
        }();
        auto& ex = t.test.examples;
        ex.erase(std::remove_if(ex.begin(), ex.end(), [&](const Example& e) { return !known.count(e.label); }),
                 ex.end());
        BASIN_CHECK(!ex.empty(), t.test.path.string(),
                    ": no test example left whose label is in the sampled training data");
        // the cache key of the features must name the sample, not only the file
        t.sample_tag = "|sample " + std::to_string(limits.train) + "/" + std::to_string(limits.test) + " seed " +
                       std::to_string(limits.seed);
    }
    t.labels = probe_labels(t.train, t.test);
    t.train_labels = torch::tensor(map_labels(t.train, t.labels), torch::kLong);
    t.test_labels = torch::tensor(map_labels(t.test, t.labels), torch::kLong);
    return t;
}

TargetInfo target_info(const TargetDataset& t) {
    TargetInfo info;
    info.name = t.name;
    info.train = t.train.path.string();
    info.test = t.test.path.string();
    info.labels = t.labels;
    info.train_examples = t.train.examples.size();
    info.test_examples = t.test.examples.size();
    info.sample = t.sample_tag.empty() ? "all examples" : t.sample_tag.substr(1);
    return info;
}

ScoreGrid score_points(const WeightSpace& space, std::vector<TargetDataset>& targets,
                       const std::vector<NamedPoint>& points, const ScoreOptions& options, ScoreTimes* times) {
    const auto start = Clock::now();
    for (auto& t : targets) {
        if (!t.train_prepared.data) {
            t.train_prepared = prepare_features(t.train, space.tokenizer(), space.config(), options.features);
            t.train_prepared.data_sha256 += t.sample_tag;
        }
        if (!t.test_prepared.data) {
            t.test_prepared = prepare_features(t.test, space.tokenizer(), space.config(), options.features);
            t.test_prepared.data_sha256 += t.sample_tag;
        }
    }
    std::vector<std::vector<PointScore>> scores(points.size(), std::vector<PointScore>(targets.size()));
    ScoreTimes total;
    std::mutex mutex; // guards total, done, progress output, failure
    std::atomic<std::size_t> next{0};
    std::size_t done = 0;
    std::exception_ptr failure;
    const int jobs = std::max(1, std::min<int>(options.jobs, int(points.size())));
    const std::int64_t hidden = space.config().hidden_size;

    auto worker = [&]() {
        try {
            EncoderModel model = space.new_model(options.device);
            for (std::size_t p; (p = next++) < points.size();) {
                {
                    std::lock_guard<std::mutex> lock(mutex);
                    if (failure) return;
                }
                ScoreTimes mine;
                const std::string key = space.point_key(points[p].combination);
                bool built = false;
                auto features = [&](const PreparedData& data) {
                    const auto t0 = Clock::now();
                    const auto file = feature_cache_file(key, data, options.features);
                    if (auto cached = read_cached_features(file, std::int64_t(data.data->examples.size()), hidden)) {
                        mine.extract_seconds += since(t0);
                        return std::make_pair(*cached, true);
                    }
                    if (!built) {
                        const auto b0 = Clock::now();
                        space.build(points[p].combination, model);
                        mine.build_seconds += since(b0);
                        built = true;
                    }
                    const auto e0 = Clock::now();
                    auto f = extract_features(model, key, data, options.features);
                    mine.extract_seconds += since(e0);
                    return std::make_pair(f.values, false);
                };
                bool all_cached = true;
                for (std::size_t d = 0; d < targets.size(); ++d) {
                    const auto& t = targets[d];
                    auto [train, train_cached] = features(t.train_prepared);
                    auto [test, test_cached] = features(t.test_prepared);
                    const auto f0 = Clock::now();
                    ProbeFit fit = fit_probe(train, t.train_labels, std::int64_t(t.labels.size()), options.fit);
                    PointScore& s = scores[p][d];
                    std::tie(s.loss, s.accuracy) = probe_loss_accuracy(fit, test, t.test_labels);
                    mine.fit_seconds += since(f0);
                    s.train_loss = fit.train_loss;
                    s.train_accuracy = fit.train_accuracy;
                    s.converged = fit.converged;
                    s.cached = train_cached && test_cached;
                    all_cached = all_cached && s.cached;
                }
                std::lock_guard<std::mutex> lock(mutex);
                total.build_seconds += mine.build_seconds;
                total.extract_seconds += mine.extract_seconds;
                total.fit_seconds += mine.fit_seconds;
                (all_cached ? total.points_cached : total.points_built) += 1;
                ++done;
                if (options.on_point) options.on_point(done, points.size());
                if (options.progress) {
                    const double elapsed = since(start), rate = double(done) / std::max(elapsed, 1e-9);
                    std::fprintf(stderr, "points %zu/%zu  %.1f points/min  %s elapsed, %s left  (%s)\n", done,
                                 points.size(), rate * 60, duration_text(elapsed).c_str(),
                                 duration_text(double(points.size() - done) / rate).c_str(), points[p].name.c_str());
                }
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            if (!failure) failure = std::current_exception();
        }
    };
    if (jobs == 1) {
        worker();
    } else {
        std::vector<std::thread> threads;
        for (int j = 0; j < jobs; ++j)
            threads.emplace_back(worker);
        for (auto& t : threads)
            t.join();
    }
    if (failure) std::rethrow_exception(failure);
    total.wall_seconds = since(start);
    if (times) *times = total;
    return scores;
}

} // namespace basin
