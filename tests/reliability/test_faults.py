#!/usr/bin/python3
"""Fault injection through the basin program (issue 10): SIGTERM / SIGINT stop `finetune` and
`run` cleanly and the same command resumes to the uninterrupted result; a full disk (a small
tmpfs) and a read-only output folder during `finetune`, `merge` and `run` give one clear line and
leave nothing that looks complete; after space is freed, `run` finishes with the same results.
The tmpfs cases need root (mount); without it they report themselves as skipped.

usage: test_faults.py BASIN WORK"""
import json
import os
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

WORDS = {"pos": "good great fine lovely".split(), "neg": "bad awful poor sad".split()}
FILLER = "the a it was quite very and this that so then there".split()


run = make_run(BASIN)


def make_split(path, n, seed):
    write_keyword_split(path, n, seed, WORDS, FILLER, labels=sorted(WORDS))


def leftovers(folder):
    """Temporary files and folders of atomic writes left behind."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if ".tmp-" in n)


def start_and_signal(args, sig, after_line, delay):
    """Starts basin with args, waits until a stderr line contains after_line, waits delay seconds,
    sends sig, and returns (exit code, stderr)."""
    with subprocess.Popen([BASIN, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as p:
        lines = []
        for line in p.stderr:
            lines.append(line)
            if after_line in line:
                break
        time.sleep(delay)
        p.send_signal(sig)
        rest = p.stderr.read()
        return p.wait(timeout=120), "".join(lines) + rest


def processes_mentioning(text):
    """Command lines of running processes that contain text (from /proc: no procps needed)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(cmdline)
    return found


class Mount:
    """A tmpfs of a given size (or read-only) at path; None when this user cannot mount."""

    def __init__(self, path, options):
        self.path = path
        os.makedirs(path, exist_ok=True)
        try:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True, text=True)
        except FileNotFoundError:
            self.ok, self.why = False, "no mount program"
            return
        self.ok = r.returncode == 0
        self.why = r.stderr.strip()

    def remount(self, options):
        subprocess.run(["mount", "-o", "remount," + options, self.path], check=True)

    def close(self):
        if self.ok:
            subprocess.run(["umount", self.path], check=False)


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        words = sorted({w for ws in WORDS.values() for w in ws} | set(FILLER))
        cls.tokenizer = os.path.join(WORK, "tokenizer.json")
        with open(cls.tokenizer, "w") as f:
            json.dump(ref.tokenizer_json("bert", words), f)
        # big enough (about 1.6 MB of weights) that a 512 KB disk cannot hold a checkpoint
        cls.base = os.path.join(WORK, "base")
        run("init-model", "--out", cls.base, "--tokenizer", cls.tokenizer, "--hidden", "128", "--layers", "2",
            "--heads", "4", "--intermediate", "512", "--max-positions", "24", "--seed", "3")
        for name, seed in (("a", 1), ("b", 2)):
            d = os.path.join(WORK, "data", name)
            os.makedirs(d)
            make_split(os.path.join(d, "train.jsonl"), 400, seed)
            make_split(os.path.join(d, "test.jsonl"), 60, seed + 10)
        cls.train = os.path.join(WORK, "data", "a", "train.jsonl")
        cls.merge_inputs = []  # two small fine-tunes to merge
        for seed in ("1", "2"):
            m = os.path.join(WORK, "merge-in-" + seed)
            run(*cls.finetune_args(cls, m, epochs="1"), "--seed", seed, "--train-limit", "40")
            cls.merge_inputs.append(m)

    def finetune_args(self, out, epochs="3"):
        return ["finetune", "--model", self.base, "--train", self.train, "--out", out, "--epochs", epochs,
                "--batch-size", "4", "--lr", "1e-3", "--seed", "7", "--threads", "1", "--max-length", "16"]

    def spec(self, out, epochs=2):
        path = os.path.join(WORK, os.path.basename(out) + ".toml")
        with open(path, "w") as f:
            f.write(f"""[experiment]
name = "faults"
base = "{self.base}"
data_root = "{os.path.join(WORK, 'data')}"
out = "{out}"
seeds = [1, 2]
threads = 1
max_length = 16
[datasets]
a = "x"
b = "y"
[finetune]
epochs = {epochs}
lr = 1e-3
batch_size = 8
[map]
""")
        return path

    @staticmethod
    def metrics(out):
        db = sqlite3.connect(os.path.join(out, "store.sqlite"))
        rows = [(j, s.replace(out, ""), d, m, v) for j, s, d, m, v in
                db.execute("SELECT job, subject, dataset, metric, value FROM metrics ORDER BY job, subject, dataset, metric")]
        states = dict(db.execute("SELECT id, state FROM jobs"))
        db.close()
        return rows, states

    # ---- signals

    def test_sigterm_stops_finetune_cleanly_and_it_resumes_to_the_same_weights(self):
        # 2,000 steps: several seconds even on a fast machine, so the signal lands mid-training
        whole = os.path.join(WORK, "ft-whole")
        run(*self.finetune_args(whole, epochs="20"))
        out = os.path.join(WORK, "ft-stopped")
        code, err = start_and_signal(self.finetune_args(out, epochs="20"), signal.SIGTERM, "fine-tuning", 1.0)
        self.assertEqual(code, 128 + signal.SIGTERM, err)
        last = err.strip().splitlines()[-1]
        self.assertRegex(last, r"^basin: stopped: interrupted by SIGTERM at step \d+ of \d+; state saved in .*ft-stopped.partial")
        self.assertFalse(os.path.exists(out), "no output folder that looks complete")
        self.assertTrue(os.path.isdir(out + ".partial"))
        self.assertEqual(leftovers(WORK), [])
        r = run(*self.finetune_args(out, epochs="20"))
        self.assertIn("resuming from", r.stderr)
        self.assertEqual(ref.read_safetensors(os.path.join(out, "model.safetensors"))[0].keys(),
                         ref.read_safetensors(os.path.join(whole, "model.safetensors"))[0].keys())
        with open(os.path.join(out, "model.safetensors"), "rb") as a, open(os.path.join(whole, "model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "stopped and resumed == uninterrupted, bitwise")

    def test_sigterm_during_evaluation_keeps_the_epoch(self):
        big_eval = os.path.join(WORK, "big-eval.jsonl")
        make_split(big_eval, 40000, 99)  # several seconds of evaluation after two training steps
        args = lambda out: self.finetune_args(out, epochs="1") + ["--train-limit", "8", "--eval", big_eval]
        whole = os.path.join(WORK, "eval-whole")
        run(*args(whole))
        out = os.path.join(WORK, "eval-stopped")
        code, err = start_and_signal(args(out), signal.SIGTERM, "fine-tuning", 1.5)
        self.assertEqual(code, 128 + signal.SIGTERM, err)
        self.assertRegex(err.strip().splitlines()[-1], r"interrupted by SIGTERM at step 2 of 2; state saved in ")
        r = run(*args(out))
        self.assertIn("resuming from", r.stderr)
        with open(os.path.join(out, "model.safetensors"), "rb") as a, open(os.path.join(whole, "model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        with open(os.path.join(out, "basin_run.json")) as a, open(os.path.join(whole, "basin_run.json")) as b:
            self.assertEqual(json.load(a)["epochs"], json.load(b)["epochs"], "the evaluation is done once, after the resume")

    def test_sigint_stops_run_cleanly_and_it_resumes_to_the_same_store(self):
        # 40 epochs: each fine-tune runs for seconds, so the signal finds jobs running
        whole = os.path.join(WORK, "run-whole")
        run("run", self.spec(whole, epochs=40), "--quiet")
        out = os.path.join(WORK, "run-stopped")
        spec = self.spec(out, epochs=40)
        code, err = start_and_signal(["run", spec, "--jobs", "2"], signal.SIGINT, "started finetune", 1.5)
        self.assertEqual(code, 128 + signal.SIGINT, err)
        self.assertRegex(err.strip().splitlines()[-1],
                         r"^basin: stopped: interrupted by SIGINT: \d+ of 5 jobs done, \d+ running stopped; the same `basin run` resumes")
        _, states = self.metrics(out)
        self.assertIn("interrupted", states.values(), states)
        self.assertNotIn("failed", states.values())
        models = os.path.join(out, "models")
        for name in os.listdir(models) if os.path.isdir(models) else []:  # every model folder there is complete (atomic rename)
            self.assertTrue(name.endswith(".partial") or os.path.exists(os.path.join(models, name, "model.safetensors")), name)
        self.assertEqual(leftovers(models), [])
        self.assertEqual(processes_mentioning(out), [], "no job left running")
        run("run", spec, "--quiet")
        rows, states = self.metrics(out)
        self.assertTrue(all(s == "done" for s in states.values()), states)
        self.assertEqual(rows, self.metrics(whole)[0])

    # ---- disk full and read-only output (tmpfs)

    def mount(self, name, options):
        m = Mount(os.path.join(WORK, name), options)
        if not m.ok:
            self.skipTest(f"cannot mount a tmpfs here ({m.why}): disk-full and read-only cases not run")
        self.addCleanup(m.close)
        return m

    def assert_one_line_error(self, r, *needles):
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertTrue(lines[-1].startswith("basin: error: "), r.stderr)
        for n in needles:
            self.assertIn(n, lines[-1])

    def test_disk_full_during_finetune_and_merge(self):
        disk = self.mount("small", "size=512k")
        out = os.path.join(disk.path, "model")
        r = run(*self.finetune_args(out, epochs="1"), check=False)
        self.assert_one_line_error(r, "No space left on device", out)
        self.assertEqual(sorted(os.listdir(disk.path)), [], "nothing left on the full disk")
        # merge two models made elsewhere onto the full disk
        out = os.path.join(disk.path, "merged")
        r = run("merge", "--models", ",".join(self.merge_inputs), "--out", out, check=False)
        self.assert_one_line_error(r, "No space left on device", out)
        self.assertEqual(sorted(os.listdir(disk.path)), [])

    def test_disk_full_during_run_then_space_freed_resumes(self):
        whole = os.path.join(WORK, "run-whole-2")
        run("run", self.spec(whole), "--quiet")
        disk = self.mount("small-run", "size=768k")
        out = os.path.join(disk.path, "exp")
        r = run("run", self.spec(out), "--quiet", check=False)
        self.assertNotEqual(r.returncode, 0)
        rows, states = self.metrics(out)
        self.assertIn("failed", states.values(), states)
        db = sqlite3.connect(os.path.join(out, "store.sqlite"))
        errors = [e for (e,) in db.execute("SELECT error FROM jobs WHERE state = 'failed'")]
        db.close()
        self.assertTrue(any("No space left on device" in e for e in errors), errors)
        for name in os.listdir(os.path.join(out, "models")):
            self.assertTrue(os.path.exists(os.path.join(out, "models", name, "model.safetensors")), name)
        self.assertEqual(leftovers(os.path.join(out, "models")), [])
        disk.remount("size=64m")
        run("run", self.spec(out), "--quiet")
        rows, states = self.metrics(out)
        self.assertTrue(all(s == "done" for s in states.values()), states)
        self.assertEqual([r[:4] for r in rows], [r[:4] for r in self.metrics(whole)[0]])
        for a, b in zip(rows, self.metrics(whole)[0]):
            self.assertAlmostEqual(a[4], b[4], places=9, msg=a)

    def test_read_only_output(self):
        ro = self.mount("readonly", "ro,size=1m")
        for args in (self.finetune_args(os.path.join(ro.path, "model"), epochs="1"),
                     ["merge", "--models", ",".join(self.merge_inputs), "--out", os.path.join(ro.path, "merged")],
                     ["run", self.spec(os.path.join(ro.path, "exp")), "--quiet"]):
            r = run(*args, check=False)
            self.assertEqual(r.returncode, 1, (args[0], r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(ro.path, r.stderr)
            self.assertIn("Read-only file system", r.stderr)
        self.assertEqual(os.listdir(ro.path), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
