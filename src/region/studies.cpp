#include "basin/region/studies.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <cmath>

namespace basin {

namespace fs = std::filesystem;

namespace {

std::vector<TargetInfo> infos(const std::vector<TargetDataset>& targets) {
    std::vector<TargetInfo> out;
    for (const auto& t : targets)
        out.push_back(target_info(t));
    return out;
}

Combination one_hot(std::size_t sources, std::size_t i) {
    Combination c;
    c.weights.assign(sources, 0.0);
    c.weights[i] = 1;
    return c;
}

} // namespace

InterpolationRecord run_interpolation(const InterpolationStudy& study, std::vector<TargetDataset>& targets,
                                      const ScoreOptions& options) {
    BASIN_CHECK(!study.alphas.empty(), "interpolate: no alphas");
    WeightSpace space({study.a, study.b}, study.adapter_base);
    std::vector<NamedPoint> points;
    for (double a : study.alphas)
        points.push_back({"alpha=" + format_g(a), {{1 - a, a}, {}}});
    InterpolationRecord r;
    r.a = study.a.string(), r.b = study.b.string();
    r.extrapolate = study.extrapolate;
    r.alphas = study.alphas;
    r.scores = score_points(space, targets, points, options, &r.times);
    r.targets = infos(targets);
    return r;
}

HullRecord run_hull(const HullStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options) {
    const std::size_t m = study.members.size();
    BASIN_CHECK(m > 0, "hull: the group has no members");
    BASIN_CHECK(study.random == 0 || study.base,
                "hull: random directions start at the pretrained model; give the base");
    BASIN_CHECK(!study.outside.empty() || study.random > 0,
                "hull: no Ex models; give outside models and/or random directions");
    BASIN_CHECK(study.weights.empty() || study.samples == 0,
                "hull: give Dirichlet samples or explicit weights, not both");
    const auto weights =
        study.weights.empty() ? dirichlet_samples(m, study.samples ? study.samples : m, study.seed) : study.weights;
    for (const auto& w : weights)
        BASIN_CHECK(w.size() == m, "hull: a weight row has ", w.size(), " weights, expected one per member (", m, ")");

    std::vector<fs::path> sources = study.members;
    sources.insert(sources.end(), study.outside.begin(), study.outside.end());
    const std::size_t base_index = sources.size();
    if (study.base) sources.push_back(*study.base);
    WeightSpace space(sources, !study.adapter_base.empty() ? study.adapter_base
                               : study.base                ? *study.base
                                                           : fs::path());

    HullRecord r;
    for (const auto& s : sources)
        r.sources.push_back(s.string());
    r.members = m, r.hull_samples = weights.size(), r.outside = study.outside.size(), r.random = study.random;
    r.seed = study.seed;
    std::vector<NamedPoint> points;
    auto add = [&](const std::string& name, const std::string& set, Combination c) {
        r.points.push_back({name, set, c.weights});
        points.push_back({name, std::move(c)});
    };
    for (std::size_t i = 0; i < m; ++i)
        add(study.members[i].string(), "In", one_hot(sources.size(), i));
    for (std::size_t k = 0; k < weights.size(); ++k)
        add("hull-" + std::to_string(k + 1), "In'", {weights[k], {}});
    for (std::size_t i = 0; i < study.outside.size(); ++i)
        add(study.outside[i].string(), "Ex", one_hot(sources.size(), m + i));
    if (study.random > 0) {
        std::vector<std::size_t> idx(m);
        for (std::size_t i = 0; i < m; ++i)
            idx[i] = i;
        r.random_norm = mean_task_vector_norm(space, base_index, idx);
        for (std::size_t k = 0; k < study.random; ++k) {
            Combination c = one_hot(sources.size(), base_index);
            RandomDirection d;
            d.seed = derive_seed(study.seed, k + 1);
            d.coefficient = scale_to_norm(space, d, r.random_norm);
            c.random.push_back(d);
            add("random-" + std::to_string(k + 1), "Ex", c);
        }
    }
    r.scores = score_points(space, targets, points, options, &r.times);
    r.targets = infos(targets);
    std::vector<std::string> names;
    for (const auto& t : r.targets)
        names.push_back(t.name);
    r.pb = hull_pb(r.points, r.scores, names);
    return r;
}

PlaneRecord run_plane(const PlaneStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options) {
    const bool random = study.random_seed.has_value();
    BASIN_CHECK(random ? study.models.size() == 1 : study.models.size() == 3,
                random ? "plane: a random plane takes one model (A)"
                       : "plane: needs three models A B C (or one with a random plane)");
    BASIN_CHECK(!random || (study.extent > 0 && std::isfinite(study.extent)), "plane: the extent must be positive");
    BASIN_CHECK(study.columns >= 1 && study.rows >= 1, "plane: the grid needs at least one column and one row");
    WeightSpace space(study.models, study.adapter_base);

    PlaneRecord r;
    for (const auto& m : study.models)
        r.models.push_back(m.string());
    r.random = random;
    RandomDirection du, dv;
    if (random) {
        r.seed = *study.random_seed;
        du = {derive_seed(r.seed, 1), 1.0, DirectionKind::FilterNormalized, 0};
        dv = {derive_seed(r.seed, 2), 1.0, DirectionKind::FilterNormalized, 0};
        r.grid = {study.columns, study.rows, -study.extent, study.extent, -study.extent, study.extent};
        r.markers.push_back({"A", 0, 0});
    } else {
        const auto g = space.gram(0);
        r.basis = plane_basis(g[1][1], g[1][2], g[2][2]);
        r.grid = plane_grid(r.basis, study.columns, study.rows, study.margin);
        const char* names[] = {"A", "B", "C"};
        for (int k = 0; k < 3; ++k)
            r.markers.push_back({names[k], r.basis.coordinates[k][0], r.basis.coordinates[k][1]});
    }
    std::vector<NamedPoint> points;
    for (std::size_t j = 0; j < r.grid.ny; ++j)
        for (std::size_t i = 0; i < r.grid.nx; ++i) {
            Combination c;
            const double x = r.grid.x(i), y = r.grid.y(j);
            if (random) {
                c.weights.assign(1, 1.0); // (an initializer list here set off a GCC 12 -Wnonnull false positive)
                RandomDirection a = du, b = dv;
                a.coefficient = x, b.coefficient = y;
                c.random = {a, b};
            } else {
                const auto w = r.basis.weights(x, y);
                c.weights.assign(w.begin(), w.end());
                r.weights.push_back(w);
            }
            points.push_back({"(" + format_g(x) + ", " + format_g(y) + ")", c});
        }
    r.scores = score_points(space, targets, points, options, &r.times);
    r.targets = infos(targets);
    return r;
}

} // namespace basin
