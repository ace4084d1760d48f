// Model configuration at two levels:
//   HfConfig      mirrors a Hugging Face config.json field for field (BERT / RoBERTa family);
//   EncoderConfig is the resolved runtime config: family, head kind, labels, defaults applied,
//                 everything validated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace basin {

struct HfConfig {
    std::vector<std::string> architectures;
    std::string model_type;
    std::int64_t vocab_size = 0;
    std::int64_t hidden_size = 768;
    std::int64_t num_hidden_layers = 12;
    std::int64_t num_attention_heads = 12;
    std::int64_t intermediate_size = 3072;
    std::string hidden_act = "gelu";
    double hidden_dropout_prob = 0.1;
    double attention_probs_dropout_prob = 0.1;
    std::optional<double> classifier_dropout;
    std::int64_t max_position_embeddings = 512;
    std::int64_t type_vocab_size = 2;
    double layer_norm_eps = 1e-12;
    std::int64_t pad_token_id = 0;
    std::optional<std::int64_t> bos_token_id, eos_token_id;
    std::string position_embedding_type = "absolute";
    std::optional<std::int64_t> num_labels;
    std::map<std::int64_t, std::string> id2label;
    std::map<std::string, std::int64_t> label2id;
    std::string problem_type;
    double initializer_range = 0.02;
    nlohmann::json raw; // the whole file, so that unknown fields survive a save

    static HfConfig from_json(const nlohmann::json& json, const std::string& where);
    static HfConfig load(const std::filesystem::path& path);
    nlohmann::json to_json() const; // raw with the mirrored fields written back
};

enum class ModelFamily { Bert, Roberta };
enum class HeadKind { None, SequenceClassification, MaskedLM };
enum class Activation { Gelu, GeluTanh, Relu, Silu };

struct EncoderConfig {
    ModelFamily family = ModelFamily::Roberta;
    HeadKind head = HeadKind::None;
    std::int64_t vocab_size = 0;
    std::int64_t hidden_size = 0;
    std::int64_t num_layers = 0;
    std::int64_t num_heads = 0;
    std::int64_t intermediate_size = 0;
    Activation activation = Activation::Gelu;
    double layer_norm_eps = 1e-12;
    std::int64_t max_positions = 512;
    std::int64_t type_vocab_size = 2;
    std::int64_t pad_token_id = 0;
    double hidden_dropout = 0.1;
    double attention_dropout = 0.1;
    double classifier_dropout = 0.1;
    std::vector<std::string> labels; // index -> name (empty unless a classification head)
    bool pooler = true;              // whether the body has a pooler (transformers' add_pooling_layer)

    // Checkpoint key prefix of the body: "bert" or "roberta".
    std::string body_prefix() const { return family == ModelFamily::Bert ? "bert" : "roberta"; }
    std::string architecture_name() const;
    std::int64_t num_labels() const { return std::int64_t(labels.size()); }
    // Position ids for RoBERTa start after the padding index.
    std::int64_t position_offset() const { return family == ModelFamily::Roberta ? pad_token_id + 1 : 0; }

    static EncoderConfig resolve(const HfConfig& hf, const std::string& where);
};

// transformers' add_pooling_layer: base models and BERT's sequence classifier have a pooler.
bool default_pooler(ModelFamily family, HeadKind head);
const char* family_name(ModelFamily family);
const char* head_name(HeadKind head);

} // namespace basin
