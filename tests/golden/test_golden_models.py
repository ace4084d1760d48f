#!/usr/bin/python3
"""Golden tests: basin's BERT/RoBERTa classifiers against the independent Python reference
(tests/reference/hf_reference.py) on tiny random models made by the test.

- logits agree within 1e-4 absolute, for single sentences and pairs, with padding, in F32;
- the same for checkpoints stored in F16 and BF16 (both sides upcast the stored values to F32,
  so the tolerance stays 1e-4);
- files basin writes (init-model, F16) are read back by the reference's own reader and give the
  same logits.

usage: BASIN=build/basin BASIN_WORK=/tmp/dir test_golden_models.py"""
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402

BASIN = os.environ.get("BASIN", os.path.join(HERE, "..", "..", "build", "basin"))
WORK = os.environ.get("BASIN_WORK", "/tmp/basin-golden")
TOLERANCE = 1e-4

WORDS = ("the movie was great and the acting superb but the plot felt thin while music soared "
         "nothing works here at all a quiet film about loss grief hope family dinner rain city").split()
SENTENCES = [
    "the movie was great",
    "nothing works here at all",
    "A quiet film about loss, grief and hope; the family dinner scene in the rain is superb!",
    "plot",
    "the acting was superb but the plot felt thin while the music soared over the city",
    "Café rain — unknown words like zyzzyva appear",
    "great great great great great great great great great great great great great great",
]
PAIRS = [(s, SENTENCES[(i + 3) % len(SENTENCES)]) for i, s in enumerate(SENTENCES)]


def write_data(path, pairs):
    labels = ["neg", "pos", "neutral"]
    with open(path, "w", encoding="utf-8") as f:
        for i, (a, b) in enumerate(pairs):
            row = {"text": a, "label": labels[i % 3]}
            if b is not None:
                row["text_pair"] = b
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def basin_predictions(model_dir, data_path, extra=()):
    out = data_path + ".pred.jsonl"
    subprocess.run([BASIN, "eval", "--model", model_dir, "--data", data_path, "--predictions", out,
                    "--batch-size", "3", "--threads", "1", *extra], check=True, stdout=subprocess.DEVNULL)
    return [json.loads(line) for line in open(out, encoding="utf-8")]


class GoldenModels(unittest.TestCase):
    def compare(self, family, dtype, pairs, name):
        model = os.path.join(WORK, f"{family}-{dtype}")
        if not os.path.exists(os.path.join(model, "config.json")):
            ref.make_model(model, family, dtype=dtype, seed=7, words=WORDS)
        data = os.path.join(WORK, f"{family}-{dtype}-{name}.jsonl")
        write_data(data, pairs)
        preds = basin_predictions(model, data)
        ids = [p["input_ids"] for p in preds]
        # padding happened: lengths differ, and the reference pads all to the longest
        self.assertGreater(len(set(len(x) for x in ids)), 1)
        sep = 3 if family == "bert" else None
        expected = ref.classify(model, ids, sep_id=sep)
        got = ref.torch.tensor([p["logits"] for p in preds])
        diff = (expected - got).abs().max().item()
        print(f"{family:8s} {dtype:5s} {name:7s} max |logit diff| = {diff:.2e}")
        self.assertLess(diff, TOLERANCE, f"{family} {dtype} {name}: max abs diff {diff}")
        self.assertGreater(expected.abs().max().item(), 0.05, "logits are too small to be a meaningful check")
        if family == "bert" and name == "pairs":
            self.assertTrue(any(3 in x[:-1] for x in ids), "pairs must contain an inner separator")

    def test_bert_f32_single(self):
        self.compare("bert", "F32", [(s, None) for s in SENTENCES], "single")

    def test_bert_f32_pairs(self):
        self.compare("bert", "F32", PAIRS, "pairs")

    def test_roberta_f32_single(self):
        self.compare("roberta", "F32", [(s, None) for s in SENTENCES], "single")

    def test_roberta_f32_pairs(self):
        self.compare("roberta", "F32", PAIRS, "pairs")

    def test_low_precision_checkpoints(self):
        for family in ("bert", "roberta"):
            for dtype in ("F16", "BF16"):
                self.compare(family, dtype, PAIRS, "pairs")

    def test_reference_reads_basin_files(self):
        """basin writes a model (F16); the reference reads it with its own reader."""
        model = os.path.join(WORK, "basin-written")
        subprocess.run([BASIN, "init-model", "--out", model, "--overwrite", "--head", "classification",
                        "--labels", "neg,pos,neutral", "--hidden", "32", "--layers", "2", "--heads", "4",
                        "--intermediate", "64", "--max-positions", "66", "--seed", "3", "--dtype", "F16"],
                       check=True, stdout=subprocess.DEVNULL)
        tensors, metadata, header = ref.read_safetensors(os.path.join(model, "model.safetensors"))
        self.assertEqual(metadata.get("basin_seed"), "3")
        self.assertTrue(all(info["dtype"] == "F16" for info in header.values()))
        self.assertIn("roberta.encoder.layer.1.attention.self.query.weight", tensors)
        # basin initialises like transformers: LayerNorm weights 1, biases 0
        self.assertTrue((tensors["roberta.embeddings.LayerNorm.weight"] == 1).all())
        data = os.path.join(WORK, "basin-written.jsonl")
        write_data(data, PAIRS)
        preds = basin_predictions(model, data)
        expected = ref.classify(model, [p["input_ids"] for p in preds])
        got = ref.torch.tensor([p["logits"] for p in preds])
        diff = (expected - got).abs().max().item()
        print(f"basin-written F16 max |logit diff| = {diff:.2e}")
        self.assertLess(diff, TOLERANCE)


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    unittest.main(verbosity=2, warnings="ignore")
