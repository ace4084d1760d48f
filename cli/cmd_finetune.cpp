// basin finetune: fine-tune a checkpoint (full, BitFit or head) into a new checkpoint folder.
#include <cstdio>

#include "basin/train/finetune.h"
#include "commands.h"

namespace basin::cli {

Runner add_finetune(CLI::App& app, const std::string& command_line) {
    struct Options {
        std::string model, train, eval, out, mode = "full", device = "cpu";
        std::uint64_t seed = 0;
        int epochs = 3, grad_accum = 1, threads = 0;
        std::int64_t max_steps = -1, save_every = 0, stop_after_step = -1;
        double lr = 5e-5, warmup_ratio = 0.06, weight_decay = 0.01, max_grad_norm = 1.0, dropout = -1;
        std::size_t batch_size = 32, max_length = 128, train_limit = 0;
        bool overwrite = false, quiet = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--model", o->model, "Start checkpoint folder")->required();
    app.add_option("--train", o->train, "Training data (.jsonl, .csv, .tsv)")->required();
    app.add_option("--eval", o->eval, "Evaluation data, scored after each epoch");
    app.add_option("--out", o->out, "Output checkpoint folder")->required();
    app.add_option("--mode", o->mode, "full, bitfit (bias terms and head) or head")->capture_default_str();
    app.add_option("--seed", o->seed, "Seed: head initialisation, data order, dropout")->capture_default_str();
    app.add_option("--epochs", o->epochs, "Passes over the training data")->capture_default_str();
    app.add_option("--max-steps", o->max_steps, "Optimizer steps (overrides --epochs when positive)")->capture_default_str();
    app.add_option("--lr", o->lr, "Peak learning rate (AdamW)")->capture_default_str();
    app.add_option("--batch-size", o->batch_size, "Examples per micro-batch")->capture_default_str();
    app.add_option("--grad-accum", o->grad_accum, "Micro-batches per optimizer step")->capture_default_str();
    app.add_option("--warmup-ratio", o->warmup_ratio, "Share of steps with linear warm-up, then linear decay to 0")->capture_default_str();
    app.add_option("--weight-decay", o->weight_decay, "AdamW weight decay (not on biases and LayerNorm weights)")->capture_default_str();
    app.add_option("--max-grad-norm", o->max_grad_norm, "Gradient clipping norm (0: none)")->capture_default_str();
    app.add_option("--max-length", o->max_length, "Tokens per example")->capture_default_str();
    app.add_option("--dropout", o->dropout, "Override hidden, attention and classifier dropout");
    app.add_option("--train-limit", o->train_limit, "Few-shot: train on a seeded sample of N examples (0: all)")->capture_default_str();
    app.add_option("--save-every", o->save_every, "Write a resumable state every N steps (0: never)")->capture_default_str();
    app.add_flag("--overwrite", o->overwrite, "Replace an existing non-empty --out");
    app.add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
    app.add_option("--threads", o->threads, "Compute threads (0: libtorch's default)")->capture_default_str();
    app.add_flag("--quiet", o->quiet, "No progress lines");
    app.add_option("--stop-after-step", o->stop_after_step, "Testing: exit abruptly after this step")->group("");
    return [o, command_line]() {
        set_threads(o->threads);
        FinetuneOptions f;
        f.model = o->model;
        f.train = o->train;
        f.eval = o->eval;
        f.out = o->out;
        f.mode = parse_train_mode(o->mode);
        f.seed = o->seed;
        f.epochs = o->epochs;
        f.max_steps = o->max_steps;
        f.lr = o->lr;
        f.batch_size = o->batch_size;
        f.grad_accum = o->grad_accum;
        f.warmup_ratio = o->warmup_ratio;
        f.weight_decay = o->weight_decay;
        f.max_grad_norm = o->max_grad_norm;
        f.max_length = o->max_length;
        if (o->dropout >= 0) f.dropout = o->dropout;
        f.train_limit = o->train_limit;
        f.save_every = o->save_every;
        f.overwrite = o->overwrite;
        f.device = check_device(o->device);
        f.threads = o->threads;
        f.command_line = command_line;
        f.stop_after_step = o->stop_after_step;
        if (!o->quiet) f.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
        auto r = finetune(f);
        std::printf("wrote %s: %lld steps, %.1f examples/s, %.0f tokens/s%s\n", o->out.c_str(), (long long)r.steps,
                    r.examples_per_second, r.tokens_per_second, r.resumed ? " (resumed)" : "");
        for (const auto& e : r.epochs) {
            if (e.eval_accuracy)
                std::printf("epoch %d: train loss %.4f, eval accuracy %.4f, macro-F1 %.4f, loss %.4f\n", e.epoch, e.train_loss,
                            *e.eval_accuracy, *e.eval_macro_f1, *e.eval_loss);
            else
                std::printf("epoch %d: train loss %.4f\n", e.epoch, e.train_loss);
        }
        return 0;
    };
}

} // namespace basin::cli
