// basin map: similarity, clusters and projections of many checkpoints' task vectors.
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/core/mpi.h"
#include "basin/experiment/runner.h"
#include "basin/space/adapter_gram.h"
#include "basin/space/gram.h"
#include "basin/space/map.h"
#include "commands.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <thread>

namespace basin::cli {

// "2G", "512M", "1.5GB", "100000": bytes (K, M, G, T are powers of 1024)
std::uint64_t parse_byte_size(const std::string& text, const char* option) {
    std::size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (...) {
        fail(option, ": expected a size such as 2G or 512M, got '", text, "'");
    }
    std::string unit = text.substr(used);
    for (auto& ch : unit)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (!unit.empty() && unit.back() == 'I') unit.pop_back(); // GiB
    const std::string units = "KMGT";
    double scale = 1;
    if (!unit.empty()) {
        const auto at = units.find(unit);
        BASIN_CHECK(unit.size() == 1 && at != std::string::npos, option, ": unknown unit in '", text,
                    "' (use K, M, G or T)");
        for (std::size_t i = 0; i <= at; ++i)
            scale *= 1024;
    }
    BASIN_CHECK(value > 0, option, ": must be positive, got '", text, "'");
    return static_cast<std::uint64_t>(value * scale);
}

namespace {

// What a finished map says on stdout.
int report(const MapSummary& s, const std::string& out) {
    if (s.updated_from > 0)
        std::printf("mapped %zu models (%zu of the map and %zu new; %lld parameters each) in %.2f s", s.models,
                    s.updated_from, s.models - s.updated_from, static_cast<long long>(s.parameters), s.seconds);
    else if (s.parameters > 0)
        std::printf("mapped %zu models (%lld parameters each) in %.2f s", s.models,
                    static_cast<long long>(s.parameters), s.seconds);
    else
        std::printf("analysed the given similarity matrix of %zu models", s.models);
    for (const auto& [kind, accuracy] : s.spectral_accuracy)
        std::printf("; %s clustering accuracy %.1f%%", kind.c_str(), 100 * accuracy);
    std::printf("\nwrote %s\n", out.c_str());
    return 0;
}

// basin map --similarity: the analyses of a given matrix (no checkpoints are read).
template <class Options> int map_given(const Options& o) {
    BASIN_CHECK(o.base.empty() && o.models.empty(), "map: --similarity replaces --base and --models; give one or "
                                                    "the other");
    BASIN_CHECK(o.norms.empty() || o.gram.empty(), "map: give --norms or --gram, not both");
    GivenSimilarity similarity = read_similarity_matrix(o.similarity);
    if (!o.norms.empty()) similarity.gram = gram_from_cosine(similarity.cosine, read_norms(o.norms, similarity.names));
    if (!o.gram.empty()) similarity.gram = read_gram_matrix(o.gram, similarity);
    return report(run_map_similarity(similarity, o.groups, o.out, o.map), o.out);
}

// Under mpirun/srun every rank reads its share of the parameter stream; the Gram matrix is summed
// over ranks and rank 0 analyses and writes. `rank_pass` is what the other ranks do, `run` rank 0.
int run_over_ranks(GramOptions& gram, const std::function<void()>& rank_pass, const std::function<int()>& run) {
    const MpiSession mpi;
    if (mpi.active()) {
        gram.rank = mpi.rank();
        gram.ranks = mpi.size();
        gram.sum_across_ranks = MpiSession::sum;
    }
    try {
        if (mpi.active() && mpi.rank() != 0) {
            rank_pass();
            return 0;
        }
        return run();
    } catch (const Interrupted&) {
        throw; // every rank gets the signal, and the ranks stop together (gram.cpp)
    } catch (const std::exception& e) {
        // An error on one rank only (a file it cannot read, its own resident memory) would
        // leave the others waiting in a collective for ever: say it, then end the whole job.
        if (mpi.active() && mpi.size() > 1) mpi.abort_all(e.what());
        throw;
    }
}

// The pass settings of a map and the options that set them: an update keeps the map's.
struct PassOptions {
    std::vector<std::pair<CLI::Option*, const char*>> fixed; // option, its name
    void refuse_in_update(const std::string& dir) const {
        for (const auto& [option, name] : fixed)
            BASIN_CHECK(option->count() == 0, "map --update ", dir, ": ", name,
                        " is the map's own (state.json's pass); it cannot change in an update: map the models "
                        "again to change it");
    }
};

// The analysis options an update takes from the map (state.json) unless given again.
struct AnalysisOptions {
    CLI::Option *reference = nullptr, *clusters = nullptr, *seed = nullptr, *assign = nullptr;
    CLI::Option *geometry = nullptr, *bootstrap = nullptr;
    MapOptions given_over(const MapState& state, const MapOptions& given) const {
        MapOptions o = map_options_of(state);
        if (reference->count()) o.reference = given.reference;
        if (clusters->count()) o.clusters = given.clusters;
        if (seed->count()) o.seed = given.seed;
        if (assign->count()) o.assign = given.assign;
        if (geometry->count()) o.geometry = given.geometry;
        if (bootstrap->count()) o.bootstrap = given.bootstrap;
        o.query = given.query, o.overwrite = given.overwrite, o.quiet = given.quiet;
        o.gram.memory_limit = given.gram.memory_limit, o.gram.threads = given.gram.threads;
        return o;
    }
};

// basin map --update DIR: the map grown by new models, from one pass that forms only their products.
template <class Options> int map_update(Options& o) {
    BASIN_CHECK(o.base.empty() && o.similarity.empty(), "map --update ", o.update,
                ": the base is the map's (state.json); give the new models with --models only");
    BASIN_CHECK(!o.models.empty(), "map --update ", o.update, ": give the new models with --models");
    o.pass.refuse_in_update(o.update);
    const MapState state = read_map_state(o.update);
    MapOptions options = o.analysis.given_over(state, o.map);
    const fs::path groups = o.groups.empty() ? fs::path(state.groups) : fs::path(o.groups);
    const fs::path out = o.out.empty() ? fs::path(o.update) : fs::path(o.out);
    const auto models = read_model_list(o.models);
    return run_over_ranks(
        options.gram,
        [&] {
            check_map_state_inputs(state, o.update, models);
            extend_gram(state, o.update, models, options.gram);
        },
        [&] { return report(run_map_update(state, o.update, models, groups, out, options), out.string()); });
}

} // namespace

Runner add_map(CLI::App& app) {
    struct Options {
        std::string base, models, groups, out, memory_limit = "2G", precision = "f32";
        std::string similarity, norms, gram, assign = "discretize", geometry = "cosine", update;
        MapOptions map;
        int threads = 0;
        std::size_t sketch = 0;
        std::uint64_t sketch_seed = 0;
        PassOptions pass;
        AnalysisOptions analysis;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--base", o->base, "The pretrained checkpoint the task vectors start from (not with --similarity)");
    app.add_option("--models", o->models,
                   "File listing checkpoint folders or glob patterns, one per line (not with --similarity)");
    app.add_option("--similarity", o->similarity,
                   "Analyse this N x N cosine matrix (CSV: a header of model names, then N rows) instead of "
                   "checkpoints");
    app.add_option("--norms", o->norms, "With --similarity: the task vectors' norms (CSV model,norm), for distances");
    app.add_option("--gram", o->gram, "With --similarity: their Gram matrix (same CSV layout), for distances");
    app.add_option("--groups", o->groups,
                   "CSV file: model,KIND[,KIND...] (for example model,dataset,family); with --similarity, "
                   "models by the matrix's names");
    o->analysis.assign =
        app.add_option("--assign", o->assign,
                       "How spectral clustering labels its embedding: discretize (Yu and Shi, as the paper) or kmeans")
            ->check(CLI::IsMember({"discretize", "kmeans"}))
            ->capture_default_str();
    o->analysis.geometry =
        app.add_option("--geometry", o->geometry,
                       "What k-means and the PCA see: cosine (task vectors at unit length) or raw (the Gram matrix)")
            ->check(CLI::IsMember({"cosine", "raw"}))
            ->capture_default_str();
    app.add_option("--out", o->out, "Output folder (with --update: the map's own folder unless given)");
    app.add_option("--sketch", o->sketch,
                   "K: map CountSketches of K buckets (a power of two, e.g. 65536) instead of the exact Gram matrix: "
                   "time linear in the models, each cosine with its bound (sketch_bound.csv); --update adds models "
                   "by reading only them");
    app.add_option("--sketch-seed", o->sketch_seed, "With --sketch: the seed of the buckets and signs")
        ->capture_default_str();
    app.add_option("--update", o->update,
                   "Grow this map folder by the models of --models, from one pass that forms only their products "
                   "with the map's models (equal to mapping all again); the map's base and pass settings apply");
    o->pass.fixed.emplace_back(
        app.add_option("--include", o->map.gram.include, "Only tensors whose name matches this regex"), "--include");
    o->pass.fixed.emplace_back(
        app.add_option("--exclude", o->map.gram.exclude, "Leave out tensors whose name matches this regex"),
        "--exclude");
    o->analysis.reference =
        app.add_option("--reference", o->map.reference, "Origin of the task vectors for cosines: base or mean")
            ->capture_default_str();
    o->pass.fixed.emplace_back(
        app.add_flag("--per-layer", o->map.gram.per_layer, "Also write cosine and distance per layer (per_layer.csv)"),
        "--per-layer");
    auto* precision = app.add_option("--precision", o->precision,
                                     "Products of task-vector values: f32, or bf16 (rounded to bfloat16 first; about "
                                     "2x less arithmetic with AVX-512 BF16, cosines within about 1e-5)")
                          ->check(CLI::IsMember({"f32", "bf16"}))
                          ->capture_default_str();
    o->pass.fixed.emplace_back(precision, "--precision");
    app.add_option("--memory-limit", o->memory_limit, "Memory for the whole process (2G, 512M, ...)")
        ->capture_default_str();
    o->pass.fixed.emplace_back(app.add_flag("--skip-mismatched", o->map.gram.skip_mismatched,
                                            "Skip (and list) models whose body does not match the base, instead of "
                                            "failing"),
                               "--skip-mismatched");
    o->analysis.clusters =
        app.add_option("--clusters", o->map.clusters, "Without --groups: the number of clusters to find");
    app.add_option("--query", o->map.query,
                   "Locate these models (comma-separated names) against the others' groups: nearest models, "
                   "distances to each group's convex and affine hull, predicted group (locate.json)")
        ->delimiter(',');
    o->analysis.bootstrap =
        app.add_option(
               "--bootstrap", o->map.bootstrap,
               "Bootstrap resamples (seeds within datasets) and permutations for intervals and p-values (0: none)")
            ->capture_default_str();
    o->analysis.seed = app.add_option("--seed", o->map.seed, "Seed of k-means starts")->capture_default_str();
    app.add_option("--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
    app.add_flag("--overwrite", o->map.overwrite, "Replace a non-empty output folder");
    app.add_flag("--quiet", o->map.quiet, "No progress lines");
    return [o]() {
        o->map.assign = parse_spectral_assign(o->assign);
        o->map.geometry = parse_map_geometry(o->geometry);
        o->map.gram.memory_limit = parse_byte_size(o->memory_limit, "--memory-limit");
        o->map.gram.threads =
            o->threads > 0 ? o->threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        if (!o->update.empty() && fs::exists(fs::path(o->update) / "sketch.json")) { // a sketch map grows
            BASIN_CHECK(o->base.empty() && o->sketch == 0, "map --update ", o->update,
                        ": the base, K and seed are the sketch map's (sketch.json); give the new models only");
            BASIN_CHECK(!o->models.empty(), "map --update ", o->update, ": give the new models with --models");
            const fs::path out = o->out.empty() ? fs::path(o->update) : fs::path(o->out);
            return report(run_sketch_map({}, read_model_list(o->models), o->groups, out, o->map, {0, 0, o->update}),
                          out.string());
        }
        if (!o->update.empty()) return map_update(*o);
        if (o->sketch > 0) {
            BASIN_CHECK(!o->out.empty() && !o->base.empty() && !o->models.empty(),
                        "map --sketch: give --base, --models and --out");
            return report(run_sketch_map(o->base, read_model_list(o->models), o->groups, o->out, o->map,
                                         {o->sketch, o->sketch_seed, {}}),
                          o->out);
        }
        BASIN_CHECK(!o->out.empty(), "map: --out is required");
        if (!o->similarity.empty()) return map_given(*o);
        BASIN_CHECK(!o->base.empty() && !o->models.empty(), "map: give --base and --models (or --similarity)");
        BASIN_CHECK(o->norms.empty() && o->gram.empty(), "map: --norms and --gram go with --similarity");
        o->map.gram.precision = o->precision == "bf16" ? GramPrecision::bf16 : GramPrecision::f32;
        const auto models = read_model_list(o->models);
        return run_over_ranks(
            o->map.gram, [&] { zoo_gram(o->base, models, o->map.gram); },
            [&] { return report(run_map(o->base, models, o->groups, o->out, o->map), o->out); });
    };
}

Runner add_locate(CLI::App& app) {
    struct Options {
        std::string map, models, out, memory_limit = "2G";
        int threads = 0;
        bool overwrite = false, quiet = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("map", o->map, "A map folder (basin map's --out, which keeps state.json and gram.safetensors)")
        ->required();
    app.add_option("--models", o->models, "File listing the checkpoint folders to locate, one per line")->required();
    app.add_option("--out", o->out, "Also write the locations as JSON (locate.json's layout) to this file");
    app.add_option("--memory-limit", o->memory_limit, "Memory for the whole process (2G, 512M, ...)")
        ->capture_default_str();
    app.add_option("--threads", o->threads, "Threads (0: all cores)")->capture_default_str();
    app.add_flag("--overwrite", o->overwrite, "Replace an existing --out file");
    app.add_flag("--quiet", o->quiet, "No progress lines");
    return [o]() {
        BASIN_CHECK(o->out.empty() || o->overwrite || !fs::exists(o->out), "locate: ", o->out,
                    " exists (pass --overwrite to replace it)");
        const MapState state = read_map_state(o->map);
        const auto models = read_model_list(o->models);
        MapOptions pass;
        pass.quiet = o->quiet;
        pass.gram.memory_limit = parse_byte_size(o->memory_limit, "--memory-limit");
        pass.gram.threads =
            o->threads > 0 ? o->threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        std::vector<MapLocation> locations;
        const int status = run_over_ranks(
            pass.gram,
            [&] {
                check_map_state_inputs(state, o->map, models);
                extend_gram(state, o->map, models, pass.gram);
            },
            [&] {
                locations = locate_in_map(state, o->map, models, pass.gram, o->quiet);
                return 0;
            });
        if (locations.empty()) return status; // another rank
        for (const auto& loc : locations) {
            std::printf("%s", loc.model.c_str());
            if (!loc.nearest.empty())
                std::printf(": nearest %s (cosine %.4f)", loc.nearest[0].first.c_str(), loc.nearest[0].second);
            for (const auto& kind : loc.kinds) {
                double distance = NAN;
                for (const auto& g : kind.groups)
                    if (g.group == kind.predicted) distance = g.fit.convex_distance;
                std::printf("; %s %s (convex-hull distance %.4g)", kind.kind.c_str(), kind.predicted.c_str(), distance);
            }
            std::printf("\n");
        }
        if (!o->out.empty()) {
            write_text_atomically(o->out, locations_text(locations));
            std::printf("wrote %s\n", o->out.c_str());
        }
        return 0;
    };
}

} // namespace basin::cli
