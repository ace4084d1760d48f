#!/usr/bin/python3
"""basin map on real fine-tuning runs: basin-mini fine-tuned on two small datasets the test builds
(sentiment words; animal vs vehicle topics), three seeds each. Models of the same dataset must be
more similar to each other than to the other dataset's models.

usage: test_map_finetuned.py BASIN WORK"""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from keyword_data import write_keyword_split  # noqa: E402

BASIN, WORK = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = os.path.join(ROOT, "models", "basin-mini")

FILLER = "the a it was quite very and this that so then there here one some".split()
TASKS = {
    "sentiment": {"pos": "good great fine lovely happy".split(), "neg": "bad awful poor sad terrible".split()},
    "topic": {"animal": "dog cat horse bird fish".split(), "vehicle": "car truck train plane boat".split()},
}


def make_data(path, task, n, seed):
    write_keyword_split(path, n, seed, TASKS[task], FILLER, labels=sorted(TASKS[task]), length=(3, 8))


class FinetunedZoo(unittest.TestCase):
    def test_same_dataset_models_are_closer(self):
        root = os.path.join(WORK, "zoo")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        lines, groups = [], ["model,dataset"]
        for task in TASKS:
            data = os.path.join(root, f"{task}.jsonl")
            make_data(data, task, 320, seed=len(task))
            for seed in (1, 2, 3):
                out = os.path.join(root, f"{task}-s{seed}")
                subprocess.run([BASIN, "finetune", "--model", BASE, "--train", data, "--out", out, "--seed", str(seed),
                                "--epochs", "2", "--batch-size", "16", "--lr", "3e-4", "--max-length", "24",
                                "--threads", "2", "--quiet"], check=True, capture_output=True)
                lines.append(out)
                groups.append(f"{task}-s{seed},{task}")
        with open(os.path.join(root, "models.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(root, "groups.csv"), "w") as f:
            f.write("\n".join(groups) + "\n")
        out = os.path.join(root, "map")
        subprocess.run([BASIN, "map", "--base", BASE, "--models", os.path.join(root, "models.txt"), "--groups",
                        os.path.join(root, "groups.csv"), "--out", out, "--quiet"], check=True)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        table = summary["similarity_within_between"]["dataset"]
        for row in table["groups"]:
            print(f"{row['group']}: within {row['within']:.3f}, between {row['between']:.3f}")
            self.assertGreater(row["within"], row["between"], row["group"])
        self.assertEqual(summary["clustering_accuracy"]["dataset"]["spectral"], 1.0)
        excluded = {e["tensor"] for e in summary["excluded_tensors"]}
        self.assertTrue(any(t.startswith("classifier.") for t in excluded), "the new heads are not in the base")
        self.assertTrue(any(t.startswith("lm_head.") for t in excluded), "the base's MLM head is a head")


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v"])
