#!/usr/bin/python3
"""The centroid start on real training: basin-mini fine-tuned on every quickstart dataset (the zoo,
one small run each), then `basin init-compare --zoo` builds each target's leave-one-out centroid
and fine-tunes from it and from basin-mini with the same seeds. Checks that the code produces the
result table for every quickstart dataset (nothing typed in): rows, per-seed accuracies that match
the runs' own records, means, the paired test, and that each centroid excludes its target's model
(provenance hashes). A rerun reuses every finished run and gives the same table. With --workers 2
(the runs as child processes, two at a time) two targets give the same accuracies and the same
weights, byte for byte, as one run at a time.

Needs the quickstart data's packages (scripts/install-deps.sh --data); without them it reports
itself skipped (exit 77).

usage: test_centroid_start.py BASIN WORK"""
import hashlib
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import quickstart_data  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "models", "basin-mini")
DATASETS = ["fortune_category", "wordnet_noun_sense", "wordnet_verb_sense", "spam", "sotu_party"]
COMMON = ["--max-length", "32", "--batch-size", "16", "--threads", "2"]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check(condition, message):
    if not condition:
        print("FAIL:", message)
        sys.exit(1)


def main():
    datasets = quickstart_data.build(WORK, max_train=300, max_test=150)
    if datasets is None:
        return 77
    data = datasets
    zoo = ["model,dataset"]
    for d in DATASETS:
        out = os.path.join(WORK, "zoo", d)
        subprocess.run([BASIN, "finetune", "--model", BASE, "--train", os.path.join(data, d, "train.jsonl"), "--out", out,
                        "--seed", "1", "--epochs", "1", "--lr", "3e-4", "--quiet", *COMMON], check=True, capture_output=True)
        zoo.append(f"zoo/{d},{d}")
    with open(os.path.join(WORK, "zoo.csv"), "w") as f:
        f.write("\n".join(zoo) + "\n")
    out = os.path.join(WORK, "compare")
    args = [BASIN, "init-compare", "--zoo", os.path.join(WORK, "zoo.csv"), "--data-root", data, "--pretrained", BASE,
            "--mode", "bitfit", "--seeds", "1,2", "--train-limit", "150", "--epochs", "2", "--lr", "2e-3", "--out", out,
            "--quiet", *COMMON]
    r = subprocess.run(args, capture_output=True, text=True)
    print(r.stdout)
    check(r.returncode == 0, r.stderr)
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    check([row["target"] for row in summary["rows"]] == DATASETS, "one row per quickstart dataset, in zoo order")
    for row in summary["rows"]:
        target = row["target"]
        for c in row["candidates"]:
            check(len(c["accuracy"]) == 2, f"{target}: two seeds")
            for seed, acc in zip((1, 2), c["accuracy"]):
                with open(os.path.join(out, "runs", target, f"{c['name']}-s{seed}", "basin_run.json")) as f:
                    run = json.load(f)
                check(abs(run["epochs"][-1]["eval_accuracy"] - acc) < 1e-12, f"{target} {c['name']} seed {seed}: the table "
                      "holds the run's own accuracy")
                check(run["options"]["mode"] == "bitfit" if "mode" in run["options"] else True, "bitfit runs")
            check(abs(c["mean"] - statistics.mean(c["accuracy"])) < 1e-12, "mean")
            check(abs(c["std"] - statistics.stdev(c["accuracy"])) < 1e-12, "sample standard deviation")
        diff = statistics.mean(row["candidates"][1]["accuracy"]) - statistics.mean(row["candidates"][0]["accuracy"])
        check(abs(row["mean_difference"] - diff) < 1e-12, "difference = centroid - pretrained")
        with open(os.path.join(out, "centroids", target, "basin_merge.json")) as f:
            prov = json.load(f)
        hashes = {m["sha256"] for m in prov["models"]}
        own = sha256(os.path.join(WORK, "zoo", target, "model.safetensors"))
        check(own not in hashes, f"{target}: its centroid excludes the model trained on it")
        check(len(hashes) == len(DATASETS) - 1, f"{target}: the centroid averages the other {len(DATASETS) - 1} models")
    check(summary["wins"] + summary["ties"] + summary["losses"] == len(DATASETS), "win/tie/loss per target")
    with open(os.path.join(out, "table.md")) as f:
        first_table = f.read()
    # a rerun reuses every finished run and writes the same table
    r = subprocess.run(args[:-len(COMMON) - 1] + COMMON, capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    with open(os.path.join(out, "table.md")) as f:
        check(f.read() == first_table, "a rerun gives the same table")
    # --workers 2: the same runs as child processes, two at a time, give the same results
    two = ["spam", "sotu_party"]
    out2 = os.path.join(WORK, "compare-workers")
    r = subprocess.run([a if a != out else out2 for a in args] + ["--targets", ",".join(two), "--workers", "2"],
                       capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    with open(os.path.join(out2, "summary.json")) as f:
        summary2 = json.load(f)
    by_target = {row["target"]: row for row in summary["rows"]}
    check([row["target"] for row in summary2["rows"]] == two, "--workers 2: one row per target asked for")
    for row in summary2["rows"]:
        one = by_target[row["target"]]
        for c, c1 in zip(row["candidates"], one["candidates"]):
            check(c["accuracy"] == c1["accuracy"], f"--workers 2: {row['target']} {c['name']}: the same accuracies "
                  f"({c['accuracy']} against {c1['accuracy']})")
            for seed in (1, 2):
                run = os.path.join("runs", row["target"], f"{c['name']}-s{seed}")
                check(os.path.exists(os.path.join(out2, run + ".log")), f"--workers 2: {run}: its worker's log")
                check(sha256(os.path.join(out2, run, "model.safetensors")) ==
                      sha256(os.path.join(out, run, "model.safetensors")), f"--workers 2: {run}: the same weights")
    print(f"mean gain of the centroid start: {100 * summary['mean_difference']:+.2f} points "
          f"({summary['wins']} win / {summary['ties']} tie / {summary['losses']} loss)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
