#!/usr/bin/python3
"""LoRA adapters made by PEFT itself (peft 0.13.2 in .venv over Debian's torch 1.13; a tiny
transformers BertModel as the base; random non-zero factors, rsLoRA on one, different ranks) in
basin map and basin merge, against PEFT's own merge_and_unload (the dense W + s B A it computes):

- the map's Gram matrix equals numpy's over the task vectors PEFT's merged models give (1e-6);
- merging into a full checkpoint (mean, weighted, task-arithmetic) equals base + sum c_i delta_i;
- merging into one adapter, concatenated, is loaded by PEFT onto the base and merges to the same
  weights; truncated by SVD to rank r, PEFT loads it and its delta equals numpy's best rank-r
  approximation of the merged delta (weight by weight), with the discarded energy basin reports
  equal to numpy's squared singular values dropped;
- adapters merged with a method that is not linear, --adapter-out without adapters or with a full
  checkpoint among the inputs, and svd without a rank: one line each, nothing written.

Exit status 77 (skipped) when peft is not installed (scripts/install-deps.sh installs it into .venv).

usage: test_adapter_merge.py BASIN WORK"""
import json
import os
import shutil
import struct
import subprocess
import sys
import unittest

import numpy as np

try:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import BertConfig, BertModel
except ImportError as e:
    print(f"skipped: peft or transformers is not installed here ({e}); scripts/install-deps.sh installs them into .venv")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402

BASIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.argv = sys.argv[:1]
TARGETS = ["query", "value", "dense"]  # dense: attention output, intermediate and output (8x8, 16x8, 8x16)


def basin(*args, check=True):
    r = subprocess.run([BASIN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"basin {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r


def body(folder):
    return {k: v.astype(np.float64) for k, v in ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0].items()}


def merged_by_peft(base_dir, adapter_dir):
    """The dense weights PEFT's merge_and_unload gives for an adapter on the base."""
    model = PeftModel.from_pretrained(BertModel.from_pretrained(base_dir), adapter_dir).merge_and_unload()
    return {k: v.detach().double().numpy() for k, v in model.state_dict().items()}


class AdapterMerge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        torch.manual_seed(0)
        config = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=16, max_position_embeddings=16)
        cls.base_dir = os.path.join(WORK, "base")
        BertModel(config).save_pretrained(cls.base_dir, safe_serialization=True)
        cls.base = {k: v.detach().double().numpy() for k, v in BertModel.from_pretrained(cls.base_dir).state_dict().items()}
        cls.adapters, cls.deltas = [], []
        for i, (r, alpha, rslora, targets) in enumerate([(2, 4, False, ["query", "value"]), (3, 6, True, TARGETS),
                                                         (4, 2, False, ["value", "dense"])]):
            torch.manual_seed(10 + i)
            model = get_peft_model(BertModel.from_pretrained(cls.base_dir),
                                   LoraConfig(r=r, lora_alpha=alpha, use_rslora=rslora, target_modules=targets,
                                              init_lora_weights=False))
            folder = os.path.join(WORK, f"adapter{i}")
            model.create_or_update_model_card = lambda *a, **k: None  # README.md needs Jinja2, not the adapter
            model.save_pretrained(folder)
            cls.adapters.append(folder)
            merged = merged_by_peft(cls.base_dir, folder)
            cls.deltas.append({k: merged[k] - cls.base[k] for k in cls.base})

    def expected(self, c):
        return {k: self.base[k] + sum(ci * d[k] for ci, d in zip(c, self.deltas)) for k in self.base}

    def test_map_gram_equals_peft_deltas(self):
        listing = os.path.join(WORK, "adapters.txt")
        with open(listing, "w") as f:
            f.write("\n".join(self.adapters) + "\n")
        out = os.path.join(WORK, "map")
        basin("map", "--base", self.base_dir, "--models", listing, "--out", out, "--bootstrap", "0", "--quiet")
        with open(os.path.join(out, "gram.safetensors"), "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        info = json.loads(data[8:8 + n])["gram"]
        got = np.frombuffer(data[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
                            dtype=np.float64).reshape(info["shape"])
        names = [k for k in self.base if not k.startswith("pooler.")]  # the map leaves the pooler out
        x = np.stack([np.concatenate([d[k].ravel() for k in names]) for d in self.deltas])
        np.testing.assert_allclose(got, x @ x.T, rtol=1e-6)

    def test_inspect_shows_the_adapter(self):
        info = json.loads(basin("inspect", self.adapters[1], "--json").stdout)
        self.assertEqual((info["adapter"]["peft_type"], info["adapter"]["r"], info["adapter"]["use_rslora"]),
                         ("LORA", 3, True))
        # query, value and the three dense layers of 2 layers, plus the pooler's dense: 2 factors each
        self.assertEqual(info["tensors"], 2 * (2 * 5 + 1))
        self.assertTrue(all(".lora_" in t["name"] for t in info["tensor_table"]))

    def test_merge_into_a_full_checkpoint(self):
        for method, extra, c in (("mean", [], [1 / 3] * 3), ("weighted", ["--weights", "1,2,1"], [0.25, 0.5, 0.25]),
                                 ("task-arithmetic", ["--base", self.base_dir, "--lambda", "0.7"], [0.7] * 3)):
            out = os.path.join(WORK, "full-" + method)
            args = ["merge", "--method", method, "--models", ",".join(self.adapters), "--out", out]
            if "--base" not in extra:
                args += ["--base", self.base_dir]
            basin(*args, *extra)
            got, want = body(out), self.expected(c)
            for k, v in got.items():
                np.testing.assert_allclose(v, want[k], rtol=1e-5, atol=1e-6, err_msg=f"{method} {k}")
            with open(os.path.join(out, "basin_merge.json")) as f:
                self.assertEqual(json.load(f)["coefficients"], c)

    def test_merge_into_one_adapter_concatenated(self):
        out = os.path.join(WORK, "concat")
        basin("merge", "--method", "mean", "--models", ",".join(self.adapters), "--base", self.base_dir,
              "--adapter-out", "concat", "--out", out)
        with open(os.path.join(out, "adapter_config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["r"], 9)  # query: 2 + 3, value: 2 + 3 + 4, dense: 3 + 4
        got, want = merged_by_peft(self.base_dir, out), self.expected([1 / 3] * 3)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)

    def test_merge_into_one_adapter_by_svd(self):
        rank = 2
        out = os.path.join(WORK, "svd")
        r = basin("merge", "--method", "mean", "--models", ",".join(self.adapters), "--base", self.base_dir,
                  "--adapter-out", "svd", "--rank", str(rank), "--out", out)
        got = merged_by_peft(self.base_dir, out)
        merged = self.expected([1 / 3] * 3)
        kept = dropped = 0.0
        with open(os.path.join(out, "basin_merge.json")) as f:
            provenance = json.load(f)
        for k in self.base:
            delta = merged[k] - self.base[k]
            if not np.any(delta) or delta.ndim != 2:
                np.testing.assert_allclose(got[k], self.base[k], atol=1e-7, err_msg=k)
                continue
            u, s, vt = np.linalg.svd(delta, full_matrices=False)
            best = (u[:, :rank] * s[:rank]) @ vt[:rank]
            np.testing.assert_allclose(got[k] - self.base[k], best, rtol=1e-5, atol=1e-6, err_msg=k)
            kept += float(np.sum(s[:rank] ** 2))
            dropped += float(np.sum(s[rank:] ** 2))
            self.assertAlmostEqual(provenance["discarded_energy"]["per_weight"][k], np.sum(s[rank:] ** 2) / np.sum(s ** 2),
                                   places=6, msg=k)  # numpy's deltas are differences of float32 weights
        self.assertAlmostEqual(provenance["discarded_energy"]["overall"], dropped / (kept + dropped), places=6)
        self.assertIn("discarded", r.stdout)

    def test_region_commands_take_adapters(self):
        """basin interpolate and plane over adapters (--adapter-base) score the same points as over the
        dense models PEFT's merge_and_unload gives."""
        import csv
        words = [f"w{i}" for i in range(34)]
        with open(os.path.join(self.base_dir, "tokenizer.json"), "w") as f:
            json.dump(ref.tokenizer_json("bert", words), f)
        data = os.path.join(WORK, "task")
        os.makedirs(data, exist_ok=True)
        rng = np.random.default_rng(3)
        for split, n in (("train", 40), ("test", 20)):
            with open(os.path.join(data, split + ".jsonl"), "w") as f:
                for _ in range(n):
                    label = int(rng.integers(2))
                    text = " ".join(rng.choice(words[:17] if label else words[17:], 4))
                    f.write(json.dumps({"text": text, "label": str(label)}) + "\n")
        dense = []
        for i, adapter in enumerate(self.adapters):
            model = PeftModel.from_pretrained(BertModel.from_pretrained(self.base_dir), adapter).merge_and_unload()
            folder = os.path.join(WORK, f"dense{i}")
            model.save_pretrained(folder, safe_serialization=True)
            shutil.copy(os.path.join(self.base_dir, "tokenizer.json"), folder)
            dense.append(folder)
        common = ["--data", data, "--no-cache", "--threads", "1", "--quiet"]

        def losses(path, file):
            with open(os.path.join(path, file)) as f:
                return np.array([float(row["loss"]) for row in csv.DictReader(f)])
        basin("interpolate", self.adapters[0], self.adapters[1], "--adapter-base", self.base_dir, "--alphas", "0:1:3",
              "--out", os.path.join(WORK, "line-adapters"), *common)
        basin("interpolate", dense[0], dense[1], "--alphas", "0:1:3", "--out", os.path.join(WORK, "line-dense"), *common)
        np.testing.assert_allclose(losses(os.path.join(WORK, "line-adapters"), "scores.csv"),
                                   losses(os.path.join(WORK, "line-dense"), "scores.csv"), rtol=1e-4, atol=1e-5)
        basin("plane", *self.adapters, "--adapter-base", self.base_dir, "--grid", "3x2",
              "--out", os.path.join(WORK, "plane-adapters"), *common)
        basin("plane", *dense, "--grid", "3x2", "--out", os.path.join(WORK, "plane-dense"), *common)
        np.testing.assert_allclose(losses(os.path.join(WORK, "plane-adapters"), "grid.csv"),
                                   losses(os.path.join(WORK, "plane-dense"), "grid.csv"), rtol=1e-4, atol=1e-5)
        # search over adapters: the centroid row (the mean) scores as over the dense models; no TIES / DARE
        group_a, group_d = os.path.join(WORK, "group-adapters.txt"), os.path.join(WORK, "group-dense.txt")
        for path, models in ((group_a, self.adapters), (group_d, dense)):
            with open(path, "w") as f:
                f.write("\n".join(models) + "\n")
        rows = {}
        for name, group in (("adapters", group_a), ("dense", group_d)):
            out = os.path.join(WORK, "search-" + name)
            basin("search", "--group", group, "--target", data, "--base", self.base_dir, "--budget", "4", "--out", out,
                  "--no-cache", "--threads", "1", "--quiet")
            with open(os.path.join(out, "search.csv")) as f:
                rows[name] = {row["row"]: row for row in csv.DictReader(f)}
        self.assertNotIn("ties", rows["adapters"])
        self.assertIn("ties", rows["dense"])
        self.assertAlmostEqual(float(rows["adapters"]["centroid"]["loss"]),
                               float(rows["dense"]["centroid"]["loss"]), places=4)
        # without --adapter-base: the base_model_name_or_path PEFT wrote (this base's folder)
        basin("interpolate", self.adapters[0], self.adapters[1], "--alphas", "0:1:3", "--out",
              os.path.join(WORK, "line-named-base"), *common)
        np.testing.assert_allclose(losses(os.path.join(WORK, "line-named-base"), "scores.csv"),
                                   losses(os.path.join(WORK, "line-adapters"), "scores.csv"), rtol=1e-12)
        hub = os.path.join(WORK, "hub-named")
        shutil.rmtree(hub, ignore_errors=True)
        shutil.copytree(self.adapters[0], hub)
        with open(os.path.join(hub, "adapter_config.json")) as f:
            config = json.load(f)
        config["base_model_name_or_path"] = "org/bert-tiny"
        with open(os.path.join(hub, "adapter_config.json"), "w") as f:
            json.dump(config, f)
        r = basin("interpolate", hub, self.adapters[1], "--out", os.path.join(WORK, "no-base"), *common, check=False)
        self.assertIn("a LoRA adapter folder; give the base it was trained on (--adapter-base DIR); its "
                      "base_model_name_or_path 'org/bert-tiny' is not a model folder here", r.stderr)

    def test_bad_merges_are_one_line_each(self):
        full = os.path.join(WORK, "full-for-bad")
        if not os.path.exists(full):
            basin("merge", "--method", "mean", "--models", ",".join(self.adapters), "--base", self.base_dir, "--out", full)
        cases = [
            (["--method", "ties", "--models", ",".join(self.adapters), "--base", self.base_dir],
             "adapters are merged by mean, weighted or task-arithmetic"),
            (["--method", "mean", "--models", ",".join(self.adapters), "--base", self.base_dir, "--adapter-out", "svd"],
             "--adapter-out svd needs --rank"),
            (["--method", "mean", "--models", ",".join([full, *self.adapters]), "--base", self.base_dir,
              "--adapter-out", "concat"], "is a full checkpoint, which an adapter cannot hold"),
            (["--method", "mean", "--models", ",".join([full, self.base_dir]), "--adapter-out", "concat"],
             "the inputs are not adapters"),
            (["--method", "mean", "--models", ",".join(self.adapters)], "adapters need --base"),
        ]
        for i, (args, expected) in enumerate(cases):
            out = os.path.join(WORK, f"bad{i}")
            r = basin("merge", *args, "--out", out, check=False)
            self.assertNotEqual(r.returncode, 0, args)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(expected, lines[0])
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
