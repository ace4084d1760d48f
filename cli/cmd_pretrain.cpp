// basin pretrain: masked-language-model pretraining from a text corpus.
#include "basin/train/pretrain.h"
#include "options.h"

#include <cstdio>

namespace basin::cli {

Runner add_pretrain(CLI::App& app, const std::string& command_line) {
    auto o = std::make_shared<PretrainOptions>();
    auto quiet = std::make_shared<bool>(false);
    auto corpus = std::make_shared<std::string>(), tokenizer = std::make_shared<std::string>(),
         config = std::make_shared<std::string>(), out = std::make_shared<std::string>();
    app.add_option("--corpus", *corpus, "Text file or folder of text files")->required();
    app.add_option("--tokenizer", *tokenizer, "tokenizer.json (its vocabulary size must match the config)")->required();
    app.add_option("--config", *config, "config.json: architecture and sizes (RobertaForMaskedLM or BertForMaskedLM)")
        ->required();
    app.add_option("--out", *out, "Output checkpoint folder")->required();
    app.add_option("--seed", o->seed, "Seed: initialisation, data order, masks, dropout")->capture_default_str();
    app.add_option("--max-steps", o->max_steps, "Optimizer steps")->capture_default_str();
    app.add_option("--batch-size", o->batch_size, "Sequences per step")->capture_default_str();
    app.add_option("--max-length", o->max_length, "Tokens per sequence, specials included")->capture_default_str();
    app.add_option("--lr", o->lr, "Peak learning rate (AdamW)")->capture_default_str();
    app.add_option("--warmup-ratio", o->warmup_ratio, "Share of steps with linear warm-up, then linear decay to 0")
        ->capture_default_str();
    app.add_option("--weight-decay", o->weight_decay, "AdamW weight decay (not on biases and LayerNorm weights)")
        ->capture_default_str();
    app.add_option("--max-grad-norm", o->max_grad_norm, "Gradient clipping norm (0: none)")->capture_default_str();
    app.add_option("--mask-prob", o->mask_prob, "Share of tokens selected for prediction")->capture_default_str();
    app.add_option("--heldout-fraction", o->heldout_fraction, "Share of sequences held out")->capture_default_str();
    app.add_option("--heldout-max", o->heldout_max, "Held-out sequences scored at most")->capture_default_str();
    app.add_option("--eval-every", o->eval_every, "Steps between held-out evaluations (0: only at the end)")
        ->capture_default_str();
    app.add_option("--save-every", o->save_every, "Steps between resumable states (0: never)")->capture_default_str();
    app.add_option("--dtype", o->dtype, "Stored dtype of the output: F32, F16 or BF16")->capture_default_str();
    app.add_flag("--overwrite", o->overwrite, "Replace an existing non-empty --out");
    add_device_option(app, o->device);
    add_threads_option(app, o->threads);
    app.add_flag("--quiet", *quiet, "No progress lines");
    app.add_option("--stop-after-step", o->stop_after_step, "Testing: exit abruptly after this step")->group("");
    return [=]() {
        set_threads(o->threads);
        PretrainOptions p = *o;
        p.corpus = *corpus;
        p.tokenizer = *tokenizer;
        p.config = *config;
        p.out = *out;
        p.device = check_device(o->device);
        p.command_line = command_line;
        if (!*quiet) p.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
        auto r = pretrain(p);
        std::printf("wrote %s: %lld steps, %lld tokens seen, %.0f tokens/s%s; held-out MLM loss %.4f, accuracy %.4f\n",
                    out->c_str(), (long long)r.steps, (long long)r.tokens_seen, r.tokens_per_second,
                    r.resumed ? " (resumed)" : "", r.heldout.back().loss, r.heldout.back().accuracy);
        return 0;
    };
}

} // namespace basin::cli
