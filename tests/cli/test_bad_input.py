#!/usr/bin/python3
"""Bad input to the basin program: each case must exit with status 1 (no crash, no signal),
print exactly one line on stderr that names the file and says what is wrong, and leave no
output file behind.

usage: test_bad_input.py BASIN_BINARY WORK_DIR"""
import json
import os
import shutil
import struct
import subprocess
import sys
import unittest

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]


def header_file(path, header, data_bytes=0, length=None):
    text = header.encode() if isinstance(header, str) else header
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length))
        f.write(text)
        f.write(b"\0" * data_bytes)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        cls.good = os.path.join(WORK, "good")
        subprocess.run([BASIN, "init-model", "--out", cls.good, "--head", "classification", "--labels", "neg,pos",
                        "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32"],
                       check=True, stdout=subprocess.DEVNULL)
        cls.data = os.path.join(WORK, "good.jsonl")
        with open(cls.data, "w") as f:
            f.write('{"text": "fine", "label": "pos"}\n{"text": "also fine", "label": "neg"}\n')

    def model_copy(self, name):
        path = os.path.join(WORK, name)
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(self.good, path)
        return path

    def expect_error(self, args, *parts):
        predictions = os.path.join(WORK, "predictions.jsonl")
        if os.path.exists(predictions):
            os.remove(predictions)
        r = subprocess.run([BASIN, *args, "--predictions", predictions] if args[0] == "eval" else [BASIN, *args],
                           capture_output=True, text=True)
        lines = r.stderr.strip().split("\n")
        self.assertEqual(r.returncode, 1, f"exit status {r.returncode}; stderr: {r.stderr}")
        self.assertEqual(len(lines), 1, f"expected one line, got: {r.stderr}")
        self.assertTrue(lines[0].startswith("basin: error: "), lines[0])
        for part in parts:
            self.assertIn(part, lines[0])
        self.assertFalse(os.path.exists(predictions), "an output file was left behind")
        self.assertFalse([f for f in os.listdir(WORK) if ".tmp-" in f], "a temporary file was left behind")
        return lines[0]

    def eval_model(self, model, *parts, data=None):
        return self.expect_error(["eval", "--model", model, "--data", data or self.data], *parts)

    def test_truncated_safetensors(self):
        m = self.model_copy("truncated")
        with open(os.path.join(m, "model.safetensors"), "wb") as f:
            f.write(b"\x10\0\0")
        self.eval_model(m, "model.safetensors", "truncated")

    def test_truncated_tensor_data(self):
        m = self.model_copy("cut")
        path = os.path.join(m, "model.safetensors")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 100)
        self.eval_model(m, "model.safetensors", "outside the data buffer")

    def test_header_longer_than_file(self):
        m = self.model_copy("longheader")
        header_file(os.path.join(m, "model.safetensors"), "{}", length=4096)
        self.eval_model(m, "model.safetensors", "header length 4096", "larger than the file")

    def test_malformed_header_json(self):
        m = self.model_copy("badjson")
        header_file(os.path.join(m, "model.safetensors"), '{"a": {"dtype": "F32", ')
        self.eval_model(m, "model.safetensors", "malformed header JSON")

    def test_unknown_dtype(self):
        m = self.model_copy("dtype")
        header_file(os.path.join(m, "model.safetensors"), '{"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}', 1)
        self.eval_model(m, "model.safetensors", "unknown dtype 'Q4'")

    def test_overlapping_offsets(self):
        m = self.model_copy("overlap")
        header_file(os.path.join(m, "model.safetensors"),
                    '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
                    ' "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', 12)
        self.eval_model(m, "model.safetensors", "overlap")

    def test_out_of_range_offsets(self):
        m = self.model_copy("range")
        header_file(os.path.join(m, "model.safetensors"), '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', 4)
        self.eval_model(m, "model.safetensors", "outside the data buffer")

    def test_shape_not_matching_architecture(self):
        m = self.model_copy("shape")
        cfg = json.load(open(os.path.join(m, "config.json")))
        cfg["intermediate_size"] = 48
        json.dump(cfg, open(os.path.join(m, "config.json"), "w"))
        self.eval_model(m, "model.safetensors", "intermediate.dense.weight: expected [48, 16], got [32, 16]")

    def test_missing_config(self):
        m = self.model_copy("noconfig")
        os.remove(os.path.join(m, "config.json"))
        self.eval_model(m, "config.json not found")

    def test_missing_tokenizer(self):
        m = self.model_copy("notokenizer")
        os.remove(os.path.join(m, "tokenizer.json"))
        self.eval_model(m, "tokenizer.json not found")

    def test_unsupported_architecture(self):
        m = self.model_copy("arch")
        cfg = json.load(open(os.path.join(m, "config.json")))
        cfg["architectures"] = ["GPT2LMHeadModel"]
        json.dump(cfg, open(os.path.join(m, "config.json"), "w"))
        self.eval_model(m, "config.json", "unsupported architecture 'GPT2LMHeadModel'")

    def test_dataset_with_malformed_line(self):
        data = os.path.join(WORK, "malformed.jsonl")
        open(data, "w").write('{"text": "ok", "label": "pos"}\n{"text": "ok", "label": "neg"}\n{"text": broken\n')
        self.eval_model(self.good, "malformed.jsonl:3", "malformed JSON", data=data)

    def test_label_the_model_does_not_know(self):
        data = os.path.join(WORK, "labels.jsonl")
        open(data, "w").write('{"text": "ok", "label": "pos"}\n{"text": "ok", "label": "angry"}\n')
        self.eval_model(self.good, "labels.jsonl:2", "label 'angry'", "neg, pos", data=data)

    def test_empty_dataset(self):
        data = os.path.join(WORK, "empty.jsonl")
        open(data, "w").write("\n")
        self.eval_model(self.good, "empty.jsonl", "dataset is empty", data=data)

    def test_invalid_utf8_in_text(self):
        data = os.path.join(WORK, "utf8.jsonl")
        open(data, "wb").write(b'{"text": "ok", "label": "pos"}\n{"text": "bad \xff here", "label": "neg"}\n')
        self.eval_model(self.good, "utf8.jsonl:2", "invalid UTF-8", data=data)

    def test_missing_model_folder_and_bad_device(self):
        self.eval_model(os.path.join(WORK, "nowhere"), "nowhere", "model folder not found")
        self.expect_error(["eval", "--model", self.good, "--data", self.data, "--device", "tpu"], "--device")

    def test_inspect_bad_file(self):
        path = os.path.join(WORK, "x.safetensors")
        header_file(path, "not json at all")
        self.expect_error(["inspect", path], "x.safetensors", "malformed header JSON")


if __name__ == "__main__":
    unittest.main(verbosity=2)
