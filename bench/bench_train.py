#!/usr/bin/python3
"""Benchmark: `basin finetune` training throughput against a Python reference training loop
(Debian's python3-torch: an nn.Module following the Hugging Face RoBERTa classifier, AdamW,
linear warm-up/decay, gradient clipping, dropout 0.1) with the same model, data, batch size,
sequence lengths, number of steps and threads, in one invocation. Also the probe's cost:
fitting the head against extracting the features.

usage: bench_train.py BASIN_BINARY [--steps N] [--threads 1,2]
Writes bench/results/train.json and prints Markdown tables."""
import argparse
import json
import math
import os
import subprocess
import sys
import time

from common import HERE, ROOT, SHARED, H, L, N, I, set_threads  # noqa: E402  (sets thread policy first)
import torch  # noqa: E402

import hf_reference as ref  # noqa: E402
import real_base_bench  # noqa: E402


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (torch.nn.Linear(H, H) for _ in range(4))
        self.ln1, self.ln2 = torch.nn.LayerNorm(H, eps=1e-5), torch.nn.LayerNorm(H, eps=1e-5)
        self.fc1, self.fc2 = torch.nn.Linear(H, I), torch.nn.Linear(I, H)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x, ext):
        B, T, _ = x.shape
        sp = lambda t: t.view(B, T, N, H // N).transpose(1, 2)
        p = self.drop(torch.softmax(sp(self.q(x)) @ sp(self.k(x)).transpose(-1, -2) / math.sqrt(H // N) + ext, -1))
        a = self.ln1(self.drop(self.o((p @ sp(self.v(x))).transpose(1, 2).reshape(B, T, H))) + x)
        return self.ln2(self.drop(self.fc2(torch.nn.functional.gelu(self.fc1(a)))) + a)


class Classifier(torch.nn.Module):
    def __init__(self, vocab, positions, labels):
        super().__init__()
        self.word, self.pos, self.typ = torch.nn.Embedding(vocab, H), torch.nn.Embedding(positions, H), torch.nn.Embedding(1, H)
        self.ln = torch.nn.LayerNorm(H, eps=1e-5)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(L))
        self.dense, self.out = torch.nn.Linear(H, H), torch.nn.Linear(H, labels)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, ids, pad=1):
        m = ids.ne(pad).long()
        x = self.drop(self.ln(self.word(ids) + self.pos(torch.cumsum(m, 1) * m + pad) + self.typ(torch.zeros_like(ids))))
        ext = (1.0 - m[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, ext)
        return self.out(self.drop(torch.tanh(self.dense(self.drop(x[:, 0])))))


def child(args):
    set_threads(args.child_threads)
    job = json.load(open(args.child_job))
    torch.manual_seed(0)
    model = Classifier(job["vocab"], job["positions"], 2)
    model.train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or ".ln" in n or n.startswith("ln"))]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or ".ln" in n or n.startswith("ln")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=5e-5)
    steps, warmup = job["steps"], math.ceil(job["steps"] * 0.06)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    batches = job["batches"]
    t = time.perf_counter()
    for step in range(steps):
        ids_list, labels = batches[step % len(batches)]
        T = max(len(x) for x in ids_list)
        ids = torch.full((len(ids_list), T), 1, dtype=torch.long)
        for i, x in enumerate(ids_list):
            ids[i, :len(x)] = torch.tensor(x)
        loss = torch.nn.functional.cross_entropy(model(ids), torch.tensor(labels))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    print(json.dumps({"seconds": time.perf_counter() - t}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--work", default="/tmp/basin-bench-train")
    parser.add_argument("--real-base-steps", type=int, default=20)
    parser.add_argument("--only-real-base", action="store_true", help="skip the synthetic-model rows (kept from the last run)")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--child-job")
    parser.add_argument("--child-threads", type=int)
    args = parser.parse_args()
    if args.child:
        return child(args)
    os.makedirs(args.work, exist_ok=True)
    threads_list = [int(t) for t in args.threads.split(",")]
    if args.only_real_base:
        result = json.load(open(os.path.join(HERE, "results", "train.json")))
        return real_base_part(args, result, threads_list)
    model = os.path.join(args.work, "model")
    tok = os.path.join(SHARED, "hf", "roberta-base", "tokenizer.json")
    init = [args.basin, "init-model", "--out", model, "--overwrite", "--hidden", str(H), "--layers", str(L), "--heads", str(N),
            "--intermediate", str(I), "--max-positions", "130"]
    if os.path.exists(tok):
        init += ["--tokenizer", tok]
    subprocess.run(init, check=True, stdout=subprocess.DEVNULL)
    train_src = os.path.join(SHARED, "datasets", "sst2", "train.jsonl")
    data = os.path.join(args.work, "train.jsonl")
    n = args.steps * args.batch_size
    if os.path.exists(train_src):
        lines = open(train_src, encoding="utf-8").read().splitlines()[:n]
        open(data, "w", encoding="utf-8").write("\n".join(lines) + "\n")
        data_name = f"SST-2 train, first {len(lines)} sentences"
    else:
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_demo_data.py"), data], check=True)
        data_name = "quickstart demo data"
    # token ids as basin sees them, for the reference's batches
    preds = os.path.join(args.work, "ids.jsonl")
    probe_model = os.path.join(args.work, "clf")
    subprocess.run([args.basin, "init-model", "--out", probe_model, "--overwrite", "--head", "classification", "--labels",
                    "negative,positive", "--hidden", str(H), "--layers", str(L), "--heads", str(N), "--intermediate", str(I),
                    "--max-positions", "130"] + (["--tokenizer", tok] if os.path.exists(tok) else []), check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.basin, "eval", "--model", probe_model, "--data", data, "--predictions", preds, "--max-length", "128"],
                   check=True, stdout=subprocess.DEVNULL)
    rows_ids = [json.loads(l) for l in open(preds)]
    ids = [r["input_ids"] for r in rows_ids]
    labels = [0 if r["label"] == "negative" else 1 for r in rows_ids]
    tokens = sum(len(x) for x in ids)
    cfg = json.load(open(os.path.join(model, "config.json")))
    order = list(range(len(ids)))
    import random
    random.Random(0).shuffle(order)
    batches = [([ids[j] for j in order[i:i + args.batch_size]], [labels[j] for j in order[i:i + args.batch_size]])
               for i in range(0, len(order), args.batch_size)]
    job = os.path.join(args.work, "job.json")
    json.dump({"vocab": cfg["vocab_size"], "positions": cfg["max_position_embeddings"], "steps": args.steps, "batches": batches},
              open(job, "w"))

    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        out = os.path.join(args.work, f"out-{threads}")
        subprocess.run([args.basin, "finetune", "--model", model, "--train", data, "--out", out, "--overwrite", "--max-steps",
                        str(args.steps), "--batch-size", str(args.batch_size), "--threads", str(threads), "--max-length", "128",
                        "--quiet"], check=True, stdout=subprocess.DEVNULL)
        record = json.load(open(os.path.join(out, "basin_run.json")))
        reference = json.loads(subprocess.run([sys.executable, os.path.abspath(__file__), args.basin, "--child", "--child-job", job,
                                               "--child-threads", str(threads)], check=True, capture_output=True, text=True).stdout)
        b, r = record["train_seconds"], reference["seconds"]
        ex = args.steps * args.batch_size
        rows.append({"threads": threads, "basin_seconds": b, "basin_examples_per_s": ex / b, "basin_tokens_per_s": record["tokens_per_second"],
                     "reference_seconds": r, "reference_examples_per_s": ex / r, "ratio": r / b})

    # probe cost: extraction vs fitting, no cache
    test_src = os.path.join(SHARED, "datasets", "sst2", "test.jsonl")
    test = os.path.join(args.work, "test.jsonl")
    if os.path.exists(test_src):
        open(test, "w", encoding="utf-8").write("\n".join(open(test_src, encoding="utf-8").read().splitlines()[:300]) + "\n")
    else:
        test = data
    probe = json.loads(subprocess.run([args.basin, "probe", "--model", model, "--train", data, "--test", test, "--no-cache",
                                       "--json", "--threads", "2"], check=True, capture_output=True, text=True).stdout)
    result = {"benchmark": "basin finetune vs Python training loop", "model": f"RoBERTa {L} layers, hidden {H}, {N} heads, FFN {I}",
              "data": data_name, "steps": args.steps, "batch_size": args.batch_size, "tokens": tokens, "rows": rows,
              "probe": {k: probe[k] for k in ("extract_seconds", "fit_seconds", "iterations", "converged", "test_accuracy")}}
    json.dump(result, open(os.path.join(HERE, "results", "train.json"), "w"), indent=2)
    print(f"model: {result['model']}; data: {data_name}; {args.steps} steps of batch {args.batch_size}; dropout 0.1; AdamW")
    print("| threads | basin ex/s | basin tok/s | reference ex/s | basin / reference |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['threads']} | {r['basin_examples_per_s']:.1f} | {r['basin_tokens_per_s']:.0f} | {r['reference_examples_per_s']:.1f} | {r['ratio']:.2f}x |")
    p = result["probe"]
    print(f"\nprobe ({len(ids)} train, test {test}): features {p['extract_seconds']:.2f} s, fit {p['fit_seconds']:.2f} s "
          f"({p['iterations']} L-BFGS iterations, converged={p['converged']})")
    real_base_part(args, result, threads_list)


def real_base_part(args, result, threads_list):
    """basin against the transformers training loop on the real base, under Debian's torch and
    torch 2.x (bench/real_base_bench.py), in this invocation."""
    if not real_base_bench.available():
        print("note: models/real-base or ../shared/datasets missing; the real-base rows were not measured")
        return
    result["real_base"] = real_base_bench.train_rows(args.basin, args.work, threads_list, steps=args.real_base_steps,
                                                     batch=args.batch_size)
    json.dump(result, open(os.path.join(HERE, "results", "train.json"), "w"), indent=2)
    real_base_bench.table(result["real_base"], f"training ({args.real_base_steps} steps of batch {args.batch_size})")


if __name__ == "__main__":
    main()
