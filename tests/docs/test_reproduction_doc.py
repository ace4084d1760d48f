#!/usr/bin/python3
"""docs/REPRODUCTION.md is what `basin report` makes of the committed stores of both studies
(results/reproduction/store.sqlite on basin-mini, results/reproduction-real/store.sqlite on the
real base): regenerated here into a scratch folder, the document (but for the line naming the
command that made it) and every figure must equal the committed ones; a second run gives the same
bytes; and every claim of the account points at a table the document holds.

usage: test_reproduction_doc.py BASIN REPO WORK"""
import filecmp
import os
import re
import shutil
import subprocess
import sys
import unittest

BASIN, REPO, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
sys.argv = sys.argv[:1]
STUDIES = ("reproduction", "reproduction-real")  # basin-mini, then the real base
DOC = os.path.join(REPO, "docs", "REPRODUCTION.md")


def without_command_line(text):
    return "\n".join(line for line in text.splitlines() if "Regenerate with" not in line)


class ReproductionDoc(unittest.TestCase):
    def regenerate(self, where):
        # copies of the stores: opening them must not touch the committed files
        folders = []
        for study in STUDIES:
            exp = os.path.join(where, "results", study)
            os.makedirs(exp)
            shutil.copy(os.path.join(REPO, "results", study, "store.sqlite"), exp)
            folders.append(exp)
        doc = os.path.join(where, "docs", "REPRODUCTION.md")
        os.makedirs(os.path.dirname(doc))
        before = [open(os.path.join(f, "store.sqlite"), "rb").read() for f in folders]
        r = subprocess.run([BASIN, "report", *folders, "--markdown", doc], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = [open(os.path.join(f, "store.sqlite"), "rb").read() for f in folders]
        self.assertTrue(before == after, "a report opens the stores read-only: their bytes do not change")
        with open(doc) as f:
            return f.read(), os.path.join(where, "docs", "reproduction")

    def test_the_document_is_the_report_of_the_committed_store(self):
        shutil.rmtree(WORK, ignore_errors=True)
        first, figures = self.regenerate(os.path.join(WORK, "a"))
        with open(DOC) as f:
            committed = f.read()
        self.assertEqual(without_command_line(first), without_command_line(committed),
                         "docs/REPRODUCTION.md is stale: run basin report results/reproduction results/reproduction-real "
                         "--markdown docs/REPRODUCTION.md")
        committed_figures = os.path.join(REPO, "docs", "reproduction")
        self.assertEqual(sorted(os.listdir(figures)), sorted(os.listdir(committed_figures)))
        match, mismatch, errors = filecmp.cmpfiles(figures, committed_figures, os.listdir(figures), shallow=False)
        self.assertEqual((mismatch, errors), ([], []))
        second, _ = self.regenerate(os.path.join(WORK, "b"))
        self.assertEqual(without_command_line(second), without_command_line(first), "basin report twice: the same tables")
        self.assertIn("## The paper's findings on each base", first)
        self.assertIn("| finding | paper | basin-mini |", first)
        self.assertIn("| real-base |", first.split("\n*Table 2.")[0])
        self.assertIn("## What comparing the two bases shows", first)
        # every pointer of the account names a table the document has
        tables = set(re.findall(r"^\*Table (\d+)\.", first, re.M))
        pointers = re.findall(r"\(Table (\d+)", first) + re.findall(r"; Table (\d+)\)", first)
        self.assertTrue(pointers)
        self.assertLessEqual(set(pointers), tables)


if __name__ == "__main__":
    unittest.main(verbosity=2)
