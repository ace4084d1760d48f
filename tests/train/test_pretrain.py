#!/usr/bin/python3
"""Tests of the tools that make the built-in default (issue 4): the BPE tokenizer trainer
(skips empty and binary files with a warning naming them; a corpus too small for the
vocabulary is an error) and masked-LM pretraining (lowers the held-out loss; resumes after a
kill to the uninterrupted result; refuses a tokenizer whose size disagrees with the config).
Tokenizer ids of trained tokenizers are compared with @huggingface/tokenizers in tests/parity.

usage: test_pretrain.py BASIN_BINARY WORK_DIR"""
import json
import os
import random
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
import numpy as np  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]

WORDS = ("the cat sat on a mat while the dog ran to the park and a bird sang in the tall green tree "
         "every morning people walk along the river to see boats sail past the old stone bridge").split()


run = make_run(BASIN)


class Pretrain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        cls.corpus = os.path.join(WORK, "corpus")
        os.makedirs(cls.corpus)
        rng = random.Random(0)
        for k in range(3):
            with open(os.path.join(cls.corpus, f"text{k}.txt"), "w") as f:
                for _ in range(400):
                    f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))) + ".\n")
        open(os.path.join(cls.corpus, "empty.txt"), "w").write("\n\n")
        open(os.path.join(cls.corpus, "blob.bin"), "wb").write(b"\x00\x01\x02binary\xff")
        cls.tokenizer = os.path.join(WORK, "tokenizer.json")
        r = run("tokenizer", "train", "--corpus", cls.corpus, "--vocab-size", "300", "--out", cls.tokenizer)
        cls.train_stderr = r.stderr
        cls.config = os.path.join(WORK, "config.json")
        json.dump({"architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": 300, "hidden_size": 32,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
                   "max_position_embeddings": 34, "type_vocab_size": 1, "layer_norm_eps": 1e-5, "pad_token_id": 1},
                  open(cls.config, "w"))
        cls.args = ["--corpus", cls.corpus, "--tokenizer", cls.tokenizer, "--config", cls.config, "--max-steps", "40",
                    "--batch-size", "16", "--max-length", "32", "--lr", "2e-3", "--eval-every", "20", "--threads", "1"]

    def test_trainer_skips_empty_and_binary_files_by_name(self):
        self.assertIn("empty.txt: skipped (empty)", self.train_stderr)
        self.assertIn("blob.bin: skipped (binary or not UTF-8)", self.train_stderr)
        tok = json.load(open(self.tokenizer))
        self.assertEqual(len(tok["model"]["vocab"]), 300)
        self.assertEqual([t["content"] for t in tok["added_tokens"]], ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        ids = json.loads(run("tokenize", "--tokenizer", self.tokenizer, "--input", self.write_line("the cat sat")).stdout)
        self.assertLess(len(ids["ids"]), 2 + len("the cat sat"), "frequent words should be merged")

    def write_line(self, text):
        path = os.path.join(WORK, "line.jsonl")
        open(path, "w").write(json.dumps({"text": text}) + "\n")
        return path

    def test_corpus_too_small_for_the_vocabulary(self):
        r = run("tokenizer", "train", "--corpus", self.corpus, "--vocab-size", "50000", "--out",
                os.path.join(WORK, "big.json"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("corpus too small for --vocab-size 50000", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(WORK, "big.json")))

    def test_pretraining_lowers_the_heldout_loss_and_resumes(self):
        straight = os.path.join(WORK, "straight")
        run("pretrain", *self.args, "--out", straight, "--save-every", "10")
        record = json.load(open(os.path.join(straight, "basin_run.json")))
        first, last = record["heldout"][0], record["heldout"][-1]
        print(f"held-out MLM loss {first['loss']:.3f} at step 0 -> {last['loss']:.3f} at step {last['step']}")
        self.assertEqual(first["step"], 0)
        self.assertLess(last["loss"], first["loss"] - 0.5)
        self.assertGreater(last["accuracy"], first["accuracy"])
        cfg = json.load(open(os.path.join(straight, "config.json")))
        self.assertEqual(cfg["architectures"], ["RobertaForMaskedLM"])
        self.assertTrue(os.path.exists(os.path.join(straight, "tokenizer.json")))
        # killed after step 25 (state saved at step 20), then rerun: the uninterrupted weights
        resumed = os.path.join(WORK, "resumed")
        r = run("pretrain", *self.args, "--out", resumed, "--save-every", "10", "--stop-after-step", "25", check=False)
        self.assertEqual(r.returncode, 137)
        self.assertFalse(os.path.exists(resumed))
        r = run("pretrain", *self.args, "--out", resumed, "--save-every", "10")
        self.assertIn("resumed", r.stdout)
        a = ref.read_safetensors(os.path.join(straight, "model.safetensors"))[0]
        b = ref.read_safetensors(os.path.join(resumed, "model.safetensors"))[0]
        self.assertTrue(all(np.array_equal(a[k], b[k]) for k in a), "resumed pretraining differs")
        # the pretrained body fine-tunes like any checkpoint (the tokenizer came along)
        data = os.path.join(WORK, "cls.jsonl")
        with open(data, "w") as f:
            for i in range(40):
                f.write(json.dumps({"text": " ".join(WORDS[i % 7: i % 7 + 5]), "label": "ab"[i % 2]}) + "\n")
        run("finetune", "--model", straight, "--train", data, "--out", os.path.join(WORK, "ft"), "--epochs", "1", "--quiet")

    def test_refuses_a_tokenizer_that_disagrees_with_the_config(self):
        cfg = json.load(open(self.config))
        cfg["vocab_size"] = 512
        bad = os.path.join(WORK, "bad-config.json")
        json.dump(cfg, open(bad, "w"))
        r = run("pretrain", *self.args, "--config", bad, "--out", os.path.join(WORK, "never"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the tokenizer has 300 tokens but", r.stderr)
        self.assertIn("vocab_size 512", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(WORK, "never")))


if __name__ == "__main__":
    unittest.main(verbosity=2, warnings="ignore")
