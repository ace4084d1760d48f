#include "basin/models/load.h"

#include "basin/core/error.h"
#include "basin/core/json_file.h"
#include "basin/core/strings.h"
#include "basin/io/adapter.h"

#include <algorithm>
#include <set>

namespace basin {

torch::Dtype torch_dtype(Dtype dtype) {
    switch (dtype) {
    case Dtype::F16:
        return torch::kFloat16;
    case Dtype::BF16:
        return torch::kBFloat16;
    case Dtype::F32:
        return torch::kFloat32;
    case Dtype::F64:
        return torch::kFloat64;
    case Dtype::I64:
        return torch::kInt64;
    case Dtype::I32:
        return torch::kInt32;
    case Dtype::U8:
        return torch::kUInt8;
    case Dtype::I8:
        return torch::kInt8;
    case Dtype::BOOL:
        return torch::kBool;
    default:
        fail("dtype ", dtype_name(dtype), " has no torch equivalent");
    }
}

namespace {

std::string list(const std::vector<std::string>& names, std::size_t limit = 12) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < limit; ++i)
        out += (i ? ", " : "") + names[i];
    if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
    return out;
}

// Entries transformers writes that are not parameters here: buffers and tied copies.
bool is_known_extra(const std::string& name) {
    return ends_with(name, "embeddings.position_ids") || ends_with(name, "predictions.decoder.weight") ||
           ends_with(name, "predictions.decoder.bias") || name == "lm_head.decoder.weight" ||
           name == "lm_head.decoder.bias";
}

} // namespace

std::map<std::string, std::string> match_checkpoint_names(const EncoderModel& model, const CheckpointTensors& tensors) {
    const std::string prefix = model->config.body_prefix() + ".";
    bool has_prefix = false;
    for (const auto& name : tensors.names())
        has_prefix = has_prefix || name.rfind(prefix, 0) == 0;
    std::map<std::string, std::string> renamed;
    for (const auto& name : tensors.names()) {
        std::string target = name;
        if (ends_with(target, "LayerNorm.gamma"))
            target.replace(target.size() - 5, 5, "weight");
        else if (ends_with(target, "LayerNorm.beta"))
            target.replace(target.size() - 4, 4, "bias");
        if (!has_prefix && is_bare_body_name(target)) target = prefix + target;
        renamed[target] = name;
    }
    return renamed;
}

void load_weights(EncoderModel& model, const CheckpointTensors& tensors, const LoadOptions& options) {
    const std::string where = "loading " + tensors.source().string();
    const std::string prefix = model->config.body_prefix() + ".";
    const std::map<std::string, std::string> renamed = match_checkpoint_names(model, tensors);

    auto params = model->named_parameters(/*recurse=*/true);
    std::vector<std::string> missing, unexpected, misshaped, bad_dtype;
    std::set<std::string> used;
    torch::NoGradGuard no_grad;
    for (auto& item : params) {
        const std::string& name = item.key();
        const bool head = model->is_head_parameter(name);
        const bool pooler = name.rfind(prefix + "pooler.", 0) == 0;
        if (head && !options.load_head) continue;
        auto it = renamed.find(name);
        if (it == renamed.end()) {
            // A pooler is absent from checkpoints of architectures without one (ForMaskedLM);
            // it is optional, and keeps its initialisation.
            if (!pooler) missing.push_back(name);
            continue;
        }
        used.insert(it->second);
        const auto* ref = tensors.find(it->second);
        auto& param = item.value();
        const Shape expected(param.sizes().begin(), param.sizes().end());
        if (ref->info->shape != expected) {
            misshaped.push_back(name + ": expected " + shape_string(expected) + ", got " +
                                shape_string(ref->info->shape));
            continue;
        }
        if (!is_floating(ref->info->dtype)) {
            bad_dtype.push_back(name + " (" + dtype_name(ref->info->dtype) + ")");
            continue;
        }
        auto cpu = torch::empty(param.sizes(), torch::kFloat32);
        convert_to_f32(ref->info->dtype, ref->data(), cpu.data_ptr<float>(), std::size_t(cpu.numel()));
        param.copy_(cpu.to(param.device(), param.scalar_type()));
    }
    for (const auto& name : tensors.names()) {
        if (used.count(name) || is_known_extra(name)) continue;
        // Without load_head, any non-body tensor (another architecture's head) is ignored.
        std::string target = name;
        for (const auto& [model_name, file_name] : renamed)
            if (file_name == name) target = model_name;
        if (!options.load_head && target.rfind(prefix, 0) != 0) continue;
        if (target.rfind(prefix + "pooler.", 0) == 0 && !model->body->pooler) continue;
        unexpected.push_back(name);
    }
    if (missing.empty() && unexpected.empty() && misshaped.empty() && bad_dtype.empty()) return;
    std::string message = where + ": checkpoint does not match " + model->config.architecture_name();
    if (!missing.empty()) message += "; " + std::to_string(missing.size()) + " missing: " + list(missing);
    if (!unexpected.empty()) message += "; " + std::to_string(unexpected.size()) + " unexpected: " + list(unexpected);
    if (!misshaped.empty())
        message += "; " + std::to_string(misshaped.size()) + " with the wrong shape: " + list(misshaped);
    if (!bad_dtype.empty())
        message += "; " + std::to_string(bad_dtype.size()) + " not floating point: " + list(bad_dtype);
    throw Error(message);
}

namespace {

// What load_model and load_body share: the folder's config and tensors, a model of that config
// on the device, the weights loaded. body_only: no head, no pooler (features come before it).
LoadedModel load_adapter(const std::filesystem::path& folder, const LoadOptions& options, bool body_only);

LoadedModel load_folder(const std::filesystem::path& folder, const LoadOptions& options, bool body_only) {
    BASIN_CHECK(std::filesystem::is_directory(folder), folder.string(), ": model folder not found");
    if (is_adapter_folder(folder)) return load_adapter(folder, options, body_only);
    const std::filesystem::path dir = model_folder(folder); // a sentence-transformers folder's body
    LoadedModel loaded;
    loaded.dir = dir;
    loaded.hf = HfConfig::load(dir / "config.json");
    loaded.config = EncoderConfig::resolve(loaded.hf, (dir / "config.json").string());
    if (body_only) {
        loaded.config.head = HeadKind::None;
        loaded.config.labels.clear();
        loaded.config.pooler = loaded.config.pooler && options.keep_pooler; // features are read before it
    }
    CheckpointTensors tensors(dir);
    if (!body_only) {
        std::map<Dtype, std::uint64_t> bytes_by_dtype;
        for (const auto& name : tensors.names())
            bytes_by_dtype[tensors.find(name)->info->dtype] += tensors.find(name)->info->nbytes();
        if (!bytes_by_dtype.empty())
            loaded.stored_dtype = std::max_element(bytes_by_dtype.begin(), bytes_by_dtype.end(), [](auto& a, auto& b) {
                                      return a.second < b.second;
                                  })->first;
    }
    loaded.metadata = tensors.files().front()->metadata();
    loaded.model = EncoderModel(loaded.config);
    loaded.model->to(options.device);
    LoadOptions load = options;
    if (body_only) load.load_head = false;
    load_weights(loaded.model, tensors, load);
    return loaded;
}

constexpr const char* kPeftPrefix = "base_model.model.";

// The labels of an adapter's head of n classes: its basin_run.json's (basin finetune --mode lora),
// else the base config's when it has n, else LABEL_0 .. LABEL_{n-1} (as transformers names them).
std::vector<std::string> adapter_labels(const std::filesystem::path& folder, const EncoderConfig& base,
                                        std::int64_t n) {
    const auto record = folder / "basin_run.json";
    if (std::filesystem::exists(record)) {
        const nlohmann::json j = read_json_object(record);
        if (j.contains("labels") && j["labels"].is_array() && std::int64_t(j["labels"].size()) == n)
            return j["labels"].get<std::vector<std::string>>();
    }
    if (std::int64_t(base.labels.size()) == n) return base.labels;
    std::vector<std::string> labels;
    for (std::int64_t i = 0; i < n; ++i)
        labels.push_back("LABEL_" + std::to_string(i));
    return labels;
}

// A PEFT LoRA adapter folder (io/adapter.h): its base's body with s B A added to every adapted
// weight, and (load_model) the adapter's sequence-classification head, which PEFT saves as
// modules_to_save under base_model.model.<the head's names>.
LoadedModel load_adapter(const std::filesystem::path& folder, const LoadOptions& options, bool body_only) {
    const std::filesystem::path base_dir = model_folder(adapter_base_folder(folder, options.adapter_base));
    LoadedModel loaded;
    loaded.dir = base_dir;
    loaded.hf = HfConfig::load(base_dir / "config.json");
    loaded.config = EncoderConfig::resolve(loaded.hf, (base_dir / "config.json").string());
    const CheckpointTensors base(base_dir);
    const LoraAdapter adapter(folder, base);
    const SafetensorsFile& file = adapter.file();
    if (body_only) {
        loaded.config.head = HeadKind::None;
        loaded.config.labels.clear();
        loaded.config.pooler = loaded.config.pooler && options.keep_pooler;
    } else {
        // the head's class count from its output layer (RoBERTa: classifier.out_proj, BERT: classifier)
        const std::string out_layer =
            std::string(kPeftPrefix) +
            (loaded.config.family == ModelFamily::Roberta ? "classifier.out_proj.weight" : "classifier.weight");
        const TensorInfo* head = file.find(out_layer);
        BASIN_CHECK(head && head->shape.size() == 2, file.path().string(), ": no classification head (", out_layer,
                    ", PEFT's modules_to_save): the adapter can be mapped and merged, not evaluated");
        loaded.config.head = HeadKind::SequenceClassification;
        loaded.config.pooler = default_pooler(loaded.config.family, loaded.config.head);
        loaded.config.labels = adapter_labels(folder, loaded.config, head->shape[0]);
    }
    loaded.metadata = base.files().front()->metadata();
    loaded.model = EncoderModel(loaded.config);
    loaded.model->to(options.device);
    LoadOptions body = options; // the base's body; the head is the adapter's
    body.load_head = false;
    load_weights(loaded.model, base, body);

    torch::NoGradGuard no_grad;
    auto params = loaded.model->named_parameters();
    std::map<std::string, std::string> model_name_of; // the base's tensor name -> the model's
    for (const auto& [model_name, file_name] : match_checkpoint_names(loaded.model, base))
        model_name_of[file_name] = model_name;
    auto add_values = [&](const std::string& name, const std::vector<float>& values, bool replace) {
        torch::Tensor* p = params.find(name);
        BASIN_CHECK(p && p->numel() == std::int64_t(values.size()), folder.string(), ": ", name,
                    " does not fit the model built from ", base_dir.string());
        auto t = torch::from_blob(const_cast<float*>(values.data()), p->sizes(), torch::kFloat32)
                     .to(p->device(), p->scalar_type());
        replace ? p->copy_(t) : p->add_(t);
    };
    for (const auto& w : adapter.weights()) {
        const auto it = model_name_of.find(w.target);
        if (it == model_name_of.end()) continue; // outside this model (a pooler the body drops)
        if (!params.find(it->second)) continue;
        add_values(it->second, adapter.delta(w), false);
    }
    if (!body_only)
        for (auto& item : params) {
            if (!loaded.model->is_head_parameter(item.key())) continue;
            const std::string key = kPeftPrefix + item.key();
            const TensorInfo* info = file.find(key);
            BASIN_CHECK(info, file.path().string(), ": no tensor ", key, " (the head ", item.key(),
                        " as PEFT saves modules_to_save)");
            BASIN_CHECK(info->shape == Shape(item.value().sizes().begin(), item.value().sizes().end()),
                        file.path().string(), ": ", key, " is ", shape_string(info->shape), ", expected ",
                        shape_string(Shape(item.value().sizes().begin(), item.value().sizes().end())));
            std::vector<float> values(std::size_t(info->numel()));
            convert_to_f32(info->dtype, file.data(*info), values.data(), values.size());
            add_values(item.key(), values, true);
        }
    return loaded;
}

} // namespace

LoadedModel load_model(const std::filesystem::path& folder, const LoadOptions& options) {
    return load_folder(folder, options, /*body_only=*/false);
}

LoadedModel load_body(const std::filesystem::path& folder, const LoadOptions& options) {
    return load_folder(folder, options, /*body_only=*/true);
}

HfConfig config_for(const EncoderConfig& c, HfConfig hf) {
    hf.architectures = {c.architecture_name()};
    hf.model_type = family_name(c.family);
    hf.vocab_size = c.vocab_size;
    hf.hidden_size = c.hidden_size;
    hf.num_hidden_layers = c.num_layers;
    hf.num_attention_heads = c.num_heads;
    hf.intermediate_size = c.intermediate_size;
    switch (c.activation) {
    case Activation::Gelu:
        hf.hidden_act = "gelu";
        break;
    case Activation::GeluTanh:
        hf.hidden_act = "gelu_new";
        break;
    case Activation::Relu:
        hf.hidden_act = "relu";
        break;
    case Activation::Silu:
        hf.hidden_act = "silu";
        break;
    }
    hf.layer_norm_eps = c.layer_norm_eps;
    hf.max_position_embeddings = c.max_positions;
    hf.type_vocab_size = c.type_vocab_size;
    hf.pad_token_id = c.pad_token_id;
    hf.hidden_dropout_prob = c.hidden_dropout;
    hf.attention_probs_dropout_prob = c.attention_dropout;
    hf.id2label.clear();
    hf.label2id.clear();
    for (std::size_t i = 0; i < c.labels.size(); ++i) {
        hf.id2label[std::int64_t(i)] = c.labels[i];
        hf.label2id[c.labels[i]] = std::int64_t(i);
    }
    return hf;
}

void save_model(EncoderModel& model, const HfConfig& hf, const std::filesystem::path& dir, Dtype dtype,
                const std::map<std::string, std::string>& metadata) {
    BASIN_CHECK(dtype == Dtype::F32 || dtype == Dtype::F16 || dtype == Dtype::BF16, "saving ", dir.string(),
                ": dtype must be F32, F16 or BF16, got ", dtype_name(dtype));
    std::filesystem::create_directories(dir);
    std::vector<torch::Tensor> keep_alive;
    std::vector<TensorView> views;
    for (const auto& item : model->named_parameters(/*recurse=*/true)) {
        auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
        torch::Tensor stored;
        if (dtype == Dtype::F32) {
            stored = t;
        } else {
            stored = torch::empty(t.sizes(), torch::kInt16);
            convert_from_f32(dtype, t.data_ptr<float>(), stored.data_ptr(), std::size_t(t.numel()));
        }
        keep_alive.push_back(stored);
        views.push_back({item.key(), dtype, Shape(t.sizes().begin(), t.sizes().end()), stored.data_ptr(), {}});
    }
    auto meta = metadata;
    meta.emplace("format", "pt");
    write_checkpoint_weights(dir, views, meta);
    nlohmann::json config = hf.to_json();
    config["torch_dtype"] = dtype == Dtype::F32 ? "float32" : dtype == Dtype::F16 ? "float16" : "bfloat16";
    write_text_atomically(dir / "config.json", config.dump(2) + "\n");
}

} // namespace basin
