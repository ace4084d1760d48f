// basin finetune: fine-tune a checkpoint (full, BitFit or head) into a new checkpoint folder, or
// (LoRA) into a PEFT adapter folder.
#include "basin/train/finetune.h"
#include "options.h"

#include <cstdio>

namespace basin::cli {

Runner add_finetune(CLI::App& app, const std::string& command_line) {
    // bound to the library's options: their defaults are FinetuneOptions' own
    struct Options {
        FinetuneOptions f;
        std::string model, train, eval, out, mode = "full";
        LoraCliOptions lora;
        double dropout = -1;
        bool quiet = false;
    };
    auto o = std::make_shared<Options>();
    FinetuneOptions& f = o->f;
    app.add_option("--model", o->model, "Start checkpoint folder")->required();
    app.add_option("--train", o->train, "Training data (.jsonl, .csv, .tsv)")->required();
    app.add_option("--eval", o->eval, "Evaluation data, scored after each epoch");
    app.add_option("--out", o->out, "Output checkpoint folder")->required();
    app.add_option("--mode", o->mode, "full, bitfit (bias terms and head), head, or lora (a PEFT adapter folder)")
        ->capture_default_str();
    o->lora.add(app, f.lora);
    app.add_option("--seed", f.seed, "Seed: head initialisation, data order, dropout")->capture_default_str();
    app.add_option("--epochs", f.epochs, "Passes over the training data")->capture_default_str();
    app.add_option("--max-steps", f.max_steps, "Optimizer steps (overrides --epochs when positive)")
        ->capture_default_str();
    app.add_option("--lr", f.lr, "Peak learning rate (AdamW)")->capture_default_str();
    app.add_option("--batch-size", f.batch_size, "Examples per micro-batch")->capture_default_str();
    app.add_option("--grad-accum", f.grad_accum, "Micro-batches per optimizer step")->capture_default_str();
    app.add_option("--warmup-ratio", f.warmup_ratio, "Share of steps with linear warm-up, then linear decay to 0")
        ->capture_default_str();
    app.add_option("--weight-decay", f.weight_decay, "AdamW weight decay (not on biases and LayerNorm weights)")
        ->capture_default_str();
    app.add_option("--max-grad-norm", f.max_grad_norm, "Gradient clipping norm (0: none)")->capture_default_str();
    app.add_option("--max-length", f.max_length, "Tokens per example")->capture_default_str();
    app.add_option("--dropout", o->dropout, "Override hidden, attention and classifier dropout");
    app.add_option("--train-limit", f.train_limit, "Few-shot: train on a seeded sample of N examples (0: all)")
        ->capture_default_str();
    app.add_option("--save-every", f.save_every, "Write a resumable state every N steps (0: never)")
        ->capture_default_str();
    app.add_flag("--overwrite", f.overwrite, "Replace an existing non-empty --out");
    add_device_option(app, f.device);
    add_threads_option(app, f.threads);
    app.add_flag("--quiet", o->quiet, "No progress lines");
    app.add_option("--stop-after-step", f.stop_after_step, "Testing: exit abruptly after this step")->group("");
    return [o, command_line]() {
        FinetuneOptions f = o->f;
        set_threads(f.threads);
        f.model = o->model, f.train = o->train, f.eval = o->eval, f.out = o->out;
        f.mode = parse_train_mode(o->mode);
        o->lora.apply(f.lora);
        if (o->dropout >= 0) f.dropout = o->dropout;
        f.device = check_device(f.device);
        f.command_line = command_line;
        if (!o->quiet) f.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
        auto r = finetune(f);
        std::printf("wrote %s: %lld steps, %.1f examples/s, %.0f tokens/s%s\n", o->out.c_str(), (long long)r.steps,
                    r.examples_per_second, r.tokens_per_second, r.resumed ? " (resumed)" : "");
        for (const auto& e : r.epochs) {
            if (e.eval_accuracy)
                std::printf("epoch %d: train loss %.4f, eval accuracy %.4f, macro-F1 %.4f, loss %.4f\n", e.epoch,
                            e.train_loss, *e.eval_accuracy, *e.eval_macro_f1, *e.eval_loss);
            else
                std::printf("epoch %d: train loss %.4f\n", e.epoch, e.train_loss);
        }
        return 0;
    };
}

} // namespace basin::cli
