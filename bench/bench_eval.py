#!/usr/bin/python3
"""Benchmark: `basin eval` throughput against a Python reference (Debian's python3-torch, the
same libtorch underneath) on the same model size, data and thread count, in one invocation,
with the machine's matmul peak measured in the same run.

Model: RoBERTa-architecture classifier, 6 layers, hidden 512, 8 heads, FFN 2048, random
weights (throughput does not depend on the values). Tokenizer: roberta-base's from ../shared/hf
when present, else basin's byte-level default. Data: SST-2 test sentences from
../shared/datasets when present, else the quickstart demo data.

Both sides time forward passes only (tokenization excluded) over identical token ids. The
reference is run two ways: batches in file order padded to their longest (what the Hugging Face
Trainer's evaluation loop does) and, for a like-for-like kernel comparison, with the same
length-sorted batches as basin.

usage: bench_eval.py BASIN_BINARY [--examples N] [--threads 1,2] [--repeats R]
Writes bench/results/eval.json and prints a Markdown table."""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

from common import HERE, ROOT, SHARED, H, L, N, I, set_threads  # noqa: E402  (sets thread policy first)
import torch  # noqa: E402

import hf_reference as ref  # noqa: E402
import real_base_bench  # noqa: E402


def matmul_peak(threads, n=1024, repeats=20):
    set_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e9


def forward_flops(lengths_padded):
    """FLOPs of the encoder + head for batches given as (batch, padded_len) pairs."""
    total = 0
    for b, t in lengths_padded:
        tokens = b * t
        per_layer = tokens * (2 * H * 3 * H + 2 * H * H + 2 * 2 * H * I) + b * 2 * 2 * t * t * H
        total += L * per_layer + b * 2 * H * H
    return total


def reference_forward(model_dir, batches, threads):
    """HF-style module forward in inference mode over the given batches of id lists."""
    set_threads(threads)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    W, _, _ = ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    W = {k: torch.from_numpy(v.copy()) for k, v in W.items()}
    pad = cfg["pad_token_id"]
    D = H // N

    def lin(x, name):
        return torch.nn.functional.linear(x, W[name + ".weight"], W[name + ".bias"])

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (H,), W[name + ".weight"], W[name + ".bias"], 1e-5)

    def run(ids_list):
        B, T = len(ids_list), max(len(x) for x in ids_list)
        ids = torch.full((B, T), pad, dtype=torch.long)
        mask = torch.zeros((B, T))
        for i, x in enumerate(ids_list):
            ids[i, :len(x)] = torch.tensor(x)
            mask[i, :len(x)] = 1
        m = ids.ne(pad).long()
        pos = torch.cumsum(m, 1) * m + pad
        x = W["roberta.embeddings.word_embeddings.weight"][ids] + W["roberta.embeddings.position_embeddings.weight"][pos] \
            + W["roberta.embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
        x = ln(x, "roberta.embeddings.LayerNorm")
        ext = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        for l in range(L):
            p = f"roberta.encoder.layer.{l}."
            sp = lambda t: t.view(B, T, N, D).transpose(1, 2)
            q, k, v = sp(lin(x, p + "attention.self.query")), sp(lin(x, p + "attention.self.key")), sp(lin(x, p + "attention.self.value"))
            probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + ext, -1)
            ctx = (probs @ v).transpose(1, 2).reshape(B, T, H)
            a = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            x = ln(lin(torch.nn.functional.gelu(lin(a, p + "intermediate.dense")), p + "output.dense") + a, p + "output.LayerNorm")
        h = torch.tanh(lin(x[:, 0], "classifier.dense"))
        return lin(h, "classifier.out_proj")

    with torch.inference_mode():
        run(batches[0])  # warm-up
        t = time.perf_counter()
        for batch in batches:
            run(batch)
        return time.perf_counter() - t


def child(args):
    """Runs the reference measurements in this (fresh) process and prints them as JSON."""
    batches = json.load(open(args.child_batches))
    out = {"matmul_peak_gflops": matmul_peak(args.child_threads),
           "file_order": min(reference_forward(args.child_model, batches["file_order"], args.child_threads) for _ in range(args.repeats)),
           "sorted": min(reference_forward(args.child_model, batches["sorted"], args.child_threads) for _ in range(args.repeats))}
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--examples", type=int, default=800)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", default="/tmp/basin-bench-eval")
    parser.add_argument("--only-real-base", action="store_true", help="skip the synthetic-model rows (kept from the last run)")
    parser.add_argument("--real-base-key", default="real_base",
                        help="where results/eval.json keeps the real-base rows (real_base_basin_on_torch2 for a build "
                             "against the torch 2.x wheel's libtorch)")
    parser.add_argument("--build-label", default="basin built against Debian's libtorch 1.13 (the default)",
                        help="what the basin binary was built against, recorded with the rows")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-batches", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    os.makedirs(args.work, exist_ok=True)
    if args.only_real_base:
        result = json.load(open(os.path.join(HERE, "results", "eval.json")))
        return real_base_part(args, result)

    model = os.path.join(args.work, "model")
    tokenizer_src = os.path.join(SHARED, "hf", "roberta-base", "tokenizer.json")
    init = [args.basin, "init-model", "--out", model, "--overwrite", "--head", "classification", "--labels", "negative,positive",
            "--hidden", str(H), "--layers", str(L), "--heads", str(N), "--intermediate", str(I), "--max-positions", "514"]
    if os.path.exists(tokenizer_src):
        init += ["--tokenizer", tokenizer_src]
    subprocess.run(init, check=True, stdout=subprocess.DEVNULL)

    data_src = os.path.join(SHARED, "datasets", "sst2", "test.jsonl")
    data = os.path.join(args.work, "data.jsonl")
    if os.path.exists(data_src):
        lines = open(data_src, encoding="utf-8").read().splitlines()[: args.examples]
        open(data, "w", encoding="utf-8").write("\n".join(lines) + "\n")
        data_name = f"SST-2 test, first {len(lines)} sentences"
    else:
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_demo_data.py"), data], check=True)
        data_name = "quickstart demo data"

    preds_path = os.path.join(args.work, "pred.jsonl")
    subprocess.run([args.basin, "eval", "--model", model, "--data", data, "--predictions", preds_path, "--threads", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    ids = [json.loads(l)["input_ids"] for l in open(preds_path)]
    tokens = sum(len(x) for x in ids)
    bs = args.batch_size
    file_order = [ids[i:i + bs] for i in range(0, len(ids), bs)]
    by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    sorted_batches = [[ids[j] for j in by_length[i:i + bs]] for i in range(0, len(ids), bs)]
    flops_sorted = forward_flops([(len(b), max(len(x) for x in b)) for b in sorted_batches])
    flops_file = forward_flops([(len(b), max(len(x) for x in b)) for b in file_order])
    flops_useful = forward_flops([(1, len(x)) for x in ids])

    batches_path = os.path.join(args.work, "batches.json")
    json.dump({"file_order": file_order, "sorted": sorted_batches}, open(batches_path, "w"))
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        basin_s = []
        for _ in range(args.repeats):
            out = subprocess.run([args.basin, "eval", "--model", model, "--data", data, "--json", "--threads", str(threads),
                                  "--batch-size", str(bs)], check=True, capture_output=True, text=True).stdout
            basin_s.append(json.loads(out)["seconds"])
        reference = json.loads(subprocess.run(
            [sys.executable, os.path.abspath(__file__), args.basin, "--child", "--child-model", model, "--child-batches",
             batches_path, "--child-threads", str(threads), "--repeats", str(args.repeats)],
            check=True, capture_output=True, text=True).stdout)
        b, rf, rs, peak = min(basin_s), reference["file_order"], reference["sorted"], reference["matmul_peak_gflops"]
        rows.append({
            "threads": threads, "matmul_peak_gflops": peak,
            "basin_seconds": b, "basin_examples_per_s": len(ids) / b, "basin_tokens_per_s": tokens / b,
            "basin_gflops": flops_sorted / b / 1e9, "basin_useful_gflops": flops_useful / b / 1e9,
            "reference_file_order_seconds": rf, "reference_file_order_examples_per_s": len(ids) / rf,
            "reference_file_order_gflops": flops_file / rf / 1e9,
            "reference_sorted_seconds": rs, "reference_sorted_examples_per_s": len(ids) / rs,
            "reference_sorted_gflops": flops_sorted / rs / 1e9,
            "speedup_vs_file_order": rf / b, "speedup_vs_sorted": rs / b,
        })
    result = {"benchmark": "basin eval vs Python reference", "model": f"RoBERTa {L} layers, hidden {H}, {N} heads, FFN {I}",
              "data": data_name, "examples": len(ids), "tokens": tokens, "batch_size": bs, "repeats": args.repeats,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__, "rows": rows}
    json.dump(result, open(os.path.join(HERE, "results", "eval.json"), "w"), indent=2)
    print(f"model: {result['model']}; data: {data_name} ({len(ids)} examples, {tokens} tokens); batch {bs}; best of {args.repeats}")
    print(f"padding overhead: file order {flops_file / flops_useful:.2f}x, length-sorted {flops_sorted / flops_useful:.2f}x the useful FLOPs")
    print("| threads | matmul peak GFLOP/s | basin ex/s | basin tok/s | basin GFLOP/s | ref (file order) ex/s | ref (sorted) ex/s | basin / ref file order | basin / ref sorted |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['threads']} | {r['matmul_peak_gflops']:.1f} | {r['basin_examples_per_s']:.1f} | {r['basin_tokens_per_s']:.0f} | "
              f"{r['basin_gflops']:.1f} | {r['reference_file_order_examples_per_s']:.1f} | {r['reference_sorted_examples_per_s']:.1f} | "
              f"{r['speedup_vs_file_order']:.2f}x | {r['speedup_vs_sorted']:.2f}x |")
    real_base_part(args, result)


def real_base_part(args, result):
    """basin against the transformers evaluation loop on the real base, under Debian's torch and
    torch 2.x (bench/real_base_bench.py), in this invocation."""
    if not real_base_bench.available():
        print("note: models/real-base or ../shared/datasets missing; the real-base rows were not measured")
        return
    key = args.real_base_key
    result[key] = real_base_bench.eval_rows(args.basin, args.work, [int(t) for t in args.threads.split(",")],
                                            examples=args.examples, batch=args.batch_size, repeats=args.repeats)
    result[key]["basin_build"] = args.build_label
    json.dump(result, open(os.path.join(HERE, "results", "eval.json"), "w"), indent=2)
    real_base_bench.table(result[key], f"evaluation ({result[key]['examples']} SST-2 test sentences)")


if __name__ == "__main__":
    main()
