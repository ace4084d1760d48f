// basin inspect DIR|FILE: architecture, parameter count, dtypes, tensor table and metadata.
#include "basin/core/error.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"
#include "basin/models/config.h"
#include "commands.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

namespace basin::cli {

Runner add_inspect(CLI::App& app) {
    struct Options {
        std::string path;
        bool json = false, no_tensors = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("path", o->path, "Checkpoint folder, .safetensors file or model.safetensors.index.json")->required();
    app.add_flag("--json", o->json, "Print as JSON");
    app.add_flag("--no-tensors", o->no_tensors, "Omit the tensor table");
    return [o]() {
        const fs::path given(o->path);
        BASIN_CHECK(fs::exists(given), given.string(), ": no such file or folder");
        const fs::path path = fs::is_directory(given) ? model_folder(given) : given;
        nlohmann::ordered_json out;
        out["path"] = given.string();
        if (path != given)
            out["body"] = path.string() + " (sentence-transformers Transformer module)";
        else if (fs::is_directory(path) && fs::exists(path / "modules.json"))
            out["layout"] = "sentence-transformers (the body at the top; pooling modules are not weights)";
        const bool adapter = is_adapter_folder(path);
        if (adapter) { // a PEFT adapter: its config; its tensors are the factors (io/adapter.h)
            const auto c = read_json_file(path / "adapter_config.json", limits::config_json);
            nlohmann::ordered_json a;
            for (const char* key : {"peft_type", "r", "lora_alpha", "use_rslora", "fan_in_fan_out", "target_modules",
                                    "rank_pattern", "alpha_pattern", "base_model_name_or_path", "task_type"})
                if (c.is_object() && c.contains(key)) a[key] = c[key];
            out["adapter"] = a;
        } else if (fs::is_directory(path)) {
            BASIN_CHECK(fs::exists(path / "config.json"), (path / "config.json").string(), ": config.json not found");
            HfConfig hf = HfConfig::load(path / "config.json");
            EncoderConfig c = EncoderConfig::resolve(hf, (path / "config.json").string());
            out["architecture"] = c.architecture_name();
            out["family"] = family_name(c.family);
            out["head"] = head_name(c.head);
            out["layers"] = c.num_layers;
            out["hidden_size"] = c.hidden_size;
            out["heads"] = c.num_heads;
            out["intermediate_size"] = c.intermediate_size;
            out["vocab_size"] = c.vocab_size;
            out["max_positions"] = c.max_positions;
            if (!c.labels.empty()) out["labels"] = c.labels;
            out["tokenizer"] = fs::exists(path / "tokenizer.json") ? "tokenizer.json" : "missing";
        }
        CheckpointTensors tensors(!adapter                                         ? path
                                  : fs::exists(path / "adapter_model.safetensors") ? path / "adapter_model.safetensors"
                                                                                   : path / "adapter_model.bin");
        std::int64_t params = 0;
        std::uint64_t bytes = 0;
        std::map<std::string, std::int64_t> by_dtype;
        nlohmann::ordered_json table = nlohmann::ordered_json::array();
        for (const auto& name : tensors.names()) {
            const auto& info = *tensors.find(name)->info;
            params += info.numel();
            bytes += info.nbytes();
            by_dtype[dtype_name(info.dtype)] += info.numel();
            table.push_back(
                {{"name", name}, {"shape", info.shape}, {"dtype", dtype_name(info.dtype)}, {"bytes", info.nbytes()}});
        }
        out["files"] = tensors.files().size();
        out["tensors"] = tensors.names().size();
        out["parameters"] = params;
        out["bytes"] = bytes;
        out["dtypes"] = by_dtype;
        nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
        for (const auto& [k, v] : tensors.files().front()->metadata())
            metadata[k] = v;
        out["metadata"] = metadata;
        if (!o->no_tensors) out["tensor_table"] = table;
        if (o->json) {
            std::printf("%s\n", out.dump(2).c_str());
            return 0;
        }
        for (auto it = out.begin(); it != out.end(); ++it) {
            if (it.key() == "tensor_table") continue;
            std::string value = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
            std::printf("%-18s %s\n", it.key().c_str(), value.c_str());
        }
        if (!o->no_tensors) {
            std::printf("\n%-64s %-20s %-6s %12s\n", "tensor", "shape", "dtype", "bytes");
            for (const auto& row : table)
                std::printf("%-64s %-20s %-6s %12llu\n", row["name"].get<std::string>().c_str(),
                            shape_string(row["shape"].get<Shape>()).c_str(), row["dtype"].get<std::string>().c_str(),
                            static_cast<unsigned long long>(row["bytes"].get<std::uint64_t>()));
        }
        return 0;
    };
}

} // namespace basin::cli
