#!/usr/bin/python3
"""basin merge --config: mergekit's YAML configurations (written here in mergekit's documented
layout, not copied) against a numpy reference of mergekit's formulas (generalized task
arithmetic: per-model weights and densities, magnitude or random sparsification with L1
rescaling, sign consensus, normalize, lambda; linear; slerp; gradients over layers and filters on
tensor names), on small three-layer checkpoints; bad input: one line naming the file and key, no
output.

usage: test_merge_config.py BASIN WORK"""
import json
import os
import shutil
import sys
import unittest

BASIN, WORK = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_merge as tm  # noqa: E402  (its checkpoint writer, reader and DARE mask; it trims sys.argv)
import numpy as np  # noqa: E402

run = tm.run
LAYERS = 3
SHAPES = {"embeddings.word_embeddings.weight": (40, 8)}
for _l in range(LAYERS):
    SHAPES[f"encoder.layer.{_l}.attention.self.query.weight"] = (8, 8)
    SHAPES[f"encoder.layer.{_l}.attention.self.query.bias"] = (8,)
    SHAPES[f"encoder.layer.{_l}.intermediate.dense.weight"] = (16, 8)


def model(folder, seed, base=None, scale=0.1):
    rng = np.random.default_rng(seed)
    tensors = {n: ((base[n] if base is not None else np.zeros(s, np.float32)) + scale * rng.standard_normal(s))
               .astype(np.float32) for n, s in SHAPES.items()}
    tm.write_model(folder, tensors)
    return tensors


def depth(name):
    """mergekit's t: layer l of L at l / (L - 1), tensors outside the layers at 0."""
    parts = name.split(".")
    if "layer" in parts:
        return int(parts[parts.index("layer") + 1]) / (LAYERS - 1)
    return 0.0


def gradient(values, t):
    if not isinstance(values, list):
        return values
    scaled = t * (len(values) - 1)
    i0 = int(scaled)
    i1 = min(len(values) - 1, i0 + 1)
    return (1 - (scaled - i0)) * values[i0] + (scaled - i0) * values[i1]


def magnitude_mask(tau, density):
    if density >= 1:
        return np.ones(tau.shape, bool)
    k = max(1, int(density * tau.size))
    flat = np.abs(tau).ravel()
    keep = np.zeros(tau.size, bool)
    keep[np.argsort(-flat, kind="stable")[:k]] = True
    return keep.reshape(tau.shape)


def outliers_mask(tau, density, gamma):
    """breadcrumbs: sorted by magnitude, the floor(gamma n) largest and the smallest dropped."""
    if density >= 1:
        return np.ones(tau.shape, bool)
    n = tau.size
    target, top = int(density * n), int(gamma * n)
    bottom = max(0, n - target - top)
    keep = np.zeros(n, bool)
    keep[np.argsort(np.abs(tau).ravel(), kind="stable")[bottom:bottom + target]] = True
    return keep.reshape(tau.shape)


def della_mask(tau, density, epsilon, seed, model, name):
    """DELLA's MagPrune: per row, rank r (ascending magnitude, ties by position) kept with probability
    (density - epsilon) + 2 epsilon r / (columns - 1), drawn as basin draws DARE's masks."""
    rows = tau.reshape(1, -1) if tau.ndim == 1 else tau
    ranks = np.empty(rows.shape, np.float64)
    for r in range(rows.shape[0]):
        ranks[r, np.argsort(np.abs(rows[r]), kind="stable")] = np.arange(rows.shape[1])
    p = (density - epsilon) + ranks / max(rows.shape[1] - 1, 1) * 2 * epsilon
    return tm.dare_mask(seed, model, name, tau.size, 1 - p.ravel()).reshape(tau.shape)


def gta_reference(name, base, models, weights, densities, sparsify, consensus, normalize, rescale, lam, seed=0,
                  gammas=None, epsilons=None):
    """mergekit's generalized task arithmetic for one tensor, in float64."""
    b = base[name].astype(np.float64)
    deltas = []
    for i, m in enumerate(models):
        tau = (m[name] - base[name]).astype(np.float64)  # float32 difference, as mergekit
        if sparsify == "magnitude":
            keep = magnitude_mask(tau, densities[i])
        elif sparsify == "outliers":
            keep = outliers_mask(tau, densities[i], gammas[i])
        elif sparsify == "della" and densities[i] < 1:
            keep = della_mask(tau, densities[i], epsilons[i], seed, i, name)
        elif sparsify == "random" and densities[i] < 1:
            keep = tm.dare_mask(seed, i, name, tau.size, 1 - densities[i]).reshape(tau.shape)
        else:
            keep = np.ones(tau.shape, bool)
        kept = tau * keep
        if rescale and sparsify != "none" and densities[i] < 1:
            before, after = np.abs(tau).sum(), np.abs(kept).sum()
            if before >= 1e-7 and after >= 1e-7:
                kept = kept * (before / after)
        deltas.append(kept * weights[i])
    d, w = np.array(deltas), np.array(weights, np.float64).reshape((-1,) + (1,) * b.ndim)
    if consensus:
        vote = d.sum(0) if consensus == "sum" else np.sign(d).sum(0)
        majority = np.where(vote >= 0, 1.0, -1.0)
        mask = np.sign(d) == majority
        mixed = (d * mask).sum(0)
        divisor = (w * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = d.sum(0)
        divisor = np.broadcast_to(w.sum(0), b.shape).copy()
        divisor[np.abs(divisor) < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    return b + lam * mixed


def load(path):
    with open(path) as f:
        return json.load(f)


def yaml_models(paths, params):
    lines = ["models:"]
    for p, extra in zip(paths, params):
        lines.append(f"  - model: {p}")
        if extra:
            lines.append("    parameters:")
            lines.extend(f"      {k}: {json.dumps(v)}" for k, v in extra.items())
    return "\n".join(lines) + "\n"


class Configs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "zoo")
        shutil.rmtree(cls.root, ignore_errors=True)
        cls.base = model(os.path.join(cls.root, "base"), 0, scale=0.05)
        cls.models = [model(os.path.join(cls.root, f"m{i}"), i + 1, cls.base) for i in range(3)]
        cls.paths = [f"m{i}" for i in range(3)]  # relative to the configuration's folder

    def merge(self, name, text, expect_ok=True):
        config = os.path.join(self.root, name + ".yaml")
        with open(config, "w") as f:
            f.write(text)
        out = os.path.join(self.root, "out-" + name)
        shutil.rmtree(out, ignore_errors=True)
        r = run("merge", "--config", config, "--out", out, "--quiet", check=expect_ok)
        return (tm.read(out) if expect_ok else r), config, out

    def check_gta(self, method, weights, densities, sparsify, consensus, normalize, rescale, lam, extra="",
                  gammas=None, epsilons=None):
        params = [{"weight": w, "density": d} for w, d in zip(weights, densities)]
        for p, g in zip(params, gammas or []):
            p["gamma"] = g
        for p, e in zip(params, epsilons or []):
            p["epsilon"] = e
        text = (f"merge_method: {method}\nbase_model: base\n" + yaml_models(self.paths, params) +
                f"parameters:\n  lambda: {lam}\n{extra}dtype: float32\n")
        got, _, out = self.merge(method, text)
        provenance = load(os.path.join(out, "basin_merge.json"))
        seed = provenance["parameters"]["seed"]
        worst = 0.0
        for name in SHAPES:
            want = gta_reference(name, self.base, self.models, weights, densities, sparsify, consensus, normalize,
                                 rescale, lam, seed, gammas, epsilons)
            scale = np.abs(want).max()
            worst = max(worst, np.abs(got[name] - want).max() / scale)
        print(f"{method}: max |basin - reference| / max |value| = {worst:.1e}")
        self.assertLess(worst, 1e-6, method)
        self.assertEqual(provenance["parameters"]["sparsify"], sparsify)
        self.assertEqual(provenance["parameters"]["consensus"], consensus or "none")
        return got

    def test_task_arithmetic(self):
        self.check_gta("task_arithmetic", [1.0, 0.5, -0.3], [1, 1, 1], "none", None, False, False, 0.7)

    def test_ties(self):
        got = self.check_gta("ties", [1.0, 0.8, 0.6], [0.5, 0.3, 0.7], "magnitude", "sum", True, False, 1.0)
        # with normalize: false the agreeing sum is not divided
        self.check_gta("ties", [1.0, 0.8, 0.6], [0.5, 0.3, 0.7], "magnitude", "sum", False, False, 1.0,
                       extra="  normalize: false\n")
        self.assertTrue(np.isfinite(got["encoder.layer.0.attention.self.query.weight"]).all())

    def test_dare_ties_and_dare_linear(self):
        self.check_gta("dare_ties", [1.0, 0.7, 0.4], [0.6, 0.5, 0.9], "random", "sum", False, True, 1.0)
        self.check_gta("dare_linear", [0.5, 0.3, 0.2], [0.6, 0.5, 0.9], "random", None, False, True, 1.0)

    def test_breadcrumbs_and_breadcrumbs_ties(self):
        self.check_gta("breadcrumbs", [1.0, 0.6, 0.5], [0.6, 0.5, 0.7], "outliers", None, False, False, 1.0,
                       gammas=[0.05, 0.1, 0.02])
        self.check_gta("breadcrumbs_ties", [1.0, 0.6, 0.5], [0.6, 0.5, 0.7], "outliers", "sum", False, False, 1.0,
                       gammas=[0.05, 0.1, 0.02])

    def test_della_and_della_linear(self):
        self.check_gta("della", [1.0, 0.6, 0.5], [0.6, 0.5, 0.7], "della", "sum", True, True, 1.0,
                       epsilons=[0.1, 0.2, 0.15])
        self.check_gta("della_linear", [1.0, 0.6, 0.5], [0.6, 0.5, 0.7], "della", None, False, True, 1.0,
                       epsilons=[0.1, 0.2, 0.15])

    def test_linear_with_a_gradient_and_filters(self):
        # weights of m0: a gradient over the layers for the query tensors, 0.5 elsewhere; m1 and m2: 1
        text = ("merge_method: linear\n" + yaml_models(self.paths, [
            {"weight": [{"filter": "query", "value": [0.2, 0.8]}, {"value": 0.5}]}, {"weight": 1.0}, {"weight": 1.0}]) +
            "parameters:\n  normalize: true\n")
        got, _, _ = self.merge("linear", text)
        for name in SHAPES:
            w0 = gradient([0.2, 0.8], depth(name)) if "query" in name else 0.5
            w = np.array([w0, 1.0, 1.0])
            want = sum(w[i] * self.models[i][name].astype(np.float64) for i in range(3)) / w.sum()
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7, err_msg=name)

    def test_slerp_with_a_gradient_of_t(self):
        text = ("merge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n  - model: m0\n"
                "parameters:\n  t: [0, 1]\n")
        got, _, _ = self.merge("slerp", text)
        # layer 0 and the embeddings at t = 0: the base bit for bit; the last layer at t = 1: m0
        np.testing.assert_array_equal(got["encoder.layer.0.attention.self.query.weight"],
                                      self.base["encoder.layer.0.attention.self.query.weight"])
        np.testing.assert_array_equal(got["embeddings.word_embeddings.weight"],
                                      self.base["embeddings.word_embeddings.weight"])
        np.testing.assert_array_equal(got["encoder.layer.2.attention.self.query.weight"],
                                      self.models[0]["encoder.layer.2.attention.self.query.weight"])
        name = "encoder.layer.1.intermediate.dense.weight"  # t = 0.5
        a, b = self.base[name].astype(np.float64).ravel(), self.models[0][name].astype(np.float64).ravel()
        theta = np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
        want = (np.sin(0.5 * theta) * a + np.sin(0.5 * theta) * b) / np.sin(theta)
        np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-5, atol=1e-6)

    def test_the_command_line_gta_is_the_configuration_s_ties(self):
        params = [{"weight": 1.0, "density": 0.4}] * 3
        got, _, _ = self.merge("ties-cli", "merge_method: ties\nbase_model: base\n" + yaml_models(self.paths, params))
        out = os.path.join(self.root, "out-gta-cli")
        run("merge", "--method", "gta", "--models", ",".join(os.path.join(self.root, p) for p in self.paths), "--base",
            os.path.join(self.root, "base"), "--sparsify", "magnitude", "--consensus", "sum", "--normalize",
            "--density", "0.4", "--out", out, "--quiet", "--overwrite")
        cli = tm.read(out)
        for name in SHAPES:
            np.testing.assert_array_equal(cli[name], got[name], err_msg=name)
        run("merge", "--method", "gta", "--models", ",".join(os.path.join(self.root, p) for p in self.paths), "--base",
            os.path.join(self.root, "base"), "--sparsify", "magnitude", "--consensus", "sum", "--no-normalize",
            "--density", "0.4", "--out", out, "--quiet", "--overwrite")
        self.assertFalse(load(os.path.join(out, "basin_merge.json"))["parameters"]["normalize"])

    def test_model_stock_takes_mergekit_s_t_unclamped(self):
        got, _, _ = self.merge("model_stock", "merge_method: model_stock\nbase_model: base\n" +
                               yaml_models(self.paths, [None] * 3))
        negative = 0
        for name in SHAPES:
            b = self.base[name].astype(np.float64).ravel()
            taus = [(m[name] - self.base[name]).astype(np.float64).ravel() for m in self.models]
            cos = np.mean([np.clip(taus[i] @ taus[j] / max(np.linalg.norm(taus[i]) * np.linalg.norm(taus[j]), 1e-6), -1, 1)
                           for i in range(3) for j in range(i + 1, 3)])
            t = 3 * cos / (1 + 2 * cos)
            negative += t < 0
            want = t * np.mean([m[name].astype(np.float64).ravel() for m in self.models], 0) + (1 - t) * b
            np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=name)
        self.assertGreater(negative, 0, "some tensor has t < 0 here, which --method model-stock would clamp")

    def test_spherical_and_sce_configurations_are_the_methods(self):
        # each configuration gives, bit for bit, what the method gives from the command line
        dirs = [os.path.join(self.root, p) for p in self.paths]
        base = os.path.join(self.root, "base")
        cases = [
            ("multislerp", "merge_method: multislerp\n" + yaml_models(self.paths, [{"weight": w} for w in (1, 2, 3)]),
             ["--method", "multislerp", "--models", ",".join(dirs), "--weights", "1,2,3"]),
            ("karcher", "merge_method: karcher\n" + yaml_models(self.paths, [None] * 3) +
             "parameters:\n  max_iter: 4\n  tol: 1e-7\n",
             ["--method", "karcher", "--models", ",".join(dirs), "--max-iter", "4", "--tol", "1e-7"]),
            ("nuslerp", "merge_method: nuslerp\nbase_model: base\n" +
             yaml_models(self.paths[:2], [{"weight": 1.0}, {"weight": 3.0}]),
             ["--method", "nuslerp", "--models", ",".join(dirs[:2]), "--base", base, "--t", "0.75"]),
            ("sce", "merge_method: sce\nbase_model: base\n" + yaml_models(self.paths, [None] * 3) +
             "parameters:\n  select_topk: 0.4\n",
             ["--method", "sce", "--models", ",".join(dirs), "--base", base, "--select-topk", "0.4"]),
        ]
        for name, text, cli in cases:
            got, _, out = self.merge("cfg-" + name, text)
            direct = os.path.join(self.root, "cli-" + name)
            shutil.rmtree(direct, ignore_errors=True)
            run("merge", *cli, "--out", direct, "--quiet")
            want = tm.read(direct)
            for t in SHAPES:
                np.testing.assert_allclose(got[t], want[t], rtol=2e-7, atol=1e-9, err_msg=f"{name} {t}")
            self.assertEqual(load(os.path.join(out, "basin_merge.json"))["method"], name)

    def test_provenance_keeps_the_configuration(self):
        text = "merge_method: task_arithmetic\nbase_model: base\n" + yaml_models(self.paths, [{"weight": 1.0}] * 3)
        _, config, out = self.merge("provenance", text)
        provenance = load(os.path.join(out, "basin_merge.json"))
        self.assertEqual(provenance["config"]["text"], text)
        self.assertEqual(provenance["config"]["merge_method"], "task_arithmetic")
        self.assertEqual(provenance["config"]["file"], config)
        self.assertEqual(provenance["method"], "gta")


class BadConfigs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "bad")
        shutil.rmtree(cls.root, ignore_errors=True)
        base = model(os.path.join(cls.root, "base"), 0, scale=0.05)
        for i in range(2):
            model(os.path.join(cls.root, f"m{i}"), i + 1, base)

    def expect(self, text, *contains):
        config = os.path.join(self.root, "config.yaml")
        with open(config, "w") as f:
            f.write(text)
        out = os.path.join(self.root, "out")
        shutil.rmtree(out, ignore_errors=True)
        r = run("merge", "--config", config, "--out", out, "--quiet", check=False)
        self.assertNotEqual(r.returncode, 0, text)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for c in ("config.yaml",) + contains:
            self.assertIn(c, lines[0])
        self.assertFalse(os.path.exists(out))

    ok_models = "models:\n  - model: m0\n    parameters:\n      weight: 1.0\n  - model: m1\n    parameters:\n      weight: 1.0\n"

    def test_unsupported_key_method_and_parameter(self):
        self.expect("slices:\n  - sources: []\nmerge_method: ties\n", "slices", "not supported by basin")
        self.expect("merge_method: passthrough\nbase_model: base\n" + self.ok_models, "merge_method", "passthrough")
        self.expect("merge_method: nuslerp\nbase_model: base\n" + self.ok_models +
                    "parameters:\n  nuslerp_flatten: maybe\n", "parameters.nuslerp_flatten", "true or false")
        self.expect("merge_method: multislerp\n" + self.ok_models + "parameters:\n  eps: 0.1\n",
                    "parameters.eps", "not a parameter of multislerp")
        self.expect("merge_method: ties\nbase_model: base\n" + self.ok_models + "parameters:\n  epsilon: 0.1\n",
                    "parameters.epsilon", "not a parameter of ties")
        self.expect("merge_method: ties\nbase_model: base\nmodels:\n  - model: m0\n    parameters:\n      t: 0.3\n",
                    "models[0].parameters.t", "not a per-model parameter")
        self.expect("merge_method: ties\nbase_model: base\n" + self.ok_models + "tokenizer_source: union\n",
                    "tokenizer_source", "union")

    def test_gradient_filter_and_values(self):
        self.expect("merge_method: ties\nbase_model: base\n" + self.ok_models +
                    "parameters:\n  lambda: [1, 0.9, 0.8, 0.7, 0.6]\n", "parameters.lambda", "a gradient of 5 values for 3 layers")
        self.expect("merge_method: ties\nbase_model: base\n" + self.ok_models +
                    "parameters:\n  lambda:\n    - filter: self_attn\n      value: 0.5\n    - value: 1\n",
                    "parameters.lambda", "filter 'self_attn' matches no tensor")
        self.expect("merge_method: ties\nbase_model: base\n" + self.ok_models + "parameters:\n  lambda: many\n",
                    "parameters.lambda", "expected a number")
        self.expect("merge_method: ties\nbase_model: base\nmodels:\n  - model: m0\n  - model: m1\n",
                    "models[0]", "has no weight")

    def test_model_references(self):
        self.expect("merge_method: ties\nbase_model: FacebookAI/roberta-base\n" + self.ok_models,
                    "base_model", "hub id")
        self.expect("merge_method: ties\nbase_model: base\nmodels:\n  - model: m0+my-lora\n", "models[0].model", "LoRA")
        self.expect("merge_method: ties\nbase_model: base\nmodels:\n  - model: nowhere\n", "models[0].model", "not found")
        self.expect("merge_method: ties\nmodels: [\n", "not valid YAML")


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v"])
