#!/usr/bin/python3
"""Training engine tests through the basin program: fine-tuning reaches high accuracy on
separable data; BitFit and head modes change only what they may; same seed => bitwise equal
weights, different seeds => different heads and data orders; kill-and-resume (simulated and
real SIGKILL) ends with the uninterrupted run's weights; the probe's loss is recomputed by the
independent reference; divergence and bad input give clear errors and no output folder.

usage: test_finetune.py BASIN_BINARY WORK_DIR"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import hf_reference as ref  # noqa: E402
from basin_runner import make_run  # noqa: E402
from keyword_data import write_keyword_split  # noqa: E402
import numpy as np  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]

POSITIVE, NEGATIVE = ["good", "great", "fine"], ["bad", "awful", "poor"]
FILLER = "the a movie plot was quite very and it is this that so film story acting".split()


def make_data(path, n, seed, labels=("pos", "neg")):
    # every label but "pos" takes the negative words
    words = {label: POSITIVE if label == "pos" else NEGATIVE for label in labels}
    write_keyword_split(path, n, seed, words, FILLER, labels=labels, length=(3, 9))


run = make_run(BASIN)


def weights(folder):
    return ref.read_safetensors(os.path.join(folder, "model.safetensors"))[0]


class Finetune(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        tok = ref.tokenizer_json("bert", POSITIVE + NEGATIVE + FILLER)
        # a RoBERTa body with a word-level tokenizer: pad id 0 from [PAD]
        cls.tokenizer = os.path.join(WORK, "tokenizer.json")
        json.dump(tok, open(cls.tokenizer, "w"))
        cls.base = os.path.join(WORK, "base")
        run("init-model", "--out", cls.base, "--tokenizer", cls.tokenizer, "--hidden", "32", "--layers", "2",
            "--heads", "4", "--intermediate", "64", "--max-positions", "40", "--seed", "5")
        cls.train = os.path.join(WORK, "train.jsonl")
        cls.test = os.path.join(WORK, "test.jsonl")
        make_data(cls.train, 240, 1)
        make_data(cls.test, 100, 2)
        cls.common = ["--model", cls.base, "--train", cls.train, "--lr", "1e-3", "--batch-size", "16",
                      "--threads", "1", "--dropout", "0", "--quiet"]

    def finetune(self, out, *extra):
        return run("finetune", *self.common, "--out", os.path.join(WORK, out), *extra)

    @classmethod
    def trained(cls):
        """The model fine-tuned on the separable data (8 epochs), trained once."""
        out = os.path.join(WORK, "full")
        if not os.path.exists(os.path.join(out, "config.json")):
            run("finetune", *cls.common, "--out", out, "--eval", cls.test, "--epochs", "8", "--seed", "1")
        return out

    def test_reaches_high_accuracy_on_separable_data(self):
        self.trained()
        record = json.load(open(os.path.join(WORK, "full", "basin_run.json")))
        accuracy = record["epochs"][-1]["eval_accuracy"]
        print(f"separable data: eval accuracy {accuracy:.3f} after {record['steps']} steps")
        self.assertGreaterEqual(accuracy, 0.95)
        self.assertTrue(record["new_head"])
        self.assertEqual(record["labels"], ["neg", "pos"])
        self.assertEqual(len(record["inputs"]["train"]["sha256"]), 64)
        cfg = json.load(open(os.path.join(WORK, "full", "config.json")))
        self.assertEqual(cfg["architectures"], ["RobertaForSequenceClassification"])
        self.assertEqual(cfg["id2label"], {"0": "neg", "1": "pos"})
        # the output is itself a checkpoint basin evaluates
        out = json.loads(run("eval", "--model", os.path.join(WORK, "full"), "--data", self.test, "--json").stdout)
        self.assertAlmostEqual(out["accuracy"], accuracy, places=6)
        # --repeats (benchmarks): the same result, the fastest pass as seconds, the first one apart
        again = json.loads(run("eval", "--model", os.path.join(WORK, "full"), "--data", self.test, "--json",
                               "--repeats", "3").stdout)
        self.assertEqual((again["accuracy"], again["mean_loss"], again["repeats"]), (out["accuracy"], out["mean_loss"], 3))
        self.assertLessEqual(again["seconds"], again["first_pass_seconds"])

    def test_bitfit_changes_only_biases_and_head(self):
        self.finetune("bitfit", "--mode", "bitfit", "--epochs", "1", "--seed", "1")
        self.finetune("headonly", "--mode", "head", "--epochs", "1", "--seed", "1")
        start = weights(self.base)
        for out, may_change in [("bitfit", lambda k: k.endswith("bias") or k.startswith("classifier.")),
                                ("headonly", lambda k: k.startswith("classifier."))]:
            after = weights(os.path.join(WORK, out))
            # classifier tensors are new (not in the base); the base's pooler is not in the classifier
            changed = [k for k in after if k not in start or not np.array_equal(start[k], after[k])]
            self.assertTrue(changed, out)
            self.assertEqual([k for k in changed if not may_change(k)], [], out)
            if out == "bitfit":
                self.assertTrue(any(k.startswith("roberta.") and k.endswith("bias") for k in changed))

    def test_same_seed_is_bitwise_identical_and_seeds_differ(self):
        self.finetune("seed1a", "--epochs", "1", "--seed", "1")
        self.finetune("seed1b", "--epochs", "1", "--seed", "1")
        self.finetune("seed2", "--epochs", "1", "--seed", "2")
        a, b, c = (weights(os.path.join(WORK, x)) for x in ("seed1a", "seed1b", "seed2"))
        self.assertTrue(all(np.array_equal(a[k], b[k]) for k in a))
        self.assertFalse(np.array_equal(a["classifier.out_proj.weight"], c["classifier.out_proj.weight"]))
        order = lambda x: json.load(open(os.path.join(WORK, x, "basin_run.json")))["data_order_epoch1_head"]
        self.assertEqual(order("seed1a"), order("seed1b"))
        self.assertNotEqual(order("seed1a"), order("seed2"))

    def test_resume_after_kill_gives_the_uninterrupted_weights(self):
        args = ["--epochs", "3", "--seed", "3", "--save-every", "4", "--eval", self.test]
        self.finetune("straight", *args)
        # simulated kill right after step 10 (a state was saved at step 8)
        r = run("finetune", *self.common, "--out", os.path.join(WORK, "resumed"), *args, "--stop-after-step", "10",
                check=False)
        self.assertEqual(r.returncode, 137)
        self.assertFalse(os.path.exists(os.path.join(WORK, "resumed")), "a killed run left an output folder")
        self.assertTrue(os.path.exists(os.path.join(WORK, "resumed.partial", "state", "state.json")))
        r = self.finetune("resumed", *args)
        self.assertIn("resumed", r.stdout)
        a, b = weights(os.path.join(WORK, "straight")), weights(os.path.join(WORK, "resumed"))
        self.assertTrue(all(np.array_equal(a[k], b[k]) for k in a), "resumed weights differ")
        ra = json.load(open(os.path.join(WORK, "straight", "basin_run.json")))["epochs"]
        rb = json.load(open(os.path.join(WORK, "resumed", "basin_run.json")))["epochs"]
        self.assertEqual(ra, rb)
        self.assertFalse(os.path.exists(os.path.join(WORK, "resumed.partial")))

    def test_real_sigkill_then_resume(self):
        # long enough (450 steps, about 2 s) that the kills land mid-run
        args = ["--epochs", "30", "--seed", "4", "--save-every", "7"]
        self.finetune("straight4", *args)
        out = os.path.join(WORK, "killed")
        kills = 0
        for delay in (0.6, 1.0):
            p = subprocess.Popen([BASIN, "finetune", *self.common, "--out", out, *args],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            if p.returncode != -signal.SIGKILL:  # it finished before the kill
                break
            kills += 1
            self.assertFalse(os.path.exists(out), "a killed run left an output folder")
        self.assertGreater(kills, 0, "no run was killed mid-way: the test proves nothing")
        self.finetune("killed", *args)
        a, b = weights(os.path.join(WORK, "straight4")), weights(out)
        self.assertTrue(all(np.array_equal(a[k], b[k]) for k in a), "weights after SIGKILL + resume differ")

    def test_probe_loss_matches_the_reference(self):
        model = self.trained()
        head = os.path.join(WORK, "head.safetensors")
        r = json.loads(run("probe", "--model", model, "--train", self.train, "--test", self.test, "--json",
                           "--save-head", head, "--cache", os.path.join(WORK, "cache")).stdout)
        self.assertTrue(r["converged"])
        self.assertGreaterEqual(r["test_accuracy"], 0.95)
        self.assertLess(r["extract_seconds"] + r["fit_seconds"], 60)
        again = json.loads(run("probe", "--model", model, "--train", self.train, "--test", self.test, "--json",
                               "--cache", os.path.join(WORK, "cache")).stdout)
        self.assertTrue(again["features_cached"])
        self.assertEqual(again["test_loss"], r["test_loss"])
        # the reference: its own forward pass for the features, basin's fitted head, numpy loss
        preds = os.path.join(WORK, "probe-ids.jsonl")
        run("eval", "--model", model, "--data", self.test, "--predictions", preds)
        ids = [json.loads(l)["input_ids"] for l in open(preds)]
        feats = ref.features(model, ids).double().numpy()
        h = ref.read_safetensors(head)[0]
        logits = feats @ h["weight"].astype(np.float64).T + h["bias"].astype(np.float64)
        labels = [json.loads(l)["label"] for l in open(self.test)]
        y = np.array([r["labels"].index(l) for l in labels])
        logz = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        loss = float(np.mean(logz - logits[np.arange(len(y)), y]))
        print(f"probe test loss: basin {r['test_loss']:.8f}, reference {loss:.8f}")
        self.assertAlmostEqual(loss, r["test_loss"], delta=1e-5)

    def expect_error(self, out, extra, *parts):
        r = run("finetune", *self.common, "--out", out, *extra, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        line = r.stderr.strip().split("\n")[-1]
        for part in parts:
            self.assertIn(part, line)
        if "existing" not in out:
            self.assertFalse(os.path.exists(out), "an output folder was left behind")
        return line

    def test_divergence_stops_with_the_step(self):
        out = os.path.join(WORK, "diverged")
        self.expect_error(out, ["--lr", "1e30", "--max-grad-norm", "0", "--epochs", "2"], "fine-tuning stopped at step",
                          "training loss is", "lower --lr")
        self.assertFalse(os.path.exists(out))

    def test_bad_input(self):
        other = os.path.join(WORK, "other.jsonl")
        make_data(other, 30, 9, labels=("pos", "neutral"))
        self.expect_error(os.path.join(WORK, "o1"), ["--eval", other], "labels of", "only in the training data: neg",
                          "only in the evaluation data: neutral")
        self.expect_error(os.path.join(WORK, "o2"), ["--train-limit", "5000"], "--train-limit 5000",
                          "larger than the training data (240 examples")
        existing = os.path.join(WORK, "existing")
        os.makedirs(existing, exist_ok=True)
        open(os.path.join(existing, "keep.txt"), "w").write("x")
        self.expect_error(existing, [], "not empty", "--overwrite")
        self.assertTrue(os.path.exists(os.path.join(existing, "keep.txt")))
        self.expect_error("/dev/null/out", [], "/dev/null", "cannot write")
        for lr in ("0", "-1e-3"):
            self.expect_error(os.path.join(WORK, "o3"), ["--lr", lr], "--lr", "must be positive")
        # a checkpoint whose head disagrees with its config.json
        broken = os.path.join(WORK, "broken-head")
        shutil.copytree(self.trained(), broken, dirs_exist_ok=True)
        cfg = json.load(open(os.path.join(broken, "config.json")))
        cfg["id2label"] = {"0": "neg", "1": "pos", "2": "meh"}
        cfg["label2id"] = {"neg": 0, "pos": 1, "meh": 2}
        json.dump(cfg, open(os.path.join(broken, "config.json"), "w"))
        r = run("finetune", "--model", broken, "--train", self.train, "--out", os.path.join(WORK, "o4"), "--quiet", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("classifier.out_proj.weight: expected [3, 32], got [2, 32]", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(WORK, "o4")))


if __name__ == "__main__":
    unittest.main(verbosity=2, warnings="ignore")
