#!/usr/bin/python3
"""basin map --sketch K on a planted zoo (4 datasets x 4 seeds of task vectors with cosines about
0.5 within a dataset and 0.1 across, over 100,000 parameters): over five sketch seeds, every
cosine's error against numpy's exact cosine stays within the bound written beside it
(sketch_bound.csv), and the clustering equals the exact map's; a map grown by --update (the new
models read, the old ones' sketches reused) equals the one made at once bit for bit (sketches and
similarities); sketches made with another seed or K, K not a power of two: one line each.

usage: test_map_sketch.py BASIN WORK"""
import csv
import json
import os
import shutil
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
SHAPES = {"embeddings.word_embeddings.weight": (200, 100), "encoder.layer.0.attention.self.query.weight": (100, 100),
          "encoder.layer.0.output.dense.weight": (100, 600), "classifier.weight": (2, 100)}
BODY = [k for k in SHAPES if not k.startswith("classifier")]
K = 4096


def write_folder(folder, tensors):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"architectures": ["BertModel"], "model_type": "bert"}, f)
    return folder


def matrix(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return np.array([[float(v) for v in row[1:]] for row in rows[1:]])


class Sketch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        rng = np.random.default_rng(1)
        base = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
        cls.base_dir = write_folder(os.path.join(WORK, "base"), base)
        size = sum(int(np.prod(SHAPES[k])) for k in BODY)
        shared = rng.standard_normal(size)
        centres = [0.33 * shared + rng.standard_normal(size) for _ in range(4)]
        cls.models, taus, rows = [], [], ["model,dataset"]
        for d in range(4):
            for s in range(4):
                tau = (centres[d] + rng.standard_normal(size)) * 0.01 * (1 + d)
                tensors, at = {}, 0
                for k in BODY:
                    n = int(np.prod(SHAPES[k]))
                    tensors[k] = (base[k] + tau[at:at + n].reshape(SHAPES[k])).astype(np.float32)
                    at += n
                tensors["classifier.weight"] = rng.standard_normal((2, 100)).astype(np.float32)
                folder = write_folder(os.path.join(WORK, f"d{d}-s{s}"), tensors)
                cls.models.append(folder)
                taus.append(np.concatenate([tensors[k].astype(np.float64).ravel() - base[k].ravel() for k in BODY]))
                rows.append(f"{folder},d{d}")
        x = np.stack(taus)
        g = x @ x.T
        n = np.sqrt(np.diag(g))
        cls.cosine = g / np.outer(n, n)
        cls.groups = os.path.join(WORK, "groups.csv")
        with open(cls.groups, "w") as f:
            f.write("\n".join(rows) + "\n")
        cls.all = cls.listing("all", cls.models)
        run("map", "--base", cls.base_dir, "--models", cls.all, "--groups", cls.groups, "--out",
            os.path.join(WORK, "exact"), "--bootstrap", "0", "--quiet")
        with open(os.path.join(WORK, "exact", "clusters.json")) as f:
            cls.exact_clusters = json.load(f)["dataset"]["methods"]["spectral"]["clusters"]

    @staticmethod
    def listing(name, models):
        path = os.path.join(WORK, name + ".txt")
        with open(path, "w") as f:
            f.write("\n".join(models) + "\n")
        return path

    def groups_for(self, listing):
        with open(listing) as f:
            models = f.read().split()
        path = listing[:-4] + "-groups.csv"
        with open(path, "w") as f:
            f.write("model,dataset\n" + "".join(f"{m},{os.path.basename(m).split('-')[0]}\n" for m in models))
        return path

    def sketch_map(self, name, models, seed, k=K):
        out = os.path.join(WORK, name)
        run("map", "--base", self.base_dir, "--models", models, "--groups", self.groups_for(models), "--sketch", str(k),
            "--sketch-seed", str(seed), "--out", out, "--bootstrap", "0", "--quiet")
        return out

    def test_errors_stay_within_the_bound_and_the_clusters_are_the_exact_ones(self):
        worst = 0
        for seed in range(5):
            out = self.sketch_map(f"sketch-{seed}", self.all, seed)
            got, bound = matrix(os.path.join(out, "similarity.csv")), matrix(os.path.join(out, "sketch_bound.csv"))
            error = np.abs(got - self.cosine)
            off = ~np.eye(len(self.models), dtype=bool)
            self.assertTrue(np.all(error[off] <= bound[off]), f"seed {seed}: {np.max(error[off] - bound[off])}")
            np.testing.assert_allclose(np.diag(got), 1, atol=1e-12)
            worst = max(worst, float(np.max(error[off] / bound[off])))
            with open(os.path.join(out, "clusters.json")) as f:
                clusters = json.load(f)["dataset"]["methods"]["spectral"]
            self.assertEqual(clusters["accuracy"], 1.0)
            # the same partition as the exact map's (labels may be numbered otherwise)
            pairs = {(a, b) for a, b in zip(clusters["clusters"], self.exact_clusters)}
            self.assertEqual(len(pairs), 4, (clusters["clusters"], self.exact_clusters))
        print(f"largest error / bound over five seeds: {worst:.3f}")

    def test_update_equals_the_map_made_at_once(self):
        once = self.sketch_map("once", self.all, 7)
        first = self.sketch_map("grown", self.listing("first", self.models[:10]), 7)
        run("map", "--update", first, "--models", self.listing("rest", self.models[10:]), "--groups", self.groups,
            "--bootstrap", "0", "--quiet")
        with open(os.path.join(first, "sketch.json")) as f:
            record = json.load(f)
        self.assertEqual(record["sketched_now"], 6)
        for i in range(len(self.models)):
            name = f"{i:05d}.safetensors"
            with open(os.path.join(once, "sketches", name), "rb") as a, open(os.path.join(first, "sketches", name),
                                                                              "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        for name in ("similarity.csv", "sketch_bound.csv", "embedding.csv"):
            with open(os.path.join(once, name)) as a, open(os.path.join(first, name)) as b:
                self.assertEqual(a.read(), b.read(), name)

    def test_bad_sketches_are_refused(self):
        a = self.sketch_map("seed-a", self.listing("pair", self.models[:4]), 1)
        b = self.sketch_map("seed-b", self.listing("pair", self.models[:4]), 2)
        c = self.sketch_map("k-c", self.listing("pair", self.models[:4]), 1, k=2048)
        rest = self.listing("more", self.models[4:6])
        for other, expected in ((b, "made with seed 2; this map sketches with seed 1"),
                                (c, "made with K = 2048; this map sketches with K = 4096")):
            shutil.copy(os.path.join(other, "sketches", "00001.safetensors"), os.path.join(a, "sketches",
                                                                                           "00001.safetensors"))
            r = run("map", "--update", a, "--models", rest, "--bootstrap", "0", "--quiet", check=False)
            self.assertNotEqual(r.returncode, 0)
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn("00001.safetensors: " + expected, lines[0])
        r = run("map", "--base", self.base_dir, "--models", rest, "--sketch", "1000", "--out",
                os.path.join(WORK, "k1000"), check=False)
        self.assertIn("K must be a power of two", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(WORK, "k1000")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
