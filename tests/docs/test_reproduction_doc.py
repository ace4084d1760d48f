#!/usr/bin/python3
"""docs/REPRODUCTION.md is what `basin report` makes of the committed store
(results/reproduction/store.sqlite): regenerated here into a scratch folder, the document (but
for the line naming the command that made it) and every figure must equal the committed ones;
and a second run gives the same bytes.

usage: test_reproduction_doc.py BASIN REPO WORK"""
import filecmp
import os
import shutil
import subprocess
import sys
import unittest

BASIN, REPO, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
sys.argv = sys.argv[:1]
STORE = os.path.join(REPO, "results", "reproduction")
DOC = os.path.join(REPO, "docs", "REPRODUCTION.md")


def without_command_line(text):
    return "\n".join(line for line in text.splitlines() if "Regenerate with" not in line)


class ReproductionDoc(unittest.TestCase):
    def regenerate(self, where):
        # a copy of the store: opening it must not touch the committed file
        exp = os.path.join(where, "results", "reproduction")
        os.makedirs(exp)
        shutil.copy(os.path.join(STORE, "store.sqlite"), exp)
        doc = os.path.join(where, "docs", "REPRODUCTION.md")
        os.makedirs(os.path.dirname(doc))
        r = subprocess.run([BASIN, "report", exp, "--markdown", doc], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(doc) as f:
            return f.read(), os.path.join(where, "docs", "reproduction")

    def test_the_document_is_the_report_of_the_committed_store(self):
        shutil.rmtree(WORK, ignore_errors=True)
        first, figures = self.regenerate(os.path.join(WORK, "a"))
        with open(DOC) as f:
            committed = f.read()
        self.assertEqual(without_command_line(first), without_command_line(committed),
                         "docs/REPRODUCTION.md is stale: run basin report results/reproduction --markdown docs/REPRODUCTION.md")
        committed_figures = os.path.join(REPO, "docs", "reproduction")
        self.assertEqual(sorted(os.listdir(figures)), sorted(os.listdir(committed_figures)))
        match, mismatch, errors = filecmp.cmpfiles(figures, committed_figures, os.listdir(figures), shallow=False)
        self.assertEqual((mismatch, errors), ([], []))
        second, _ = self.regenerate(os.path.join(WORK, "b"))
        self.assertEqual(without_command_line(second), without_command_line(first), "basin report twice: the same tables")
        self.assertIn("The paper's findings, measured here", first)


if __name__ == "__main__":
    unittest.main(verbosity=2)
