#!/usr/bin/python3
"""Resource bounds (issue 10): files of absurd size (config.json, tokenizer.json, a sharded index,
an experiment spec: sparse files of gigabytes), a dataset line of 100 MB (JSONL and CSV) and a
tokenizer with a million merges. Each gives a clear one-line error naming the file and the
limit, or works, with the peak memory of the process measured (wait4) and bounded.

usage: test_limits.py BASIN WORK"""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402

BASIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.argv = sys.argv[:1]
MB = 1 << 20


def run_measured(*args):
    """Runs basin under GNU time; returns (exit code, stderr, peak resident memory in bytes). (A
    child's own maxrss would include this Python process's: Linux carries it over exec.)"""
    peak = os.path.join(WORK, "peak.txt")
    r = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", peak, BASIN, *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    with open(peak) as f:
        kb = int(f.read().split()[-1])
    return r.returncode, r.stderr, kb * 1024


def sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        cls.tokenizer = os.path.join(WORK, "tokenizer.json")
        with open(cls.tokenizer, "w") as f:
            json.dump(ref.tokenizer_json("bert", "good bad the a it was".split()), f)
        cls.base = os.path.join(WORK, "base")
        code, err, _ = run_measured("init-model", "--out", cls.base, "--tokenizer", cls.tokenizer, "--hidden", "16",
                                    "--layers", "1", "--heads", "2", "--intermediate", "32", "--max-positions", "20")
        assert code == 0, err
        # what the program takes anyway (libtorch alone is about 150 MB): the bounds are above it
        code, err, cls.baseline = run_measured("inspect", cls.base)
        assert code == 0, err

    def assert_refused(self, args, file, limit_text, allowance=64 * MB):
        code, err, rss = run_measured(*args)
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(file, lines[0])
        self.assertIn(limit_text, lines[0])
        self.assertLess(rss, self.baseline + allowance,
                        f"peak memory {rss / MB:.0f} MB while refusing {file} ({self.baseline / MB:.0f} MB to inspect a model)")

    def test_absurd_config_json(self):
        model = os.path.join(WORK, "huge-config")
        shutil.copytree(self.base, model)
        sparse(os.path.join(model, "config.json"), 2 << 30)  # 2 GiB of zeros, no disk used
        self.assert_refused(["inspect", model], "config.json", "larger than 16 MiB")

    def test_absurd_tokenizer_json(self):
        path = os.path.join(WORK, "huge-tokenizer.json")
        sparse(path, 1 << 30)
        text = os.path.join(WORK, "one.txt")
        with open(text, "w") as f:
            f.write("good\n")
        self.assert_refused(["tokenize", "--tokenizer", path, "--input", text, "--plain"], path, "larger than 128 MiB")

    def test_absurd_shard_index(self):
        model = os.path.join(WORK, "huge-index")
        shutil.copytree(self.base, model)
        os.rename(os.path.join(model, "model.safetensors"), os.path.join(model, "model-00001-of-00001.safetensors"))
        sparse(os.path.join(model, "model.safetensors.index.json"), 1 << 30)
        self.assert_refused(["inspect", model], "model.safetensors.index.json", "larger than 64 MiB")

    def test_absurd_experiment_spec(self):
        spec = os.path.join(WORK, "huge.toml")
        sparse(spec, 1 << 30)
        self.assert_refused(["run", spec], spec, "larger than 16 MiB")

    def test_a_100_mb_line_in_a_dataset(self):
        line = "good " * (20 * MB)  # 100 MB
        jsonl = os.path.join(WORK, "long.jsonl")
        with open(jsonl, "w") as f:
            f.write(json.dumps({"text": "good", "label": "pos"}) + "\n")
            f.write(json.dumps({"text": line, "label": "neg"}) + "\n")
        csv = os.path.join(WORK, "long.csv")
        with open(csv, "w") as f:
            f.write("text,label\ngood,pos\n" + line + ",neg\n")
        out = os.path.join(WORK, "never")
        for data, where in ((jsonl, ":2:"), (csv, ":3:")):
            self.assert_refused(["finetune", "--model", self.base, "--train", data, "--out", out], data + where,
                                "a line longer than 16 MiB")
            self.assertFalse(os.path.exists(out))
        self.assert_refused(["tokenize", "--tokenizer", self.tokenizer, "--input", jsonl], jsonl + ":2:",
                            "a line longer than 16 MiB")

    def test_a_tokenizer_with_a_million_merges(self):
        # 1,000 base characters and every ordered pair of them merged: 1,000,000 merges, 29 MB
        chars = [chr(0x4E00 + i) for i in range(1000)]
        vocab = {"[UNK]": 0}
        for c in chars:
            vocab[c] = len(vocab)
        merges = []
        for a in chars:
            for b in chars:
                vocab[a + b] = len(vocab)
                merges.append(a + " " + b)
        tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
               "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
               "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
                         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                         "merges": merges}}
        path = os.path.join(WORK, "million.json")
        with open(path, "w") as f:
            json.dump(tok, f, ensure_ascii=False)
        text = os.path.join(WORK, "million.txt")
        with open(text, "w") as f:
            f.write(chars[3] + chars[7] + chars[9] + " " + chars[999] + chars[0] + "\n")
        out = os.path.join(WORK, "million.out")
        code, err, rss = run_measured("tokenize", "--tokenizer", path, "--input", text, "--plain", "--output", out)
        self.assertEqual(code, 0, err)
        with open(out) as f:
            ids = json.loads(f.readline())["ids"]
        # merges apply by rank: (c3 c7) is merge 3,007; c9 stays alone; (c999 c0) is merge 999,000
        self.assertEqual(ids, [vocab[chars[3] + chars[7]], vocab[chars[9]], vocab[chars[999] + chars[0]]])
        self.assertLess(rss, 1024 * MB, f"peak memory {rss / MB:.0f} MB for a tokenizer with 1M merges")
        print(f"\n1M merges: peak memory {rss / MB:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
