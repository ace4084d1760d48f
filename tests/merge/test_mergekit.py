#!/usr/bin/python3
"""basin merge --config against mergekit itself, in CI: mergekit 0.1.5 is installed into the
reference environment (.venv, over Debian's torch 1.13; scripts/requirements-reference.txt) without
its torch-2 dependencies, and its own in-memory API (mergekit.merge_methods.api.merge_tensors, the
method code mergekit-yaml runs) merges the same tensors with the same parameters. Every output
tensor of every method both have must agree to float rounding (1e-5 of the tensor's largest value;
measured about 1e-7). Random-mask methods are compared where they are deterministic (density 1).
mergekit's linear and slerp need torch 2 (torch.dtype.itemsize) and are compared only by
bench/mergekit_parity.py, which runs mergekit-yaml end to end in the benchmark environment.

Exit status 77 (skipped) when the reference environment or mergekit is absent.

usage: test_mergekit.py BASIN WORK"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
from mergekit_yaml import config_text as yaml  # noqa: E402
import numpy as np  # noqa: E402

try:
    import torch
    from mergekit.merge_methods.api import merge_tensors
except ImportError as e:
    print(f"skipped: mergekit is not installed here ({e}); scripts/install-deps.sh installs it into .venv")
    sys.exit(77)

BASIN, WORK = sys.argv[1], sys.argv[2]
run = make_run(BASIN)
SHAPES = {"embeddings.word_embeddings.weight": (40, 16), "encoder.layer.0.attention.self.query.weight": (16, 16),
          "encoder.layer.0.attention.self.query.bias": (16,), "encoder.layer.0.output.dense.weight": (16, 32),
          "encoder.layer.1.output.dense.weight": (16, 32), "encoder.layer.1.output.LayerNorm.weight": (16,)}
WEIGHTS = [1.0, 0.7, 0.4]


def write_model(folder, tensors):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"architectures": ["RobertaModel"], "model_type": "roberta"}, f)


def read(folder):
    return ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    rng = np.random.default_rng(0)
    base = {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}
    write_model(os.path.join(WORK, "base"), base)
    models = []
    for i in range(3):
        r = np.random.default_rng(i + 1)
        models.append({k: (v + 0.02 * r.standard_normal(v.shape)).astype(np.float32) for k, v in base.items()})
        write_model(os.path.join(WORK, f"m{i}"), models[i])
    names = ["m0", "m1", "m2"]
    w = [{"weight": x} for x in WEIGHTS]
    wd = [{"weight": x, "density": d} for x, d in zip(WEIGHTS, (0.5, 0.3, 0.8))]
    # name: (method, with base, models used, per-model parameters, shared parameters)
    cases = {
        "task_arithmetic": ("task_arithmetic", True, 3, w, {"lambda": 0.8}),
        "ties": ("ties", True, 3, wd, {}),
        "ties_unnormalized": ("ties", True, 3, wd, {"normalize": "false"}),
        "breadcrumbs": ("breadcrumbs", True, 3, [dict(x, gamma=0.05) for x in wd], {}),
        "breadcrumbs_ties": ("breadcrumbs_ties", True, 3, [dict(x, gamma=0.02) for x in wd], {}),
        "dare_ties_density_1": ("dare_ties", True, 3, [{"weight": x, "density": 1.0} for x in WEIGHTS], {}),
        "model_stock": ("model_stock", True, 3, [None] * 3, {}),
        "multislerp": ("multislerp", False, 3, w, {}),
        "multislerp_base": ("multislerp", True, 3, w, {}),
        "karcher": ("karcher", False, 3, [None] * 3, {}),
        "karcher_base": ("karcher", True, 3, [None] * 3, {"max_iter": 20, "tol": 1e-6}),
        "nuslerp": ("nuslerp", False, 2, [{"weight": 1.0}, {"weight": 0.3}], {}),
        "nuslerp_base": ("nuslerp", True, 2, [{"weight": 0.6}, {"weight": 1.0}], {}),
        "nuslerp_rows": ("nuslerp", True, 2, [{"weight": 0.6}, {"weight": 1.0}], {"nuslerp_flatten": "false"}),
        "nuslerp_columns": ("nuslerp", False, 2, [{"weight": 1.0}, {"weight": 0.4}],
                            {"nuslerp_flatten": "false", "nuslerp_row_wise": "true"}),
        "sce": ("sce", True, 3, [None] * 3, {}),
        "sce_topk": ("sce", True, 3, [None] * 3, {"select_topk": 0.5}),
    }
    failed = []
    for case, (method, with_base, n, per_model, shared) in cases.items():
        config = os.path.join(WORK, case + ".yaml")
        with open(config, "w") as f:
            f.write(yaml(method, "base" if with_base else None, names[:n], per_model[:n], shared))
        out = os.path.join(WORK, "out-" + case)
        run("merge", "--config", config, "--out", out, "--quiet")
        got = read(out)
        # mergekit's parameters: per-model lists in model order, shared values as given
        parameters = {}
        for key in sorted({k for p in per_model[:n] if p for k in p}):
            parameters[key] = [p[key] for p in per_model[:n]]
        for key, value in shared.items():
            parameters[key] = {"false": False, "true": True}.get(value, value)
        worst = 0.0
        for name in SHAPES:
            inputs = [torch.from_numpy(m[name]) for m in models[:n]]
            if with_base:
                inputs.append(torch.from_numpy(base[name]))
            want = merge_tensors(inputs, method, parameters=parameters, base_index=n if with_base else None,
                                 name=name).numpy()
            scale = max(float(np.abs(want).max()), 1e-30)
            worst = max(worst, float(np.abs(got[name].astype(np.float64) - want).max()) / scale)
        ok = worst < 1e-5
        print(f"{case:22s} max |basin - mergekit| / max |value| = {worst:.1e}  {'ok' if ok else 'MISMATCH'}")
        if not ok:
            failed.append(case)
    if failed:
        print("mismatches:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
