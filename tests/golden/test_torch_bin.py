#!/usr/bin/env python3
"""basin reads torch.save archives (pytorch_model.bin) without running their pickle:

- folders saved by transformers with safe_serialization=False give the same logits as the same
  model in safetensors; tensors with a storage offset, shared storages and F16/BF16/I64 dtypes
  are read with their exact values (checked through a merge of a model with itself, which is
  bitwise that model);
- a pickle that would run code (os.system through REDUCE, builtins.eval, an INST opcode) is
  refused before anything runs: the marker file it would create never appears;
- a truncated zip, a storage offset past its storage's end, a storage type torch does not write,
  a non-contiguous tensor, and a folder whose .bin and .safetensors disagree: one line each,
  naming the file.

usage: .venv/bin/python test_torch_bin.py BASIN WORK_DIR      (exit 77 without torch)"""
import collections
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
try:
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification
except ImportError as e:
    print(f"SKIPPED: {e} (run scripts/install-deps.sh, then use .venv/bin/python)")
    sys.exit(77)
import hf_reference as ref  # noqa: E402

BASIN = WORK = None
WORDS = "the movie was great and nothing works here at all a quiet film".split()


def run(*args, check=True):
    return subprocess.run([BASIN, *args], check=check, capture_output=True, text=True)


def write_config(folder):
    json.dump({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 50, "hidden_size": 8,
               "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 16,
               "max_position_embeddings": 16}, open(os.path.join(folder, "config.json"), "w"))


class Storage:
    """A stand-in for a torch storage in a hand-made archive: pickled as a persistent id."""

    def __init__(self, key, type_name, numel):
        self.key, self.type_name, self.numel = key, type_name, numel


class Rebuild:
    """Pickles as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, {})."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.numel)
        return None


def write_archive(path, state, storages, edit=None, pickle_bytes=None):
    """A torch.save-shaped zip: archive/data.pkl (state pickled with persistent ids) and
    archive/data/KEY for each storage's bytes. edit(bytes) may rewrite the pickle."""
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    data = pickle_bytes if pickle_bytes is not None else buf.getvalue()
    if edit:
        data = edit(data)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/byteorder", "little")
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw)
        z.writestr("archive/version", "3\n")


class TorchBin(unittest.TestCase):
    def assert_refused(self, target, *needles, command=("inspect",)):
        r = run(*command, target, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_transformers_bin_folders_give_the_safetensors_logits(self):
        data = os.path.join(WORK, "data.jsonl")
        with open(data, "w") as f:
            for i, s in enumerate(["the movie was great", "nothing works here at all", "a quiet film", "great film"]):
                f.write(json.dumps({"text": s, "text_pair": "the movie", "label": ["neg", "pos", "neutral"][i % 3]}) + "\n")
        for family in ("bert", "roberta"):
            st = os.path.join(WORK, f"{family}-st")
            ref.make_model(st, family, seed=3, words=WORDS)
            binf = os.path.join(WORK, f"{family}-bin")
            shutil.rmtree(binf, ignore_errors=True)
            AutoModelForSequenceClassification.from_pretrained(st).save_pretrained(binf, safe_serialization=False)
            shutil.copy(os.path.join(st, "tokenizer.json"), binf)
            self.assertTrue(os.path.exists(os.path.join(binf, "pytorch_model.bin")))
            self.assertFalse(any(f.endswith(".safetensors") for f in os.listdir(binf)))
            got = []
            for folder in (st, binf):
                out = os.path.join(folder, "pred.jsonl")
                run("eval", "--model", folder, "--data", data, "--predictions", out, "--threads", "1")
                got.append([json.loads(line)["logits"] for line in open(out)])
            self.assertEqual(got[0], got[1], f"{family}: the .bin folder gave other logits")
            print(f"{family}: pytorch_model.bin logits equal the safetensors model's")

    def test_offsets_shared_storages_and_dtypes_read_exactly(self):
        folder = os.path.join(WORK, "dtypes")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        big = torch.randn(40, 8)
        state = collections.OrderedDict()
        state["embeddings.word_embeddings.weight"] = big[10:30]          # a view: storage offset 80
        state["encoder.layer.0.attention.self.query.weight"] = big       # shares the storage
        state["encoder.layer.0.attention.self.query.bias"] = torch.randn(8).half()
        state["encoder.layer.0.output.dense.weight"] = torch.randn(8, 8).to(torch.bfloat16)
        state["embeddings.position_ids"] = torch.arange(12).unsqueeze(0)
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
        write_config(folder)
        info = json.loads(run("inspect", folder, "--json").stdout)
        dtypes = {t["name"]: t["dtype"] for t in info["tensor_table"]}
        self.assertEqual(dtypes["encoder.layer.0.attention.self.query.bias"], "F16")
        self.assertEqual(dtypes["encoder.layer.0.output.dense.weight"], "BF16")
        self.assertEqual(dtypes["embeddings.position_ids"], "I64")
        out, copy = os.path.join(WORK, "dtypes-merged"), os.path.join(WORK, "dtypes-copy")
        shutil.copytree(folder, copy, dirs_exist_ok=True)
        run("merge", "--method", "mean", "--models", f"{folder},{copy}", "--out", out, "--overwrite")
        merged, _, _ = ref.read_safetensors(os.path.join(out, "model.safetensors"))
        for name, t in state.items():
            np.testing.assert_array_equal(merged[name], t.float().numpy(), err_msg=name)
        print(f"{len(state)} tensors (offset view, shared storage, F16, BF16, I64) read exactly")

    def test_code_in_a_pickle_never_runs(self):
        marker = os.path.join(WORK, "MARKER")

        class Shell:
            def __reduce__(self):
                return os.system, (f"touch {marker}",)

        class Eval:
            def __reduce__(self):
                import builtins
                return builtins.eval, (f"open({marker!r}, 'w')",)

        cases = {"shell": collections.OrderedDict(x=Shell()), "eval": collections.OrderedDict(x=Eval())}
        for name, state in cases.items():
            path = os.path.join(WORK, f"evil-{name}.bin")
            write_archive(path, state, {})
            line = self.assert_refused(path, path, "is not allowed", "nothing was run")
            print(f"{name}: {line}")
        # protocol-0 INST (an opcode that calls a class) is refused as an opcode
        inst = b"\x80\x02(ios\nsystem\nX\x04\x00\x00\x00trueq\x00."
        path = os.path.join(WORK, "evil-inst.bin")
        write_archive(path, None, {}, pickle_bytes=inst)
        self.assert_refused(path, path, "opcode 0x69")
        self.assertFalse(os.path.exists(marker), "a pickle ran code")
        # the file is live: Python's own unpickler runs it (here, deliberately) and leaves the marker
        with zipfile.ZipFile(os.path.join(WORK, "evil-shell.bin")) as z:
            pickle.loads(z.read("archive/data.pkl"))
        self.assertTrue(os.path.exists(marker), "the test's pickle does not do what it should")
        os.remove(marker)
        folder = os.path.join(WORK, "evil-folder")
        os.makedirs(folder, exist_ok=True)
        write_config(folder)
        shutil.copy(os.path.join(WORK, "evil-shell.bin"), os.path.join(folder, "pytorch_model.bin"))
        for command in (("inspect",), ("eval", "--data", os.path.join(WORK, "data.jsonl"), "--model")):
            self.assert_refused(folder, "pytorch_model.bin", "not allowed", command=command)
        self.assertFalse(os.path.exists(marker), "a pickle ran code")

    def test_damaged_archives_get_one_line(self):
        good = os.path.join(WORK, "good.bin")
        torch.save(collections.OrderedDict(w=torch.randn(64, 64)), good)
        raw = open(good, "rb").read()
        truncated = os.path.join(WORK, "truncated.bin")
        open(truncated, "wb").write(raw[: len(raw) // 2])
        self.assert_refused(truncated, truncated, "truncated")
        # a storage offset past the end of its storage
        s = Storage("0", "FloatStorage", 16)
        path = os.path.join(WORK, "offset.bin")
        write_archive(path, collections.OrderedDict(w=Rebuild(s, 12, [8], [1])), {"0": np.zeros(16, np.float32).tobytes()})
        self.assert_refused(path, path, "'w'", "storage offset 12", "past the end of its storage (16 elements)")
        # a storage type torch does not write
        path = os.path.join(WORK, "dtype.bin")
        write_archive(path, collections.OrderedDict(w=Rebuild(s, 0, [16], [1])), {"0": np.zeros(16, np.float32).tobytes()},
                      edit=lambda b: b.replace(b"FloatStorage", b"Fl0atStorage"))
        self.assert_refused(path, path, "torch.Fl0atStorage", "a dtype basin does not read")
        # a non-contiguous tensor
        path = os.path.join(WORK, "strided.bin")
        write_archive(path, collections.OrderedDict(w=Rebuild(s, 0, [4, 4], [1, 4])), {"0": np.zeros(16, np.float32).tobytes()})
        self.assert_refused(path, path, "'w'", "not contiguous")
        # a storage whose bytes are missing
        path = os.path.join(WORK, "missing.bin")
        write_archive(path, collections.OrderedDict(w=Rebuild(s, 0, [16], [1])), {})
        self.assert_refused(path, path, "archive/data/0 is missing")
        # not a zip at all (a pre-1.6 bare pickle)
        path = os.path.join(WORK, "legacy.bin")
        torch.save(collections.OrderedDict(w=torch.zeros(2)), path, _use_new_zipfile_serialization=False)
        self.assert_refused(path, path, "not a zip archive", "older bare pickle")

    def test_bin_and_safetensors_that_disagree(self):
        folder = os.path.join(WORK, "both")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        write_config(folder)
        ref.write_safetensors(os.path.join(folder, "model.safetensors"), {"w": np.zeros((4, 4), np.float32)})
        torch.save(collections.OrderedDict(w=torch.zeros(4, 4)), os.path.join(folder, "pytorch_model.bin"))
        self.assertEqual(run("inspect", folder).returncode, 0)  # they agree: read from safetensors
        torch.save(collections.OrderedDict(w=torch.zeros(4, 5)), os.path.join(folder, "pytorch_model.bin"))
        self.assert_refused(folder, os.path.join(folder, "pytorch_model.bin"), "disagrees with", "model.safetensors")


if __name__ == "__main__":
    BASIN, WORK = sys.argv[1], sys.argv[2]
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    unittest.main(argv=sys.argv[:1], verbosity=2, warnings="ignore")
