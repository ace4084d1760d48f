#!/usr/bin/python3
"""basin merge against numpy reference implementations on small checkpoints the test writes:
mean, weighted, task arithmetic, TIES, DARE (the masks recomputed from the documented
counter-based draw), SLERP and Model Stock; F16 and sharded inputs, sharded output; heads;
--exclude by group with the provenance hashes; bad input.

usage: test_merge.py BASIN WORK"""
import csv
import hashlib
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

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]
M64 = (1 << 64) - 1

SHAPES = {"embeddings.word_embeddings.weight": (50, 12), "encoder.layer.0.attention.self.query.weight": (12, 12),
          "encoder.layer.0.attention.self.query.bias": (12,), "encoder.layer.0.output.dense.weight": (12, 24)}
HEAD = {"classifier.out_proj.weight": (3, 12), "classifier.out_proj.bias": (3,)}


run = make_run(BASIN)


def write_model(folder, tensors, dtype="F32", config=None):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype=dtype)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config or {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta",
                             "id2label": {"0": "a", "1": "b", "2": "c"}}, f)
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        f.write("{}")
    return folder


def random_model(folder, seed, base=None, scale=0.1, head=True, dtype="F32"):
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in SHAPES.items():
        start = base[name] if base is not None else np.zeros(shape, np.float32)
        tensors[name] = (start + scale * rng.standard_normal(shape)).astype(np.float32)
    if head:
        for name, shape in HEAD.items():
            tensors[name] = rng.standard_normal(shape).astype(np.float32)
    write_model(folder, tensors, dtype)
    return tensors


def read(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        out = {}
        for file in files:
            out.update(ref.read_safetensors(os.path.join(folder, file))[0])
        return out
    return ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def splitmix_array(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def fnv1a(text):
    h = 1469598103934665603
    for c in text.encode():
        h = ((h ^ c) * 1099511628211) & M64
    return h


def dare_mask(seed, model, name, n, drop):
    stream = splitmix(splitmix(seed ^ splitmix(model)) ^ fnv1a(name))
    with np.errstate(over="ignore"):
        draws = splitmix_array(np.uint64(stream) + np.arange(n, dtype=np.uint64))
    u = (draws >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return u >= drop


class Merge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        cls.base = random_model(os.path.join(WORK, "base"), 0, scale=1.0, head=False)
        cls.dirs, cls.models = [], []
        for seed in (1, 2, 3):
            d = os.path.join(WORK, f"m{seed}")
            cls.models.append(random_model(d, seed, base=cls.base))
            cls.dirs.append(d)
        cls.base_dir = os.path.join(WORK, "base")

    def out(self, name):
        return os.path.join(WORK, "out", name)

    def merge(self, name, *args):
        run("merge", "--out", self.out(name), "--quiet", *args)
        return read(self.out(name))

    def tau(self, i, name):
        return self.models[i][name].astype(np.float32) - self.base[name]

    def test_mean_of_identical_models_is_bitwise_that_model(self):
        copies = []
        for k in range(3):
            d = os.path.join(WORK, f"copy{k}")
            shutil.copytree(self.dirs[0], d, dirs_exist_ok=True)
            copies.append(d)
        got = self.merge("identical", "--models", ",".join(copies))
        for name in SHAPES:
            self.assertEqual(got[name].tobytes(), self.models[0][name].tobytes(), name)
        self.assertFalse(any(name in got for name in HEAD), "heads are dropped by default")
        with open(os.path.join(self.out("identical"), "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["architectures"], ["RobertaModel"])
        self.assertNotIn("id2label", config)

    def test_mean_and_weighted_match_numpy(self):
        got = self.merge("mean2", "--models", ",".join(self.dirs[:2]))
        for name in SHAPES:
            want = (self.models[0][name].astype(np.float64) + self.models[1][name]) / 2
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7)
        got = self.merge("weighted", "--method", "weighted", "--models", ",".join(self.dirs), "--weights", "1,2,5")
        for name in SHAPES:
            want = sum(w * self.models[i][name].astype(np.float64) for i, w in enumerate((1, 2, 5))) / 8
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7)

    def test_task_arithmetic(self):
        got = self.merge("ta0", "--method", "task-arithmetic", "--base", self.base_dir, "--models", ",".join(self.dirs),
                         "--lambda", "0")
        for name in SHAPES:
            self.assertEqual(got[name].tobytes(), self.base[name].tobytes(), name)
        got = self.merge("ta", "--method", "task-arithmetic", "--base", self.base_dir, "--models", ",".join(self.dirs),
                         "--lambda", "0.7")
        for name in SHAPES:
            want = self.base[name] + 0.7 * sum(self.tau(i, name).astype(np.float64) for i in range(3))
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-6)

    def test_ties_matches_reference(self):
        density, lam = 0.3, 0.8
        got = self.merge("ties", "--method", "ties", "--base", self.base_dir, "--models", ",".join(self.dirs),
                         "--density", str(density), "--lambda", str(lam))
        for name in SHAPES:
            taus = np.stack([self.tau(i, name).ravel() for i in range(3)])
            keep = int(np.ceil(density * taus.shape[1]))
            trimmed = np.zeros_like(taus)
            for i in range(3):  # keep entries at least as large as the keep-th largest magnitude
                threshold = np.sort(np.abs(taus[i]))[::-1][keep - 1]
                trimmed[i] = np.where(np.abs(taus[i]) >= threshold, taus[i], 0)
            sign = np.sign(trimmed.astype(np.float64).sum(0))
            agree = (np.sign(trimmed) == sign) & (trimmed != 0)
            count = agree.sum(0)
            merged = np.where(count > 0, (trimmed * agree).astype(np.float64).sum(0) / np.maximum(count, 1), 0)
            want = self.base[name].ravel() + lam * merged
            np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-6, atol=1e-6, err_msg=name)

    def test_dare_matches_reference(self):
        drop, seed = 0.6, 17
        got = self.merge("dare", "--method", "dare", "--base", self.base_dir, "--models", ",".join(self.dirs),
                         "--drop", str(drop), "--seed", str(seed))
        kept = []
        for name in SHAPES:
            total = np.zeros(int(np.prod(SHAPES[name])))
            for i in range(3):
                mask = dare_mask(seed, i, name, total.size, drop)
                kept.extend(mask.tolist())
                total += np.where(mask, self.tau(i, name).ravel().astype(np.float64) / (1 - drop), 0)
            np.testing.assert_allclose(got[name].ravel(), self.base[name].ravel() + total, rtol=1e-6, atol=1e-6,
                                       err_msg=name)
        self.assertAlmostEqual(float(np.mean(kept)), 1 - drop, delta=0.05)
        other = self.merge("dare-other-seed", "--method", "dare", "--base", self.base_dir, "--models",
                           ",".join(self.dirs), "--drop", str(drop), "--seed", str(seed + 1))
        self.assertFalse(np.array_equal(other[next(iter(SHAPES))], got[next(iter(SHAPES))]))

    def test_slerp_endpoints_and_unit_norm(self):
        for t, i in (("0", 0), ("1", 1)):
            got = self.merge(f"slerp{t}", "--method", "slerp", "--models", ",".join(self.dirs[:2]), "--t", t)
            for name in SHAPES:
                self.assertEqual(got[name].tobytes(), self.models[i][name].tobytes(), f"t={t} {name}")
        rng = np.random.default_rng(5)
        units = []
        for k in range(2):
            tensors = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
            tensors = {n: (v / np.linalg.norm(v)).astype(np.float32) for n, v in tensors.items()}
            units.append(write_model(os.path.join(WORK, f"unit{k}"), tensors))
        got = self.merge("slerp-unit", "--method", "slerp", "--models", ",".join(units), "--t", "0.3")
        a, b = read(units[0]), read(units[1])
        for name in SHAPES:
            self.assertAlmostEqual(float(np.linalg.norm(got[name].astype(np.float64))), 1.0, delta=1e-5)
            x, y = a[name].ravel().astype(np.float64), b[name].ravel().astype(np.float64)
            theta = np.arccos(np.clip(x @ y / np.linalg.norm(x) / np.linalg.norm(y), -1, 1))
            want = (np.sin(0.7 * theta) * x + np.sin(0.3 * theta) * y) / np.sin(theta)
            np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-5, atol=1e-6)

    def test_model_stock_matches_reference(self):
        got = self.merge("stock", "--method", "model-stock", "--base", self.base_dir, "--models", ",".join(self.dirs))
        for name in SHAPES:
            taus = [self.tau(i, name).ravel().astype(np.float64) for i in range(3)]
            cos = np.mean([taus[i] @ taus[j] / np.linalg.norm(taus[i]) / np.linalg.norm(taus[j])
                           for i in range(3) for j in range(i + 1, 3)])
            t = np.clip(3 * cos / (1 + 2 * cos), 0, 1)
            mean = np.mean([self.models[i][name].astype(np.float64) for i in range(3)], axis=0)
            np.testing.assert_allclose(got[name], t * mean + (1 - t) * self.base[name], rtol=1e-6, atol=1e-6)

    # ---- the spherical methods and SCE, each against a numpy transcription of its definition on the
    # full tensors (basin computes them from inner products alone)

    def multislerp_reference(self, vectors, weights, eps=1e-8):
        w = np.asarray(weights, np.float64) / np.sum(weights)
        norms = np.array([np.linalg.norm(v) for v in vectors])
        units = [v / (n + eps) for v, n in zip(vectors, norms)]
        mean = sum(wi * u for wi, u in zip(w, units))
        mean = mean / np.linalg.norm(mean)
        tangent = sum(wi * (u - (u @ mean) * mean) for wi, u in zip(w, units))
        tn = np.linalg.norm(tangent) + eps
        return (mean * np.cos(tn) + tangent * np.sin(tn) / tn) * float(norms @ w)

    def test_multislerp_matches_reference(self):
        weights = (1.0, 2.0, 0.5)
        got = self.merge("multislerp", "--method", "multislerp", "--models", ",".join(self.dirs), "--weights",
                         ",".join(map(str, weights)))
        based = self.merge("multislerp-base", "--method", "multislerp", "--models", ",".join(self.dirs), "--weights",
                           ",".join(map(str, weights)), "--base", self.base_dir)
        for name in SHAPES:
            xs = [self.models[i][name].ravel().astype(np.float64) for i in range(3)]
            np.testing.assert_allclose(got[name].ravel(), self.multislerp_reference(xs, weights), rtol=1e-5,
                                       atol=1e-6, err_msg=name)
            taus = [self.tau(i, name).ravel().astype(np.float64) for i in range(3)]
            want = self.base[name].ravel() + self.multislerp_reference(taus, weights)
            np.testing.assert_allclose(based[name].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=name)
            # on the sphere through the weighted mean norm: the norm of the result is that mean
            mean_norm = np.dot(np.array(weights) / sum(weights), [np.linalg.norm(t) for t in taus])
            self.assertAlmostEqual(np.linalg.norm(based[name].ravel() - self.base[name].ravel()), mean_norm,
                                   delta=1e-4 * mean_norm)

    def test_karcher_matches_reference(self):
        got = self.merge("karcher", "--method", "karcher", "--models", ",".join(self.dirs))
        for name in SHAPES:
            xs = [self.models[i][name].ravel().astype(np.float64) for i in range(3)]
            norms = [np.linalg.norm(x) for x in xs]
            units = [x / n for x, n in zip(xs, norms)]
            mean = sum(units) / 3
            mean /= np.linalg.norm(mean)
            for _ in range(10):
                tangent = np.zeros_like(mean)
                for u in units:
                    dot = np.clip(mean @ u, -1, 1)
                    theta = np.arccos(dot)
                    if theta >= 1e-5:
                        tangent += theta / np.sin(theta) * (u - dot * mean) / 3
                tn = np.linalg.norm(tangent)
                if tn < 1e-5:
                    break
                mean = np.cos(tn) * mean + np.sin(tn) * tangent / tn
                mean /= np.linalg.norm(mean)
            # the fixed point: the tangent of the mean vanishes (it is the Karcher mean)
            residual = sum(np.arccos(np.clip(mean @ u, -1, 1)) / np.sin(np.arccos(np.clip(mean @ u, -1, 1))) *
                           (u - (mean @ u) * mean) for u in units)
            self.assertLess(np.linalg.norm(residual), 1e-4, name)
            np.testing.assert_allclose(got[name].ravel(), np.mean(norms) * mean, rtol=1e-5, atol=1e-6,
                                       err_msg=name)

    def test_nuslerp_matches_reference(self):
        got = self.merge("nuslerp", "--method", "nuslerp", "--models", ",".join(self.dirs[:2]), "--weights", "1,3",
                         "--base", self.base_dir)
        for name in SHAPES:
            a, b = self.tau(0, name).ravel().astype(np.float64), self.tau(1, name).ravel().astype(np.float64)
            theta = np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))
            want = self.base[name].ravel() + (np.sin(0.25 * theta) * a + np.sin(0.75 * theta) * b) / np.sin(theta)
            np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=name)
        # per row (vectors along the last dimension) and per column (along the first), as mergekit's
        # nuslerp_flatten: false and nuslerp_row_wise: true
        for vectors in ("rows", "columns"):
            got = self.merge("nuslerp-" + vectors, "--method", "nuslerp", "--models", ",".join(self.dirs[:2]),
                             "--weights", "1,3", "--base", self.base_dir, "--vectors", vectors)
            for name in SHAPES:
                a, b = self.tau(0, name).astype(np.float64), self.tau(1, name).astype(np.float64)
                if vectors == "columns":
                    a, b = a.T, b.T  # a 1-D tensor is one vector either way
                a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
                cos = np.clip((a2 * b2).sum(-1) / np.linalg.norm(a2, axis=-1) / np.linalg.norm(b2, axis=-1), -1, 1)
                theta = np.arccos(cos)[:, None]
                mixed = ((np.sin(0.25 * theta) * a2 + np.sin(0.75 * theta) * b2) / np.sin(theta)).reshape(a.shape)
                want = self.base[name] + (mixed.T if vectors == "columns" else mixed)
                np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6, err_msg=f"{vectors} {name}")
        ends = self.merge("nuslerp-end", "--method", "nuslerp", "--models", ",".join(self.dirs[:2]), "--t", "1")
        for name in SHAPES:
            np.testing.assert_allclose(ends[name], self.models[1][name], rtol=1e-6, atol=1e-7, err_msg=name)

    def test_sce_matches_reference(self):
        for topk in (1.0, 0.3):
            got = self.merge(f"sce{topk}", "--method", "sce", "--models", ",".join(self.dirs), "--base",
                             self.base_dir, "--select-topk", str(topk))
            for name in SHAPES:
                taus = np.stack([self.tau(i, name).ravel() for i in range(3)]).astype(np.float64)
                if topk < 1:
                    var = taus.var(axis=0)
                    k = int(np.count_nonzero(var) * topk)
                    mask = np.zeros(var.size, bool)
                    mask[np.argsort(-var, kind="stable")[:k]] = True
                    taus = taus * mask
                weights = (taus ** 2).mean(axis=1)
                weights = weights / weights.sum()
                majority = np.where(taus.sum(0) >= 0, 1, -1)
                erase = np.sign(taus) == majority
                ew = weights[:, None] * erase
                want = self.base[name].ravel() + (taus * ew).sum(0) / np.maximum(ew.sum(0), 1e-6)
                np.testing.assert_allclose(got[name].ravel(), want, rtol=1e-5, atol=1e-6, err_msg=f"{topk} {name}")
            if topk < 1:  # the provenance records the share asked for
                with open(os.path.join(self.out(f"sce{topk}"), "basin_merge.json")) as f:
                    self.assertEqual(json.load(f)["parameters"]["select_topk"], topk)

    def test_f16_sharded_inputs_and_sharded_output(self):
        f16 = os.path.join(WORK, "m1-f16")
        write_model(f16, self.models[1], dtype="F16")
        sharded = os.path.join(WORK, "m2-sharded")
        run("merge", "--models", self.dirs[2], "--keep-head", "--shard-size", "2K", "--out", sharded, "--quiet")
        self.assertTrue(os.path.exists(os.path.join(sharded, "model.safetensors.index.json")))
        got = self.merge("mixed", "--models", ",".join([self.dirs[0], f16, sharded]), "--dtype", "F32",
                         "--shard-size", "3K")
        self.assertTrue(os.path.exists(os.path.join(self.out("mixed"), "model.safetensors.index.json")))
        f16_values = read(f16)
        for name in SHAPES:
            want = (self.models[0][name].astype(np.float64) + f16_values[name] + self.models[2][name]) / 3
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7)

    def test_keep_head(self):
        got = self.merge("heads", "--models", ",".join(self.dirs[:2]), "--keep-head")
        want = (self.models[0]["classifier.out_proj.weight"].astype(np.float64) + self.models[1]["classifier.out_proj.weight"]) / 2
        np.testing.assert_allclose(got["classifier.out_proj.weight"], want, rtol=1e-6)

    def test_bert_pooler_is_merged_like_the_body(self):
        """BERT's pooler is body (transformers keeps it in BertModel): a mean merge of classifiers
        keeps it as the element-wise mean, drops only the classifier, and a fine-tune from the
        centroid starts from that pooler (BitFit trains biases only, so its weight stays)."""
        words = "good bad fine awful great".split()
        dirs, weights = [], []
        for seed in (21, 22, 23):
            d = os.path.join(WORK, f"bert{seed}")
            weights.append(ref.make_model(d, "bert", seed=seed, words=words, labels=("neg", "pos")))
            dirs.append(d)
        out = self.out("bert-centroid")
        r = run("merge", "--method", "mean", "--models", ",".join(dirs), "--out", out)
        self.assertIn("2 head tensors dropped", r.stdout)
        got = read(out)
        self.assertNotIn("classifier.weight", got)
        for name in ("bert.pooler.dense.weight", "bert.pooler.dense.bias"):
            want = sum(w[name].astype(np.float64) for w in weights) / 3
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7, err_msg=name)
        data = os.path.join(WORK, "bert-train.jsonl")
        with open(data, "w") as f:
            for i in range(16):
                f.write(json.dumps({"text": f"{words[i % 5]} {words[(i * 3) % 5]}", "label": ["neg", "pos"][i % 2]}) + "\n")
        tuned = os.path.join(WORK, "bert-from-centroid")
        run("finetune", "--model", out, "--train", data, "--out", tuned, "--overwrite", "--mode", "bitfit",
            "--epochs", "1", "--batch-size", "8", "--lr", "1e-2", "--threads", "1")
        after = read(tuned)
        self.assertEqual(after["bert.pooler.dense.weight"].tobytes(), got["bert.pooler.dense.weight"].tobytes(),
                         "the fine-tune did not start from the centroid's pooler")
        self.assertFalse(np.array_equal(after["bert.pooler.dense.bias"], got["bert.pooler.dense.bias"]),
                         "BitFit should have trained the pooler's bias")
        # a pooler that not every input has (a BERT classifier beside one saved without it) is dropped
        no_pooler = os.path.join(WORK, "bert-no-pooler")
        tensors = {k: v for k, v in weights[0].items() if "pooler" not in k}
        write_model(no_pooler, tensors, config=json.load(open(os.path.join(dirs[0], "config.json"))))
        r = run("merge", "--method", "mean", "--models", f"{dirs[1]},{no_pooler}", "--out", self.out("mixed-pooler"))
        self.assertIn("4 head tensors dropped", r.stdout)
        self.assertNotIn("bert.pooler.dense.weight", read(self.out("mixed-pooler")))

    def test_exclude_by_group_and_provenance_hashes(self):
        groups = os.path.join(WORK, "groups.csv")
        with open(groups, "w") as f:
            f.write("model,dataset\n" + f"{self.dirs[0]},spam\n{self.dirs[1]},topic\n{self.dirs[2]},spam\n")
        lst = os.path.join(WORK, "models.txt")
        with open(lst, "w") as f:
            f.write("\n".join(self.dirs) + "\n")
        got = self.merge("loo", "--models", lst, "--groups", groups, "--exclude", "dataset=spam")
        for name in SHAPES:
            self.assertEqual(got[name].tobytes(), self.models[1][name].tobytes())
        with open(os.path.join(self.out("loo"), "basin_merge.json")) as f:
            prov = json.load(f)
        hashes = [m["sha256"] for m in prov["models"]]
        self.assertEqual(hashes, [sha256(os.path.join(self.dirs[1], "model.safetensors"))])
        self.assertEqual(len(prov["selection"]["excluded_models"]), 2)
        r = run("merge", "--models", lst, "--groups", groups, "--exclude", "dataset=spam", "--exclude",
                "dataset=topic", "--out", self.out("none"), check=False)
        self.assertIn("removes every model", r.stderr)

    def test_bad_input(self):
        other = dict(SHAPES)
        other["embeddings.word_embeddings.weight"] = (60, 12)  # another vocabulary
        rng = np.random.default_rng(9)
        odd = write_model(os.path.join(WORK, "odd"), {n: rng.standard_normal(s).astype(np.float32) for n, s in other.items()})
        heads = dict(self.models[0])
        heads["classifier.out_proj.weight"] = np.zeros((5, 12), np.float32)
        heads["classifier.out_proj.bias"] = np.zeros(5, np.float32)
        five = write_model(os.path.join(WORK, "five-labels"), heads)
        out = self.out("bad")
        cases = [
            (["--models", f"{self.dirs[0]},{odd}"], "embeddings.word_embeddings.weight has shape [60, 12]"),
            (["--models", f"{self.dirs[0]},{five}", "--keep-head"], "classifier.out_proj.weight has shape [5, 12]"),
            (["--method", "slerp", "--models", self.dirs[0]], "two models"),
            (["--method", "weighted", "--models", ",".join(self.dirs), "--weights", "1,2"], "2 weights for 3 models"),
            (["--method", "ties", "--models", ",".join(self.dirs)], "--base"),
            (["--method", "median", "--models", ",".join(self.dirs)], "unknown merge method"),
            (["--models", f"{self.dirs[0]},{self.dirs[0]}"], "given twice"),
            (["--models", ",".join(self.dirs), "--exclude", "dataset=spam"], "--exclude needs --groups"),
        ]
        for args, message in cases:
            r = run("merge", *args, "--out", out, check=False)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stderr}")
            self.assertIn(message, r.stderr, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(out), f"{args} left an output folder")
        inner = os.path.join(self.dirs[0], "merged")
        r = run("merge", "--models", ",".join(self.dirs), "--out", inner, check=False)
        self.assertIn("inside the input model folder", r.stderr)
        self.assertFalse(os.path.exists(inner))


if __name__ == "__main__":
    unittest.main(verbosity=2)
