// BERT and RoBERTa encoders in libtorch. Module names equal the Hugging Face checkpoint keys
// (roberta.encoder.layer.3.attention.self.query.weight), so named_parameters() is the
// safetensors key list and loading, saving and weight-space iteration share one loop.
//
// Shape legend: B batch, T tokens, H hidden size, N heads, D = H / N, V vocab, L labels.
#pragma once

#include "basin/models/config.h"

#include <array>
#include <functional>
#include <torch/torch.h>

namespace basin {

// Observing what the body's linear layers read (RegMean's input Gram matrices): while an observer
// is set on this thread, every linear layer of the body (attention's query, key and value, the
// dense layers of the attention output, the intermediate and the output blocks, the pooler) passes
// it the layer and its input [..., in] just before applying itself. Unset (the default), each
// layer pays one branch.
using LinearInputObserver = std::function<void(const torch::nn::LinearImpl& layer, const torch::Tensor& input)>;
void set_linear_input_observer(LinearInputObserver observer); // empty: none

struct EmbeddingsImpl : torch::nn::Module {
    explicit EmbeddingsImpl(const EncoderConfig& c);
    // input_ids, type_ids: [B, T]; positions: [B, T] -> [B, T, H]
    torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& type_ids,
                          const torch::Tensor& positions);
    torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
    torch::nn::LayerNorm LayerNorm{nullptr};
    torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

struct SelfAttentionImpl : torch::nn::Module {
    explicit SelfAttentionImpl(const EncoderConfig& c);
    // x: [B, T, H]; additive_mask: [B, 1, 1, T] -> [B, T, H]
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
    torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
    torch::nn::Dropout dropout{nullptr};
    std::int64_t heads, head_dim;

  private:
    // Q, K and V weights concatenated for one GEMM; reused without autograd while the
    // parameters' version counters are unchanged.
    std::pair<torch::Tensor, torch::Tensor> fused_qkv();
    torch::Tensor fused_weight_, fused_bias_;
    std::array<std::int64_t, 6> fused_versions_{};
};
TORCH_MODULE(SelfAttention);

// dense -> dropout -> LayerNorm(x + residual): BERT's SelfOutput and Output blocks.
struct ResidualOutputImpl : torch::nn::Module {
    ResidualOutputImpl(std::int64_t in, const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
    torch::nn::Linear dense{nullptr};
    torch::nn::LayerNorm LayerNorm{nullptr};
    torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ResidualOutput);

struct AttentionImpl : torch::nn::Module {
    explicit AttentionImpl(const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
    SelfAttention self{nullptr};
    ResidualOutput output{nullptr};
};
TORCH_MODULE(Attention);

struct IntermediateImpl : torch::nn::Module {
    explicit IntermediateImpl(const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x); // [B, T, H] -> [B, T, I]
    torch::nn::Linear dense{nullptr};
    Activation activation;
};
TORCH_MODULE(Intermediate);

struct LayerImpl : torch::nn::Module {
    explicit LayerImpl(const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
    Attention attention{nullptr};
    Intermediate intermediate{nullptr};
    ResidualOutput output{nullptr};
};
TORCH_MODULE(Layer);

struct EncoderStackImpl : torch::nn::Module {
    explicit EncoderStackImpl(const EncoderConfig& c);
    torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(EncoderStack);

struct PoolerImpl : torch::nn::Module {
    explicit PoolerImpl(const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& hidden); // [B, T, H] -> [B, H] (first token)
    torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(Pooler);

// The body: embeddings + layers (+ pooler where the architecture has one).
struct BodyImpl : torch::nn::Module {
    BodyImpl(const EncoderConfig& c, bool with_pooler);
    // -> last hidden state [B, T, H]
    torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                          const torch::Tensor& type_ids);
    torch::Tensor positions(const torch::Tensor& input_ids) const;
    EncoderConfig config;
    Embeddings embeddings{nullptr};
    EncoderStack encoder{nullptr};
    Pooler pooler{nullptr};
};
TORCH_MODULE(Body);

// RoBERTa's classification head: dense -> tanh -> out_proj on the first token.
struct RobertaClassifierImpl : torch::nn::Module {
    explicit RobertaClassifierImpl(const EncoderConfig& c);
    torch::Tensor forward(const torch::Tensor& hidden); // [B, T, H] -> [B, L]
    torch::nn::Linear dense{nullptr}, out_proj{nullptr};
    torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(RobertaClassifier);

// Masked-LM transform (dense -> act -> LayerNorm); the decoder is tied to the word embeddings.
struct LMTransformImpl : torch::nn::Module {
    LMTransformImpl(const EncoderConfig& c, const char* norm_name);
    torch::Tensor forward(const torch::Tensor& hidden);
    torch::nn::Linear dense{nullptr};
    torch::nn::LayerNorm norm{nullptr};
    Activation activation;
};
TORCH_MODULE(LMTransform);

struct BertLMPredictionsImpl : torch::nn::Module {
    explicit BertLMPredictionsImpl(const EncoderConfig& c);
    LMTransform transform{nullptr};
    torch::Tensor bias;
};
TORCH_MODULE(BertLMPredictions);

struct BertLMHeadImpl : torch::nn::Module { // "cls"
    explicit BertLMHeadImpl(const EncoderConfig& c);
    BertLMPredictions predictions{nullptr};
};
TORCH_MODULE(BertLMHead);

struct RobertaLMHeadImpl : torch::nn::Module { // "lm_head"
    explicit RobertaLMHeadImpl(const EncoderConfig& c);
    torch::nn::Linear dense{nullptr};
    torch::nn::LayerNorm layer_norm{nullptr};
    torch::Tensor bias;
};
TORCH_MODULE(RobertaLMHead);

// A whole model: body under "bert."/"roberta." plus the head of its architecture.
struct EncoderModelImpl : torch::nn::Module {
    explicit EncoderModelImpl(const EncoderConfig& c);

    // Sequence classification logits [B, L]; requires a classification head.
    torch::Tensor classify(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                           const torch::Tensor& type_ids);
    // The same logits from the body's output [B, T, H] (for callers that also read the features).
    torch::Tensor classify_hidden(const torch::Tensor& hidden);
    // Masked-LM logits [B, T, V]; requires a masked-LM head.
    torch::Tensor mlm_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
    // Masked-LM logits [M, V] at the M positions where selected ([B, T] bool) is true only: the
    // vocabulary projection is the costly part and pretraining needs it at masked positions.
    torch::Tensor mlm_logits_at(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& selected);
    // First-token feature after the encoder [B, H] (the input of RoBERTa's classifier).
    torch::Tensor features(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                           const torch::Tensor& type_ids);

    // The masked-LM head on hidden states [..., H] -> [..., V].
    torch::Tensor lm_head(const torch::Tensor& hidden);

    // Names of parameters in the head (dropped when comparing bodies across datasets).
    bool is_head_parameter(const std::string& name) const;

    EncoderConfig config;
    Body body{nullptr};
    torch::nn::Linear bert_classifier{nullptr}; // BERT: "classifier" on the pooled output
    torch::nn::Dropout bert_dropout{nullptr};
    RobertaClassifier roberta_classifier{nullptr}; // RoBERTa: "classifier.{dense,out_proj}"
    BertLMHead bert_lm{nullptr};                   // "cls.predictions..."
    RobertaLMHead roberta_lm{nullptr};             // "lm_head..."
};
TORCH_MODULE(EncoderModel);

// Whether a parameter belongs to a LayerNorm (BERT's "LayerNorm", RoBERTa LM head's "layer_norm").
bool is_layer_norm_parameter(const std::string& name);

// Initialises weights as transformers does (normal(0, initializer_range), zero biases,
// LayerNorm at 1/0, padding embedding row at 0), seeded.
void init_weights(EncoderModel& model, double initializer_range, std::uint64_t seed);

} // namespace basin
