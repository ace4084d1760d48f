#!/usr/bin/python3
"""The region on real fine-tuning runs: basin-mini fine-tuned twice on the quickstart spam dataset
(seeds 1 and 2). The generalized loss at the midpoint is no worse than the worse endpoint (plus a
small tolerance); extrapolating to alpha = 32 is clearly worse than both endpoints.

Needs the quickstart data's packages (scripts/install-deps.sh --data, which scripts/test.sh runs);
without them it reports itself skipped (exit 77).

usage: test_region_finetuned.py BASIN WORK"""
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import quickstart_data  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "models", "basin-mini")
TOLERANCE = 0.02  # generalized-loss units
# a firmer L2 than the default (1e-3) keeps the probe from overfitting 600 training examples, which
# otherwise adds probe noise of the same size as the differences measured here


def main():
    datasets = quickstart_data.build(WORK, max_train=600, max_test=300)
    if datasets is None:
        return 77
    data = os.path.join(datasets, "spam")
    models = []
    for seed in (1, 2):
        out = os.path.join(WORK, f"spam-s{seed}")
        subprocess.run([BASIN, "finetune", "--model", BASE, "--train", os.path.join(data, "train.jsonl"), "--out", out,
                        "--seed", str(seed), "--epochs", "2", "--batch-size", "16", "--lr", "3e-4", "--max-length", "48",
                        "--threads", "2", "--quiet"], check=True, capture_output=True)
        models.append(out)
    out = os.path.join(WORK, "interpolate")
    r = subprocess.run([BASIN, "interpolate", *models, "--data", data, "--alphas", "0,0.5,1,32", "--max-length", "48",
                        "--l2", "1e-2", "--out", out, "--no-cache", "--quiet"], capture_output=True, text=True)
    print(r.stdout)
    if r.returncode != 0:
        print(r.stderr)
        return 1
    with open(os.path.join(out, "scores.csv")) as f:
        loss = {float(row["alpha"]): float(row["loss"]) for row in csv.DictReader(f)}
    worse_end = max(loss[0.0], loss[1.0])
    ok = True
    if loss[0.5] > worse_end + TOLERANCE:
        print(f"FAIL: midpoint loss {loss[0.5]:.4f} above the worse endpoint {worse_end:.4f} + {TOLERANCE}")
        ok = False
    if loss[32.0] < worse_end + 0.1 or loss[32.0] < 1.5 * worse_end:
        print(f"FAIL: alpha = 32 loss {loss[32.0]:.4f} is not clearly worse than the endpoints ({worse_end:.4f})")
        ok = False
    print(f"endpoints {loss[0.0]:.4f} / {loss[1.0]:.4f}, midpoint {loss[0.5]:.4f}, alpha 32 {loss[32.0]:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
