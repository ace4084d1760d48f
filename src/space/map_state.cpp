#include "basin/space/map_state.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/json_file.h"
#include "basin/io/safetensors.h"
#include "basin/space/adapter_gram.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace basin {
namespace {

using nlohmann::json;

constexpr int kStateFormat = 1;

std::string hex(std::uint64_t digest) {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digest));
    return text;
}

std::uint64_t from_hex(const std::string& text, const fs::path& file, const std::string& where) {
    BASIN_CHECK(text.size() == 16 && text.find_first_not_of("0123456789abcdef") == std::string::npos, file.string(),
                ": ", where, ": digest '", text, "', expected 16 hex digits");
    return std::stoull(text, nullptr, 16);
}

std::string layer_tensor(const std::string& layer) {
    return "layer/" + layer;
}

// One [n, n] float64 tensor of the state's gram.safetensors, checked.
SquareMatrix read_square(const SafetensorsFile& file, const std::string& name, std::size_t n) {
    const TensorInfo* info = file.find(name);
    BASIN_CHECK(info, file.path().string(), ": no tensor '", name, "' (state.json lists it)");
    BASIN_CHECK(info->dtype == Dtype::F64, file.path().string(), ": tensor '", name, "' is ", dtype_name(info->dtype),
                ", expected F64");
    BASIN_CHECK(info->shape == Shape({std::int64_t(n), std::int64_t(n)}), file.path().string(), ": tensor '", name,
                "' has shape ", shape_string(info->shape), ", expected [", n, ", ", n, "] (the models of state.json)");
    SquareMatrix m(n);
    std::memcpy(m.values.data(), file.data(*info), n * n * sizeof(double));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            BASIN_CHECK(std::isfinite(m(i, j)), file.path().string(), ": tensor '", name, "' row ", i + 1, " column ",
                        j + 1, ": not finite");
            BASIN_CHECK(m(i, j) == m(j, i), file.path().string(), ": tensor '", name, "' row ", i + 1, " column ",
                        j + 1, ": not symmetric (", m(i, j), " against ", m(j, i), ")");
        }
    return m;
}

} // namespace

std::string body_digest(const std::vector<std::string>& body) {
    std::string joined;
    for (const auto& name : body)
        joined += name + "\n";
    return sha256_hex(joined.data(), joined.size());
}

void write_map_state(const MapState& s, const fs::path& dir) {
    json models = json::array();
    for (std::size_t i = 0; i < s.paths.size(); ++i) {
        json labels = json::object();
        for (std::size_t k = 0; k < s.kinds.size(); ++k)
            labels[s.kinds[k]] = s.labels[k][i];
        models.push_back({{"path", s.paths[i]}, {"digest", hex(s.digests[i])}, {"labels", labels}});
    }
    const json state = {{"format", kStateFormat},
                        {"base", {{"path", s.base}, {"digest", hex(s.base_digest)}}},
                        {"models", models},
                        {"pass",
                         {{"include", s.include},
                          {"exclude", s.exclude},
                          {"precision", s.precision},
                          {"per_layer", s.per_layer},
                          {"skip_mismatched", s.skip_mismatched},
                          {"parameters", s.parameters},
                          {"body_sha256", s.body_sha256},
                          {"layers", s.layers},
                          {"layer_parameters", s.layer_parameters}}},
                        {"analyses",
                         {{"reference", s.reference},
                          {"assign", s.assign},
                          {"geometry", s.geometry},
                          {"groups", s.groups},
                          {"seed", s.seed},
                          {"bootstrap", s.bootstrap},
                          {"clusters", s.clusters},
                          {"kinds", s.kinds}}}};
    const Shape shape = {std::int64_t(s.gram.n), std::int64_t(s.gram.n)};
    std::vector<TensorView> tensors = {{"gram", Dtype::F64, shape, s.gram.values.data(), {}}};
    for (std::size_t l = 0; l < s.layer_gram.size(); ++l)
        tensors.push_back({layer_tensor(s.layers[l]), Dtype::F64, shape, s.layer_gram[l].values.data(), {}});
    write_safetensors(dir / "gram.safetensors", tensors, {{"format", "basin map state"}});
    write_text_atomically(dir / "state.json", state.dump(2) + "\n");
}

MapState read_map_state(const fs::path& dir) {
    const fs::path file = dir / "state.json";
    BASIN_CHECK(fs::exists(file), dir.string(),
                ": no state.json: the folder is not a map of checkpoints that keeps "
                "its Gram matrix (a map of a given matrix, or one made before maps "
                "kept it); map the models again");
    const json j = read_json_object(file);
    BASIN_CHECK(json_value<int>(j, "format", file) == kStateFormat, file.string(), ": format ",
                json_field(j, "format", file).dump(), ", expected ", kStateFormat);
    MapState s;
    const json& base = json_field(j, "base", file);
    s.base = json_value<std::string>(base, "path", file);
    s.base_digest = from_hex(json_value<std::string>(base, "digest", file), file, "base");
    const json& analyses = json_field(j, "analyses", file);
    s.kinds = json_value<std::vector<std::string>>(analyses, "kinds", file);
    s.labels.assign(s.kinds.size(), {});
    const json& models = json_field(j, "models", file);
    BASIN_CHECK(models.is_array() && models.size() >= 2, file.string(), ": 'models' must list at least 2 models");
    for (std::size_t i = 0; i < models.size(); ++i) {
        const json& m = models[i];
        s.paths.push_back(json_value<std::string>(m, "path", file));
        s.digests.push_back(from_hex(json_value<std::string>(m, "digest", file), file, str("models[", i, "]")));
        const json& labels = json_field(m, "labels", file);
        for (std::size_t k = 0; k < s.kinds.size(); ++k) {
            BASIN_CHECK(labels.contains(s.kinds[k]), file.string(), ": models[", i, "] (", s.paths.back(),
                        ") has no label for kind '", s.kinds[k], "'");
            s.labels[k].push_back(json_value<std::string>(labels, s.kinds[k], file));
        }
    }
    const json& pass = json_field(j, "pass", file);
    s.include = json_value<std::string>(pass, "include", file);
    s.exclude = json_value<std::string>(pass, "exclude", file);
    s.precision = json_value<std::string>(pass, "precision", file);
    BASIN_CHECK(s.precision == "f32" || s.precision == "bf16", file.string(), ": pass.precision '", s.precision,
                "', expected f32 or bf16");
    s.per_layer = json_value<bool>(pass, "per_layer", file);
    s.skip_mismatched = json_value<bool>(pass, "skip_mismatched", file);
    s.parameters = json_value<std::int64_t>(pass, "parameters", file);
    s.body_sha256 = json_value<std::string>(pass, "body_sha256", file);
    s.layers = json_value<std::vector<std::string>>(pass, "layers", file);
    s.layer_parameters = json_value<std::vector<std::int64_t>>(pass, "layer_parameters", file);
    BASIN_CHECK(s.layers.size() == s.layer_parameters.size() && !s.layers.empty(), file.string(),
                ": pass.layers and pass.layer_parameters must be non-empty and of one length");
    s.reference = json_value<std::string>(analyses, "reference", file);
    s.assign = json_value<std::string>(analyses, "assign", file);
    s.geometry = json_value<std::string>(analyses, "geometry", file);
    s.groups = json_value<std::string>(analyses, "groups", file);
    s.seed = json_value<std::uint64_t>(analyses, "seed", file);
    s.bootstrap = json_value<std::size_t>(analyses, "bootstrap", file);
    s.clusters = json_value<int>(analyses, "clusters", file);

    const SafetensorsFile grams(dir / "gram.safetensors");
    s.gram = read_square(grams, "gram", s.paths.size());
    if (s.per_layer)
        for (const auto& layer : s.layers)
            s.layer_gram.push_back(read_square(grams, layer_tensor(layer), s.paths.size()));
    return s;
}

GramOptions map_pass_options(const MapState& s, GramOptions pass) {
    pass.include = s.include, pass.exclude = s.exclude;
    pass.per_layer = s.per_layer, pass.skip_mismatched = s.skip_mismatched;
    pass.precision = s.precision == "bf16" ? GramPrecision::bf16 : GramPrecision::f32;
    return pass;
}

void check_map_state_inputs(const MapState& s, const fs::path& dir, const std::vector<fs::path>& new_models) {
    const fs::path file = dir / "state.json";
    BASIN_CHECK(!new_models.empty(), "map: no new models to add to ", dir.string());
    std::set<fs::path> known; // the cheap checks first: hashing reads every model
    for (const auto& p : s.paths)
        known.insert(canonical_or_absolute(p));
    std::set<fs::path> seen;
    for (const auto& m : new_models) {
        BASIN_CHECK(!known.count(canonical_or_absolute(m)), "map: ", m.string(), " is already in the map ",
                    dir.string());
        BASIN_CHECK(seen.insert(canonical_or_absolute(m)).second, "map: ", m.string(), " is given twice");
    }
    BASIN_CHECK(fs::exists(s.base), file.string(), ": base: ", s.base, " does not exist any more");
    for (std::size_t i = 0; i < s.paths.size(); ++i)
        BASIN_CHECK(fs::exists(s.paths[i]), file.string(), ": models[", i, "] (", s.paths[i],
                    ") does not exist any more; map the models again");
}

GramResult extend_gram(const MapState& s, const fs::path& dir, const std::vector<fs::path>& new_models,
                       const GramOptions& pass) {
    const fs::path file = dir / "state.json";
    GramOptions o = map_pass_options(s, pass);
    o.known = s.paths.size();
    std::vector<fs::path> all(s.paths.begin(), s.paths.end());
    all.insert(all.end(), new_models.begin(), new_models.end());
    GramResult g = zoo_gram(s.base, all, o); // adapters refuse known > 0 with a clear line
    BASIN_CHECK(g.parameters == s.parameters && body_digest(g.body) == s.body_sha256, "map: the new models change ",
                "the body of the task vectors (", g.parameters, " parameters in ", g.body.size(), " tensors; ",
                file.string(), " has ", s.parameters, "): map all the models again");
    BASIN_CHECK(g.layers == s.layers, "map: the layer groups differ from ", file.string(), "'s");
    auto changed = [&](const std::string& what, std::uint64_t now, std::uint64_t then) {
        return str(file.string(), ": ", what, " changed since the map was made: what was read of it has digest ",
                   hex(now), ", the map's ", hex(then), "; map the models again");
    };
    BASIN_CHECK(g.base_digest == s.base_digest, changed(str("base (", s.base, ")"), g.base_digest, s.base_digest));
    for (std::size_t i = 0; i < s.paths.size(); ++i)
        BASIN_CHECK(g.digests[i] == s.digests[i],
                    changed(str("models[", i, "] (", s.paths[i], ")"), g.digests[i], s.digests[i]));
    const std::size_t known = s.paths.size();
    auto fill = [&](SquareMatrix& m, const SquareMatrix& old) {
        for (std::size_t i = 0; i < known; ++i)
            for (std::size_t j = 0; j < known; ++j)
                m(i, j) = old(i, j);
    };
    fill(g.gram, s.gram);
    for (std::size_t l = 0; l < s.layer_gram.size(); ++l)
        fill(g.layer_gram[l], s.layer_gram[l]);
    if (!s.per_layer) g.layer_gram[0] = g.gram; // the one group "all"
    return g;
}

} // namespace basin
