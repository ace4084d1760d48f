#include "basin/experiment/spec.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/limits.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace basin {

namespace {

std::string where(const ExperimentSpec& s, const toml::node& node) {
    const auto& src = node.source();
    return s.file.string() + ":" + std::to_string(src.begin.line);
}

template <typename T>
T get(const ExperimentSpec& s, const toml::table& table, const char* key, T fallback, const char* expected) {
    const toml::node* node = table.get(key);
    if (!node) return fallback;
    if constexpr (std::is_same_v<T, std::string>) {
        BASIN_CHECK(node->is_string(), where(s, *node), ": '", key, "' must be ", expected);
        return node->value<std::string>().value();
    } else if constexpr (std::is_same_v<T, bool>) {
        BASIN_CHECK(node->is_boolean(), where(s, *node), ": '", key, "' must be ", expected);
        return node->value<bool>().value();
    } else if constexpr (std::is_floating_point_v<T>) {
        BASIN_CHECK(node->is_number(), where(s, *node), ": '", key, "' must be ", expected);
        return T(node->value<double>().value());
    } else {
        BASIN_CHECK(node->is_integer() && node->value<std::int64_t>().value() >= 0, where(s, *node), ": '", key,
                    "' must be ", expected);
        return T(node->value<std::int64_t>().value());
    }
}

// A fine-tuning mode: full, bitfit, head or lora.
std::string get_mode(const ExperimentSpec& s, const toml::table& table, const std::string& fallback) {
    const std::string mode = get<std::string>(s, table, "mode", fallback, "full, bitfit, head or lora");
    BASIN_CHECK(mode == "full" || mode == "bitfit" || mode == "head" || mode == "lora", where(s, *table.get("mode")),
                ": mode '", mode, "' is not full, bitfit, head or lora");
    return mode;
}

std::vector<std::uint64_t> get_seeds(const ExperimentSpec& s, const toml::table& table, const char* key,
                                     std::vector<std::uint64_t> fallback) {
    const toml::node* node = table.get(key);
    if (!node) return fallback;
    const auto* array = node->as_array();
    BASIN_CHECK(array && !array->empty(), where(s, *node), ": '", key, "' must be a list of seeds, e.g. [1, 2, 3]");
    std::vector<std::uint64_t> out;
    for (const auto& item : *array) {
        BASIN_CHECK(item.is_integer() && item.value<std::int64_t>().value() >= 0, where(s, item), ": '", key,
                    "' must hold whole numbers");
        out.push_back(std::uint64_t(item.value<std::int64_t>().value()));
    }
    return out;
}

const toml::table* section(const ExperimentSpec& s, const toml::table& root, const char* name) {
    const toml::node* node = root.get(name);
    if (!node) return nullptr;
    BASIN_CHECK(node->is_table(), where(s, *node), ": [", name, "] must be a table");
    return node->as_table();
}

void check_keys(const ExperimentSpec& s, const toml::table& table, const char* name, std::set<std::string> known) {
    for (const auto& [key, node] : table)
        BASIN_CHECK(known.count(std::string(key.str())), where(s, node), ": unknown key '", key.str(), "' in [", name,
                    "]");
}

// The spec's text as TOML, with its sections known; s.text is filled.
toml::table parse_spec(ExperimentSpec& s, const fs::path& file) {
    toml::table root;
    BASIN_CHECK(fs::is_regular_file(file), file.string(), ": experiment spec not found");
    s.text = read_text_file(file, limits::experiment_spec);
    try {
        root = toml::parse(s.text, file.string());
    } catch (const toml::parse_error& e) {
        throw Error(file.string() + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
    }
    for (const auto& [key, node] : root)
        BASIN_CHECK(std::set<std::string>({"experiment", "datasets", "finetune", "map", "interpolate", "extrapolate",
                                           "hull", "plane", "centroid", "search", "probe", "published", "estimate"})
                        .count(std::string(key.str())),
                    where(s, node), ": unknown section [", key.str(), "]");
    return root;
}

// [experiment], with --set overrides: name, base, data_root, out, seeds, threads, max_length.
void read_experiment_section(ExperimentSpec& s, const toml::table& root, const fs::path& file,
                             const std::map<std::string, std::string>& overrides) {
    const toml::table* e = section(s, root, "experiment");
    BASIN_CHECK(e, file.string(), ": no [experiment] section (name, base, data_root, seeds)");
    toml::table experiment = *e;
    for (const auto& [key, value] : overrides) {
        BASIN_CHECK(experiment.contains(key) || key == "out", "--set ", key, "=", value,
                    ": no such key in [experiment]");
        experiment.insert_or_assign(key, value);
    }
    check_keys(s, experiment, "experiment", {"name", "base", "data_root", "out", "seeds", "threads", "max_length"});
    const fs::path dir = fs::absolute(file).parent_path();
    auto resolve = [&](const std::string& p) {
        return fs::path(p).is_absolute() ? fs::path(p) : (dir / p).lexically_normal();
    };
    s.name = get<std::string>(s, experiment, "name", fs::path(file).stem().string(), "a string");
    const std::string base = get<std::string>(s, experiment, "base", "", "a path");
    const std::string data_root = get<std::string>(s, experiment, "data_root", "", "a path");
    BASIN_CHECK(!base.empty() && !data_root.empty(), file.string(), ": [experiment] needs base and data_root");
    s.base = resolve(base);
    s.data_root = resolve(data_root);
    s.out = resolve(get<std::string>(s, experiment, "out", "experiments/" + s.name, "a path"));
    s.seeds = get_seeds(s, experiment, "seeds", {1});
    s.threads = get<int>(s, experiment, "threads", 1, "a whole number");
    s.max_length = get<std::size_t>(s, experiment, "max_length", 64, "a whole number");
    BASIN_CHECK(fs::is_directory(s.base), file.string(), ": base ", s.base.string(), ": model folder not found");
    BASIN_CHECK(fs::is_directory(s.data_root), file.string(), ": data_root ", s.data_root.string(),
                ": folder not found");
}

// [datasets]: name = "family", or name = { family = "...", seeds = [...] }.
void read_datasets(ExperimentSpec& s, const toml::table& root, const fs::path& file) {
    const toml::table* datasets = section(s, root, "datasets");
    BASIN_CHECK(datasets && !datasets->empty(), file.string(),
                ": no [datasets] (one line per dataset: name = \"family\")");
    for (const auto& [key, node] : *datasets) {
        // name = "family", or name = { family = "...", seeds = [...] } for a dataset that needs more seeds
        DatasetSpec d{std::string(key.str()), "", s.seeds};
        if (const auto* t = node.as_table()) {
            check_keys(s, *t, ("datasets." + d.name).c_str(), {"family", "seeds"});
            d.family = get<std::string>(s, *t, "family", "", "a string");
            BASIN_CHECK(!d.family.empty(), where(s, node), ": dataset ", d.name, ": needs a family");
            d.seeds = get_seeds(s, *t, "seeds", s.seeds);
            for (std::uint64_t seed : s.seeds)
                BASIN_CHECK(std::find(d.seeds.begin(), d.seeds.end(), seed) != d.seeds.end(), where(s, node),
                            ": dataset ", d.name, ": its seeds must include the experiment's (", seed, " is missing)");
        } else {
            BASIN_CHECK(node.is_string(), where(s, node), ": dataset ", key.str(),
                        ": expected its family as a string, or { family = \"...\", seeds = [...] }");
            d.family = node.value<std::string>().value();
        }
        s.datasets.push_back(d);
        BASIN_CHECK(fs::is_directory(s.data_root / s.datasets.back().name), where(s, node), ": dataset ", key.str(),
                    ": ", (s.data_root / s.datasets.back().name).string(), " not found");
    }
}

void read_finetune(ExperimentSpec& s, const toml::table& root) {
    if (const auto* t = section(s, root, "finetune")) {
        check_keys(s, *t, "finetune",
                   {"mode", "epochs", "lr", "batch_size", "train_limit", "lora_rank", "lora_alpha", "lora_targets"});
        s.mode = get_mode(s, *t, s.mode);
        s.lora_rank = get<std::int64_t>(s, *t, "lora_rank", s.lora_rank, "a whole number (LoRA's rank)");
        s.lora_alpha = get<double>(s, *t, "lora_alpha", s.lora_alpha, "a number (LoRA's alpha)");
        if (const toml::node* node = t->get("lora_targets")) {
            const auto* array = node->as_array();
            BASIN_CHECK(array && !array->empty(), where(s, *node),
                        ": 'lora_targets' must be a list of layer names, e.g. [\"query\", \"value\"]");
            s.lora_targets.clear();
            for (const auto& item : *array) {
                BASIN_CHECK(item.is_string(), where(s, item), ": 'lora_targets' must hold strings");
                s.lora_targets.push_back(item.value<std::string>().value());
            }
        }
        BASIN_CHECK(s.lora_rank >= 1 && s.lora_alpha > 0, where(s, *t),
                    ": [finetune] lora_rank must be at least 1 and lora_alpha positive");
        s.epochs = get<int>(s, *t, "epochs", s.epochs, "a whole number");
        s.lr = get<double>(s, *t, "lr", s.lr, "a number");
        s.batch_size = get<std::size_t>(s, *t, "batch_size", s.batch_size, "a whole number");
        s.train_limit = get<std::size_t>(s, *t, "train_limit", s.train_limit, "a whole number");
    }
}

// [published] and [estimate]: checked here, read by the report from the stored spec.
void check_published_and_estimate(ExperimentSpec& s, const toml::table& root, const fs::path& file) {
    if (const auto* t = section(s, root, "published")) {
        // accuracies published for the base (not measured here), shown beside the fine-tuned ones
        for (const auto& [key, node] : *t) {
            const std::string name(key.str());
            if (name == "source") {
                BASIN_CHECK(node.is_string(), where(s, node),
                            ": [published] source must be a string (where the numbers come from)");
                continue;
            }
            BASIN_CHECK(
                std::any_of(s.datasets.begin(), s.datasets.end(), [&](const DatasetSpec& d) { return d.name == name; }),
                where(s, node), ": [published] ", name, " is not one of the spec's datasets");
            const auto v = node.value<double>();
            BASIN_CHECK(v && *v >= 0 && *v <= 100, where(s, node), ": [published] ", name,
                        " must be an accuracy in percent (0 to 100)");
        }
        BASIN_CHECK(t->contains("source"), file.string(), ": [published] needs a source (where the numbers come from)");
    }
    if (const auto* t = section(s, root, "estimate")) {
        // the CPU-hours each kind of job was expected to take, for the report to set beside the measured ones
        for (const auto& [key, node] : *t) {
            static const std::set<std::string> kinds = {"finetune", "map",   "interpolate", "extrapolate",
                                                        "hull",     "plane", "centroid",    "search"};
            BASIN_CHECK(kinds.count(std::string(key.str())), where(s, node), ": [estimate] ", key.str(),
                        " is not a job kind (finetune, map, interpolate, extrapolate, hull, plane, centroid, search)");
            const auto v = node.value<double>();
            BASIN_CHECK(v && *v >= 0, where(s, node), ": [estimate] ", key.str(),
                        " must be CPU-hours (a number, 0 or more)");
        }
    }
}

// [probe] and the analyses: [map], [interpolate], [extrapolate], [hull], [plane].
void read_analyses(ExperimentSpec& s, const toml::table& root) {
    if (const auto* t = section(s, root, "probe")) {
        check_keys(s, *t, "probe", {"l2", "train_limit", "test_limit"});
        s.probe_l2 = get<double>(s, *t, "l2", s.probe_l2, "a number");
        s.probe_train_limit = get<std::size_t>(s, *t, "train_limit", 0, "a whole number");
        s.probe_test_limit = get<std::size_t>(s, *t, "test_limit", 0, "a whole number");
    }
    if (const auto* t = section(s, root, "map")) {
        check_keys(s, *t, "map", {"assign", "geometry", "bootstrap"});
        s.map = true;
        s.map_assign = get<std::string>(s, *t, "assign", s.map_assign, "discretize or kmeans");
        BASIN_CHECK(s.map_assign == "discretize" || s.map_assign == "kmeans", where(s, *t),
                    ": [map] assign must be discretize or kmeans, got '", s.map_assign, "'");
        s.map_geometry = get<std::string>(s, *t, "geometry", s.map_geometry, "cosine or raw");
        BASIN_CHECK(s.map_geometry == "cosine" || s.map_geometry == "raw", where(s, *t),
                    ": [map] geometry must be cosine or raw, got '", s.map_geometry, "'");
        s.map_bootstrap = get<std::size_t>(s, *t, "bootstrap", s.map_bootstrap, "a whole number");
    }
    if (const auto* t = section(s, root, "interpolate")) {
        check_keys(s, *t, "interpolate", {"alphas"});
        s.interpolate = true;
        s.alphas = get<std::string>(s, *t, "alphas", s.alphas, "start:stop:count or a list");
    }
    if (const auto* t = section(s, root, "extrapolate")) {
        check_keys(s, *t, "extrapolate", {});
        s.extrapolate = true;
    }
    if (const auto* t = section(s, root, "hull")) {
        check_keys(s, *t, "hull", {"random", "max_samples"});
        s.hull = true;
        s.hull_random = get<std::size_t>(s, *t, "random", s.hull_random, "a whole number");
        s.hull_max_samples = get<std::size_t>(s, *t, "max_samples", 0, "a whole number");
    }
    if (const auto* t = section(s, root, "search")) {
        check_keys(s, *t, "search", {"budget", "held_out"});
        s.search = true;
        s.search_budget = get<std::size_t>(s, *t, "budget", s.search_budget, "a whole number");
        BASIN_CHECK(s.search_budget >= 1, where(s, *t), ": [search] budget must be at least 1");
        s.search_held_out = get<double>(s, *t, "held_out", s.search_held_out, "a number");
        BASIN_CHECK(s.search_held_out > 0 && s.search_held_out < 1, where(s, *t),
                    ": [search] held_out must be in (0, 1), got ", s.search_held_out);
    }
    if (const auto* t = section(s, root, "plane")) {
        check_keys(s, *t, "plane", {"grid"});
        s.plane = true;
        s.plane_grid = get<std::string>(s, *t, "grid", s.plane_grid, "COLUMNSxROWS");
    }
}

// [centroid] (one variant) or [[centroid]] (named variants).
void read_centroids(ExperimentSpec& s, const toml::table& root) {
    if (const toml::node* node = root.get("centroid")) {
        auto read_variant = [&](const toml::table& t, bool named) {
            check_keys(s, t, "centroid", {"name", "mode", "seeds", "epochs", "lr", "train_limit", "workers"});
            CentroidSpec c;
            c.name = get<std::string>(s, t, "name", "", "a string");
            BASIN_CHECK(!named || !c.name.empty(), where(s, t), ": each [[centroid]] needs a name");
            BASIN_CHECK(c.name.find_first_of("/ ") == std::string::npos, where(s, t), ": centroid name '", c.name,
                        "' must not hold '/' or spaces");
            for (const auto& other : s.centroids)
                BASIN_CHECK(other.name != c.name, where(s, t), ": two centroid variants named '", c.name, "'");
            c.mode = get_mode(s, t, c.mode);
            c.seeds = get_seeds(s, t, "seeds", s.seeds);
            c.epochs = get<int>(s, t, "epochs", c.epochs, "a whole number");
            c.lr = get<double>(s, t, "lr", c.lr, "a number");
            c.train_limit = get<std::size_t>(s, t, "train_limit", c.train_limit, "a whole number");
            c.workers = get<int>(s, t, "workers", c.workers, "a whole number");
            BASIN_CHECK(c.workers >= 1, where(s, t), ": workers must be at least 1, got ", c.workers);
            s.centroids.push_back(c);
        };
        if (const auto* table = node->as_table()) {
            read_variant(*table, false);
        } else {
            const auto* array = node->as_array();
            BASIN_CHECK(array && array->is_array_of_tables() && !array->empty(), where(s, *node),
                        ": [centroid] must be a table or [[centroid]] tables");
            for (const auto& item : *array)
                read_variant(*item.as_table(), true);
        }
    }
}

} // namespace

ExperimentSpec read_experiment(const fs::path& file, const std::map<std::string, std::string>& overrides) {
    ExperimentSpec s;
    s.file = file;
    const toml::table root = parse_spec(s, file);
    read_experiment_section(s, root, file, overrides);
    read_datasets(s, root, file);
    read_finetune(s, root);
    check_published_and_estimate(s, root, file);
    read_analyses(s, root);
    read_centroids(s, root);
    return s;
}

namespace {

// Expands a spec into jobs, one step per analysis (each a member below), in the order they are
// written; the helpers name models, folders and the probe options every scoring job shares.
class JobPlanner {
  public:
    explicit JobPlanner(const ExperimentSpec& spec)
        : s(spec), out(fs::absolute(spec.out)), threads(std::to_string(spec.threads)),
          max_length(std::to_string(spec.max_length)) {
        for (const auto& d : s.datasets)
            family_of[d.name] = d.family;
        probe = {"--max-length", max_length,
                 "--threads",    threads,
                 "--l2",         std::to_string(s.probe_l2),
                 "--cache",      (out / "cache" / "features").string(),
                 "--overwrite"};
        if (s.probe_train_limit)
            probe.insert(probe.end(), {"--probe-train-limit", std::to_string(s.probe_train_limit)});
        if (s.probe_test_limit) probe.insert(probe.end(), {"--probe-test-limit", std::to_string(s.probe_test_limit)});
    }

    std::vector<Job> plan() {
        add_finetunes();
        if (s.map) add_map();
        add_lines();
        if (s.hull) add_hulls();
        if (s.plane && models.size() >= 3) add_plane();
        add_centroids();
        if (s.search) add_searches();
        assign_keys();
        return std::move(jobs);
    }

  private:
    struct Pair {
        std::string a, b, relation;
    };

    static std::string model_name(const std::string& dataset, std::uint64_t seed) {
        return dataset + "-s" + std::to_string(seed);
    }
    fs::path model_dir(const std::string& name) const { return out / "models" / name; }
    fs::path data_dir(const std::string& dataset) const { return s.data_root / dataset; }
    static std::string dataset_of(const std::string& model) { return model.substr(0, model.rfind("-s")); }
    std::string model_list(const std::vector<std::string>& names) const {
        std::string text;
        for (const auto& n : names)
            text += model_dir(n).string() + "\n";
        return text;
    }
    std::string data_list(std::vector<std::string> datasets) const {
        std::sort(datasets.begin(), datasets.end());
        datasets.erase(std::unique(datasets.begin(), datasets.end()), datasets.end());
        std::vector<std::string> dirs;
        for (const auto& d : datasets)
            dirs.push_back(data_dir(d).string());
        return join(dirs, ",");
    }
    void with_probe(Job& j) const { j.args.insert(j.args.end(), probe.begin(), probe.end()); }
    // the fine-tuning recipe of a finetune or centroid job, in the order its key was made with
    void with_recipe(Job& j, int epochs, double lr) const {
        j.args.insert(j.args.end(), {"--epochs", std::to_string(epochs), "--lr", std::to_string(lr), "--batch-size",
                                     std::to_string(s.batch_size), "--max-length", max_length, "--threads", threads});
    }
    // mode lora: the adapters' settings (after --mode), and the base for the jobs that read adapters
    std::vector<std::string> lora_args(const std::string& mode) const {
        if (mode != "lora") return {};
        return {"--lora-rank",    std::to_string(s.lora_rank), "--lora-alpha", format_exact(s.lora_alpha),
                "--lora-targets", join(s.lora_targets, ",")};
    }
    void with_adapter_base(Job& j) const {
        if (s.mode == "lora") j.args.insert(j.args.end(), {"--adapter-base", s.base.string()});
    }
    static void depends_on(Job& j, const std::vector<std::string>& names) {
        for (const auto& n : names)
            j.depends.push_back("finetune/" + n);
    }

    // every dataset x its seeds
    void add_finetunes() {
        for (const auto& d : s.datasets) {
            const fs::path train = find_split(data_dir(d.name), "train"), test = find_split(data_dir(d.name), "test");
            // the limit is a cap: a dataset smaller than it trains on all its examples (read once, not per seed)
            const bool capped = s.train_limit && read_dataset(train).examples.size() > s.train_limit;
            for (std::uint64_t seed : d.seeds) {
                Job j;
                const std::string name = model_name(d.name, seed);
                j.id = "finetune/" + name;
                j.kind = "finetune";
                j.output = model_dir(name);
                j.args = {"finetune",    "--model", s.base.string(),   "--train", train.string(),       "--eval",
                          test.string(), "--out",   j.output.string(), "--seed",  std::to_string(seed), "--mode",
                          s.mode};
                const auto lora = lora_args(s.mode);
                j.args.insert(j.args.end(), lora.begin(), lora.end());
                with_recipe(j, s.epochs, s.lr);
                j.args.push_back("--overwrite");
                if (capped) j.args.insert(j.args.end(), {"--train-limit", std::to_string(s.train_limit)});
                j.reads = {train, test};
                j.labels = {{"model", name}, {"dataset", d.name}, {"family", d.family}, {"seed", std::to_string(seed)}};
                jobs.push_back(j);
                models.push_back(name);
            }
        }
    }

    // the weight-space map of the zoo, grouped by dataset and family
    void add_map() {
        Job j;
        j.id = j.kind = "map";
        const fs::path dir = out / "jobs" / "map";
        j.output = dir / "out";
        std::string groups = "model,dataset,family\n";
        for (const auto& m : models)
            groups += model_dir(m).string() + "," + dataset_of(m) + "," + family_of[dataset_of(m)] + "\n";
        j.prepared = {{dir / "models.txt", model_list(models)}, {dir / "groups.csv", groups}};
        j.args = {"map",
                  "--base",
                  s.base.string(),
                  "--models",
                  (dir / "models.txt").string(),
                  "--groups",
                  (dir / "groups.csv").string(),
                  "--out",
                  j.output.string(),
                  "--threads",
                  threads,
                  "--overwrite",
                  "--assign",
                  s.map_assign,
                  "--geometry",
                  s.map_geometry,
                  "--bootstrap",
                  std::to_string(s.map_bootstrap)};
        depends_on(j, models);
        jobs.push_back(j);
    }

    // pairs for interpolation: same dataset, same family, one of different families
    std::vector<Pair> line_pairs() const {
        std::vector<Pair> pairs;
        if (s.seeds.size() >= 2)
            for (const auto& d : s.datasets)
                pairs.push_back({model_name(d.name, s.seeds[0]), model_name(d.name, s.seeds[1]), "same dataset"});
        for (std::size_t i = 0; i < s.datasets.size(); ++i)
            for (std::size_t k = i + 1; k < s.datasets.size(); ++k)
                if (s.datasets[i].family == s.datasets[k].family)
                    pairs.push_back({model_name(s.datasets[i].name, s.seeds[0]),
                                     model_name(s.datasets[k].name, s.seeds[0]), "same family"});
        for (std::size_t i = 0; i < s.datasets.size(); ++i) {
            auto other = std::find_if(s.datasets.begin() + long(i) + 1, s.datasets.end(),
                                      [&](const DatasetSpec& d) { return d.family != s.datasets[i].family; });
            if (other != s.datasets.end()) {
                pairs.push_back({model_name(s.datasets[i].name, s.seeds[0]), model_name(other->name, s.seeds[0]),
                                 "different families"});
                break; // one such pair is enough for the figure
            }
        }
        return pairs;
    }

    void add_lines() {
        const std::vector<Pair> pairs = line_pairs();
        auto add_line = [&](const Pair& p, bool extrapolate) {
            Job j;
            j.kind = extrapolate ? "extrapolate" : "interpolate";
            j.id = j.kind + "/" + p.a + "--" + p.b;
            j.output = out / "jobs" / j.kind / (p.a + "--" + p.b);
            j.args = {"interpolate",
                      model_dir(p.a).string(),
                      model_dir(p.b).string(),
                      "--data",
                      data_list({dataset_of(p.a), dataset_of(p.b)}),
                      "--alphas",
                      extrapolate ? "0,1" : s.alphas,
                      "--out",
                      j.output.string()};
            if (extrapolate) j.args.push_back("--extrapolate");
            with_adapter_base(j);
            with_probe(j);
            depends_on(j, {p.a, p.b});
            j.labels = {{"A", p.a}, {"B", p.b}, {"relation", p.relation}};
            jobs.push_back(j);
        };
        if (s.interpolate)
            for (const auto& p : pairs)
                add_line(p, false);
        if (s.extrapolate && !pairs.empty()) add_line(pairs.front(), true);
    }

    // dataset, family and general levels
    void add_hulls() {
        auto add_hull = [&](const std::string& level, const std::string& name, const std::vector<std::string>& group,
                            const std::vector<std::string>& outside, const std::vector<std::string>& datasets) {
            if (group.size() < 2) return;
            Job j;
            j.kind = "hull";
            j.id = "hull/" + level + (name.empty() ? "" : "/" + name);
            const fs::path dir = out / "jobs" / "hull" / (level + (name.empty() ? "" : "-" + name));
            j.output = dir / "out";
            j.prepared[dir / "group.txt"] = model_list(group);
            j.args = {
                "hull",  "--group",        (dir / "group.txt").string(), "--data", data_list(datasets), "--seed", "1",
                "--out", j.output.string()};
            if (!outside.empty()) {
                j.prepared[dir / "outside.txt"] = model_list(outside);
                j.args.insert(j.args.end(), {"--outside", (dir / "outside.txt").string()});
            }
            if (s.hull_max_samples > 0)
                j.args.insert(j.args.end(), {"--samples", std::to_string(std::min(group.size(), s.hull_max_samples))});
            if (s.hull_random > 0)
                j.args.insert(j.args.end(), {"--random", std::to_string(s.hull_random), "--base", s.base.string()});
            with_adapter_base(j);
            with_probe(j);
            std::vector<std::string> all = group;
            all.insert(all.end(), outside.begin(), outside.end());
            depends_on(j, all);
            j.labels = {{"level", level}, {"group", name}};
            jobs.push_back(j);
        };
        for (const auto& d : s.datasets) {
            std::vector<std::string> group, outside;
            for (const auto& m : models) {
                if (dataset_of(m) == d.name)
                    group.push_back(m);
                else if (m == model_name(dataset_of(m), s.seeds[0]))
                    outside.push_back(m);
            }
            add_hull("dataset", d.name, group, outside, {d.name});
        }
        std::set<std::string> families;
        for (const auto& d : s.datasets)
            families.insert(d.family);
        for (const auto& f : families) {
            std::vector<std::string> group, outside, datasets;
            for (const auto& m : models) {
                if (family_of[dataset_of(m)] == f)
                    group.push_back(m), datasets.push_back(dataset_of(m));
                else if (m == model_name(dataset_of(m), s.seeds[0]))
                    outside.push_back(m);
            }
            std::set<std::string> distinct(datasets.begin(), datasets.end());
            if (distinct.size() >= 2) add_hull("family", f, group, outside, datasets);
        }
        std::vector<std::string> all_datasets;
        for (const auto& d : s.datasets)
            all_datasets.push_back(d.name);
        add_hull("general", "", models, {}, all_datasets);
    }

    void add_plane() {
        Job j;
        j.id = j.kind = "plane";
        j.output = out / "jobs" / "plane";
        // two models of the first dataset and one of the next: the plane crosses both regions
        const auto other = std::find_if(models.begin(), models.end(),
                                        [&](const std::string& m) { return dataset_of(m) != dataset_of(models[0]); });
        const std::string a = models[0], b = s.seeds.size() >= 2 ? models[1] : models[2],
                          c = s.seeds.size() >= 2 && other != models.end() ? *other : models[2];
        j.args = {"plane",
                  model_dir(a).string(),
                  model_dir(b).string(),
                  model_dir(c).string(),
                  "--data",
                  data_list({dataset_of(a)}),
                  "--grid",
                  s.plane_grid,
                  "--out",
                  j.output.string()};
        with_adapter_base(j);
        with_probe(j);
        depends_on(j, {a, b, c});
        j.labels = {{"A", a}, {"B", b}, {"C", c}};
        jobs.push_back(j);
    }

    void add_centroids() {
        for (const auto& c : s.centroids) {
            Job j;
            j.kind = "centroid";
            j.id = c.name.empty() ? "centroid" : "centroid/" + c.name;
            const fs::path dir = out / "jobs" / (c.name.empty() ? "centroid" : "centroid-" + c.name);
            j.output = dir / "out";
            // one model per dataset (the first seed) makes the zoo
            std::string zoo = "model,dataset\n";
            std::vector<std::string> members;
            for (const auto& d : s.datasets) {
                zoo += model_dir(model_name(d.name, s.seeds[0])).string() + "," + d.name + "\n";
                members.push_back(model_name(d.name, s.seeds[0]));
            }
            std::vector<std::string> seeds;
            for (auto v : c.seeds)
                seeds.push_back(std::to_string(v));
            j.prepared = {{dir / "zoo.csv", zoo}};
            j.args = {"init-compare",
                      "--zoo",
                      (dir / "zoo.csv").string(),
                      "--data-root",
                      s.data_root.string(),
                      "--pretrained",
                      s.base.string(),
                      "--targets",
                      "all",
                      "--mode",
                      c.mode,
                      "--seeds",
                      join(seeds, ",")};
            const auto lora = lora_args(c.mode);
            j.args.insert(j.args.end(), lora.begin(), lora.end());
            with_recipe(j, c.epochs, c.lr);
            j.args.insert(j.args.end(), {"--out", j.output.string()});
            if (c.train_limit) j.args.insert(j.args.end(), {"--train-limit", std::to_string(c.train_limit)});
            if (c.workers > 1) {
                j.args.insert(j.args.end(), {"--workers", std::to_string(c.workers)});
                j.neutral_args = 2;
                j.slots = std::size_t(c.workers);
            }
            for (const auto& d : s.datasets) {
                j.reads.push_back(find_split(data_dir(d.name), "train"));
                j.reads.push_back(find_split(data_dir(d.name), "test"));
            }
            depends_on(j, members);
            j.labels = {{"variant", c.name},
                        {"mode", c.mode},
                        {"train_limit", std::to_string(c.train_limit)},
                        {"epochs", std::to_string(c.epochs)},
                        {"lr", std::to_string(c.lr)}};
            jobs.push_back(j);
        }
    }

    // one search per dataset over the other datasets' models (the first seed, as the centroid's
    // zoo: the searched point against the same leave-one-dataset-out centroid), TIES and DARE
    // against the base
    void add_searches() {
        for (const auto& d : s.datasets) {
            std::vector<std::string> group;
            for (const auto& other : s.datasets)
                if (other.name != d.name) group.push_back(model_name(other.name, s.seeds[0]));
            if (group.empty()) continue;
            Job j;
            j.kind = "search";
            j.id = "search/" + d.name;
            const fs::path dir = out / "jobs" / "search" / d.name;
            j.output = dir / "out";
            j.prepared[dir / "group.txt"] = model_list(group);
            j.args = {"search",
                      "--group",
                      (dir / "group.txt").string(),
                      "--target",
                      data_dir(d.name).string(),
                      "--base",
                      s.base.string(),
                      "--budget",
                      std::to_string(s.search_budget),
                      "--held-out",
                      format_exact(s.search_held_out),
                      "--seed",
                      "1",
                      "--out",
                      j.output.string()};
            with_probe(j);
            depends_on(j, group);
            j.labels = {{"dataset", d.name}, {"family", d.family}};
            jobs.push_back(j);
        }
    }

    // the command, what it reads, what it is given, and its dependencies' keys
    void assign_keys() {
        std::map<std::string, std::string> key_of;
        const std::string base_hash = [&] {
            std::string h;
            for (const auto& f : fs::directory_iterator(s.base))
                if (f.is_regular_file() && (f.path().extension() == ".safetensors" || f.path().extension() == ".json"))
                    h += f.path().filename().string() + sha256_file_cached(f.path());
            return sha256_hex(h.data(), h.size());
        }();
        for (auto& j : jobs) {
            const std::vector<std::string> keyed(j.args.begin(), j.args.end() - std::ptrdiff_t(j.neutral_args));
            std::string text = "basin-job-v1\n" + j.id + "\n" + join(keyed, "\x1f") + "\nbase " + base_hash + "\n";
            for (const auto& f : j.reads)
                text += f.string() + " " + sha256_file_cached(f) + "\n";
            for (const auto& [path, content] : j.prepared)
                text += path.string() + " " + sha256_hex(content.data(), content.size()) + "\n";
            for (const auto& d : j.depends) {
                BASIN_CHECK(key_of.count(d), "job ", j.id, " depends on ", d, ", which comes later or does not exist");
                text += "after " + key_of[d] + "\n";
            }
            j.key = sha256_hex(text.data(), text.size());
            key_of[j.id] = j.key;
        }
    }

    const ExperimentSpec& s;
    const fs::path out;
    const std::string threads, max_length;
    std::map<std::string, std::string> family_of;
    std::vector<std::string> probe;  // the generalized loss's options, shared by every scoring job
    std::vector<std::string> models; // every fine-tuned model, in job order
    std::vector<Job> jobs;
};

} // namespace

std::vector<Job> expand_jobs(const ExperimentSpec& s) {
    return JobPlanner(s).plan();
}

} // namespace basin
