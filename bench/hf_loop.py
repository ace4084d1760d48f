#!/usr/bin/env python3
"""The loop a transformers user runs, timed: evaluation (forward passes in inference mode) or
training (forward, backward, clipping, AdamW with the linear schedule, dropout on) of a
...ForSequenceClassification folder over given batches of token ids. Run by bench_eval.py and
bench_train.py under two interpreters in the same invocation: .venv (transformers 4.46 on
Debian's torch 1.13, the libtorch basin links) and .venv-bench (transformers 5 on torch 2.x
from PyPI, what a user installs today). Prints one JSON line.

usage: PYTHON hf_loop.py eval|train MODEL_DIR BATCHES.json THREADS [--repeats R]
BATCHES.json: {"batches": [[ids...], ...], "labels": [[y...], ...] (train)}"""
import argparse
import ctypes
import json
import os
import sys
import time

# basin's thread policy (docs/PERFORMANCE.md): passive OpenMP waiting, read when libgomp loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import transformers
from transformers import AutoModelForSequenceClassification


def tensors(batch, pad, with_types):
    T = max(len(x) for x in batch)
    ids = torch.full((len(batch), T), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        out["token_type_ids"] = torch.zeros_like(ids)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["eval", "train"])
    p.add_argument("model")
    p.add_argument("batches")
    p.add_argument("threads", type=int)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    # Debian's torch multiplies through OpenBLAS, whose own pool ignores torch.set_num_threads:
    # without this, "1 thread" uses both cores and 2 threads oversubscribe them (as basin's
    # --threads sets both). torch 2.x from PyPI uses MKL, which follows torch.set_num_threads.
    try:
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(a.threads)
    except (OSError, AttributeError):
        pass
    torch.manual_seed(0)
    job = json.load(open(a.batches))
    model = AutoModelForSequenceClassification.from_pretrained(a.model, torch_dtype=torch.float32)
    pad = model.config.pad_token_id or 0
    bert = model.config.model_type == "bert"
    batches = [tensors(b, pad, bert) for b in job["batches"]]
    first_pass = None
    if a.mode == "eval":
        model.eval()
        times = []
        with torch.inference_mode():
            # the first pass is timed too (first_pass_seconds: thread pools, allocator and kernels
            # warming up, as in a process that evaluates once); seconds is the fastest pass
            for _ in range(a.repeats):
                t = time.perf_counter()
                for b in batches:
                    model(**b)
                times.append(time.perf_counter() - t)
        seconds, first_pass = min(times), times[0]
    else:
        model.train()
        no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n  # noqa: E731
        params = list(model.named_parameters())
        opt = torch.optim.AdamW([{"params": [q for n, q in params if not no_decay(n)], "weight_decay": 0.01},
                                 {"params": [q for n, q in params if no_decay(n)], "weight_decay": 0.0}], lr=a.lr)
        steps = len(batches)
        sched = transformers.get_linear_schedule_with_warmup(opt, max(1, int(0.06 * steps + 0.999)), steps)
        labels = [torch.tensor(y) for y in job["labels"]]
        t = time.perf_counter()
        for b, y in zip(batches, labels):
            loss = model(**b, labels=y).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "first_pass_seconds": first_pass, "torch": torch.__version__,
                      "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
