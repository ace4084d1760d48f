#!/usr/bin/python3
"""Benchmark: `basin interpolate` on basin-mini over two datasets, in points per minute, with the
share of time spent building weights, extracting features and fitting probes. Compared, in the
same invocation, with:
  (a) the loop a user would write around single commands: for each alpha, write the interpolated
      checkpoint with numpy, then run `basin probe` once per dataset (each call tokenizes again);
  (b) `basin interpolate --jobs 2` (two points at once, one thread each) against --jobs 1 (two threads);
  (c) a second run of the same command, every feature read from the cache.

The endpoints are basin-mini and basin-mini moved by seeded Gaussian noise (scoring speed does not
depend on how the endpoints were trained). The datasets are generated (sentences of 20-40 words
from a fixed word list), 1,000 train and 250 test examples each.

usage: bench_region.py BASIN_BINARY [--points 5] [--threads 2] [--work DIR]
Writes bench/results/region.json and prints a Markdown table."""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

from common import HERE, ROOT  # noqa: E402  (sets thread policy first)
import numpy as np  # noqa: E402

import hf_reference as ref  # noqa: E402

BASE = os.path.join(ROOT, "models", "basin-mini")
WORDS = ("the of and a to in is was that for it with as on be by at this from or have an they which one you were "
         "her all she there would their we him been has when who will more no if out so said what up its about into "
         "than them can only other new some could time these two may then do first any my now such like our over man "
         "me even most made after also did many before must through back years where much your way well down").split()


def make_dataset(folder, seed, train=1000, test=250):
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(seed)
    for split, n in (("train", train), ("test", test)):
        with open(os.path.join(folder, f"{split}.jsonl"), "w") as f:
            for _ in range(n):
                label = rng.choice(["a", "b", "c"])
                words = [rng.choice(WORDS) for _ in range(rng.randint(20, 40))]
                words.insert(rng.randint(0, len(words)), {"a": "sea", "b": "land", "c": "sky"}[label])
                f.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")


def perturbed_copy(out, seed):
    os.makedirs(out, exist_ok=True)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(BASE, name), out)
    tensors, _, _ = ref.read_safetensors(os.path.join(BASE, "model.safetensors"))
    rng = np.random.default_rng(seed)
    moved = {k: (v + 0.01 * rng.standard_normal(v.shape).astype(np.float32)) if v.ndim == 2 else v
             for k, v in tensors.items()}
    ref.write_safetensors(os.path.join(out, "model.safetensors"), moved)
    return tensors, moved


def timed(cmd):
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/basin-bench-region")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    data = [os.path.join(args.work, "data", name) for name in ("first", "second")]
    for i, d in enumerate(data):
        make_dataset(d, i)
    b = os.path.join(args.work, "moved")
    a_tensors, b_tensors = perturbed_copy(b, 1)
    alphas = np.linspace(0, 1, args.points)
    common = ["--data", ",".join(data), "--max-length", "64", "--quiet"]
    rows = {}

    # (a) one checkpoint and one `basin probe` per point and dataset
    loop = os.path.join(args.work, "loop")
    start = time.perf_counter()
    for k, alpha in enumerate(alphas):
        point = os.path.join(loop, f"p{k}")
        os.makedirs(point)
        for name in ("config.json", "tokenizer.json"):
            shutil.copy(os.path.join(BASE, name), point)
        ref.write_safetensors(os.path.join(point, "model.safetensors"),
                              {n: ((1 - alpha) * a_tensors[n].astype(np.float64) + alpha * b_tensors[n]).astype(np.float32)
                               for n in a_tensors})
        for d in data:
            timed([args.basin, "probe", "--model", point, "--train", os.path.join(d, "train.jsonl"), "--test",
                   os.path.join(d, "test.jsonl"), "--max-length", "64", "--no-cache", "--threads", str(args.threads)])
    rows["loop of basin probe calls"] = {"seconds": time.perf_counter() - start}

    def interpolate(tag, *extra):
        out = os.path.join(args.work, tag)
        seconds = timed([args.basin, "interpolate", BASE, b, "--alphas", f"0:1:{args.points}", "--out", out, *common, *extra])
        with open(os.path.join(out, "summary.json")) as f:
            times = json.load(f)["times"]
        rows[tag] = {"seconds": seconds, "times": times}

    interpolate("interpolate --jobs 1", "--no-cache", "--threads", str(args.threads))
    interpolate("interpolate --jobs 2", "--no-cache", "--threads", str(args.threads), "--jobs", "2")
    cache = ["--cache", os.path.join(args.work, "cache"), "--threads", str(args.threads)]
    interpolate("interpolate, filling the cache", *cache)
    interpolate("interpolate, features cached", *cache)

    baseline = rows["loop of basin probe calls"]["seconds"]
    print(f"{args.points} points x 2 datasets (1,000 train + 250 test examples each, max length 64), "
          f"basin-mini, {args.threads} threads\n")
    print("| run | seconds | points/min | vs loop | build / features / probe fits |")
    print("|---|---|---|---|---|")
    for tag, row in rows.items():
        row["points_per_minute"] = 60 * args.points / row["seconds"]
        row["speedup_vs_loop"] = baseline / row["seconds"]
        t = row.get("times")
        shares = (f"{100 * t['build_share']:.0f}% / {100 * t['extract_share']:.0f}% / {100 * t['fit_share']:.0f}%"
                  if t else "-")
        print(f"| {tag} | {row['seconds']:.1f} | {row['points_per_minute']:.1f} | {row['speedup_vs_loop']:.2f}x | {shares} |")
    result = {"points": args.points, "datasets": 2, "threads": args.threads, "model": "basin-mini", "rows": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "region.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
