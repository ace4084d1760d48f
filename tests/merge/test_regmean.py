#!/usr/bin/python3
"""basin merge --method regmean against a reference built from the independent forward pass
(tests/reference/hf_reference.py captures every linear layer's inputs at the real tokens): three
tiny BERT models, each with its own training data. Every linear weight equals
(sum_i G_i)^-1 sum_i G_i W_i^T with G_i = X_i^T X_i, its off-diagonal scaled by alpha; every other
tensor is the mean. At alpha = 1 the merge is the least-squares optimum, so its layer outputs are
closer to each model's own than the plain mean's are. One model merges to itself. Bad input: one
line, nothing written.

usage: test_regmean.py BASIN WORK"""
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
WORDS = "alpha beta gamma delta omega sigma kappa lambda theta zeta".split()
run = make_run(BASIN)


def weights_of(folder):
    t = ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]
    return {k.removeprefix("bert."): v.astype(np.float64) for k, v in t.items()
            if v.dtype.kind == "f" and not k.startswith("classifier")}


def write_data(folder, seed, n=40):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    texts = [" ".join(rng.choice(WORDS[seed % 3:], size=rng.integers(2, 9))) for _ in range(n)]
    with open(os.path.join(folder, "train.jsonl"), "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"text": t, "label": str(i % 2)}) + "\n")
    return texts


def layer_inputs(model, texts, vocab):
    ids = [[vocab["[CLS]"]] + [vocab[w] for w in t.split()] + [vocab["[SEP]"]] for t in texts]
    capture = {}
    hidden, _, _ = ref.encode(model, ids, capture=capture)
    capture["bert.pooler.dense"] = hidden[:, 0]
    return {k.removeprefix("bert."): v.detach().numpy().astype(np.float64) for k, v in capture.items()}


def regmean_reference(members, datas, vocab, alpha):
    grams, targets, sums = {}, {}, {}
    for model, texts in zip(members, datas):
        w = weights_of(model)
        inputs = layer_inputs(model, texts, vocab)
        for name, value in w.items():
            layer = name.rsplit(".", 1)[0]
            if name.endswith(".weight") and layer in inputs:
                x = inputs[layer]
                g = x.T @ x
                g = alpha * g + (1 - alpha) * np.diag(np.diag(g))
                grams[name] = grams.get(name, 0) + g
                targets[name] = targets.get(name, 0) + g @ value.T
            else:
                sums[name] = sums.get(name, 0) + value
    out = {n: np.linalg.solve(grams[n], targets[n]).T for n in grams}
    out.update({n: v / len(members) for n, v in sums.items()})
    return out, set(grams)


class RegMean(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        cls.vocab, cls.members = tiny_word_models(run, WORK, WORDS, (1, 2, 3))
        cls.data, cls.texts = [], []
        for seed in (1, 2, 3):
            d = os.path.join(WORK, "data", f"d{seed}")
            cls.texts.append(write_data(d, seed))
            cls.data.append(d)

    def merge(self, name, *extra, members=None, data=None):
        out = os.path.join(WORK, "out-" + name)
        run("merge", "--method", "regmean", "--models", ",".join(members or self.members), "--data",
            ",".join(data or self.data), "--examples", "1000", "--out", out, "--quiet", *extra)
        return out

    def test_matches_the_reference(self):
        for alpha in (0.9, 0.0):
            out = self.merge(f"a{alpha}", "--alpha", str(alpha))
            got = weights_of(out)
            want, solved = regmean_reference(self.members, self.texts, self.vocab, alpha)
            self.assertEqual(set(got), set(want))
            self.assertGreater(len(solved), 10)
            worst = 0.0
            for name in want:
                scale = max(np.abs(want[name]).max(), 1e-6)
                worst = max(worst, np.abs(got[name] - want[name]).max() / scale)
                self.assertLess(np.abs(got[name] - want[name]).max() / scale, 1e-4, f"alpha {alpha} {name}")
            print(f"alpha {alpha}: max |basin - reference| / max |value| = {worst:.1e}")
            with open(os.path.join(out, "basin_merge.json")) as f:
                provenance = json.load(f)
            self.assertEqual(provenance["method"], "regmean")
            self.assertEqual(provenance["parameters"]["alpha"], alpha)
            self.assertEqual(provenance["tensors_solved"], len(solved))
            self.assertEqual([m["examples"] for m in provenance["models"]], [40, 40, 40])

    def test_least_squares_beats_the_mean(self):
        got = weights_of(self.merge("a1", "--alpha", "1"))
        mean = {n: np.mean([weights_of(m)[n] for m in self.members], 0) for n in got}
        better = 0
        for model, texts in zip(self.members, self.texts):
            w = weights_of(model)
            for layer, x in layer_inputs(model, texts, self.vocab).items():
                name = layer + ".weight"
                own = x @ w[name].T
                e_regmean = np.sum((x @ got[name].T - own) ** 2)
                e_mean = np.sum((x @ mean[name].T - own) ** 2)
                better += e_regmean <= e_mean * (1 + 1e-9)
        # summed over the models it is the optimum; per model and layer it is nearly always better
        for layer in layer_inputs(self.members[0], self.texts[0], self.vocab):
            name = layer + ".weight"
            total = lambda W: sum(np.sum((x @ W.T - x @ weights_of(m)[name].T) ** 2)
                                  for m, t in zip(self.members, self.texts)
                                  for x in [layer_inputs(m, t, self.vocab)[layer]])
            self.assertLessEqual(total(got[name]), total(mean[name]) * (1 + 1e-6), name)
        self.assertGreater(better, 0)

    def test_one_model_is_itself(self):
        got = weights_of(self.merge("one", members=self.members[:1], data=self.data[:1]))
        own = weights_of(self.members[0])
        for name, v in got.items():
            np.testing.assert_allclose(v, own[name], rtol=1e-4, atol=1e-5, err_msg=name)

    def test_bad_input(self):
        cases = [(["--data", self.data[0]], "1 data folders for 3 models"),
                 (["--alpha", "2", "--data", ",".join(self.data)], "--alpha"),
                 ([], "needs --data"),
                 (["--data", ",".join(self.data[:2] + [os.path.join(WORK, "nowhere")])], "not found")]
        for extra, message in cases:
            out = os.path.join(WORK, "out-bad")
            r = subprocess.run([BASIN, "merge", "--method", "regmean", "--models", ",".join(self.members), "--out",
                                out, *extra], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, extra)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(message, r.stderr, extra)
            self.assertFalse(os.path.exists(out), extra)


if __name__ == "__main__":
    unittest.main(verbosity=2)
