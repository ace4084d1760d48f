#!/usr/bin/python3
"""basin run on a small experiment the test builds (a tiny encoder, three generated datasets in two
families, two seeds; every analysis): the store's metrics after runs killed (SIGKILL) at random
moments and resumed equal those of an uninterrupted run; a rerun does nothing; three runners started
together run every job once; a runner killed mid-job leaves its job to another; `mpirun -np 2` gives
the same metrics as one process; a failing job is recorded and blocks only its dependants; dry run
and status; bad specs.

usage: test_experiment.py BASIN WORK"""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
from keyword_data import write_keyword_split  # noqa: E402

BASIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.argv = sys.argv[:1]

TASKS = {
    "sentiment": {"pos": "good great fine lovely".split(), "neg": "bad awful poor sad".split()},
    "stars": {"high": "superb excellent top best".split(), "low": "worst dull weak boring".split()},
    "topic": {"animal": "dog cat horse bird".split(), "vehicle": "car truck train plane".split()},
}
FAMILIES = {"sentiment": "opinion", "stars": "opinion", "topic": "topic"}
FILLER = "the a it was quite very and this that so then there".split()
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def make_split(path, task, n, seed):
    write_keyword_split(path, n, seed, TASKS[task], FILLER, labels=sorted(TASKS[task]))


def spec_text(out, extra_datasets=""):
    datasets = "\n".join(f'{name} = "{family}"' for name, family in FAMILIES.items()) + extra_datasets
    return f"""
[experiment]
name = "small"
base = "base"
data_root = "data"
out = "{out}"
seeds = [1, 2]
threads = 1
max_length = 16

[datasets]
{datasets}

[finetune]
epochs = 2
lr = 1e-3
batch_size = 16

[map]
[interpolate]
alphas = "0:1:3"
[extrapolate]
[hull]
random = 1
[plane]
grid = "3x3"
[centroid]
seeds = [1, 2]
epochs = 1
lr = 5e-3
train_limit = 40
"""


def store_rows(out):
    """Every metric of the store, with experiment-specific paths made relative."""
    db = sqlite3.connect(os.path.join(WORK, out, "store.sqlite"))
    prefix = os.path.join(WORK, out) + "/"
    rows = [(j, s.replace(prefix, ""), d, m, v) for j, s, d, m, v in
            db.execute("SELECT job, subject, dataset, metric, value FROM metrics ORDER BY job, subject, dataset, metric")]
    jobs = dict(db.execute("SELECT id, state FROM jobs"))
    db.close()
    return rows, jobs


run = make_run(BASIN, cwd=WORK)


class Experiment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        words = sorted({w for t in TASKS.values() for ws in t.values() for w in ws} | set(FILLER))
        with open(os.path.join(WORK, "tokenizer.json"), "w") as f:
            json.dump(ref.tokenizer_json("bert", words), f)
        run("init-model", "--out", os.path.join(WORK, "base"), "--tokenizer", os.path.join(WORK, "tokenizer.json"),
            "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32", "--max-positions", "20", "--seed", "3")
        for i, task in enumerate(TASKS):
            d = os.path.join(WORK, "data", task)
            os.makedirs(d)
            make_split(os.path.join(d, "train.jsonl"), task, 80, i)
            make_split(os.path.join(d, "test.jsonl"), task, 40, i + 10)
        for name in ("reference", "killed", "mpi", "failing"):
            with open(os.path.join(WORK, f"{name}.toml"), "w") as f:
                f.write(spec_text(f"runs/{name}"))
        start = time.time()
        run("run", "reference.toml", "--quiet")
        cls.reference_seconds = time.time() - start
        cls.reference = store_rows("runs/reference")

    def test_uninterrupted_run_records_every_job(self):
        rows, jobs = self.reference
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        kinds = {j.split("/")[0] for j in jobs}
        self.assertEqual(kinds, {"finetune", "map", "interpolate", "extrapolate", "hull", "plane", "centroid"})
        metrics = {(j, m) for j, _, _, m, _ in rows}
        self.assertIn(("map", "clustering_accuracy/dataset/spectral"), metrics)
        self.assertTrue(any(m == "PB(In', In)" for _, m in metrics))
        self.assertTrue(any(j == "centroid" and m == "difference" for j, m in metrics))
        # a rerun finds everything done and runs nothing
        r = run("run", "reference.toml")
        self.assertIn(f"({len(jobs)} skipped as finished earlier)", r.stderr)
        self.assertEqual(store_rows("runs/reference"), self.reference)
        status = run("status", "reference.toml").stdout
        self.assertIn(f"{len(jobs)} done of {len(jobs)} jobs", status)
        dry = run("run", "reference.toml", "--dry-run").stdout
        self.assertIn("done    finetune/sentiment-s1", dry)

    def test_killed_at_random_moments_and_resumed_gives_the_same_store(self):
        rng = random.Random(7)
        kills = 0
        for _ in range(4):
            p = subprocess.Popen([BASIN, "run", "killed.toml", "--quiet"], cwd=WORK, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, max(0.6, self.reference_seconds * 0.4)))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
        self.assertGreater(kills, 0, "no run was killed: the experiment finished too fast")
        run("run", "killed.toml", "--quiet")
        rows, jobs = store_rows("runs/killed")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        self.assertEqual(rows, self.reference[0])

    def test_concurrent_runners_run_each_job_once(self):
        # three runners started together on one experiment split it: every job runs exactly once
        with open(os.path.join(WORK, "concurrent.toml"), "w") as f:
            f.write(spec_text("runs/concurrent"))
        runners = [subprocess.Popen([BASIN, "run", "concurrent.toml"], cwd=WORK, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate()[1] for p in runners]
        self.assertEqual([p.returncode for p in runners], [0, 0, 0], errors)
        rows, jobs = store_rows("runs/concurrent")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        db = sqlite3.connect(os.path.join(WORK, "runs", "concurrent", "store.sqlite"))
        attempts = dict(db.execute("SELECT id, attempts FROM jobs"))
        claims = db.execute("SELECT count(*) FROM claims").fetchone()[0]
        db.close()
        self.assertEqual(set(attempts.values()), {1}, attempts)
        self.assertEqual(claims, 0, "finished runners leave no claims behind")
        self.assertEqual(rows, self.reference[0])
        self.assertTrue(any("by other runners" in e for e in errors), errors)

    def test_a_runner_killed_mid_job_leaves_its_job_to_the_others(self):
        with open(os.path.join(WORK, "takeover.toml"), "w") as f:
            f.write(spec_text("runs/takeover"))
        victim = subprocess.Popen([BASIN, "run", "takeover.toml", "--quiet"], cwd=WORK, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        store = os.path.join(WORK, "runs", "takeover", "store.sqlite")
        held = []
        for _ in range(600):  # until the victim holds a running job
            if os.path.exists(store):
                try:
                    db = sqlite3.connect(store)
                    held = [job for (job,) in db.execute("SELECT job FROM claims WHERE pid = ?", (victim.pid,))]
                    db.close()
                except sqlite3.OperationalError:  # the schema is being made
                    pass
            if held:
                break
            time.sleep(0.05)
        self.assertTrue(held, "the runner never claimed a job")
        # a second runner starts while the first holds the job, then the first dies with its claim
        other = subprocess.Popen([BASIN, "run", "takeover.toml", "--quiet"], cwd=WORK, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        start = time.time()
        err = other.communicate()[1]
        self.assertEqual(other.returncode, 0, err)
        # the dead runner's process is gone: its claim is taken over at once, not after the
        # 120 s a claim of another host would need to go stale
        self.assertLess(time.time() - start, 100)
        rows, jobs = store_rows("runs/takeover")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        self.assertEqual(rows, self.reference[0])
        db = sqlite3.connect(store)
        self.assertEqual(db.execute("SELECT count(*) FROM claims").fetchone()[0], 0)
        db.close()

    def test_only_and_pieces_resume_a_long_job_from_the_store_alone(self):
        # --only runs the matching jobs and what they need; a long job's finished pieces (the
        # centroid comparison's runs) are kept in the store, so that on a machine where only the
        # store arrived (a new checkout) the next attempt starts from them
        with open(os.path.join(WORK, "pieces.toml"), "w") as f:
            f.write(spec_text("runs/pieces"))
        out = os.path.join(WORK, "runs", "pieces")
        r = run("run", "pieces.toml", "--only", "nosuch/*", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--only 'nosuch/*': no job of this experiment matches (its jobs: centroid, extrapolate/*,",
                      r.stderr)
        p = subprocess.Popen([BASIN, "run", "pieces.toml", "--only", "centroid"], cwd=WORK, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        runs = os.path.join(out, "jobs", "centroid", "out", "runs")
        finished = []
        for _ in range(6000):  # until two of its twelve runs are finished
            finished = [os.path.join(t, r) for t in (os.listdir(runs) if os.path.isdir(runs) else [])
                        for r in os.listdir(os.path.join(runs, t))
                        if os.path.exists(os.path.join(runs, t, r, "basin_run.json"))]
            if len(finished) >= 2 or p.poll() is not None:
                break
            time.sleep(0.05)
        self.assertIsNone(p.poll(), "the comparison ended before it could be interrupted")
        p.send_signal(signal.SIGINT)
        err = p.communicate()[1]
        self.assertNotEqual(p.returncode, 0, err)
        db = sqlite3.connect(os.path.join(out, "store.sqlite"))
        jobs = dict(db.execute("SELECT id, state FROM jobs"))
        kept = [path for (path,) in db.execute("SELECT path FROM pieces WHERE job = 'centroid' ORDER BY path")]
        db.close()
        self.assertEqual(set(jobs), {"finetune/sentiment-s1", "finetune/stars-s1", "finetune/topic-s1", "centroid"})
        self.assertEqual(jobs["centroid"], "interrupted")
        self.assertGreaterEqual(len(kept), 2)
        self.assertTrue(all(k.startswith("runs/") and k.endswith("/basin_run.json") for k in kept), kept)
        # a new machine: the store travels, the output folders do not
        for name in os.listdir(out):
            if not name.startswith("store.sqlite"):
                shutil.rmtree(os.path.join(out, name))
        r = run("run", "pieces.toml", "--only", "centroid")
        self.assertIn(f"centroid: {len(kept)} finished pieces of an earlier attempt restored", r.stderr)
        with open(os.path.join(out, "logs", "centroid.log")) as f:
            self.assertEqual(f.read().count(": reusing "), len(kept))
        rows, jobs = store_rows("runs/pieces")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        self.assertEqual([r for r in rows if r[0] == "centroid"], [r for r in self.reference[0] if r[0] == "centroid"])
        db = sqlite3.connect(os.path.join(out, "store.sqlite"))
        self.assertEqual(db.execute("SELECT count(*) FROM pieces").fetchone()[0], 0, "a finished job keeps no pieces")
        db.close()

    def test_a_damaged_checkpoint_is_made_again_not_used(self):
        with open(os.path.join(WORK, "damaged.toml"), "w") as f:
            f.write(spec_text("runs/damaged"))
        run("run", "damaged.toml", "--quiet")
        weights = os.path.join(WORK, "runs", "damaged", "models", "topic-s2", "model.safetensors")
        with open(weights, "r+b") as f:  # truncated after it was recorded
            f.truncate(os.path.getsize(weights) // 2)
        r = run("run", "damaged.toml")
        self.assertIn("started finetune/topic-s2", r.stderr)
        self.assertNotIn("started finetune/topic-s1", r.stderr)
        self.assertGreater(os.path.getsize(weights), 0)
        rows, jobs = store_rows("runs/damaged")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        self.assertEqual(rows, self.reference[0])

    def test_mpirun_gives_the_same_metrics(self):
        if shutil.which("mpirun") is None:
            self.skipTest("mpirun is not installed (openmpi-bin)")
        env = dict(os.environ, **MPI_ENV)
        r = subprocess.run(["mpirun", "-np", "2", BASIN, "run", "mpi.toml", "--quiet"], cwd=WORK, env=env,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        rows, jobs = store_rows("runs/mpi")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        db = sqlite3.connect(os.path.join(WORK, "runs", "mpi", "store.sqlite"))
        self.assertEqual(db.execute("SELECT value FROM meta WHERE key = 'ranks'").fetchone()[0], "2")
        db.close()
        self.assertEqual(rows, self.reference[0])

    def test_a_failing_job_blocks_only_its_dependants(self):
        d = os.path.join(WORK, "data", "onelabel")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "train.jsonl"), "w") as f:
            f.write("".join(json.dumps({"text": "the dog", "label": "x"}) + "\n" for _ in range(10)))
        with open(os.path.join(d, "test.jsonl"), "w") as f:
            f.write(json.dumps({"text": "the cat", "label": "x"}) + "\n")
        with open(os.path.join(WORK, "failing.toml"), "w") as f:
            f.write(spec_text("runs/failing", '\nonelabel = "topic"'))
        r = run("run", "failing.toml", "--quiet", check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        db = sqlite3.connect(os.path.join(WORK, "runs", "failing", "store.sqlite"))
        jobs = dict(db.execute("SELECT id, state FROM jobs"))
        errors = dict(db.execute("SELECT id, error FROM jobs"))
        db.close()
        self.assertEqual(jobs["finetune/onelabel-s1"], "failed")
        self.assertIn("at least 2 labels", errors["finetune/onelabel-s1"])
        self.assertEqual(jobs["map"], "blocked")
        self.assertEqual(jobs["finetune/sentiment-s1"], "done")
        self.assertEqual(jobs["interpolate/sentiment-s1--sentiment-s2"], "done")

    def test_report_opens_offline_and_draws_every_figure(self):
        r = run("report", "reference.toml")
        html = os.path.join(WORK, "runs", "reference", "report", "report.html")
        with open(html) as f:
            first = f.read()
        run("report", os.path.join(WORK, "runs", "reference"))
        with open(html) as f:
            self.assertEqual(f.read(), first, "the report is a function of the store")
        figures = first.count('<figure class="chart"')
        self.assertIn(f"({figures} figures", r.stdout)
        self.assertGreaterEqual(figures, 8)
        for needle in ("t-SNE", "Interpolation", "Extrapolation", "PB(In', In)", "centroid", "Experiment spec"):
            self.assertIn(needle, first)
        self.assertNotIn("http://", first.replace('xmlns="http://www.w3.org/2000/svg"', ""), "no network resources")
        self.assertNotIn("https://", first)
        for name in ("tsne-dataset", "centroid", "plane"):
            for ext in (".svg", ".pdf"):
                self.assertTrue(os.path.exists(os.path.join(WORK, "runs", "reference", "report", "figures", name + ext)))
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            self.skipTest("chromium is not installed: the page was not opened in a browser")
        browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                   "--window-size=1200,4000"]
        dom = subprocess.run(browser + ["--dump-dom", "file://" + html], capture_output=True, text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        self.assertIn(f'data-figures-shown="{figures}"', dom.stdout, "every figure laid out with a visible size")
        self.assertEqual(dom.stdout.count('data-rendered="yes"'), figures)
        console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        self.assertEqual(console_errors, [])
        png = os.path.join(WORK, "report.png")
        shot = subprocess.run(browser + ["--screenshot=" + png, "file://" + html], capture_output=True, text=True,
                              timeout=120)
        self.assertEqual(shot.returncode, 0, shot.stderr[-2000:])
        self.assertGreater(os.path.getsize(png), 20000, "a screenshot with content, not a blank page")

    def test_markdown_report_is_a_function_of_the_store_alone(self):
        exp = os.path.join(WORK, "runs", "reference")
        doc = os.path.join(WORK, "doc", "SMALL.md")
        run("report", exp, "--markdown", doc)
        with open(doc) as f:
            first = f.read()
        with open(os.path.join(exp, "report", "report.html")) as f:
            html = f.read()
        stale = os.path.join(WORK, "doc", "small", "a-figure-no-longer-drawn.svg")
        with open(stale, "w") as f:
            f.write("<svg/>")
        # the job folders (embedding.csv, plane markers, ...) are not needed: the store holds everything
        os.rename(os.path.join(exp, "jobs"), os.path.join(exp, "jobs.away"))
        try:
            run("report", exp, "--markdown", doc)
        finally:
            os.rename(os.path.join(exp, "jobs.away"), os.path.join(exp, "jobs"))
        with open(doc) as f:
            self.assertEqual(f.read(), first, "the same store gives the same document")
        self.assertFalse(os.path.exists(stale), "figures the report no longer draws are removed")
        with open(os.path.join(exp, "report", "report.html")) as f:
            self.assertEqual(f.read(), html, "the HTML report does not read job folders either")
        self.assertEqual(first.count("\n*Table "), html.count("<caption>Table "))
        figures = [line.split("](")[1].rstrip(")") for line in first.splitlines() if line.startswith("![Figure")]
        self.assertEqual(len(figures), html.count('<figure class="chart"'))
        for f in figures:
            self.assertTrue(os.path.getsize(os.path.join(WORK, "doc", f)) > 500, f)
        self.assertIn("tsne-dataset", first)
        # the per-dataset similarity table: the cosine between a dataset's two seeds, as map wrote it
        with open(os.path.join(exp, "jobs", "map", "out", "similarity.csv")) as f:
            header, *lines = [line.strip().split(",") for line in f]
        cos = {(row[0], header[j]): float(row[j]) for row in lines for j in range(1, len(header))}
        row = [line for line in first.splitlines()  # the 6-column tightness table, not the accuracy summary
               if line.startswith("| sentiment | opinion |") and len(line.split("|")) == 8]
        self.assertEqual(len(row), 1, first)
        self.assertEqual(row[0].split("|")[3].strip(), f"{cos[('sentiment-s1', 'sentiment-s2')]:.4f}")
        self.assertIn("similarity.svg", first)
        # the comparison with the paper: its PB row is the mean of the store's dataset-level PB values
        db = sqlite3.connect(os.path.join(exp, "store.sqlite"))
        values = [v for (v,) in db.execute(
            "SELECT value FROM metrics WHERE job LIKE 'hull/dataset/%' AND subject = 'pb' AND dataset = 'all datasets' "
            "AND metric = 'PB(In'', In)'")]
        db.close()
        self.assertEqual(len(values), 3)
        row = [line for line in first.splitlines() if line.startswith("| PB(In', In), dataset level (hull samples")]
        self.assertEqual(len(row), 1, first)
        self.assertEqual(row[0].split("|")[3].strip(), f"{100 * sum(values) / len(values):.2f}%")
        self.assertIn("| 88.00% |", row[0])
        self.assertIn("### Where the results agree", first)
        self.assertIn("### Where they differ", first)
        self.assertIn("body parameters", first, "the scale of the experiment, from the base model recorded in the store")

    def test_centroid_variants_are_jobs_of_their_own(self):
        text = spec_text("runs/variants")
        text = text[:text.index("[map]")] + """[hull]
random = 1
max_samples = 2
[[centroid]]
name = "bitfit-40"
seeds = [1, 2]
epochs = 1
lr = 5e-3
train_limit = 40
[[centroid]]
name = "full-40"
mode = "full"
seeds = [1, 2]
epochs = 1
lr = 1e-3
train_limit = 40
workers = 2
"""
        with open(os.path.join(WORK, "variants.toml"), "w") as f:
            f.write(text)
        dry = run("run", "variants.toml", "--dry-run").stdout
        self.assertIn("--samples 2", dry)  # the general hull has 6 members, capped at 2 samples
        run("run", "variants.toml", "--quiet", "--jobs", "2")
        exp = os.path.join(WORK, "runs", "variants")
        db = sqlite3.connect(os.path.join(exp, "store.sqlite"))
        jobs = dict(db.execute("SELECT id, state FROM jobs WHERE kind = 'centroid'"))
        self.assertEqual(jobs, {"centroid/bitfit-40": "done", "centroid/full-40": "done"})
        # --jobs 2 runs two jobs at once, but the variant with workers = 2 fills both slots: it
        # overlaps no other job (times are the runner's own clock, recorded in order)
        spans = dict((i, (a, b)) for i, a, b in db.execute("SELECT id, started, finished FROM jobs"))
        overlaps = {(i, k) for i, (a, b) in spans.items() for k, (c, d) in spans.items() if i < k and a < d and c < b}
        self.assertTrue(overlaps, "--jobs 2 ran one job at a time")
        self.assertEqual({pair for pair in overlaps if "centroid/full-40" in pair}, set(), spans)
        diffs = {job: [v for (v,) in db.execute("SELECT value FROM metrics WHERE job = ? AND metric = 'difference'", (job,))]
                 for job in jobs}
        db.close()
        self.assertEqual({len(v) for v in diffs.values()}, {3})
        doc = os.path.join(WORK, "doc", "VARIANTS.md")
        run("report", exp, "--markdown", doc)
        with open(doc) as f:
            md = f.read()
        self.assertIn("### BitFit, at most 40 training examples", md)
        self.assertIn("### full fine-tuning, at most 40 training examples", md)
        for job, title in (("centroid/bitfit-40", "BitFit"), ("centroid/full-40", "full fine-tuning")):
            row = [line for line in md.splitlines()
                   if line.startswith(f"| centroid vs pretrained start, {title}, at most 40")]
            self.assertEqual(len(row), 1, md)
            mean = 100 * sum(diffs[job]) / len(diffs[job])
            self.assertTrue(row[0].split("|")[3].strip().startswith(f"{'+' if mean >= 0 else ''}{mean:.2f} points"), row[0])
        self.assertIn("no paper number", [line for line in md.splitlines() if "full fine-tuning, at most 40" in line][0])
        for name in ("bitfit-40", "full-40"):
            self.assertTrue(os.path.exists(os.path.join(WORK, "doc", "variants", f"centroid-{name}.svg")))

    def test_search_jobs_compare_with_the_centroid(self):
        text = spec_text("runs/search")
        text = text[:text.index("[map]")] + "[search]\nbudget = 4\nheld_out = 0.3\n"
        with open(os.path.join(WORK, "search.toml"), "w") as f:
            f.write(text)
        dry = run("run", "search.toml", "--dry-run").stdout
        self.assertIn("--budget 4", dry)
        run("run", "search.toml", "--quiet")
        exp = os.path.join(WORK, "runs", "search")
        db = sqlite3.connect(os.path.join(exp, "store.sqlite"))
        jobs = dict(db.execute("SELECT id, state FROM jobs WHERE kind = 'search'"))
        self.assertEqual(jobs, {f"search/{t}": "done" for t in TASKS})
        loss = {(j, s, m): v for j, s, m, v in
                db.execute("SELECT job, subject, metric, value FROM metrics WHERE job LIKE 'search/%'")}
        db.close()
        for t in TASKS:
            job = f"search/{t}"
            for row in ("searched", "centroid", "ties", "dare", "greedy-soup", "best-member"):
                self.assertIn((job, row, "test_loss"), loss, (job, row))
            # the search starts from the best of the members and the centroid on the selection loss
            self.assertLessEqual(loss[(job, "searched", "selection_loss")],
                                 loss[(job, "centroid", "selection_loss")] + 1e-12)
            with open(os.path.join(exp, "jobs", "search", t, "group.txt")) as f:
                group = f.read()
            self.assertNotIn(f"{t}-s", group, "the target's own models are left out, as for the centroid")
        doc = os.path.join(WORK, "doc", "SEARCH.md")
        run("report", exp, "--markdown", doc)
        with open(doc) as f:
            md = f.read()
        self.assertIn("## Searching the region", md)
        wins = sum(loss[(f"search/{t}", "searched", "test_loss")] < loss[(f"search/{t}", "centroid", "test_loss")]
                   for t in TASKS)
        row = [line for line in md.splitlines() if line.startswith("| searched lower on")]
        self.assertEqual(len(row), 1, md)
        self.assertEqual(row[0].split("|")[3].strip(), f"{wins} of {len(TASKS)}")

    def test_an_adapter_zoo_runs_every_analysis(self):
        """[finetune] mode = "lora": every fine-tune is a PEFT adapter folder of the base, and the map,
        the lines, hulls, plane, centroid and searches read them (given the base)."""
        text = spec_text("runs/lora").replace("[finetune]\n", '[finetune]\nmode = "lora"\nlora_rank = 2\n'
                                                                'lora_targets = ["query", "value", "dense"]\n')
        text = text.replace("lr = 1e-3", "lr = 5e-3") + "[search]\nbudget = 2\nheld_out = 0.3\n"
        # the centroid (the adapters' mean task vector on the base, a full checkpoint) fine-tuned by LoRA too
        text = text.replace("[centroid]\n", '[centroid]\nmode = "lora"\n')
        with open(os.path.join(WORK, "lora.toml"), "w") as f:
            f.write(text)
        dry = run("run", "lora.toml", "--dry-run").stdout
        self.assertIn("--mode lora --lora-rank 2 --lora-alpha 16 --lora-targets query,value,dense", dry)
        self.assertEqual(dry.count("--mode lora --lora-rank 2"), 6, dry)  # the six fine-tunes
        centroid = [line for line in dry.splitlines() if "basin init-compare" in line]
        self.assertEqual(len(centroid), 1)
        self.assertIn("--mode lora --seeds 1,2 --lora-rank 2 --lora-alpha 16", centroid[0])
        run("run", "lora.toml", "--quiet")
        exp = os.path.join(WORK, "runs", "lora")
        rows, jobs = store_rows("runs/lora")
        self.assertTrue(all(state == "done" for state in jobs.values()), jobs)
        self.assertEqual({j.split("/")[0] for j in jobs}, {"finetune", "map", "interpolate", "extrapolate", "hull",
                                                           "plane", "centroid", "search"})
        model = os.path.join(exp, "models", "topic-s1")
        self.assertTrue(os.path.exists(os.path.join(model, "adapter_config.json")))
        self.assertFalse(os.path.exists(os.path.join(model, "model.safetensors")))
        metrics = {(j, m) for j, _, _, m, _ in rows}
        self.assertIn(("map", "clustering_accuracy/dataset/spectral"), metrics)
        self.assertTrue(any(m == "PB(In', In)" for _, m in metrics))
        self.assertTrue(any(j == "centroid" and m == "difference" for j, m in metrics))
        subjects = {(j, s) for j, s, _, _, _ in rows if j.startswith("search/")}
        for t in TASKS:
            for row in ("searched", "centroid", "greedy-soup", "best-member"):
                self.assertIn((f"search/{t}", row), subjects)
        # the store knows the adapters' weights by their file's hash
        db = sqlite3.connect(os.path.join(exp, "store.sqlite"))
        (stored,), = db.execute("SELECT sha256 FROM models WHERE job = 'finetune/topic-s1'")
        db.close()
        info = json.loads(run("inspect", model, "--json").stdout)
        self.assertEqual(info["adapter"]["r"], 2)
        self.assertEqual(len(stored), 64)
        run_record = os.path.join(exp, "jobs", "centroid", "out", "runs", "topic", "centroid-s1")
        self.assertTrue(os.path.exists(os.path.join(run_record, "adapter_config.json")))
        run("report", exp)

    def test_a_dataset_with_more_seeds_and_a_document_for_two_studies(self):
        # a second study: another base folder (the same weights), one dataset with a third seed,
        # published accuracies for one dataset; no centroid (the comparison needs only findings)
        shutil.copytree(os.path.join(WORK, "base"), os.path.join(WORK, "base-copy"), dirs_exist_ok=True)
        text = spec_text("runs/seeds").replace('base = "base"', 'base = "base-copy"').replace(
            'topic = "topic"', 'topic = { family = "topic", seeds = [1, 2, 3] }')
        text = text[:text.index("[centroid]")] + '[published]\nsource = "a made-up paper"\ntopic = 91.5\n[estimate]\nfinetune = 0.25\n'
        with open(os.path.join(WORK, "seeds.toml"), "w") as f:
            f.write(text)
        dry = run("run", "seeds.toml", "--dry-run").stdout
        self.assertIn("finetune/topic-s3", dry)
        self.assertNotIn("finetune/sentiment-s3", dry)
        run("run", "seeds.toml", "--quiet")
        with open(os.path.join(WORK, "runs", "seeds", "jobs", "hull", "dataset-topic", "group.txt")) as f:
            self.assertEqual(len(f.read().split()), 3, "the topic hull has its three seeds as members")

        reference, seeds = os.path.join(WORK, "runs", "reference"), os.path.join(WORK, "runs", "seeds")
        singles = {}
        for name, exp in (("reference", reference), ("seeds", seeds)):
            doc = os.path.join(WORK, "doc", f"ONE-{name}.md")
            run("report", exp, "--markdown", doc)
            with open(doc) as f:
                singles[name] = {line.split("|")[1].strip(): line.split("|")[3].strip()
                                 for line in f.read().split("*Table 2.")[0].splitlines() if line.startswith("| ") and "|" in line[2:]}
        doc = os.path.join(WORK, "doc", "BOTH.md")
        run("report", reference, seeds, "--markdown", doc)
        with open(doc) as f:
            both = f.read()
        run("report", reference, seeds, "--markdown", doc)
        with open(doc) as f:
            self.assertEqual(f.read(), both, "the same stores give the same document")
        # Table 1: every finding with each study's number, as each study's own report gives it
        table1 = [line.split("|") for line in both.split("*Table 2.")[0].splitlines() if line.startswith("| ")]
        self.assertEqual(table1[0][3].strip(), "base")
        self.assertEqual(table1[0][6].strip(), "base-copy")
        rows = {cells[1].strip(): (cells[3].strip(), cells[6].strip()) for cells in table1[1:]}
        self.assertIn("same-dataset clustering accuracy (spectral)", rows)
        for finding, (first, second) in rows.items():
            self.assertEqual(first, singles["reference"].get(finding, "-"), finding)
            self.assertEqual(second, singles["seeds"].get(finding, "-"), finding)
        # Table 2: the change per finding, in points for shares
        change = [line.split("|") for line in both.splitlines() if line.startswith("| same-dataset clustering accuracy")][1]
        a, b = (float(c.strip().rstrip("%")) for c in change[2:4])
        self.assertEqual(change[4].strip(), f"{b - a:+.2f} points")
        self.assertIn("## What comparing the two bases shows", both)
        self.assertIn("### Agree with the paper on both bases", both)
        # fine-tuned accuracy side by side: the topic dataset with 3 seeds on the second base, and its published number
        topic = [line for line in both.splitlines() if line.startswith("| topic |")][0].split("|")
        self.assertTrue(topic[3].strip().endswith("(2)") and topic[4].strip().endswith("(3)"), topic)
        self.assertEqual(topic[5].strip(), "91.5")
        self.assertIn("published for base-copy (%)", both)
        self.assertIn("## Study 1: small (base base)", both)
        # compute by job kind: the store's seconds, beside the spec's estimate
        db = sqlite3.connect(os.path.join(seeds, "store.sqlite"))
        (n, seconds), = db.execute("SELECT count(*), sum(seconds) FROM jobs WHERE kind = 'finetune' AND state = 'done'")
        db.close()
        self.assertIn(f"| finetune | {n} | {seconds / 3600:.2f} | {seconds / n:.0f} | 0.25 |", both)
        self.assertIn("(Table 1, column base-copy)", both, "each study's account points at its column")
        figures = sorted(os.listdir(os.path.join(WORK, "doc", "both")))
        self.assertIn("reference-similarity.svg", figures)  # figures named after each study's folder
        self.assertEqual([f for f in figures if "-tsne-" in f],
                         ["reference-tsne-dataset.svg", "reference-tsne-family.svg", "seeds-tsne-dataset.svg", "seeds-tsne-family.svg"])

    def test_one_weights_hash_in_every_record(self):
        # fine-tuning (basin_run.json), merging (basin_merge.json) and the store name a model's
        # weights by the same value: a single file's SHA-256; for shards, the SHA-256 of their hex
        # digests joined in file-name order
        import hashlib
        exp = os.path.join(WORK, "runs", "reference")
        model = os.path.join(exp, "models", "sentiment-s1")
        db = sqlite3.connect(os.path.join(exp, "store.sqlite"))
        (stored,), = db.execute("SELECT sha256 FROM models WHERE job = 'finetune/sentiment-s1'")
        db.close()
        with open(os.path.join(model, "model.safetensors"), "rb") as f:
            self.assertEqual(stored, hashlib.sha256(f.read()).hexdigest())
        work = os.path.join(WORK, "hash")
        shutil.rmtree(work, ignore_errors=True)
        sharded = os.path.join(work, "sharded")
        run("merge", "--models", model + "," + os.path.join(exp, "models", "topic-s1"), "--out", sharded,
            "--shard-size", "4K")
        with open(os.path.join(sharded, "model.safetensors.index.json")) as f:
            shards = list(dict.fromkeys(json.load(f)["weight_map"].values()))
        self.assertGreater(len(shards), 1)
        with open(os.path.join(sharded, "model.safetensors.index.json")) as f:
            order = sorted(set(json.load(f)["weight_map"].values()))
        digests = ""
        for name in order:
            with open(os.path.join(sharded, name), "rb") as f:
                digests += hashlib.sha256(f.read()).hexdigest()
        expected = {model: stored, sharded: hashlib.sha256(digests.encode()).hexdigest()}
        for i, (start, value) in enumerate(expected.items()):
            merged = os.path.join(work, f"merged-{i}")
            run("merge", "--models", start + "," + os.path.join(exp, "models", "topic-s2"), "--out", merged)
            with open(os.path.join(merged, "basin_merge.json")) as f:
                self.assertEqual(json.load(f)["models"][0]["sha256"], value, start)
            tuned = os.path.join(work, f"tuned-{i}")
            run("finetune", "--model", start, "--train", os.path.join(WORK, "data", "topic", "train.jsonl"), "--out", tuned,
                "--max-steps", "1", "--max-length", "16", "--threads", "1", "--quiet")
            with open(os.path.join(tuned, "basin_run.json")) as f:
                self.assertEqual(json.load(f)["inputs"]["model"]["weights_sha256"], value, start)

    def test_bad_specs(self):
        cases = {
            "[experiment]\nbase = 'base'\n": "needs base and data_root",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\nnope = 'x'\n": "nope",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\nseeds = 'one'\n[datasets]\ntopic = 'x'\n": "list of seeds",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[hul]\n": "unknown section [hul]",
            "[experiment\n": "bad.toml:1",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[[centroid]]\nmode = 'full'\n":
                "each [[centroid]] needs a name",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[[centroid]]\nname = 'a'\n"
            "[[centroid]]\nname = 'a'\n": "two centroid variants named 'a'",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = { seeds = [1] }\n": "topic: needs a family",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\nseeds = [1, 2]\n[datasets]\ntopic = { family = 'x', seeds = [1, 3] }\n":
                "its seeds must include the experiment's (2 is missing)",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = { family = 'x', colour = 'red' }\n":
                "unknown key 'colour' in [datasets.topic]",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[published]\nsource = 's'\nsst2 = 90\n":
                "[published] sst2 is not one of the spec's datasets",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[published]\ntopic = 90\n":
                "[published] needs a source",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[published]\nsource = 's'\ntopic = 0.9e3\n":
                "must be an accuracy in percent",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[estimate]\nfinetunes = 1\n":
                "[estimate] finetunes is not a job kind",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[finetune]\nmode = 'qlora'\n":
                "bad.toml:7: mode 'qlora' is not full, bitfit, head or lora",
            "[experiment]\nbase = 'base'\ndata_root = 'data'\n[datasets]\ntopic = 'x'\n[finetune]\nlora_targets = 'query'\n":
                "'lora_targets' must be a list of layer names",
        }
        for text, message in cases.items():
            with open(os.path.join(WORK, "bad.toml"), "w") as f:
                f.write(text)
            r = run("run", "bad.toml", check=False)
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(message, r.stderr, text)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
