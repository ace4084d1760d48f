"""The real-base part of bench_eval.py and bench_train.py: basin against the transformers loop a
user runs (bench/hf_loop.py), on models/real-base (all-MiniLM-L6-v2) with SST-2 sentences, the
same token ids, batches and threads, in the same invocation, under two Python environments:

- .venv: transformers 4.46 on Debian's torch 1.13 (the libtorch basin is built against);
- .venv-bench: transformers 5 on torch 2.x from PyPI (scripts/install-bench-env.sh).

An environment that is not installed is reported as missing, not timed."""
import json
import os
import subprocess

from basin_order import mix_seed, permutation

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REAL_BASE = os.path.join(ROOT, "models", "real-base")
SST2 = os.path.normpath(os.path.join(ROOT, "..", "shared", "datasets", "sst2"))


def environments():
    out = []
    for name, python in [("debian_torch", os.path.join(ROOT, ".venv", "bin", "python")),
                         ("pypi_torch2", os.path.join(ROOT, ".venv-bench", "bin", "python"))]:
        if os.path.exists(python):
            v = subprocess.run([python, "-c", "import torch, transformers; print(torch.__version__, transformers.__version__)"],
                               capture_output=True, text=True)
            if v.returncode == 0:
                torch_v, tf_v = v.stdout.split()
                out.append({"name": name, "python": python, "torch": torch_v, "transformers": tf_v})
                continue
        print(f"note: {python} not installed; the {name} column is missing")
    return out


def available():
    return os.path.exists(os.path.join(REAL_BASE, "config.json")) and os.path.isdir(SST2)


def _lines(path, n):
    return [l for l in open(path, encoding="utf-8").read().splitlines() if l.strip()][:n]


def _classifier(basin, work):
    """models/real-base with a two-label head (one basin fine-tuning step), as basin and
    transformers both load it."""
    out = os.path.join(work, "real-classifier")
    if not os.path.exists(os.path.join(out, "config.json")):
        subprocess.run([basin, "finetune", "--model", REAL_BASE, "--train", os.path.join(SST2, "train.jsonl"), "--out", out,
                        "--overwrite", "--max-steps", "1", "--train-limit", "64", "--threads", "2"], check=True,
                       capture_output=True)
    return out


def _ids(basin, model, data, max_length):
    pred = data + ".pred.jsonl"
    subprocess.run([basin, "eval", "--model", model, "--data", data, "--predictions", pred, "--threads", "2",
                    "--max-length", str(max_length)], check=True, capture_output=True)
    return [json.loads(l)["input_ids"] for l in open(pred)]


def _hf_run(env, mode, model, batches_path, threads, repeats):
    r = subprocess.run([env["python"], os.path.join(HERE, "hf_loop.py"), mode, model, batches_path, str(threads),
                        "--repeats", str(repeats)], check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _hf(env, mode, model, batches_path, threads, repeats):
    return _hf_run(env, mode, model, batches_path, threads, repeats)["seconds"]


def eval_rows(basin, work, threads_list, examples=800, batch=32, repeats=3):
    os.makedirs(work, exist_ok=True)
    model = _classifier(basin, work)
    data = os.path.join(work, "real-eval.jsonl")
    open(data, "w", encoding="utf-8").write("\n".join(_lines(os.path.join(SST2, "test.jsonl"), examples)) + "\n")
    ids = _ids(basin, model, data, 512)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # basin's length-sorted batches
    batches = [[ids[j] for j in order[i:i + batch]] for i in range(0, len(ids), batch)]
    path = os.path.join(work, "real-eval-batches.json")
    json.dump({"batches": batches}, open(path, "w"))
    envs = environments()
    rows = []
    for threads in threads_list:
        # like for like on both sides: each process evaluates `repeats` times; seconds is its fastest
        # pass (warm), first_pass_seconds its first (cold: what a process that evaluates once pays)
        basin_runs = [json.loads(subprocess.run(
            [basin, "eval", "--model", model, "--data", data, "--json", "--threads", str(threads), "--batch-size",
             str(batch), "--repeats", str(repeats)], check=True, capture_output=True, text=True).stdout)
            for _ in range(2)]
        basin_s = min(r["seconds"] for r in basin_runs)
        basin_cold = min(r["first_pass_seconds"] for r in basin_runs)
        row = {"threads": threads, "basin_seconds": basin_s, "basin_first_pass_seconds": basin_cold,
               "basin_examples_per_s": len(ids) / basin_s}
        for env in envs:
            hf = [_hf_run(env, "eval", model, path, threads, repeats) for _ in range(2)]
            s, cold = min(r["seconds"] for r in hf), min(r["first_pass_seconds"] for r in hf)
            row[f"{env['name']}_seconds"] = s
            row[f"basin_vs_{env['name']}"] = s / basin_s
            row[f"{env['name']}_first_pass_seconds"] = cold
            row[f"basin_vs_{env['name']}_first_pass"] = cold / basin_cold
        rows.append(row)
    return {"model": "models/real-base (all-MiniLM-L6-v2, BERT 6 x 384) + 2-label head", "examples": len(ids),
            "tokens": sum(map(len, ids)), "batch_size": batch, "environments": envs, "rows": rows}


def train_rows(basin, work, threads_list, steps=20, batch=16, seed=1):
    os.makedirs(work, exist_ok=True)
    model = _classifier(basin, work)
    data = os.path.join(work, "real-train.jsonl")
    lines = _lines(os.path.join(SST2, "train.jsonl"), steps * batch)
    open(data, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    ids = _ids(basin, model, data, 128)
    labels = sorted({json.loads(l)["label"] for l in lines})
    y = [labels.index(json.loads(l)["label"]) for l in lines]
    order = permutation(len(lines), mix_seed(seed, 0))  # basin's first epoch
    batches = [[ids[j] for j in order[i:i + batch]] for i in range(0, steps * batch, batch)]
    ys = [[y[j] for j in order[i:i + batch]] for i in range(0, steps * batch, batch)]
    path = os.path.join(work, "real-train-batches.json")
    json.dump({"batches": batches, "labels": ys}, open(path, "w"))
    envs = environments()
    rows = []
    for threads in threads_list:
        out = os.path.join(work, f"real-train-{threads}")
        subprocess.run([basin, "finetune", "--model", REAL_BASE, "--train", data, "--out", out, "--overwrite",
                        "--max-steps", str(steps), "--batch-size", str(batch), "--seed", str(seed), "--threads", str(threads)],
                       check=True, capture_output=True)
        basin_s = json.load(open(os.path.join(out, "basin_run.json")))["train_seconds"]
        row = {"threads": threads, "basin_seconds": basin_s, "basin_examples_per_s": steps * batch / basin_s}
        for env in envs:
            s = _hf(env, "train", model, path, threads, 1)  # same architecture, a 2-label head
            row[f"{env['name']}_seconds"] = s
            row[f"basin_vs_{env['name']}"] = s / basin_s
        rows.append(row)
    return {"model": "models/real-base (all-MiniLM-L6-v2) full fine-tuning, new 2-label head", "steps": steps,
            "batch_size": batch, "environments": envs, "rows": rows}


def table(result, what):
    envs = [e["name"] for e in result["environments"]]
    head = "| threads | basin s | " + " | ".join(f"{e} s | basin speed / {e}" for e in envs) + " |"
    print(f"\nreal base, {what}: " + ", ".join(f"{e['name']} = transformers {e['transformers']} on torch {e['torch']}"
                                            for e in result["environments"]))
    print(head)
    print("|" + "---:|" * (2 + 2 * len(envs)))
    for r in result["rows"]:
        print(f"| {r['threads']} | {r['basin_seconds']:.2f} | " +
              " | ".join(f"{r[e + '_seconds']:.2f} | {r['basin_vs_' + e]:.2f}x" for e in envs) + " |")
    if all("basin_first_pass_seconds" in r for r in result["rows"]):
        print("\nfirst passes (cold):")
        print(head)
        print("|" + "---:|" * (2 + 2 * len(envs)))
        for r in result["rows"]:
            print(f"| {r['threads']} | {r['basin_first_pass_seconds']:.2f} | " +
                  " | ".join(f"{r[e + '_first_pass_seconds']:.2f} | {r['basin_vs_' + e + '_first_pass']:.2f}x"
                             for e in envs) + " |")
