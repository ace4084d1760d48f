// basin interpolate / hull / plane: walking the region between checkpoints and scoring every
// point with the generalized loss (region/score.h).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/strings.h"
#include "basin/region/points.h"
#include "basin/region/score.h"
#include "basin/report/figure.h"
#include "basin/space/map.h"
#include "commands.h"

namespace basin::cli {

fs::path default_cache_dir(); // cmd_probe.cpp

namespace {

using nlohmann::json;

// Options every region command shares: targets, probe, features, parallelism, output.
struct RegionOptions {
    std::vector<std::string> data;
    std::string out, cache, device = "cpu";
    bool no_cache = false, overwrite = false, quiet = false;
    std::size_t batch_size = 64, max_length = 128;
    double l2 = 1e-3, tolerance = 1e-6;
    int max_iterations = 500, threads = 0, jobs = 1;
    TargetLimits limits;

    void add(CLI::App& app) {
        app.add_option("--data", data, "Dataset folders with train and test splits (comma-separated or repeated)")
            ->required()
            ->delimiter(',')
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        app.add_option("--out", out, "Output folder")->required();
        app.add_flag("--overwrite", overwrite, "Replace a non-empty output folder");
        app.add_option("--cache", cache, "Feature cache folder (default: $BASIN_CACHE/features or ~/.cache/basin/features)");
        app.add_flag("--no-cache", no_cache, "Do not read or write cached features");
        app.add_option("--max-length", max_length, "Tokens per example")->capture_default_str();
        app.add_option("--batch-size", batch_size, "Examples per forward pass")->capture_default_str();
        app.add_option("--l2", l2, "L2 penalty of the linear probe")->capture_default_str();
        app.add_option("--max-iterations", max_iterations, "L-BFGS iterations at most per probe")->capture_default_str();
        app.add_option("--probe-train-limit", limits.train, "Fit each probe on a seeded sample of this many examples (0: all)")
            ->capture_default_str();
        app.add_option("--probe-test-limit", limits.test, "Score on a seeded sample of this many test examples (0: all)")
            ->capture_default_str();
        app.add_option("--tolerance", tolerance, "Probe converged when every gradient entry is below this")
            ->capture_default_str();
        app.add_option("--threads", threads, "Compute threads in all (0: libtorch's default)")->capture_default_str();
        app.add_option("--jobs", jobs, "Points scored at once, each with its own model in memory")->capture_default_str();
        app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
        app.add_flag("--quiet", quiet, "No progress lines");
    }

    // Checks the output folder, reads the targets, and prepares the scoring options.
    std::pair<std::vector<TargetDataset>, ScoreOptions> prepare(fs::path& out_dir) const {
        BASIN_CHECK(jobs >= 1, "--jobs must be at least 1, got ", jobs);
        out_dir = check_output_folder(out, overwrite);
        std::vector<TargetDataset> targets;
        for (const auto& d : data) targets.push_back(read_target(d, limits));
        for (std::size_t i = 0; i < targets.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                BASIN_CHECK(targets[i].name != targets[j].name, "--data: two datasets are named '", targets[i].name,
                            "' (", data[j], ", ", data[i], ")");
        ScoreOptions s;
        s.features.batch_size = batch_size;
        s.features.max_length = max_length;
        if (!no_cache) s.features.cache_dir = cache.empty() ? default_cache_dir() : fs::path(cache);
        s.fit.l2 = l2;
        s.fit.max_iterations = max_iterations;
        s.fit.tolerance = tolerance;
        s.device = torch::Device(check_device(device));
        s.jobs = jobs;
        s.progress = !quiet;
        // the workers share the cores: each gets its part of the thread budget
        const int total = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
        set_threads(std::max(1, total / jobs));
        s.features.threads = std::max(1, total / jobs);
        return {std::move(targets), s};
    }
};


json times_json(const ScoreTimes& t) {
    const double work = t.build_seconds + t.extract_seconds + t.fit_seconds;
    auto share = [&](double s) { return work > 0 ? s / work : 0.0; };
    return {{"wall_seconds", t.wall_seconds},
            {"build_seconds", t.build_seconds},
            {"extract_seconds", t.extract_seconds},
            {"fit_seconds", t.fit_seconds},
            {"build_share", share(t.build_seconds)},
            {"extract_share", share(t.extract_seconds)},
            {"fit_share", share(t.fit_seconds)},
            {"points_built", t.points_built},
            {"points_from_cache", t.points_cached},
            {"points_per_minute", t.wall_seconds > 0 ? 60.0 * double(t.points_built + t.points_cached) / t.wall_seconds : 0.0}};
}

json targets_json(const std::vector<TargetDataset>& targets) {
    json out = json::array();
    for (const auto& t : targets)
        out.push_back({{"name", t.name},
                       {"train", t.train.path.string()},
                       {"test", t.test.path.string()},
                       {"labels", t.labels},
                       {"train_examples", t.train.examples.size()},
                       {"test_examples", t.test.examples.size()},
                       {"sample", t.sample_tag.empty() ? "all examples" : t.sample_tag.substr(1)}});
    return out;
}

double mean_of(const std::vector<PointScore>& row, double PointScore::*field) {
    double s = 0;
    for (const auto& x : row) s += x.*field;
    return s / double(row.size());
}


std::string score_columns() { return "loss,accuracy,train_loss,train_accuracy,converged,features_cached"; }
std::string score_cells(const PointScore& s) {
    return format_g(s.loss) + "," + format_g(s.accuracy) + "," + format_g(s.train_loss) + "," + format_g(s.train_accuracy) + "," +
           (s.converged ? "1" : "0") + "," + (s.cached ? "1" : "0");
}

void print_times(const ScoreTimes& t) {
    const double work = std::max(1e-9, t.build_seconds + t.extract_seconds + t.fit_seconds);
    std::printf("time: %.1f s for %zu points (%zu scored, %zu from cache); building weights %.0f%%, features %.0f%%, "
                "probe fits %.0f%%\n",
                t.wall_seconds, t.points_built + t.points_cached, t.points_built, t.points_cached,
                100 * t.build_seconds / work, 100 * t.extract_seconds / work, 100 * t.fit_seconds / work);
}

} // namespace

Runner add_interpolate(CLI::App& app) {
    struct Options {
        RegionOptions region;
        std::string a, b, alphas = "0:1:11";
        bool extrapolate = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("A", o->a, "Checkpoint at alpha = 0")->required();
    app.add_option("B", o->b, "Checkpoint at alpha = 1")->required();
    app.add_option("--alphas", o->alphas, "start:stop:count (both ends included) or a list a1,a2,...")
        ->capture_default_str();
    app.add_flag("--extrapolate", o->extrapolate,
                 "Add 10 log-spaced points from 1 to 32 and from 0 to -31 (PAPER.md's extrapolation)");
    o->region.add(app);
    return [o]() {
        std::vector<double> alphas = merge_alphas({}, parse_alphas(o->alphas));
        if (o->extrapolate) alphas = merge_alphas(alphas, extrapolation_alphas());
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        WeightSpace space({o->a, o->b});
        std::vector<NamedPoint> points;
        for (double a : alphas) points.push_back({"alpha=" + format_g(a), {{1 - a, a}, {}}});
        ScoreTimes times;
        auto scores = score_points(space, targets, points, options, &times);

        // table
        std::printf("%10s", "alpha");
        for (const auto& t : targets) std::printf("  %22s", (t.name + " loss/acc").c_str());
        std::printf("  %16s\n", "mean loss/acc");
        for (std::size_t p = 0; p < points.size(); ++p) {
            std::printf("%10.4g", alphas[p]);
            for (const auto& s : scores[p]) std::printf("  %13.4f %8.4f", s.loss, s.accuracy);
            std::printf("  %8.4f %7.4f\n", mean_of(scores[p], &PointScore::loss), mean_of(scores[p], &PointScore::accuracy));
        }
        print_times(times);

        write_folder_atomically(out, [&](const fs::path& dir) {
            std::string csv = "alpha,dataset," + score_columns() + "\n";
            for (std::size_t p = 0; p < points.size(); ++p)
                for (std::size_t d = 0; d < targets.size(); ++d)
                    csv += format_exact(alphas[p]) + "," + targets[d].name + "," + score_cells(scores[p][d]) + "\n";
            write_text_atomically(dir / "scores.csv", csv);
            json rows = json::array();
            for (std::size_t p = 0; p < points.size(); ++p)
                rows.push_back({{"alpha", alphas[p]},
                                {"mean_loss", mean_of(scores[p], &PointScore::loss)},
                                {"mean_accuracy", mean_of(scores[p], &PointScore::accuracy)}});
            json summary = {{"command", "interpolate"},
                            {"A", o->a},
                            {"B", o->b},
                            {"definition", "theta(alpha) = (1 - alpha) * A + alpha * B over the body"},
                            {"alphas", alphas},
                            {"datasets", targets_json(targets)},
                            {"mean", rows},
                            {"times", times_json(times)}};
            write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
            for (auto [field, label, stem] : {std::tuple{&PointScore::loss, "generalized loss", "interpolation-loss"},
                                              std::tuple{&PointScore::accuracy, "generalized accuracy", "interpolation-accuracy"}}) {
                std::vector<Series> series;
                for (std::size_t d = 0; d < targets.size(); ++d) {
                    Series s{targets[d].name, alphas, {}};
                    for (std::size_t p = 0; p < points.size(); ++p) s.y.push_back(scores[p][d].*field);
                    series.push_back(s);
                }
                if (targets.size() > 1) {
                    Series mean{"average", alphas, {}, true};
                    for (std::size_t p = 0; p < points.size(); ++p) mean.y.push_back(mean_of(scores[p], field));
                    series.push_back(mean);
                }
                line_plot(series, "Interpolation: " + std::string(label), "alpha (0 = A, 1 = B)", label, o->extrapolate)
                    .save((dir / stem).string());
            }
        });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

namespace {

// Explicit hull weights: one row of member weights per point, each row on the simplex.
std::vector<std::vector<double>> read_weight_rows(const fs::path& file, std::size_t members) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the weights file");
    std::vector<std::vector<double>> rows;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        std::vector<double> row;
        std::stringstream cells(line);
        for (std::string cell; std::getline(cells, cell, ',');) {
            cell = trim(cell);
            std::size_t used = 0;
            double v = 0;
            try {
                v = std::stod(cell, &used);
            } catch (...) {
                used = 0;
            }
            BASIN_CHECK(used == cell.size() && used > 0 && std::isfinite(v), file.string(), ":", number, ": '", cell,
                        "' is not a number");
            BASIN_CHECK(v >= 0, file.string(), ":", number, ": weight ", cell, " is negative (hull weights lie on the simplex)");
            row.push_back(v);
        }
        BASIN_CHECK(row.size() == members, file.string(), ":", number, ": ", row.size(), " weights, expected one per member (",
                    members, ")");
        double sum = 0;
        for (double v : row) sum += v;
        BASIN_CHECK(std::abs(sum - 1) <= 1e-6, file.string(), ":", number, ": the weights sum to ", format_g(sum),
                    ", expected 1");
        rows.push_back(row);
    }
    BASIN_CHECK(!rows.empty(), file.string(), ": no weight rows");
    return rows;
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t k) {
    std::seed_seq seq{std::uint32_t(seed), std::uint32_t(seed >> 32), std::uint32_t(k), std::uint32_t(k >> 32)};
    std::uint32_t out[2];
    seq.generate(out, out + 2);
    return (std::uint64_t(out[0]) << 32) | out[1];
}

} // namespace

Runner add_hull(CLI::App& app) {
    struct Options {
        RegionOptions region;
        std::string group, outside, base, weights;
        std::size_t samples = 0, random = 0;
        std::uint64_t seed = 0;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--group", o->group, "File listing the group's checkpoints (In), one folder or glob per line")->required();
    app.add_option("--samples", o->samples, "Hull samples (In'), Dirichlet(1) weights (default: as many as members)");
    app.add_option("--seed", o->seed, "Seed of the hull weights and the random directions")->capture_default_str();
    app.add_option("--weights", o->weights, "CSV file of explicit hull weights, one row per sample (instead of --samples)");
    app.add_option("--outside", o->outside, "File listing checkpoints outside the group (Ex)");
    app.add_option("--random", o->random, "Ex models: the base moved along this many random directions")->capture_default_str();
    app.add_option("--base", o->base, "The pretrained checkpoint (origin of task vectors and random directions)");
    o->region.add(app);
    return [o]() {
        const auto members = read_model_list(o->group);
        const auto outside = o->outside.empty() ? std::vector<fs::path>{} : read_model_list(o->outside);
        BASIN_CHECK(o->random == 0 || !o->base.empty(), "--random needs --base: random directions start at the pretrained model");
        BASIN_CHECK(!outside.empty() || o->random > 0, "hull: no Ex models; give --outside FILE and/or --random N --base DIR");
        BASIN_CHECK(o->weights.empty() || o->samples == 0, "give --samples or --weights, not both");
        const std::size_t m = members.size();
        auto weights = o->weights.empty() ? dirichlet_samples(m, o->samples ? o->samples : m, o->seed)
                                          : read_weight_rows(o->weights, m);
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        std::vector<fs::path> sources = members;
        sources.insert(sources.end(), outside.begin(), outside.end());
        const std::size_t base_index = sources.size();
        if (!o->base.empty()) sources.push_back(o->base);
        WeightSpace space(sources);

        std::vector<NamedPoint> points;
        std::vector<std::string> set_of;
        auto one_hot = [&](std::size_t i) {
            Combination c;
            c.weights.assign(sources.size(), 0.0);
            c.weights[i] = 1;
            return c;
        };
        for (std::size_t i = 0; i < m; ++i) points.push_back({members[i].string(), one_hot(i)}), set_of.push_back("In");
        for (std::size_t k = 0; k < weights.size(); ++k) {
            Combination c;
            c.weights = weights[k];
            points.push_back({"hull-" + std::to_string(k + 1), c}), set_of.push_back("In'");
        }
        for (std::size_t i = 0; i < outside.size(); ++i)
            points.push_back({outside[i].string(), one_hot(m + i)}), set_of.push_back("Ex");
        double target_norm = 0;
        if (o->random > 0) {
            std::vector<std::size_t> idx(m);
            for (std::size_t i = 0; i < m; ++i) idx[i] = i;
            target_norm = mean_task_vector_norm(space, base_index, idx);
            for (std::size_t k = 0; k < o->random; ++k) {
                Combination c = one_hot(base_index);
                RandomDirection d;
                d.seed = derive_seed(o->seed, k + 1);
                d.coefficient = scale_to_norm(space, d, target_norm);
                c.random.push_back(d);
                points.push_back({"random-" + std::to_string(k + 1), c}), set_of.push_back("Ex");
            }
        }
        ScoreTimes times;
        auto scores = score_points(space, targets, points, options, &times);

        // PB per dataset, and over all datasets (pairs within a dataset only)
        auto losses = [&](const std::string& set, std::size_t d) {
            std::vector<double> v;
            for (std::size_t p = 0; p < points.size(); ++p)
                if (set_of[p] == set) v.push_back(scores[p][d].loss);
            return v;
        };
        const std::vector<std::pair<std::string, std::string>> pairs = {{"In'", "In"}, {"In'", "Ex"}, {"In", "Ex"}};
        json pb = json::object();
        std::printf("%-22s", "PB");
        for (const auto& [x, y] : pairs) std::printf("  %18s", ("PB(" + x + ", " + y + ")").c_str());
        std::printf("\n");
        std::vector<double> wins(pairs.size(), 0.0);
        std::vector<std::size_t> counts(pairs.size(), 0);
        for (std::size_t d = 0; d <= targets.size(); ++d) {
            const bool all = d == targets.size();
            const std::string name = all ? "all datasets" : targets[d].name;
            std::printf("%-22s", name.c_str());
            json row = json::object();
            for (std::size_t k = 0; k < pairs.size(); ++k) {
                ProbabilityBetter r;
                if (all) r = {counts[k] ? wins[k] / double(counts[k]) : 0.0, counts[k]};
                else {
                    r = probability_better(losses(pairs[k].first, d), losses(pairs[k].second, d));
                    wins[k] += r.value * double(r.pairs), counts[k] += r.pairs;
                }
                row["PB(" + pairs[k].first + ", " + pairs[k].second + ")"] = {{"value", r.value}, {"pairs", r.pairs}};
                std::printf("  %9.3f (%5zu pairs)", r.value, r.pairs);
            }
            std::printf("\n");
            pb[name] = row;
        }
        print_times(times);

        write_folder_atomically(out, [&](const fs::path& dir) {
            std::string csv = "point,set,dataset," + score_columns() + ",weights\n";
            for (std::size_t p = 0; p < points.size(); ++p)
                for (std::size_t d = 0; d < targets.size(); ++d) {
                    std::string w;
                    for (std::size_t i = 0; i < points[p].combination.weights.size(); ++i)
                        w += (i ? " " : "") + format_exact(points[p].combination.weights[i]);
                    csv += "\"" + points[p].name + "\"," + set_of[p] + "," + targets[d].name + "," +
                           score_cells(scores[p][d]) + "," + w + "\n";
                }
            write_text_atomically(dir / "scores.csv", csv);
            json srcs = json::array();
            for (const auto& s : sources) srcs.push_back(s.string());
            json summary = {{"command", "hull"},
                            {"sources", srcs},
                            {"members", m},
                            {"hull_samples", weights.size()},
                            {"outside", outside.size()},
                            {"random", o->random},
                            {"random_norm", target_norm},
                            {"seed", o->seed},
                            {"datasets", targets_json(targets)},
                            {"pb", pb},
                            {"definition", "PB(X, Y): fraction of pairs (x in X, y in Y), on the same dataset, where "
                                           "x's generalized loss is no higher than y's"},
                            {"times", times_json(times)}};
            write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
            for (std::size_t d = 0; d <= targets.size(); ++d) {
                if (d == targets.size() && targets.size() == 1) break;
                std::vector<Series> groups;
                for (const std::string set : {"In", "In'", "Ex"}) {
                    Series s{set, {}, {}};
                    for (std::size_t p = 0; p < points.size(); ++p)
                        if (set_of[p] == set)
                            s.y.push_back(d < targets.size() ? scores[p][d].loss : mean_of(scores[p], &PointScore::loss));
                    groups.push_back(s);
                }
                const std::string name = d < targets.size() ? targets[d].name : "mean over datasets";
                strip_plot(groups, "Generalized loss: " + name, "generalized loss")
                    .save((dir / ("hull-" + (d < targets.size() ? file_safe_name(name) : std::string("mean")))).string());
            }
        });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

Runner add_plane(CLI::App& app) {
    struct Options {
        RegionOptions region;
        std::vector<std::string> models;
        std::string grid = "21x21";
        double margin = 0.2, extent = 1.0;
        bool force = false;
        std::optional<std::uint64_t> random_plane;
    };
    auto o = std::make_shared<Options>();
    app.add_option("models", o->models, "A B C (the plane through three models), or A with --random-plane")
        ->required()
        ->expected(1, 3)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--grid", o->grid, "Points along u and v: COLUMNSxROWS")->capture_default_str();
    app.add_option("--margin", o->margin, "Room around the three models, as a fraction of their extent")
        ->capture_default_str();
    app.add_flag("--force", o->force, "Allow a grid of more than 2,500 points");
    app.add_option("--random-plane", o->random_plane,
                   "SEED: a filter-normalised random plane around A (Li et al., 2018) instead of A B C");
    app.add_option("--extent", o->extent, "With --random-plane: the grid spans [-extent, extent] on both axes")
        ->capture_default_str();
    o->region.add(app);
    return [o]() {
        const bool random = o->random_plane.has_value();
        BASIN_CHECK(random ? o->models.size() == 1 : o->models.size() == 3,
                    random ? "--random-plane takes one model (A)" : "plane needs three models A B C (or one with --random-plane)");
        const auto [nx, ny] = parse_grid(o->grid, o->force);
        BASIN_CHECK(!random || (o->extent > 0 && std::isfinite(o->extent)), "--extent must be positive");
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        std::vector<fs::path> sources(o->models.begin(), o->models.end());
        WeightSpace space(sources);

        PlaneBasis basis;
        PlaneGrid grid;
        RandomDirection du, dv;
        std::vector<Marker> markers;
        if (random) {
            du = {derive_seed(*o->random_plane, 1), 1.0, DirectionKind::FilterNormalized, 0};
            dv = {derive_seed(*o->random_plane, 2), 1.0, DirectionKind::FilterNormalized, 0};
            grid = {nx, ny, -o->extent, o->extent, -o->extent, o->extent};
            markers.push_back({0, 0, "A"});
        } else {
            const auto g = space.gram(0);
            basis = plane_basis(g[1][1], g[1][2], g[2][2]);
            grid = plane_grid(basis, nx, ny, o->margin);
            const char* names[] = {"A", "B", "C"};
            for (int k = 0; k < 3; ++k) markers.push_back({basis.coordinates[k][0], basis.coordinates[k][1], names[k]});
        }
        std::vector<NamedPoint> points;
        for (std::size_t j = 0; j < ny; ++j)
            for (std::size_t i = 0; i < nx; ++i) {
                Combination c;
                const double x = grid.x(i), y = grid.y(j);
                if (random) {
                    c.weights.assign(1, 1.0); // (an initializer list here set off a GCC 12 -Wnonnull false positive)
                    RandomDirection a = du, b = dv;
                    a.coefficient = x, b.coefficient = y;
                    c.random = {a, b};
                } else {
                    const auto w = basis.weights(x, y);
                    c.weights.assign(w.begin(), w.end());
                }
                points.push_back({"(" + format_g(x) + ", " + format_g(y) + ")", c});
            }
        ScoreTimes times;
        auto scores = score_points(space, targets, points, options, &times);
        print_times(times);

        write_folder_atomically(out, [&](const fs::path& dir) {
            std::string csv = "i,j,u,v," + std::string(random ? "" : "weight_A,weight_B,weight_C,") + "dataset," +
                              score_columns() + "\n";
            for (std::size_t j = 0; j < ny; ++j)
                for (std::size_t i = 0; i < nx; ++i) {
                    const std::size_t p = j * nx + i;
                    std::string w;
                    if (!random)
                        for (double v : points[p].combination.weights) w += format_exact(v) + ",";
                    for (std::size_t d = 0; d < targets.size(); ++d)
                        csv += std::to_string(i) + "," + std::to_string(j) + "," + format_exact(grid.x(i)) + "," + format_exact(grid.y(j)) +
                               "," + w + targets[d].name + "," + score_cells(scores[p][d]) + "\n";
                }
            write_text_atomically(dir / "grid.csv", csv);
            json marks = json::array();
            for (const auto& mk : markers) marks.push_back({{"model", mk.label}, {"u", mk.x}, {"v", mk.y}});
            json summary = {{"command", "plane"},
                            {"models", o->models},
                            {"kind", random ? "filter-normalised random plane around A" : "plane through A, B, C"},
                            {"grid", {{"columns", nx}, {"rows", ny}, {"u", {grid.x0, grid.x1}}, {"v", {grid.y0, grid.y1}}}},
                            {"markers", marks},
                            {"datasets", targets_json(targets)},
                            {"times", times_json(times)}};
            if (random) summary["seed"] = *o->random_plane;
            else
                summary["basis"] = {{"|B - A|", basis.ab}, {"<C - A, u>", basis.c_u}, {"|C - A - <C - A, u> u|", basis.c_v},
                                    {"definition", "u = (B - A) / |B - A|; v = C - A minus its u component, normalised"}};
            write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
            for (std::size_t d = 0; d <= targets.size(); ++d) {
                if (d == targets.size() && targets.size() == 1) break;
                std::vector<std::vector<double>> values(ny, std::vector<double>(nx));
                for (std::size_t j = 0; j < ny; ++j)
                    for (std::size_t i = 0; i < nx; ++i)
                        values[j][i] = d < targets.size() ? scores[j * nx + i][d].loss
                                                          : mean_of(scores[j * nx + i], &PointScore::loss);
                const std::string name = d < targets.size() ? targets[d].name : "mean over datasets";
                surface_map(values, grid.x0, grid.x1, grid.y0, grid.y1, markers, "Generalized loss: " + name, "loss")
                    .save((dir / ("plane-" + (d < targets.size() ? file_safe_name(name) : std::string("mean")))).string());
            }
        });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

} // namespace basin::cli
