#!/usr/bin/python3
"""basin's Python package (build/python/basin, the pybind11 extension) against the command line
and independent readers: tensors equal the reference safetensors reader's (F32 and F16 as
zero-copy read-only views that outlive the Checkpoint, BF16 as float32 copies, shards); merge()
and merge_config() write byte-for-byte what `basin merge` writes; gram() equals numpy's Gram
matrix of the task vectors; map() and map_matrix() equal `basin map` (with --similarity / --gram)
on the same inputs, per-layer blocks and bootstrap intervals included; interpolate(), hull() and
plane() equal the region commands' score files; the GIL is released during a long merge (another
thread runs); errors raise basin.Error (a RuntimeError) with the library's message, KeyError,
TypeError, ValueError.

Exit status 77 (skipped) when the package was not built (no pybind11).

usage: test_python.py BASIN WORK"""
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run, tiny_word_models  # noqa: E402
import numpy as np  # noqa: E402

BASIN, WORK = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.argv = sys.argv[:1]
sys.path.insert(0, os.path.join(os.path.dirname(BASIN), "python"))
try:
    import basin
except ImportError as e:
    print(f"skipped: the Python package is not built ({e}); scripts/install-deps.sh installs pybind11-dev")
    sys.exit(77)

SHAPES = {"embeddings.word_embeddings.weight": (30, 8), "encoder.layer.0.attention.self.query.weight": (8, 8),
          "encoder.layer.0.attention.self.query.bias": (8,)}


def write_model(folder, tensors, dtype="F32"):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors, dtype=dtype)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{"architectures": ["RobertaModel"], "model_type": "roberta"}')
    return folder


def cli(*args):
    subprocess.run([BASIN, *args], check=True, capture_output=True)


class Python(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        rng = np.random.default_rng(0)
        cls.base = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
        cls.models = [{k: (v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in cls.base.items()}
                      for _ in range(3)]
        cls.base_dir = write_model(os.path.join(WORK, "base"), cls.base)
        cls.dirs = [write_model(os.path.join(WORK, f"m{i}"), m) for i, m in enumerate(cls.models)]

    def test_tensors_are_the_files(self):
        for dtype, np_dtype in (("F32", np.float32), ("F16", np.float16), ("BF16", np.float32)):
            folder = write_model(os.path.join(WORK, "dtype-" + dtype), self.models[0], dtype)
            want = ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]
            ck = basin.Checkpoint(folder)
            self.assertEqual(sorted(ck.names()), sorted(SHAPES))
            for name, shape in SHAPES.items():
                a = ck.tensor(name)
                self.assertEqual(a.dtype, np_dtype, dtype)
                self.assertEqual(a.shape, shape)
                self.assertEqual(ck.shape(name), list(shape))
                self.assertEqual(ck.dtype(name), dtype)
                np.testing.assert_array_equal(a, want[name].astype(np_dtype), err_msg=f"{dtype} {name}")
                if dtype != "BF16":  # a view of the mapped file: read-only, not owning its memory
                    self.assertFalse(a.flags.writeable)
                    self.assertFalse(a.flags.owndata)
                    with self.assertRaises(ValueError):
                        a[0] = 1
            view = ck.tensor(next(iter(SHAPES)))
            del ck  # the array keeps the file open
            np.testing.assert_array_equal(view, want[next(iter(SHAPES))].astype(np_dtype))
        # a sharded checkpoint reads through its index
        sharded = os.path.join(WORK, "sharded")
        cli("merge", "--models", self.dirs[0], "--out", sharded, "--shard-size", "1K")
        self.assertTrue(os.path.exists(os.path.join(sharded, "model.safetensors.index.json")))
        ck = basin.Checkpoint(sharded)
        for name in SHAPES:
            np.testing.assert_array_equal(ck.tensor(name), self.models[0][name])

    def same_weights(self, a, b):
        wa = ref.read_safetensors(os.path.join(a, "model.safetensors"))[0]
        wb = ref.read_safetensors(os.path.join(b, "model.safetensors"))[0]
        self.assertEqual(sorted(wa), sorted(wb))
        for k in wa:
            self.assertEqual(wa[k].tobytes(), wb[k].tobytes(), k)

    def test_merge_is_the_command_line(self):
        cases = [
            (("ties", self.dirs, self.base_dir, None), {"density": 0.3, "lambda_": 0.8},
             ["--method", "ties", "--density", "0.3", "--lambda", "0.8", "--base", self.base_dir]),
            (("multislerp", self.dirs, None, [1.0, 2.0, 0.5]), {},
             ["--method", "multislerp", "--weights", "1,2,0.5"]),
            (("gta", self.dirs, self.base_dir, None), {"sparsify": "magnitude", "consensus": "sum", "density": 0.5},
             ["--method", "gta", "--sparsify", "magnitude", "--consensus", "sum", "--density", "0.5", "--base",
              self.base_dir]),
        ]
        for (method, models, base, weights), kwargs, args in cases:
            out = os.path.join(WORK, "py-" + method)
            provenance = basin.merge(method, models, out, base, weights, **kwargs)
            self.assertEqual(provenance["method"], method)
            self.assertEqual(len(provenance["models"]), 3)
            want = os.path.join(WORK, "cli-" + method)
            cli("merge", "--models", ",".join(models), "--out", want, *args)
            self.same_weights(out, want)
        config = os.path.join(WORK, "ties.yaml")
        with open(config, "w") as f:
            f.write("merge_method: ties\nbase_model: base\nmodels:\n" +
                    "".join(f"  - model: m{i}\n    parameters:\n      weight: 1.0\n      density: 0.4\n"
                            for i in range(3)))
        basin.merge_config(config, os.path.join(WORK, "py-config"))
        cli("merge", "--config", config, "--out", os.path.join(WORK, "cli-config"))
        self.same_weights(os.path.join(WORK, "py-config"), os.path.join(WORK, "cli-config"))

    def test_gram_is_numpy(self):
        g = basin.gram(self.base_dir, self.dirs)
        self.assertEqual((g.shape, g.dtype), ((3, 3), np.float64))
        taus = np.stack([np.concatenate([(m[k].astype(np.float64) - self.base[k]).ravel() for k in sorted(SHAPES)])
                         for m in self.models])
        want = taus @ taus.T
        # basin forms the task vectors and sums their products in float32 (docs/MAP.md): each entry
        # is within the float32 bound for a sum of L products in any order, plus the rounding of the
        # two task vectors, of the exact value: (L + 2) u sum_c |t_i,c t_j,c| (u = 2^-24). An entry
        # relative tolerance would not do: off the diagonal the products cancel.
        u = np.finfo(np.float32).eps / 2
        bound = (taus.shape[1] + 2) * u * (np.abs(taus) @ np.abs(taus).T)
        self.assertTrue(np.all(np.abs(g - want) <= bound), f"{np.abs(g - want) / bound}")

    def test_map_is_the_command_line(self):
        """basin.map against the files `basin map` writes for the same zoo (two groups of three)."""
        import csv
        import json
        rng = np.random.default_rng(3)
        dirs, rows = [], ["model,dataset"]
        for i in range(6):
            shift = 0.3 if i < 3 else -0.3
            d = write_model(os.path.join(WORK, "zoo", f"z{i}"),
                            {k: (v + shift + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
                             for k, v in self.base.items()})
            dirs.append(d)
            rows.append(f"{d},{'a' if i < 3 else 'b'}")
        groups = os.path.join(WORK, "zoo", "groups.csv")
        with open(groups, "w") as f:
            f.write("\n".join(rows) + "\n")
        listing = os.path.join(WORK, "zoo", "models.txt")
        with open(listing, "w") as f:
            f.write("\n".join(dirs) + "\n")
        out = os.path.join(WORK, "zoo-map")
        cli("map", "--base", self.base_dir, "--models", listing, "--groups", groups, "--out", out, "--quiet")
        r = basin.map(self.base_dir, dirs, groups)
        self.assertEqual(r["names"], [f"z{i}" for i in range(6)])
        with open(os.path.join(out, "similarity.csv")) as f:
            cosine = np.array([[float(x) for x in row[1:]] for row in list(csv.reader(f))[1:]])
        np.testing.assert_allclose(r["cosine"], cosine, atol=1e-9)
        with open(os.path.join(out, "embedding.csv")) as f:
            emb = list(csv.DictReader(f))
        np.testing.assert_allclose(r["pca"], [[float(e["pca_1"]), float(e["pca_2"])] for e in emb], atol=1e-8)
        np.testing.assert_allclose(r["tsne"], [[float(e["tsne_1"]), float(e["tsne_2"])] for e in emb], atol=1e-6)
        with open(os.path.join(out, "clusters.json")) as f:
            clusters = json.load(f)["dataset"]
        kind = next(k for k in r["kinds"] if k["kind"] == "dataset")
        self.assertEqual(kind["groups"], clusters["groups"])
        self.assertEqual(kind["label"], clusters["labels"])
        for c in kind["clusterings"]:
            want = clusters["methods"][c["method"]]
            self.assertEqual(c["clusters"], want["clusters"], c["method"])
            self.assertAlmostEqual(c["accuracy"], want["accuracy"], places=12)
            self.assertAlmostEqual(c["silhouette"], want["silhouette"], places=9)
        self.assertGreater(kind["within_mean"], kind["between_mean"])

    def test_map_matrix_is_the_command_line(self):
        """basin.map_matrix on numpy matrices against `basin map --similarity` (and --gram) on the same
        numbers written to CSV: clusterings, PCA, nestings, bootstrap intervals and distances equal."""
        import json
        rng = np.random.default_rng(5)
        datasets, families = ["a", "a", "b", "b", "c", "c", "d", "d"], ["x", "x", "x", "x", "y", "y", "y", "y"]
        centres = {d: rng.standard_normal(20) for d in set(datasets)}
        for d, f in zip(datasets, families):
            centres[d] += 0 if f == "x" else 3  # families: a and b, c and d
        taus = np.stack([centres[d] + 0.3 * rng.standard_normal(20) for d in datasets]) * rng.uniform(1, 3, (8, 1))
        gram = taus @ taus.T
        norms = np.sqrt(np.diag(gram))
        cosine = gram / np.outer(norms, norms)
        names = [f"m{i}" for i in range(8)]
        d = os.path.join(WORK, "given")
        os.makedirs(d, exist_ok=True)
        for name, m in (("similarity", cosine), ("gram", gram)):
            with open(os.path.join(d, name + ".csv"), "w") as f:
                f.write("model," + ",".join(names) + "\n")
                for n, row in zip(names, m):
                    f.write(n + "," + ",".join(repr(float(v)) for v in row) + "\n")
        with open(os.path.join(d, "groups.csv"), "w") as f:
            f.write("model,dataset,family\n" + "".join(f"{n},{a},{b}\n" for n, a, b in zip(names, datasets, families)))
        out = os.path.join(WORK, "given-map")
        cli("map", "--similarity", os.path.join(d, "similarity.csv"), "--gram", os.path.join(d, "gram.csv"), "--groups",
            os.path.join(d, "groups.csv"), "--bootstrap", "200", "--seed", "4", "--out", out, "--quiet")
        with open(os.path.join(out, "clusters.json")) as f:
            clusters = json.load(f)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        for groups in ({"dataset": datasets, "family": families}, os.path.join(d, "groups.csv")):
            r = basin.map_matrix(cosine, gram=gram, names=names, groups=groups, bootstrap=200, seed=4)
            self.assertEqual(r["names"], names)
            self.assertEqual((r["cosine"].dtype, r["cosine"].shape), (np.float64, (8, 8)))
            np.testing.assert_allclose(r["distance"], np.sqrt(np.maximum(
                np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2 * gram, 0)), rtol=1e-9, atol=1e-9)
            for kind in r["kinds"]:
                want = clusters[kind["kind"]]
                self.assertEqual(kind["label"], want["labels"])
                for c in kind["clusterings"]:
                    self.assertEqual(c["clusters"], want["methods"][c["method"]]["clusters"], c["method"])
                    self.assertAlmostEqual(c["accuracy"], want["methods"][c["method"]]["accuracy"], places=12)
            u = r["uncertainty"]
            self.assertEqual((u["resampled_within"], u["resamples"]), ("dataset", 200))
            for got, want in zip(u["kinds"], summary["uncertainty"]["kinds"]):
                self.assertEqual(got["kind"], want["kind"])
                for key in ("estimate", "low", "high"):
                    self.assertAlmostEqual(got["spectral_accuracy"][key], want["spectral_accuracy"][key], places=12)
            (nest,) = u["nestings"]
            (want,) = summary["uncertainty"]["nestings"]
            self.assertEqual((nest["fine"], nest["coarse"]), ("dataset", "family"))
            self.assertAlmostEqual(nest["fine_gap"]["low"], want["fine_gap"]["low"], places=12)
            self.assertAlmostEqual(nest["fine_structure"]["p_value"], want["fine_structure"]["p_value"], places=12)
            self.assertEqual([(n["fine"], n["coarse"]) for n in r["nestings"]], [("dataset", "family")])
        # the Gram matrix alone gives the same cosines; norms give the same distances
        alone = basin.map_matrix(gram=gram)
        np.testing.assert_allclose(alone["cosine"], r["cosine"], atol=1e-12)
        self.assertEqual(alone["names"], [f"model{i}" for i in range(1, 9)])
        with_norms = basin.map_matrix(cosine, norms=norms)
        np.testing.assert_allclose(with_norms["distance"], r["distance"], rtol=1e-9, atol=1e-9)
        self.assertIsNone(basin.map_matrix(cosine)["distance"], "no distances without lengths")
        # bad input: one clear error each, never a crash
        with self.assertRaisesRegex(TypeError, "similarity: expected a 2-D numpy array, got list"):
            basin.map_matrix(cosine.tolist())
        with self.assertRaisesRegex(ValueError, r"similarity: expected a square 2-D array, got shape \(8, 7\)"):
            basin.map_matrix(cosine[:, :7])
        skew = cosine.copy()
        skew[0, 1] += 0.01
        with self.assertRaisesRegex(basin.Error, "similarity row 1: not symmetric: row 'm0' column 'm1'"):
            basin.map_matrix(skew, names=names)
        bad_diagonal = cosine.copy()
        bad_diagonal[2, 2] = 0.5
        with self.assertRaisesRegex(basin.Error, "similarity row 3: the diagonal of 'model3' is 0.5; expected 1"):
            basin.map_matrix(bad_diagonal)
        with self.assertRaisesRegex(ValueError, r"groups\['dataset'\]: 3 labels for 8 models"):
            basin.map_matrix(cosine, groups={"dataset": ["a", "b", "c"]})
        other = gram.copy()
        other[0, 1] = other[1, 0] = 0.5 * gram[0, 1]
        with self.assertRaisesRegex(basin.Error, "gram row 1: column 'model2': its cosine .* differs from"):
            basin.map_matrix(cosine, gram=other)

    def test_map_per_layer_blocks_are_numpy(self):
        """map(per_layer=True): one cosine block per layer group, each numpy's cosine of that group's
        task-vector parts, equal to per_layer.csv of `basin map --per-layer`."""
        import csv
        r = basin.map(self.base_dir, self.dirs, per_layer=True)
        blocks = {b["layer"]: b for b in r["layers"]}
        groups = {"embeddings": ["embeddings.word_embeddings.weight"],
                  "layer 0": ["encoder.layer.0.attention.self.query.weight",
                              "encoder.layer.0.attention.self.query.bias"]}
        self.assertEqual(set(blocks), set(groups))
        for layer, tensors in groups.items():
            taus = np.stack([np.concatenate([(m[k].astype(np.float64) - self.base[k]).ravel() for k in tensors])
                             for m in self.models])
            n = np.linalg.norm(taus, axis=1)
            np.testing.assert_allclose(blocks[layer]["cosine"], taus @ taus.T / np.outer(n, n), atol=1e-6)
            self.assertEqual(blocks[layer]["parameters"], taus.shape[1])
        listing = os.path.join(WORK, "per-layer-models.txt")
        with open(listing, "w") as f:
            f.write("\n".join(self.dirs) + "\n")
        out = os.path.join(WORK, "per-layer-map")
        cli("map", "--base", self.base_dir, "--models", listing, "--per-layer", "--out", out, "--quiet")
        with open(os.path.join(out, "per_layer.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertTrue(rows)
        names = r["names"]
        for row in rows:
            i, j = names.index(row["model_a"]), names.index(row["model_b"])
            self.assertAlmostEqual(blocks[row["layer"]]["cosine"][i, j], float(row["cosine"]), places=9)

    def test_the_gil_is_released_during_a_long_merge(self):
        rng = np.random.default_rng(1)
        big = {"encoder.layer.0.output.dense.weight": rng.standard_normal((1024, 2048)).astype(np.float32)}
        dirs = [write_model(os.path.join(WORK, f"big{i}"), {k: v + i for k, v in big.items()}) for i in range(6)]
        base = write_model(os.path.join(WORK, "big-base"), big)
        ticks, done = [0], threading.Event()

        def count():
            while not done.is_set():
                ticks[0] += 1
                time.sleep(0.001)

        counter = threading.Thread(target=count)
        counter.start()
        start, before = time.time(), ticks[0]
        basin.merge("ties", dirs, os.path.join(WORK, "big-out"), base, density=0.2, threads=1)
        seconds, during = time.time() - start, ticks[0] - before
        done.set()
        counter.join()
        print(f"merge took {seconds:.2f} s; the other thread ticked {during} times meanwhile")
        # with the GIL held the counter could not run at all during the call
        self.assertGreater(during, 5)

    def test_ctrl_c_interrupts_a_long_call(self):
        """SIGINT 0.3 s into a merge of about a second: KeyboardInterrupt with the library's message,
        no output folder, and the next call works (the flag is cleared, Python's handler back)."""
        script = os.path.join(WORK, "interrupt.py")
        with open(script, "w") as f:
            f.write(f"""
import os, signal, sys, threading, time
sys.path.insert(0, {os.path.join(os.path.dirname(BASIN), "python")!r})
sys.path.insert(0, {os.path.join(HERE, "..", "reference")!r})
import numpy as np
import hf_reference as ref
import basin
work = {os.path.join(WORK, "interrupt")!r}
rng = np.random.default_rng(0)
def write(folder, tensors):
    os.makedirs(folder, exist_ok=True)
    ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{{"model_type": "roberta"}}')
    return folder
base = {{f"encoder.layer.{{i}}.output.dense.weight": rng.standard_normal(4096).astype(np.float32) for i in range(2000)}}
b = write(os.path.join(work, "base"), base)
models = [write(os.path.join(work, f"m{{k}}"), {{n: v + k for n, v in base.items()}}) for k in range(4)]
out = os.path.join(work, "out")
def fire():
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=fire).start()
start = time.time()
try:
    basin.merge("ties", models, out, b, threads=1)
    print("finished", time.time() - start)
except KeyboardInterrupt as e:
    print("interrupted:", e, round(time.time() - start, 2))
print("output exists:", os.path.exists(out))
basin.merge("mean", models[:2], os.path.join(work, "again"), threads=1)
print("again:", os.path.exists(os.path.join(work, "again", "basin_merge.json")))
print("python handler back:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
""")
        r = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120)
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("interrupted: interrupted by SIGINT while merging", r.stdout)
        self.assertIn("output exists: False", r.stdout)
        self.assertIn("again: True", r.stdout)
        self.assertIn("python handler back: True", r.stdout)

    def test_store_records_are_the_database(self):
        """The committed basin-mini study's store, read through basin.Store and through sqlite3."""
        import sqlite3
        path = os.path.join(HERE, "..", "..", "results", "reproduction", "store.sqlite")
        def content():
            with open(path, "rb") as f:
                return f.read()

        before = content()
        store = basin.Store(os.path.dirname(path))
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        jobs = {j["id"]: j for j in store.jobs()}
        self.assertEqual(set(jobs), {i for (i,) in db.execute("SELECT id FROM jobs")})
        for i, state, seconds in db.execute("SELECT id, state, seconds FROM jobs"):
            self.assertEqual((jobs[i]["state"], jobs[i]["seconds"]), (state, seconds))
        want = db.execute("SELECT job, subject, dataset, metric, value FROM metrics WHERE job LIKE 'centroid%' "
                          "ORDER BY job, subject, dataset, metric").fetchall()
        got = [(m["job"], m["subject"], m["dataset"], m["metric"], m["value"]) for m in store.metrics("centroid")]
        self.assertEqual(got, want)
        self.assertEqual(len(store.points()), db.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        self.assertEqual(sorted(m["sha256"] for m in store.models()),
                         sorted(h for (h,) in db.execute("SELECT sha256 FROM models")))
        self.assertIsInstance(store.models()[0]["provenance"], dict)
        self.assertEqual(store.meta("name"), "reproduction")
        db.close()
        del store
        self.assertEqual(content(), before, "reading changed the store")
        try:
            import pandas  # noqa: F401
            self.assertEqual(len(basin.frame(basin.Store(os.path.dirname(path)).metrics("centroid"))), len(want))
        except ImportError:
            with self.assertRaises(ImportError):
                basin.frame([])

    def test_the_example_runs(self):
        """examples/python/zoo.py on its synthetic zoo: the map finds the two groups, the centroid is written."""
        example = os.path.join(HERE, "..", "..", "examples", "python", "zoo.py")
        out = os.path.join(WORK, "example")
        env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(BASIN), "python"))
        r = subprocess.run([sys.executable, example, out], capture_output=True, text=True, env=env, cwd=WORK)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("spectral       clustering accuracy 100.0%", r.stdout)
        self.assertIn("centroid of 6 models", r.stdout)

    @unittest.skipUnless(basin.has_torch, "the package was built without libtorch (BASIN_PYTHON_ONLY)")
    def test_features_and_probe(self):
        """features() against the reference forward pass; probe() equal to `basin probe --json`."""
        import json
        words = "good great fine bad awful poor the a movie".split()
        vocab, (model,) = tiny_word_models(make_run(BASIN), os.path.join(WORK, "torch"), words, (4,))
        rng = np.random.default_rng(2)
        for split, n in (("train", 40), ("test", 20)):
            with open(os.path.join(WORK, "torch", split + ".jsonl"), "w") as f:
                for _ in range(n):
                    positive = bool(rng.integers(2))
                    text = " ".join(rng.choice(words[:3] if positive else words[3:6], 2)) + " " + \
                        " ".join(rng.choice(words[6:], 3))
                    f.write(json.dumps({"text": text, "label": "pos" if positive else "neg"}) + "\n")
        train, test = (os.path.join(WORK, "torch", s + ".jsonl") for s in ("train", "test"))
        got = basin.features(model, train, threads=1)
        self.assertEqual((got.dtype, got.shape), (np.float32, (40, 16)))
        with open(train) as f:
            texts = [json.loads(line)["text"] for line in f]
        ids = [[vocab["[CLS]"]] + [vocab[w] for w in t.split()] + [vocab["[SEP]"]] for t in texts]
        want = ref.features(model, ids).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        p = basin.probe(model, train, test, l2=1e-2, threads=1)
        cli_json = json.loads(make_run(BASIN)("probe", "--model", model, "--train", train, "--test", test, "--l2",
                                              "1e-2", "--no-cache", "--threads", "1", "--json").stdout)
        for key in ("test_loss", "test_accuracy", "train_loss", "train_accuracy"):
            self.assertAlmostEqual(p[key], cli_json[key], places=9, msg=key)
        self.assertEqual(p["labels"], cli_json["labels"])
        self.assertEqual(p["body_sha256"], cli_json["body_sha256"])

    @unittest.skipUnless(basin.has_torch, "the package was built without libtorch (BASIN_PYTHON_ONLY)")
    def test_region_scores_are_the_command_line(self):
        """interpolate(), hull() and plane() against scores.csv / grid.csv of `basin interpolate / hull /
        plane` on the same tiny models and datasets: the same losses and accuracies to the last digit."""
        import csv
        import json
        words = "good great fine bad awful poor the a movie".split()
        work = os.path.join(WORK, "region")
        _, models = tiny_word_models(make_run(BASIN), work, words, (5, 6, 7, 8))
        rng = np.random.default_rng(4)
        data = []
        for task, (left, right) in (("sent", (words[:3], words[3:6])), ("mixed", (words[::2], words[1::2]))):
            folder = os.path.join(work, task)
            os.makedirs(folder, exist_ok=True)
            for split, n in (("train", 30), ("test", 16)):
                with open(os.path.join(folder, split + ".jsonl"), "w") as f:
                    for _ in range(n):
                        first = bool(rng.integers(2))
                        text = " ".join(rng.choice(left if first else right, 3))
                        f.write(json.dumps({"text": text, "label": "x" if first else "y"}) + "\n")
            data.append(folder)
        common = ["--data", ",".join(data), "--no-cache", "--threads", "1", "--quiet"]

        def rows(path):
            with open(path) as f:
                return list(csv.DictReader(f))

        def check(got, table, index):
            self.assertEqual(got["targets"], ["sent", "mixed"])
            for row in table:
                p, t = index(row), got["targets"].index(row["dataset"])
                self.assertEqual(got["loss"][p, t], float(row["loss"]), (p, t))
                self.assertEqual(got["accuracy"][p, t], float(row["accuracy"]), (p, t))

        out = os.path.join(work, "line")
        cli("interpolate", models[0], models[1], "--alphas", "0:1:3", "--out", out, *common)
        got = basin.interpolate(models[0], models[1], data, alphas=[0, 0.5, 1], threads=1)
        self.assertEqual((got["loss"].shape, got["loss"].dtype), ((3, 2), np.float64))
        np.testing.assert_array_equal(got["alphas"], [0, 0.5, 1])
        check(got, rows(os.path.join(out, "scores.csv")), lambda row: list(got["alphas"]).index(float(row["alpha"])))
        seen = []
        basin.interpolate(models[0], models[1], data, alphas=[0, 0.5, 1], threads=1,
                          progress=lambda d, t: seen.append((d, t)))
        self.assertEqual(seen, [(1, 3), (2, 3), (3, 3)])

        def stop(done, total):
            raise ValueError("enough")
        with self.assertRaisesRegex(ValueError, "enough"):
            basin.interpolate(models[0], models[1], data, alphas=[0, 0.5, 1], threads=1, progress=stop)
        with self.assertRaisesRegex(TypeError, "progress: expected True, False or a callable"):
            basin.interpolate(models[0], models[1], data, progress="yes")

        group, outside = os.path.join(work, "group.txt"), os.path.join(work, "outside.txt")
        with open(group, "w") as f:
            f.write("\n".join(models[:3]) + "\n")
        with open(outside, "w") as f:
            f.write(models[3] + "\n")
        out = os.path.join(work, "hull")
        cli("hull", "--group", group, "--outside", outside, "--samples", "3", "--seed", "2", "--out", out, *common)
        got = basin.hull(models[:3], data, outside=[models[3]], samples=3, seed=2, threads=1)
        self.assertEqual([p["set"] for p in got["points"]], ["In"] * 3 + ["In'"] * 3 + ["Ex"])
        names = [p["name"] for p in got["points"]]
        check(got, rows(os.path.join(out, "scores.csv")), lambda row: names.index(row["point"]))
        with open(os.path.join(out, "summary.json")) as f:
            pb = json.load(f)["pb"]
        overall = next(r for r in got["pb"] if r["dataset"] == "all datasets")
        self.assertEqual(overall["PB(In', In)"]["value"], pb["all datasets"]["PB(In', In)"]["value"])

        out = os.path.join(work, "plane")
        cli("plane", *models[:3], "--grid", "3x2", "--out", out, *common)
        got = basin.plane(models[:3], data, grid="3x2", threads=1)
        self.assertEqual((len(got["u"]), len(got["v"]), got["loss"].shape), (3, 2, (6, 2)))
        self.assertEqual([m["model"] for m in got["markers"]], ["A", "B", "C"])
        check(got, rows(os.path.join(out, "grid.csv")), lambda row: int(row["j"]) * 3 + int(row["i"]))
        with self.assertRaisesRegex(basin.Error, "plane: needs three models A B C"):
            basin.plane(models[:2], data)

        # RegMean on each model's own data: the same bytes as basin merge --method regmean
        basin.regmean(models[:2], data, os.path.join(work, "py-regmean"), examples=20, threads=1)
        cli("merge", "--method", "regmean", "--models", ",".join(models[:2]), "--data", ",".join(data), "--examples",
            "20", "--threads", "1", "--out", os.path.join(work, "cli-regmean"))
        self.same_weights(os.path.join(work, "py-regmean"), os.path.join(work, "cli-regmean"))
        with self.assertRaisesRegex(TypeError, "call basin.regmean"):
            basin.merge("regmean", models[:2], os.path.join(work, "x"))

    def test_progress_callbacks(self):
        seen = []
        basin.merge("mean", self.dirs, os.path.join(WORK, "progress"), progress=lambda d, t: seen.append((d, t)))
        self.assertEqual(seen, [(k, len(SHAPES)) for k in range(1, len(SHAPES) + 1)])

        def stop(done, total):
            if done == 2:
                raise ValueError("enough")
        with self.assertRaises(ValueError):
            basin.merge("mean", self.dirs, os.path.join(WORK, "stopped"), progress=stop)
        self.assertFalse(os.path.exists(os.path.join(WORK, "stopped")))
        ticks = []
        basin.gram(self.base_dir, self.dirs, progress=lambda d, t: ticks.append((d, t)))  # may be too quick to tick
        self.assertTrue(all(0 <= d <= t for d, t in ticks))
        try:
            import tqdm  # noqa: F401
            basin.merge("mean", self.dirs, os.path.join(WORK, "tqdm"), progress=basin.tqdm_progress("merging"))
        except ImportError:
            pass

    def test_errors(self):
        with self.assertRaises(basin.Error) as e:
            basin.merge("average", self.dirs, os.path.join(WORK, "x"))
        self.assertIsInstance(e.exception, RuntimeError)
        self.assertIn("unknown merge method 'average'", str(e.exception))
        with self.assertRaises(basin.Error) as e:
            basin.Checkpoint(os.path.join(WORK, "nowhere"))
        self.assertIn("nowhere", str(e.exception))
        with self.assertRaises(KeyError):
            basin.Checkpoint(self.dirs[0]).tensor("no.such.tensor")
        with self.assertRaises(TypeError):
            basin.merge("mean", 5, os.path.join(WORK, "x"))
        with self.assertRaises(TypeError):
            basin.merge("mean", self.dirs, os.path.join(WORK, "x"), bogus=1)
        with self.assertRaises(basin.Error) as e:  # the base lacks a tensor: nothing written
            basin.gram(self.dirs[0], [write_model(os.path.join(WORK, "other"), {"x.weight": np.ones(3, np.float32)})])
        self.assertFalse(os.path.exists(os.path.join(WORK, "x")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
