#!/usr/bin/python3
"""Benchmark: `basin map` on N = 16 and N = 64 checkpoints of a ~108M-parameter model (BERT-base
shapes, F16 on disk; random perturbations of one base), against, in the same invocation:
  (b) a Python baseline a researcher would write with torch: load every model, flatten the task
      vectors into one N x P float32 matrix, multiply (skipped where that matrix does not fit in RAM);
  (c) reading all the files once with `cat` (warm page cache).
Also `basin map --precision bf16` (bfloat16 products: its time and how far its cosines move), and a
run whose N x model size exceeds --memory-limit by 4x or more, with its peak memory.

usage: bench_map.py BASIN_BINARY [--sizes 16,64] [--threads 2] [--work DIR] [--keep]
Writes bench/results/map.json and prints a Markdown table."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from common import HERE, set_threads  # noqa: E402  (sets thread policy first)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import hf_reference as ref  # noqa: E402

HIDDEN, LAYERS, VOCAB, FFN = 768, 12, 30522, 3072


def shapes():
    s = {"embeddings.word_embeddings.weight": (VOCAB, HIDDEN), "embeddings.position_embeddings.weight": (514, HIDDEN),
         "embeddings.LayerNorm.weight": (HIDDEN,), "embeddings.LayerNorm.bias": (HIDDEN,)}
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            s[p + name + ".weight"], s[p + name + ".bias"] = (HIDDEN, HIDDEN), (HIDDEN,)
        s[p + "intermediate.dense.weight"], s[p + "intermediate.dense.bias"] = (FFN, HIDDEN), (FFN,)
        s[p + "output.dense.weight"], s[p + "output.dense.bias"] = (HIDDEN, FFN), (HIDDEN,)
        s[p + "attention.output.LayerNorm.weight"] = s[p + "output.LayerNorm.weight"] = (HIDDEN,)
    return s


def generate(work, n):
    """base + a_i * u + b_i * v + c_i * w (three shared random directions), F16 files."""
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(0)
    sh = shapes()
    base_dir = os.path.join(work, "base")
    if not os.path.exists(os.path.join(base_dir, "model.safetensors")):
        os.makedirs(base_dir, exist_ok=True)
        ref.write_safetensors(os.path.join(base_dir, "model.safetensors"),
                              {k: rng.normal(0, 0.05, v).astype(np.float32) for k, v in sh.items()}, dtype="F16")
    base = None
    directions = None
    models = []
    for i in range(n):
        folder = os.path.join(work, f"m{i:03d}")
        models.append(folder)
        if os.path.exists(os.path.join(folder, "model.safetensors")):
            continue
        if base is None:
            base = ref.read_safetensors(os.path.join(base_dir, "model.safetensors"))[0]
            directions = [{k: rng.normal(0, 0.01, v).astype(np.float32) for k, v in sh.items()} for _ in range(3)]
        coef = np.random.default_rng(i + 1).normal(0, 1, 3).astype(np.float32)
        os.makedirs(folder, exist_ok=True)
        ref.write_safetensors(os.path.join(folder, "model.safetensors"),
                              {k: base[k] + coef[0] * directions[0][k] + coef[1] * directions[1][k] + coef[2] * directions[2][k]
                               for k in sh}, dtype="F16")
    return base_dir, models


def files_of(base, models):
    return [os.path.join(d, "model.safetensors") for d in [base] + models]


def time_cat(files, repeats):
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def python_baseline(base, models, threads):
    """What a researcher would write: load, flatten, stack, multiply."""
    set_threads(threads)
    t = time.perf_counter()
    b = ref.read_safetensors(os.path.join(base, "model.safetensors"))[0]
    names = list(b)
    flat_base = torch.cat([torch.from_numpy(b[k]).flatten() for k in names])
    x = torch.empty(len(models), flat_base.numel(), dtype=torch.float32)
    for i, m in enumerate(models):
        t_m = ref.read_safetensors(os.path.join(m, "model.safetensors"))[0]
        x[i] = torch.cat([torch.from_numpy(t_m[k]).flatten() for k in names]) - flat_base
    gram = x @ x.T
    norms = gram.diagonal().sqrt()
    cosine = gram / torch.outer(norms, norms)
    return time.perf_counter() - t, cosine.numpy()


def run_basin(basin, base, models, work, limit, threads, tag, precision="f32"):
    lst = os.path.join(work, f"models-{tag}.txt")
    with open(lst, "w") as f:
        f.write("\n".join(models) + "\n")
    out = os.path.join(work, f"map-{tag}")
    t = time.perf_counter()
    subprocess.run([basin, "map", "--base", base, "--models", lst, "--out", out, "--overwrite", "--quiet",
                    "--memory-limit", limit, "--threads", str(threads), "--precision", precision], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    sim = np.loadtxt(os.path.join(out, "similarity.csv"), delimiter=",", skiprows=1,
                     usecols=range(1, len(models) + 1))
    return wall, summary, sim


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--sizes", default="16,64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/basin-bench-map")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    parser.add_argument("--repeats", type=int, default=3, help="cat and basin map: best of this many runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base, models = generate(args.work, max(sizes))
    parameters = sum(int(np.prod(s)) for s in shapes().values())
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = []
    for n in sizes:
        subset = models[:n]
        files = files_of(base, subset)
        total = sum(os.path.getsize(f) for f in files)
        cat = time_cat(files, args.repeats)
        wall, summary, sim = min((run_basin(args.basin, base, subset, args.work, "2G", args.threads, f"{n}")
                                  for _ in range(args.repeats)), key=lambda r: r[0])
        row = {"models": n, "parameters": parameters, "bytes": total, "cat_seconds": cat, "basin_seconds": wall,
               "basin_map_seconds": summary["seconds"], "basin_peak_rss": summary["peak_rss_bytes"],
               "memory_limit": summary["memory_limit_bytes"], "basin_over_cat": wall / cat}
        # --precision bf16: half the arithmetic where the CPU has AVX-512 BF16; how far its cosines move
        bf16_wall, _, bf16_sim = min((run_basin(args.basin, base, subset, args.work, "2G", args.threads, f"{n}-bf16", "bf16")
                                      for _ in range(args.repeats)), key=lambda r: r[0])
        row.update({"bf16_seconds": bf16_wall, "bf16_over_cat": bf16_wall / cat,
                    "bf16_max_cosine_difference": float(np.abs(bf16_sim - sim).max())})
        need = n * parameters * 4 * 1.15
        if need < 0.6 * ram:
            py, py_sim = python_baseline(base, subset, args.threads)
            row.update({"python_seconds": py, "python_over_basin": py / wall,
                        "max_cosine_difference": float(np.abs(py_sim - sim).max())})
        else:
            row["python_skipped"] = f"its N x P float32 matrix needs {need / 2**30:.1f} GiB, this machine has {ram / 2**30:.1f}"
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    # the out-of-memory-scale case: N x model size >= 4x the limit
    n = max(sizes)
    wall, summary, _ = run_basin(args.basin, base, models[:n], args.work, "1G", args.threads, "small-limit")
    small = {"models": n, "memory_limit": summary["memory_limit_bytes"],
             "input_over_limit": sum(os.path.getsize(f) for f in files_of(base, models[:n])) / summary["memory_limit_bytes"],
             "peak_rss": summary["peak_rss_bytes"], "seconds": wall, "chunk_parameters": summary["chunk_parameters"]}
    result = {"benchmark": "basin map vs cat (warm) and a load-flatten-multiply torch script",
              "model": f"BERT-base shapes, {parameters / 1e6:.1f}M parameters, F16 files",
              "threads": args.threads, "repeats": args.repeats, "rows": rows, "small_limit": small}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "map.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("| N | input GB | cat s | basin s | basin / cat | torch script s | script / basin | peak RSS MB (limit 2G) "
          "| bf16 s | bf16 / cat | bf16 max cos change |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        py = f"{r['python_seconds']:.2f} | {r['python_over_basin']:.1f}x" if "python_seconds" in r else "not run | -"
        print(f"| {r['models']} | {r['bytes'] / 1e9:.2f} | {r['cat_seconds']:.2f} | {r['basin_seconds']:.2f} | "
              f"{r['basin_over_cat']:.2f}x | {py} | {r['basin_peak_rss'] / 2**20:.0f} | {r['bf16_seconds']:.2f} | "
              f"{r['bf16_over_cat']:.2f}x | {r['bf16_max_cosine_difference']:.1e} |")
    print(f"\nsmall limit: N={small['models']}, input {small['input_over_limit']:.1f}x the 1G limit, peak RSS "
          f"{small['peak_rss'] / 2**20:.0f} MB, {small['seconds']:.2f} s")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
