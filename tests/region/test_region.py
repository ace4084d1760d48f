#!/usr/bin/python3
"""basin interpolate / hull / plane on tiny models the test creates: the numbers the commands
write are checked against independent computations (numpy on the safetensors files, `basin probe`
on the endpoints, PB recomputed from the written losses); caching and parallel workers give the
same scores; bad input gives one clear error and no output folder.

usage: test_region.py BASIN WORK"""
import csv
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
import numpy as np  # noqa: E402
from keyword_data import write_keyword_split  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]

WORDS = {"pos": "good great fine".split(), "neg": "bad awful poor".split()}
FILLER = "the a movie plot was quite very and it is this that so".split()


run = make_run(BASIN)


def make_split(path, n, seed):
    write_keyword_split(path, n, seed, WORDS, FILLER, labels=["pos", "neg"])


def body(folder):
    tensors = ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]
    # the body: embeddings and layers (no head, no pooler: features are read before it)
    return {k: v.astype(np.float64) for k, v in tensors.items()
            if not k.startswith(("classifier", "lm_head")) and ".pooler." not in k}


def flat(folder):
    t = body(folder)
    return np.concatenate([t[k].ravel() for k in sorted(t)])


def load_json(path):
    with open(path) as f:
        return json.load(f)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def read_scores(path):
    with open(path) as f:
        return list(csv.DictReader(f))


class Region(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        tok = os.path.join(WORK, "tokenizer.json")
        write_text(tok, json.dumps(ref.tokenizer_json("bert", sum(WORDS.values(), []) + FILLER)))
        cls.models = []
        for seed in (1, 2, 3, 4, 5):
            out = os.path.join(WORK, f"m{seed}")
            run("init-model", "--out", out, "--tokenizer", tok, "--hidden", "16", "--layers", "2", "--heads", "2",
                "--intermediate", "32", "--max-positions", "24", "--seed", str(seed))
            cls.models.append(out)
        cls.data = []
        for name, seed in (("first", 1), ("second", 2)):
            d = os.path.join(WORK, "data", name)
            os.makedirs(d)
            make_split(os.path.join(d, "train.jsonl"), 80, seed)
            make_split(os.path.join(d, "test.jsonl"), 40, seed + 10)
            cls.data.append(d)
        cls.common = ["--data", ",".join(cls.data), "--no-cache", "--threads", "1", "--quiet"]

    def test_interpolation_endpoints_match_probe_and_cache_and_jobs_agree(self):
        a, b = self.models[0], self.models[1]
        out = os.path.join(WORK, "interp")
        cached = ["--data", ",".join(self.data), "--cache", os.path.join(WORK, "cache"), "--threads", "1", "--quiet"]
        r = run("interpolate", a, b, "--alphas", "0:1:5", "--out", out, *cached)
        self.assertIn("mean loss/acc", r.stdout)
        rows = read_scores(os.path.join(out, "scores.csv"))
        self.assertEqual(len(rows), 5 * 2)
        for alpha, model in (("0", a), ("1", b)):
            for d in self.data:
                name = os.path.basename(d)
                row = next(x for x in rows if x["alpha"] == alpha and x["dataset"] == name)
                p = json.loads(run("probe", "--model", model, "--train", os.path.join(d, "train.jsonl"), "--test",
                                   os.path.join(d, "test.jsonl"), "--no-cache", "--threads", "1", "--json").stdout)
                self.assertAlmostEqual(float(row["loss"]), p["test_loss"], delta=1e-5, msg=f"alpha {alpha} {name}")
                self.assertAlmostEqual(float(row["accuracy"]), p["test_accuracy"], delta=1e-9)
        for stem in ("interpolation-loss", "interpolation-accuracy"):
            for ext in (".svg", ".pdf"):
                self.assertGreater(os.path.getsize(os.path.join(out, stem + ext)), 500)
        summary = load_json(os.path.join(out, "summary.json"))
        self.assertEqual(summary["times"]["points_built"], 5)
        # the second run reads every feature from the cache and builds nothing
        again = os.path.join(WORK, "interp-again")
        run("interpolate", a, b, "--alphas", "0:1:5", "--out", again, *cached)
        summary = load_json(os.path.join(again, "summary.json"))
        self.assertEqual(summary["times"]["points_from_cache"], 5)
        self.assertEqual(summary["times"]["build_seconds"], 0)
        self.assertEqual(read_scores(os.path.join(again, "scores.csv"))[0]["features_cached"], "1")
        # two workers without the cache: the same numbers
        jobs = os.path.join(WORK, "interp-jobs")
        run("interpolate", a, b, "--alphas", "0:1:5", "--out", jobs, "--jobs", "2", "--no-cache",
            "--data", ",".join(self.data), "--threads", "2", "--quiet")
        for x, y in zip(rows, read_scores(os.path.join(jobs, "scores.csv"))):
            self.assertAlmostEqual(float(x["loss"]), float(y["loss"]), delta=1e-6)

    def test_probe_sample_limits(self):
        cache = ["--data", ",".join(self.data), "--cache", os.path.join(WORK, "cache-limits"), "--threads", "1", "--quiet"]
        a, b = self.models[0], self.models[1]
        full = os.path.join(WORK, "limits-full")
        run("interpolate", a, b, "--alphas", "0,1", "--out", full, *cache)
        small = os.path.join(WORK, "limits-small")
        run("interpolate", a, b, "--alphas", "0,1", "--out", small, "--probe-train-limit", "30", "--probe-test-limit",
            "20", *cache)
        s = load_json(os.path.join(small, "summary.json"))
        for d in s["datasets"]:
            self.assertEqual(d["train_examples"], 30)
            self.assertLessEqual(d["test_examples"], 20)
            self.assertIn("sample 30/20", d["sample"])
        self.assertEqual(s["times"]["points_from_cache"], 0, "a sample is not the whole split: no cache hit")
        again = os.path.join(WORK, "limits-full-again")
        run("interpolate", a, b, "--alphas", "0,1", "--out", again, *cache)
        self.assertEqual(read_scores(os.path.join(again, "scores.csv"))[0]["loss"],
                         read_scores(os.path.join(full, "scores.csv"))[0]["loss"])
        self.assertNotEqual(read_scores(os.path.join(small, "scores.csv"))[0]["loss"],
                            read_scores(os.path.join(full, "scores.csv"))[0]["loss"])

    def test_extrapolation_points(self):
        out = os.path.join(WORK, "extra")
        run("interpolate", self.models[0], self.models[1], "--alphas", "0,1", "--extrapolate", "--out", out,
            "--max-iterations", "50", *self.common)
        alphas = load_json(os.path.join(out, "summary.json"))["alphas"]
        expected = sorted(set(np.round(np.concatenate([np.logspace(0, np.log10(32), 10),
                                                       1 - np.logspace(0, np.log10(32), 10)]), 12)))
        np.testing.assert_allclose(alphas, expected, rtol=0, atol=1e-9)

    def test_plane_coordinates_match_numpy(self):
        a, b, c = self.models[:3]
        out = os.path.join(WORK, "plane")
        run("plane", a, b, c, "--grid", "4x3", "--margin", "0.1", "--out", out, "--max-iterations", "50", *self.common)
        s = load_json(os.path.join(out, "summary.json"))
        fa, fb, fc = flat(a), flat(b), flat(c)
        u = (fb - fa) / np.linalg.norm(fb - fa)
        v = (fc - fa) - np.dot(fc - fa, u) * u
        v /= np.linalg.norm(v)
        expected = {"A": (0, 0), "B": (np.dot(fb - fa, u), np.dot(fb - fa, v)), "C": (np.dot(fc - fa, u), np.dot(fc - fa, v))}
        for m in s["markers"]:
            ex, ey = expected[m["model"]]
            self.assertAlmostEqual(m["u"], ex, delta=1e-6 * np.linalg.norm(fb - fa))
            self.assertAlmostEqual(m["v"], ey, delta=1e-6 * np.linalg.norm(fb - fa))
        rows = read_scores(os.path.join(out, "grid.csv"))
        self.assertEqual(len(rows), 4 * 3 * 2)
        # each grid point's weights put it at (u, v) of the plane: sum w_k M_k = A + u * e_u + v * e_v
        for row in rows[:6]:
            w = [float(row[k]) for k in ("weight_A", "weight_B", "weight_C")]
            self.assertAlmostEqual(sum(w), 1.0, delta=1e-9)
            point = w[0] * fa + w[1] * fb + w[2] * fc
            want = fa + float(row["u"]) * u + float(row["v"]) * v
            self.assertLess(np.abs(point - want).max(), 1e-6 * np.abs(fa).max())
        # the grid spans the models' bounding box widened by the margin
        us = [expected[k][0] for k in "ABC"]
        span = max(us) - min(us)
        self.assertAlmostEqual(s["grid"]["u"][0], min(us) - 0.1 * span, delta=1e-6 * span)
        for ext in (".svg", ".pdf"):
            self.assertTrue(os.path.exists(os.path.join(out, "plane-mean" + ext)))
        with open(os.path.join(out, "plane-first.svg")) as f:
            svg = f.read()
        for label in (">A<", ">B<", ">C<"):
            self.assertIn(label, svg)

    def test_random_plane_around_one_model(self):
        out = os.path.join(WORK, "random-plane")
        run("plane", self.models[0], "--random-plane", "3", "--grid", "3", "--out", out, "--max-iterations", "50",
            *self.common)
        rows = read_scores(os.path.join(out, "grid.csv"))
        self.assertEqual(len(rows), 9 * 2)
        centre = [r for r in rows if r["i"] == "1" and r["j"] == "1" and r["dataset"] == "first"][0]
        p = json.loads(run("probe", "--model", self.models[0], "--train", os.path.join(self.data[0], "train.jsonl"),
                           "--test", os.path.join(self.data[0], "test.jsonl"), "--no-cache", "--max-iterations", "50",
                           "--threads", "1", "--json").stdout)
        self.assertAlmostEqual(float(centre["loss"]), p["test_loss"], delta=1e-5)  # (0, 0) is A itself

    def test_hull_pb_and_random_directions(self):
        group = os.path.join(WORK, "group.txt")
        write_text(group, "\n".join(self.models[1:4]) + "\n")
        outside = os.path.join(WORK, "outside.txt")
        write_text(outside, self.models[4] + "\n")
        out = os.path.join(WORK, "hull")
        r = run("hull", "--group", group, "--outside", outside, "--random", "2", "--base", self.models[0],
                "--samples", "4", "--seed", "9", "--out", out, "--max-iterations", "50", *self.common)
        self.assertIn("PB(In', In)", r.stdout)
        rows = read_scores(os.path.join(out, "scores.csv"))
        sets = {}
        for row in rows:
            sets.setdefault((row["set"], row["dataset"]), []).append(float(row["loss"]))
        self.assertEqual(len(sets[("In", "first")]), 3)
        self.assertEqual(len(sets[("In'", "first")]), 4)
        self.assertEqual(len(sets[("Ex", "first")]), 3)  # one outside model + two random directions
        s = load_json(os.path.join(out, "summary.json"))
        wins, pairs = 0, 0
        for d in ("first", "second"):
            x, y = sets[("In'", d)], sets[("In", d)]
            pb = sum(a <= b for a in x for b in y) / (len(x) * len(y))
            self.assertAlmostEqual(s["pb"][d]["PB(In', In)"]["value"], pb, delta=1e-12)
            self.assertEqual(s["pb"][d]["PB(In', In)"]["pairs"], 12)
            wins += pb * 12
            pairs += 12
        self.assertAlmostEqual(s["pb"]["all datasets"]["PB(In', In)"]["value"], wins / pairs, delta=1e-12)
        # hull weights on the simplex; random Ex points at the mean task-vector norm from the base
        for row in rows:
            if row["set"] == "In'":
                w = [float(v) for v in row["weights"].split()]
                self.assertAlmostEqual(sum(w), 1.0, delta=1e-5)
        base = flat(self.models[0])
        norms = [np.linalg.norm(flat(m) - base) for m in self.models[1:4]]
        self.assertAlmostEqual(s["random_norm"], float(np.mean(norms)), delta=1e-6 * np.mean(norms))
        for ext in (".svg", ".pdf"):
            self.assertTrue(os.path.exists(os.path.join(out, "hull-mean" + ext)))

    def test_bad_input(self):
        a, b = self.models[0], self.models[1]
        out = os.path.join(WORK, "bad")
        odd = os.path.join(WORK, "odd")
        tok = os.path.join(WORK, "tokenizer.json")
        run("init-model", "--out", odd, "--tokenizer", tok, "--hidden", "16", "--layers", "2", "--heads", "2",
            "--intermediate", "24", "--max-positions", "24", "--overwrite")
        nodata = os.path.join(WORK, "data", "notrain")
        os.makedirs(nodata, exist_ok=True)
        make_split(os.path.join(nodata, "test.jsonl"), 5, 1)
        weights = os.path.join(WORK, "weights.csv")
        write_text(weights, "0.5,0.5,0\n0.5,0.4,0.2\n")
        group = os.path.join(WORK, "group3.txt")
        write_text(group, "\n".join(self.models[1:4]) + "\n")
        cases = [
            (["interpolate", a, odd, "--out", out, *self.common], "intermediate.dense.weight"),
            (["interpolate", a, b, "--alphas", "0:1:x", "--out", out, *self.common], "'x' is not a number"),
            (["interpolate", a, b, "--alphas", "0:1", "--out", out, *self.common], "start:stop:count"),
            (["plane", a, b, self.models[2], "--grid", "0x5", "--out", out, *self.common], "at least 1"),
            (["plane", a, b, self.models[2], "--grid", "100x100", "--out", out, *self.common], "--force"),
            (["plane", a, b, a, "--grid", "2", "--out", out, *self.common], "one line"),
            (["interpolate", a, b, "--out", out, "--data", nodata, "--quiet"], "no train split"),
            (["hull", "--group", group, "--weights", weights, "--random", "1", "--base", a, "--out", out,
              *self.common], "sum to 1.1"),
            (["hull", "--group", group, "--out", out, *self.common], "no Ex models"),
            (["hull", "--group", group, "--random", "1", "--out", out, *self.common], "--random needs --base"),
        ]
        for args, message in cases:
            r = run(*args, check=False)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stderr}")
            self.assertIn(message, r.stderr, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(out), f"{args} left an output folder")


if __name__ == "__main__":
    unittest.main(verbosity=2)
