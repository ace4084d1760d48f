#!/usr/bin/python3
"""Benchmark: `basin merge --config` against `mergekit-yaml` on the same YAML configuration, in the
same invocation (the mergekit column of the merge benchmark; issue 22, item 3): wall time and peak
resident memory (GNU time) for task_arithmetic and ties over N = 2, 8 and 16 checkpoints of
BERT-base size (a Llama-shaped layout of 12 layers, hidden 768, FFN 3072, vocabulary 30522: about
110M parameters, F16 on disk; mergekit 0.1.5 cannot load its own BERT definition) and N = 2 of a
~1.1B-parameter decoder (hidden 2048, 16 layers, FFN 5632, vocabulary 32000), 2 threads each
(basin --threads 2; mergekit on CPU with torch limited to 2 threads). Outputs are compared.

usage: bench_merge_mergekit.py BASIN_BINARY [--mergekit .venv-bench/bin/mergekit-yaml] [--work DIR]
       [--sizes 2,8,16] [--large] [--keep]
Writes bench/results/merge_mergekit.json and prints a Markdown table."""
import argparse
import json
import os
import shutil
import subprocess
import sys

from common import HERE  # noqa: E402
import numpy as np  # noqa: E402

import hf_reference as ref  # noqa: E402

ROOT = os.path.dirname(HERE)


def shapes(hidden, layers, ffn, vocab):
    s = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for l in range(layers):
        p = f"model.layers.{l}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            s[p + f"self_attn.{n}.weight"] = (hidden, hidden)
        s[p + "mlp.gate_proj.weight"] = s[p + "mlp.up_proj.weight"] = (ffn, hidden)
        s[p + "mlp.down_proj.weight"] = (hidden, ffn)
        s[p + "input_layernorm.weight"] = s[p + "post_attention_layernorm.weight"] = (hidden,)
    return s


def generate(work, tag, n, hidden, layers, ffn, vocab):
    """base + n perturbed copies, F16, each with a Llama config.json; kept between runs."""
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
              "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": hidden // 64,
              "num_key_value_heads": hidden // 64, "vocab_size": vocab, "max_position_embeddings": 512,
              "rms_norm_eps": 1e-6, "torch_dtype": "float16", "tie_word_embeddings": True}
    sh = shapes(hidden, layers, ffn, vocab)
    folders = [os.path.join(work, f"{tag}-base")] + [os.path.join(work, f"{tag}-m{i:02d}") for i in range(n)]
    base = None
    for i, folder in enumerate(folders):
        if os.path.exists(os.path.join(folder, "model.safetensors")):
            continue
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(i)
        if base is None:
            base_rng = np.random.default_rng(0)
            base = {k: 0.02 * base_rng.standard_normal(v, dtype=np.float32) for k, v in sh.items()}
        tensors = base if i == 0 else {k: v + 0.002 * rng.standard_normal(v.shape, dtype=np.float32)
                                       for k, v in base.items()}
        ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype="F16")
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
    return folders[0], folders[1:]


def config(method, base, models):
    lines = [f"merge_method: {method}", f"base_model: {base}", "models:"]
    for m in models:
        lines += [f"  - model: {m}", "    parameters:", "      weight: 1.0"]
        if method == "ties":
            lines.append("      density: 0.2")
    return "\n".join(lines + ["dtype: float16"]) + "\n"


def timed(command, env=None):
    """(seconds, peak RSS bytes) of a command, by GNU time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{r.stderr[-2000:]}")
    seconds, kb = r.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kb) * 1024


def read_all(folder):
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            out.update(ref.read_safetensors(os.path.join(folder, f))[0])
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("basin")
    parser.add_argument("--mergekit", default=os.path.join(ROOT, ".venv-bench", "bin", "mergekit-yaml"))
    parser.add_argument("--work", default="/tmp/basin-bench-mergekit")
    parser.add_argument("--sizes", default="2,8,16")
    parser.add_argument("--large", action="store_true", help="also N = 2 of the ~1.1B decoder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(args.mergekit):
        sys.exit(f"{args.mergekit} not found: run scripts/install-bench-env.sh (it pins mergekit)")
    os.makedirs(args.work, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [("bert-base size", "b", n, (768, 12, 3072, 30522)) for n in sizes]
    if args.large:
        cases.append(("1.1B decoder", "l", 2, (2048, 16, 5632, 32000)))
    rows = []
    for label, tag, n, dims in cases:
        base, models = generate(args.work, tag, max(n, 2), *dims)
        models = models[:n]
        for method in ("task_arithmetic", "ties"):
            yaml_file = os.path.join(args.work, f"{tag}-{n}-{method}.yaml")
            with open(yaml_file, "w") as f:
                f.write(config(method, base, models))
            outs = {k: os.path.join(args.work, f"out-{tag}-{n}-{method}-{k}") for k in ("basin", "mergekit")}
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
            # a first basin run hashes the inputs for its provenance (cached after); time the second
            subprocess.run([args.basin, "merge", "--config", yaml_file, "--out", outs["basin"], "--quiet",
                            "--threads", str(args.threads)], check=True)
            shutil.rmtree(outs["basin"])
            b_s, b_rss = timed([args.basin, "merge", "--config", yaml_file, "--out", outs["basin"], "--quiet",
                                "--threads", str(args.threads)])
            m_s, m_rss = timed([args.mergekit, yaml_file, outs["mergekit"], "--no-lazy-unpickle"], env)
            got, want = read_all(outs["basin"]), read_all(outs["mergekit"])
            diff = max(float(np.abs(got[k].astype(np.float64) - want[k]).max()) for k in got if k in want)
            row = {"inputs": label, "models": n, "method": method, "basin_seconds": b_s, "basin_peak_rss": b_rss,
                   "mergekit_seconds": m_s, "mergekit_peak_rss": m_rss, "speedup": m_s / b_s,
                   "memory_ratio": m_rss / b_rss, "max_abs_difference": diff}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            for out in outs.values():
                shutil.rmtree(out, ignore_errors=True)
    result = {"benchmark": "basin merge --config vs mergekit-yaml (same YAML, same inputs)", "threads": args.threads,
              "rows": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "merge_mergekit.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("| inputs | N | method | basin s | mergekit s | mergekit / basin | basin peak MB | mergekit peak MB "
          "| max abs difference |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['inputs']} | {r['models']} | {r['method']} | {r['basin_seconds']:.2f} | {r['mergekit_seconds']:.2f} "
              f"| {r['speedup']:.1f}x | {r['basin_peak_rss'] / 2**20:.0f} | {r['mergekit_peak_rss'] / 2**20:.0f} "
              f"| {r['max_abs_difference']:.1e} |")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
