#!/usr/bin/python3
"""Benchmark: `basin merge --method mean` of N = 16 checkpoints of a ~108M-parameter model (BERT-base
shapes, F16 on disk, the generator of bench_map.py), against, in the same invocation:
  (c) reading every input once with `cat` (warm page cache) and writing one output of the same size
      with `dd` (best of three each);
  (b) a Python/torch script that loads every model and averages (what a researcher would write).
Also basin's peak resident memory against the size of one model.

usage: bench_merge.py BASIN_BINARY [--models 16] [--threads 2] [--work DIR]
Writes bench/results/merge.json and prints a Markdown table."""
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
from bench_map import generate  # noqa: E402


def python_baseline(models, out, threads):
    set_threads(threads)
    t = time.perf_counter()
    loaded = [ref.read_safetensors(os.path.join(m, "model.safetensors"))[0] for m in models]
    merged = {}
    for name in loaded[0]:
        merged[name] = torch.stack([torch.from_numpy(m[name]) for m in loaded]).mean(0).numpy()
    ref.write_safetensors(out, merged, dtype="F16")
    return time.perf_counter() - t, merged


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/basin-bench-map")
    args = parser.parse_args()
    _, models = generate(args.work, args.models)
    for m in models:
        with open(os.path.join(m, "config.json"), "w") as f:
            json.dump({"architectures": ["BertModel"], "model_type": "bert"}, f)
    files = [os.path.join(m, "model.safetensors") for m in models]
    one_model = os.path.getsize(files[0])
    out_dir = os.path.join(args.work, "merged")
    copy = os.path.join(args.work, "copy.safetensors")

    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    rows = {}

    def best_of(n, fn):
        return min(fn() for _ in range(n))

    def read_all():
        t = time.perf_counter()
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t

    def write_one():  # a fresh file each time, as merge writes one; dd reads and writes (cp may clone)
        if os.path.exists(copy):
            os.remove(copy)
        t = time.perf_counter()
        subprocess.run(["dd", f"if={files[0]}", f"of={copy}", "bs=4M", "status=none"], check=True)
        return time.perf_counter() - t

    read_s, write_s = best_of(3, read_all), best_of(3, write_one)
    rows["cat inputs + write one model (c)"] = {"seconds": read_s + write_s, "read_seconds": read_s, "write_seconds": write_s}

    peak = 0

    def merge_once(extra=()):
        nonlocal peak
        shutil.rmtree(out_dir, ignore_errors=True)  # a fresh output, as for dd (not timed)
        t = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", args.basin, "merge", "--models", ",".join(models), "--out",
                            out_dir, "--quiet", "--threads", str(args.threads), *extra],
                           check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        peak = max(peak, int(r.stderr.strip().splitlines()[-1]) * 1024)
        return seconds

    cache = os.path.join(args.work, "hash-cache")
    env_cache = os.environ.get("BASIN_CACHE")
    os.environ["BASIN_CACHE"] = cache
    subprocess.run(["rm", "-rf", cache], check=True)
    first = merge_once()  # hashes every input (SHA-256) for the provenance record
    best = best_of(3, merge_once)  # hashes remembered by path, size, mtime and inode
    if env_cache is None:
        del os.environ["BASIN_CACHE"]
    rows["basin merge --method mean, inputs hashed (first run)"] = {"seconds": first}
    rows["basin merge --method mean (hashes cached)"] = {"seconds": best, "peak_rss_bytes": peak}

    py_s, merged = python_baseline(models, os.path.join(args.work, "python-merged.safetensors"), args.threads)
    rows["python/torch: load all, average, write (b)"] = {"seconds": py_s}
    got = ref.read_safetensors(os.path.join(out_dir, "model.safetensors"))[0]
    worst = max(float(np.abs(got[k].astype(np.float64) - merged[k]).max()) for k in merged)

    base = rows["cat inputs + write one model (c)"]["seconds"]
    print(f"N = {args.models} models of {one_model / 1e6:.0f} MB (F16), {args.threads} threads, warm page cache\n")
    print("| run | seconds | vs (c) |")
    print("|---|---|---|")
    for tag, row in rows.items():
        row["vs_read_write"] = row["seconds"] / base
        print(f"| {tag} | {row['seconds']:.2f} | {row['vs_read_write']:.2f}x |")
    speedup = rows["python/torch: load all, average, write (b)"]["seconds"] / first
    print(f"\nbasin vs the Python script: {speedup:.1f}x faster; peak RSS {peak / 1e6:.0f} MB = "
          f"{peak / one_model:.2f}x one model; largest difference from the script's average {worst:.2e} (F16 rounding)")
    result = {"models": args.models, "model_bytes": one_model, "threads": args.threads, "rows": rows,
              "speedup_vs_python": speedup, "peak_over_one_model": peak / one_model, "max_abs_difference": worst}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "merge.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
