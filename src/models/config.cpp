#include "basin/models/config.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"

#include <limits>
#include <type_traits>

namespace basin {
namespace {

template <typename T> void read_field(const nlohmann::json& json, const char* key, T& out, const std::string& where) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) return;
    if constexpr (std::is_integral_v<T>) {
        // get<integer>() converts a float of any size, which is undefined out of range (found by
        // fuzzing): integers must be written as integers
        BASIN_CHECK(it->is_number_integer(), where, ": field '", key, "' must be an integer, got ",
                    it->is_number() ? it->dump() : std::string(it->type_name()));
        if (it->is_number_unsigned())
            BASIN_CHECK(it->get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<T>::max()), where, ": field '",
                        key, "' is too large: ", it->dump());
    }
    try {
        out = it->get<T>();
    } catch (const nlohmann::json::exception&) {
        fail(where, ": field '", key, "' has the wrong type (", it->type_name(), ")");
    }
}

template <typename T>
void read_optional(const nlohmann::json& json, const char* key, std::optional<T>& out, const std::string& where) {
    T value{};
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) return;
    read_field(json, key, value, where);
    out = value;
}

} // namespace

HfConfig HfConfig::from_json(const nlohmann::json& json, const std::string& where) {
    BASIN_CHECK(json.is_object(), where, ": config must be a JSON object");
    HfConfig c;
    c.raw = json;
    read_field(json, "architectures", c.architectures, where);
    read_field(json, "model_type", c.model_type, where);
    read_field(json, "vocab_size", c.vocab_size, where);
    read_field(json, "hidden_size", c.hidden_size, where);
    read_field(json, "num_hidden_layers", c.num_hidden_layers, where);
    read_field(json, "num_attention_heads", c.num_attention_heads, where);
    read_field(json, "intermediate_size", c.intermediate_size, where);
    read_field(json, "hidden_act", c.hidden_act, where);
    read_field(json, "hidden_dropout_prob", c.hidden_dropout_prob, where);
    read_field(json, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, where);
    read_optional(json, "classifier_dropout", c.classifier_dropout, where);
    read_field(json, "max_position_embeddings", c.max_position_embeddings, where);
    read_field(json, "type_vocab_size", c.type_vocab_size, where);
    read_field(json, "layer_norm_eps", c.layer_norm_eps, where);
    read_field(json, "pad_token_id", c.pad_token_id, where);
    read_optional(json, "bos_token_id", c.bos_token_id, where);
    read_optional(json, "eos_token_id", c.eos_token_id, where);
    read_field(json, "position_embedding_type", c.position_embedding_type, where);
    read_optional(json, "num_labels", c.num_labels, where);
    read_field(json, "problem_type", c.problem_type, where);
    read_field(json, "initializer_range", c.initializer_range, where);
    if (auto it = json.find("id2label"); it != json.end() && !it->is_null()) {
        BASIN_CHECK(it->is_object(), where, ": 'id2label' must be an object");
        for (auto e = it->begin(); e != it->end(); ++e) {
            std::int64_t id = -1;
            try {
                std::size_t used = 0;
                id = std::stoll(e.key(), &used);
                if (used != e.key().size()) id = -1;
            } catch (...) {
            }
            BASIN_CHECK(id >= 0, where, ": id2label key '", e.key(), "' is not an integer");
            BASIN_CHECK(e.value().is_string(), where, ": id2label[", e.key(), "] must be a string");
            c.id2label[id] = e.value().get<std::string>();
        }
    }
    if (auto it = json.find("label2id"); it != json.end() && !it->is_null()) {
        BASIN_CHECK(it->is_object(), where, ": 'label2id' must be an object");
        for (auto e = it->begin(); e != it->end(); ++e) {
            BASIN_CHECK(e.value().is_number_integer(), where, ": label2id['", e.key(), "'] must be an integer");
            c.label2id[e.key()] = e.value().get<std::int64_t>();
        }
    }
    return c;
}

HfConfig HfConfig::load(const std::filesystem::path& path) {
    BASIN_CHECK(std::filesystem::exists(path), path.string(), ": config.json not found");
    return from_json(read_json_file(path, limits::config_json), path.string());
}

nlohmann::json HfConfig::to_json() const {
    nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
    j["architectures"] = architectures;
    j["model_type"] = model_type;
    j["vocab_size"] = vocab_size;
    j["hidden_size"] = hidden_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["intermediate_size"] = intermediate_size;
    j["hidden_act"] = hidden_act;
    j["hidden_dropout_prob"] = hidden_dropout_prob;
    j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
    if (classifier_dropout) j["classifier_dropout"] = *classifier_dropout;
    j["max_position_embeddings"] = max_position_embeddings;
    j["type_vocab_size"] = type_vocab_size;
    j["layer_norm_eps"] = layer_norm_eps;
    j["pad_token_id"] = pad_token_id;
    if (bos_token_id) j["bos_token_id"] = *bos_token_id;
    if (eos_token_id) j["eos_token_id"] = *eos_token_id;
    j["position_embedding_type"] = position_embedding_type;
    j["initializer_range"] = initializer_range;
    if (!id2label.empty()) {
        nlohmann::json id2 = nlohmann::json::object(), l2i = nlohmann::json::object();
        for (const auto& [id, name] : id2label) {
            id2[std::to_string(id)] = name;
            l2i[name] = id;
        }
        j["id2label"] = id2;
        j["label2id"] = l2i;
        j.erase("num_labels");
    }
    if (!problem_type.empty()) j["problem_type"] = problem_type;
    return j;
}

bool default_pooler(ModelFamily family, HeadKind head) {
    return head == HeadKind::None || (family == ModelFamily::Bert && head == HeadKind::SequenceClassification);
}

const char* family_name(ModelFamily family) {
    return family == ModelFamily::Bert ? "bert" : "roberta";
}

const char* head_name(HeadKind head) {
    switch (head) {
    case HeadKind::None:
        return "none";
    case HeadKind::SequenceClassification:
        return "sequence-classification";
    case HeadKind::MaskedLM:
        return "masked-lm";
    }
    return "?";
}

std::string EncoderConfig::architecture_name() const {
    std::string base = family == ModelFamily::Bert ? "Bert" : "Roberta";
    switch (head) {
    case HeadKind::None:
        return base + "Model";
    case HeadKind::SequenceClassification:
        return base + "ForSequenceClassification";
    case HeadKind::MaskedLM:
        return base + "ForMaskedLM";
    }
    return base;
}

EncoderConfig EncoderConfig::resolve(const HfConfig& hf, const std::string& where) {
    EncoderConfig c;
    std::string arch = hf.architectures.empty() ? "" : hf.architectures.front();
    std::string type = hf.model_type;
    if (arch.empty()) arch = type == "bert" ? "BertModel" : type == "roberta" ? "RobertaModel" : "";
    static const std::map<std::string, std::pair<ModelFamily, HeadKind>> kKnown = {
        {"BertModel", {ModelFamily::Bert, HeadKind::None}},
        {"BertForSequenceClassification", {ModelFamily::Bert, HeadKind::SequenceClassification}},
        {"BertForMaskedLM", {ModelFamily::Bert, HeadKind::MaskedLM}},
        {"BertForPreTraining", {ModelFamily::Bert, HeadKind::MaskedLM}},
        {"RobertaModel", {ModelFamily::Roberta, HeadKind::None}},
        {"RobertaForSequenceClassification", {ModelFamily::Roberta, HeadKind::SequenceClassification}},
        {"RobertaForMaskedLM", {ModelFamily::Roberta, HeadKind::MaskedLM}},
    };
    auto known = kKnown.find(arch);
    if (known == kKnown.end()) {
        std::string names;
        for (const auto& [name, _] : kKnown)
            names += (names.empty() ? "" : ", ") + name;
        fail(where, ": unsupported architecture '", arch.empty() ? type : arch, "' (supported: ", names, ")");
    }
    c.family = known->second.first;
    c.head = known->second.second;
    c.pooler = default_pooler(c.family, c.head);
    BASIN_CHECK(hf.vocab_size > 0, where, ": vocab_size must be positive, got ", hf.vocab_size);
    BASIN_CHECK(hf.hidden_size > 0 && hf.num_attention_heads > 0 && hf.hidden_size % hf.num_attention_heads == 0, where,
                ": hidden_size (", hf.hidden_size, ") must be a positive multiple of num_attention_heads (",
                hf.num_attention_heads, ")");
    BASIN_CHECK(hf.num_hidden_layers > 0, where, ": num_hidden_layers must be positive");
    BASIN_CHECK(hf.intermediate_size > 0, where, ": intermediate_size must be positive");
    BASIN_CHECK(hf.max_position_embeddings > 0, where, ": max_position_embeddings must be positive");
    BASIN_CHECK(hf.type_vocab_size > 0, where, ": type_vocab_size must be positive");
    BASIN_CHECK(hf.position_embedding_type == "absolute", where, ": position_embedding_type '",
                hf.position_embedding_type, "' is not supported (only 'absolute')");
    c.vocab_size = hf.vocab_size;
    c.hidden_size = hf.hidden_size;
    c.num_layers = hf.num_hidden_layers;
    c.num_heads = hf.num_attention_heads;
    c.intermediate_size = hf.intermediate_size;
    static const std::map<std::string, Activation> kActivations = {
        {"gelu", Activation::Gelu}, {"gelu_new", Activation::GeluTanh}, {"gelu_pytorch_tanh", Activation::GeluTanh},
        {"relu", Activation::Relu}, {"silu", Activation::Silu},         {"swish", Activation::Silu}};
    auto act = kActivations.find(hf.hidden_act);
    BASIN_CHECK(act != kActivations.end(), where, ": unsupported hidden_act '", hf.hidden_act,
                "' (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu)");
    c.activation = act->second;
    c.layer_norm_eps = hf.layer_norm_eps;
    c.max_positions = hf.max_position_embeddings;
    c.type_vocab_size = hf.type_vocab_size;
    c.pad_token_id = hf.pad_token_id;
    c.hidden_dropout = hf.hidden_dropout_prob;
    c.attention_dropout = hf.attention_probs_dropout_prob;
    c.classifier_dropout = hf.classifier_dropout.value_or(hf.hidden_dropout_prob);

    if (c.head == HeadKind::SequenceClassification) {
        std::int64_t n = hf.num_labels.value_or(0);
        if (!hf.id2label.empty()) n = std::int64_t(hf.id2label.size());
        if (n == 0) n = 2; // transformers' default
        c.labels.resize(std::size_t(n));
        for (std::int64_t i = 0; i < n; ++i) {
            auto it = hf.id2label.find(i);
            if (!hf.id2label.empty())
                BASIN_CHECK(it != hf.id2label.end(), where, ": id2label has ", n, " entries but no id ", i,
                            " (ids must be 0..", n - 1, ")");
            c.labels[std::size_t(i)] = it != hf.id2label.end() ? it->second : "LABEL_" + std::to_string(i);
        }
        for (const auto& [name, id] : hf.label2id) {
            BASIN_CHECK(id >= 0 && id < n && c.labels[std::size_t(id)] == name, where, ": label2id['", name,
                        "'] = ", id, " disagrees with id2label");
        }
    }
    return c;
}

} // namespace basin
