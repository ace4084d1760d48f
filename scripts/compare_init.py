#!/usr/bin/python3
"""Is basin-mini really pretrained? Fine-tunes basin-mini and the same architecture from random
initialisation with identical settings and seeds on the quickstart datasets, and reports
accuracy per dataset (mean and standard deviation over seeds) and the difference. The result
table is written by this script (JSON and Markdown), never typed by hand.

usage: compare_init.py BASIN PRETRAINED_DIR DATA_DIR OUT_DIR [--seeds 1,2,3] [--datasets a,b,...]
                       [--epochs 2] [--lr 3e-4] [--max-length 64] [--threads 2]"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("basin")
    p.add_argument("pretrained")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--datasets", default="fortune_category,wordnet_noun_sense,spam,sotu_party")
    p.add_argument("--epochs", default="2")
    p.add_argument("--lr", default="3e-4")
    p.add_argument("--batch-size", default="32")
    p.add_argument("--max-length", default="64")
    p.add_argument("--threads", default="2")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = json.load(open(os.path.join(a.pretrained, "config.json")))
    random_init = os.path.join(a.out, "random-init")
    subprocess.run([a.basin, "init-model", "--out", random_init, "--overwrite", "--tokenizer",
                    os.path.join(a.pretrained, "tokenizer.json"), "--hidden", str(cfg["hidden_size"]),
                    "--layers", str(cfg["num_hidden_layers"]), "--heads", str(cfg["num_attention_heads"]),
                    "--intermediate", str(cfg["intermediate_size"]), "--max-positions", str(cfg["max_position_embeddings"]),
                    "--seed", "0"], check=True, stdout=subprocess.DEVNULL)
    results = {}
    for dataset in a.datasets.split(","):
        train = os.path.join(a.data, dataset, "train.jsonl")
        test = os.path.join(a.data, dataset, "test.jsonl")
        for start, model in (("basin-mini", a.pretrained), ("random-init", random_init)):
            for seed in a.seeds.split(","):
                run = os.path.join(a.out, f"{dataset}-{start}-{seed}")
                record_path = os.path.join(run, "basin_run.json")
                if not os.path.exists(record_path):
                    subprocess.run([a.basin, "finetune", "--model", model, "--train", train, "--eval", test, "--out", run,
                                    "--overwrite", "--seed", seed, "--epochs", a.epochs, "--lr", a.lr, "--batch-size",
                                    a.batch_size, "--max-length", a.max_length, "--threads", a.threads, "--quiet"],
                                   check=True, stdout=subprocess.DEVNULL)
                accuracy = json.load(open(record_path))["epochs"][-1]["eval_accuracy"]
                results.setdefault(dataset, {}).setdefault(start, []).append(accuracy)
                print(f"{dataset:20s} {start:12s} seed {seed}: accuracy {accuracy:.4f}", flush=True)
    rows, gains = [], []
    for dataset, r in results.items():
        mini, rand = r["basin-mini"], r["random-init"]
        gain = 100 * (statistics.mean(mini) - statistics.mean(rand))
        gains.append(gain)
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
        rows.append(f"| {dataset} | {100 * statistics.mean(mini):.1f} ± {100 * sd(mini):.1f} | "
                    f"{100 * statistics.mean(rand):.1f} ± {100 * sd(rand):.1f} | {gain:+.1f} |")
    table = "\n".join(["| dataset | basin-mini | random init | difference (points) |", "|---|---:|---:|---:|"] + rows +
                      [f"| **mean** | | | **{statistics.mean(gains):+.1f}** |"])
    settings = (f"full fine-tuning, {a.epochs} epochs, lr {a.lr}, batch {a.batch_size}, max length {a.max_length}, "
                f"seeds {a.seeds}; accuracy on each dataset's test split (mean ± standard deviation over seeds)")
    json.dump({"settings": settings, "results": results, "mean_gain_points": statistics.mean(gains)},
              open(os.path.join(a.out, "compare_init.json"), "w"), indent=2)
    open(os.path.join(a.out, "compare_init.md"), "w").write(settings + "\n\n" + table + "\n")
    print(settings)
    print(table)


if __name__ == "__main__":
    main()
