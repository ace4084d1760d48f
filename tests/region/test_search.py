#!/usr/bin/python3
"""basin search on planted problems whose optimum is known. Three tiny models the test creates are
the group; a target dataset is labelled by a linear rule on the first-token features of a planted
point P (computed by the independent reference forward pass, tests/reference): P = one member
(the optimum is a corner of the simplex) or P = a mixture of two members (the optimum is on an
edge). The search must find weights near P's with a selection loss no worse than any starting
point, and write the point as a checkpoint equal to that combination, with provenance; the rows
(centroid, TIES, DARE, greedy soup, best member) and the win counts must agree with the written
scores. Bad input: one line, no output folder.

usage: test_search.py BASIN WORK"""
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
from basin_runner import make_run, tiny_word_models  # noqa: E402
import numpy as np  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]
WORDS = "red green blue cyan gold gray pink teal lime navy plum rose sand snow wine jade".split()
run = make_run(BASIN)


def body_of(folder):
    return ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]


def write_mixture(folder, members, weights):
    """P = sum_i w_i member_i over every tensor (the planted point), with the first member's files."""
    os.makedirs(folder, exist_ok=True)
    tensors = [body_of(m) for m in members]
    mixed = {k: sum(w * t[k].astype(np.float64) for w, t in zip(weights, tensors)).astype(np.float32)
             if v.dtype.kind == "f" else v for k, v in tensors[0].items()}
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), mixed)
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(members[0], f), os.path.join(folder, f))


def planted_target(folder, planted, vocab, seed, train=240, test=120):
    """Sentences of random words, labelled by the side of a random hyperplane through the median of
    the planted point's first-token features."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(train + test)]
    ids = [[vocab["[CLS]"]] + [vocab[w] for w in t.split()] + [vocab["[SEP]"]] for t in texts]
    f = ref.features(planted, ids).detach().numpy().astype(np.float64)
    f = (f - f.mean(0)) / (f.std(0) + 1e-9)
    score = f @ rng.standard_normal(f.shape[1])
    labels = np.where(score > np.median(score), "hi", "lo")
    os.makedirs(folder, exist_ok=True)
    for name, rows in (("train", range(train)), ("test", range(train, train + test))):
        with open(os.path.join(folder, name + ".jsonl"), "w") as out:
            for i in rows:
                out.write(json.dumps({"text": texts[i], "label": str(labels[i])}) + "\n")
    return folder


def read_rows(out):
    with open(os.path.join(out, "search.csv")) as f:
        return {r["row"]: r for r in csv.DictReader(f)}


def weights_of(row):
    return np.array([float(x) for x in row["weights"].split()]) if row["weights"] else None


class Search(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        cls.vocab, cls.members = tiny_word_models(run, WORK, WORDS, (1, 2, 3), family="roberta")
        (cls.base,) = tiny_word_models(run, os.path.join(WORK, "base-of"), WORDS, (9,), family="roberta")[1]
        cls.group = os.path.join(WORK, "group.txt")
        with open(cls.group, "w") as f:
            f.write("\n".join(cls.members) + "\n")
        cls.common = ["--group", cls.group, "--no-cache", "--threads", "2", "--quiet", "--l2", "1e-3"]

    def search(self, name, planted_weights, *extra):
        planted = os.path.join(WORK, f"planted-{name}")
        write_mixture(planted, self.members, planted_weights)
        data = planted_target(os.path.join(WORK, "data", name), planted, self.vocab, seed=len(name))
        out = os.path.join(WORK, f"out-{name}")
        r = run("search", "--target", data, "--out", out, *self.common, *extra)
        return out, r, planted, data

    def check_common(self, out, name, budget):
        rows = read_rows(out)
        searched = rows["searched"]
        with open(os.path.join(out, "trials.csv")) as f:
            trials = list(csv.DictReader(f))
        self.assertLessEqual(len(trials), budget)
        losses = [float(t["selection_loss"]) for t in trials]
        # the searched point is the trial of lowest selection loss, no worse than every starting point
        self.assertAlmostEqual(float(searched["selection_loss"]), min(losses), delta=1e-12)
        for start in ("centroid", "best-member"):
            self.assertLessEqual(float(searched["selection_loss"]), float(rows[start]["selection_loss"]) + 1e-12)
        w = weights_of(searched)
        self.assertAlmostEqual(w.sum(), 1.0, delta=1e-9)
        self.assertTrue((w >= -1e-12).all())
        # the checkpoint is that combination of the members, with the search in its provenance
        point = os.path.join(out, name, "searched")
        got = body_of(point)
        members = [body_of(m) for m in self.members]
        for k, v in got.items():
            if v.dtype.kind != "f":
                continue
            want = sum(wi * m[k].astype(np.float64) for wi, m in zip(w, members))
            np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-6, err_msg=k)
        with open(os.path.join(point, "basin_merge.json")) as f:
            provenance = json.load(f)
        self.assertEqual(provenance["method"], "weighted")
        self.assertEqual(provenance["selection"]["search"]["target"], name)
        self.assertEqual(provenance["selection"]["search"]["trials"], len(trials))
        # greedy soup: uniform over the members it kept
        soup = weights_of(rows["greedy-soup"])
        kept = soup[soup > 0]
        np.testing.assert_allclose(kept, 1.0 / len(kept), rtol=1e-12)
        # the best member is the member of lowest test loss: the search's row against it is honest
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        for against, counts in summary["wins"].items():
            a, b = float(searched["loss"]), float(rows[against]["loss"])
            self.assertEqual((counts["wins"], counts["ties"], counts["losses"]),
                             (int(a < b), int(a == b), int(a > b)), against)
        return rows, w

    def test_corner_optimum(self):
        out, r, planted, data = self.search("corner", [0, 1, 0], "--budget", "20")
        self.assertIn("searched", r.stdout)
        rows, w = self.check_common(out, "corner", 20)
        self.assertGreater(w[1], 0.8, f"the planted member 2 alone; found {w}")
        self.assertEqual(weights_of(rows["best-member"]).tolist(), [0, 1, 0])

    def test_mixture_optimum_and_baselines(self):
        out, r, planted, data = self.search("edge", [0.5, 0.5, 0], "--budget", "30", "--base", self.base)
        rows, w = self.check_common(out, "edge", 30)
        self.assertLess(np.abs(w - [0.5, 0.5, 0]).sum(), 0.35, f"planted 0.5 / 0.5 / 0; found {w}")
        # the planted point's own probe (fitted on the whole training split) bounds the search's test loss
        p = json.loads(run("probe", "--model", planted, "--train", os.path.join(data, "train.jsonl"), "--test",
                           os.path.join(data, "test.jsonl"), "--no-cache", "--threads", "2", "--l2", "1e-3",
                           "--json").stdout)
        self.assertLess(float(rows["searched"]["loss"]), p["test_loss"] + 0.15)
        self.assertLess(float(rows["searched"]["loss"]), float(rows["centroid"]["loss"]))
        # with a base, TIES and DARE merges are rows, written once, and equal to basin merge's
        for name in ("ties", "dare"):
            self.assertIn(name, rows)
            self.assertIsNone(weights_of(rows[name]))
            self.assertTrue(os.path.exists(os.path.join(out, name, "basin_merge.json")))
        again = os.path.join(WORK, "ties-again")
        run("merge", "--method", "ties", "--models", ",".join(self.members), "--base", self.base, "--density", "0.2",
            "--out", again, "--quiet")
        for k, v in body_of(again).items():
            self.assertEqual(v.tobytes(), body_of(os.path.join(out, "ties"))[k].tobytes(), k)

    def test_bad_input(self):
        data = planted_target(os.path.join(WORK, "data", "bad"), self.members[0], self.vocab, seed=5)
        cases = [(["--budget", "0"], "budget"),
                 (["--held-out", "1.5"], "held-out share"),
                 (["--held-out", "0"], "held-out share")]
        for extra, message in cases:
            out = os.path.join(WORK, "out-bad")
            r = subprocess.run([BASIN, "search", "--target", data, "--out", out, *self.common, *extra],
                               capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, extra)
            self.assertIn(message, r.stderr, extra)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(out), extra)
        group = os.path.join(WORK, "bad-group.txt")
        with open(group, "w") as f:
            f.write(self.members[0] + "\n" + os.path.join(WORK, "missing") + "\n")
        r = subprocess.run([BASIN, "search", "--target", data, "--out", os.path.join(WORK, "out-bad"), "--group",
                            group, "--no-cache", "--quiet"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("missing", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
