#include "basin/models/encoder.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"

#include <cmath>
#include <torch/version.h>

namespace basin {
namespace {

torch::nn::LayerNorm layer_norm(const EncoderConfig& c) {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
    switch (activation) {
    case Activation::Gelu:
        return torch::gelu(x);
    case Activation::GeluTanh:
        return torch::gelu(x, "tanh");
    case Activation::Relu:
        return torch::relu(x);
    case Activation::Silu:
        return torch::silu(x);
    }
    return x;
}

} // namespace

EmbeddingsImpl::EmbeddingsImpl(const EncoderConfig& c) {
    word_embeddings = register_module(
        "word_embeddings",
        torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
    position_embeddings = register_module("position_embeddings", torch::nn::Embedding(c.max_positions, c.hidden_size));
    token_type_embeddings =
        register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", layer_norm(c));
    dropout = register_module("dropout", torch::nn::Dropout(c.hidden_dropout));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& type_ids,
                                      const torch::Tensor& positions) {
    auto x = word_embeddings(input_ids) + token_type_embeddings(type_ids) + position_embeddings(positions);
    return dropout(LayerNorm(x));
}

SelfAttentionImpl::SelfAttentionImpl(const EncoderConfig& c)
    : heads(c.num_heads), head_dim(c.hidden_size / c.num_heads) {
    query = register_module("query", torch::nn::Linear(c.hidden_size, c.hidden_size));
    key = register_module("key", torch::nn::Linear(c.hidden_size, c.hidden_size));
    value = register_module("value", torch::nn::Linear(c.hidden_size, c.hidden_size));
    dropout = register_module("dropout", torch::nn::Dropout(c.attention_dropout));
}

std::pair<torch::Tensor, torch::Tensor> SelfAttentionImpl::fused_qkv() {
    if (torch::GradMode::is_enabled()) // training: the concatenation must be part of the graph
        return {torch::cat({query->weight, key->weight, value->weight}, 0),
                torch::cat({query->bias, key->bias, value->bias}, 0)};
    const std::array<std::int64_t, 6> versions = {query->weight._version(), key->weight._version(),
                                                  value->weight._version(), query->bias._version(),
                                                  key->bias._version(),     value->bias._version()};
    if (!fused_weight_.defined() || versions != fused_versions_ || fused_weight_.device() != query->weight.device()) {
        torch::NoGradGuard no_grad;
        fused_weight_ = torch::cat({query->weight, key->weight, value->weight}, 0);
        fused_bias_ = torch::cat({query->bias, key->bias, value->bias}, 0);
        fused_versions_ = versions;
    }
    return {fused_weight_, fused_bias_};
}

namespace {
thread_local LinearInputObserver linear_input_observer;

void observe(const torch::nn::Linear& layer, const torch::Tensor& input) {
    if (linear_input_observer) linear_input_observer(*layer, input);
}
} // namespace

void set_linear_input_observer(LinearInputObserver observer) {
    linear_input_observer = std::move(observer);
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
    const auto B = x.size(0), T = x.size(1);
    for (const auto* layer : {&query, &key, &value}) // one fused GEMM below reads x for all three
        observe(*layer, x);
    auto [w, b] = fused_qkv();
    // One GEMM for Q, K and V: [B, T, 3H] -> 3 x [B, N, T, D] (views, no copies)
    auto qkv = torch::linear(x, w, b).view({B, T, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
    auto q = qkv[0], k = qkv[1], v = qkv[2];
#if TORCH_VERSION_MAJOR >= 2
    // libtorch 2.x has a fused attention kernel (what transformers uses there): the same
    // softmax(q k^T / sqrt(D) + mask) v without the [B, N, T, T] intermediates in memory
    auto context = at::scaled_dot_product_attention(q, k, v, additive_mask, is_training() ? dropout->options.p() : 0.0);
#else
    // scores [B, N, T, T]; the mask broadcasts. (baddbmm measured slower here: it needs
    // contiguous [B*N, T, D] copies of q and k.)
    auto scores = torch::matmul(q, k.transpose(-1, -2)).mul_(1.0 / std::sqrt(double(head_dim))).add_(additive_mask);
    auto probs = dropout(torch::softmax(scores, -1));
    auto context = torch::matmul(probs, v); // [B, N, T, D]
#endif
    return context.permute({0, 2, 1, 3}).reshape({B, T, heads * head_dim});
}

ResidualOutputImpl::ResidualOutputImpl(std::int64_t in, const EncoderConfig& c) {
    dense = register_module("dense", torch::nn::Linear(in, c.hidden_size));
    LayerNorm = register_module("LayerNorm", layer_norm(c));
    dropout = register_module("dropout", torch::nn::Dropout(c.hidden_dropout));
}

torch::Tensor ResidualOutputImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
    observe(dense, x);
    return LayerNorm(dropout(dense(x)) + residual);
}

AttentionImpl::AttentionImpl(const EncoderConfig& c) {
    self = register_module("self", SelfAttention(c));
    output = register_module("output", ResidualOutput(c.hidden_size, c));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
    return output(self(x, additive_mask), x);
}

IntermediateImpl::IntermediateImpl(const EncoderConfig& c) : activation(c.activation) {
    dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor IntermediateImpl::forward(const torch::Tensor& x) {
    observe(dense, x);
    return activate(dense(x), activation);
}

LayerImpl::LayerImpl(const EncoderConfig& c) {
    attention = register_module("attention", Attention(c));
    intermediate = register_module("intermediate", Intermediate(c));
    output = register_module("output", ResidualOutput(c.intermediate_size, c));
}

torch::Tensor LayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
    auto attended = attention(x, additive_mask);
    return output(intermediate(attended), attended);
}

EncoderStackImpl::EncoderStackImpl(const EncoderConfig& c) {
    layer = register_module("layer", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_layers; ++i)
        layer->push_back(Layer(c));
}

PoolerImpl::PoolerImpl(const EncoderConfig& c) {
    dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor PoolerImpl::forward(const torch::Tensor& hidden) {
    const auto first = hidden.select(1, 0);
    observe(dense, first);
    return torch::tanh(dense(first));
}

BodyImpl::BodyImpl(const EncoderConfig& c, bool with_pooler) : config(c) {
    embeddings = register_module("embeddings", Embeddings(c));
    encoder = register_module("encoder", EncoderStack(c));
    if (with_pooler) pooler = register_module("pooler", Pooler(c));
}

torch::Tensor BodyImpl::positions(const torch::Tensor& input_ids) const {
    const auto T = input_ids.size(1);
    if (config.family == ModelFamily::Roberta) {
        // RoBERTa numbers non-padding tokens from pad_token_id + 1; padding keeps pad_token_id.
        auto mask = input_ids.ne(config.pad_token_id).to(torch::kLong);
        return torch::cumsum(mask, 1) * mask + config.pad_token_id;
    }
    return torch::arange(T, input_ids.options().dtype(torch::kLong)).unsqueeze(0).expand_as(input_ids);
}

torch::Tensor BodyImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& type_ids) {
    const auto T = input_ids.size(1);
    BASIN_CHECK(T + config.position_offset() <= config.max_positions, "running the encoder: ", T,
                " tokens exceed the model's ", config.max_positions - config.position_offset(), " positions");
    // RoBERTa-style checkpoints have one token type: its ids must be 0 whatever the tokenizer said.
    auto types = (config.type_vocab_size == 1 || !type_ids.defined()) ? torch::zeros_like(input_ids) : type_ids;
    auto x = embeddings(input_ids, types, positions(input_ids));
    auto dtype = x.scalar_type();
    // [B, T] -> [B, 1, 1, T]: 0 where attended, the dtype's lowest value where masked
    auto additive =
        (1.0 - attention_mask.to(dtype)).mul(std::numeric_limits<float>::lowest()).view({input_ids.size(0), 1, 1, T});
    for (const auto& module : *encoder->layer)
        x = module->as<LayerImpl>()->forward(x, additive);
    return x;
}

RobertaClassifierImpl::RobertaClassifierImpl(const EncoderConfig& c) {
    dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", torch::nn::Linear(c.hidden_size, c.num_labels()));
    dropout = register_module("dropout", torch::nn::Dropout(c.classifier_dropout));
}

torch::Tensor RobertaClassifierImpl::forward(const torch::Tensor& hidden) {
    auto x = dropout(hidden.select(1, 0));
    x = dropout(torch::tanh(dense(x)));
    return out_proj(x);
}

LMTransformImpl::LMTransformImpl(const EncoderConfig& c, const char* norm_name) : activation(c.activation) {
    dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
    norm = register_module(norm_name, layer_norm(c));
}

torch::Tensor LMTransformImpl::forward(const torch::Tensor& hidden) {
    return norm(activate(dense(hidden), activation));
}

BertLMPredictionsImpl::BertLMPredictionsImpl(const EncoderConfig& c) {
    transform = register_module("transform", LMTransform(c, "LayerNorm"));
    bias = register_parameter("bias", torch::zeros({c.vocab_size}));
}

BertLMHeadImpl::BertLMHeadImpl(const EncoderConfig& c) {
    predictions = register_module("predictions", BertLMPredictions(c));
}

RobertaLMHeadImpl::RobertaLMHeadImpl(const EncoderConfig& c) {
    dense = register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
    layer_norm = register_module("layer_norm", basin::layer_norm(c));
    bias = register_parameter("bias", torch::zeros({c.vocab_size}));
}

EncoderModelImpl::EncoderModelImpl(const EncoderConfig& c) : config(c) {
    const bool bert = c.family == ModelFamily::Bert;
    BASIN_CHECK(!(bert && c.head == HeadKind::SequenceClassification && !c.pooler), "building ", c.architecture_name(),
                ": BERT's classifier reads the pooler");
    body = register_module(c.body_prefix(), Body(c, c.pooler));
    if (c.head == HeadKind::SequenceClassification) {
        BASIN_CHECK(c.num_labels() > 0, "building ", c.architecture_name(), ": no labels");
        if (bert) {
            bert_classifier = register_module("classifier", torch::nn::Linear(c.hidden_size, c.num_labels()));
            bert_dropout = register_module("dropout", torch::nn::Dropout(c.classifier_dropout));
        } else {
            roberta_classifier = register_module("classifier", RobertaClassifier(c));
        }
    } else if (c.head == HeadKind::MaskedLM) {
        if (bert)
            bert_lm = register_module("cls", BertLMHead(c));
        else
            roberta_lm = register_module("lm_head", RobertaLMHead(c));
    }
}

torch::Tensor EncoderModelImpl::classify(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const torch::Tensor& type_ids) {
    BASIN_CHECK(config.head == HeadKind::SequenceClassification, "classify: ", config.architecture_name(),
                " has no sequence-classification head");
    return classify_hidden(body(input_ids, attention_mask, type_ids));
}

torch::Tensor EncoderModelImpl::classify_hidden(const torch::Tensor& hidden) {
    BASIN_CHECK(config.head == HeadKind::SequenceClassification, "classify: ", config.architecture_name(),
                " has no sequence-classification head");
    if (config.family == ModelFamily::Bert) return bert_classifier(bert_dropout(body->pooler(hidden)));
    return roberta_classifier(hidden);
}

torch::Tensor EncoderModelImpl::lm_head(const torch::Tensor& hidden) {
    BASIN_CHECK(config.head == HeadKind::MaskedLM, "masked-LM logits: ", config.architecture_name(),
                " has no masked-LM head");
    const auto& decoder = body->embeddings->word_embeddings->weight; // tied
    if (config.family == ModelFamily::Bert) {
        auto& p = bert_lm->predictions;
        return torch::linear(p->transform(hidden), decoder, p->bias);
    }
    // RoBERTa's head applies GELU whatever hidden_act says
    auto x = roberta_lm->layer_norm(activate(roberta_lm->dense(hidden), Activation::Gelu));
    return torch::linear(x, decoder, roberta_lm->bias);
}

torch::Tensor EncoderModelImpl::mlm_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    return lm_head(body(input_ids, attention_mask, torch::Tensor()));
}

torch::Tensor EncoderModelImpl::mlm_logits_at(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                              const torch::Tensor& selected) {
    auto hidden = body(input_ids, attention_mask, torch::Tensor()); // [B, T, H]
    return lm_head(hidden.index({selected}));                       // [M, V]
}

torch::Tensor EncoderModelImpl::features(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const torch::Tensor& type_ids) {
    return body(input_ids, attention_mask, type_ids).select(1, 0);
}

bool EncoderModelImpl::is_head_parameter(const std::string& name) const {
    return name.rfind(config.body_prefix() + ".", 0) != 0;
}

bool is_layer_norm_parameter(const std::string& name) {
    return name.find("LayerNorm") != std::string::npos || name.find("layer_norm") != std::string::npos;
}

void init_weights(EncoderModel& model, double initializer_range, std::uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto generator = at::detail::createCPUGenerator(seed);
    for (auto& item : model->named_parameters()) {
        const auto& name = item.key();
        auto& p = item.value();
        if (is_layer_norm_parameter(name)) {
            p.fill_(ends_with(name, ".weight") ? 1.0 : 0.0);
        } else if (ends_with(name, "bias")) {
            p.zero_();
        } else {
            auto values = at::normal(0.0, initializer_range, p.sizes(), generator);
            p.copy_(values);
        }
    }
    auto& words = model->body->embeddings->word_embeddings->weight;
    words[model->config.pad_token_id].zero_();
}

} // namespace basin
