#!/usr/bin/python3
"""basin map --similarity: the map's analyses on a given cosine matrix, against scikit-learn,
scipy and numpy, on zoos shaped like real ones (task-vector norms spanning 40x, a dead dataset
whose seeds are no closer to each other than to anything else, families no tighter than chance);
and the checks of a given matrix, each one line naming the file and the row, with no output.

Randomness: spectral clustering's discretize step starts from a random row and its k-means step
from random centres; basin's generator is not numpy's, so basin's partition is compared with the
set of partitions scikit-learn finds over 20 seeds (it must be one of them; on these zoos the set
is small).

usage: test_map_given.py BASIN WORK"""
import csv
import json
import os
import shutil
import sys
import unittest
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from hull_reference import hull_distances  # noqa: E402
from basin_runner import make_run  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
run = make_run(BASIN)
warnings.simplefilter("ignore", ResourceWarning)  # short-lived reads in assertions


def real_like_zoo(seed, datasets=5, seeds=5, dim=400):
    """Task vectors: datasets of `seeds` fine-tunes each, in two families; norms growing 40x over
    the datasets; the last dataset dead (its seeds random directions, a tiny shared part)."""
    rng = np.random.default_rng(seed)
    family_dirs = rng.normal(size=(2, dim))
    vectors, names, dataset, family = [], [], [], []
    for d in range(datasets):
        fam = d % 2
        centre = 0.5 * family_dirs[fam] + rng.normal(size=dim)
        norm = 40.0 ** (d / (datasets - 1))
        for s in range(seeds):
            if d == datasets - 1:
                v = 0.05 * centre + rng.normal(size=dim)
            else:
                v = centre + 0.45 * rng.normal(size=dim)
            vectors.append(norm * v / np.linalg.norm(v) * (1 + 0.05 * rng.normal()))
            names.append(f"ds{d} seed {s}")
            dataset.append(f"ds{d}")
            family.append(f"fam{fam}")
    return np.array(vectors), names, dataset, family


def cosine_of(v):
    n = np.linalg.norm(v, axis=1)
    return (v @ v.T) / np.outer(n, n)


def write_similarity(path, names, cos, digits=None, named_rows=True, separator=", "):
    def cell(x):
        return repr(float(x)) if digits is None else f"{x:.{digits}f}"
    with open(path, "w") as f:
        header = ([""] if named_rows else []) + ['"' + n + '"' for n in names]
        f.write(separator.join(header) + "\n")
        for i, name in enumerate(names):
            row = ([f'"{name}"'] if named_rows else []) + [cell(x) for x in cos[i]]
            f.write(separator.join(row) + "\n")


def write_groups(path, names, dataset, family):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "dataset", "family"])
        for row in zip(names, dataset, family):
            w.writerow(row)


def canonical(labels):
    """A partition as a tuple independent of cluster numbering."""
    first = {}
    return tuple(first.setdefault(x, len(first)) for x in labels)


def hungarian(pred, truth, k):
    from scipy.optimize import linear_sum_assignment
    count = np.zeros((max(k, pred.max() + 1), k))
    for p, t in zip(pred, truth):
        count[p, t] += 1
    rows, cols = linear_sum_assignment(-count)
    mapping = dict(zip(rows, cols))
    return np.array([mapping[p] for p in pred])


def majority(pred, truth, k):
    mapping = {}
    for c in sorted(set(pred)):
        counts = np.bincount(truth[pred == c], minlength=k)
        mapping[c] = int(np.argmax(counts))  # ties: the group listed first, as basin
    return np.array([mapping[p] for p in pred])


def read_matrix(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return np.array([[float(x) for x in r[1:]] for r in rows[1:]])


class GivenMatrixParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "given")
        shutil.rmtree(cls.root, ignore_errors=True)
        os.makedirs(cls.root)
        cls.vectors, cls.names, cls.dataset, cls.family = real_like_zoo(seed=3)
        cls.cos = cosine_of(cls.vectors)
        cls.sim = os.path.join(cls.root, "similarity.csv")
        write_similarity(cls.sim, cls.names, cls.cos)
        cls.groups = os.path.join(cls.root, "groups.csv")
        write_groups(cls.groups, cls.names, cls.dataset, cls.family)
        cls.norms = os.path.join(cls.root, "norms.csv")
        with open(cls.norms, "w") as f:
            f.write("model,norm\n" + "".join(f'"{n}",{np.linalg.norm(v)!r}\n' for n, v in zip(cls.names, cls.vectors)))
        cls.outputs = {}
        for assign in ("discretize", "kmeans"):
            out = os.path.join(cls.root, "map-" + assign)
            run("map", "--similarity", cls.sim, "--norms", cls.norms, "--groups", cls.groups, "--assign", assign,
                "--out", out, "--quiet")
            cls.outputs[assign] = out
        cls.plain = os.path.join(cls.root, "map-plain")
        run("map", "--similarity", cls.sim, "--groups", cls.groups, "--out", cls.plain, "--quiet")

    def clusters(self, assign, kind="dataset"):
        return json.load(open(os.path.join(self.outputs[assign], "clusters.json")))[kind]

    def test_norms_span_40x_and_the_dead_dataset_is_dead(self):
        norms = np.linalg.norm(self.vectors, axis=1)
        self.assertGreater(norms.max() / norms.min(), 30)
        dead = [i for i, d in enumerate(self.dataset) if d == "ds4"]
        pairs = [self.cos[i, j] for i in dead for j in dead if i < j]
        self.assertLess(np.mean(pairs), 0.1)

    def test_spectral_labels_are_scikit_learns_for_both_assignments(self):
        from sklearn.cluster import SpectralClustering
        affinity = (self.cos + 1) / 2
        for assign in ("discretize", "kmeans"):
            for kind, truth in (("dataset", self.dataset), ("family", self.family)):
                k = len(set(truth))
                found = {canonical(SpectralClustering(n_clusters=k, affinity="precomputed", assign_labels=assign,
                                                      random_state=seed).fit_predict(affinity)) for seed in range(20)}
                got = canonical(self.clusters(assign, kind)["methods"]["spectral"]["clusters"])
                print(f"spectral {assign} {kind}: scikit-learn finds {len(found)} partition(s) over 20 seeds")
                self.assertIn(got, found, f"{assign}, {kind}: basin's partition is not one scikit-learn finds")

    def test_accuracy_f1_and_silhouette_with_both_mappings(self):
        from sklearn.metrics import f1_score, silhouette_score
        distance = np.maximum(0, 1 - self.cos)
        np.fill_diagonal(distance, 0)
        for assign in ("discretize", "kmeans"):
            for kind, truth_names in (("dataset", self.dataset), ("family", self.family)):
                c = self.clusters(assign, kind)
                groups = c["groups"]
                truth = np.array([groups.index(x) for x in truth_names])
                k = len(groups)
                for method, m in c["methods"].items():
                    pred = np.array(m["clusters"])
                    for mapped, got in ((hungarian(pred, truth, k), m),
                                        (majority(pred, truth, k), m["majority"])):
                        self.assertAlmostEqual(got["accuracy"], (mapped == truth).mean(), places=12,
                                               msg=f"{assign} {kind} {method}")
                        np.testing.assert_allclose([got["f1"][g] for g in groups],
                                                   f1_score(truth, mapped, average=None, labels=range(k)), atol=1e-12)
                    if len(set(pred)) > 1:
                        self.assertAlmostEqual(m["silhouette"], silhouette_score(distance, pred, metric="precomputed"),
                                               delta=1e-9)
                self.assertAlmostEqual(c["silhouette_of_groups"],
                                       silhouette_score(distance, truth, metric="precomputed"), delta=1e-9)

    def test_pair_levels_count_each_pair_once(self):
        summary = json.load(open(os.path.join(self.plain, "summary.json")))
        nest = [x for x in summary["nested_pairs"] if x["fine"] == "dataset" and x["coarse"] == "family"]
        self.assertEqual(len(nest), 1, "dataset nests in family, and nothing else nests")
        self.assertEqual(len(summary["nested_pairs"]), 1)
        levels = {"same_fine": [], "same_coarse": [], "different_coarse": []}
        n = len(self.names)
        for i in range(n):
            for j in range(i + 1, n):
                key = ("same_fine" if self.dataset[i] == self.dataset[j] else
                       "same_coarse" if self.family[i] == self.family[j] else "different_coarse")
                levels[key].append(self.cos[i, j])
        self.assertEqual(sum(len(v) for v in levels.values()), n * (n - 1) // 2)
        for key, values in levels.items():
            got = nest[0][key]
            self.assertEqual(got["pairs"], len(values))
            for stat, expected in (("mean", np.mean(values)), ("median", np.median(values)),
                                   ("q05", np.quantile(values, 0.05)), ("q95", np.quantile(values, 0.95))):
                self.assertAlmostEqual(got[stat], expected, places=12, msg=f"{key} {stat}")
        # the family's own "within" mixes in the same-dataset pairs; the middle row does not
        within_family = summary["similarity_within_between"]["family"]["within_mean"]
        self.assertGreater(within_family, nest[0]["same_coarse"]["mean"])

    def test_query_hull_distances_equal_scipy(self):
        queries = ["ds0 seed 0", "ds3 seed 1"]
        out = os.path.join(self.root, "map-query")
        run("map", "--similarity", self.sim, "--norms", self.norms, "--groups", self.groups, "--query",
            ",".join(queries), "--bootstrap", "0", "--out", out, "--quiet")
        located = json.load(open(os.path.join(out, "locate.json")))
        self.assertEqual([x["model"] for x in located], queries)
        others = [i for i, n in enumerate(self.names) if n not in queries]
        for entry in located:
            q = self.names.index(entry["model"])
            tq = self.vectors[q]
            # nearest models by cosine, the located ones left out
            expected = sorted(others, key=lambda i: -self.cos[q, i])[:5]
            self.assertEqual([x["model"] for x in entry["nearest"]], [self.names[i] for i in expected])
            for kind in entry["kinds"]:
                labels = self.dataset if kind["kind"] == "dataset" else self.family
                best, best_group = np.inf, None
                for g in kind["groups"]:
                    members = [i for i in others if labels[i] == g["group"]]
                    t = self.vectors[members]
                    convex, w, affine = hull_distances(tq, t)
                    scale = np.linalg.norm(tq)
                    self.assertAlmostEqual(g["convex_hull_distance"] / scale, convex / scale, delta=1e-6,
                                           msg=f"{entry['model']} {g['group']}")
                    self.assertAlmostEqual(g["affine_hull_distance"] / scale, affine / scale, delta=1e-6)
                    self.assertLessEqual(g["affine_hull_distance"], g["convex_hull_distance"] + 1e-9 * scale)
                    np.testing.assert_allclose([g["weights"][self.names[i]] for i in members], w, atol=1e-5)
                    if convex < best:
                        best, best_group = convex, g["group"]
                self.assertEqual(kind["predicted"], best_group)
        self.assertTrue(located[0]["kinds"][0]["correct"], "a seed of ds0 is nearest to ds0's hull")
        for extra, message in ((["--norms", self.norms, "--query", "nobody"], "--query nobody: not a model of the map"),
                               (["--query", queries[0]], "--query needs the task vectors' norms")):
            bad = os.path.join(self.root, "map-query-bad")
            r = run("map", "--similarity", self.sim, "--groups", self.groups, *extra, "--out", bad, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(message, r.stderr)
            self.assertFalse(os.path.exists(bad))

    def test_agglomerative_is_scikit_learns(self):
        from sklearn.cluster import AgglomerativeClustering
        distance = np.maximum(0, 1 - self.cos)
        try:
            agglo = AgglomerativeClustering(n_clusters=5, metric="precomputed", linkage="average")
        except TypeError:
            agglo = AgglomerativeClustering(n_clusters=5, affinity="precomputed", linkage="average")
        expected = canonical(agglo.fit_predict(distance))
        self.assertEqual(canonical(self.clusters("discretize")["methods"]["agglomerative"]["clusters"]), expected)

    def test_pca_sees_the_cosine_geometry_by_default_and_the_raw_one_on_request(self):
        def pca(gram):
            n = len(gram)
            j = np.eye(n) - 1 / n
            w, v = np.linalg.eigh(j @ gram @ j)
            order = np.argsort(w)[::-1][:2]
            return v[:, order] * np.sqrt(np.maximum(w[order], 0))

        def embedding(out):
            with open(os.path.join(out, "embedding.csv")) as f:
                rows = list(csv.DictReader(f))
            return np.array([[float(r["pca_1"]), float(r["pca_2"])] for r in rows])

        raw_out = os.path.join(self.root, "map-raw")
        run("map", "--similarity", self.sim, "--norms", self.norms, "--groups", self.groups, "--geometry", "raw",
            "--out", raw_out, "--quiet")
        for out, gram in ((self.plain, self.cos), (raw_out, self.vectors @ self.vectors.T)):
            got, expected = embedding(out), pca(gram)
            for d in range(2):  # each axis up to its sign
                err = min(np.abs(got[:, d] - expected[:, d]).max(), np.abs(got[:, d] + expected[:, d]).max())
                self.assertLess(err, 1e-7 * np.abs(expected).max(), out)
        self.assertEqual(json.load(open(os.path.join(raw_out, "summary.json")))["geometry"], "raw")

    def test_distances_come_from_the_norms_and_are_skipped_without_them(self):
        v = self.vectors
        expected = np.sqrt(np.maximum(0, ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)))
        got = read_matrix(os.path.join(self.outputs["discretize"], "distance.csv"))
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8 * expected.max())
        self.assertFalse(os.path.exists(os.path.join(self.plain, "distance.csv")))
        summary = json.load(open(os.path.join(self.plain, "summary.json")))
        self.assertEqual(len(summary["not_computed"]), 1)
        self.assertIn("distance", summary["not_computed"][0])
        self.assertEqual(summary["similarity_file"], self.sim)
        r = run("map", "--similarity", self.sim, "--geometry", "raw", "--out", os.path.join(self.root, "no-raw"),
                check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--geometry raw needs", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "no-raw")))

    def test_a_gram_file_gives_the_same_map_as_norms(self):
        gram = self.vectors @ self.vectors.T
        path = os.path.join(self.root, "gram.csv")
        write_similarity(path, self.names, gram)
        out = os.path.join(self.root, "map-gram")
        run("map", "--similarity", self.sim, "--gram", path, "--groups", self.groups, "--out", out, "--quiet")
        for name in ("clusters.json", "embedding.csv"):
            self.assertEqual(open(os.path.join(out, name)).read(),
                             open(os.path.join(self.outputs["discretize"], name)).read(), name)
        np.testing.assert_allclose(read_matrix(os.path.join(out, "distance.csv")),
                                   read_matrix(os.path.join(self.outputs["discretize"], "distance.csv")), rtol=1e-9)

    def test_printed_precision_and_layouts(self):
        """Four decimals, no row names, comma without space: the same clusters as full precision."""
        path = os.path.join(self.root, "rounded.csv")
        write_similarity(path, self.names, self.cos, digits=4, named_rows=False, separator=",")
        out = os.path.join(self.root, "map-rounded")
        run("map", "--similarity", path, "--groups", self.groups, "--out", out, "--quiet")
        got = json.load(open(os.path.join(out, "clusters.json")))["dataset"]["methods"]["spectral"]["clusters"]
        full = json.load(open(os.path.join(self.plain, "clusters.json")))["dataset"]["methods"]["spectral"]["clusters"]
        self.assertEqual(canonical(got), canonical(full))


class GivenMatrixBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "given-bad")
        shutil.rmtree(cls.root, ignore_errors=True)
        os.makedirs(cls.root)
        v, cls.names, dataset, family = real_like_zoo(seed=5, datasets=2, seeds=3, dim=50)
        cls.cos = cosine_of(v)
        cls.groups = os.path.join(cls.root, "groups.csv")
        write_groups(cls.groups, cls.names, dataset, family)

    def expect(self, text, *contains, groups=None):
        path = os.path.join(self.root, "m.csv")
        with open(path, "w") as f:
            f.write(text)
        out = os.path.join(self.root, "out")
        r = run("map", "--similarity", path, "--groups", groups or self.groups, "--out", out, check=False)
        self.assertNotEqual(r.returncode, 0, text[:200])
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        for c in contains:
            self.assertIn(c, lines[0])
        self.assertFalse(os.path.exists(out), "no output folder is left")
        return lines[0]

    def matrix_text(self, cos, names=None):
        names = names or self.names
        return ",".join(["model"] + names) + "\n" + "".join(
            ",".join([n] + [repr(float(x)) for x in row]) + "\n" for n, row in zip(names, cos))

    def test_not_square(self):
        text = self.matrix_text(self.cos)
        self.expect("".join(text.splitlines(True)[:-1]), "m.csv", "not square")

    def test_row_of_the_wrong_length(self):
        lines = self.matrix_text(self.cos).splitlines(True)
        lines[2] = lines[2].rstrip("\n") + ",0.5\n"
        self.expect("".join(lines), "m.csv:3:", "expected 6 numbers")

    def test_asymmetric(self):
        c = self.cos.copy()
        c[0, 1] += 0.01
        self.expect(self.matrix_text(c), "m.csv:2:", "not symmetric", self.names[0], self.names[1])

    def test_nan(self):
        c = self.cos.copy()
        c[1, 2] = c[2, 1] = np.nan
        self.expect(self.matrix_text(c), "m.csv:3:", "finite")

    def test_diagonal_not_one(self):
        c = self.cos.copy()
        c[3, 3] = 0.9
        self.expect(self.matrix_text(c), "m.csv:5:", "diagonal", self.names[3])

    def test_value_outside_minus_one_to_one(self):
        c = self.cos.copy()
        c[0, 4] = c[4, 0] = 1.5
        self.expect(self.matrix_text(c), "m.csv:2:", "not a cosine")

    def test_duplicate_names(self):
        names = list(self.names)
        names[2] = names[1]
        self.expect(self.matrix_text(self.cos, names), "m.csv:1:", "appears twice")

    def test_not_a_number(self):
        lines = self.matrix_text(self.cos).splitlines(True)
        lines[3] = lines[3].replace(repr(float(self.cos[2, 0])), "abc", 1)
        self.expect("".join(lines), "m.csv:4:", "expected a number, found 'abc'")

    def test_row_named_out_of_order(self):
        lines = self.matrix_text(self.cos).splitlines(True)
        lines[1], lines[2] = lines[2], lines[1]
        self.expect("".join(lines), "m.csv:2:", "is named")

    def test_groups_naming_a_model_the_matrix_lacks(self):
        path = os.path.join(self.root, "groups-unknown.csv")
        with open(path, "w") as f:
            f.write("model,dataset\n" + "".join(f'"{n}",d\n' for n in self.names[:-1]) + "stranger,d\n")
        self.expect(self.matrix_text(self.cos), "groups-unknown.csv:7:", "'stranger' is not a listed model",
                    groups=path)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
