// basin interpolate / hull / plane: walking the region between checkpoints and scoring every
// point with the generalized loss (region/score.h).
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/strings.h"
#include "basin/region/points.h"
#include "basin/region/search.h"
#include "basin/region/studies.h"
#include "basin/space/map.h"
#include "options.h"

#include <cmath>
#include <cstdio>
#include <tuple>

namespace basin::cli {

namespace {

// Options every region command shares: targets, probe, features, parallelism, output.
struct RegionOptions {
    std::vector<std::string> data;
    std::string out, device = "cpu";
    bool overwrite = false, quiet = false;
    ProbeCliOptions probe;
    int threads = 0, jobs = 1;
    TargetLimits limits;
    std::string adapter_base;

    void add(CLI::App& app, const std::string& data_names = "--data") {
        app.add_option(data_names, data, "Dataset folders with train and test splits (comma-separated or repeated)")
            ->required()
            ->delimiter(',')
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        app.add_option("--out", out, "Output folder")->required();
        app.add_flag("--overwrite", overwrite, "Replace a non-empty output folder");
        probe.add(app);
        app.add_option("--probe-train-limit", limits.train,
                       "Fit each probe on a seeded sample of this many examples (0: all)")
            ->capture_default_str();
        app.add_option("--probe-test-limit", limits.test,
                       "Score on a seeded sample of this many test examples (0: all)")
            ->capture_default_str();
        add_threads_option(app, threads, "Compute threads in all (0: libtorch's default)");
        app.add_option("--jobs", jobs, "Points scored at once, each with its own model in memory")
            ->capture_default_str();
        add_device_option(app, device);
        app.add_flag("--quiet", quiet, "No progress lines");
        app.add_option("--adapter-base", adapter_base,
                       "The base of LoRA adapter folders among the models (their weights: base + s B A)");
    }

    // Checks the output folder, reads the targets, and prepares the scoring options.
    std::pair<std::vector<TargetDataset>, ScoreOptions> prepare(fs::path& out_dir) const {
        BASIN_CHECK(jobs >= 1, "--jobs must be at least 1, got ", jobs);
        out_dir = check_output_folder(out, overwrite);
        std::vector<TargetDataset> targets;
        for (const auto& d : data)
            targets.push_back(read_target(d, limits));
        for (std::size_t i = 0; i < targets.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                BASIN_CHECK(targets[i].name != targets[j].name, "--data: two datasets are named '", targets[i].name,
                            "' (", data[j], ", ", data[i], ")");
        ScoreOptions s;
        s.fit = probe.fit;
        s.device = torch::Device(check_device(device));
        s.jobs = jobs;
        s.progress = !quiet;
        // the workers share the cores: each gets its part of the thread budget
        const int total = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
        set_threads(std::max(1, total / jobs));
        s.features = probe.feature_options(std::max(1, total / jobs));
        return {std::move(targets), s};
    }
};

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
        InterpolationStudy study{o->a, o->b, merge_alphas({}, parse_alphas(o->alphas)), o->extrapolate,
                                 o->region.adapter_base};
        if (o->extrapolate) study.alphas = merge_alphas(study.alphas, extrapolation_alphas());
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        const InterpolationRecord r = run_interpolation(study, targets, options);

        std::printf("%10s", "alpha");
        for (const auto& t : r.targets)
            std::printf("  %22s", (t.name + " loss/acc").c_str());
        std::printf("  %16s\n", "mean loss/acc");
        for (std::size_t p = 0; p < r.alphas.size(); ++p) {
            std::printf("%10.4g", r.alphas[p]);
            for (const auto& s : r.scores[p])
                std::printf("  %13.4f %8.4f", s.loss, s.accuracy);
            std::printf("  %8.4f %7.4f\n", mean_over_targets(r.scores[p], &PointScore::loss),
                        mean_over_targets(r.scores[p], &PointScore::accuracy));
        }
        print_times(r.times);
        write_folder_atomically(out, [&](const fs::path& dir) { write_interpolation_files(r, dir); });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

Runner add_hull(CLI::App& app) {
    struct Options {
        RegionOptions region;
        std::string group, outside, base, weights;
        std::size_t samples = 0, random = 0;
        std::uint64_t seed = 0;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--group", o->group, "File listing the group's checkpoints (In), one folder or glob per line")
        ->required();
    app.add_option("--samples", o->samples, "Hull samples (In'), Dirichlet(1) weights (default: as many as members)");
    app.add_option("--seed", o->seed, "Seed of the hull weights and the random directions")->capture_default_str();
    app.add_option("--weights", o->weights,
                   "CSV file of explicit hull weights, one row per sample (instead of --samples)");
    app.add_option("--outside", o->outside, "File listing checkpoints outside the group (Ex)");
    app.add_option("--random", o->random, "Ex models: the base moved along this many random directions")
        ->capture_default_str();
    app.add_option("--base", o->base, "The pretrained checkpoint (origin of task vectors and random directions)");
    o->region.add(app);
    return [o]() {
        HullStudy study;
        study.members = read_model_list(o->group);
        if (!o->outside.empty()) study.outside = read_model_list(o->outside);
        BASIN_CHECK(o->random == 0 || !o->base.empty(),
                    "--random needs --base: random directions start at the pretrained model");
        BASIN_CHECK(!study.outside.empty() || o->random > 0,
                    "hull: no Ex models; give --outside FILE and/or --random N --base DIR");
        BASIN_CHECK(o->weights.empty() || o->samples == 0, "give --samples or --weights, not both");
        if (!o->weights.empty()) study.weights = read_hull_weights(o->weights, study.members.size());
        if (!o->base.empty()) study.base = fs::path(o->base);
        study.samples = o->samples, study.random = o->random, study.seed = o->seed;
        study.adapter_base = o->region.adapter_base;
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        const HullRecord r = run_hull(study, targets, options);

        std::printf("%-22s", "PB");
        for (std::size_t k = 0; k < kPbPairs.size(); ++k)
            std::printf("  %18s", pb_name(k).c_str());
        std::printf("\n");
        for (const auto& row : r.pb) {
            std::printf("%-22s", row.dataset.c_str());
            for (const auto& v : row.values)
                std::printf("  %9.3f (%5zu pairs)", v.value, v.pairs);
            std::printf("\n");
        }
        print_times(r.times);
        write_folder_atomically(out, [&](const fs::path& dir) { write_hull_files(r, dir); });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

Runner add_search(CLI::App& app) {
    struct Options {
        RegionOptions region;
        std::string group, base;
        SearchStudy study;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--group", o->group, "File listing the group's checkpoints, one folder or glob per line")
        ->required();
    app.add_option("--base", o->base, "The pretrained checkpoint (for the TIES and DARE baselines)");
    app.add_option("--budget", o->study.budget, "Selection-loss evaluations per target, the starting points included")
        ->capture_default_str();
    app.add_option("--held-out", o->study.held_out,
                   "Share of each target's training split held out to score the search's points on")
        ->capture_default_str();
    app.add_option("--seed", o->study.seed, "Seed of the fit / held-out cut (and of DARE's masks)")
        ->capture_default_str();
    o->region.add(app, "--target,--data");
    return [o]() {
        SearchStudy study = o->study;
        study.members = read_model_list(o->group);
        if (!o->base.empty()) study.base = fs::path(o->base);
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        SearchRecord r;
        write_folder_atomically(out, [&](const fs::path& dir) {
            study.out = dir;
            r = run_search(study, targets, options);
            write_search_files(r, dir);
        });
        for (const auto& t : r.targets) {
            std::printf("%s: %zu trials on %zu fit / %zu held-out examples (%s)\n", t.target.name.c_str(),
                        t.trial_losses.size(), t.fit_examples, t.held_out_examples, t.stopped.c_str());
            std::printf("  %-12s  %14s  %10s  %9s  %s\n", "row", "selection loss", "test loss", "test acc",
                        "weights / how");
            for (const auto& row : t.rows)
                std::printf("  %-12s  %14.5f  %10.5f  %9.4f  %s\n", row.name.c_str(), row.selection.loss, row.test.loss,
                            row.test.accuracy,
                            row.weights.empty() ? row.detail.c_str() : weights_text(row.weights).c_str());
        }
        std::printf("searched point against each baseline over %zu targets (lower test loss):", r.targets.size());
        for (const auto& w : r.wins)
            std::printf("  %s %zu-%zu-%zu", w.against.c_str(), w.wins, w.ties, w.losses);
        std::printf("\n");
        print_times(r.times);
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
                    random ? "--random-plane takes one model (A)"
                           : "plane needs three models A B C (or one with --random-plane)");
        BASIN_CHECK(!random || (o->extent > 0 && std::isfinite(o->extent)), "--extent must be positive");
        PlaneStudy study;
        study.models.assign(o->models.begin(), o->models.end());
        std::tie(study.columns, study.rows) = parse_grid(o->grid, o->force);
        study.margin = o->margin, study.random_seed = o->random_plane, study.extent = o->extent;
        study.adapter_base = o->region.adapter_base;
        fs::path out;
        auto [targets, options] = o->region.prepare(out);
        const PlaneRecord r = run_plane(study, targets, options);
        print_times(r.times);
        write_folder_atomically(out, [&](const fs::path& dir) { write_plane_files(r, dir); });
        std::printf("wrote %s\n", out.string().c_str());
        return 0;
    };
}

} // namespace basin::cli
