#include "basin/io/checkpoint.h"
#include "basin/models/load.h"
#include "test_util.h"

#include <torch/torch.h>

using namespace basin;
using basin::testing::TempDir;

namespace {

HfConfig tiny_config(const std::string& arch, int labels = 3) {
    HfConfig hf;
    hf.architectures = {arch};
    hf.model_type = arch.rfind("Bert", 0) == 0 ? "bert" : "roberta";
    hf.vocab_size = 50;
    hf.hidden_size = 16;
    hf.num_hidden_layers = 2;
    hf.num_attention_heads = 2;
    hf.intermediate_size = 32;
    hf.max_position_embeddings = 40;
    hf.type_vocab_size = hf.model_type == "bert" ? 2 : 1;
    hf.pad_token_id = hf.model_type == "bert" ? 0 : 1;
    for (int i = 0; i < labels && arch.find("Sequence") != std::string::npos; ++i) {
        hf.id2label[i] = "L" + std::to_string(i);
        hf.label2id["L" + std::to_string(i)] = i;
    }
    return hf;
}

EncoderModel make(const HfConfig& hf, std::uint64_t seed) {
    EncoderModel model(EncoderConfig::resolve(hf, "test"));
    init_weights(model, 0.5, seed);
    return model;
}

} // namespace

TEST(Model, ParameterNamesAreCheckpointKeys) {
    auto model = make(tiny_config("RobertaForSequenceClassification"), 1);
    std::set<std::string> names;
    for (const auto& p : model->named_parameters())
        names.insert(p.key());
    EXPECT_TRUE(names.count("roberta.encoder.layer.1.attention.self.query.weight"));
    EXPECT_TRUE(names.count("roberta.encoder.layer.0.attention.output.LayerNorm.bias"));
    EXPECT_TRUE(names.count("classifier.out_proj.weight"));
    EXPECT_FALSE(names.count("roberta.pooler.dense.weight")); // no pooler in this architecture
    auto bert = make(tiny_config("BertForMaskedLM"), 1);
    names.clear();
    for (const auto& p : bert->named_parameters())
        names.insert(p.key());
    EXPECT_TRUE(names.count("cls.predictions.transform.LayerNorm.weight"));
    EXPECT_TRUE(names.count("cls.predictions.bias"));
    EXPECT_FALSE(names.count("cls.predictions.decoder.weight")); // tied to the word embeddings
}

TEST(Model, SaveThenLoadGivesIdenticalTensorsAndMetadata) {
    TempDir dir;
    for (const char* arch :
         {"BertForSequenceClassification", "RobertaForSequenceClassification", "RobertaForMaskedLM", "BertModel"}) {
        auto hf = tiny_config(arch);
        auto model = make(hf, 7);
        const auto folder = dir / arch;
        save_model(model, config_for(model->config, hf), folder, Dtype::F32, {{"k", "v"}});
        auto loaded = load_model(folder);
        EXPECT_EQ(loaded.config.architecture_name(), arch);
        EXPECT_EQ(loaded.metadata.at("k"), "v");
        auto a = model->named_parameters(), b = loaded.model->named_parameters();
        ASSERT_EQ(a.size(), b.size());
        for (const auto& p : a)
            EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << arch << " " << p.key();
        // and saving the loaded model again gives byte-identical weights
        save_model(loaded.model, loaded.hf, dir / (std::string(arch) + "-again"), Dtype::F32, {{"k", "v"}});
        EXPECT_EQ(read_text_file(folder / "model.safetensors"),
                  read_text_file(dir / (std::string(arch) + "-again") / "model.safetensors"));
    }
}

TEST(Model, HalfPrecisionSaveIsWithinHalfTolerance) {
    TempDir dir;
    auto hf = tiny_config("RobertaForSequenceClassification");
    auto model = make(hf, 3);
    save_model(model, config_for(model->config, hf), dir.path(), Dtype::BF16);
    auto loaded = load_model(dir.path());
    EXPECT_EQ(loaded.stored_dtype, Dtype::BF16);
    for (const auto& p : model->named_parameters()) {
        auto diff = (p.value() - loaded.model->named_parameters()[p.key()]).abs();
        auto bound = p.value().abs() * (1.0 / 128) + 1e-30;
        EXPECT_TRUE((diff <= bound).all().item<bool>()) << p.key();
    }
}

TEST(Model, StrictLoadingReportsEveryProblemAtOnce) {
    TempDir dir;
    auto hf = tiny_config("RobertaForSequenceClassification");
    auto model = make(hf, 1);
    std::vector<torch::Tensor> keep;
    std::vector<TensorView> views;
    for (const auto& p : model->named_parameters()) {
        if (p.key() == "roberta.encoder.layer.1.output.dense.bias") continue; // missing
        auto t = p.value().detach().contiguous();
        if (p.key() == "classifier.out_proj.weight") t = torch::zeros({5, 16}); // wrong shape
        keep.push_back(t);
        views.push_back({p.key(), Dtype::F32, Shape(t.sizes().begin(), t.sizes().end()), t.data_ptr()});
    }
    auto extra = torch::ones({2});
    views.push_back({"roberta.encoder.layer.9.weird", Dtype::F32, {2}, extra.data_ptr()}); // unexpected
    write_safetensors(dir / "model.safetensors", views);
    CheckpointTensors tensors(dir.path());
    auto fresh = make(hf, 2);
    EXPECT_ERROR_CONTAINS(load_weights(fresh, tensors, {}), "1 missing: roberta.encoder.layer.1.output.dense.bias",
                          "1 unexpected: roberta.encoder.layer.9.weird",
                          "classifier.out_proj.weight: expected [3, 16], got [5, 16]");
    // loading the body only ignores the head problem but not the body's
    LoadOptions body_only;
    body_only.load_head = false;
    EXPECT_ERROR_CONTAINS(load_weights(fresh, tensors, body_only), "1 missing");
}

TEST(Model, AcceptsOldLayerNormNamesAndUnprefixedBodies) {
    TempDir dir;
    auto hf = tiny_config("BertModel");
    auto model = make(hf, 5);
    std::vector<torch::Tensor> keep;
    std::vector<TensorView> views;
    for (const auto& p : model->named_parameters()) {
        std::string name = p.key().substr(std::string("bert.").size()); // saved from BertModel
        if (name.size() > 16 && name.compare(name.size() - 16, 16, "LayerNorm.weight") == 0)
            name = name.substr(0, name.size() - 6) + "gamma";
        else if (name.size() > 14 && name.compare(name.size() - 14, 14, "LayerNorm.bias") == 0)
            name = name.substr(0, name.size() - 4) + "beta";
        auto t = p.value().detach().contiguous();
        keep.push_back(t);
        views.push_back({name, Dtype::F32, Shape(t.sizes().begin(), t.sizes().end()), t.data_ptr()});
    }
    write_safetensors(dir / "model.safetensors", views);
    auto fresh = make(hf, 6);
    load_weights(fresh, CheckpointTensors(dir.path()), {});
    for (const auto& p : model->named_parameters())
        EXPECT_TRUE(torch::equal(p.value(), fresh->named_parameters()[p.key()])) << p.key();
}

TEST(Model, UnsupportedArchitectureIsNamed) {
    auto hf = tiny_config("DistilBertForSequenceClassification");
    EXPECT_ERROR_CONTAINS(EncoderConfig::resolve(hf, "cfg.json"), "cfg.json",
                          "unsupported architecture 'DistilBertForSequenceClassification'");
}

TEST(Model, PaddingDoesNotChangeLogits) {
    auto model = make(tiny_config("RobertaForSequenceClassification"), 11);
    model->eval();
    torch::NoGradGuard guard;
    auto ids = torch::tensor({{0, 5, 6, 7, 2}}, torch::kLong);
    auto mask = torch::ones_like(ids);
    auto padded = torch::tensor({{0, 5, 6, 7, 2, 1, 1, 1}}, torch::kLong);
    auto padded_mask = torch::tensor({{1, 1, 1, 1, 1, 0, 0, 0}}, torch::kLong);
    auto a = model->classify(ids, mask, torch::zeros_like(ids));
    auto b = model->classify(padded, padded_mask, torch::zeros_like(padded));
    EXPECT_LT((a - b).abs().max().item<float>(), 1e-5);
}

TEST(Model, MaskedLmLogitsUseTheTiedEmbeddings) {
    auto model = make(tiny_config("RobertaForMaskedLM"), 4);
    model->eval();
    torch::NoGradGuard guard;
    auto ids = torch::tensor({{0, 5, 6, 2}}, torch::kLong);
    auto logits = model->mlm_logits(ids, torch::ones_like(ids));
    EXPECT_EQ(logits.sizes(), (std::vector<std::int64_t>{1, 4, 50}));
    model->body->embeddings->word_embeddings->weight.mul_(2.0);
    auto doubled = model->mlm_logits(ids, torch::ones_like(ids));
    EXPECT_GT((doubled - logits).abs().max().item<float>(), 1e-3);
}

TEST(Model, ConfigIntegersMustBeIntegers) {
    // found by fuzzing: a huge float where an integer belongs was converted with undefined behaviour
    auto json = nlohmann::json::parse(R"({"model_type": "bert", "num_hidden_layers": 1.3e60})");
    EXPECT_ERROR_CONTAINS(HfConfig::from_json(json, "config.json"), "config.json",
                          "'num_hidden_layers' must be an integer");
    json = nlohmann::json::parse(R"({"model_type": "bert", "hidden_size": 99999999999999999999})");
    EXPECT_ERROR_CONTAINS(HfConfig::from_json(json, "config.json"), "must be an integer");
    json = nlohmann::json::parse(R"({"model_type": "bert", "vocab_size": 3.0})");
    EXPECT_ERROR_CONTAINS(HfConfig::from_json(json, "config.json"), "'vocab_size' must be an integer, got 3.0");
}
