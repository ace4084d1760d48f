#!/usr/bin/python3
"""Writes models/basin-mini/README.md from the pretraining record (basin_run.json) and, when
given, the pretrained-vs-random comparison (compare_init.json): no number is typed by hand.

usage: basin_mini_readme.py MODEL_DIR [COMPARE_INIT_JSON]"""
import json
import os
import statistics
import sys

model = sys.argv[1]
run = json.load(open(os.path.join(model, "basin_run.json")))
cfg = json.load(open(os.path.join(model, "config.json")))
o = run["options"]
corpus = run["inputs"]["corpus"]
lines = [
    "# basin-mini",
    "",
    "A small RoBERTa-architecture encoder pretrained by `basin pretrain` on text built from Debian and",
    "npm packages (docs/DEFAULT.md). It is the built-in default start model: the quickstart fine-tunes it.",
    "",
    "| | |",
    "|---|---|",
    f"| architecture | {cfg['architectures'][0]}: {cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
    f"{cfg['num_attention_heads']} heads, FFN {cfg['intermediate_size']}, max length {cfg['max_position_embeddings'] - 2} |",
    f"| parameters | {run['parameters']:,} (stored in {cfg.get('torch_dtype', 'float32')}) |",
    f"| tokenizer | byte-level BPE, {cfg['vocab_size']} tokens, RoBERTa special tokens (`basin tokenizer train`) |",
    f"| corpus | {corpus['files']} files, {corpus['bytes'] / 1e6:.1f} MB, {corpus['tokens']:,} tokens (sha256 {corpus['sha256'][:16]}...) |",
    f"| training | {run['steps']} steps of {o['batch_size']} x {o['max_length']} tokens = {run['tokens_seen']:,} tokens seen "
    f"({run['tokens_seen'] / corpus['tokens']:.2f} epochs), seed {o['seed']} |",
    f"| optimizer | AdamW, peak lr {o['lr']}, {o['warmup_ratio'] * 100:.0f}% warm-up then linear decay, weight decay "
    f"{o['weight_decay']}, clip {o['max_grad_norm']} |",
    f"| masking | {o['mask_prob'] * 100:.0f}% of tokens (80% mask / 10% random / 10% kept), dynamic |",
    f"| time | {run['train_seconds'] / 60:.0f} min on 2 CPU cores ({run['tokens_per_second']:.0f} tokens/s) |",
    f"| final held-out MLM | loss {run['final_heldout_loss']:.3f}, accuracy {run['final_heldout_accuracy'] * 100:.1f}% "
    f"(on {o['heldout_max']} held-out sequences, fixed masks) |",
    "",
    "Held-out masked-LM loss and accuracy during pretraining:",
    "",
    "| step | tokens seen | loss | accuracy |",
    "|---:|---:|---:|---:|",
]
lines += [f"| {h['step']} | {h['tokens_seen']:,} | {h['loss']:.3f} | {h['accuracy'] * 100:.1f}% |" for h in run["heldout"]]
lines += [
    "",
    "## Recipe",
    "",
    "```sh",
    "bash scripts/install-deps.sh --data && bash scripts/build.sh",
    "/usr/bin/python3 scripts/build_default_data.py out/default",
    "./build/basin tokenizer train --corpus out/default/corpus --vocab-size 8192 --out models/basin-mini/tokenizer.json",
    run["command"].replace("./build/basin", "./build/basin", 1),
    "```",
    "",
    "The output folder's `config.json`, `model.safetensors`, `tokenizer.json` and `basin_run.json` are",
    "what this folder holds (`pretrain-config.json` is the input config).",
]
if len(sys.argv) > 2:
    comp = json.load(open(sys.argv[2]))
    lines += ["", "## Is it really pretrained?", "",
              "Fine-tuning basin-mini against the same architecture from random initialisation, with identical",
              "settings and seeds (`scripts/compare_init.py`): " + comp["settings"] + ".", "",
              "| dataset | basin-mini | random init | difference (points) |", "|---|---:|---:|---:|"]
    gains = []
    for dataset, r in comp["results"].items():
        m, z = r["basin-mini"], r["random-init"]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
        gain = 100 * (statistics.mean(m) - statistics.mean(z))
        gains.append(gain)
        lines.append(f"| {dataset} | {100 * statistics.mean(m):.1f} ± {100 * sd(m):.1f} | {100 * statistics.mean(z):.1f} ± "
                     f"{100 * sd(z):.1f} | {gain:+.1f} |")
    mean_gain = statistics.mean(gains)
    lines += [f"| **mean** | | | **{mean_gain:+.1f}** |", "",
              ("The pretrained start is better by " if mean_gain > 0 else "The pretrained start is worse by ") +
              f"{abs(mean_gain):.1f} points on average; the target is at least 5 points: "
              + ("met." if mean_gain >= 5 else "**not met** with this pretraining budget.")]
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "basin-mini", "README.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
