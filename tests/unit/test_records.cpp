// Region records (region/records.h): each writer's folder read back by its reader gives the same
// record; the readers reject damaged folders with a line naming file and place; PB; and the
// store's spelling of the records (experiment/results.h) read back into the same values.
#include "basin/core/fs.h"
#include "basin/core/stats.h"
#include "basin/experiment/results.h"
#include "basin/region/records.h"
#include "test_util.h"

#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <tuple>

namespace basin {
namespace {

using testing::TempDir;
using testing::write_bytes;

std::vector<TargetInfo> two_targets() {
    return {{"sst2", "/d/sst2/train.jsonl", "/d/sst2/test.jsonl", {"negative", "positive"}, 2000, 872, "all examples"},
            {"ag,news",
             "/d/ag/train.csv",
             "/d/ag/test.csv",
             {"a", "b", "c", "d"},
             500,
             250,
             "500 train / 250 test, seed 0"}};
}

// Scores with digits a 6-digit format would lose.
ScoreGrid awkward_scores(std::size_t points, std::size_t targets) {
    ScoreGrid g(points, std::vector<PointScore>(targets));
    for (std::size_t p = 0; p < points; ++p)
        for (std::size_t d = 0; d < targets; ++d) {
            PointScore& s = g[p][d];
            s.loss = 1.0 / 3.0 + double(p) * 0.1 + double(d) * 1e-9;
            s.accuracy = 2.0 / 7.0 + double(p) / 97.0;
            s.train_loss = std::sqrt(2.0) * double(d + 1);
            s.train_accuracy = 1 - 1e-12 * double(p);
            s.converged = (p + d) % 2 == 0;
            s.cached = p % 3 == 1;
        }
    return g;
}

ScoreTimes some_times() {
    return {1.25, 2.5, 0.125, 4.75, 7, 3};
}

void expect_same_scores(const ScoreGrid& a, const ScoreGrid& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t p = 0; p < a.size(); ++p) {
        ASSERT_EQ(a[p].size(), b[p].size());
        for (std::size_t d = 0; d < a[p].size(); ++d) {
            EXPECT_EQ(a[p][d].loss, b[p][d].loss) << p << "," << d;
            EXPECT_EQ(a[p][d].accuracy, b[p][d].accuracy);
            EXPECT_EQ(a[p][d].train_loss, b[p][d].train_loss);
            EXPECT_EQ(a[p][d].train_accuracy, b[p][d].train_accuracy);
            EXPECT_EQ(a[p][d].converged, b[p][d].converged);
            EXPECT_EQ(a[p][d].cached, b[p][d].cached);
        }
    }
}

void expect_same_targets(const std::vector<TargetInfo>& a, const std::vector<TargetInfo>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t d = 0; d < a.size(); ++d) {
        EXPECT_EQ(a[d].name, b[d].name);
        EXPECT_EQ(a[d].train, b[d].train);
        EXPECT_EQ(a[d].test, b[d].test);
        EXPECT_EQ(a[d].labels, b[d].labels);
        EXPECT_EQ(a[d].train_examples, b[d].train_examples);
        EXPECT_EQ(a[d].test_examples, b[d].test_examples);
        EXPECT_EQ(a[d].sample, b[d].sample);
    }
}

void expect_same_times(const ScoreTimes& a, const ScoreTimes& b) {
    EXPECT_EQ(a.build_seconds, b.build_seconds);
    EXPECT_EQ(a.extract_seconds, b.extract_seconds);
    EXPECT_EQ(a.fit_seconds, b.fit_seconds);
    EXPECT_EQ(a.wall_seconds, b.wall_seconds);
    EXPECT_EQ(a.points_built, b.points_built);
    EXPECT_EQ(a.points_cached, b.points_cached);
}

InterpolationRecord an_interpolation() {
    InterpolationRecord r;
    r.a = "/m/sst2-s1", r.b = "/m/sst2-s2";
    r.extrapolate = true;
    r.alphas = merge_alphas(parse_alphas("0:1:4"), extrapolation_alphas(3, 4));
    r.targets = two_targets();
    r.scores = awkward_scores(r.alphas.size(), r.targets.size());
    r.times = some_times();
    return r;
}

HullRecord a_hull() {
    HullRecord r;
    r.sources = {"/m/a,1", "/m/\"b\"", "/m/out", "/m/base"};
    r.members = 2, r.hull_samples = 2, r.outside = 1, r.random = 1, r.random_norm = 12.5, r.seed = 7;
    r.targets = two_targets();
    r.points = {
        {"/m/a,1", "In", {1, 0, 0, 0}}, {"/m/\"b\"", "In", {0, 1, 0, 0}}, {"hull-1", "In'", {1.0 / 3.0, 2.0 / 3.0}},
        {"hull-2", "In'", {0.5, 0.5}},  {"/m/out", "Ex", {0, 0, 1, 0}},   {"random-1", "Ex", {0, 0, 0, 1}}};
    r.scores = awkward_scores(r.points.size(), r.targets.size());
    r.pb = hull_pb(r.points, r.scores, {"sst2", "ag,news"});
    r.times = some_times();
    return r;
}

PlaneRecord a_plane() {
    PlaneRecord r;
    r.models = {"/m/a", "/m/b", "/m/c"};
    r.basis = plane_basis(4.0, 1.0, 3.0);
    r.grid = plane_grid(r.basis, 3, 2, 0.2);
    for (int k = 0; k < 3; ++k)
        r.markers.push_back({std::string(1, char('A' + k)), r.basis.coordinates[k][0], r.basis.coordinates[k][1]});
    for (std::size_t j = 0; j < r.grid.ny; ++j)
        for (std::size_t i = 0; i < r.grid.nx; ++i)
            r.weights.push_back(r.basis.weights(r.grid.x(i), r.grid.y(j)));
    r.targets = two_targets();
    r.scores = awkward_scores(r.grid.nx * r.grid.ny, r.targets.size());
    r.times = some_times();
    return r;
}

TEST(RegionRecords, InterpolationRoundTripsThroughItsFolder) {
    TempDir dir;
    const InterpolationRecord r = an_interpolation();
    write_interpolation_files(r, dir.path());
    for (const char* f : {"scores.csv", "summary.json", "interpolation-loss.svg", "interpolation-accuracy.svg"})
        EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
    const InterpolationRecord back = read_interpolation(dir.path());
    EXPECT_EQ(back.a, r.a);
    EXPECT_EQ(back.b, r.b);
    EXPECT_EQ(back.extrapolate, r.extrapolate);
    EXPECT_EQ(back.alphas, r.alphas);
    expect_same_targets(back.targets, r.targets);
    expect_same_scores(back.scores, r.scores);
    expect_same_times(back.times, r.times);
}

TEST(RegionRecords, HullRoundTripsThroughItsFolderWithQuotedNames) {
    TempDir dir;
    const HullRecord r = a_hull();
    write_hull_files(r, dir.path());
    EXPECT_TRUE(std::filesystem::exists(dir / "hull-mean.svg"));
    const HullRecord back = read_hull(dir.path());
    EXPECT_EQ(back.sources, r.sources);
    EXPECT_EQ(back.members, r.members);
    EXPECT_EQ(back.hull_samples, r.hull_samples);
    EXPECT_EQ(back.outside, r.outside);
    EXPECT_EQ(back.random, r.random);
    EXPECT_EQ(back.random_norm, r.random_norm);
    EXPECT_EQ(back.seed, r.seed);
    ASSERT_EQ(back.points.size(), r.points.size());
    for (std::size_t p = 0; p < r.points.size(); ++p) {
        EXPECT_EQ(back.points[p].name, r.points[p].name);
        EXPECT_EQ(back.points[p].set, r.points[p].set);
        EXPECT_EQ(back.points[p].weights, r.points[p].weights);
    }
    expect_same_targets(back.targets, r.targets);
    expect_same_scores(back.scores, r.scores);
    ASSERT_EQ(back.pb.size(), r.pb.size());
    for (std::size_t k = 0; k < r.pb.size(); ++k) {
        EXPECT_EQ(back.pb[k].dataset, r.pb[k].dataset);
        for (std::size_t i = 0; i < kPbPairs.size(); ++i) {
            EXPECT_EQ(back.pb[k].values[i].value, r.pb[k].values[i].value);
            EXPECT_EQ(back.pb[k].values[i].pairs, r.pb[k].values[i].pairs);
        }
    }
}

TEST(RegionRecords, PlaneRoundTripsThroughItsFolder) {
    for (const bool random : {false, true}) {
        TempDir dir;
        PlaneRecord r = a_plane();
        if (random) {
            r.random = true, r.seed = 42, r.models = {"/m/a"}, r.weights.clear();
            r.grid = {3, 2, -1, 1, -1, 1};
            r.markers = {{"A", 0, 0}};
        }
        write_plane_files(r, dir.path());
        const PlaneRecord back = read_plane(dir.path());
        EXPECT_EQ(back.models, r.models);
        EXPECT_EQ(back.random, r.random);
        EXPECT_EQ(back.seed, r.seed);
        EXPECT_EQ(back.grid.nx, r.grid.nx);
        EXPECT_EQ(back.grid.ny, r.grid.ny);
        EXPECT_EQ(back.grid.x0, r.grid.x0);
        EXPECT_EQ(back.grid.y1, r.grid.y1);
        if (!random) {
            EXPECT_EQ(back.basis.ab, r.basis.ab);
            EXPECT_EQ(back.basis.c_v, r.basis.c_v);
            EXPECT_EQ(back.weights, r.weights);
        }
        ASSERT_EQ(back.markers.size(), r.markers.size());
        for (std::size_t k = 0; k < r.markers.size(); ++k) {
            EXPECT_EQ(back.markers[k].model, r.markers[k].model);
            EXPECT_EQ(back.markers[k].u, r.markers[k].u);
            EXPECT_EQ(back.markers[k].v, r.markers[k].v);
        }
        expect_same_scores(back.scores, r.scores);
    }
}

TEST(RegionRecords, ReadersNameTheFileAndPlaceOfDamage) {
    TempDir dir;
    write_interpolation_files(an_interpolation(), dir.path());
    const std::string csv = read_text_file(dir / "scores.csv");
    // a score row removed: the missing cell is named
    write_bytes(dir / "scores.csv", csv.substr(0, csv.rfind('\n', csv.size() - 2) + 1));
    auto e = testing::error_of([&] { read_interpolation(dir.path()); });
    EXPECT_NE(e.find("scores.csv: no score for point"), std::string::npos) << e;
    // a damaged number: file, line and column
    std::string bad = csv;
    bad.replace(bad.find(",sst2,") + 6, 1, "x");
    write_bytes(dir / "scores.csv", bad);
    e = testing::error_of([&] { read_interpolation(dir.path()); });
    EXPECT_NE(e.find("scores.csv:2: column 'loss'"), std::string::npos) << e;
    // a dataset the summary does not list
    bad = csv;
    bad.replace(bad.find(",sst2,"), 6, ",mnli,");
    write_bytes(dir / "scores.csv", bad);
    e = testing::error_of([&] { read_interpolation(dir.path()); });
    EXPECT_NE(e.find("dataset 'mnli' is not one of summary.json's datasets"), std::string::npos) << e;
    // a summary without its alphas
    write_bytes(dir / "scores.csv", csv);
    write_bytes(dir / "summary.json", "{\"A\": \"a\", \"B\": \"b\"}");
    e = testing::error_of([&] { read_interpolation(dir.path()); });
    EXPECT_NE(e.find("summary.json: no field 'alphas'"), std::string::npos) << e;
}

TEST(RegionRecords, PbCountsPairsOnTheSameTargetAndPoolsThem) {
    // In: losses 2, 4; In': 1, 3; Ex: 5 (one target), and a second target where Ex is best
    std::vector<HullPoint> points = {
        {"a", "In", {}}, {"b", "In", {}}, {"h1", "In'", {}}, {"h2", "In'", {}}, {"x", "Ex", {}}};
    ScoreGrid s(5, std::vector<PointScore>(2));
    const double first[] = {2, 4, 1, 3, 5}, second[] = {2, 4, 1, 3, 0};
    for (std::size_t p = 0; p < 5; ++p)
        s[p][0].loss = first[p], s[p][1].loss = second[p];
    const auto pb = hull_pb(points, s, {"t1", "t2"});
    ASSERT_EQ(pb.size(), 3u);
    EXPECT_EQ(pb[0].dataset, "t1");
    EXPECT_DOUBLE_EQ(pb[0].values[0].value, 3.0 / 4.0); // (1<=2, 1<=4, 3<=4) of 4 pairs
    EXPECT_EQ(pb[0].values[0].pairs, 4u);
    EXPECT_DOUBLE_EQ(pb[0].values[1].value, 1.0); // both hull samples beat Ex
    EXPECT_DOUBLE_EQ(pb[1].values[1].value, 0.0);
    EXPECT_EQ(pb[2].dataset, kAllDatasets);
    EXPECT_DOUBLE_EQ(pb[2].values[1].value, 0.5);
    EXPECT_EQ(pb[2].values[2].pairs, 4u);
    EXPECT_EQ(pb_name(1), "PB(In', Ex)");
}

TEST(RegionRecords, StoreRowsReadBackAsTheSameRecord) {
    Job job;
    job.id = "extrapolate/a--b", job.kind = "extrapolate", job.labels = {{"A", "a"}, {"B", "b"}};
    const InterpolationRecord line = an_interpolation();
    const JobResults rows = interpolation_rows(line, job);
    const InterpolationRecord back = interpolation_from_store(rows.metrics, rows.points);
    EXPECT_EQ(back.alphas, line.alphas);
    EXPECT_TRUE(back.extrapolate);
    ASSERT_EQ(back.targets.size(), 2u);
    // the store keeps loss and accuracy; its targets come in the store's order of names
    for (std::size_t p = 0; p < line.alphas.size(); ++p)
        for (std::size_t d = 0; d < 2; ++d) {
            const std::size_t o = back.targets[d].name == line.targets[0].name ? 0 : 1;
            EXPECT_EQ(back.scores[p][d].loss, line.scores[p][o].loss);
            EXPECT_EQ(back.scores[p][d].accuracy, line.scores[p][o].accuracy);
        }

    job.id = "hull/dataset/x", job.kind = "hull";
    const HullRecord hull = a_hull();
    const JobResults hrows = hull_rows(hull, job);
    const HullRecord hback = hull_from_store(hrows.metrics, hrows.points);
    ASSERT_EQ(hback.points.size(), hull.points.size());
    EXPECT_EQ(hback.points[2].weights, hull.points[2].weights);
    EXPECT_EQ(hback.members, 2u);
    ASSERT_EQ(hback.pb.size(), hull.pb.size());
    EXPECT_EQ(hback.pb.back().dataset, kAllDatasets);
    EXPECT_EQ(hback.pb.back().values[1].value, hull.pb.back().values[1].value);
    EXPECT_EQ(hback.pb.back().values[1].pairs, hull.pb.back().values[1].pairs);

    job.id = "plane", job.kind = "plane";
    const PlaneRecord plane = a_plane();
    const JobResults prows = plane_rows(plane, job);
    const PlaneRecord pback = plane_from_store(prows.metrics, prows.points);
    EXPECT_EQ(pback.grid.nx, plane.grid.nx);
    EXPECT_EQ(pback.grid.ny, plane.grid.ny);
    EXPECT_EQ(pback.grid.x0, plane.grid.x0);
    EXPECT_EQ(pback.grid.x1, plane.grid.x1);
    EXPECT_EQ(pback.grid.y1, plane.grid.y1);
    ASSERT_EQ(pback.markers.size(), 3u);
    EXPECT_EQ(pback.markers[2].model, "C");
    EXPECT_EQ(pback.markers[2].v, plane.markers[2].v);
    const std::size_t last = plane.grid.nx * plane.grid.ny - 1;
    const std::size_t o = pback.targets[0].name == plane.targets[0].name ? 0 : 1;
    EXPECT_EQ(pback.scores[last][0].loss, plane.scores[last][o].loss);
}

} // namespace
} // namespace basin

namespace basin {
namespace {

SquareMatrix matrix(std::size_t n, double seed) {
    SquareMatrix m(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            m(i, j) = i == j ? 1.0 : std::sin(seed * double(i + j + 1)) / 3.0;
    return m;
}

MapRecord a_map() {
    MapRecord r;
    r.base = "/m/base", r.reference = "base";
    r.names = {"a-s1", "a-s2", "b,s1", "b-s2"};
    r.paths = {"/m/a-s1", "/m/a-s2", "/m/b,s1", "/m/b-s2"};
    r.cosine = matrix(4, 0.7), r.distance = matrix(4, 1.3);
    r.pca.coordinates = {{1.5, -2.25}, {0.1, 0.2}, {-3, 4}, {1e-7, 2e8}};
    r.pca.explained = {0.625, 0.25};
    r.tsne = {{1, 2}, {3, 4}, {5, 6}, {7, 8.5}};
    MapLabelKind dataset;
    dataset.name = "dataset", dataset.groups = {"a", "b"}, dataset.label = {0, 0, 1, 1};
    for (const char* method : {"agglomerative", "kmeans_pca", "spectral"}) {
        MapClustering c;
        c.method = method, c.clusters = {1, 1, 0, 0}, c.group_of_cluster = {"b", "a"};
        c.accuracy = 1, c.macro_f1 = 1, c.silhouette = 0.375, c.f1 = {1, 1};
        c.group_of_cluster_majority = {"b", "a"}, c.accuracy_majority = 1, c.macro_f1_majority = 1;
        c.f1_majority = {1, 0.5};
        dataset.methods.push_back(c);
    }
    dataset.silhouette_of_groups = 0.375;
    dataset.similarity.within = {0.5, NAN}, dataset.similarity.between = {0.25, 0.125},
    dataset.similarity.members = {2, 2};
    dataset.similarity.within_mean = 0.5, dataset.similarity.between_mean = 0.25;
    MapLabelKind family; // one group: no clusterings
    family.name = "family", family.groups = {"all"}, family.label = {0, 0, 0, 0};
    family.similarity.within = {0.3}, family.similarity.between = {NAN}, family.similarity.members = {4};
    family.similarity.within_mean = 0.3, family.similarity.between_mean = NAN;
    r.kinds = {family, dataset}; // the groups file's order, not alphabetical
    r.layers = {"all"}, r.layer_parameters = {1000};
    r.parameters = 1000, r.chunk_parameters = 250, r.memory_limit = 1 << 20, r.bytes_read = 20000, r.peak_rss = 3 << 20;
    r.seconds = 0.5, r.threads = 2;
    r.excluded = {{"pooler.dense.weight", "a head"}};
    return r;
}

bool same_or_both_nan(double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || a == b;
}

TEST(MapRecords, RoundTripThroughTheOutputFolder) {
    TempDir dir;
    const MapRecord r = a_map();
    write_map_files(r, dir.path());
    const MapRecord back = read_map(dir.path());
    EXPECT_EQ(back.names, r.names);
    EXPECT_EQ(back.paths, r.paths);
    EXPECT_EQ(back.base, r.base);
    EXPECT_EQ(back.layers, r.layers);
    EXPECT_EQ(back.parameters, r.parameters);
    EXPECT_EQ(back.excluded, r.excluded);
    EXPECT_EQ(back.pca.explained, r.pca.explained);
    // CSV numbers carry 10 significant digits
    for (std::size_t k = 0; k < r.cosine.values.size(); ++k) {
        EXPECT_NEAR(back.cosine.values[k], r.cosine.values[k], 1e-10);
        EXPECT_NEAR(back.distance.values[k], r.distance.values[k], 1e-10);
    }
    ASSERT_EQ(back.pca.coordinates.size(), 4u);
    EXPECT_NEAR(back.pca.coordinates[3][1], 2e8, 1e-1);
    EXPECT_EQ(back.tsne, r.tsne);
    ASSERT_EQ(back.kinds.size(), 2u);
    EXPECT_EQ(back.kinds[0].name, "family");
    EXPECT_TRUE(back.kinds[0].methods.empty());
    EXPECT_TRUE(std::isnan(back.kinds[0].similarity.between_mean));
    const MapLabelKind& d = back.kinds[1];
    EXPECT_EQ(d.groups, r.kinds[1].groups);
    EXPECT_EQ(d.label, r.kinds[1].label);
    ASSERT_EQ(d.methods.size(), 3u);
    EXPECT_EQ(d.methods[2].method, "spectral");
    EXPECT_EQ(d.methods[2].clusters, r.kinds[1].methods[2].clusters);
    EXPECT_EQ(d.methods[2].group_of_cluster, r.kinds[1].methods[2].group_of_cluster);
    EXPECT_EQ(d.methods[2].f1, r.kinds[1].methods[2].f1);
    EXPECT_EQ(d.methods[2].group_of_cluster_majority, r.kinds[1].methods[2].group_of_cluster_majority);
    EXPECT_EQ(d.methods[2].f1_majority, r.kinds[1].methods[2].f1_majority);
    EXPECT_EQ(d.methods[2].accuracy_majority, 1);
    EXPECT_EQ(back.geometry, r.geometry);
    EXPECT_EQ(back.assign, r.assign);
    EXPECT_EQ(d.silhouette_of_groups, 0.375);
    for (std::size_t g = 0; g < 2; ++g) {
        EXPECT_TRUE(same_or_both_nan(d.similarity.within[g], r.kinds[1].similarity.within[g]));
        EXPECT_EQ(d.similarity.members[g], r.kinds[1].similarity.members[g]);
    }
}

TEST(MapRecords, StoreRowsCarryTheRecordsValues) {
    Job job;
    job.id = "map", job.kind = "map";
    const MapRecord r = a_map();
    const JobResults rows = map_rows(r, job);
    std::map<std::tuple<std::string, std::string, std::string>, double> m;
    for (const auto& x : rows.metrics)
        m[{x.subject, x.dataset, x.metric}] = x.value;
    EXPECT_EQ(m.at({"map", "", "clustering_accuracy/dataset/spectral"}), 1.0);
    EXPECT_EQ(m.at({"map", "", "within/dataset"}), 0.5);
    EXPECT_EQ(m.count({"map", "", "between/family"}), 0u); // NaN: no row
    EXPECT_EQ(m.at({"a-s1", "b,s1", "cosine"}), r.cosine(0, 2));
    EXPECT_EQ(m.count({"b,s1", "a-s1", "cosine"}), 0u); // the upper triangle by name only
    ASSERT_EQ(rows.points.size(), 4u);
    EXPECT_EQ(rows.points[2].name, "b,s1");
    EXPECT_NE(rows.points[2].coefficients.find("\"dataset\":\"b\""), std::string::npos) << rows.points[2].coefficients;
}

TEST(MapRecords, DamagedFoldersNameTheFile) {
    TempDir dir;
    write_map_files(a_map(), dir.path());
    const std::string csv = read_text_file(dir / "similarity.csv");
    write_bytes(dir / "similarity.csv", csv.substr(0, csv.rfind('\n', csv.size() - 2) + 1));
    auto e = testing::error_of([&] { read_map(dir.path()); });
    EXPECT_NE(e.find("similarity.csv: 3 rows, expected one per model (4)"), std::string::npos) << e;
    write_bytes(dir / "similarity.csv", csv);
    write_bytes(dir / "clusters.json", "[1, 2]");
    e = testing::error_of([&] { read_map(dir.path()); });
    EXPECT_NE(e.find("clusters.json: expected a JSON object"), std::string::npos) << e;
}

} // namespace
} // namespace basin

namespace basin {
namespace {

// A hull of 3 members, 4 samples and 2 outside models on two targets, with the given losses.
HullRecord hull_with_losses(const std::vector<std::pair<std::string, double>>& points) {
    HullRecord h;
    h.targets = {TargetInfo{}, TargetInfo{}};
    for (const auto& [set, loss] : points) {
        h.points.push_back({set + std::to_string(h.points.size()), set, {}});
        PointScore s;
        s.loss = loss;
        h.scores.push_back({s, s});
    }
    return h;
}

TEST(HullIntervals, ResamplesKeepSetsAndBracketThePooledPb) {
    // samples always better than members: every resample gives PB(In', In) = 1
    const HullRecord clear = hull_with_losses(
        {{"In", 2}, {"In", 3}, {"In", 4}, {"In'", 1}, {"In'", 1.5}, {"In'", 0.5}, {"In'", 1}, {"Ex", 9}, {"Ex", 0}});
    for (const auto& pb : hull_pb_resamples(clear, 200, 3))
        EXPECT_DOUBLE_EQ(pb[0], 1.0);
    // mixed: the resampled values spread around the pooled PB, and a seed repeats them
    const HullRecord mixed = hull_with_losses(
        {{"In", 1}, {"In", 3}, {"In", 5}, {"In'", 2}, {"In'", 4}, {"In'", 0}, {"In'", 6}, {"Ex", 3}, {"Ex", 1}});
    const auto draws = hull_pb_resamples(mixed, 500, 7);
    ASSERT_EQ(draws.size(), 500u);
    const double pooled = hull_pb(mixed.points, mixed.scores, {"a", "b"}).back().values[0].value;
    std::vector<double> values;
    for (const auto& d : draws)
        values.push_back(d[0]);
    EXPECT_LT(quantile(values, 0.025), pooled);
    EXPECT_GT(quantile(values, 0.975), pooled);
    EXPECT_EQ(hull_pb_resamples(mixed, 500, 7), draws);
}

} // namespace
} // namespace basin
