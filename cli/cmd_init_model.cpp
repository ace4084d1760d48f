// basin init-model: a randomly initialised BERT/RoBERTa checkpoint folder (for tests, for the
// from-scratch baselines, and as the start of pretraining).
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/limits.h"
#include "basin/models/load.h"
#include "basin/text/tokenizer.h"
#include "commands.h"

#include <cstdio>
#include <sstream>

namespace basin::cli {

Runner add_init_model(CLI::App& app) {
    struct Options {
        std::string out, family = "roberta", head = "none", labels, tokenizer, dtype = "F32";
        std::int64_t hidden = 256, layers = 4, heads = 4, intermediate = 1024, max_positions = 130;
        std::uint64_t seed = 0;
        bool overwrite = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--out", o->out, "Output checkpoint folder")->required();
    app.add_option("--family", o->family, "bert or roberta")->capture_default_str();
    app.add_option("--head", o->head, "none, classification or mlm")->capture_default_str();
    app.add_option("--labels", o->labels, "Comma-separated label names (classification head)");
    app.add_option("--tokenizer", o->tokenizer, "tokenizer.json to use (default: byte-level BPE without merges)");
    app.add_option("--hidden", o->hidden, "Hidden size")->capture_default_str();
    app.add_option("--layers", o->layers, "Number of layers")->capture_default_str();
    app.add_option("--heads", o->heads, "Attention heads")->capture_default_str();
    app.add_option("--intermediate", o->intermediate, "Feed-forward size")->capture_default_str();
    app.add_option("--max-positions", o->max_positions, "Position embeddings (RoBERTa: max length + 2)")
        ->capture_default_str();
    app.add_option("--seed", o->seed, "Initialisation seed")->capture_default_str();
    app.add_option("--dtype", o->dtype, "Stored dtype: F32, F16 or BF16")->capture_default_str();
    app.add_flag("--overwrite", o->overwrite, "Replace an existing non-empty output folder");
    return [o]() {
        const fs::path out(o->out);
        BASIN_CHECK(o->overwrite || !fs::exists(out) || fs::is_empty(out), out.string(),
                    ": output folder exists and is not empty (pass --overwrite to replace it)");
        nlohmann::json tokenizer_json =
            o->tokenizer.empty() ? text::byte_level_bpe_json({})
                                 : nlohmann::json::parse(read_text_file(o->tokenizer, limits::tokenizer_json));
        auto tokenizer = text::Tokenizer::from_json(tokenizer_json, o->tokenizer.empty() ? "tokenizer" : o->tokenizer);
        HfConfig hf;
        hf.architectures = {o->family == "bert" ? "BertModel" : "RobertaModel"};
        BASIN_CHECK(o->family == "bert" || o->family == "roberta", "--family: expected bert or roberta, got '",
                    o->family, "'");
        const bool roberta = o->family == "roberta";
        std::string arch = roberta ? "Roberta" : "Bert";
        if (o->head == "classification")
            arch += "ForSequenceClassification";
        else if (o->head == "mlm")
            arch += "ForMaskedLM";
        else {
            BASIN_CHECK(o->head == "none", "--head: expected none, classification or mlm, got '", o->head, "'");
            arch += "Model";
        }
        hf.architectures = {arch};
        hf.model_type = o->family;
        hf.vocab_size = std::int64_t(tokenizer.vocab_size());
        hf.hidden_size = o->hidden;
        hf.num_hidden_layers = o->layers;
        hf.num_attention_heads = o->heads;
        hf.intermediate_size = o->intermediate;
        hf.max_position_embeddings = o->max_positions;
        hf.type_vocab_size = roberta ? 1 : 2;
        hf.layer_norm_eps = roberta ? 1e-5 : 1e-12;
        std::int32_t pad = tokenizer.token_to_id(roberta ? "<pad>" : "[PAD]");
        if (pad < 0) pad = tokenizer.token_to_id("<pad>");
        hf.pad_token_id = pad >= 0 ? pad : 0;
        if (o->head == "classification") {
            BASIN_CHECK(!o->labels.empty(), "--labels: a classification head needs label names");
            std::stringstream ss(o->labels);
            std::string label;
            std::int64_t i = 0;
            while (std::getline(ss, label, ',')) {
                hf.id2label[i] = label;
                hf.label2id[label] = i++;
            }
        }
        Dtype dtype;
        BASIN_CHECK(parse_dtype(o->dtype, &dtype), "--dtype: expected F32, F16 or BF16, got '", o->dtype, "'");
        EncoderConfig config = EncoderConfig::resolve(hf, "init-model");
        EncoderModel model(config);
        init_weights(model, hf.initializer_range, o->seed);
        fs::create_directories(out);
        save_model(model, config_for(config, hf), out, dtype, {{"basin_seed", std::to_string(o->seed)}});
        write_text_atomically(out / "tokenizer.json", tokenizer_json.dump(2) + "\n");
        std::printf("wrote %s (%s, %lld layers, hidden %lld, vocab %lld)\n", out.string().c_str(), arch.c_str(),
                    (long long)o->layers, (long long)o->hidden, (long long)hf.vocab_size);
        return 0;
    };
}

} // namespace basin::cli
