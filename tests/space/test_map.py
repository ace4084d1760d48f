#!/usr/bin/python3
"""basin map against direct computations in numpy and scikit-learn, on synthetic checkpoints
with planted clusters that the test builds (encoder-style, GPT-2-style and sharded Llama-style
names; F32, F16 and BF16).

usage: test_map.py BASIN WORK"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import unittest
import warnings
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
warnings.simplefilter("ignore", ResourceWarning)  # short-lived reads in assertions


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


run = make_run(BASIN)


def mpirun_environment():
    """mpirun as root, with more ranks than cores."""
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1")


def limit_that_cuts_into_chunks(map_with_limit, models, most_chunk):
    """A --memory-limit just above what map needs, so that the stream is cut into chunks of at most
    most_chunk parameters. map_with_limit(limit) runs map and returns (CompletedProcess, summary or
    None). A process's size varies by a few MB from run to run (more under MPI), so the limit is
    stepped up while map finds it too small, and down by the excess while the chunk is too large
    (the chunk and the one read ahead take 2 x (models + 1) x 4 bytes per parameter here, F32)."""
    r, _ = map_with_limit("1M")
    needed = [float(x) for x in re.findall(r"at least ([0-9.]+) MB", r.stderr)]
    assert needed, "map names the memory it needs: " + r.stderr
    limit = int((max(needed) + 0.3) * (1 << 20))
    for _ in range(12):
        r, summary = map_with_limit(str(limit))
        if r.returncode != 0:
            if "too small" not in r.stderr:
                return r, summary
            limit += 1 << 19
        elif summary["chunk_parameters"] > most_chunk:
            limit -= (summary["chunk_parameters"] - most_chunk // 2) * 2 * (models + 1) * 4
        else:
            return r, summary
    return r, summary


def encoder_shapes(vocab=1500, hidden=48, layers=3):
    shapes = {"embeddings.word_embeddings.weight": (vocab, hidden), "embeddings.position_embeddings.weight": (64, hidden),
              "embeddings.LayerNorm.weight": (hidden,), "embeddings.LayerNorm.bias": (hidden,)}
    for layer in range(layers):
        p = f"encoder.layer.{layer}."
        shapes.update({p + "attention.self.query.weight": (hidden, hidden), p + "attention.self.query.bias": (hidden,),
                       p + "intermediate.dense.weight": (4 * hidden, hidden), p + "intermediate.dense.bias": (4 * hidden,),
                       p + "output.LayerNorm.weight": (hidden,)})
    return shapes


def write_model(folder, tensors, dtype="F32", shards=1, extra=None):
    """A checkpoint folder; with shards > 1, model-0000i-of-0000n.safetensors plus the index."""
    os.makedirs(folder, exist_ok=True)
    tensors = dict(tensors)
    if extra:
        tensors.update(extra)
    names = list(tensors)
    if shards == 1:
        ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype=dtype)
        return
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        ref.write_safetensors(os.path.join(folder, file), part, dtype=dtype)
        weight_map.update({n: file for n in part})
    write_text(os.path.join(folder, "model.safetensors.index.json"), json.dumps({"metadata": {}, "weight_map": weight_map}))


def stored(folder):
    """The tensors as basin reads them (after the dtype round trip), float64."""
    out = {}
    files = [f for f in sorted(os.listdir(folder)) if f.endswith(".safetensors")]
    for f in files:
        tensors, _, _ = ref.read_safetensors(os.path.join(folder, f))
        out.update({k: v.astype(np.float64) for k, v in tensors.items()})
    return out


def read_matrix(path):
    rows = list(csv.reader(open(path)))
    return rows[0][1:], np.array([[float(x) for x in r[1:]] for r in rows[1:]])


def cosine(vectors):
    norms = np.linalg.norm(vectors, axis=1)
    return vectors @ vectors.T / np.outer(norms, norms)


def distances(vectors):
    return np.sqrt(np.maximum(0, ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)))


def build_zoo(root, shapes, groups, per_group, spread, noise, seed, dtypes=("F32", "F16", "BF16"), shard_every=5,
              head_labels=True, mixed=None):
    """base + group centre + noise per model; mixed = {model index: (other group, weight of the other)}.
    Returns (base dir, model dirs, group per model)."""
    rng = np.random.default_rng(seed)
    base = {n: rng.normal(0, 0.05, s).astype(np.float32) for n, s in shapes.items()}
    write_model(os.path.join(root, "base"), base, extra={"lm_head.bias": np.zeros(shapes[next(iter(shapes))][0], np.float32)})
    centres = [{n: rng.normal(0, spread, s) for n, s in shapes.items()} for _ in range(groups)]
    models, labels = [], []
    for g in range(groups):
        for k in range(per_group):
            i = len(models)
            other, w = (mixed or {}).get(i, (g, 0.0))
            tensors = {n: (base[n] + (1 - w) * centres[g][n] + w * centres[other][n] + rng.normal(0, noise, s)).astype(np.float32)
                       for n, s in shapes.items()}
            head = {"classifier.weight": rng.normal(0, 1, (2 + g, shapes[next(iter(shapes))][1])).astype(np.float32)} if head_labels else None
            folder = os.path.join(root, f"g{g}-m{k}")
            write_model(folder, tensors, dtype=dtypes[i % len(dtypes)], shards=2 if i % shard_every == 0 else 1, extra=head)
            models.append(folder)
            labels.append(g)
    return os.path.join(root, "base"), models, labels


def task_vectors(base, models, names):
    b = stored(base)
    out = []
    for m in models:
        s = stored(m)
        out.append(np.concatenate([(s[n] - b[n]).ravel() for n in names]))
    return np.array(out)


class PlantedClusters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "planted")
        shutil.rmtree(cls.root, ignore_errors=True)
        cls.shapes = encoder_shapes()
        cls.base, cls.models, cls.labels = build_zoo(cls.root, cls.shapes, groups=3, per_group=4, spread=0.02,
                                                     noise=0.01, seed=1)
        cls.list = os.path.join(cls.root, "models.txt")
        write_text(cls.list, "# planted clusters\n" + "".join(os.path.basename(m) + "\n" for m in cls.models))
        cls.groups = os.path.join(cls.root, "groups.csv")
        write_text(cls.groups, "model,dataset,family\n" + "".join(
            f"{os.path.basename(m)},data{g},{'even' if g % 2 == 0 else 'odd'}\n" for m, g in zip(cls.models, cls.labels)))
        cls.out = os.path.join(cls.root, "map")
        run("map", "--base", cls.base, "--models", cls.list, "--groups", cls.groups, "--out", cls.out, "--per-layer",
            "--threads", "2", "--quiet")
        cls.summary = json.load(open(os.path.join(cls.out, "summary.json")))
        cls.vectors = task_vectors(cls.base, cls.models, list(cls.shapes))

    def test_cosine_and_distance_match_numpy(self):
        names, sim = read_matrix(os.path.join(self.out, "similarity.csv"))
        self.assertEqual(names, [os.path.basename(m) for m in self.models])
        expected = cosine(self.vectors)
        print(f"cosine: max |basin - numpy| = {np.abs(sim - expected).max():.2e}")
        self.assertLess(np.abs(sim - expected).max(), 1e-6)
        _, dist = read_matrix(os.path.join(self.out, "distance.csv"))
        exp_d = distances(self.vectors)
        rel = np.abs(dist - exp_d)[exp_d > 0] / exp_d[exp_d > 0]
        print(f"distance: max relative difference = {rel.max():.2e}")
        self.assertLess(rel.max(), 1e-6)
        self.assertEqual(self.summary["parameters"], self.vectors.shape[1])

    def test_bf16_precision_equals_bfloat16_rounded_vectors(self):
        import torch
        out = os.path.join(self.root, "map-bf16")
        run("map", "--base", self.base, "--models", self.list, "--groups", self.groups, "--out", out, "--per-layer",
            "--threads", "2", "--precision", "bf16", "--quiet", "--overwrite")
        summary = json.load(open(os.path.join(out, "summary.json")))
        self.assertEqual(summary["precision"], "bf16")
        _, sim = read_matrix(os.path.join(out, "similarity.csv"))
        # the reference: float32 task vectors rounded by torch to bfloat16, multiplied in float64
        rounded = torch.from_numpy(self.vectors.astype(np.float32)).to(torch.bfloat16).to(torch.float64).numpy()
        print(f"bf16 cosine: max |basin - torch bf16 rounding| = {np.abs(sim - cosine(rounded)).max():.2e}, "
              f"max |bf16 - float32 map| = {np.abs(sim - cosine(self.vectors)).max():.2e}")
        self.assertLess(np.abs(sim - cosine(rounded)).max(), 1e-6)
        _, f32 = read_matrix(os.path.join(self.out, "similarity.csv"))
        self.assertGreater(np.abs(sim - f32).max(), 0, "bf16 gave float32's numbers: was it used?")
        self.assertLess(np.abs(sim - f32).max(), 1e-4)
        # Distances come from G_ii + G_jj - 2 G_ij, which magnifies the float32 sums' error: squares of
        # bfloat16 values have biased low bits, so their float32 sums run ~4e-7 low (docs/MAP.md).
        _, dist = read_matrix(os.path.join(out, "distance.csv"))
        exp_d = distances(rounded)
        self.assertLess((np.abs(dist - exp_d)[exp_d > 0] / exp_d[exp_d > 0]).max(), 1e-5)
        clusters = json.load(open(os.path.join(out, "clusters.json")))
        self.assertEqual(clusters["dataset"]["methods"]["spectral"]["accuracy"], 1.0)

    def test_planted_clusters_are_found(self):
        clusters = json.load(open(os.path.join(self.out, "clusters.json")))
        for method in ("spectral", "kmeans_pca", "agglomerative"):
            self.assertEqual(clusters["dataset"]["methods"][method]["accuracy"], 1.0, method)
            self.assertEqual(set(clusters["dataset"]["methods"][method]["f1"].values()), {1.0}, method)
        table = self.summary["similarity_within_between"]["dataset"]
        self.assertGreater(table["within_mean"], table["between_mean"] + 0.3)

    def test_heads_and_base_only_tensors_are_excluded_and_listed(self):
        excluded = {e["tensor"]: e["reason"] for e in self.summary["excluded_tensors"]}
        self.assertEqual(excluded.get("classifier.weight"), "not in the base")
        self.assertEqual(excluded.get("lm_head.bias"), "head")

    def test_reference_mean_matches_centred_vectors(self):
        out = os.path.join(self.root, "map-mean")
        run("map", "--base", self.base, "--models", self.list, "--out", out, "--reference", "mean", "--quiet",
            "--overwrite")
        _, sim = read_matrix(os.path.join(out, "similarity.csv"))
        centred = self.vectors - self.vectors.mean(0)
        self.assertLess(np.abs(sim - cosine(centred)).max(), 1e-6)

    def test_per_layer_values_add_up_to_the_whole(self):
        rows = list(csv.DictReader(open(os.path.join(self.out, "per_layer.csv"))))
        layers = {r["layer"] for r in rows}
        self.assertEqual(layers, {"embeddings", "layer 0", "layer 1", "layer 2"})
        params = {r["layer"]: int(r["parameters"]) for r in rows}
        self.assertEqual(sum(params.values()), self.summary["parameters"])
        names, dist = read_matrix(os.path.join(self.out, "distance.csv"))
        index = {n: i for i, n in enumerate(names)}
        total = {}
        for r in rows:
            key = (index[r["model_a"]], index[r["model_b"]])
            total[key] = total.get(key, 0.0) + float(r["distance"]) ** 2
        for (i, j), squared in total.items():
            self.assertAlmostEqual(squared / dist[i, j] ** 2, 1.0, delta=1e-8)
        # and each layer's cosine matches numpy on that layer's tensors
        names_l0 = [n for n in self.shapes if n.startswith("encoder.layer.0.")]
        v0 = task_vectors(self.base, self.models, names_l0)
        c0 = cosine(v0)
        for r in rows:
            if r["layer"] == "layer 0":
                self.assertAlmostEqual(float(r["cosine"]), c0[index[r["model_a"]], index[r["model_b"]]], delta=1e-6)

    def test_result_does_not_depend_on_the_memory_limit(self):
        small = os.path.join(self.root, "map-small")

        def map_with_limit(limit):
            r = run("map", "--base", self.base, "--models", self.list, "--out", small, "--per-layer", "--threads", "2",
                    "--memory-limit", limit, "--quiet", "--overwrite", check=False)
            return r, json.load(open(os.path.join(small, "summary.json"))) if r.returncode == 0 else None
        # basin names the least memory it can run in; a little above it, the stream is cut into chunks
        r, s = limit_that_cuts_into_chunks(map_with_limit, len(self.models), self.summary["parameters"] // 4)
        self.assertEqual(r.returncode, 0, r.stderr)
        limit = s["memory_limit_bytes"]
        print(f"chunk: {s['chunk_parameters']} of {s['parameters']} parameters at --memory-limit {limit}, "
              f"{self.summary['chunk_parameters']} at 2G")
        self.assertLess(s["chunk_parameters"] * 3, s["parameters"], "the small limit should cut the stream into chunks")
        self.assertLessEqual(s["peak_rss_bytes"], limit)
        for f in ("similarity.csv", "distance.csv", "per_layer.csv"):
            self.assertEqual(open(os.path.join(small, f)).read(), open(os.path.join(self.out, f)).read(), f)

    def test_mpirun_splits_the_stream_and_gives_the_same_matrix(self):
        if shutil.which("mpirun") is None:
            self.skipTest("mpirun is not installed (openmpi-bin)")
        out = os.path.join(self.root, "map-mpi")
        env = mpirun_environment()

        def mpi_map(limit):
            r = subprocess.run(["mpirun", "-np", "2", BASIN, "map", "--base", self.base, "--models", self.list,
                                "--groups", self.groups, "--out", out, "--per-layer", "--threads", "1",
                                "--memory-limit", limit, "--quiet", "--overwrite"], capture_output=True, text=True, env=env)
            return r, json.load(open(os.path.join(out, "summary.json"))) if r.returncode == 0 else None
        # a small limit cuts the stream into chunks, which the two ranks share; each rank names the
        # least it can run in (MPI's libraries make a process larger)
        r, s = limit_that_cuts_into_chunks(mpi_map, len(self.models), self.summary["parameters"] // 4)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertLess(s["chunk_parameters"] * 3, s["parameters"], "several chunks to share")
        self.assertEqual(s["bytes_read"], self.summary["bytes_read"], "every byte read once over both ranks")
        for f in ("similarity.csv", "distance.csv"):
            got = np.loadtxt(os.path.join(out, f), delimiter=",", skiprows=1, usecols=range(1, len(self.models) + 1))
            want = np.loadtxt(os.path.join(self.out, f), delimiter=",", skiprows=1, usecols=range(1, len(self.models) + 1))
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f)

    def test_an_error_on_one_rank_ends_every_rank(self):
        """Ranks given different arguments (mpirun's MPMD form): one fails, and none may be left
        waiting in a collective. A hang fails the test at the timeout."""
        if shutil.which("mpirun") is None:
            self.skipTest("mpirun is not installed (openmpi-bin)")
        env = mpirun_environment()
        out = os.path.join(self.root, "map-mpi-fail")

        def ranks(*second_rank_changes):
            common = ["--models", self.list, "--out", out, "--threads", "1", "--quiet", "--overwrite"]
            first = [BASIN, "map", "--base", self.base, *common]
            second = [BASIN, "map", *common, *second_rank_changes]
            if "--base" not in second_rank_changes:
                second += ["--base", self.base]
            return subprocess.run(["mpirun", "-np", "1", *first, ":", "-np", "1", *second], capture_output=True,
                                  text=True, env=env, timeout=120)
        # the memory check depends on each rank's own resident memory: the ranks agree on it
        r = ranks("--memory-limit", "1M")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is too small for", r.stderr)
        self.assertIn("too small for another rank", r.stderr)
        # a base only rank 1 cannot read: it says so and ends the job
        r = ranks("--base", os.path.join(self.root, "no-such-base"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no-such-base", r.stderr)
        self.assertIn("rank 1 of 2; ending the job", r.stderr)
        self.assertFalse(os.path.exists(out), "no output folder from a failed run")

    def test_figures_are_written(self):
        for stem in ("pca", "tsne", "similarity"):
            svg = ET.parse(os.path.join(self.out, stem + ".svg")).getroot()
            self.assertTrue(svg.tag.endswith("svg"))
            pdf = open(os.path.join(self.out, stem + ".pdf"), "rb").read()
            self.assertTrue(pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"))
        circles = ET.parse(os.path.join(self.out, "pca.svg")).getroot().iter("{http://www.w3.org/2000/svg}circle")
        self.assertGreaterEqual(len(list(circles)), len(self.models))
        rows = list(csv.DictReader(open(os.path.join(self.out, "embedding.csv"))))
        self.assertEqual(len(rows), len(self.models))
        self.assertTrue(all(np.isfinite(float(r[k])) for r in rows for k in ("pca_1", "pca_2", "tsne_1", "tsne_2")))
        # PCA (of the cosine geometry, the default) equals numpy's PCA of the unit-length vectors (up to sign)
        unit = self.vectors / np.linalg.norm(self.vectors, axis=1, keepdims=True)
        centred = unit - unit.mean(0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        expected = u[:, 0] * s[0]
        got = np.array([float(r["pca_1"]) for r in rows])
        self.assertLess(min(np.abs(got - expected).max(), np.abs(got + expected).max()), 1e-6 * np.abs(expected).max())


class SklearnParity(unittest.TestCase):
    """Clustering and scores on a fixed, overlapping similarity structure, against scikit-learn."""

    def test_matches_scikit_learn(self):
        from scipy.optimize import linear_sum_assignment
        from sklearn.cluster import AgglomerativeClustering, SpectralClustering
        from sklearn.metrics import f1_score, silhouette_score

        root = os.path.join(WORK, "sklearn")
        shutil.rmtree(root, ignore_errors=True)
        # overlapping groups: three models are mixtures that lean towards another group
        base, models, labels = build_zoo(root, encoder_shapes(vocab=200, hidden=16, layers=1), groups=4, per_group=6,
                                         spread=0.02, noise=0.01, seed=7, dtypes=("F32",), shard_every=1000,
                                         mixed={0: (1, 0.7), 7: (2, 0.55), 13: (0, 0.5)})
        lst = os.path.join(root, "models.txt")
        write_text(lst, "".join(m + "\n" for m in models))
        groups = os.path.join(root, "groups.csv")
        write_text(groups, "model,dataset\n" + "".join(f"{m},d{g}\n" for m, g in zip(models, labels)))
        found = {}
        for assign in ("discretize", "kmeans"):
            out = os.path.join(root, "map-" + assign)
            run("map", "--base", base, "--models", lst, "--groups", groups, "--assign", assign, "--out", out, "--quiet")
            found[assign] = json.load(open(os.path.join(out, "clusters.json")))["dataset"]
        vectors = task_vectors(base, models, list(encoder_shapes(vocab=200, hidden=16, layers=1)))
        sim = cosine(vectors)
        truth = np.array(labels)

        def scores(pred):
            count = np.zeros((4, 4))
            for p, t in zip(pred, truth):
                count[p, t] += 1
            rows, cols = linear_sum_assignment(-count)
            mapping = dict(zip(rows, cols))
            mapped = np.array([mapping[p] for p in pred])
            return (mapped == truth).mean(), f1_score(truth, mapped, average=None)

        # basin's random starts are not numpy's: its partition must be one scikit-learn finds over 20 seeds
        def canonical(labels):
            first = {}
            return tuple(first.setdefault(x, len(first)) for x in labels)

        sk_spectral = {}
        for assign in ("discretize", "kmeans"):
            partitions = {}
            for seed in range(20):
                p = SpectralClustering(n_clusters=4, affinity="precomputed", assign_labels=assign,
                                       random_state=seed).fit_predict((sim + 1) / 2)
                partitions.setdefault(canonical(p), p)
            got = canonical(found[assign]["methods"]["spectral"]["clusters"])
            self.assertIn(got, partitions, f"spectral ({assign}): not a partition scikit-learn finds")
            sk_spectral[assign] = partitions[got]
        try:
            agglo = AgglomerativeClustering(n_clusters=4, metric="precomputed", linkage="average")
        except TypeError:
            agglo = AgglomerativeClustering(n_clusters=4, affinity="precomputed", linkage="average")
        sk_agglo = agglo.fit_predict(np.maximum(0, 1 - sim))
        for assign, name, pred in (("discretize", "spectral", sk_spectral["discretize"]),
                                   ("kmeans", "spectral", sk_spectral["kmeans"]),
                                   ("discretize", "agglomerative", sk_agglo)):
            clusters = found[assign]
            accuracy, f1 = scores(pred)
            got = clusters["methods"][name]
            print(f"{name}: accuracy basin {got['accuracy']:.4f}, scikit-learn {accuracy:.4f}")
            self.assertAlmostEqual(got["accuracy"], accuracy, places=12)
            np.testing.assert_allclose([got["f1"][f"d{g}"] for g in range(4)], f1, atol=1e-12)
        clusters = found["discretize"]
        self.assertLess(found["kmeans"]["methods"]["spectral"]["accuracy"], 1.0, "the structure should overlap")
        sil = silhouette_score(np.maximum(0, 1 - sim), truth, metric="precomputed")
        print(f"silhouette: basin {clusters['silhouette_of_groups']:.6f}, scikit-learn {sil:.6f}")
        self.assertAlmostEqual(clusters["silhouette_of_groups"], sil, delta=1e-6)


class OtherArchitectures(unittest.TestCase):
    def test_decoder_checkpoints(self):
        """GPT-2 names in one file; Llama-style names in shards with an lm_head."""
        for style, shapes in (
            ("gpt2", {"wte.weight": (300, 32), "wpe.weight": (64, 32), "h.0.attn.c_attn.weight": (32, 96),
                      "h.0.mlp.c_fc.weight": (32, 128), "h.1.attn.c_attn.weight": (32, 96), "ln_f.weight": (32,)}),
            ("llama", {"model.embed_tokens.weight": (300, 32), "model.layers.0.self_attn.q_proj.weight": (32, 32),
                       "model.layers.0.mlp.gate_proj.weight": (64, 32), "model.layers.1.self_attn.q_proj.weight": (32, 32),
                       "model.norm.weight": (32,), "lm_head.weight": (300, 32)})):
            root = os.path.join(WORK, style)
            shutil.rmtree(root, ignore_errors=True)
            base, models, labels = build_zoo(root, shapes, groups=2, per_group=3, spread=0.02, noise=0.005, seed=3,
                                             dtypes=("BF16", "F16"), shard_every=1 if style == "llama" else 1000,
                                             head_labels=False)
            lst = os.path.join(root, "models.txt")
            write_text(lst, "".join(m + "\n" for m in models))
            out = os.path.join(root, "map")
            run("map", "--base", base, "--models", lst, "--out", out, "--per-layer", "--clusters", "2", "--quiet")
            _, sim = read_matrix(os.path.join(out, "similarity.csv"))
            body = [n for n in shapes if not n.startswith("lm_head")]
            self.assertLess(np.abs(sim - cosine(task_vectors(base, models, body))).max(), 1e-6, style)
            layers = {r["layer"] for r in csv.DictReader(open(os.path.join(out, "per_layer.csv")))}
            self.assertEqual(layers, {"embeddings", "layer 0", "layer 1", "other"}, style)
            labels_found = json.load(open(os.path.join(out, "clusters.json")))["unlabelled"]["methods"]["spectral"]
            self.assertEqual(len(set(labels_found[:3])), 1, style)
            self.assertNotEqual(labels_found[0], labels_found[3], style)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "bad")
        shutil.rmtree(cls.root, ignore_errors=True)
        cls.shapes = encoder_shapes(vocab=50, hidden=8, layers=1)
        cls.base, cls.models, _ = build_zoo(cls.root, cls.shapes, groups=2, per_group=2, spread=0.02, noise=0.01,
                                            seed=5, dtypes=("F32",), shard_every=1000)

    def expect_error(self, models, *extra, contains=(), list_text=None):
        lst = os.path.join(self.root, "list.txt")
        write_text(lst, list_text if list_text is not None else "".join(m + "\n" for m in models))
        out = os.path.join(self.root, "out")
        shutil.rmtree(out, ignore_errors=True)
        r = run("map", "--base", self.base, "--models", lst, "--out", out, "--quiet", *extra, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for c in contains:
            self.assertIn(c, lines[0])
        self.assertFalse(os.path.exists(out), "a failed map left an output folder")
        self.assertFalse(any(n.startswith("out.tmp") for n in os.listdir(self.root)))
        return lines[0]

    def variant(self, name, change, dtype="F32"):
        folder = os.path.join(self.root, name)
        tensors = stored(self.models[0])
        tensors = {k: v.astype(np.float32) for k, v in tensors.items() if not k.startswith("classifier")}
        change(tensors)
        write_model(folder, tensors, dtype=dtype)
        return folder

    def test_shape_mismatch_names_model_and_tensor(self):
        bad = self.variant("reshaped", lambda t: t.update({"encoder.layer.0.attention.self.query.bias": np.zeros(9, np.float32)}))
        print(self.expect_error(self.models + [bad], contains=("reshaped", "encoder.layer.0.attention.self.query.bias", "[9]")))

    def test_missing_tensor_names_model_and_tensor(self):
        bad = self.variant("missing", lambda t: t.pop("embeddings.LayerNorm.bias"))
        self.expect_error(self.models + [bad], contains=("missing", "embeddings.LayerNorm.bias"))

    def test_skip_mismatched_lists_the_skip(self):
        bad = self.variant("reshaped2", lambda t: t.update({"encoder.layer.0.attention.self.query.bias": np.zeros(9, np.float32)}))
        lst = os.path.join(self.root, "list-skip.txt")
        write_text(lst, "".join(m + "\n" for m in self.models + [bad]))
        out = os.path.join(self.root, "out-skip")
        run("map", "--base", self.base, "--models", lst, "--out", out, "--skip-mismatched", "--quiet", "--overwrite")
        s = json.load(open(os.path.join(out, "summary.json")))
        self.assertEqual(len(s["models"]), len(self.models))
        self.assertEqual(len(s["skipped_models"]), 1)
        self.assertIn("reshaped2", s["skipped_models"][0]["model"])

    def test_nan_is_reported(self):
        def poison(t):
            t["encoder.layer.0.intermediate.dense.weight"][3, 2] = np.nan
        bad = self.variant("nan", poison)
        self.expect_error(self.models + [bad], contains=("nan", "encoder.layer.0.intermediate.dense.weight", "NaN"))

    def test_fewer_than_two_models(self):
        self.expect_error(self.models[:1], contains=("at least 2 models",))

    def test_duplicate_paths(self):
        self.expect_error(self.models + [self.models[0]], contains=("listed twice",))

    def test_missing_path_and_empty_glob(self):
        self.expect_error([], list_text=self.models[0] + "\n" + os.path.join(self.root, "nope") + "\n",
                          contains=("list.txt:2", "does not exist"))
        self.expect_error([], list_text=os.path.join(self.root, "zz*") + "\n", contains=("matches no path",))

    def test_groups_naming_unknown_model(self):
        groups = os.path.join(self.root, "groups-bad.csv")
        write_text(groups, "model,dataset\n" + "".join(f"{m},a\n" for m in self.models) + "stranger,b\n")
        self.expect_error(self.models, "--groups", groups, contains=("groups-bad.csv:6", "stranger", "not a listed model"))

    def test_memory_limit_too_small(self):
        self.expect_error(self.models, "--memory-limit", "1M", contains=("--memory-limit", "too small"))


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v"])
