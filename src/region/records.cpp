#include "basin/region/records.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/json_file.h"
#include "basin/core/random.h"
#include "basin/core/stats.h"
#include "basin/core/strings.h"
#include "basin/data/table.h"
#include "basin/report/figure.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>

namespace basin {

namespace fs = std::filesystem;
using nlohmann::json;

double mean_over_targets(const std::vector<PointScore>& row, double PointScore::*field) {
    double s = 0;
    for (const auto& x : row)
        s += x.*field;
    return row.empty() ? NAN : s / double(row.size());
}

std::string weights_text(const std::vector<double>& weights) {
    std::string w;
    for (std::size_t i = 0; i < weights.size(); ++i)
        w += (i ? " " : "") + format_exact(weights[i]);
    return w;
}

std::string pb_name(std::size_t pair) {
    return std::string("PB(") + kPbPairs.at(pair)[0] + ", " + kPbPairs.at(pair)[1] + ")";
}

std::vector<PbRow> hull_pb(const std::vector<HullPoint>& points, const ScoreGrid& scores,
                           const std::vector<std::string>& targets) {
    auto losses = [&](const std::string& set, std::size_t d) {
        std::vector<double> v;
        for (std::size_t p = 0; p < points.size(); ++p)
            if (points[p].set == set) v.push_back(scores[p][d].loss);
        return v;
    };
    std::vector<PbRow> rows;
    PbRow all{kAllDatasets, {}};
    std::array<double, kPbPairs.size()> wins{};
    for (std::size_t d = 0; d < targets.size(); ++d) {
        PbRow row{targets[d], {}};
        for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
            row.values[k] = probability_better(losses(kPbPairs[k][0], d), losses(kPbPairs[k][1], d));
            wins[k] += row.values[k].value * double(row.values[k].pairs);
            all.values[k].pairs += row.values[k].pairs;
        }
        rows.push_back(row);
    }
    for (std::size_t k = 0; k < kPbPairs.size(); ++k)
        all.values[k].value = all.values[k].pairs ? wins[k] / double(all.values[k].pairs) : 0.0;
    rows.push_back(all);
    return rows;
}

std::vector<std::array<double, kPbPairs.size()>> hull_pb_resamples(const HullRecord& hull, std::size_t resamples,
                                                                   std::uint64_t seed) {
    std::map<std::string, std::vector<std::size_t>> of_set; // set -> point indices
    for (std::size_t p = 0; p < hull.points.size(); ++p)
        of_set[hull.points[p].set].push_back(p);
    std::mt19937_64 rng(seed);
    std::vector<std::array<double, kPbPairs.size()>> out;
    for (std::size_t b = 0; b < resamples; ++b) {
        std::map<std::string, std::vector<std::size_t>> drawn;
        for (const auto& [set, points] : of_set)
            for (std::size_t k = 0; k < points.size(); ++k)
                drawn[set].push_back(points[uniform_index(rng, points.size())]);
        std::array<double, kPbPairs.size()> pb{};
        for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
            const auto& xs = drawn[kPbPairs[k][0]];
            const auto& ys = drawn[kPbPairs[k][1]];
            double wins = 0, pairs = 0;
            for (std::size_t d = 0; d < hull.targets.size(); ++d)
                for (std::size_t x : xs)
                    for (std::size_t y : ys)
                        wins += hull.scores[x][d].loss <= hull.scores[y][d].loss, pairs += 1;
            pb[k] = pairs > 0 ? wins / pairs : std::numeric_limits<double>::quiet_NaN();
        }
        out.push_back(pb);
    }
    return out;
}

namespace {

// ---- pieces every record shares

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
            {"points_per_minute",
             t.wall_seconds > 0 ? 60.0 * double(t.points_built + t.points_cached) / t.wall_seconds : 0.0}};
}

ScoreTimes read_times(const json& summary, const fs::path& file) {
    const json& t = json_field(summary, "times", file);
    ScoreTimes out;
    out.wall_seconds = json_value<double>(t, "wall_seconds", file);
    out.build_seconds = json_value<double>(t, "build_seconds", file);
    out.extract_seconds = json_value<double>(t, "extract_seconds", file);
    out.fit_seconds = json_value<double>(t, "fit_seconds", file);
    out.points_built = json_value<std::size_t>(t, "points_built", file);
    out.points_cached = json_value<std::size_t>(t, "points_from_cache", file);
    return out;
}

json targets_json(const std::vector<TargetInfo>& targets) {
    json out = json::array();
    for (const auto& t : targets)
        out.push_back({{"name", t.name},
                       {"train", t.train},
                       {"test", t.test},
                       {"labels", t.labels},
                       {"train_examples", t.train_examples},
                       {"test_examples", t.test_examples},
                       {"sample", t.sample}});
    return out;
}

std::vector<TargetInfo> read_targets(const json& summary, const fs::path& file) {
    std::vector<TargetInfo> out;
    for (const auto& t : json_field(summary, "datasets", file)) {
        TargetInfo info;
        info.name = json_value<std::string>(t, "name", file);
        info.train = json_value<std::string>(t, "train", file);
        info.test = json_value<std::string>(t, "test", file);
        info.labels = json_value<std::vector<std::string>>(t, "labels", file);
        info.train_examples = json_value<std::size_t>(t, "train_examples", file);
        info.test_examples = json_value<std::size_t>(t, "test_examples", file);
        info.sample = json_value<std::string>(t, "sample", file);
        out.push_back(std::move(info));
    }
    BASIN_CHECK(!out.empty(), file.string(), ": 'datasets' is empty");
    return out;
}

std::vector<std::string> target_names(const std::vector<TargetInfo>& targets) {
    std::vector<std::string> names;
    for (const auto& t : targets)
        names.push_back(t.name);
    return names;
}

std::string score_columns() {
    return "loss,accuracy,train_loss,train_accuracy,converged,features_cached";
}

// exact digits: a reader gets back the very doubles the study computed
std::string score_cells(const PointScore& s) {
    return format_exact(s.loss) + "," + format_exact(s.accuracy) + "," + format_exact(s.train_loss) + "," +
           format_exact(s.train_accuracy) + "," + (s.converged ? "1" : "0") + "," + (s.cached ? "1" : "0");
}

// A CSV field in quotes, inner quotes doubled (RFC 4180): point names are paths.
std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}
// Quoted only when it must be (a dataset folder's name with a comma or quote).
std::string field_text(const std::string& text) {
    return text.find_first_of(",\"\r\n") == std::string::npos ? text : quoted(text);
}

PointScore read_score(const CsvTable& table, const CsvTable::Row& row) {
    PointScore s;
    s.loss = table.number(row, "loss");
    s.accuracy = table.number(row, "accuracy");
    s.train_loss = table.number(row, "train_loss");
    s.train_accuracy = table.number(row, "train_accuracy");
    s.converged = table.number(row, "converged") != 0;
    s.cached = table.number(row, "features_cached") != 0;
    return s;
}

// Fills scores[point][target] from a score table, one row per (point, target); every cell must
// be there exactly once.
class GridFiller {
  public:
    GridFiller(const CsvTable& table, const std::vector<TargetInfo>& targets, std::size_t points)
        : table_(table), names_(target_names(targets)), grid_(points, std::vector<PointScore>(targets.size())),
          seen_(points, std::vector<bool>(targets.size(), false)) {}

    void add(const CsvTable::Row& row, std::size_t point) {
        const std::string& dataset = table_.text(row, "dataset");
        const auto at = std::find(names_.begin(), names_.end(), dataset);
        BASIN_CHECK(at != names_.end(), table_.file().string(), ":", row.line, ": dataset '", dataset,
                    "' is not one of summary.json's datasets");
        const std::size_t d = std::size_t(at - names_.begin());
        BASIN_CHECK(point < grid_.size(), table_.file().string(), ":", row.line, ": point ", point + 1, " of ",
                    grid_.size());
        BASIN_CHECK(!seen_[point][d], table_.file().string(), ":", row.line, ": a second score for this point on ",
                    dataset);
        grid_[point][d] = read_score(table_, row);
        seen_[point][d] = true;
    }
    ScoreGrid finish() {
        for (std::size_t p = 0; p < grid_.size(); ++p)
            for (std::size_t d = 0; d < names_.size(); ++d)
                BASIN_CHECK(seen_[p][d], table_.file().string(), ": no score for point ", p + 1, " on ", names_[d]);
        return std::move(grid_);
    }

  private:
    const CsvTable& table_;
    std::vector<std::string> names_;
    ScoreGrid grid_;
    std::vector<std::vector<bool>> seen_;
};

std::vector<double> split_weights(const std::string& text, const CsvTable& table, const CsvTable::Row& row) {
    std::vector<double> out;
    std::istringstream in(text);
    for (std::string cell; in >> cell;) {
        const auto v = parse_finite(cell);
        BASIN_CHECK(v, table.file().string(), ":", row.line, ": weight '", cell, "' is not a number");
        out.push_back(*v);
    }
    return out;
}

// One figure per target and one of the mean over targets (when there are several).
template <class Draw> void per_target_figures(const std::vector<TargetInfo>& targets, Draw draw) {
    for (std::size_t d = 0; d <= targets.size(); ++d) {
        if (d == targets.size() && targets.size() == 1) break;
        const bool mean = d == targets.size();
        draw(mean ? std::nullopt : std::optional<std::size_t>(d),
             mean ? std::string("mean over datasets") : targets[d].name,
             mean ? std::string("mean") : file_safe_name(targets[d].name));
    }
}

double loss_of(const std::vector<PointScore>& row, std::optional<std::size_t> d) {
    return d ? row[*d].loss : mean_over_targets(row, &PointScore::loss);
}

} // namespace

// ---- interpolation

void write_interpolation_files(const InterpolationRecord& r, const fs::path& dir) {
    std::string csv = "alpha,dataset," + score_columns() + "\n";
    for (std::size_t p = 0; p < r.alphas.size(); ++p)
        for (std::size_t d = 0; d < r.targets.size(); ++d)
            csv += format_exact(r.alphas[p]) + "," + field_text(r.targets[d].name) + "," + score_cells(r.scores[p][d]) +
                   "\n";
    write_text_atomically(dir / "scores.csv", csv);
    json rows = json::array();
    for (std::size_t p = 0; p < r.alphas.size(); ++p)
        rows.push_back({{"alpha", r.alphas[p]},
                        {"mean_loss", mean_over_targets(r.scores[p], &PointScore::loss)},
                        {"mean_accuracy", mean_over_targets(r.scores[p], &PointScore::accuracy)}});
    const json summary = {{"command", "interpolate"},
                          {"A", r.a},
                          {"B", r.b},
                          {"extrapolate", r.extrapolate},
                          {"definition", "theta(alpha) = (1 - alpha) * A + alpha * B over the body"},
                          {"alphas", r.alphas},
                          {"datasets", targets_json(r.targets)},
                          {"mean", rows},
                          {"times", times_json(r.times)}};
    write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
    for (auto [field, label, stem] :
         {std::tuple{&PointScore::loss, "generalized loss", "interpolation-loss"},
          std::tuple{&PointScore::accuracy, "generalized accuracy", "interpolation-accuracy"}}) {
        std::vector<Series> series;
        for (std::size_t d = 0; d < r.targets.size(); ++d) {
            Series s{r.targets[d].name, r.alphas, {}};
            for (std::size_t p = 0; p < r.alphas.size(); ++p)
                s.y.push_back(r.scores[p][d].*field);
            series.push_back(s);
        }
        if (r.targets.size() > 1) {
            Series mean{"average", r.alphas, {}, true};
            for (std::size_t p = 0; p < r.alphas.size(); ++p)
                mean.y.push_back(mean_over_targets(r.scores[p], field));
            series.push_back(mean);
        }
        line_plot(series, "Interpolation: " + std::string(label), "alpha (0 = A, 1 = B)", label, r.extrapolate)
            .save((dir / stem).string());
    }
}

InterpolationRecord read_interpolation(const fs::path& dir) {
    const fs::path file = dir / "summary.json";
    const json s = read_json_object(file);
    InterpolationRecord r;
    r.a = json_value<std::string>(s, "A", file);
    r.b = json_value<std::string>(s, "B", file);
    r.alphas = json_value<std::vector<double>>(s, "alphas", file);
    // folders written before the field: an extrapolation is the line past its endpoints
    r.extrapolate = s.contains("extrapolate")
                        ? json_value<bool>(s, "extrapolate", file)
                        : std::any_of(r.alphas.begin(), r.alphas.end(), [](double a) { return a < 0 || a > 1; });
    r.targets = read_targets(s, file);
    r.times = read_times(s, file);
    const CsvTable table(dir / "scores.csv");
    GridFiller grid(table, r.targets, r.alphas.size());
    for (const auto& row : table.rows()) {
        const double a = table.number(row, "alpha");
        const auto at = std::find(r.alphas.begin(), r.alphas.end(), a);
        BASIN_CHECK(at != r.alphas.end(), table.file().string(), ":", row.line, ": alpha ", table.text(row, "alpha"),
                    " is not one of summary.json's alphas");
        grid.add(row, std::size_t(at - r.alphas.begin()));
    }
    r.scores = grid.finish();
    return r;
}

// ---- hull

// The 95% interval of the pooled PB ("all datasets"), from hull_pb_resamples (1,000, seed 0);
// summary.json only (derived: the reader recomputes nothing from it).
json pb_interval_json(const HullRecord& r) {
    json out = json::object();
    if (r.points.empty() || r.targets.empty()) return out;
    const auto draws = hull_pb_resamples(r, 1000, 0);
    for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
        std::vector<double> values;
        for (const auto& d : draws)
            if (!std::isnan(d[k])) values.push_back(d[k]);
        if (values.empty()) continue;
        out[pb_name(k)] = {
            {"low", quantile(values, 0.025)}, {"high", quantile(values, 0.975)}, {"resamples", draws.size()}};
    }
    return out;
}

void write_hull_files(const HullRecord& r, const fs::path& dir) {
    std::string csv = "point,set,dataset," + score_columns() + ",weights\n";
    for (std::size_t p = 0; p < r.points.size(); ++p)
        for (std::size_t d = 0; d < r.targets.size(); ++d)
            csv += quoted(r.points[p].name) + "," + r.points[p].set + "," + field_text(r.targets[d].name) + "," +
                   score_cells(r.scores[p][d]) + "," + weights_text(r.points[p].weights) + "\n";
    write_text_atomically(dir / "scores.csv", csv);
    json pb = json::object();
    for (const auto& row : r.pb) {
        json cells = json::object();
        for (std::size_t k = 0; k < kPbPairs.size(); ++k)
            cells[pb_name(k)] = {{"value", row.values[k].value}, {"pairs", row.values[k].pairs}};
        pb[row.dataset] = cells;
    }
    const json summary = {{"command", "hull"},
                          {"sources", r.sources},
                          {"members", r.members},
                          {"hull_samples", r.hull_samples},
                          {"outside", r.outside},
                          {"random", r.random},
                          {"random_norm", r.random_norm},
                          {"seed", r.seed},
                          {"datasets", targets_json(r.targets)},
                          {"pb", pb},
                          {"pb_interval", pb_interval_json(r)},
                          {"definition", "PB(X, Y): fraction of pairs (x in X, y in Y), on the same dataset, where "
                                         "x's generalized loss is no higher than y's"},
                          {"times", times_json(r.times)}};
    write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
    per_target_figures(r.targets, [&](std::optional<std::size_t> d, const std::string& name, const std::string& stem) {
        std::vector<Series> groups;
        for (const std::string set : {"In", "In'", "Ex"}) {
            Series s{set, {}, {}};
            for (std::size_t p = 0; p < r.points.size(); ++p)
                if (r.points[p].set == set) s.y.push_back(loss_of(r.scores[p], d));
            groups.push_back(s);
        }
        strip_plot(groups, "Generalized loss: " + name, "generalized loss").save((dir / ("hull-" + stem)).string());
    });
}

HullRecord read_hull(const fs::path& dir) {
    const fs::path file = dir / "summary.json";
    const json s = read_json_object(file);
    HullRecord r;
    r.sources = json_value<std::vector<std::string>>(s, "sources", file);
    r.members = json_value<std::size_t>(s, "members", file);
    r.hull_samples = json_value<std::size_t>(s, "hull_samples", file);
    r.outside = json_value<std::size_t>(s, "outside", file);
    r.random = json_value<std::size_t>(s, "random", file);
    r.random_norm = json_value<double>(s, "random_norm", file);
    r.seed = json_value<std::uint64_t>(s, "seed", file);
    r.targets = read_targets(s, file);
    r.times = read_times(s, file);
    const CsvTable table(dir / "scores.csv");
    std::map<std::string, std::size_t> index; // point name -> position, in first-seen order
    for (const auto& row : table.rows()) {
        const std::string& name = table.text(row, "point");
        if (index.count(name)) continue;
        const std::string& set = table.text(row, "set");
        BASIN_CHECK(set == "In" || set == "In'" || set == "Ex", table.file().string(), ":", row.line, ": set '", set,
                    "', expected In, In' or Ex");
        index[name] = r.points.size();
        r.points.push_back({name, set, split_weights(table.text(row, "weights"), table, row)});
    }
    GridFiller grid(table, r.targets, r.points.size());
    for (const auto& row : table.rows())
        grid.add(row, index.at(table.text(row, "point")));
    r.scores = grid.finish();
    const json& pb = json_field(s, "pb", file);
    std::vector<std::string> rows = target_names(r.targets);
    rows.push_back(kAllDatasets);
    for (const auto& dataset : rows) {
        const json& cells = json_field(pb, dataset, file);
        PbRow row{dataset, {}};
        for (std::size_t k = 0; k < kPbPairs.size(); ++k) {
            const json& cell = json_field(cells, pb_name(k), file);
            row.values[k] = {json_value<double>(cell, "value", file), json_value<std::size_t>(cell, "pairs", file)};
        }
        r.pb.push_back(row);
    }
    return r;
}

// ---- plane

void write_plane_files(const PlaneRecord& r, const fs::path& dir) {
    const std::size_t nx = r.grid.nx, ny = r.grid.ny;
    std::string csv =
        "i,j,u,v," + std::string(r.random ? "" : "weight_A,weight_B,weight_C,") + "dataset," + score_columns() + "\n";
    for (std::size_t j = 0; j < ny; ++j)
        for (std::size_t i = 0; i < nx; ++i) {
            const std::size_t p = j * nx + i;
            std::string w;
            if (!r.random)
                for (double v : r.weights[p])
                    w += format_exact(v) + ",";
            for (std::size_t d = 0; d < r.targets.size(); ++d)
                csv += std::to_string(i) + "," + std::to_string(j) + "," + format_exact(r.grid.x(i)) + "," +
                       format_exact(r.grid.y(j)) + "," + w + field_text(r.targets[d].name) + "," +
                       score_cells(r.scores[p][d]) + "\n";
        }
    write_text_atomically(dir / "grid.csv", csv);
    json marks = json::array();
    for (const auto& mk : r.markers)
        marks.push_back({{"model", mk.model}, {"u", mk.u}, {"v", mk.v}});
    json summary = {
        {"command", "plane"},
        {"models", r.models},
        {"kind", r.random ? "filter-normalised random plane around A" : "plane through A, B, C"},
        {"grid", {{"columns", nx}, {"rows", ny}, {"u", {r.grid.x0, r.grid.x1}}, {"v", {r.grid.y0, r.grid.y1}}}},
        {"markers", marks},
        {"datasets", targets_json(r.targets)},
        {"times", times_json(r.times)}};
    if (r.random)
        summary["seed"] = r.seed;
    else
        summary["basis"] = {{"|B - A|", r.basis.ab},
                            {"<C - A, u>", r.basis.c_u},
                            {"|C - A - <C - A, u> u|", r.basis.c_v},
                            {"definition", "u = (B - A) / |B - A|; v = C - A minus its u component, normalised"}};
    write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
    std::vector<Marker> markers;
    for (const auto& mk : r.markers)
        markers.push_back({mk.u, mk.v, mk.model});
    per_target_figures(r.targets, [&](std::optional<std::size_t> d, const std::string& name, const std::string& stem) {
        std::vector<std::vector<double>> values(ny, std::vector<double>(nx));
        for (std::size_t j = 0; j < ny; ++j)
            for (std::size_t i = 0; i < nx; ++i)
                values[j][i] = loss_of(r.scores[j * nx + i], d);
        surface_map(values, r.grid.x0, r.grid.x1, r.grid.y0, r.grid.y1, markers, "Generalized loss: " + name, "loss")
            .save((dir / ("plane-" + stem)).string());
    });
}

PlaneRecord read_plane(const fs::path& dir) {
    const fs::path file = dir / "summary.json";
    const json s = read_json_object(file);
    PlaneRecord r;
    r.models = json_value<std::vector<std::string>>(s, "models", file);
    r.random = s.contains("seed");
    if (r.random)
        r.seed = json_value<std::uint64_t>(s, "seed", file);
    else {
        const json& b = json_field(s, "basis", file);
        r.basis.ab = json_value<double>(b, "|B - A|", file);
        r.basis.c_u = json_value<double>(b, "<C - A, u>", file);
        r.basis.c_v = json_value<double>(b, "|C - A - <C - A, u> u|", file);
        r.basis.coordinates = {{{0.0, 0.0}, {r.basis.ab, 0.0}, {r.basis.c_u, r.basis.c_v}}};
    }
    const json& g = json_field(s, "grid", file);
    const auto u = json_value<std::array<double, 2>>(g, "u", file), v = json_value<std::array<double, 2>>(g, "v", file);
    r.grid = {
        json_value<std::size_t>(g, "columns", file), json_value<std::size_t>(g, "rows", file), u[0], u[1], v[0], v[1]};
    for (const auto& mk : json_field(s, "markers", file))
        r.markers.push_back({json_value<std::string>(mk, "model", file), json_value<double>(mk, "u", file),
                             json_value<double>(mk, "v", file)});
    r.targets = read_targets(s, file);
    r.times = read_times(s, file);
    const std::size_t points = r.grid.nx * r.grid.ny;
    if (!r.random) r.weights.resize(points);
    const CsvTable table(dir / "grid.csv");
    GridFiller grid(table, r.targets, points);
    for (const auto& row : table.rows()) {
        const std::size_t i = table.index(row, "i"), j = table.index(row, "j");
        BASIN_CHECK(i < r.grid.nx && j < r.grid.ny, table.file().string(), ":", row.line, ": point (", i, ", ", j,
                    ") outside the ", r.grid.nx, "x", r.grid.ny, " grid");
        const std::size_t p = j * r.grid.nx + i;
        if (!r.random)
            r.weights[p] = {table.number(row, "weight_A"), table.number(row, "weight_B"),
                            table.number(row, "weight_C")};
        grid.add(row, p);
    }
    r.scores = grid.finish();
    return r;
}

void write_search_files(const SearchRecord& r, const fs::path& dir) {
    std::string csv = "dataset,row,selection_loss,selection_accuracy," + score_columns() + ",weights,detail\n";
    std::string trials = "dataset,trial,selection_loss,weights\n";
    json targets = json::array();
    for (const auto& t : r.targets) {
        json rows = json::array();
        for (const auto& row : t.rows) {
            csv += field_text(t.target.name) + "," + row.name + "," + format_g(row.selection.loss, 17) + "," +
                   format_g(row.selection.accuracy, 17) + "," + score_cells(row.test) + "," +
                   weights_text(row.weights) + "," + quoted(row.detail) + "\n";
            rows.push_back({{"row", row.name},
                            {"weights", row.weights},
                            {"selection_loss", row.selection.loss},
                            {"selection_accuracy", row.selection.accuracy},
                            {"test_loss", row.test.loss},
                            {"test_accuracy", row.test.accuracy},
                            {"detail", row.detail}});
        }
        for (std::size_t k = 0; k < t.trial_losses.size(); ++k)
            trials += field_text(t.target.name) + "," + std::to_string(k + 1) + "," + format_g(t.trial_losses[k], 17) +
                      "," + weights_text(t.trial_weights[k]) + "\n";
        targets.push_back({{"dataset", t.target.name},
                           {"fit_examples", t.fit_examples},
                           {"held_out_examples", t.held_out_examples},
                           {"trials", t.trial_losses.size()},
                           {"stopped", t.stopped},
                           {"rows", rows}});
    }
    write_text_atomically(dir / "search.csv", csv);
    write_text_atomically(dir / "trials.csv", trials);
    json wins = json::object();
    for (const auto& w : r.wins)
        wins[w.against] = {{"wins", w.wins},
                           {"ties", w.ties},
                           {"losses", w.losses},
                           {"share", double(w.wins) / double(std::max<std::size_t>(1, w.wins + w.ties + w.losses))}};
    const json summary = {
        {"command", "search"},
        {"members", r.members},
        {"base", r.base},
        {"held_out", r.held_out},
        {"seed", r.seed},
        {"budget", r.budget},
        {"datasets", targets_json([&] {
             std::vector<TargetInfo> infos;
             for (const auto& t : r.targets)
                 infos.push_back(t.target);
             return infos;
         }())},
        {"targets", targets},
        {"wins", wins},
        {"definition", "wins: targets on which the searched point's generalized loss on the test split is lower than "
                       "the baseline's (ties: equal); the search saw only the training split"},
        {"times", times_json(r.times)}};
    write_text_atomically(dir / "summary.json", summary.dump(2) + "\n");
}

} // namespace basin
