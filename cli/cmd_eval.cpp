// basin eval --model DIR --data FILE: accuracy, macro-F1 and mean loss of a classifier.
#include "basin/core/fs.h"
#include "basin/eval/evaluate.h"
#include "basin/models/load.h"
#include "options.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace basin::cli {

Runner add_eval(CLI::App& app) {
    struct Options {
        std::string model, data, predictions, device = "cpu", format = "auto", adapter_base;
        std::string text_column = "text", pair_column = "text_pair", label_column = "label";
        bool json = false, no_header = false, unsorted = false, features = false;
        std::size_t batch_size = 32, max_length = 0;
        int threads = 0, repeats = 1;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--model", o->model,
                   "Checkpoint folder (config.json, *.safetensors, tokenizer.json), or a LoRA adapter folder")
        ->required();
    add_adapter_base_option(app, o->adapter_base);
    app.add_option("--data", o->data, "Labelled dataset (.jsonl, .csv or .tsv)")->required();
    app.add_flag("--json", o->json, "Print the metrics as JSON");
    app.add_option("--predictions", o->predictions, "Write each example's logits and prediction to this JSONL file");
    app.add_flag("--features", o->features,
                 "With --predictions: also each example's first-token feature (the body's output before any pooler)");
    app.add_option("--batch-size", o->batch_size, "Examples per forward pass")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--max-length", o->max_length, "Truncate inputs to this many tokens (0: the model's maximum)")
        ->capture_default_str();
    add_threads_option(app, o->threads);
    add_device_option(app, o->device);
    app.add_option("--format", o->format, "Dataset format: auto, jsonl, csv, tsv")->capture_default_str();
    app.add_option("--text-column", o->text_column, "Column or field holding the text (name, or index without header)")
        ->capture_default_str();
    app.add_option("--pair-column", o->pair_column, "Column holding the second text of a pair, if present")
        ->capture_default_str();
    app.add_option("--label-column", o->label_column, "Column holding the label")->capture_default_str();
    app.add_flag("--no-header", o->no_header, "CSV/TSV files have no header row (columns by index)");
    app.add_flag("--no-sort", o->unsorted, "Keep file order in batches instead of sorting by length");
    app.add_option("--repeats", o->repeats,
                   "Benchmarks: evaluate N times in this process; seconds is the fastest pass (the first one "
                   "includes the warm-up: thread pools, allocator, kernels), first_pass_seconds the first")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    return [o]() {
        BASIN_CHECK(!o->features || !o->predictions.empty(), "--features: needs --predictions FILE to write them to");
        set_threads(o->threads);
        LoadOptions load;
        load.device = torch::Device(check_device(o->device));
        load.adapter_base = o->adapter_base;
        LoadedModel loaded = load_model(o->model, load);
        auto tokenizer = text::Tokenizer::from_file(tokenizer_file(o->model, o->adapter_base));
        ReadOptions read;
        read.format = parse_format(o->format);
        read.columns = {o->text_column, o->pair_column, o->label_column};
        read.header = !o->no_header;
        Dataset data = read_dataset(o->data, read);
        EvalOptions options;
        options.batch_size = o->batch_size;
        options.max_length = o->max_length;
        options.sort_by_length = !o->unsorted;
        options.threads = o->threads;
        options.keep_predictions = !o->predictions.empty();
        options.keep_features = o->features;
        EvalResult r = evaluate(loaded.model, tokenizer, data, options);
        const double first_pass = r.seconds;
        for (int pass = 1; pass < o->repeats; ++pass) { // the same result; only the time may differ
            const double seconds = evaluate(loaded.model, tokenizer, data, options).seconds;
            r.seconds = std::min(r.seconds, seconds);
        }

        if (!o->predictions.empty()) {
            std::string out;
            for (std::size_t i = 0; i < r.predictions.size(); ++i) {
                const auto& p = r.predictions[i];
                nlohmann::json j = {{"index", i},
                                    {"line", data.examples[i].line},
                                    {"label", r.labels[std::size_t(p.label)]},
                                    {"predicted", r.labels[std::size_t(p.predicted)]},
                                    {"correct", p.label == p.predicted},
                                    {"loss", p.loss},
                                    {"logits", p.logits},
                                    {"input_ids", p.input_ids}};
                if (o->features) j["features"] = p.features;
                out += j.dump() + "\n";
            }
            write_text_atomically(o->predictions, out);
        }
        const double rate = r.seconds > 0 ? double(r.examples) / r.seconds : 0;
        const double token_rate = r.seconds > 0 ? double(r.tokens) / r.seconds : 0;
        if (o->json) {
            nlohmann::json j = {{"model", o->model},           {"data", o->data},
                                {"examples", r.examples},      {"accuracy", r.accuracy},
                                {"macro_f1", r.macro_f1},      {"mean_loss", r.mean_loss},
                                {"tokens", r.tokens},          {"padded_tokens", r.padded_tokens},
                                {"seconds", r.seconds},        {"tokenize_seconds", r.tokenize_seconds},
                                {"examples_per_second", rate}, {"tokens_per_second", token_rate}};
            nlohmann::json f1 = nlohmann::json::object();
            for (std::size_t c = 0; c < r.labels.size(); ++c)
                f1[r.labels[c]] = r.f1_per_label[c];
            j["f1_per_label"] = f1;
            if (o->repeats > 1) j["first_pass_seconds"] = first_pass, j["repeats"] = o->repeats;
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf("model      %s (%s)\n", o->model.c_str(), loaded.config.architecture_name().c_str());
            std::printf("data       %s (%zu examples)\n", o->data.c_str(), r.examples);
            std::printf("accuracy   %.4f\n", r.accuracy);
            std::printf("macro-F1   %.4f\n", r.macro_f1);
            std::printf("mean loss  %.4f\n", r.mean_loss);
            std::printf("speed      %.1f examples/s, %.0f tokens/s (%.2f s forward, %.2f s tokenizing)\n", rate,
                        token_rate, r.seconds, r.tokenize_seconds);
        }
        return 0;
    };
}

} // namespace basin::cli
