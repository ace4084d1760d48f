#include "basin/io/adapter.h"

#include "basin/core/error.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/space/gram.h" // is_task_head_tensor

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

namespace basin {

namespace {

using nlohmann::json;

constexpr const char* kPrefix = "base_model.model.";

// A factor's key split into module and kind: <module>.lora_A[.<adapter>].weight, the same with
// lora_B, lora_embedding_A, lora_embedding_B. kind is "" for any other tensor.
struct FactorKey {
    std::string module, kind; // kind: A, B, embedding_A, embedding_B
};

FactorKey parse_key(const std::string& key) {
    std::string name = key.rfind(kPrefix, 0) == 0 ? key.substr(std::string(kPrefix).size()) : key;
    for (const char* kind : {"lora_embedding_A", "lora_embedding_B", "lora_A", "lora_B"}) {
        const std::string marker = std::string(".") + kind + ".";
        const auto at = name.rfind(marker);
        if (at == std::string::npos) continue;
        const std::string rest = name.substr(at + marker.size()); // weight, or <adapter>.weight
        if (rest != "weight" &&
            (rest.size() < 8 || rest.compare(rest.size() - 7, 7, ".weight") != 0 || rest.find('.') != rest.size() - 7))
            continue;
        return {name.substr(0, at), std::string(kind).substr(5)};
    }
    return {name, ""};
}

std::int64_t config_int(const json& c, const fs::path& file, const char* key) {
    BASIN_CHECK(c.contains(key) && c[key].is_number_integer() && c[key].get<std::int64_t>() > 0, file.string(), ": '",
                key, "' must be a positive whole number",
                c.contains(key) ? ", found " + c[key].dump() : std::string(", and it is missing"));
    return c[key].get<std::int64_t>();
}

LoraConfig read_config(const fs::path& file) {
    const json c = read_json_file(file, limits::config_json);
    BASIN_CHECK(c.is_object(), file.string(), ": expected a JSON object (PEFT's adapter_config.json)");
    LoraConfig l;
    l.peft_type = c.value("peft_type", "");
    BASIN_CHECK(l.peft_type == "LORA", file.string(), ": peft_type '", l.peft_type,
                "' is not supported: basin reads LoRA adapters (peft_type LORA), whose task vector is scale * B A");
    BASIN_CHECK(!c.value("use_dora", false), file.string(),
                ": use_dora is true: a DoRA adapter rescales the weight's columns, so its task vector is not "
                "scale * B A (not supported)");
    l.r = config_int(c, file, "r");
    BASIN_CHECK(c.contains("lora_alpha") && c["lora_alpha"].is_number(), file.string(),
                ": 'lora_alpha' must be a number");
    l.alpha = c["lora_alpha"].get<double>();
    l.rslora = c.value("use_rslora", false);
    l.fan_in_fan_out = c.value("fan_in_fan_out", false);
    if (c.contains("base_model_name_or_path") && c["base_model_name_or_path"].is_string())
        l.base_model = c["base_model_name_or_path"].get<std::string>();
    if (c.contains("target_modules")) {
        if (c["target_modules"].is_string()) l.target_modules = {c["target_modules"].get<std::string>()};
        if (c["target_modules"].is_array())
            for (const auto& t : c["target_modules"])
                if (t.is_string()) l.target_modules.push_back(t.get<std::string>());
    }
    for (const char* key : {"bias"})
        BASIN_CHECK(!c.contains(key) || c[key] == "none", file.string(), ": bias '",
                    c.contains(key) ? c[key].dump() : "",
                    "' trains biases besides the factors (not supported; "
                    "basin reads adapters with bias \"none\")");
    return l;
}

// PEFT's pattern rule: the first key k of the pattern (in file order) with the module matching .*\.k$
// (or equal to k); the module's value there, else the default.
template <class T>
T pattern_value(const json& pattern, const std::string& module, T fallback, const fs::path& file, const char* what) {
    if (!pattern.is_object()) return fallback;
    for (const auto& [key, value] : pattern.items()) {
        bool matches = module == key;
        if (!matches) try {
                matches = std::regex_match(module, std::regex(".*\\." + key));
            } catch (const std::regex_error&) {
                fail(file.string(), ": ", what, " key '", key, "' is not a regular expression");
            }
        if (matches) {
            BASIN_CHECK(value.is_number(), file.string(), ": ", what, "['", key, "'] must be a number");
            return value.template get<T>();
        }
    }
    return fallback;
}

std::string last_component(std::string s) {
    while (!s.empty() && s.back() == '/')
        s.pop_back();
    const auto slash = s.rfind('/');
    return slash == std::string::npos ? s : s.substr(slash + 1);
}

// The base's names: its folder's and, where its config.json records one, _name_or_path's.
void check_base_name(const LoraConfig& c, const CheckpointTensors& base, const fs::path& config_file) {
    if (c.base_model.empty()) return;
    const fs::path folder = fs::is_directory(base.source()) ? base.source() : base.source().parent_path();
    const fs::path base_config = folder / "config.json";
    if (!fs::exists(base_config)) return;
    const json b = read_json_file(base_config, limits::config_json);
    const std::string recorded = b.is_object() ? b.value("_name_or_path", "") : "";
    if (recorded.empty()) return; // nothing to compare with: the shapes decide
    const std::string wanted = last_component(c.base_model);
    BASIN_CHECK(wanted == last_component(recorded) || wanted == last_component(folder.lexically_normal().string()),
                config_file.string(), ": base_model_name_or_path '", c.base_model,
                "' names another model than the base ", folder.string(), " (its config.json: _name_or_path '", recorded,
                "')");
}

} // namespace

bool is_adapter_folder(const fs::path& folder) {
    return fs::is_directory(folder) && fs::exists(folder / "adapter_config.json");
}

WeightsByTarget weights_by_target(const std::vector<std::unique_ptr<LoraAdapter>>& adapters) {
    WeightsByTarget by_target;
    for (std::size_t i = 0; i < adapters.size(); ++i)
        for (const auto& w : adapters[i]->weights()) {
            auto& members = by_target[w.target];
            if (!members.empty()) {
                const auto& [first, first_weight] = members.front();
                BASIN_CHECK(w.transposed == first_weight->transposed, adapters[i]->folder().string(), ": module '",
                            w.module, "' is stored ", w.transposed ? "transposed" : "not transposed",
                            " (fan_in_fan_out), unlike in ", adapters[first]->folder().string());
            }
            members.emplace_back(i, &w);
        }
    return by_target;
}

fs::path adapter_base_folder(const fs::path& adapter, const fs::path& given) {
    if (!given.empty()) return given;
    const fs::path config_file = adapter / "adapter_config.json";
    const json c = read_json_file(config_file, limits::config_json);
    const std::string named = c.is_object() ? c.value("base_model_name_or_path", "") : "";
    if (!named.empty()) {
        for (const fs::path& candidate : {fs::path(named), adapter / named})
            if (fs::exists(candidate / "config.json")) return candidate;
    }
    fail(adapter.string(), ": a LoRA adapter folder; give the base it was trained on (--adapter-base DIR)",
         named.empty() ? std::string() : "; its base_model_name_or_path '" + named + "' is not a model folder here");
}

LoraAdapter::LoraAdapter(const fs::path& folder, const CheckpointTensors& base) : folder_(folder) {
    const fs::path config_file = folder / "adapter_config.json";
    BASIN_CHECK(fs::exists(config_file), folder.string(), ": no adapter_config.json (not a PEFT adapter folder)");
    config_ = read_config(config_file);
    check_base_name(config_, base, config_file);
    const json raw = read_json_file(config_file, limits::config_json);
    const json rank_pattern = raw.value("rank_pattern", json::object());
    const json alpha_pattern = raw.value("alpha_pattern", json::object());

    const fs::path weights = fs::exists(folder / "adapter_model.safetensors") ? folder / "adapter_model.safetensors"
                                                                              : folder / "adapter_model.bin";
    BASIN_CHECK(fs::exists(weights), folder.string(), ": no adapter_model.safetensors or adapter_model.bin");
    file_ = SafetensorsFile::open(weights);
    const std::string where = weights.string();

    // the factors by module, in file order
    std::map<std::string, std::size_t> index;
    struct Pair {
        std::string module;
        const TensorInfo *a = nullptr, *b = nullptr;
        bool embedding = false;
    };
    std::vector<Pair> pairs;
    for (const auto& t : file_->tensors()) {
        const FactorKey key = parse_key(t.name);
        if (key.kind.empty()) {
            if (is_task_head_tensor(key.module)) {
                ignored_.push_back(t.name + " (a task head: not part of the body's task vector)");
                continue;
            }
            fail(where, ": tensor '", t.name,
                 "' is neither a LoRA factor (lora_A / lora_B) nor a task head (trained biases and modules_to_save of "
                 "body modules are not supported)");
        }
        if (is_task_head_tensor(key.module)) {
            ignored_.push_back(t.name + " (a factor of a task head: not part of the body's task vector)");
            continue;
        }
        const bool embedding = key.kind.rfind("embedding_", 0) == 0;
        auto [it, fresh] = index.emplace(key.module, pairs.size());
        if (fresh) pairs.push_back({key.module, nullptr, nullptr, embedding});
        Pair& p = pairs[it->second];
        BASIN_CHECK(p.embedding == embedding, where, ": module '", key.module,
                    "' has both lora_embedding and lora factors");
        const TensorInfo*& slot = key.kind.back() == 'A' ? p.a : p.b;
        BASIN_CHECK(!slot, where, ": module '", key.module, "' has two lora_", key.kind, " tensors");
        BASIN_CHECK(t.shape.size() == 2, where, ": tensor '", t.name, "' is ", shape_string(t.shape),
                    "; expected a matrix (lora_", key.kind, ")");
        BASIN_CHECK(is_floating(t.dtype), where, ": tensor '", t.name, "' has dtype ", dtype_name(t.dtype),
                    "; expected a floating-point dtype");
        slot = &t;
    }
    BASIN_CHECK(!pairs.empty(), where,
                ": no LoRA factors (expected tensors named <module>.lora_A.weight and "
                "<module>.lora_B.weight)");
    for (const auto& p : pairs) {
        const std::string a_name = p.embedding ? "lora_embedding_A" : "lora_A",
                          b_name = p.embedding ? "lora_embedding_B" : "lora_B";
        BASIN_CHECK(p.a && p.b, where, ": module '", p.module, "' has ", p.a ? a_name : b_name, " but no ",
                    p.a ? b_name : a_name, " (", (p.a ? p.a : p.b)->name, ")");
        LoraWeight w;
        w.module = p.module, w.a = p.a, w.b = p.b;
        w.rank = p.a->shape[0], w.in = p.a->shape[1], w.out = p.b->shape[0];
        BASIN_CHECK(p.b->shape[1] == w.rank, where, ": module '", p.module, "': rank mismatch: ", p.a->name, " is ",
                    shape_string(p.a->shape), " (rank ", w.rank, ") but ", p.b->name, " is ", shape_string(p.b->shape),
                    " (rank ", p.b->shape[1], ")");
        const auto r = pattern_value<std::int64_t>(rank_pattern, p.module, config_.r, config_file, "rank_pattern");
        BASIN_CHECK(w.rank == r, where, ": module '", p.module, "': its factors have rank ", w.rank,
                    " but adapter_config.json says r = ", r);
        const double alpha =
            pattern_value<double>(alpha_pattern, p.module, config_.alpha, config_file, "alpha_pattern");
        w.scale = alpha / (config_.rslora ? std::sqrt(double(r)) : double(r));
        // PEFT: embeddings and fan_in_fan_out (Conv1D) layers add (B A)^T to their stored weight
        w.transposed = p.embedding || config_.fan_in_fan_out;
        const std::string target = p.module + ".weight";
        const auto* ref = base.find(target);
        BASIN_CHECK(ref, where, ": module '", p.module, "' is adapted, but the base ", base.source().string(),
                    " has no tensor '", target, "' (an adapter for another base?)");
        w.target = ref->info->name;
        const Shape want = w.transposed ? Shape{w.in, w.out} : Shape{w.out, w.in};
        BASIN_CHECK(ref->info->shape == want, where, ": module '", p.module, "': ", w.transposed ? "(B A)^T" : "B A",
                    " is ", shape_string(want), " but the base's ", w.target, " is ", shape_string(ref->info->shape),
                    " (an adapter for another base?)");
        weights_.push_back(w);
    }
}

std::vector<float> LoraAdapter::a(const LoraWeight& w) const {
    std::vector<float> out(std::size_t(w.a->numel()));
    convert_to_f32(w.a->dtype, file_->data(*w.a), out.data(), out.size());
    return out;
}

std::vector<float> LoraAdapter::b(const LoraWeight& w) const {
    std::vector<float> out(std::size_t(w.b->numel()));
    convert_to_f32(w.b->dtype, file_->data(*w.b), out.data(), out.size());
    return out;
}

std::vector<float> LoraAdapter::delta(const LoraWeight& w) const {
    const std::vector<float> a_values = a(w), b_values = b(w);
    const auto out = std::size_t(w.out), in = std::size_t(w.in), rank = std::size_t(w.rank);
    std::vector<float> d(out * in);
    for (std::size_t o = 0; o < out; ++o)
        for (std::size_t i = 0; i < in; ++i) {
            double s = 0;
            for (std::size_t k = 0; k < rank; ++k)
                s += double(b_values[o * rank + k]) * double(a_values[k * in + i]);
            d[w.transposed ? i * out + o : o * in + i] = float(w.scale * s);
        }
    return d;
}

} // namespace basin
