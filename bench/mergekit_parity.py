#!/usr/bin/env python3
"""basin merge --config against mergekit itself (issue 22, item 3): the same YAML configuration on
the same checkpoints, and the output tensors compared. Runs in the benchmark environment, which
has mergekit (pinned in bench/requirements-bench.txt; it needs torch 2 and transformers 5):

    .venv-bench/bin/python bench/mergekit_parity.py build/basin [--work DIR]

The checkpoints are a small Llama-shaped base and three perturbations of it (mergekit's BERT
definition fails to load in 0.1.5: a tuple of aliases added to a list). Deterministic methods are compared tensor by tensor (max
|basin - mergekit| over the largest value); the random-mask methods (dare_ties, dare_linear) draw
their masks differently (mergekit: torch.bernoulli; basin: a counter-based draw), so they are
compared at density 1 (no mask: then deterministic) and by their mask statistics at density 0.5
(the share of entries where no model's task vector survives, against its expectation).
Writes bench/results/mergekit_parity.json and prints a table; exits 1 on a mismatch."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from bench_merge_mergekit import shapes as llama_shapes  # noqa: E402  (the Llama layout)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
from mergekit_yaml import config_text  # noqa: E402
LAYERS = 3


def llama_tensors(rng, hidden=32, inter=64, vocab=64):
    t = dict(llama_shapes(hidden, LAYERS, inter, vocab), **{"lm_head.weight": (vocab, hidden)})
    return {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in t.items()}


def make_zoo(basin, work):
    """A small Llama-shaped base (mergekit's best-trodden architecture; its BERT definition fails to
    load in 0.1.5) and three perturbations of it."""
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
              "intermediate_size": 64, "num_hidden_layers": LAYERS, "num_attention_heads": 2,
              "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
              "torch_dtype": "float32", "tie_word_embeddings": False}
    weights = llama_tensors(np.random.default_rng(0))
    folders = []
    for i in range(4):
        folder = os.path.join(work, "base" if i == 0 else f"m{i - 1}")
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(i)
        tensors = weights if i == 0 else {k: (v + 0.02 * rng.standard_normal(v.shape)).astype(np.float32)
                                          for k, v in weights.items()}
        save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        folders.append(folder)
    return folders[0], folders[1:]


def run_both(basin, work, name, text):
    config = os.path.join(work, name + ".yaml")
    with open(config, "w") as f:
        f.write(text)
    outs = {k: os.path.join(work, f"out-{name}-{k}") for k in ("basin", "mergekit")}
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)
    subprocess.run([basin, "merge", "--config", config, "--out", outs["basin"], "--quiet"], check=True)
    mergekit = os.path.join(os.path.dirname(sys.executable), "mergekit-yaml")
    subprocess.run([mergekit, config, outs["mergekit"], "--no-lazy-unpickle", "--random-seed", "0"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    read = {}
    for k, out in outs.items():
        tensors = {}
        for f in sorted(os.listdir(out)):
            if f.endswith(".safetensors"):
                tensors.update(load_file(os.path.join(out, f)))
        read[k] = tensors
    return read["basin"], read["mergekit"]


def untouched_share(merged, base):
    """(share of entries equal to the base's, entries counted) over the floating tensors of more than
    100 entries: where no model's task vector survived its mask."""
    untouched = total = 0
    for n, v in merged.items():
        if v.dtype.kind == "f" and n in base and v.size > 100:
            untouched += int((v == base[n]).sum())
            total += v.size
    return untouched / total, total


def differing_share(a, b, tolerance=1e-5):
    """(share of entries differing by more than tolerance times their tensor's largest value, entries)."""
    differ = total = 0
    for n in a:
        if n in b and a[n].dtype.kind == "f":
            scale = max(float(np.abs(b[n]).max()), 1e-30)
            differ += int((np.abs(a[n].astype(np.float64) - b[n]) > tolerance * scale).sum())
            total += a[n].size
    return differ / total, total


def compare(a, b):
    common = [n for n in a if n in b and a[n].dtype.kind == "f"]
    worst = max(float(np.abs(a[n].astype(np.float64) - b[n]).max() / max(np.abs(b[n]).max(), 1e-30)) for n in common)
    return worst, len(common), sorted(set(a) ^ set(b))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--work", default="/tmp/basin-mergekit-parity")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    basin = os.path.abspath(args.basin)
    base, models = make_zoo(basin, args.work)
    w = [{"weight": 1.0, "density": 0.5}, {"weight": 0.7, "density": 0.3}, {"weight": 0.4, "density": 0.8}]
    cases = {
        "linear": ("linear", None, models, [{"weight": 1.0}, {"weight": [0.2, 0.8]}, {"weight": 0.5}], {}),
        "task_arithmetic": ("task_arithmetic", base, models, [{"weight": x["weight"]} for x in w], {"lambda": 0.8}),
        "ties": ("ties", base, models, w, {}),
        "ties_filtered": ("ties", base, models,
                          [{"weight": 1.0, "density": [{"filter": "attention", "value": 0.3}, {"value": 0.7}]},
                           {"weight": 0.5, "density": 0.5}, {"weight": 0.5, "density": [0.2, 0.9]}], {"normalize": False}),
        "breadcrumbs": ("breadcrumbs", base, models, [dict(x, gamma=0.05) for x in w], {}),
        "breadcrumbs_ties": ("breadcrumbs_ties", base, models, [dict(x, gamma=0.02) for x in w], {}),
        "dare_ties_density_1": ("dare_ties", base, models, [{"weight": x["weight"], "density": 1.0} for x in w], {}),
        "slerp": ("slerp", base, [base, models[0]], [None, None], {"t": [0.0, 0.3, 1.0]}),
        "model_stock": ("model_stock", base, models, [None] * 3, {}),
        "multislerp": ("multislerp", None, models, [{"weight": 1.0}, {"weight": 0.5}, {"weight": [0.2, 1.0]}], {}),
        "multislerp_base": ("multislerp", base, models, [{"weight": x["weight"]} for x in w], {}),
        "karcher": ("karcher", None, models, [None] * 3, {}),
        "karcher_base": ("karcher", base, models, [None] * 3, {"max_iter": 20, "tol": 1e-6}),
        "nuslerp": ("nuslerp", None, models[:2], [{"weight": 1.0}, {"weight": 0.3}], {}),
        "nuslerp_base": ("nuslerp", base, models[:2], [{"weight": 0.6}, {"weight": [0.2, 1.0]}], {}),
        "sce": ("sce", base, models, [None] * 3, {}),
        "sce_topk": ("sce", base, models, [None] * 3, {"select_topk": 0.5}),
    }
    rows, failed = [], False
    for name, (method, b, ms, per_model, shared) in cases.items():
        got, want = run_both(basin, args.work, name, config_text(method, b, ms, per_model, shared))
        worst, n, differ = compare(got, want)
        # basin drops task heads (lm_head) unless --keep-head; mergekit keeps them
        ok = worst < 1e-5 and not [d for d in differ if d != "lm_head.weight"]
        row = {"case": name, "method": method, "tensors": n, "max_relative_difference": worst,
               "names_only_in_one": differ, "equal": ok}
        if name == "sce_topk":
            # the variance ranking decides which entries are kept: an entry at the boundary whose variance
            # the two compute a rounding apart may fall on either side; count the entries that differ
            share, _ = differing_share(got, want)
            ok = share < 1e-3 and not [d for d in differ if d != "lm_head.weight"]
            row["differing_share"], row["equal"] = share, ok
        failed |= not ok
        rows.append(row)
    # random masks: the share of entries where no task vector survives (dare_linear, density d each)
    d = 0.5
    got, want = run_both(basin, args.work, "dare_linear_masks",
                         config_text("dare_linear", base, models, [{"weight": 1.0, "density": d}] * 3, {}))
    base_w = load_file(os.path.join(base, "model.safetensors"))
    shares, total = {}, 0
    for who, out in (("basin", got), ("mergekit", want)):
        shares[who], total = untouched_share(out, base_w)
    expected = (1 - d) ** 3
    tolerance = 4 * np.sqrt(expected * (1 - expected) / total)
    mask_ok = bool(all(abs(s - expected) < tolerance for s in shares.values()))
    failed |= not mask_ok
    rows.append({"case": "dare_linear_masks", "method": "dare_linear", "untouched_share": shares,
                 "expected": expected, "tolerance": float(tolerance), "equal": mask_ok})
    # DELLA's rank-dependent masks: the share of entries no task vector reaches, basin against mergekit
    got, want = run_both(basin, args.work, "della_linear_masks",
                         config_text("della_linear", base, models,
                                     [{"weight": 1.0, "density": 0.5, "epsilon": 0.3}] * 3, {}))
    della = {}
    for who, out in (("basin", got), ("mergekit", want)):
        della[who], total = untouched_share(out, base_w)
    spread = 5 * np.sqrt(2 * della["mergekit"] * (1 - della["mergekit"]) / total)
    della_ok = bool(abs(della["basin"] - della["mergekit"]) < spread)
    failed |= not della_ok
    rows.append({"case": "della_linear_masks", "method": "della_linear", "untouched_share": della,
                 "expected": della["mergekit"], "tolerance": float(spread), "equal": della_ok})
    result = {"benchmark": "basin merge --config against mergekit-yaml on the same configurations",
              "mergekit": __import__("importlib.metadata").metadata.version("mergekit"), "rows": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "mergekit_parity.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("| case | method | tensors | max rel. difference | equal |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        if "untouched_share" in r:
            print(f"| {r['case']} | {r['method']} | - | untouched share basin {r['untouched_share']['basin']:.4f}, "
                  f"mergekit {r['untouched_share']['mergekit']:.4f} (expected {r['expected']:.4f}) | {r['equal']} |")
        else:
            extra = f" ({r['differing_share']:.1e} of entries differ)" if "differing_share" in r else ""
            print(f"| {r['case']} | {r['method']} | {r['tensors']} | {r['max_relative_difference']:.1e}{extra} | "
                  f"{r['equal']} |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
