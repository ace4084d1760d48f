#!/usr/bin/python3
"""`pip install .` in a fresh virtual environment (over Debian's numpy) builds and installs the
package (pyproject.toml: scikit-build-core and pybind11 from PyPI, pinned; the project's CMake with
BASIN_PYTHON_ONLY), and the installed package, imported from the environment, merges exactly what
`basin merge` writes.

Exit status 77 (skipped) when PyPI cannot be reached for the pinned build tools.

usage: test_pip_install.py BASIN WORK"""
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BASIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])

SMOKE = r"""
import os, sys
import numpy as np
import basin
work = sys.argv[1]
assert basin.__file__.startswith(sys.prefix), basin.__file__
rng = np.random.default_rng(0)
sys.path.insert(0, sys.argv[2])
import hf_reference as ref
for name in ("a", "b"):
    os.makedirs(os.path.join(work, name), exist_ok=True)
    ref.write_safetensors(os.path.join(work, name, "model.safetensors"),
                          {"encoder.layer.0.output.dense.weight": rng.standard_normal((8, 4)).astype(np.float32)})
    with open(os.path.join(work, name, "config.json"), "w") as f:
        f.write('{"model_type": "roberta"}')
basin.merge("mean", [os.path.join(work, "a"), os.path.join(work, "b")], os.path.join(work, "py"))
t = basin.Checkpoint(os.path.join(work, "py")).tensor("encoder.layer.0.output.dense.weight")
print("installed at", basin.__file__, "shape", t.shape)
"""


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    venv = os.path.join(WORK, "venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    probe = subprocess.run([python, "-m", "pip", "download", "--no-deps", "-q", "-d", os.path.join(WORK, "probe"),
                            "scikit-build-core==1.1.2"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        print("skipped: PyPI is not reachable for the pinned build tools:", probe.stderr.strip()[-300:])
        return 77
    r = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", ROOT,
                        f"--config-settings=build-dir={os.path.join(WORK, 'build')}"], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: pip install . failed:\n", r.stdout[-3000:], r.stderr[-3000:])
        return 1
    data = os.path.join(WORK, "data")
    r = subprocess.run([python, "-c", SMOKE, data, os.path.join(ROOT, "tests", "reference")], capture_output=True,
                       text=True, cwd=WORK)
    print(r.stdout.strip())
    if r.returncode != 0:
        print("FAIL: the installed package:\n", r.stderr[-3000:])
        return 1
    cli = os.path.join(data, "cli")
    subprocess.run([BASIN, "merge", "--models", f"{data}/a,{data}/b", "--out", cli, "--quiet"], check=True)
    with open(os.path.join(cli, "model.safetensors"), "rb") as f, \
            open(os.path.join(data, "py", "model.safetensors"), "rb") as g:
        if f.read() != g.read():
            print("FAIL: the installed package's merge differs from basin merge")
            return 1
    print("pip install . works; the installed package merges what basin merge writes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
