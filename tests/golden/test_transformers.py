#!/usr/bin/env python3
"""basin against the real Hugging Face libraries (.venv: transformers, tokenizers, safetensors,
pinned in scripts/requirements-reference.txt), beside the project's own reference:

- logits and first-token features of basin's BERT/RoBERTa classifiers equal those of
  transformers' BertForSequenceClassification / RobertaForSequenceClassification within 1e-4 in
  F32, on tiny random models (singles and pairs, padded batches) and on the real base
  (models/real-base with a classifier made by transformers); checkpoints stored in F16 and BF16
  are upcast to F32 by both sides, so the same 1e-4 holds for them (what differs from the F32
  model is the rounding of the weights, which both see identically);
- the input ids come from the Rust tokenizers (tokenizer.json, as stored) and equal basin's;
- a folder basin fine-tuned (full and BitFit, tiny models and the real base) loads in
  transformers with from_pretrained with no missing, unexpected or mis-shaped keys, and gives
  basin's logits;
- every safetensors file basin writes (init-model in three dtypes, finetune, merge unsharded and
  sharded, probe --save-head, the feature cache) loads with the safetensors library and holds the
  same values as the project's own reader reads.

usage: .venv/bin/python test_transformers.py BASIN WORK_DIR     (exit 77 without .venv)"""
import glob
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

try:
    import numpy as np
    import safetensors.numpy
    import tokenizers
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification
except ImportError as e:  # the reference environment is absent
    print(f"SKIPPED: {e} (run scripts/install-deps.sh, then use .venv/bin/python)")
    sys.exit(77)

import hf_reference as ref  # noqa: E402
from test_golden_models import SENTENCES, WORDS  # noqa: E402  (the golden test's inputs)

BASIN = WORK = None
REAL_BASE = os.path.join(ROOT, "models", "real-base")
TOLERANCE = 1e-4
PAIRS = [(s, SENTENCES[(i + 2) % len(SENTENCES)]) for i, s in enumerate(SENTENCES)]
LABELS = ["neg", "pos", "neutral"]


def run(*args):
    return subprocess.run([BASIN, *args], check=True, capture_output=True, text=True).stdout


def write_data(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for i, (a, b) in enumerate(rows):
            row = {"text": a, "label": LABELS[i % len(LABELS)]}
            if b is not None:
                row["text_pair"] = b
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def basin_eval(model_dir, data):
    out = data + ".pred.jsonl"
    run("eval", "--model", model_dir, "--data", data, "--predictions", out, "--features", "--batch-size", "4",
        "--threads", "1")
    return [json.loads(line) for line in open(out, encoding="utf-8")]


def hf_forward(model_dir, rows, basin_ids):
    """transformers' logits and first-token features for rows, tokenized by the Rust library from
    the folder's tokenizer.json and run as one right-padded batch (basin sorts by length)."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    tok = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    # basin truncates to the positions the model has (RoBERTa's start after the padding index)
    offset = model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0
    tok.enable_truncation(model.config.max_position_embeddings - offset)
    encs = [tok.encode(a, b) for a, b in rows]
    ids = [e.ids for e in encs]
    assert ids == basin_ids, "the Rust tokenizers and basin gave different ids"
    pad = model.config.pad_token_id or 0
    T = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), T), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), T), dtype=torch.long)
    types = torch.zeros((len(ids), T), dtype=torch.long)
    for i, e in enumerate(encs):
        input_ids[i, :len(e.ids)] = torch.tensor(e.ids)
        mask[i, :len(e.ids)] = 1
        types[i, :len(e.ids)] = torch.tensor(e.type_ids)
    kwargs = {"input_ids": input_ids, "attention_mask": mask}
    if model.config.model_type == "bert":
        kwargs["token_type_ids"] = types
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True)
    return out.logits, out.hidden_states[-1][:, 0]


class Transformers(unittest.TestCase):
    def compare(self, model_dir, rows, name):
        data = os.path.join(WORK, f"{name}.jsonl")
        write_data(data, rows)
        preds = basin_eval(model_dir, data)
        logits, features = hf_forward(model_dir, rows, [p["input_ids"] for p in preds])
        got_logits = torch.tensor([p["logits"] for p in preds])
        got_features = torch.tensor([p["features"] for p in preds])
        d_logits = (logits - got_logits).abs().max().item()
        d_features = (features - got_features).abs().max().item()
        print(f"{name:34s} max |logit diff| {d_logits:.2e}, max |feature diff| {d_features:.2e}")
        self.assertLess(d_logits, TOLERANCE, name)
        self.assertLess(d_features, TOLERANCE, name)
        self.assertGreater(logits.abs().max().item(), 1e-3, "logits too small to be a meaningful check")
        return preds

    def tiny(self, family, dtype):
        model = os.path.join(WORK, f"tiny-{family}-{dtype}")
        if not os.path.exists(os.path.join(model, "config.json")):
            ref.make_model(model, family, dtype=dtype, seed=11, words=WORDS)
        return model

    def test_tiny_models_f32(self):
        for family in ("bert", "roberta"):
            model = self.tiny(family, "F32")
            self.compare(model, [(s, None) for s in SENTENCES], f"tiny {family} F32 single")
            self.compare(model, PAIRS, f"tiny {family} F32 pairs")

    def test_tiny_models_f16_bf16(self):
        for family in ("bert", "roberta"):
            for dtype in ("F16", "BF16"):
                self.compare(self.tiny(family, dtype), PAIRS, f"tiny {family} {dtype} pairs")

    def real_classifier(self, dtype):
        """models/real-base with a 3-label classifier made (seeded) by transformers, stored in dtype."""
        out = os.path.join(WORK, f"real-classifier-{dtype}")
        if not os.path.exists(os.path.join(out, "config.json")):
            torch.manual_seed(5)
            model = AutoModelForSequenceClassification.from_pretrained(
                REAL_BASE, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
            # a pretrained body with a fresh head gives small logits; a larger head makes the check stricter
            with torch.no_grad():
                model.classifier.weight.mul_(20)
            if dtype == "F16":
                model = model.half()
            elif dtype == "BF16":
                model = model.to(torch.bfloat16)
            model.save_pretrained(out, safe_serialization=True)
            for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
                shutil.copy(os.path.join(REAL_BASE, f), out)
        return out

    @unittest.skipUnless(os.path.exists(os.path.join(REAL_BASE, "config.json")), "models/real-base not installed")
    def test_real_base(self):
        # the real base as shipped (a BertModel body of a sentence-transformers folder)
        info = json.loads(run("inspect", REAL_BASE, "--json"))
        self.assertEqual(info.get("architecture"), "BertModel")
        for dtype in ("F32", "F16", "BF16"):
            self.compare(self.real_classifier(dtype), PAIRS, f"real base {dtype} pairs")
        self.compare(self.real_classifier("F32"), [(s, None) for s in SENTENCES], "real base F32 single")

    def check_loads_in_transformers(self, out, rows, name):
        model, info = AutoModelForSequenceClassification.from_pretrained(out, output_loading_info=True)
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
            self.assertEqual(list(info[key]), [], f"{name}: {key} when transformers loads basin's folder")
        self.compare(out, rows, name)

    def finetune_data(self):
        data = os.path.join(WORK, "train.jsonl")
        rows = [(SENTENCES[i % len(SENTENCES)] + " " + WORDS[i % len(WORDS)], None) for i in range(24)]
        write_data(data, rows)
        return data

    def test_basin_finetuned_folders_load_in_transformers(self):
        data = self.finetune_data()
        for family in ("bert", "roberta"):
            for mode in ("full", "bitfit"):
                out = os.path.join(WORK, f"ft-{family}-{mode}")
                run("finetune", "--model", self.tiny(family, "F32"), "--train", data, "--out", out, "--overwrite",
                    "--mode", mode, "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--seed", "2", "--threads", "1")
                self.check_loads_in_transformers(out, PAIRS, f"basin-finetuned {family} {mode}")

    @unittest.skipUnless(os.path.exists(os.path.join(REAL_BASE, "config.json")), "models/real-base not installed")
    def test_basin_finetuned_real_base_loads_in_transformers(self):
        data = self.finetune_data()
        out = os.path.join(WORK, "ft-real-bitfit")
        run("finetune", "--model", REAL_BASE, "--train", data, "--out", out, "--overwrite", "--mode", "bitfit",
            "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--seed", "2", "--threads", "2")
        self.check_loads_in_transformers(out, PAIRS, "basin-finetuned real base bitfit")
        # the pooler came from the real base and BitFit kept its weight (only biases train)
        base = safetensors.numpy.load_file(os.path.join(REAL_BASE, "model.safetensors"))
        tuned = safetensors.numpy.load_file(os.path.join(out, "model.safetensors"))
        np.testing.assert_array_equal(tuned["bert.pooler.dense.weight"], base["pooler.dense.weight"])

    def test_sentence_transformers_folders(self):
        """A sentence-transformers folder (modules.json, the body in 0_Transformer/, pooling
        modules beside it, no head) is read through its Transformer module by every command."""
        st = os.path.join(WORK, "st-tiny")
        shutil.rmtree(st, ignore_errors=True)
        body = os.path.join(st, "0_Transformer")
        tensors = ref.make_model(body, "bert", seed=17, words=WORDS)
        # a body as BertModel saves it: no classifier, names without the "bert." prefix (the map and
        # merge below then pair the base's bare names with the fine-tunes' prefixed ones)
        tensors = {n[len("bert."):]: v for n, v in tensors.items() if n.startswith("bert.")}
        ref.write_safetensors(os.path.join(body, "model.safetensors"), tensors)
        config = json.load(open(os.path.join(body, "config.json")))
        config["architectures"] = ["BertModel"]
        for key in ("id2label", "label2id"):
            config.pop(key)
        json.dump(config, open(os.path.join(body, "config.json"), "w"))
        os.makedirs(os.path.join(st, "1_Pooling"))
        json.dump({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True},
                  open(os.path.join(st, "1_Pooling", "config.json"), "w"))
        json.dump([{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}],
                  open(os.path.join(st, "modules.json"), "w"))
        info = json.loads(run("inspect", st, "--json"))
        self.assertEqual(info["architecture"], "BertModel")
        self.assertIn("0_Transformer", info["body"])
        data = os.path.join(WORK, "st-data")
        os.makedirs(data, exist_ok=True)
        train = self.finetune_data()
        shutil.copy(train, os.path.join(data, "train.jsonl"))
        shutil.copy(train, os.path.join(data, "test.jsonl"))
        tuned = []
        for seed in (1, 2):
            out = os.path.join(WORK, f"st-ft{seed}")
            run("finetune", "--model", st, "--train", train, "--out", out, "--overwrite", "--epochs", "1",
                "--batch-size", "8", "--lr", "1e-3", "--seed", str(seed), "--threads", "1")
            tuned.append(out)
        self.check_loads_in_transformers(tuned[0], PAIRS, "fine-tuned from a sentence-transformers folder")
        # the body came from 0_Transformer: a BitFit-free check that the start was read (not random)
        got = ref.read_safetensors(os.path.join(tuned[0], "model.safetensors"))[0]
        self.assertLess(np.abs(got["bert.embeddings.word_embeddings.weight"]
                               - tensors["embeddings.word_embeddings.weight"]).max(), 0.05)
        probe = json.loads(run("probe", "--model", st, "--train", train, "--test", train, "--json", "--no-cache"))
        self.assertGreater(probe["train_accuracy"], 0.5)
        models = os.path.join(WORK, "st-models.txt")
        open(models, "w").write("\n".join(tuned) + "\n")
        run("map", "--base", st, "--models", models, "--out", os.path.join(WORK, "st-map"), "--overwrite")
        self.assertTrue(os.path.exists(os.path.join(WORK, "st-map", "similarity.csv")))
        sim = open(os.path.join(WORK, "st-map", "similarity.csv")).read().splitlines()
        self.assertEqual(len(sim), 3, sim)
        merged = os.path.join(WORK, "st-merged-ta")
        run("merge", "--method", "task-arithmetic", "--base", st, "--models", ",".join(tuned), "--out", merged,
            "--overwrite")
        self.assertTrue(os.path.exists(os.path.join(merged, "tokenizer.json")), "the body's tokenizer was not copied")
        # task arithmetic from the bare-named base: base + sum of task vectors, per tensor
        m = ref.read_safetensors(os.path.join(merged, "model.safetensors"))[0]
        t = [ref.read_safetensors(os.path.join(d, "model.safetensors"))[0] for d in tuned]
        name = "bert.encoder.layer.0.attention.self.query.weight"
        want = tensors[name[len("bert."):]] + sum(x[name] - tensors[name[len("bert."):]] for x in t)
        np.testing.assert_allclose(m[name], want, rtol=1e-5, atol=1e-6)
        run("interpolate", st, tuned[0], "--data", data, "--alphas", "0,1", "--out", os.path.join(WORK, "st-interp"),
            "--overwrite", "--no-cache", "--quiet")
        self.assertTrue(os.path.exists(os.path.join(WORK, "st-interp", "scores.csv")))
        # a damaged modules.json: one line naming it
        bad = os.path.join(WORK, "st-bad")
        os.makedirs(bad, exist_ok=True)
        for text, needle in [("[{", "malformed JSON"),
                             ('[{"idx": 0, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]',
                              "no sentence_transformers.models.Transformer module"),
                             ('[{"idx": 0, "path": "../st-tiny/0_Transformer", "type": "sentence_transformers.models.Transformer"}]',
                              "leaves the folder")]:
            open(os.path.join(bad, "modules.json"), "w").write(text)
            r = subprocess.run([BASIN, "inspect", bad], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(os.path.join(bad, "modules.json"), r.stderr)
            self.assertIn(needle, r.stderr)
        # the head-less body cannot be evaluated: one clear line
        r = subprocess.run([BASIN, "eval", "--model", st, "--data", train], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no sequence-classification head", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_every_file_basin_writes_loads_in_safetensors(self):
        files = []
        for dtype in ("F32", "F16", "BF16"):
            out = os.path.join(WORK, f"init-{dtype}")
            run("init-model", "--out", out, "--overwrite", "--head", "classification", "--labels", "a,b",
                "--hidden", "32", "--layers", "2", "--heads", "4", "--intermediate", "64", "--max-positions", "66",
                "--dtype", dtype)
            files.append(os.path.join(out, "model.safetensors"))
        data = self.finetune_data()
        ft = os.path.join(WORK, "st-ft")
        run("finetune", "--model", self.tiny("bert", "F32"), "--train", data, "--out", ft, "--overwrite",
            "--epochs", "1", "--batch-size", "8", "--seed", "1", "--threads", "1")
        files.append(os.path.join(ft, "model.safetensors"))
        models = ",".join([self.tiny("bert", "F32"), ft])
        merged = os.path.join(WORK, "st-merged")
        run("merge", "--method", "mean", "--models", models, "--out", merged, "--overwrite")
        files.append(os.path.join(merged, "model.safetensors"))
        sharded = os.path.join(WORK, "st-merged-sharded")
        run("merge", "--method", "mean", "--models", models, "--out", sharded, "--overwrite", "--shard-size", "20K")
        shards = sorted(glob.glob(os.path.join(sharded, "model-*.safetensors")))
        self.assertGreater(len(shards), 1, "the sharded merge wrote one file")
        files += shards
        head = os.path.join(WORK, "st-head.safetensors")
        cache = os.path.join(WORK, "st-cache")
        shutil.rmtree(cache, ignore_errors=True)
        run("probe", "--model", ft, "--train", data, "--test", data, "--save-head", head, "--cache", cache)
        files.append(head)
        cached = glob.glob(os.path.join(cache, "**", "*.safetensors"), recursive=True)
        self.assertTrue(cached, "the probe wrote no feature cache file")
        files += cached
        torch_dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                        "I64": torch.int64, "I32": torch.int32}
        for path in files:
            ours, metadata, header = ref.read_safetensors(path)
            with safetensors.safe_open(path, framework="pt") as f:
                self.assertEqual(sorted(f.keys()), sorted(ours), path)
                self.assertEqual(f.metadata() or {}, metadata, path)
                for name in f.keys():
                    value = f.get_tensor(name)
                    self.assertEqual(value.dtype, torch_dtypes[header[name]["dtype"]], f"{path}: {name}")
                    # the own reader gives float32 (exact for every stored type but F64 and large I64)
                    np.testing.assert_array_equal(value.float().numpy(), ours[name], err_msg=f"{path}: {name}")
        print(f"{len(files)} safetensors files basin wrote load with safetensors {safetensors.__version__}")


if __name__ == "__main__":
    BASIN, WORK = sys.argv[1], sys.argv[2]
    os.makedirs(WORK, exist_ok=True)
    print(f"reference: transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
          f"safetensors {safetensors.__version__}, torch {torch.__version__}")
    unittest.main(argv=sys.argv[:1], verbosity=2, warnings="ignore")
