#include "basin/space/map.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"
#include "basin/core/fs.h"
#include "basin/data/dataset.h"
#include "basin/report/figure.h"
#include "basin/space/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <glob.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace basin {
namespace {

using nlohmann::json;

// One CSV record with its cells trimmed; blank records and '#' comment lines are skipped.
bool read_trimmed_record(std::istream& in, std::vector<std::string>& cells, std::size_t& line,
                         const fs::path& path) {
    while (read_csv_record(in, ',', true, cells, line, path)) {
        for (auto& c : cells)
            c = trim(c);
        const bool blank = cells.size() == 1 && cells[0].empty();
        if (!blank && cells[0].rfind('#', 0) != 0) return true;
    }
    return false;
}

std::string csv_cell(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char ch : s)
        out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return out + "\"";
}

fs::path canonical_or_absolute(const fs::path& p) {
    std::error_code ec;
    auto c = fs::weakly_canonical(p, ec);
    return ec ? fs::absolute(p).lexically_normal() : c;
}

std::string number(double v) { return format_g(v, 10); }

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

void write_matrix_csv(const fs::path& path, const SquareMatrix& m,
                      const std::vector<std::string>& names) {
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
            BASIN_CHECK(!found.empty(), list.string(), ":", line_number, ": pattern '", entry,
                        "' matches no path");
        } else {
            BASIN_CHECK(fs::exists(pattern), list.string(), ":", line_number, ": ",
                        pattern.string(), " does not exist");
            found.push_back(pattern);
        }
        for (const auto& f : found) {
            const fs::path canonical = canonical_or_absolute(f);
            BASIN_CHECK(seen.insert(canonical).second, list.string(), ":", line_number, ": ",
                        f.string(), " is listed twice");
            models.push_back(f.lexically_normal());
        }
    }
    return models;
}

ModelGroups read_model_groups(const fs::path& file, const std::vector<fs::path>& models) {
    std::ifstream in(file);
    BASIN_CHECK(in, file.string(), ": cannot open the groups file");
    std::size_t line_number = 0;
    std::vector<std::string> header;
    read_trimmed_record(in, header, line_number, file);
    BASIN_CHECK(header.size() >= 2 && header[0] == "model", file.string(), ":", line_number,
                ": expected a header 'model,KIND[,KIND...]' (for example model,dataset,family)");
    ModelGroups g;
    g.kinds.assign(header.begin() + 1, header.end());
    g.labels.assign(g.kinds.size(), std::vector<std::string>(models.size()));
    std::map<fs::path, std::size_t> by_path;
    std::map<std::string, std::vector<std::size_t>> by_name;
    for (std::size_t m = 0; m < models.size(); ++m) {
        by_path[canonical_or_absolute(models[m])] = m;
        by_name[models[m].filename().string()].push_back(m);
    }
    std::vector<bool> has_row(models.size(), false);
    const fs::path dir = file.parent_path();
    std::vector<std::string> cells;
    while (read_trimmed_record(in, cells, line_number, file)) {
        BASIN_CHECK(cells.size() == header.size(), file.string(), ":", line_number, ": expected ",
                    header.size(), " fields, found ", cells.size());
        std::size_t m = models.size();
        const fs::path as_path =
            fs::path(cells[0]).is_absolute() ? fs::path(cells[0]) : dir / cells[0];
        if (auto it = by_path.find(canonical_or_absolute(as_path)); it != by_path.end()) {
            m = it->second;
        } else if (auto named = by_name.find(cells[0]); named != by_name.end()) {
            BASIN_CHECK(named->second.size() == 1, file.string(), ":", line_number, ": '", cells[0],
                        "' names several listed models; give its path");
            m = named->second[0];
        }
        BASIN_CHECK(m < models.size(), file.string(), ":", line_number, ": '", cells[0],
                    "' is not a listed model");
        BASIN_CHECK(!has_row[m], file.string(), ":", line_number, ": a second row for ", cells[0]);
        has_row[m] = true;
        for (std::size_t k = 0; k < g.kinds.size(); ++k) {
            BASIN_CHECK(!cells[k + 1].empty(), file.string(), ":", line_number, ": empty ",
                        g.kinds[k]);
            g.labels[k][m] = cells[k + 1];
        }
    }
    for (std::size_t m = 0; m < models.size(); ++m)
        BASIN_CHECK(has_row[m], file.string(), ": no row for model ", models[m].string());
    return g;
}

MapSummary run_map(const fs::path& base, const std::vector<fs::path>& model_paths,
                   const fs::path& groups_file, const fs::path& out_arg,
                   const MapOptions& options) {
    BASIN_CHECK(options.reference == "base" || options.reference == "mean",
                "--reference: expected base or mean, got '", options.reference, "'");
    BASIN_CHECK(model_paths.size() >= 2, "map: needs at least 2 models, got ", model_paths.size());
    {
        std::set<fs::path> seen;
        for (const auto& m : model_paths)
            BASIN_CHECK(seen.insert(canonical_or_absolute(m)).second, "map: ", m.string(),
                        " is given twice");
    }
    const fs::path out = check_output_folder(out_arg, options.overwrite);
    ModelGroups all_groups;
    if (!groups_file.empty()) all_groups = read_model_groups(groups_file, model_paths);

    GramOptions gram_options = options.gram;
    if (!options.quiet && !gram_options.progress)
        gram_options.progress = [](const StreamProgress& p) {
            const double rate = p.seconds > 0 ? p.bytes_done / p.seconds : 0;
            const double left = rate > 0 ? (p.bytes_total - p.bytes_done) / rate : 0;
            std::fprintf(stderr, "map: %.2f of %.2f GB (%.0f%%), %.0f MB/s, %.0f s left\n",
                         p.bytes_done / 1e9, p.bytes_total / 1e9,
                         100.0 * p.bytes_done / std::max<std::uint64_t>(1, p.bytes_total),
                         rate / 1e6, left);
        };
    const GramResult g = task_vector_gram(base, model_paths, gram_options);

    // the groups of the models actually used (some may have been skipped)
    std::vector<std::size_t> used_index;
    for (const auto& m : g.models)
        used_index.push_back(static_cast<std::size_t>(
            std::find(model_paths.begin(), model_paths.end(), m) - model_paths.begin()));
    const std::size_t n = g.models.size();
    const auto names = display_names(g.models);
    struct Kind {
        std::string name;
        std::vector<std::string> groups; // sorted
        std::vector<int> label;          // per used model
    };
    std::vector<Kind> kinds;
    for (std::size_t k = 0; k < all_groups.kinds.size(); ++k) {
        Kind kind{all_groups.kinds[k], {}, {}};
        std::set<std::string> distinct;
        for (std::size_t i : used_index)
            distinct.insert(all_groups.labels[k][i]);
        kind.groups.assign(distinct.begin(), distinct.end());
        for (std::size_t i : used_index)
            kind.label.push_back(static_cast<int>(
                std::lower_bound(kind.groups.begin(), kind.groups.end(), all_groups.labels[k][i]) -
                kind.groups.begin()));
        kinds.push_back(std::move(kind));
    }

    const SquareMatrix origin_gram = options.reference == "mean" ? centered_gram(g.gram) : g.gram;
    const SquareMatrix cosine = cosine_from_gram(origin_gram);
    const SquareMatrix distance = distance_from_gram(g.gram);
    SquareMatrix cosine_distance(n), affinity(n);
    for (std::size_t k = 0; k < n * n; ++k) {
        cosine_distance.values[k] = std::max(0.0, 1.0 - cosine.values[k]);
        affinity.values[k] = (cosine.values[k] + 1.0) / 2.0; // PAPER.md: affinity = (cos + 1) / 2
    }
    for (std::size_t i = 0; i < n; ++i)
        cosine_distance(i, i) = 0;

    const Projection pca = pca_from_gram(g.gram, 2);
    Points tsne_xy;
    if (n >= 3) {
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
        tsne_xy = tsne(cosine_distance, init, std::clamp((n - 1) / 3.0, 1.0, 30.0));
    }

    // ---- clustering against each label kind
    json clusters_json = json::object(), within_json = json::object(),
         accuracy_json = json::object();
    MapSummary summary;
    auto cluster_all = [&](int k) {
        json methods = json::object();
        const Points pca_k =
            pca_from_gram(g.gram, std::min<int>(k, static_cast<int>(n))).coordinates;
        methods["spectral"] = spectral_clustering(affinity, k, options.seed);
        methods["kmeans_pca"] = kmeans(pca_k, k, options.seed);
        methods["agglomerative"] = agglomerative_average(cosine_distance, k);
        return methods;
    };
    for (const auto& kind : kinds) {
        const int k = static_cast<int>(kind.groups.size());
        json entry;
        entry["groups"] = kind.groups;
        entry["labels"] = kind.label;
        json methods = json::object();
        if (k >= 2 && static_cast<std::size_t>(k) <= n) {
            const json found = cluster_all(k);
            for (const auto& [method, labels_json] : found.items()) {
                const auto labels = labels_json.get<std::vector<int>>();
                const ClusterScore s = score_clusters(labels, kind.label, k);
                json f1 = json::object();
                for (int c = 0; c < k; ++c)
                    f1[kind.groups[c]] = s.f1[c];
                std::vector<std::string> cluster_group;
                for (int gi : s.group_of_cluster)
                    cluster_group.push_back(kind.groups[gi]);
                methods[method] = {
                    {"clusters", labels},     {"group_of_cluster", cluster_group},
                    {"accuracy", s.accuracy}, {"f1", f1},
                    {"macro_f1", s.macro_f1}, {"silhouette", silhouette(cosine_distance, labels)}};
            }
            entry["silhouette_of_groups"] = silhouette(cosine_distance, kind.label);
            summary.spectral_accuracy[kind.name] = methods["spectral"]["accuracy"].get<double>();
            accuracy_json[kind.name] = {{"spectral", methods["spectral"]["accuracy"]},
                                        {"kmeans_pca", methods["kmeans_pca"]["accuracy"]},
                                        {"agglomerative", methods["agglomerative"]["accuracy"]}};
        }
        entry["methods"] = methods;
        clusters_json[kind.name] = entry;
        const GroupSimilarity gs = group_similarity(cosine, kind.label, k);
        json table = json::array();
        for (int c = 0; c < k; ++c)
            table.push_back({{"group", kind.groups[c]},
                             {"members", gs.members[c]},
                             {"within", nan_to_null(gs.within[c])},
                             {"between", nan_to_null(gs.between[c])}});
        within_json[kind.name] = {{"within_mean", nan_to_null(gs.within_mean)},
                                  {"between_mean", nan_to_null(gs.between_mean)},
                                  {"groups", table}};
    }
    if (kinds.empty() && options.clusters >= 2 && static_cast<std::size_t>(options.clusters) <= n)
        clusters_json["unlabelled"] = {{"methods", cluster_all(options.clusters)}};

    // ---- write everything into a temporary folder, then move it into place
    write_folder_atomically(out, [&](const fs::path& dir) {
        write_matrix_csv(dir / "similarity.csv", cosine, names);
        write_matrix_csv(dir / "distance.csv", distance, names);
        {
            std::ostringstream o;
            o << "model";
            for (const auto& kind : kinds)
                o << "," << csv_cell(kind.name);
            o << ",pca_1,pca_2,tsne_1,tsne_2\n";
            for (std::size_t i = 0; i < n; ++i) {
                o << csv_cell(names[i]);
                for (const auto& kind : kinds)
                    o << "," << csv_cell(kind.groups[kind.label[i]]);
                o << "," << number(pca.coordinates[i][0]) << "," << number(pca.coordinates[i][1]);
                if (!tsne_xy.empty())
                    o << "," << number(tsne_xy[i][0]) << "," << number(tsne_xy[i][1]) << "\n";
                else
                    o << ",,\n";
            }
            write_text_atomically(dir / "embedding.csv", o.str());
        }
        if (options.gram.per_layer) {
            std::ostringstream o;
            o << "layer,parameters,model_a,model_b,cosine,distance\n";
            for (std::size_t l = 0; l < g.layers.size(); ++l) {
                const SquareMatrix lg =
                    options.reference == "mean" ? centered_gram(g.layer_gram[l]) : g.layer_gram[l];
                const SquareMatrix lc = cosine_from_gram(lg),
                                   ld = distance_from_gram(g.layer_gram[l]);
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = i + 1; j < n; ++j)
                        o << csv_cell(g.layers[l]) << "," << g.layer_parameters[l] << ","
                          << csv_cell(names[i]) << "," << csv_cell(names[j]) << ","
                          << number(lc(i, j)) << "," << number(ld(i, j)) << "\n";
            }
            write_text_atomically(dir / "per_layer.csv", o.str());
        }
        write_text_atomically(dir / "clusters.json", clusters_json.dump(2) + "\n");

        json excluded = json::array(), skipped = json::array(), inputs = json::array();
        for (const auto& [name, why] : g.excluded)
            excluded.push_back({{"tensor", name}, {"reason", why}});
        for (const auto& [path, why] : g.skipped)
            skipped.push_back({{"model", path.string()}, {"reason", why}});
        for (std::size_t i = 0; i < n; ++i)
            inputs.push_back({{"name", names[i]}, {"path", g.models[i].string()}});
        json s = {{"base", base.string()},
                  {"models", inputs},
                  {"reference", options.reference},
                  {"parameters", g.parameters},
                  {"layers", g.layers},
                  {"excluded_tensors", excluded},
                  {"skipped_models", skipped},
                  {"precision", options.gram.precision == GramPrecision::bf16 ? "bf16" : "f32"},
                  {"memory_limit_bytes", options.gram.memory_limit},
                  {"chunk_parameters", g.chunk_parameters},
                  {"bytes_read", g.bytes_read},
                  {"seconds", g.seconds},
                  {"bytes_per_second", g.seconds > 0 ? g.bytes_read / g.seconds : 0.0},
                  {"peak_rss_bytes", g.peak_rss},
                  {"threads", options.gram.threads},
                  {"pca_explained_variance", pca.explained},
                  {"clustering_accuracy", accuracy_json},
                  {"similarity_within_between", within_json}};
        write_text_atomically(dir / "summary.json", s.dump(2) + "\n");

        // figures, models ordered by the first label kind
        std::vector<int> colour(n, 0);
        std::vector<std::string> legend = {"models"};
        if (!kinds.empty()) colour = kinds[0].label, legend = kinds[0].groups;
        std::vector<std::pair<double, double>> xy;
        for (const auto& p : pca.coordinates)
            xy.emplace_back(p[0], p[1]);
        const std::string by = kinds.empty() ? "" : " by " + kinds[0].name;
        scatter_plot(
            xy, colour, legend, "Task vectors, PCA" + by,
            "PC 1 (" + number(std::round(pca.explained[0] * 1000) / 10) + "%)",
            "PC 2 (" +
                number(std::round((pca.explained.size() > 1 ? pca.explained[1] : 0) * 1000) / 10) +
                "%)")
            .save((dir / "pca").string());
        if (!tsne_xy.empty()) {
            xy.clear();
            for (const auto& p : tsne_xy)
                xy.emplace_back(p[0], p[1]);
            scatter_plot(xy, colour, legend, "Task vectors, t-SNE on 1 - cosine" + by, "t-SNE 1",
                         "t-SNE 2")
                .save((dir / "tsne").string());
        }
        std::vector<std::size_t> order(n);
        for (std::size_t i = 0; i < n; ++i)
            order[i] = i;
        std::stable_sort(order.begin(), order.end(),
                         [&](std::size_t a, std::size_t b) { return colour[a] < colour[b]; });
        std::vector<std::vector<double>> values(n, std::vector<double>(n));
        std::vector<std::string> ordered_names;
        std::vector<int> ordered_group;
        double low = 1;
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t j = 0; j < n; ++j)
                values[i][j] = cosine(order[i], order[j]), low = std::min(low, values[i][j]);
            ordered_names.push_back(names[order[i]]);
            ordered_group.push_back(colour[order[i]]);
        }
        heatmap(values, ordered_names, ordered_group, "Cosine similarity of task vectors" + by,
                std::min(0.0, low), 1.0)
            .save((dir / "similarity").string());
    });
    summary.models = n;
    summary.parameters = g.parameters;
    summary.seconds = g.seconds;
    return summary;
}

} // namespace basin
