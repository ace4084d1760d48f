#!/usr/bin/python3
"""Benchmark: `basin pretrain` tokens/s against a Python reference masked-LM training loop
(Debian's python3-torch) with the same model (basin-mini's configuration), batch, sequence
length, masking rate, number of steps and threads, in one invocation. The reference is run two
ways: computing the vocabulary projection at every position (what Hugging Face's
RobertaForMaskedLM does) and only at the masked positions (what basin does).

usage: bench_pretrain.py BASIN_BINARY CORPUS_DIR TOKENIZER [--steps 30] [--threads 2]
Writes bench/results/pretrain.json and prints a Markdown table."""
import argparse
import json
import math
import os
import subprocess
import sys
import time

from common import HERE, ROOT, set_threads  # noqa: E402  (sets thread policy first)
import torch  # noqa: E402

CONFIG = os.path.join(ROOT, "models", "basin-mini", "pretrain-config.json")


class MaskedLM(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, I, self.N = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"]
        V, P = cfg["vocab_size"], cfg["max_position_embeddings"]
        self.word, self.pos, self.ln = torch.nn.Embedding(V, H), torch.nn.Embedding(P, H), torch.nn.LayerNorm(H, eps=1e-5)
        self.layers = torch.nn.ModuleList()
        for _ in range(cfg["num_hidden_layers"]):
            self.layers.append(torch.nn.ModuleDict({"q": torch.nn.Linear(H, H), "k": torch.nn.Linear(H, H), "v": torch.nn.Linear(H, H),
                                                    "o": torch.nn.Linear(H, H), "ln1": torch.nn.LayerNorm(H, eps=1e-5),
                                                    "fc1": torch.nn.Linear(H, I), "fc2": torch.nn.Linear(I, H),
                                                    "ln2": torch.nn.LayerNorm(H, eps=1e-5)}))
        self.dense, self.lm_ln, self.bias = torch.nn.Linear(H, H), torch.nn.LayerNorm(H, eps=1e-5), torch.nn.Parameter(torch.zeros(V))
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, ids, selected=None):
        B, T = ids.shape
        H = self.word.embedding_dim
        x = self.drop(self.ln(self.word(ids) + self.pos(torch.arange(2, T + 2).unsqueeze(0))))
        for l in self.layers:
            sp = lambda t: t.view(B, T, self.N, H // self.N).transpose(1, 2)
            p = self.drop(torch.softmax(sp(l["q"](x)) @ sp(l["k"](x)).transpose(-1, -2) / math.sqrt(H // self.N), -1))
            a = l["ln1"](self.drop(l["o"]((p @ sp(l["v"](x))).transpose(1, 2).reshape(B, T, H))) + x)
            x = l["ln2"](self.drop(l["fc2"](torch.nn.functional.gelu(l["fc1"](a)))) + a)
        if selected is not None:
            x = x[selected]
        return torch.nn.functional.linear(self.lm_ln(torch.nn.functional.gelu(self.dense(x))), self.word.weight, self.bias)


def child(args):
    set_threads(args.threads)
    cfg = json.load(open(CONFIG))
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    B, T, V = args.batch_size, args.max_length, cfg["vocab_size"]
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(args.steps):
        ids = torch.randint(4, V, (B, T), generator=g)
        selected = torch.rand((B, T), generator=g) < 0.15
        labels = ids[selected]
        ids = ids.masked_fill(selected, V - 1)
        if args.child == "all":
            logits = model(ids)  # [B, T, V], as transformers computes it
            target = torch.full((B, T), -100, dtype=torch.long)
            target[selected] = labels
            loss = torch.nn.functional.cross_entropy(logits.view(-1, V), target.view(-1), ignore_index=-100)
        else:
            loss = torch.nn.functional.cross_entropy(model(ids, selected), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    print(json.dumps({"seconds": time.perf_counter() - t}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("basin")
    p.add_argument("corpus")
    p.add_argument("tokenizer")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", choices=["all", "masked"])
    p.add_argument("--work", default="/tmp/basin-bench-pretrain")
    a = p.parse_args()
    if a.child:
        return child(a)
    out = os.path.join(a.work, "model")
    subprocess.run([a.basin, "pretrain", "--corpus", a.corpus, "--tokenizer", a.tokenizer, "--config", CONFIG, "--out", out,
                    "--overwrite", "--max-steps", str(a.steps), "--batch-size", str(a.batch_size), "--max-length",
                    str(a.max_length), "--eval-every", "0", "--threads", str(a.threads), "--heldout-max", "8"],
                   check=True, capture_output=True)
    basin_s = json.load(open(os.path.join(out, "basin_run.json")))["train_seconds"]
    tokens = a.steps * a.batch_size * a.max_length
    ref = {}
    for variant in ("all", "masked"):
        r = subprocess.run([sys.executable, os.path.abspath(__file__), a.basin, a.corpus, a.tokenizer, "--child", variant,
                            "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--max-length", str(a.max_length),
                            "--threads", str(a.threads)], check=True, capture_output=True, text=True)
        ref[variant] = json.loads(r.stdout)["seconds"]
    result = {"steps": a.steps, "batch_size": a.batch_size, "max_length": a.max_length, "threads": a.threads,
              "basin_tokens_per_s": tokens / basin_s, "reference_all_positions_tokens_per_s": tokens / ref["all"],
              "reference_masked_positions_tokens_per_s": tokens / ref["masked"]}
    json.dump(result, open(os.path.join(HERE, "results", "pretrain.json"), "w"), indent=2)
    print(f"basin-mini configuration, {a.steps} steps of {a.batch_size} x {a.max_length} tokens, {a.threads} threads")
    print("| | tokens/s | basin / this |")
    print("|---|---:|---:|")
    print(f"| basin pretrain | {result['basin_tokens_per_s']:.0f} | 1.00x |")
    for k, name in (("all", "reference, logits at every position (transformers)"), ("masked", "reference, logits at masked positions")):
        v = result[f"reference_{k}_positions_tokens_per_s"]
        print(f"| {name} | {v:.0f} | {result['basin_tokens_per_s'] / v:.2f}x |")


if __name__ == "__main__":
    main()
