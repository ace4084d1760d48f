#!/usr/bin/python3
"""Benchmark: growing a map (`basin map --update`) and placing new models (`basin locate`) against
mapping everything again, on N checkpoints of a ~108M-parameter model (BERT-base shapes, F16 on
disk; bench_map.py's generator), in the same invocation:
  (a) `basin map` of all N models (the baseline: what an update replaces);
  (b) `basin map` of the first N - NEW, then `basin map --update` with the last NEW;
  (c) `basin locate` of the last NEW against the map of the first N - NEW;
  (d) reading all the files once with `cat` (warm page cache): the floor of any pass.
Each is the best of --repeats runs; the update's Gram matrix is checked against the full map's.

usage: bench_map_update.py BASIN_BINARY [--models 32] [--new 4] [--threads 2] [--work DIR] [--keep]
Writes bench/results/map_update.json and prints a Markdown table."""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time

from common import HERE  # noqa: E402  (sets thread policy first)
import numpy as np  # noqa: E402

import bench_map  # noqa: E402


def timed(*command):
    t = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def best(repeats, *command):
    return min(timed(*command) for _ in range(repeats))


def gram(folder):
    with open(os.path.join(folder, "gram.safetensors"), "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    info = json.loads(data[8:8 + length])["gram"]
    begin, end = info["data_offsets"]
    return np.frombuffer(data[8 + length + begin:8 + length + end], "<f8").reshape(info["shape"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--new", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/basin-bench-map")
    parser.add_argument("--keep", action="store_true", help="keep the generated checkpoints")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, new = args.models, args.new
    base, models = bench_map.generate(args.work, n)
    lists = {}
    for name, subset in (("all", models), ("old", models[:n - new]), ("new", models[n - new:])):
        lists[name] = os.path.join(args.work, f"update-{name}.txt")
        with open(lists[name], "w") as f:
            f.write("\n".join(subset) + "\n")
    out = {k: os.path.join(args.work, f"update-{k}") for k in ("full", "old", "updated")}
    common = ["--threads", str(args.threads), "--quiet", "--bootstrap", "0"]
    cat = bench_map.time_cat(bench_map.files_of(base, models), args.repeats)
    full = best(args.repeats, args.basin, "map", "--base", base, "--models", lists["all"], "--out", out["full"],
                "--overwrite", *common)
    subprocess.run([args.basin, "map", "--base", base, "--models", lists["old"], "--out", out["old"], "--overwrite",
                    *common], check=True, stdout=subprocess.DEVNULL)
    update = best(args.repeats, args.basin, "map", "--update", out["old"], "--models", lists["new"], "--out",
                  out["updated"], "--overwrite", *common)
    locate = best(args.repeats, args.basin, "locate", out["old"], "--models", lists["new"], "--threads",
                  str(args.threads), "--quiet")
    g_full, g_upd = gram(out["full"]), gram(out["updated"])
    with open(os.path.join(out["updated"], "summary.json")) as f:
        pairs_update = json.load(f)["gram_pairs"]
    with open(os.path.join(out["full"], "summary.json")) as f:
        summary = json.load(f)
    row = {"models": n, "new": new, "bytes": sum(os.path.getsize(f) for f in bench_map.files_of(base, models)),
           "cat_seconds": cat, "full_seconds": full, "update_seconds": update, "locate_seconds": locate,
           "full_over_update": full / update, "full_over_cat": full / cat, "update_over_cat": update / cat,
           "pairs_full": summary["gram_pairs"], "pairs_update": pairs_update,
           "max_relative_gram_difference": float(np.abs(g_full - g_upd).max() / np.abs(g_full).max())}
    result = {"benchmark": "basin map --update and basin locate vs a full map and cat (warm)",
              "model": "BERT-base shapes, F16 files (bench_map.py)", "threads": args.threads,
              "repeats": args.repeats, "row": row}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "map_update.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(row), file=sys.stderr)
    print("| N | new | input GB | cat s | full map s | update s | full / update | locate s | pairs full / update "
          "| max rel. Gram difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {n} | {new} | {row['bytes'] / 1e9:.2f} | {cat:.2f} | {full:.2f} | {update:.2f} | "
          f"{row['full_over_update']:.2f}x | {locate:.2f} | {row['pairs_full']} / {row['pairs_update']} | "
          f"{row['max_relative_gram_difference']:.1e} |")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
