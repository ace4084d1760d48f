#!/usr/bin/python3
"""basin map --update and basin locate (issue 21, items 5 and 6): a map grown by new models equals
the map of all of them made at once (Gram matrices to 1e-12, every output file), and new models
located against a map's groups have the hull distances numpy and scipy compute from their task
vectors, and those of `map --query` inside the full map. Bad input: one line each, no output.

usage: test_map_update.py BASIN WORK"""
import json
import os
import shutil
import struct
import sys
import unittest
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_map as tm  # noqa: E402  (its zoo builders; it reads the same BASIN WORK arguments)
from hull_reference import hull_distances  # noqa: E402  (test_map put tests/reference on the path)

BASIN, WORK = sys.argv[1], sys.argv[2]
warnings.simplefilter("ignore", ResourceWarning)
run = tm.run


def read_grams(folder):
    """gram.safetensors as {name: float64 array}, parsed here from the format's definition."""
    with open(os.path.join(folder, "gram.safetensors"), "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F64", info
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + length + begin:8 + length + end], "<f8").reshape(info["shape"])
    return out


def write_list(path, models):
    tm.write_text(path, "".join(m + "\n" for m in models))


def text(path):
    with open(path) as f:
        return f.read()


def load(path):
    with open(path) as f:
        return json.load(f)


def dump(value, path):
    with open(path, "w") as f:
        json.dump(value, f)


# summary.json fields that say how a pass went, not what it found
PASS_FACTS = {"seconds", "bytes_per_second", "bytes_read", "peak_rss_bytes", "chunk_parameters", "updated_from",
              "gram_pairs"}


class Update(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "zoo")
        shutil.rmtree(cls.root, ignore_errors=True)
        cls.shapes = tm.encoder_shapes()
        # 4 groups x 4 models, mixed dtypes and shards; the last model of each group is new
        cls.base, cls.models, cls.labels = tm.build_zoo(cls.root, cls.shapes, groups=4, per_group=4, spread=0.02,
                                                        noise=0.012, seed=5)
        cls.old = [m for i, m in enumerate(cls.models) if i % 4 != 3]
        cls.new = [m for i, m in enumerate(cls.models) if i % 4 == 3]
        cls.groups, old_groups = os.path.join(cls.root, "groups.csv"), os.path.join(cls.root, "groups-old.csv")
        rows = {m: f"{os.path.basename(m)},data{g},{'even' if g % 2 == 0 else 'odd'}\n"
                for m, g in zip(cls.models, cls.labels)}
        tm.write_text(cls.groups, "model,dataset,family\n" + "".join(rows[m] for m in cls.models))
        tm.write_text(old_groups, "model,dataset,family\n" + "".join(rows[m] for m in cls.old))
        cls.rows = rows
        cls.lists = {}
        for name, models in (("all", cls.old + cls.new), ("old", cls.old), ("new", cls.new)):
            cls.lists[name] = os.path.join(cls.root, name + ".txt")
            write_list(cls.lists[name], models)
        common = ["--per-layer", "--threads", "2", "--bootstrap", "60", "--seed", "3", "--quiet"]
        cls.full = os.path.join(cls.root, "map-full")
        run("map", "--base", cls.base, "--models", cls.lists["all"], "--groups", cls.groups, "--out", cls.full, *common)
        cls.small = os.path.join(cls.root, "map-old")
        run("map", "--base", cls.base, "--models", cls.lists["old"], "--groups", old_groups, "--out", cls.small,
            *common)
        cls.updated = os.path.join(cls.root, "map-updated")
        # the analysis settings (bootstrap, seed) come from the map's state.json
        cls.update_run = run("map", "--update", cls.small, "--models", cls.lists["new"], "--groups", cls.groups,
                             "--out", cls.updated, "--threads", "2", "--quiet")
        cls.vectors = tm.task_vectors(cls.base, cls.old + cls.new, list(cls.shapes))

    def test_update_equals_the_full_map(self):
        full, updated = read_grams(self.full), read_grams(self.updated)
        self.assertEqual(sorted(full), sorted(updated))
        self.assertGreater(len(full), 2, "per-layer Gram matrices are kept")
        for name in full:
            scale = np.abs(full[name]).max()
            diff = np.abs(full[name] - updated[name]).max() / scale
            print(f"{name}: max |update - full| / max |G| = {diff:.1e}")
            self.assertLessEqual(diff, 1e-12, name)
        # and the Gram matrix is the task vectors'
        exact = self.vectors @ self.vectors.T
        self.assertLess(np.abs(full["gram"] - exact).max() / np.abs(exact).max(), 1e-6)
        for file in ("similarity.csv", "distance.csv", "per_layer.csv", "embedding.csv", "clusters.json"):
            self.assertEqual(text(os.path.join(self.updated, file)), text(os.path.join(self.full, file)), file)
        s_full = load(os.path.join(self.full, "summary.json"))
        s_upd = load(os.path.join(self.updated, "summary.json"))
        for key in set(s_full) | set(s_upd):
            if key not in PASS_FACTS:
                self.assertEqual(s_upd.get(key), s_full.get(key), key)
        self.assertEqual(s_upd["uncertainty"]["resamples"], 60, "the map's --bootstrap was kept")
        self.assertEqual(s_upd["updated_from"], len(self.old))
        n, k = len(self.models), len(self.old)
        self.assertEqual(s_full["gram_pairs"], n * (n + 1) // 2)
        self.assertEqual(s_upd["gram_pairs"], n * (n + 1) // 2 - k * (k + 1) // 2)
        print(f"products formed: update {s_upd['gram_pairs']} pairs, full map {s_full['gram_pairs']}")
        state = load(os.path.join(self.updated, "state.json"))
        self.assertEqual(len(state["models"]), n)
        self.assertEqual(state["models"][0]["labels"], {"dataset": "data0", "family": "even"})
        self.assertIn("mapped 16 models", self.update_run.stdout)

    def test_every_vector_kernel_gives_the_same_map(self):
        """The AVX2 kernel (BASIN_GRAM_KERNEL=avx2: what a CPU without AVX-512 runs) forms the same
        float32 sums as the AVX-512 one: its full map and its update equal the default map bit for
        bit; a kernel name the CPU lacks or that does not exist is one line."""
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
        if not {"avx2", "fma"} <= flags:
            self.skipTest("no AVX2 + FMA here: only the OpenBLAS path, which agrees to float32 rounding")
        env = {**os.environ, "BASIN_GRAM_KERNEL": "avx2"}
        common = ["--per-layer", "--threads", "2", "--bootstrap", "60", "--seed", "3", "--quiet"]
        full = os.path.join(self.root, "map-full-avx2")
        run("map", "--base", self.base, "--models", self.lists["all"], "--groups", self.groups, "--out", full,
            *common, env=env)
        updated = os.path.join(self.root, "map-updated-avx2")
        run("map", "--update", self.small, "--models", self.lists["new"], "--groups", self.groups, "--out", updated,
            "--threads", "2", "--quiet", env=env)
        want = read_grams(self.full)
        for folder in (full, updated):
            got = read_grams(folder)
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], f"{folder}: {name}")
        self.assertEqual(text(os.path.join(full, "similarity.csv")), text(os.path.join(self.full, "similarity.csv")))
        r = run("map", "--base", self.base, "--models", self.lists["old"], "--out", os.path.join(self.root, "bad"),
                "--quiet", check=False, env={**os.environ, "BASIN_GRAM_KERNEL": "avx3"})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("BASIN_GRAM_KERNEL='avx3': expected blas, avx2 or avx512", r.stderr)

    def test_update_in_place_then_again(self):
        folder = os.path.join(self.root, "map-in-place")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(self.small, folder)
        first, second = os.path.join(self.root, "first.txt"), os.path.join(self.root, "second.txt")
        write_list(first, self.new[:2])
        write_list(second, self.new[2:])
        some = os.path.join(self.root, "groups-some.csv")
        tm.write_text(some, "model,dataset,family\n" + "".join(self.rows[m] for m in self.old + self.new[:2]))
        run("map", "--update", folder, "--models", first, "--groups", some, "--threads", "2", "--quiet")
        run("map", "--update", folder, "--models", second, "--groups", self.groups, "--threads", "2", "--quiet")
        grams, full = read_grams(folder), read_grams(self.full)
        for name in full:
            self.assertLessEqual(np.abs(grams[name] - full[name]).max() / np.abs(full[name]).max(), 1e-12, name)
        self.assertEqual(text(os.path.join(folder, "similarity.csv")), text(os.path.join(self.full, "similarity.csv")))

    def test_update_under_mpirun(self):
        if shutil.which("mpirun") is None:
            self.skipTest("mpirun is not installed (openmpi-bin)")
        import subprocess
        out = os.path.join(self.root, "map-mpi")
        env = tm.mpirun_environment()

        def mpi_update(limit):
            r = subprocess.run(["mpirun", "-np", "2", BASIN, "map", "--update", self.small, "--models",
                                self.lists["new"], "--groups", self.groups, "--out", out, "--threads", "1",
                                "--memory-limit", limit, "--quiet", "--overwrite"], capture_output=True, text=True,
                               env=env)
            return r, load(os.path.join(out, "summary.json")) if r.returncode == 0 else None
        s_full = load(os.path.join(self.full, "summary.json"))
        r, s = tm.limit_that_cuts_into_chunks(mpi_update, len(self.models), s_full["parameters"] // 4)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertLess(s["chunk_parameters"] * 3, s["parameters"], "several chunks to share")
        self.assertEqual(s["bytes_read"], s_full["bytes_read"], "every byte read once over both ranks")
        full, got = read_grams(self.full), read_grams(out)
        for name in full:
            self.assertLessEqual(np.abs(got[name] - full[name]).max() / np.abs(full[name]).max(), 1e-12, name)

    def test_locate_new_models_against_the_map(self):
        out = os.path.join(self.root, "locate.json")
        if os.path.exists(out):
            os.remove(out)
        r = run("locate", self.small, "--models", self.lists["new"], "--out", out, "--threads", "2", "--quiet")
        located = load(out)
        names = [os.path.basename(m) for m in self.old + self.new]
        self.assertEqual([x["model"] for x in located], [os.path.basename(m) for m in self.new])
        k = len(self.old)
        old_labels = [self.labels[self.models.index(m)] for m in self.old]
        for q, entry in enumerate(located):
            tq = self.vectors[k + q]
            cos = self.vectors[:k] @ tq / (np.linalg.norm(self.vectors[:k], axis=1) * np.linalg.norm(tq))
            self.assertEqual([x["model"] for x in entry["nearest"]], [names[i] for i in np.argsort(-cos)[:5]])
            kind = entry["kinds"][0]
            self.assertEqual(kind["kind"], "dataset")
            self.assertIsNone(kind["actual"])
            best, best_group = np.inf, None
            for g in kind["groups"]:
                members = [i for i in range(k) if f"data{old_labels[i]}" == g["group"]]
                self.assertEqual(sorted(g["weights"]), sorted(names[i] for i in members))
                self.assertAlmostEqual(g["mean_cosine"], float(np.mean(cos[members])), delta=1e-6)  # float32 sums
                t = self.vectors[members]
                convex, w, affine = hull_distances(tq, t)
                scale = np.linalg.norm(tq)
                self.assertAlmostEqual(g["convex_hull_distance"] / scale, convex / scale, delta=1e-6)
                self.assertAlmostEqual(g["affine_hull_distance"] / scale, affine / scale, delta=1e-6)
                np.testing.assert_allclose([g["weights"][names[i]] for i in members], w, atol=1e-5)
                if convex < best:
                    best, best_group = convex, g["group"]
            self.assertEqual(kind["predicted"], best_group)
            self.assertEqual(kind["predicted"], f"data{self.labels[self.models.index(self.new[q])]}",
                             "a new seed of a planted group is placed in it")
        self.assertIn("dataset data0", r.stdout)
        # the same numbers as --query inside the full map (which leaves the queried models out of the groups)
        inside = os.path.join(self.root, "map-query")
        run("map", "--base", self.base, "--models", self.lists["all"], "--groups", self.groups, "--out", inside,
            "--query", ",".join(os.path.basename(m) for m in self.new), "--bootstrap", "0", "--threads", "2",
            "--per-layer",  # as the located map: the stream's blocks follow its layer groups
            "--quiet", "--overwrite")
        queried = load(os.path.join(inside, "locate.json"))
        for a, b in zip(located, queried):
            self.assertEqual(a["nearest"], b["nearest"])
            for ka, kb in zip(a["kinds"], b["kinds"]):
                self.assertEqual(ka["predicted"], kb["predicted"])
                for ga, gb in zip(ka["groups"], kb["groups"]):
                    self.assertAlmostEqual(ga["convex_hull_distance"], gb["convex_hull_distance"], delta=1e-9)
                    self.assertAlmostEqual(ga["affine_hull_distance"], gb["affine_hull_distance"], delta=1e-9)


class UpdateBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(WORK, "bad")
        shutil.rmtree(cls.root, ignore_errors=True)
        shapes = tm.encoder_shapes(vocab=200, hidden=16, layers=2)
        cls.base, cls.models, _ = tm.build_zoo(cls.root, shapes, groups=2, per_group=3, spread=0.02, noise=0.01,
                                               seed=9, dtypes=("F32",), shard_every=100)
        cls.old_list, cls.new_list = os.path.join(cls.root, "old.txt"), os.path.join(cls.root, "new.txt")
        write_list(cls.old_list, cls.models[:4])
        write_list(cls.new_list, cls.models[4:])
        cls.map = os.path.join(cls.root, "map")
        run("map", "--base", cls.base, "--models", cls.old_list, "--out", cls.map, "--bootstrap", "0", "--quiet")

    def expect_error(self, *args, contains, folder=None):
        out = os.path.join(self.root, "out")
        shutil.rmtree(out, ignore_errors=True)
        r = run("map", "--update", folder or self.map, *args, "--out", out, "--quiet", check=False)
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for c in contains:
            self.assertIn(c, lines[0])
        self.assertFalse(os.path.exists(out), "no output folder")
        return lines[0]

    def changed_copy(self, name, change):
        """A copy of the map whose state points at a copy of the zoo with one file changed."""
        root = os.path.join(self.root, name)
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("out", "changed-*"))
        state_file = os.path.join(root, "map", "state.json")
        state = load(state_file)
        state["base"]["path"] = state["base"]["path"].replace(self.root, root)
        for m in state["models"]:
            m["path"] = m["path"].replace(self.root, root)
        dump(state, state_file)
        change(root)
        return os.path.join(root, "map"), os.path.join(root, "new.txt")

    @staticmethod
    def change_tensor(folder, name, delta):
        """Adds delta to the first value of one tensor of an F32 checkpoint, rewriting the file."""
        path = os.path.join(folder, "model.safetensors")
        tensors = dict(tm.ref.read_safetensors(path)[0])
        tensors[name] = tensors[name].copy()
        tensors[name].flat[0] += delta
        tm.ref.write_safetensors(path, tensors, dtype="F32")

    def test_a_changed_model_is_refused(self):
        model = os.path.basename(self.models[1])
        folder, new = self.changed_copy("changed-model", lambda root: self.change_tensor(
            os.path.join(root, model), "encoder.layer.1.intermediate.dense.weight", 1e-3))
        self.expect_error("--models", new, folder=folder,
                          contains=("state.json: models[1]", model, "changed since the map"))

    def test_a_changed_head_is_not_a_change_of_the_map(self):
        model = os.path.basename(self.models[1])
        folder, new = self.changed_copy("changed-head", lambda root: self.change_tensor(
            os.path.join(root, model), "classifier.weight", 1.0))
        out = os.path.join(self.root, "out-head")
        shutil.rmtree(out, ignore_errors=True)
        run("map", "--update", folder, "--models", new, "--out", out, "--quiet")
        self.assertTrue(os.path.exists(os.path.join(out, "similarity.csv")))

    def test_a_changed_base_is_refused(self):
        folder, new = self.changed_copy("changed-base", lambda root: self.change_tensor(
            os.path.join(root, "base"), "embeddings.LayerNorm.bias", 1e-3))
        self.expect_error("--models", new, folder=folder, contains=("state.json: base", "changed since the map"))

    def test_a_model_already_in_the_map(self):
        again = os.path.join(self.root, "again.txt")
        write_list(again, self.models[3:5])
        self.expect_error("--models", again, contains=("is already in the map", os.path.basename(self.models[3])))

    def test_pass_settings_cannot_change(self):
        self.expect_error("--models", self.new_list, "--include", "layer", contains=("--include is the map's own",))
        self.expect_error("--models", self.new_list, "--per-layer", contains=("--per-layer is the map's own",))

    def test_a_folder_without_state(self):
        plain = os.path.join(self.root, "plain")
        os.makedirs(plain, exist_ok=True)
        self.expect_error("--models", self.new_list, folder=plain, contains=("no state.json",))

    def test_a_damaged_gram_file(self):
        folder = os.path.join(self.root, "damaged")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(self.map, folder)
        state = load(os.path.join(folder, "state.json"))
        state["models"].append(dict(state["models"][0]))
        dump(state, os.path.join(folder, "state.json"))
        self.expect_error("--models", self.new_list, folder=folder,
                          contains=("gram.safetensors: tensor 'gram' has shape [4, 4], expected [5, 5]",))

    def test_locate_refuses_a_changed_model_too(self):
        folder, new = self.changed_copy("changed-locate", lambda root: self.change_tensor(
            os.path.join(root, os.path.basename(self.models[2])), "embeddings.word_embeddings.weight", -1e-3))
        out = os.path.join(self.root, "locate-bad.json")
        r = run("locate", folder, "--models", new, "--out", out, "--quiet", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("state.json: models[2]", r.stderr)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
