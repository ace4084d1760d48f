#!/usr/bin/python3
"""PEFT LoRA adapters as zoo members of basin map: adapters written by the test in PEFT's layout
and key names (adapter_config.json; base_model.model.<module>.lora_A/lora_B[.<name>].weight;
lora_embedding_A/B on an embedding; rsLoRA; rank_pattern and alpha_pattern; a trained classifier
head as modules_to_save, which the body leaves out) over a tiny base. The Gram matrix basin map
keeps (gram.safetensors) equals numpy's Gram matrix of the materialised task vectors to 1e-6
relative, for a zoo of adapters alone and mixed with full fine-tunes; the cosines written equal
numpy's. Bad adapters are refused with one line each, and no map is written.

usage: test_map_adapters.py BASIN WORK"""
import json
import os
import shutil
import struct
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]
run = make_run(BASIN)

# the base: a BERT-like body without prefix, a head; weights [out, in]
SHAPES = {"embeddings.word_embeddings.weight": (30, 8), "encoder.layer.0.attention.self.query.weight": (8, 8),
          "encoder.layer.0.attention.self.query.bias": (8,), "encoder.layer.0.attention.self.value.weight": (8, 8),
          "encoder.layer.0.intermediate.dense.weight": (16, 8), "encoder.layer.1.attention.self.query.weight": (8, 8),
          "classifier.weight": (2, 8)}
BODY = [k for k in SHAPES if not k.startswith("classifier")]
PREFIX = "base_model.model."


def write_folder(folder, tensors, name_or_path="tiny-base"):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"architectures": ["BertModel"], "model_type": "bert", "_name_or_path": name_or_path}, f)
    return folder


def write_adapter(folder, factors, r, alpha, rslora=False, extra=None, config=None, base_name="org/tiny-base",
                  adapter_name=None):
    """factors: module -> (A [r, in], B [out, r], embedding?). Returns the folder."""
    os.makedirs(folder, exist_ok=True)
    tensors = {}
    for module, (a, b, embedding) in factors.items():
        kind = "lora_embedding_" if embedding else "lora_"
        middle = f".{adapter_name}" if adapter_name else ""
        tensors[f"{PREFIX}{module}.{kind}A{middle}.weight"] = a.astype(np.float32)
        tensors[f"{PREFIX}{module}.{kind}B{middle}.weight"] = b.astype(np.float32)
    tensors.update(extra or {})
    ref.write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors)
    c = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "use_rslora": rslora, "fan_in_fan_out": False,
         "target_modules": sorted({m.split(".")[-1] for m in factors}), "base_model_name_or_path": base_name,
         "bias": "none", "task_type": "FEATURE_EXTRACTION"}
    c.update(config or {})
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(c, f)
    return folder


def read_gram(map_dir):
    with open(os.path.join(map_dir, "gram.safetensors"), "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    info = json.loads(data[8:8 + n])["gram"]
    b, e = info["data_offsets"]
    return np.frombuffer(data[8 + n + b:8 + n + e], dtype=np.float64).reshape(info["shape"])


class Adapters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        rng = np.random.default_rng(0)
        cls.base = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
        cls.base_dir = write_folder(os.path.join(WORK, "base"), cls.base)
        cls.deltas = {}  # folder -> {tensor: float64 delta}

        def lora(module, r, embedding=False, scale=1.0):
            rows, cols = SHAPES[module + ".weight"]
            out, inp = (cols, rows) if embedding else (rows, cols)
            return rng.standard_normal((r, inp)) * scale, rng.standard_normal((out, r)) * scale, embedding

        q0, v0, q1, ff = ("encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.value",
                          "encoder.layer.1.attention.self.query", "encoder.layer.0.intermediate.dense")
        emb = "embeddings.word_embeddings"
        specs = [  # name, factors, r, alpha, rslora, config extras, adapter name, extra tensors
            ("qv", {q0: lora(q0, 4), v0: lora(v0, 4)}, 4, 8, False, {}, None, {}),
            ("q-both", {q0: lora(q0, 2), q1: lora(q1, 2)}, 2, 16, True, {}, "default", {}),
            ("ff-emb", {ff: lora(ff, 3), emb: lora(emb, 3, embedding=True)}, 3, 6, False, {}, None,
             {PREFIX + "classifier.modules_to_save.default.weight": rng.standard_normal((2, 8)).astype(np.float32)}),
            ("patterns", {q0: lora(q0, 2), v0: lora(v0, 5)}, 2, 4, False,
             {"rank_pattern": {"value": 5}, "alpha_pattern": {"layer.0.attention.self.value": 2.5}}, None, {}),
        ]
        cls.adapters = []
        for name, factors, r, alpha, rslora, config, adapter_name, extra in specs:
            folder = write_adapter(os.path.join(WORK, name), factors, r, alpha, rslora, extra, config,
                                   adapter_name=adapter_name)
            delta = {}
            for module, (a, b, embedding) in factors.items():
                rank = a.shape[0]
                al = alpha
                if module.endswith("value") and "alpha_pattern" in config:
                    al = 2.5
                s = al / (np.sqrt(rank) if rslora else rank)
                d = s * (b.astype(np.float32).astype(np.float64) @ a.astype(np.float32).astype(np.float64))
                delta[module + ".weight"] = d.T if embedding else d
            cls.deltas[folder] = delta
            cls.adapters.append(folder)
        cls.full = []
        for i in range(2):
            tensors = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in cls.base.items()}
            folder = write_folder(os.path.join(WORK, f"full{i}"), tensors)
            cls.deltas[folder] = {k: tensors[k].astype(np.float64) - cls.base[k].astype(np.float64) for k in BODY}
            cls.full.append(folder)

    def vector(self, folder):
        d = self.deltas[folder]
        return np.concatenate([d.get(k, np.zeros(SHAPES[k])).ravel() for k in BODY])

    def map_of(self, models, name, *extra, check=True):
        listing = os.path.join(WORK, name + ".txt")
        with open(listing, "w") as f:
            f.write("\n".join(models) + "\n")
        out = os.path.join(WORK, "maps", name)
        r = run("map", "--base", self.base_dir, "--models", listing, "--out", out, "--bootstrap", "0", *extra,
                check=check)
        return r, out

    def check_gram(self, models, name):
        _, out = self.map_of(models, name)
        got = read_gram(out)
        x = np.stack([self.vector(m) for m in models])
        want = x @ x.T
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        with open(os.path.join(out, "similarity.csv")) as f:
            rows = [line.strip().split(",") for line in f][1:]
        cos = np.array([[float(v) for v in row[1:]] for row in rows])
        n = np.sqrt(np.diag(want))
        np.testing.assert_allclose(cos, want / np.outer(n, n), atol=1e-8)
        return out

    def test_adapters_alone(self):
        self.check_gram(self.adapters, "adapters")

    def test_adapters_mixed_with_full_fine_tunes(self):
        out = self.check_gram([self.full[0], self.adapters[0], self.full[1], *self.adapters[1:]], "mixed")
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(len(summary["models"]), 6)

    def test_many_adapters_cross_tiles_and_threads(self):
        # 70 adapters of ranks 1 to 3 on one weight: more than one tile of 64 adapters; the Gram
        # matrix is the same with 1 and 2 threads, to the bit
        rng = np.random.default_rng(4)
        q0 = "encoder.layer.0.attention.self.query"
        folders = []
        for i in range(70):
            r = 1 + i % 3
            a, b = rng.standard_normal((r, 8)), rng.standard_normal((8, r))
            folder = write_adapter(os.path.join(WORK, "many", f"a{i}"), {q0: (a, b, False)}, r, 2 * r)
            self.deltas[folder] = {q0 + ".weight": 2.0 * (b.astype(np.float32).astype(np.float64) @
                                                          a.astype(np.float32).astype(np.float64))}
            folders.append(folder)
        out = self.check_gram(folders, "many")
        _, two = self.map_of(folders, "many-threads", "--threads", "2")
        np.testing.assert_array_equal(read_gram(out), read_gram(two))

    def test_update_adds_adapters_and_full_models(self):
        """map --update on a mixed map: new adapters and a new full model are added (a new adapter
        against the known full model reads that model's adapted tensors; known pairs are kept), and
        the grown map equals the one made at once, and numpy's (that the known pairs of adapters are
        not formed again is tests/unit/test_space.cpp's LoraBlockGram)."""
        first = [self.full[0], self.adapters[0], self.adapters[1]]
        rest = [*self.adapters[2:], self.full[1]]
        _, grown = self.map_of(first, "grown")
        listing = os.path.join(WORK, "grown-rest.txt")
        with open(listing, "w") as f:
            f.write("\n".join(rest) + "\n")
        run("map", "--update", grown, "--models", listing, "--bootstrap", "0", "--quiet")
        models = first + rest
        once = self.check_gram(models, "once")
        np.testing.assert_allclose(read_gram(grown), read_gram(once), rtol=1e-12, atol=1e-12)
        x = np.stack([self.vector(m) for m in models])
        want = x @ x.T
        np.testing.assert_allclose(read_gram(grown), want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        # an adapter changed since it was mapped is named, and the map is left as it was
        _, again = self.map_of(first, "grown-again")
        before = read_gram(again).copy()
        with open(listing, "w") as f:
            f.write(self.full[1] + "\n")
        path = os.path.join(self.adapters[1], "adapter_model.safetensors")
        with open(path, "rb") as f:
            original = f.read()
        tensors = ref.read_safetensors(path)[0]
        key = next(k for k in tensors if "lora_A" in k)
        try:
            ref.write_safetensors(path, {**tensors, key: tensors[key] * 2})
            r = run("map", "--update", again, "--models", listing, "--bootstrap", "0", "--quiet", check=False)
        finally:
            with open(path, "wb") as f:
                f.write(original)
        self.assertNotEqual(r.returncode, 0)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("changed since the map was made", lines[0])
        np.testing.assert_array_equal(read_gram(again), before)
        # basin locate places models against a map of adapters, without adding them
        with open(listing, "w") as f:
            f.write(self.adapters[2] + "\n" + self.full[1] + "\n")
        where = os.path.join(WORK, "where.json")
        run("locate", again, "--models", listing, "--out", where)
        with open(where) as f:
            located = json.load(f)
        self.assertEqual([entry["model"] for entry in located], [os.path.basename(m) for m in
                                                                  (self.adapters[2], self.full[1])])
        for entry, m in zip(located, (self.adapters[2], self.full[1])):
            for near in entry["nearest"]:
                other = next(x for x in first if os.path.basename(x) == near["model"])
                u, v = self.vector(m), self.vector(other)
                self.assertAlmostEqual(near["cosine"], u @ v / np.sqrt((u @ u) * (v @ v)), places=7)
        np.testing.assert_array_equal(read_gram(again), before)

    def test_mpirun_shares_the_adapted_weights(self):
        """mpirun -np 2: the full models' stream and the adapted weights are shared by the ranks, the
        adapters' products added over them; the matrix equals one process's and every byte of the
        full models is read once over both ranks."""
        import shutil
        import subprocess
        if shutil.which("mpirun") is None:
            self.skipTest("mpirun is not installed (openmpi-bin)")
        models = [self.full[0], *self.adapters, self.full[1]]
        _, single = self.map_of(models, "mpi-single", "--per-layer")
        listing = os.path.join(WORK, "mpi-single.txt")
        out = os.path.join(WORK, "maps", "mpi")
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        r = subprocess.run(["mpirun", "-np", "2", BASIN, "map", "--base", self.base_dir, "--models", listing, "--out",
                            out, "--bootstrap", "0", "--per-layer", "--quiet", "--overwrite"], capture_output=True,
                           text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        np.testing.assert_allclose(read_gram(out), read_gram(single), rtol=1e-12, atol=1e-15)
        with open(os.path.join(out, "summary.json")) as f, open(os.path.join(single, "summary.json")) as g:
            self.assertEqual(json.load(f)["bytes_read"], json.load(g)["bytes_read"])

    def test_bad_adapters_are_one_line_each(self):
        rng = np.random.default_rng(9)
        q0 = "encoder.layer.0.attention.self.query"
        good = {q0: (rng.standard_normal((2, 8)), rng.standard_normal((8, 2)), False)}
        cases = []

        def case(name, expected, **kw):
            folder = write_adapter(os.path.join(WORK, "bad", name), kw.pop("factors", good), kw.pop("r", 2),
                                   kw.pop("alpha", 4), **kw)
            cases.append((folder, expected))
            return folder

        case("ia3", "peft_type 'IA3' is not supported", config={"peft_type": "IA3"})
        case("prefix", "peft_type 'PREFIX_TUNING' is not supported", config={"peft_type": "PREFIX_TUNING"})
        case("dora", "use_dora is true", config={"use_dora": True})
        case("rank", "its factors have rank 2 but adapter_config.json says r = 4", r=4)
        case("mismatch", "rank mismatch", factors={q0: (rng.standard_normal((2, 8)), rng.standard_normal((8, 3)),
                                                        False)})
        case("shape", "B A is [8, 5] but the base's encoder.layer.0.attention.self.query.weight is [8, 8]",
             factors={q0: (rng.standard_normal((2, 5)), rng.standard_normal((8, 2)), False)})
        case("module", "has no tensor 'encoder.layer.7.attention.self.query.weight' (an adapter for another base?)",
             factors={"encoder.layer.7.attention.self.query": good[q0]})
        case("name", "base_model_name_or_path 'org/other-model' names another model than the base",
             base_name="org/other-model")
        case("bias", "is neither a LoRA factor", extra={PREFIX + q0 + ".bias": np.zeros(8, np.float32)})
        only_a = case("only-a", "has lora_A but no lora_B")
        path = os.path.join(only_a, "adapter_model.safetensors")
        tensors = ref.read_safetensors(path)[0]
        ref.write_safetensors(path, {k: v for k, v in tensors.items() if "lora_B" not in k})
        for folder, expected in cases:
            name = os.path.basename(folder)
            r, out = self.map_of([self.full[0], folder], "bad-" + name, check=False)
            self.assertNotEqual(r.returncode, 0, name)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(expected, lines[0], name)
            self.assertFalse(os.path.exists(out), f"{name}: a map was written")
        # two adapters that store one weight differently (fan_in_fan_out) are named together
        conv = write_adapter(os.path.join(WORK, "bad", "conv1d"), good, 2, 4, config={"fan_in_fan_out": True})
        plain = write_adapter(os.path.join(WORK, "bad", "plain"), good, 2, 4)
        for models in ([plain, conv], [plain, conv, self.full[0]]):
            r, out = self.map_of(models, "bad-fan-in-fan-out", "--quiet", check=False)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(f"{conv}: module '{q0}' is stored transposed (fan_in_fan_out), unlike in {plain}", lines[0])
            self.assertFalse(os.path.exists(out))

    def test_sketched_map_of_a_mixed_zoo(self):
        # map --sketch: adapters sketched from their factors (one weight formed at a time) in the same
        # buckets as full fine-tunes; every cosine within its bound of numpy's exact one
        import csv
        # and the first adapter materialised as a full checkpoint: its cosine with the adapter is 1
        dense = {k: (self.base[k].astype(np.float64) + self.deltas[self.adapters[0]].get(k, 0)).astype(np.float32)
                 for k in SHAPES}
        twin = write_folder(os.path.join(WORK, "twin"), dense)
        self.deltas[twin] = {k: dense[k].astype(np.float64) - self.base[k] for k in BODY}
        models = [self.full[0], *self.adapters, self.full[1], twin]
        _, out = self.map_of(models, "sketched", "--sketch", "4096")

        def matrix(name):
            with open(os.path.join(out, name)) as f:
                return np.array([[float(v) for v in row[1:]] for row in list(csv.reader(f))[1:]])
        x = np.stack([self.vector(m) for m in models])
        g = x @ x.T
        exact = g / np.outer(np.sqrt(np.diag(g)), np.sqrt(np.diag(g)))
        got, bound = matrix("similarity.csv"), matrix("sketch_bound.csv")
        off = ~np.eye(len(models), dtype=bool)
        self.assertTrue(np.all(np.abs(got - exact)[off] <= bound[off]))
        self.assertLess(np.max(np.abs(got - exact)), 0.05)
        self.assertAlmostEqual(got[1, len(models) - 1], 1.0, places=5)  # the adapter and its materialised twin

    def test_per_layer_blocks_of_a_mixed_zoo(self):
        import csv
        models = [self.full[0], *self.adapters, self.full[1]]
        _, out = self.map_of(models, "per-layer", "--per-layer")
        groups = {"embeddings": ["embeddings.word_embeddings.weight"],
                  "layer 0": [k for k in BODY if k.startswith("encoder.layer.0.")],
                  "layer 1": [k for k in BODY if k.startswith("encoder.layer.1.")]}
        with open(os.path.join(out, "per_layer.csv")) as f:
            rows = list(csv.DictReader(f))
        names = [os.path.basename(m) for m in models]
        self.assertEqual({row["layer"] for row in rows}, set(groups))
        for row in rows:
            tensors = groups[row["layer"]]
            i, j = names.index(row["model_a"]), names.index(row["model_b"])
            a, b = ([self.deltas[models[k]].get(t, np.zeros(SHAPES[t])).ravel() for t in tensors] for k in (i, j))
            a, b = np.concatenate(a), np.concatenate(b)
            if np.linalg.norm(a) == 0 or np.linalg.norm(b) == 0:
                continue  # an adapter with nothing in this layer group: no cosine to compare
            self.assertAlmostEqual(float(row["cosine"]), a @ b / np.linalg.norm(a) / np.linalg.norm(b), places=6,
                                   msg=row)


if __name__ == "__main__":
    unittest.main(verbosity=2)
