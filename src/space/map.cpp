#include "basin/space/map.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/json_file.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/data/table.h"
#include "basin/io/adapter.h"
#include "basin/report/figure.h"
#include "basin/space/adapter_gram.h"
#include "basin/space/analysis.h"
#include "basin/space/sketch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <glob.h>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

namespace basin {
namespace {

using nlohmann::json;

std::string csv_cell(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char ch : s)
        out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return out + "\"";
}

std::string number(double v) {
    return format_g(v, 10);
}

// Short unique names for models: the folder name, or the full path where names collide.
std::vector<std::string> display_names(const std::vector<fs::path>& models) {
    std::map<std::string, int> count;
    for (const auto& m : models)
        ++count[m.filename().string()];
    std::vector<std::string> names;
    for (const auto& m : models)
        names.push_back(count[m.filename().string()] > 1 ? m.string() : m.filename().string());
    return names;
}

void write_matrix_csv(const fs::path& path, const SquareMatrix& m, const std::vector<std::string>& names) {
    std::ostringstream o;
    o << "model";
    for (const auto& n : names)
        o << "," << csv_cell(n);
    o << "\n";
    for (std::size_t i = 0; i < m.n; ++i) {
        o << csv_cell(names[i]);
        for (std::size_t j = 0; j < m.n; ++j)
            o << "," << number(m(i, j));
        o << "\n";
    }
    write_text_atomically(path, o.str());
}

json nan_to_null(double v) {
    return std::isfinite(v) ? json(v) : json(nullptr);
}

} // namespace

std::vector<fs::path> read_model_list(const fs::path& list) {
    std::ifstream in(list);
    BASIN_CHECK(in, list.string(), ": cannot open the model list");
    const fs::path dir = list.parent_path();
    std::vector<fs::path> models;
    std::set<fs::path> seen;
    std::string line;
    int line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        const std::string entry = trim(line);
        if (entry.empty() || entry[0] == '#') continue;
        const fs::path pattern = fs::path(entry).is_absolute() ? fs::path(entry) : dir / entry;
        std::vector<fs::path> found;
        if (entry.find_first_of("*?[") != std::string::npos) {
            glob_t g{};
            const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
            for (std::size_t i = 0; rc == 0 && i < g.gl_pathc; ++i)
                found.emplace_back(g.gl_pathv[i]);
            ::globfree(&g);
            BASIN_CHECK(!found.empty(), list.string(), ":", line_number, ": pattern '", entry, "' matches no path");
        } else {
            BASIN_CHECK(fs::exists(pattern), list.string(), ":", line_number, ": ", pattern.string(),
                        " does not exist");
            found.push_back(pattern);
        }
        for (const auto& f : found) {
            const fs::path canonical = canonical_or_absolute(f);
            BASIN_CHECK(seen.insert(canonical).second, list.string(), ":", line_number, ": ", f.string(),
                        " is listed twice");
            models.push_back(f.lexically_normal());
        }
    }
    return models;
}

std::vector<fs::path> read_group_models(const fs::path& file) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the groups file");
    std::size_t line_number = 0;
    std::vector<std::string> header, cells;
    read_trimmed_csv_record(in, header, line_number, file);
    BASIN_CHECK(!header.empty() && header[0] == "model", file.string(), ":", line_number,
                ": expected a header 'model,KIND[,KIND...]' (for example model,dataset,family)");
    std::vector<fs::path> models;
    while (read_trimmed_csv_record(in, cells, line_number, file)) {
        BASIN_CHECK(!cells[0].empty(), file.string(), ":", line_number, ": empty model");
        const fs::path p = cells[0];
        models.push_back(p.is_absolute() ? p : file.parent_path() / p);
    }
    return models;
}

namespace {

// The groups file's rows, each resolved to one of n models (resolve returns n for none, or fails);
// every model needs exactly one row. name(m): how a message names model m.
template <class Resolve, class Name>
ModelGroups read_groups(const fs::path& file, std::size_t n, Resolve&& resolve, Name&& name) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the groups file");
    std::size_t line_number = 0;
    std::vector<std::string> header;
    read_trimmed_csv_record(in, header, line_number, file);
    BASIN_CHECK(header.size() >= 2 && header[0] == "model", file.string(), ":", line_number,
                ": expected a header 'model,KIND[,KIND...]' (for example model,dataset,family)");
    ModelGroups g;
    g.kinds.assign(header.begin() + 1, header.end());
    g.labels.assign(g.kinds.size(), std::vector<std::string>(n));
    std::vector<bool> has_row(n, false);
    std::vector<std::string> cells;
    while (read_trimmed_csv_record(in, cells, line_number, file)) {
        BASIN_CHECK(cells.size() == header.size(), file.string(), ":", line_number, ": expected ", header.size(),
                    " fields, found ", cells.size());
        const std::size_t m = resolve(cells[0], line_number);
        BASIN_CHECK(m < n, file.string(), ":", line_number, ": '", cells[0], "' is not a listed model");
        BASIN_CHECK(!has_row[m], file.string(), ":", line_number, ": a second row for ", cells[0]);
        has_row[m] = true;
        for (std::size_t k = 0; k < g.kinds.size(); ++k) {
            BASIN_CHECK(!cells[k + 1].empty(), file.string(), ":", line_number, ": empty ", g.kinds[k]);
            g.labels[k][m] = cells[k + 1];
        }
    }
    for (std::size_t m = 0; m < n; ++m)
        BASIN_CHECK(has_row[m], file.string(), ": no row for model ", name(m));
    return g;
}

} // namespace

ModelGroups read_model_groups(const fs::path& file, const std::vector<fs::path>& models) {
    std::map<fs::path, std::size_t> by_path;
    std::map<std::string, std::vector<std::size_t>> by_name;
    for (std::size_t m = 0; m < models.size(); ++m) {
        by_path[canonical_or_absolute(models[m])] = m;
        by_name[models[m].filename().string()].push_back(m);
    }
    const fs::path dir = file.parent_path();
    auto resolve = [&](const std::string& cell, std::size_t line) {
        const fs::path as_path = fs::path(cell).is_absolute() ? fs::path(cell) : dir / cell;
        if (auto it = by_path.find(canonical_or_absolute(as_path)); it != by_path.end()) return it->second;
        if (auto named = by_name.find(cell); named != by_name.end()) {
            BASIN_CHECK(named->second.size() == 1, file.string(), ":", line, ": '", cell,
                        "' names several listed models; give its path");
            return named->second[0];
        }
        return models.size();
    };
    return read_groups(file, models.size(), resolve, [&](std::size_t m) { return models[m].string(); });
}

ModelGroups read_named_groups(const fs::path& file, const std::vector<std::string>& names) {
    std::map<std::string, std::size_t> index;
    for (std::size_t m = 0; m < names.size(); ++m)
        index[names[m]] = m;
    auto resolve = [&](const std::string& cell, std::size_t) {
        const auto it = index.find(cell);
        return it == index.end() ? names.size() : it->second;
    };
    return read_groups(file, names.size(), resolve, [&](std::size_t m) { return "'" + names[m] + "'"; });
}

namespace {

// The label kinds of the groups file over the models the Gram pass used (some may be skipped).
std::vector<MapLabelKind> label_kinds(const ModelGroups& all, const std::vector<fs::path>& inputs,
                                      const std::vector<fs::path>& used) {
    std::vector<std::size_t> used_index;
    for (const auto& m : used)
        used_index.push_back(static_cast<std::size_t>(std::find(inputs.begin(), inputs.end(), m) - inputs.begin()));
    std::vector<MapLabelKind> kinds;
    for (std::size_t k = 0; k < all.kinds.size(); ++k) {
        MapLabelKind kind;
        kind.name = all.kinds[k];
        std::set<std::string> distinct;
        for (std::size_t i : used_index)
            distinct.insert(all.labels[k][i]);
        kind.groups.assign(distinct.begin(), distinct.end());
        for (std::size_t i : used_index)
            kind.label.push_back(static_cast<int>(
                std::lower_bound(kind.groups.begin(), kind.groups.end(), all.labels[k][i]) - kind.groups.begin()));
        kinds.push_back(std::move(kind));
    }
    return kinds;
}

// The three clusterings into k clusters (spectral on the affinity, k-means on the PCA of the
// geometry's Gram matrix, average linkage on the cosine distance).
std::vector<MapClustering> cluster_models(const SquareMatrix& geometry, const SquareMatrix& affinity,
                                          const SquareMatrix& cosine_distance, int k, const MapOptions& options) {
    const Points pca_k = pca_from_gram(geometry, std::min<int>(k, static_cast<int>(geometry.n))).coordinates;
    // alphabetical, as clusters.json has always listed them
    std::vector<MapClustering> out(3);
    out[0].method = "agglomerative", out[0].clusters = agglomerative_average(cosine_distance, k);
    out[1].method = "kmeans_pca", out[1].clusters = kmeans(pca_k, k, options.seed);
    out[2].method = "spectral", out[2].clusters = spectral_clustering(affinity, k, options.seed, options.assign);
    return out;
}

// Each clustering scored against the kind's groups.
void score_against_groups(MapLabelKind& kind, std::vector<MapClustering> found, const SquareMatrix& cosine_distance) {
    const int k = static_cast<int>(kind.groups.size());
    for (auto& c : found) {
        const ClusterScore s = score_clusters(c.clusters, kind.label, k);
        c.accuracy = s.accuracy, c.macro_f1 = s.macro_f1, c.f1 = s.f1;
        c.silhouette = silhouette(cosine_distance, c.clusters);
        for (int gi : s.group_of_cluster)
            c.group_of_cluster.push_back(kind.groups[gi]);
        const ClusterScore majority = score_clusters_majority(c.clusters, kind.label, k);
        c.accuracy_majority = majority.accuracy, c.macro_f1_majority = majority.macro_f1, c.f1_majority = majority.f1;
        for (int gi : majority.group_of_cluster)
            c.group_of_cluster_majority.push_back(kind.groups[gi]);
    }
    kind.methods = std::move(found);
    kind.silhouette_of_groups = silhouette(cosine_distance, kind.label);
}

// t-SNE on the cosine distance, started from the PCA coordinates scaled to a std of 1e-4 (as
// scikit-learn's init="pca" does).
Points tsne_of(const SquareMatrix& cosine_distance, const Projection& pca) {
    const std::size_t n = cosine_distance.n;
    if (n < 3) return {};
    Points init = pca.coordinates;
    double mean = 0, var = 0;
    for (const auto& p : init)
        mean += p[0] / n;
    for (const auto& p : init)
        var += (p[0] - mean) * (p[0] - mean) / n;
    const double scale = var > 0 ? 1e-4 / std::sqrt(var) : 1.0;
    for (auto& p : init)
        for (auto& v : p)
            v *= scale;
    return tsne(cosine_distance, init, std::clamp((n - 1) / 3.0, 1.0, 30.0));
}

GramOptions with_progress(GramOptions gram, bool quiet) {
    if (!quiet && !gram.progress)
        gram.progress = [](const StreamProgress& p) {
            const double rate = p.seconds > 0 ? p.bytes_done / p.seconds : 0;
            const double left = rate > 0 ? (p.bytes_total - p.bytes_done) / rate : 0;
            std::fprintf(stderr, "map: %.2f of %.2f GB (%.0f%%), %.0f MB/s, %.0f s left\n", p.bytes_done / 1e9,
                         p.bytes_total / 1e9, 100.0 * p.bytes_done / std::max<std::uint64_t>(1, p.bytes_total),
                         rate / 1e6, left);
        };
    return gram;
}

// --query: each named model against the groups of the others (space/locate.h).
std::vector<MapLocation> locate_models(const MapRecord& r, const SquareMatrix& cosine, const SquareMatrix& gram,
                                       const std::vector<std::string>& names) {
    std::vector<std::size_t> queried;
    for (const auto& name : names) {
        const auto at = std::find(r.names.begin(), r.names.end(), name);
        BASIN_CHECK(at != r.names.end(), "map: --query ", name, ": not a model of the map");
        queried.push_back(std::size_t(at - r.names.begin()));
    }
    auto is_queried = [&](std::size_t i) { return std::find(queried.begin(), queried.end(), i) != queried.end(); };
    std::vector<MapLocation> out;
    for (std::size_t q : queried) {
        MapLocation loc;
        loc.model = r.names[q];
        std::vector<std::pair<double, std::size_t>> by_cosine;
        for (std::size_t i = 0; i < r.names.size(); ++i)
            if (!is_queried(i)) by_cosine.emplace_back(-cosine(q, i), i);
        std::sort(by_cosine.begin(), by_cosine.end());
        for (std::size_t k = 0; k < std::min<std::size_t>(5, by_cosine.size()); ++k)
            loc.nearest.emplace_back(r.names[by_cosine[k].second], -by_cosine[k].first);
        for (const auto& kind : r.kinds) {
            MapLocation::Kind fits;
            fits.kind = kind.name; // a label < 0: a model from outside the map (locate_in_map)
            if (kind.label[q] >= 0) fits.actual = kind.groups[std::size_t(kind.label[q])];
            double best = std::numeric_limits<double>::infinity();
            for (std::size_t g = 0; g < kind.groups.size(); ++g) {
                MapGroupFit group;
                group.group = kind.groups[g];
                std::vector<std::size_t> members;
                for (std::size_t i = 0; i < r.names.size(); ++i)
                    if (!is_queried(i) && kind.label[i] == int(g))
                        members.push_back(i), group.members.push_back(r.names[i]);
                if (members.empty()) continue;
                group.mean_cosine = 0;
                for (std::size_t i : members)
                    group.mean_cosine += cosine(q, i) / double(members.size());
                group.fit = fit_to_hull(gram, q, members);
                if (group.fit.convex_distance < best) best = group.fit.convex_distance, fits.predicted = group.group;
                fits.groups.push_back(std::move(group));
            }
            loc.kinds.push_back(std::move(fits));
        }
        out.push_back(std::move(loc));
    }
    return out;
}

json locations_json(const std::vector<MapLocation>& locations) {
    json out = json::array();
    for (const auto& loc : locations) {
        json nearest = json::array(), kinds = json::array();
        for (const auto& [name, c] : loc.nearest)
            nearest.push_back({{"model", name}, {"cosine", c}});
        for (const auto& k : loc.kinds) {
            json groups = json::array();
            for (const auto& g : k.groups) {
                json weights = json::object();
                for (std::size_t i = 0; i < g.members.size(); ++i)
                    weights[g.members[i]] = g.fit.weights[i];
                groups.push_back({{"group", g.group},
                                  {"mean_cosine", g.mean_cosine},
                                  {"convex_hull_distance", g.fit.convex_distance},
                                  {"affine_hull_distance", g.fit.affine_distance},
                                  {"weights", weights}});
            }
            // (a model located from outside the map has no label: actual and correct are null)
            const bool labelled = !k.actual.empty();
            kinds.push_back({{"kind", k.kind},
                             {"predicted", k.predicted},
                             {"actual", labelled ? json(k.actual) : json(nullptr)},
                             {"correct", labelled ? json(k.predicted == k.actual) : json(nullptr)},
                             {"groups", groups}});
        }
        out.push_back({{"model", loc.model}, {"nearest", nearest}, {"kinds", kinds}});
    }
    return out;
}

// Everything a map computes from the cosine matrix and, where known, the raw Gram matrix: r has
// its names and label kinds; cosine, distance, PCA, t-SNE and the clusterings are filled.
void analyse(MapRecord& r, const SquareMatrix& cosine, const std::optional<SquareMatrix>& gram,
             const MapOptions& options) {
    const std::size_t n = cosine.n;
    r.cosine = cosine;
    r.geometry = map_geometry_name(options.geometry), r.assign = spectral_assign_name(options.assign);
    if (gram)
        r.distance = distance_from_gram(*gram);
    else
        r.not_computed.push_back("distance (the task vectors' norms are needed: give --norms or --gram)");
    BASIN_CHECK(options.geometry == MapGeometry::cosine || gram,
                "map: --geometry raw needs the task vectors' norms (give --norms or --gram)");
    // the cosine geometry: unit-length vectors, whose Gram matrix is the cosine matrix
    const SquareMatrix& geometry = options.geometry == MapGeometry::cosine ? cosine : *gram;
    SquareMatrix cosine_distance(n), affinity(n);
    for (std::size_t k = 0; k < n * n; ++k) {
        cosine_distance.values[k] = std::max(0.0, 1.0 - cosine.values[k]);
        affinity.values[k] = (cosine.values[k] + 1.0) / 2.0; // PAPER.md: affinity = (cos + 1) / 2
    }
    for (std::size_t i = 0; i < n; ++i)
        cosine_distance(i, i) = 0;
    r.pca = pca_from_gram(geometry, 2);
    r.tsne = tsne_of(cosine_distance, r.pca);
    for (auto& kind : r.kinds) {
        const int k = static_cast<int>(kind.groups.size());
        if (k >= 2 && static_cast<std::size_t>(k) <= n)
            score_against_groups(kind, cluster_models(geometry, affinity, cosine_distance, k, options),
                                 cosine_distance);
        kind.similarity = group_similarity(r.cosine, kind.label, k);
    }
    if (r.kinds.empty() && options.clusters >= 2 && static_cast<std::size_t>(options.clusters) <= n)
        r.unlabelled = cluster_models(geometry, affinity, cosine_distance, options.clusters, options);
    for (const auto& fine : r.kinds)
        for (const auto& coarse : r.kinds)
            if (&fine != &coarse && is_nested(fine.label, coarse.label))
                r.nestings.push_back({fine.name, coarse.name, nested_pairs(cosine, fine.label, coarse.label)});
    if (!options.query.empty()) {
        BASIN_CHECK(gram, "map: --query needs the task vectors' norms (give --norms or --gram)");
        r.locations = locate_models(r, cosine, *gram, options.query);
    }
    if (options.bootstrap > 0 && !r.kinds.empty()) {
        // resampled within the finest kind: one nested in another, else the one with most groups
        std::vector<KindLabels> kinds;
        std::size_t finest = 0;
        for (std::size_t k = 0; k < r.kinds.size(); ++k) {
            kinds.push_back({r.kinds[k].name, r.kinds[k].label, static_cast<int>(r.kinds[k].groups.size())});
            if (kinds[k].groups > kinds[finest].groups) finest = k;
        }
        for (const auto& nest : r.nestings)
            for (std::size_t k = 0; k < kinds.size(); ++k)
                if (kinds[k].name == nest.fine) finest = k;
        UncertaintyOptions u;
        u.resamples = u.permutations = options.bootstrap;
        u.seed = options.seed, u.assign = options.assign;
        r.uncertainty = map_uncertainty(cosine, kinds, finest, u);
    }
}

void check_map_inputs(const std::vector<fs::path>& models, const MapOptions& options) {
    BASIN_CHECK(options.reference == "base" || options.reference == "mean", "--reference: expected base or mean, got '",
                options.reference, "'");
    BASIN_CHECK(models.size() >= 2, "map: needs at least 2 models, got ", models.size());
    std::set<fs::path> seen;
    for (const auto& m : models)
        BASIN_CHECK(seen.insert(canonical_or_absolute(m)).second, "map: ", m.string(), " is given twice");
}

} // namespace

namespace {

// What --update and locate need of a map (map_state.h): the Gram matrices, the hashes, the settings.
MapState state_of(const MapRecord& r, const GramResult& g, const fs::path& groups_file, const MapOptions& options) {
    MapState s;
    s.base = canonical_or_absolute(r.base).string();
    s.base_digest = g.base_digest, s.digests = g.digests;
    for (const auto& m : g.models)
        s.paths.push_back(canonical_or_absolute(m).string());
    s.include = options.gram.include, s.exclude = options.gram.exclude, s.precision = r.precision;
    s.per_layer = options.gram.per_layer, s.skip_mismatched = options.gram.skip_mismatched;
    s.parameters = g.parameters, s.body_sha256 = body_digest(g.body);
    s.layers = g.layers, s.layer_parameters = g.layer_parameters;
    s.gram = g.gram;
    if (s.per_layer) s.layer_gram = g.layer_gram;
    s.reference = options.reference, s.assign = r.assign, s.geometry = r.geometry;
    s.groups = groups_file.empty() ? "" : canonical_or_absolute(groups_file).string();
    s.seed = options.seed, s.bootstrap = options.bootstrap, s.clusters = options.clusters;
    for (const auto& kind : r.kinds) {
        s.kinds.push_back(kind.name);
        s.labels.emplace_back();
        for (int label : kind.label)
            s.labels.back().push_back(kind.groups[std::size_t(label)]);
    }
    return s;
}

// A checkpoint map's record from its Gram pass: names, labels (of all_groups, read for inputs),
// every analysis, the stream facts and the state.
MapRecord record_from_gram(const fs::path& base, const GramResult& g, const ModelGroups& all_groups,
                           const std::vector<fs::path>& inputs, const fs::path& groups_file,
                           const MapOptions& options) {
    MapRecord r;
    r.base = base.string(), r.reference = options.reference;
    r.names = display_names(g.models);
    for (const auto& m : g.models)
        r.paths.push_back(m.string());
    r.kinds = label_kinds(all_groups, inputs, g.models);

    const bool centred = options.reference == "mean";
    analyse(r, cosine_from_gram(centred ? centered_gram(g.gram) : g.gram), g.gram, options);

    r.per_layer = options.gram.per_layer;
    r.layers = g.layers, r.layer_parameters = g.layer_parameters;
    if (r.per_layer)
        for (std::size_t l = 0; l < g.layers.size(); ++l) {
            r.layer_cosine.push_back(cosine_from_gram(centred ? centered_gram(g.layer_gram[l]) : g.layer_gram[l]));
            r.layer_distance.push_back(distance_from_gram(g.layer_gram[l]));
        }
    r.parameters = g.parameters, r.chunk_parameters = g.chunk_parameters, r.gram_pairs = g.pairs;
    r.excluded = g.excluded;
    for (const auto& [path, why] : g.skipped)
        r.skipped.push_back({path.string(), why});
    r.precision = options.gram.precision == GramPrecision::bf16 ? "bf16" : "f32";
    r.memory_limit = options.gram.memory_limit, r.bytes_read = g.bytes_read, r.peak_rss = g.peak_rss;
    r.seconds = g.seconds, r.threads = options.gram.threads;
    r.state = state_of(r, g, groups_file, options);
    return r;
}

} // namespace

MapRecord map_models(const fs::path& base, const std::vector<fs::path>& model_paths, const fs::path& groups_file,
                     const MapOptions& options) {
    check_map_inputs(model_paths, options);
    ModelGroups all_groups;
    if (!groups_file.empty()) all_groups = read_model_groups(groups_file, model_paths);
    const GramResult g = zoo_gram(base, model_paths, with_progress(options.gram, options.quiet));
    return record_from_gram(base, g, all_groups, model_paths, groups_file, options);
}

MapOptions map_options_of(const MapState& s) {
    MapOptions o;
    o.gram = map_pass_options(s, o.gram);
    o.reference = s.reference, o.assign = parse_spectral_assign(s.assign), o.geometry = parse_map_geometry(s.geometry);
    o.seed = s.seed, o.bootstrap = s.bootstrap, o.clusters = s.clusters;
    return o;
}

MapRecord update_map(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models,
                     const fs::path& groups_file, const MapOptions& options_in) {
    MapOptions options = options_in;
    options.gram = map_pass_options(state, options.gram); // the pass as the map made it
    check_map_state_inputs(state, dir, new_models);
    std::vector<fs::path> all(state.paths.begin(), state.paths.end());
    all.insert(all.end(), new_models.begin(), new_models.end());
    check_map_inputs(all, options);
    ModelGroups all_groups;
    if (!groups_file.empty()) all_groups = read_model_groups(groups_file, all);
    const GramResult g = extend_gram(state, dir, new_models, with_progress(options.gram, options.quiet));
    MapRecord r = record_from_gram(state.base, g, all_groups, all, groups_file, options);
    r.updated_from = state.paths.size();
    return r;
}

std::vector<MapLocation> locate_in_map(const MapState& state, const fs::path& dir,
                                       const std::vector<fs::path>& new_models, const GramOptions& pass, bool quiet) {
    check_map_state_inputs(state, dir, new_models);
    const GramResult g = extend_gram(state, dir, new_models, with_progress(pass, quiet));
    MapRecord r;
    r.names = display_names(g.models);
    // the map's labels for its own models; the new ones have none (-1)
    const std::size_t known = state.paths.size();
    const std::vector<fs::path> old(state.paths.begin(), state.paths.end());
    r.kinds = label_kinds({state.kinds, state.labels}, old, old);
    for (auto& kind : r.kinds)
        kind.label.resize(g.models.size(), -1);
    const SquareMatrix cosine = cosine_from_gram(state.reference == "mean" ? centered_gram(g.gram) : g.gram);
    const std::vector<std::string> fresh(r.names.begin() + std::ptrdiff_t(known), r.names.end());
    return locate_models(r, cosine, g.gram, fresh);
}

std::string locations_text(const std::vector<MapLocation>& locations) {
    return locations_json(locations).dump(2) + "\n";
}

namespace {

MapSummary summary_of(const MapRecord& r) {
    MapSummary summary;
    summary.models = r.names.size();
    summary.updated_from = r.updated_from;
    summary.parameters = r.parameters;
    summary.seconds = r.seconds;
    for (const auto& kind : r.kinds)
        for (const auto& m : kind.methods)
            if (m.method == "spectral") summary.spectral_accuracy[kind.name] = m.accuracy;
    return summary;
}

} // namespace

MapSummary run_map(const fs::path& base, const std::vector<fs::path>& model_paths, const fs::path& groups_file,
                   const fs::path& out_arg, const MapOptions& options) {
    check_map_inputs(model_paths, options);
    const fs::path out = check_output_folder(out_arg, options.overwrite); // before the long pass
    const MapRecord r = map_models(base, model_paths, groups_file, options);
    write_folder_atomically(out, [&](const fs::path& dir) { write_map_files(r, dir); });
    return summary_of(r);
}

MapSummary run_map_update(const MapState& state, const fs::path& dir, const std::vector<fs::path>& new_models,
                          const fs::path& groups_file, const fs::path& out_arg, const MapOptions& options) {
    // the map's own folder is replaced (overwrite); another must be new or empty unless overwrite
    const bool in_place = canonical_or_absolute(out_arg) == canonical_or_absolute(dir);
    const fs::path out = check_output_folder(out_arg, options.overwrite || in_place);
    const MapRecord r = update_map(state, dir, new_models, groups_file, options);
    write_folder_atomically(out, [&](const fs::path& d) { write_map_files(r, d); });
    return summary_of(r);
}

MapRecord map_similarity(const GivenSimilarity& similarity, const ModelGroups& groups, const MapOptions& options) {
    BASIN_CHECK(options.reference == "base", "map: --reference does not apply to a given matrix (",
                similarity.file.string(), "): its cosines are used as they are");
    BASIN_CHECK(groups.labels.size() == groups.kinds.size(), "map: ", groups.kinds.size(), " label kinds but ",
                groups.labels.size(), " label lists");
    for (std::size_t k = 0; k < groups.kinds.size(); ++k)
        BASIN_CHECK(groups.labels[k].size() == similarity.names.size(), "map: groups '", groups.kinds[k],
                    "': ", groups.labels[k].size(), " labels for the ", similarity.names.size(), " models of ",
                    similarity.file.string());
    MapRecord r;
    r.reference = "given";
    r.similarity_file = similarity.file.string();
    r.names = similarity.names, r.paths = similarity.names;
    if (!groups.kinds.empty()) {
        std::vector<fs::path> as_paths(similarity.names.begin(), similarity.names.end());
        r.kinds = label_kinds(groups, as_paths, as_paths);
    }
    analyse(r, similarity.cosine, similarity.gram, options);
    r.layers = {"all"};
    return r;
}

MapRecord map_similarity(const GivenSimilarity& similarity, const fs::path& groups_file, const MapOptions& options) {
    return map_similarity(
        similarity, groups_file.empty() ? ModelGroups{} : read_named_groups(groups_file, similarity.names), options);
}

MapSummary run_map_similarity(const GivenSimilarity& similarity, const fs::path& groups_file, const fs::path& out_arg,
                              const MapOptions& options) {
    const fs::path out = check_output_folder(out_arg, options.overwrite);
    const MapRecord r = map_similarity(similarity, groups_file, options);
    write_folder_atomically(out, [&](const fs::path& dir) { write_map_files(r, dir); });
    return summary_of(r);
}

MapSummary run_sketch_map(const fs::path& base_arg, const std::vector<fs::path>& new_models,
                          const fs::path& groups_file, const fs::path& out_arg, const MapOptions& options,
                          const SketchMapOptions& sk) {
    const auto start = std::chrono::steady_clock::now();
    BASIN_CHECK(options.reference == "base", "map --sketch: --reference mean is not supported (a sketch is of "
                                             "model - base)");
    BASIN_CHECK(!options.gram.per_layer, "map --sketch: --per-layer is not supported");
    GramOptions pass = options.gram;
    fs::path base = base_arg;
    std::size_t k = sk.k;
    std::uint64_t seed = sk.seed;
    json previous;
    if (!sk.previous.empty()) { // the earlier map's settings are this one's
        const fs::path file = sk.previous / "sketch.json";
        BASIN_CHECK(fs::exists(file), sk.previous.string(), ": no sketch.json (not a sketch map)");
        previous = read_json_file(file, limits::config_json);
        BASIN_CHECK(previous.value("format", "") == "basin sketch map", file.string(), ": not a basin sketch map");
        base = json_value<std::string>(previous, "base", file);
        k = json_value<std::size_t>(previous, "k", file), seed = json_value<std::uint64_t>(previous, "seed", file);
        pass.include = previous.value("include", ""), pass.exclude = previous.value("exclude", "");
    }
    const CheckpointTensors base_tensors(find_weights(model_folder(base)));
    const SketchBody body = sketch_body(base_tensors, pass);
    std::vector<ModelSketch> sketches;
    std::vector<fs::path> paths;
    if (!previous.is_null()) {
        const fs::path file = sk.previous / "sketch.json";
        BASIN_CHECK(previous.value("body_digest", "") == body.digest, file.string(), ": the base ", base.string(),
                    " no longer has the body the sketches were made over");
        for (const auto& m : json_field(previous, "models", file)) {
            const fs::path sketch_file = sk.previous / json_value<std::string>(m, "sketch", file);
            sketches.push_back(read_sketch(sketch_file, k, seed, body.digest));
            paths.push_back(json_value<std::string>(m, "path", file));
        }
    }
    const std::size_t old = sketches.size();
    paths.insert(paths.end(), new_models.begin(), new_models.end());
    check_map_inputs(paths, options);
    sketches.resize(paths.size());
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic) num_threads(std::max(1, pass.threads))
    for (std::size_t i = old; i < paths.size(); ++i) {
        try {
            sketches[i] = sketch_model(base_tensors, body, paths[i], k, seed);
        } catch (...) {
#pragma omp critical
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
    GramResult g;
    g.models = paths;
    g.gram = sketched_gram(sketches, pass.threads);
    g.layer_gram = {g.gram};
    g.body = body.tensors, g.parameters = body.parameters;
    g.layers = {"all"}, g.layer_parameters = {body.parameters};
    g.digests.assign(paths.size(), 0);
    for (std::size_t i = old; i < paths.size(); ++i)
        g.bytes_read +=
            fs::file_size(!is_adapter_folder(paths[i])                         ? find_weights(model_folder(paths[i]))
                          : fs::exists(paths[i] / "adapter_model.safetensors") ? paths[i] / "adapter_model.safetensors"
                                                                               : paths[i] / "adapter_model.bin");
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const ModelGroups groups = groups_file.empty() ? ModelGroups{} : read_model_groups(groups_file, paths);
    MapRecord r = record_from_gram(base, g, groups, paths, groups_file, options);
    r.state = MapState{}; // not an exact map: --update reads its sketches instead
    SquareMatrix bound(paths.size());
    for (std::size_t i = 0; i < paths.size(); ++i)
        for (std::size_t j = 0; j < paths.size(); ++j)
            bound(i, j) = i == j ? 0.0 : sketch_cosine_bound(r.cosine(i, j), k);
    json models = json::array();
    char name[32];
    for (std::size_t i = 0; i < paths.size(); ++i) {
        std::snprintf(name, sizeof name, "sketches/%05zu.safetensors", i);
        models.push_back({{"path", paths[i].string()}, {"sketch", name}});
    }
    const json record = {
        {"format", "basin sketch map"},
        {"base", canonical_or_absolute(base).string()},
        {"k", k},
        {"seed", seed},
        {"include", pass.include},
        {"exclude", pass.exclude},
        {"body_digest", body.digest},
        {"parameters", body.parameters},
        {"models", models},
        {"sketched_now", paths.size() - old},
        {"bound",
         {{"delta", 0.05},
          {"formula", "|c^ - c| <= sqrt((1 + c'^2) / (0.05 K)), c' = min(1, |c^| + sqrt(2 / K)): Chebyshev "
                      "on the CountSketch variance bound (|a|^2 |b|^2 + <a,b>^2) / K, exact norms"},
          {"largest", sketch_cosine_bound(1.0, k)}}},
    };
    const bool in_place = !sk.previous.empty() && canonical_or_absolute(out_arg) == canonical_or_absolute(sk.previous);
    const fs::path out = check_output_folder(out_arg, options.overwrite || in_place);
    write_folder_atomically(out, [&](const fs::path& dir) {
        write_map_files(r, dir);
        fs::create_directories(dir / "sketches");
        for (std::size_t i = 0; i < paths.size(); ++i)
            write_sketch(dir / models[i]["sketch"].get<std::string>(), sketches[i]);
        write_matrix_csv(dir / "sketch_bound.csv", bound, r.names);
        write_text_atomically(dir / "sketch.json", record.dump(2) + "\n");
    });
    MapSummary summary = summary_of(r);
    summary.updated_from = old;
    return summary;
}

MapGeometry parse_map_geometry(const std::string& name) {
    if (name == "cosine") return MapGeometry::cosine;
    if (name == "raw") return MapGeometry::raw;
    fail("--geometry: expected cosine or raw, got '", name, "'");
}

const char* map_geometry_name(MapGeometry geometry) {
    return geometry == MapGeometry::raw ? "raw" : "cosine";
}

// ---- the output folder

namespace {

json clusters_json(const MapRecord& r) {
    json out = json::object();
    for (const auto& kind : r.kinds) {
        json entry = {{"groups", kind.groups}, {"labels", kind.label}};
        json methods = json::object();
        for (const auto& m : kind.methods) {
            json f1 = json::object();
            for (std::size_t c = 0; c < kind.groups.size() && c < m.f1.size(); ++c)
                f1[kind.groups[c]] = m.f1[c];
            json f1_majority = json::object();
            for (std::size_t c = 0; c < kind.groups.size() && c < m.f1_majority.size(); ++c)
                f1_majority[kind.groups[c]] = m.f1_majority[c];
            json entry_of_method = {{"clusters", m.clusters}, {"group_of_cluster", m.group_of_cluster},
                                    {"accuracy", m.accuracy}, {"f1", f1},
                                    {"macro_f1", m.macro_f1}, {"silhouette", m.silhouette}};
            if (!m.group_of_cluster_majority.empty())
                entry_of_method["majority"] = {{"group_of_cluster", m.group_of_cluster_majority},
                                               {"accuracy", nan_to_null(m.accuracy_majority)},
                                               {"f1", f1_majority},
                                               {"macro_f1", nan_to_null(m.macro_f1_majority)}};
            methods[m.method] = entry_of_method;
        }
        if (!kind.methods.empty()) entry["silhouette_of_groups"] = kind.silhouette_of_groups;
        entry["methods"] = methods;
        out[kind.name] = entry;
    }
    if (!r.unlabelled.empty()) {
        json methods = json::object();
        for (const auto& m : r.unlabelled)
            methods[m.method] = m.clusters;
        out["unlabelled"] = {{"methods", methods}};
    }
    return out;
}

json interval_json(const Interval& i) {
    return {{"estimate", nan_to_null(i.estimate)}, {"low", nan_to_null(i.low)}, {"high", nan_to_null(i.high)}};
}

json test_json(const PermutationTest& t) {
    return {
        {"statistic", nan_to_null(t.statistic)}, {"p_value", nan_to_null(t.p_value)}, {"permutations", t.permutations}};
}

json uncertainty_json(const MapUncertainty& u) {
    json kinds = json::array(), nestings = json::array();
    for (const auto& k : u.kinds)
        kinds.push_back({{"kind", k.kind},
                         {"spectral_accuracy", interval_json(k.spectral_accuracy)},
                         {"silhouette", interval_json(k.silhouette)}});
    for (const auto& e : u.nestings)
        nestings.push_back({{"fine", e.fine},
                            {"coarse", e.coarse},
                            {"fine_gap", interval_json(e.fine_gap)},
                            {"coarse_gap", interval_json(e.coarse_gap)},
                            {"fine_structure", test_json(e.fine_structure)},
                            {"coarse_structure", test_json(e.coarse_structure)}});
    return {
        {"resampled_within", u.resampled_kind}, {"resamples", u.resamples}, {"kinds", kinds}, {"nestings", nestings}};
}

Interval read_interval(const json& j, const fs::path& file) {
    return {json_number_or_nan(j, "estimate", file), json_number_or_nan(j, "low", file),
            json_number_or_nan(j, "high", file)};
}

PermutationTest read_test(const json& j, const fs::path& file) {
    return {json_number_or_nan(j, "statistic", file), json_number_or_nan(j, "p_value", file),
            json_value<std::size_t>(j, "permutations", file)};
}

MapUncertainty read_uncertainty(const json& j, const fs::path& file) {
    MapUncertainty u;
    u.resampled_kind = json_value<std::string>(j, "resampled_within", file);
    u.resamples = json_value<std::size_t>(j, "resamples", file);
    for (const auto& k : json_field(j, "kinds", file))
        u.kinds.push_back({json_value<std::string>(k, "kind", file),
                           read_interval(json_field(k, "spectral_accuracy", file), file),
                           read_interval(json_field(k, "silhouette", file), file)});
    for (const auto& e : json_field(j, "nestings", file))
        u.nestings.push_back({json_value<std::string>(e, "fine", file), json_value<std::string>(e, "coarse", file),
                              read_interval(json_field(e, "fine_gap", file), file),
                              read_interval(json_field(e, "coarse_gap", file), file),
                              read_test(json_field(e, "fine_structure", file), file),
                              read_test(json_field(e, "coarse_structure", file), file)});
    return u;
}

json summary_json(const MapRecord& r) {
    json excluded = json::array(), skipped = json::array(), inputs = json::array();
    for (const auto& [name, why] : r.excluded)
        excluded.push_back({{"tensor", name}, {"reason", why}});
    for (const auto& [path, why] : r.skipped)
        skipped.push_back({{"model", path}, {"reason", why}});
    for (std::size_t i = 0; i < r.names.size(); ++i)
        inputs.push_back({{"name", r.names[i]}, {"path", r.paths[i]}});
    json accuracy = json::object(), accuracy_majority = json::object(), within = json::object();
    for (const auto& kind : r.kinds) {
        if (!kind.methods.empty()) {
            json a = json::object(), majority = json::object();
            for (const auto& m : kind.methods)
                a[m.method] = m.accuracy, majority[m.method] = nan_to_null(m.accuracy_majority);
            accuracy[kind.name] = a;
            accuracy_majority[kind.name] = majority;
        }
        const GroupSimilarity& gs = kind.similarity;
        json table = json::array();
        for (std::size_t c = 0; c < kind.groups.size(); ++c)
            table.push_back({{"group", kind.groups[c]},
                             {"members", gs.members[c]},
                             {"within", nan_to_null(gs.within[c])},
                             {"between", nan_to_null(gs.between[c])}});
        within[kind.name] = {{"within_mean", nan_to_null(gs.within_mean)},
                             {"between_mean", nan_to_null(gs.between_mean)},
                             {"groups", table}};
    }
    auto summary_entry = [](const Summary& x) {
        return json{{"pairs", x.n},
                    {"mean", nan_to_null(x.mean)},
                    {"median", nan_to_null(x.median)},
                    {"q05", nan_to_null(x.q05)},
                    {"q95", nan_to_null(x.q95)}};
    };
    json nestings = json::array();
    for (const auto& nest : r.nestings)
        nestings.push_back({{"fine", nest.fine},
                            {"coarse", nest.coarse},
                            {"same_fine", summary_entry(nest.pairs.same_fine)},
                            {"same_coarse", summary_entry(nest.pairs.same_coarse)},
                            {"different_coarse", summary_entry(nest.pairs.different_coarse)}});
    return {{"base", r.base},
            {"similarity_file", r.similarity_file},
            {"nested_pairs", nestings},
            {"uncertainty", uncertainty_json(r.uncertainty)},
            {"models", inputs},
            {"reference", r.reference},
            {"geometry", r.geometry},
            {"spectral_assign", r.assign},
            {"not_computed", r.not_computed},
            {"clustering_accuracy_majority", accuracy_majority},
            {"parameters", r.parameters},
            {"layers", r.layers},
            {"excluded_tensors", excluded},
            {"skipped_models", skipped},
            {"precision", r.precision},
            {"memory_limit_bytes", r.memory_limit},
            {"chunk_parameters", r.chunk_parameters},
            {"bytes_read", r.bytes_read},
            {"seconds", r.seconds},
            {"bytes_per_second", r.seconds > 0 ? r.bytes_read / r.seconds : 0.0},
            {"peak_rss_bytes", r.peak_rss},
            {"threads", r.threads},
            {"updated_from", r.updated_from},
            {"gram_pairs", r.gram_pairs},
            {"pca_explained_variance", r.pca.explained},
            {"clustering_accuracy", accuracy},
            {"similarity_within_between", within}};
}

std::string embedding_csv(const MapRecord& r) {
    std::ostringstream o;
    o << "model";
    for (const auto& kind : r.kinds)
        o << "," << csv_cell(kind.name);
    o << ",pca_1,pca_2,tsne_1,tsne_2\n";
    for (std::size_t i = 0; i < r.names.size(); ++i) {
        o << csv_cell(r.names[i]);
        for (const auto& kind : r.kinds)
            o << "," << csv_cell(kind.groups[kind.label[i]]);
        o << "," << number(r.pca.coordinates[i][0]) << "," << number(r.pca.coordinates[i][1]);
        if (!r.tsne.empty())
            o << "," << number(r.tsne[i][0]) << "," << number(r.tsne[i][1]) << "\n";
        else
            o << ",,\n";
    }
    return o.str();
}

std::string per_layer_csv(const MapRecord& r) {
    std::ostringstream o;
    o << "layer,parameters,model_a,model_b,cosine,distance\n";
    for (std::size_t l = 0; l < r.layers.size(); ++l)
        for (std::size_t i = 0; i < r.names.size(); ++i)
            for (std::size_t j = i + 1; j < r.names.size(); ++j)
                o << csv_cell(r.layers[l]) << "," << r.layer_parameters[l] << "," << csv_cell(r.names[i]) << ","
                  << csv_cell(r.names[j]) << "," << number(r.layer_cosine[l](i, j)) << ","
                  << number(r.layer_distance[l](i, j)) << "\n";
    return o.str();
}

// PCA and t-SNE scatter plots and the cosine heat map, models ordered by the first label kind.
void write_map_figures(const MapRecord& r, const fs::path& dir) {
    const std::size_t n = r.names.size();
    std::vector<int> colour(n, 0);
    std::vector<std::string> legend = {"models"};
    if (!r.kinds.empty()) colour = r.kinds[0].label, legend = r.kinds[0].groups;
    std::vector<std::pair<double, double>> xy;
    for (const auto& p : r.pca.coordinates)
        xy.emplace_back(p[0], p[1]);
    const std::string by = r.kinds.empty() ? "" : " by " + r.kinds[0].name;
    scatter_plot(xy, colour, legend, "Task vectors, PCA" + by,
                 "PC 1 (" + number(std::round(r.pca.explained[0] * 1000) / 10) + "%)",
                 "PC 2 (" + number(std::round((r.pca.explained.size() > 1 ? r.pca.explained[1] : 0) * 1000) / 10) +
                     "%)")
        .save((dir / "pca").string());
    if (!r.tsne.empty()) {
        xy.clear();
        for (const auto& p : r.tsne)
            xy.emplace_back(p[0], p[1]);
        scatter_plot(xy, colour, legend, "Task vectors, t-SNE on 1 - cosine" + by, "t-SNE 1", "t-SNE 2")
            .save((dir / "tsne").string());
    }
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return colour[a] < colour[b]; });
    std::vector<std::vector<double>> values(n, std::vector<double>(n));
    std::vector<std::string> ordered_names;
    std::vector<int> ordered_group;
    double low = 1;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j)
            values[i][j] = r.cosine(order[i], order[j]), low = std::min(low, values[i][j]);
        ordered_names.push_back(r.names[order[i]]);
        ordered_group.push_back(colour[order[i]]);
    }
    heatmap(values, ordered_names, ordered_group, "Cosine similarity of task vectors" + by, std::min(0.0, low), 1.0)
        .save((dir / "similarity").string());
}

// ---- reading a folder back

SquareMatrix read_matrix(const fs::path& file, const std::vector<std::string>& names) {
    const CsvTable t(file);
    BASIN_CHECK(t.rows().size() == names.size(), file.string(), ": ", t.rows().size(),
                " rows, expected one per model (", names.size(), ")");
    SquareMatrix m(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto& row = t.rows()[i];
        BASIN_CHECK(t.text(row, "model") == names[i], file.string(), ":", row.line, ": model '", t.text(row, "model"),
                    "', expected '", names[i], "' (summary.json's order)");
        for (std::size_t j = 0; j < names.size(); ++j)
            m(i, j) = t.number(row, names[j]);
    }
    return m;
}

MapClustering read_clustering(const std::string& method, const json& j, const fs::path& file,
                              const std::vector<std::string>& groups) {
    MapClustering c;
    c.method = method;
    if (j.is_array()) { // a run without groups lists the clusters only
        c.clusters = j.get<std::vector<int>>();
        return c;
    }
    c.clusters = json_value<std::vector<int>>(j, "clusters", file);
    c.group_of_cluster = json_value<std::vector<std::string>>(j, "group_of_cluster", file);
    c.accuracy = json_number_or_nan(j, "accuracy", file);
    c.macro_f1 = json_number_or_nan(j, "macro_f1", file);
    c.silhouette = json_number_or_nan(j, "silhouette", file);
    const json& f1 = json_field(j, "f1", file);
    for (const auto& g : groups)
        c.f1.push_back(json_number_or_nan(f1, g, file));
    if (j.contains("majority")) { // folders written before the majority rule have none
        const json& m = json_field(j, "majority", file);
        c.group_of_cluster_majority = json_value<std::vector<std::string>>(m, "group_of_cluster", file);
        c.accuracy_majority = json_number_or_nan(m, "accuracy", file);
        c.macro_f1_majority = json_number_or_nan(m, "macro_f1", file);
        const json& f1m = json_field(m, "f1", file);
        for (const auto& g : groups)
            c.f1_majority.push_back(json_number_or_nan(f1m, g, file));
    }
    return c;
}

} // namespace

void write_map_files(const MapRecord& r, const fs::path& dir) {
    write_matrix_csv(dir / "similarity.csv", r.cosine, r.names);
    if (r.distance.n) write_matrix_csv(dir / "distance.csv", r.distance, r.names);
    if (!r.locations.empty()) write_text_atomically(dir / "locate.json", locations_text(r.locations));
    if (!r.state.empty()) write_map_state(r.state, dir);
    write_text_atomically(dir / "embedding.csv", embedding_csv(r));
    if (r.per_layer) write_text_atomically(dir / "per_layer.csv", per_layer_csv(r));
    write_text_atomically(dir / "clusters.json", clusters_json(r).dump(2) + "\n");
    write_text_atomically(dir / "summary.json", summary_json(r).dump(2) + "\n");
    write_map_figures(r, dir);
}

MapRecord read_map(const fs::path& dir) {
    const fs::path summary_file = dir / "summary.json", clusters_file = dir / "clusters.json";
    const json s = read_json_object(summary_file), c = read_json_object(clusters_file);
    MapRecord r;
    r.base = json_value<std::string>(s, "base", summary_file);
    r.reference = json_value<std::string>(s, "reference", summary_file);
    // written since given matrices and the cosine geometry; before, k-means and PCA saw the raw
    // Gram matrix and spectral clustering used k-means
    r.similarity_file =
        s.contains("similarity_file") ? json_value<std::string>(s, "similarity_file", summary_file) : "";
    r.geometry = s.contains("geometry") ? json_value<std::string>(s, "geometry", summary_file) : "raw";
    r.assign = s.contains("spectral_assign") ? json_value<std::string>(s, "spectral_assign", summary_file) : "kmeans";
    if (s.contains("not_computed"))
        r.not_computed = json_value<std::vector<std::string>>(s, "not_computed", summary_file);
    if (s.contains("uncertainty"))
        r.uncertainty = read_uncertainty(json_field(s, "uncertainty", summary_file), summary_file);
    if (s.contains("nested_pairs"))
        for (const auto& e : json_field(s, "nested_pairs", summary_file)) {
            auto level = [&](const char* name) {
                const json& x = json_field(e, name, summary_file);
                return Summary{json_value<std::size_t>(x, "pairs", summary_file),
                               json_number_or_nan(x, "mean", summary_file),
                               json_number_or_nan(x, "median", summary_file),
                               json_number_or_nan(x, "q05", summary_file), json_number_or_nan(x, "q95", summary_file)};
            };
            r.nestings.push_back({json_value<std::string>(e, "fine", summary_file),
                                  json_value<std::string>(e, "coarse", summary_file),
                                  {level("same_fine"), level("same_coarse"), level("different_coarse")}});
        }
    for (const auto& m : json_field(s, "models", summary_file)) {
        r.names.push_back(json_value<std::string>(m, "name", summary_file));
        r.paths.push_back(json_value<std::string>(m, "path", summary_file));
    }
    r.parameters = json_value<std::int64_t>(s, "parameters", summary_file);
    r.layers = json_value<std::vector<std::string>>(s, "layers", summary_file);
    for (const auto& e : json_field(s, "excluded_tensors", summary_file))
        r.excluded.push_back(
            {json_value<std::string>(e, "tensor", summary_file), json_value<std::string>(e, "reason", summary_file)});
    for (const auto& e : json_field(s, "skipped_models", summary_file))
        r.skipped.push_back(
            {json_value<std::string>(e, "model", summary_file), json_value<std::string>(e, "reason", summary_file)});
    r.precision = json_value<std::string>(s, "precision", summary_file);
    r.memory_limit = json_value<std::uint64_t>(s, "memory_limit_bytes", summary_file);
    r.chunk_parameters = json_value<std::int64_t>(s, "chunk_parameters", summary_file);
    r.bytes_read = json_value<std::uint64_t>(s, "bytes_read", summary_file);
    r.seconds = json_value<double>(s, "seconds", summary_file);
    r.peak_rss = json_value<std::uint64_t>(s, "peak_rss_bytes", summary_file);
    r.threads = json_value<int>(s, "threads", summary_file);
    r.updated_from = s.contains("updated_from") ? json_value<std::size_t>(s, "updated_from", summary_file) : 0;
    r.gram_pairs = s.contains("gram_pairs") ? json_value<std::uint64_t>(s, "gram_pairs", summary_file) : 0;
    r.pca.explained = json_value<std::vector<double>>(s, "pca_explained_variance", summary_file);
    r.cosine = read_matrix(dir / "similarity.csv", r.names);
    if (fs::exists(dir / "distance.csv")) r.distance = read_matrix(dir / "distance.csv", r.names);

    const json& within = json_field(s, "similarity_within_between", summary_file);
    for (const auto& [name, entry] : c.items()) {
        if (name == "unlabelled") {
            for (const auto& [method, clusters] : json_field(entry, "methods", clusters_file).items())
                r.unlabelled.push_back(read_clustering(method, clusters, clusters_file, {}));
            continue;
        }
        MapLabelKind kind;
        kind.name = name;
        kind.groups = json_value<std::vector<std::string>>(entry, "groups", clusters_file);
        kind.label = json_value<std::vector<int>>(entry, "labels", clusters_file);
        BASIN_CHECK(kind.label.size() == r.names.size(), clusters_file.string(), ": '", name, "' labels ",
                    kind.label.size(), " models, expected ", r.names.size());
        for (const auto& [method, m] : json_field(entry, "methods", clusters_file).items())
            kind.methods.push_back(read_clustering(method, m, clusters_file, kind.groups));
        if (entry.contains("silhouette_of_groups"))
            kind.silhouette_of_groups = json_number_or_nan(entry, "silhouette_of_groups", clusters_file);
        const json& w = json_field(within, name, summary_file);
        kind.similarity.within_mean = json_number_or_nan(w, "within_mean", summary_file);
        kind.similarity.between_mean = json_number_or_nan(w, "between_mean", summary_file);
        for (const auto& g : json_field(w, "groups", summary_file)) {
            kind.similarity.members.push_back(json_value<int>(g, "members", summary_file));
            kind.similarity.within.push_back(json_number_or_nan(g, "within", summary_file));
            kind.similarity.between.push_back(json_number_or_nan(g, "between", summary_file));
        }
        r.kinds.push_back(std::move(kind));
    }
    // the kinds in the groups file's order, as embedding.csv has them
    const CsvTable embedding(dir / "embedding.csv");
    std::vector<MapLabelKind> ordered;
    for (const auto& column : embedding.header())
        for (auto& kind : r.kinds)
            if (kind.name == column) ordered.push_back(std::move(kind));
    BASIN_CHECK(ordered.size() == r.kinds.size(), embedding.file().string(),
                ": expected a column for each label kind of clusters.json");
    r.kinds = std::move(ordered);
    BASIN_CHECK(embedding.rows().size() == r.names.size(), embedding.file().string(), ": ", embedding.rows().size(),
                " rows, expected one per model (", r.names.size(), ")");
    for (const auto& row : embedding.rows()) {
        r.pca.coordinates.push_back({embedding.number(row, "pca_1"), embedding.number(row, "pca_2")});
        if (!embedding.text(row, "tsne_1").empty())
            r.tsne.push_back({embedding.number(row, "tsne_1"), embedding.number(row, "tsne_2")});
    }
    return r;
}

} // namespace basin
