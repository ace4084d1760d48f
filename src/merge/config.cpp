#include "basin/merge/config.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"

#include <cmath>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>
#include <yaml-cpp/yaml.h>

namespace basin {
namespace {

namespace fs = std::filesystem;

// What a mergekit method is in basin: the method and, for gta, its sparsification, consensus and
// the defaults of normalize and rescale; the parameters it takes (shared: one value for the merge;
// per model: under each model, with a shared value as the default).
struct MethodSpec {
    MergeMethod method;
    std::string sparsify = "none", consensus = "none";
    bool normalize = false, rescale = false;
    std::set<std::string> shared, per_model;
};

const std::map<std::string, MethodSpec>& method_specs() {
    static const std::set<std::string> gta_shared = {"lambda", "normalize", "rescale", "int8_mask"};
    static const std::set<std::string> gta_model = {"weight", "density"};
    static const std::set<std::string> breadcrumbs_model = {"weight", "density", "gamma"};
    static const std::set<std::string> della_model = {"weight", "density", "epsilon"};
    static const std::map<std::string, MethodSpec> specs = {
        {"linear", {MergeMethod::Weighted, "none", "none", true, false, {"normalize"}, {"weight"}}},
        {"task_arithmetic", {MergeMethod::Gta, "none", "none", false, false, gta_shared, gta_model}},
        {"ties", {MergeMethod::Gta, "magnitude", "sum", true, false, gta_shared, gta_model}},
        {"dare_ties", {MergeMethod::Gta, "random", "sum", false, true, gta_shared, gta_model}},
        {"dare_linear", {MergeMethod::Gta, "random", "none", false, true, gta_shared, gta_model}},
        {"breadcrumbs", {MergeMethod::Gta, "outliers", "none", false, false, gta_shared, breadcrumbs_model}},
        {"breadcrumbs_ties", {MergeMethod::Gta, "outliers", "sum", false, false, gta_shared, breadcrumbs_model}},
        {"della", {MergeMethod::Gta, "della", "sum", true, true, gta_shared, della_model}},
        {"della_linear", {MergeMethod::Gta, "della", "none", false, true, gta_shared, della_model}},
        {"slerp", {MergeMethod::Slerp, "none", "none", false, false, {"t"}, {}}},
        {"model_stock", {MergeMethod::ModelStock, "none", "none", false, false, {"filter_wise"}, {}}},
        {"multislerp", {MergeMethod::Multislerp, "none", "none", true, false, {"normalize_weights"}, {"weight"}}},
        {"karcher", {MergeMethod::Karcher, "none", "none", false, false, {"max_iter", "tol"}, {}}},
        {"nuslerp",
         {MergeMethod::Nuslerp, "none", "none", false, false, {"nuslerp_flatten", "nuslerp_row_wise"}, {"weight"}}},
        {"sce", {MergeMethod::Sce, "none", "none", false, false, {"select_topk", "int8_mask"}, {}}},
    };
    return specs;
}

std::string names_of(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names)
        out += (out.empty() ? "" : ", ") + n;
    return out.empty() ? "none" : out;
}

// A parameter's value: conditions in order, each a filter (empty: any tensor) and a gradient (one
// value: a constant).
struct Setting {
    struct Condition {
        std::string filter;
        std::vector<double> values;
        std::string where; // "FILE:LINE: KEY", for errors
    };
    std::vector<Condition> conditions;

    // the value for a tensor at relative depth t; nullopt when no condition applies
    std::optional<double> at(const std::string& tensor, double t) const {
        for (const auto& c : conditions) {
            if (!c.filter.empty() && c.filter != "*" && tensor.find(c.filter) == std::string::npos) continue;
            if (c.values.size() == 1) return c.values[0];
            const double scaled = t * double(c.values.size() - 1);
            const std::size_t i0 = std::size_t(scaled), i1 = std::min(c.values.size() - 1, i0 + 1);
            const double frac = scaled - double(i0);
            return (1 - frac) * c.values[i0] + frac * c.values[i1];
        }
        return std::nullopt;
    }
};

class ConfigReader {
  public:
    explicit ConfigReader(const fs::path& file) : file_(file) {}

    std::string where(const YAML::Node& node, const std::string& key) const {
        return str(file_.string(), ":", node.Mark().line + 1, ": ", key);
    }

    double number(const YAML::Node& node, const std::string& key) const {
        BASIN_CHECK(node.IsScalar(), where(node, key), ": expected a number");
        try {
            return node.as<double>();
        } catch (const YAML::Exception&) {
            fail(where(node, key), ": expected a number, got '", node.Scalar(), "'");
        }
    }

    bool boolean(const YAML::Node& node, const std::string& key) const {
        BASIN_CHECK(node.IsScalar(), where(node, key), ": expected true or false (no gradient or filter)");
        try {
            return node.as<bool>();
        } catch (const YAML::Exception&) {
            fail(where(node, key), ": expected true or false, got '", node.Scalar(), "'");
        }
    }

    std::string text(const YAML::Node& node, const std::string& key) const {
        BASIN_CHECK(node.IsScalar(), where(node, key), ": expected a string");
        return node.Scalar();
    }

    // a number, a gradient, or a list of {filter, value}
    Setting setting(const YAML::Node& node, const std::string& key) const {
        Setting s;
        auto gradient = [&](const YAML::Node& v, const std::string& k) {
            std::vector<double> values;
            if (v.IsSequence()) {
                BASIN_CHECK(v.size() > 0, where(v, k), ": an empty gradient");
                for (const auto& e : v)
                    values.push_back(number(e, k));
            } else {
                values.push_back(number(v, k));
            }
            return values;
        };
        if (node.IsSequence() && node.size() > 0 && node[0].IsMap()) {
            for (const auto& c : node) {
                BASIN_CHECK(c.IsMap(), where(c, key), ": expected every entry to be {filter, value}");
                for (const auto& kv : c) {
                    const std::string k = kv.first.Scalar();
                    BASIN_CHECK(k == "filter" || k == "value", where(kv.first, key + "." + k),
                                ": not a key of a conditional value (filter, value)");
                }
                BASIN_CHECK(c["value"], where(c, key), ": a conditional value without 'value'");
                s.conditions.push_back({c["filter"] ? text(c["filter"], key + ".filter") : "",
                                        gradient(c["value"], key + ".value"), where(c, key)});
            }
        } else {
            s.conditions.push_back({"", gradient(node, key), where(node, key)});
        }
        return s;
    }

    // a model reference: a local folder (relative to the file), never a hub id or a LoRA
    fs::path model(const YAML::Node& node, const std::string& key) const {
        const YAML::Node& ref = node.IsMap() && node["model"] ? node["model"] : node;
        const std::string name = text(ref, key);
        BASIN_CHECK(name.find('+') == std::string::npos, where(ref, key), ": '", name,
                    "' adds a LoRA to a model (model+lora); basin does not merge adapters from a configuration");
        const fs::path path = fs::path(name).is_absolute() ? fs::path(name) : file_.parent_path() / name;
        if (fs::is_directory(path)) return path;
        static const std::regex hub(R"(^[A-Za-z0-9][\w.\-]*/[\w.\-]+$)");
        BASIN_CHECK(!std::regex_match(name, hub), where(ref, key), ": '", name,
                    "' is not a folder here; it looks like a Hugging Face hub id, and basin merges local folders "
                    "only (give the path of a downloaded copy)");
        fail(where(ref, key), ": model folder '", path.string(), "' not found");
    }

  private:
    fs::path file_;
};

// The per-tensor values of a configuration, resolved for each tensor by the merge loop.
struct TensorValues {
    std::map<std::string, Setting> shared;              // parameters: (numbers)
    std::vector<std::map<std::string, Setting>> models; // per model
    std::set<std::string> per_model;                    // which names are per model
    bool slerp = false;

    static double depth(const std::string& tensor, std::size_t layers) {
        const int layer = tensor_layer_index(tensor);
        if (layer < 0) return 0; // embeddings, pooler, norms: mergekit's t = 0 outside the layers
        return layers > 1 ? double(layer) / double(layers - 1) : 1.0;
    }

    std::optional<double> value(const std::string& name, std::size_t model, const std::string& tensor, double t) const {
        if (const auto it = models[model].find(name); it != models[model].end())
            if (const auto v = it->second.at(tensor, t)) return v;
        if (const auto it = shared.find(name); it != shared.end()) return it->second.at(tensor, t);
        return std::nullopt;
    }

    void apply(const std::string& tensor, std::size_t layers, MergeOptions& o) const {
        const double t = depth(tensor, layers);
        if (per_model.count("weight")) {
            o.weights.clear();
            for (std::size_t i = 0; i < models.size(); ++i) {
                const auto w = value("weight", i, tensor, t);
                BASIN_CHECK(w, "merge: no weight applies to tensor ", tensor, " of ", o.models[i].string(),
                            " (its filters leave it out, and there is no default)");
                o.weights.push_back(*w);
            }
        }
        if (per_model.count("density")) {
            o.densities.clear();
            for (std::size_t i = 0; i < models.size(); ++i)
                o.densities.push_back(value("density", i, tensor, t).value_or(1.0)); // mergekit's default
        }
        if (per_model.count("epsilon")) {
            o.epsilons.clear();
            for (std::size_t i = 0; i < models.size(); ++i)
                o.epsilons.push_back(value("epsilon", i, tensor, t).value_or(0.15)); // mergekit's default
        }
        if (per_model.count("gamma")) {
            o.gammas.clear();
            for (std::size_t i = 0; i < models.size(); ++i)
                o.gammas.push_back(value("gamma", i, tensor, t).value_or(0.01)); // mergekit's default
        }
        if (const auto it = shared.find("lambda"); it != shared.end())
            o.lambda = it->second.at(tensor, t).value_or(1.0);
        if (const auto it = shared.find("select_topk"); it != shared.end())
            o.select_topk = it->second.at(tensor, t).value_or(1.0);
        if (const auto it = shared.find("max_iter"); it != shared.end())
            o.karcher_iterations = int(std::lround(it->second.at(tensor, t).value_or(10)));
        if (const auto it = shared.find("tol"); it != shared.end())
            o.karcher_tolerance = it->second.at(tensor, t).value_or(1e-5);
        if (const auto it = shared.find("t"); slerp && it != shared.end()) {
            const auto v = it->second.at(tensor, t);
            BASIN_CHECK(v, "merge: no value of t applies to tensor ", tensor, " (its filters leave it out)");
            o.t = *v;
        }
    }

    // every filter matches some tensor; no gradient has more values than there are layers
    void check(const std::vector<std::string>& tensors, std::size_t layers) const {
        auto check_setting = [&](const Setting& s) {
            for (const auto& c : s.conditions) {
                BASIN_CHECK(c.values.size() <= std::max<std::size_t>(layers, 1), c.where, ": a gradient of ",
                            c.values.size(), " values for ", layers, " layers");
                if (c.filter.empty() || c.filter == "*") continue;
                bool matched = false;
                for (const auto& t : tensors)
                    matched = matched || t.find(c.filter) != std::string::npos;
                BASIN_CHECK(matched, c.where, ": filter '", c.filter, "' matches no tensor of the models");
            }
        };
        for (const auto& [_, s] : shared)
            check_setting(s);
        for (const auto& m : models)
            for (const auto& [_, s] : m)
                check_setting(s);
    }
};

const std::set<std::string> kTopLevel = {"merge_method", "base_model",       "models",   "parameters",
                                         "dtype",        "tokenizer_source", "out_dtype"};

std::optional<Dtype> dtype_of(const ConfigReader& r, const YAML::Node& node, const std::string& key) {
    const std::string name = r.text(node, key);
    if (name == "float32" || name == "fp32") return Dtype::F32;
    if (name == "float16" || name == "fp16" || name == "half") return Dtype::F16;
    if (name == "bfloat16" || name == "bf16") return Dtype::BF16;
    fail(r.where(node, key), ": dtype '", name, "': expected float32, float16 or bfloat16");
}

} // namespace

MergeOptions read_merge_config(const fs::path& file, MergeOptions o) {
    BASIN_CHECK(fs::is_regular_file(file), "--config: ", file.string(), " not found");
    YAML::Node root;
    try {
        root = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
        fail(file.string(), ":", e.mark.line + 1, ": not valid YAML (", e.msg, ")");
    }
    const ConfigReader r(file);
    BASIN_CHECK(root.IsMap(), file.string(), ": expected a mapping of merge settings (merge_method, models, ...)");
    for (const auto& kv : root) {
        const std::string key = kv.first.Scalar();
        BASIN_CHECK(kTopLevel.count(key), r.where(kv.first, key),
                    ": not supported by basin (supported: ", names_of(kTopLevel), ")");
    }
    BASIN_CHECK(root["merge_method"], file.string(), ": no merge_method");
    const std::string method_name = r.text(root["merge_method"], "merge_method");
    const auto spec_it = method_specs().find(method_name);
    if (spec_it == method_specs().end()) {
        std::set<std::string> known;
        for (const auto& [name, _] : method_specs())
            known.insert(name);
        fail(r.where(root["merge_method"], "merge_method"), ": '", method_name, "' is not a method basin runs from a ",
             "configuration (", names_of(known), ")");
    }
    const MethodSpec& spec = spec_it->second;
    o.method = spec.method;
    o.sparsify = spec.sparsify, o.consensus = spec.consensus, o.rescale = spec.rescale;
    o.normalize = spec.normalize;
    o.clamp_model_stock = false; // mergekit's t = N cos / (1 + (N - 1) cos) as it is

    bool flatten = true, row_wise = false; // nuslerp's defaults
    auto values = std::make_shared<TensorValues>();
    values->slerp = spec.method == MergeMethod::Slerp;
    values->per_model = spec.per_model;
    // the shared parameters: booleans set here, numbers resolved per tensor
    if (const YAML::Node p = root["parameters"]) {
        BASIN_CHECK(p.IsMap(), r.where(p, "parameters"), ": expected a mapping of parameter names to values");
        for (const auto& kv : p) {
            const std::string key = kv.first.Scalar(), at = "parameters." + key;
            BASIN_CHECK(spec.shared.count(key) || spec.per_model.count(key), r.where(kv.first, at),
                        ": not a parameter of ", method_name, " (", names_of(spec.shared),
                        "; per model: ", names_of(spec.per_model), ")");
            if (key == "normalize" || key == "normalize_weights")
                o.normalize = r.boolean(kv.second, at);
            else if (key == "rescale")
                o.rescale = r.boolean(kv.second, at);
            else if (key == "int8_mask")
                r.boolean(kv.second, at); // how mergekit stores its masks: no effect on the values
            else if (key == "nuslerp_flatten")
                flatten = r.boolean(kv.second, at);
            else if (key == "nuslerp_row_wise")
                row_wise = r.boolean(kv.second, at);
            else if (key == "filter_wise")
                BASIN_CHECK(!r.boolean(kv.second, at), r.where(kv.first, at),
                            ": filter_wise: true (Model Stock per row) is not supported by basin");
            else
                values->shared[key] = r.setting(kv.second, at);
        }
    }
    fs::path base;
    // nuslerp: mergekit's flatten wins over row_wise; without it, rows (dim -1) or columns (dim 0)
    o.vectors = flatten ? "tensor" : row_wise ? "columns" : "rows";
    if (root["base_model"]) base = r.model(root["base_model"], "base_model");
    BASIN_CHECK(root["models"] && root["models"].IsSequence() && root["models"].size() > 0, file.string(),
                ": 'models' must list the models to merge");
    std::vector<fs::path> models;
    for (std::size_t i = 0; i < root["models"].size(); ++i) {
        const YAML::Node m = root["models"][i];
        const std::string at = str("models[", i, "]");
        BASIN_CHECK(m.IsMap() && m["model"], r.where(m, at), ": expected {model: PATH, parameters: {...}}");
        for (const auto& kv : m) {
            const std::string key = kv.first.Scalar();
            BASIN_CHECK(key == "model" || key == "parameters", r.where(kv.first, at + "." + key),
                        ": not supported by basin (model, parameters)");
        }
        const fs::path path = r.model(m["model"], at + ".model");
        std::map<std::string, Setting> own;
        if (const YAML::Node p = m["parameters"]) {
            BASIN_CHECK(p.IsMap(), r.where(p, at + ".parameters"), ": expected a mapping");
            for (const auto& kv : p) {
                const std::string key = kv.first.Scalar(), pat = at + ".parameters." + key;
                BASIN_CHECK(spec.per_model.count(key), r.where(kv.first, pat), ": not a per-model parameter of ",
                            method_name, " (", names_of(spec.per_model), ")");
                own[key] = r.setting(kv.second, pat);
            }
        }
        // the base may be listed among the models (mergekit's slerp and ties examples do): it is the base
        if (!base.empty() && fs::equivalent(path, base)) continue;
        models.push_back(path);
        values->models.push_back(own);
    }
    if (spec.per_model.count("weight"))
        for (std::size_t i = 0; i < models.size(); ++i)
            BASIN_CHECK(values->models[i].count("weight") || values->shared.count("weight"), file.string(), ": models[",
                        i, "] (", models[i].string(), ") has no weight, and parameters gives none");
    if (spec.method == MergeMethod::Slerp) {
        BASIN_CHECK(!base.empty(), file.string(), ": slerp needs base_model (its t = 0 end)");
        BASIN_CHECK(models.size() == 1, file.string(), ": slerp takes base_model and one other model, got ",
                    models.size(), " others");
        BASIN_CHECK(values->shared.count("t"), file.string(), ": slerp needs parameters.t");
        models.insert(models.begin(), base); // t = 0: the base, t = 1: the other
        values->models.insert(values->models.begin(), std::map<std::string, Setting>{});
        base.clear();
    } else if (spec.method == MergeMethod::Nuslerp) {
        BASIN_CHECK(models.size() == 2, file.string(), ": nuslerp takes two models besides base_model, got ",
                    models.size());
    } else if (spec.method != MergeMethod::Weighted && spec.method != MergeMethod::Multislerp &&
               spec.method != MergeMethod::Karcher) {
        BASIN_CHECK(!base.empty(), file.string(), ": ", method_name, " needs base_model");
    }
    o.models = models, o.base = base;
    if (spec.per_model.count("weight")) o.weights.assign(models.size(), 1.0); // set per tensor
    if (root["dtype"]) o.dtype = dtype_of(r, root["dtype"], "dtype");
    if (root["out_dtype"]) o.dtype = dtype_of(r, root["out_dtype"], "out_dtype");
    if (root["tokenizer_source"]) {
        const std::string source = r.text(root["tokenizer_source"], "tokenizer_source");
        BASIN_CHECK(source == "base", r.where(root["tokenizer_source"], "tokenizer_source"), ": '", source,
                    "' is not supported by basin (base: the tokenizer of base_model, what basin copies)");
    }
    o.per_tensor = [values](const std::string& tensor, std::size_t layers, MergeOptions& options) {
        values->apply(tensor, layers, options);
    };
    o.check_tensor_names = [values](const std::vector<std::string>& tensors, std::size_t layers) {
        values->check(tensors, layers);
    };
    o.config = {{"file", fs::absolute(file).lexically_normal().string()},
                {"merge_method", method_name},
                {"text", read_text_file(file)}};
    return o;
}

} // namespace basin
