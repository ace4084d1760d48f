#!/usr/bin/env bash
# The benchmarks' second reference environment, .venv-bench (git-ignored): transformers on torch
# 2.x from PyPI, what a user installs today, for bench/bench_eval.py and bench/bench_train.py, and
# mergekit for bench/mergekit_parity.py.
# Not used by the tests (torch from PyPI brings its CUDA libraries: about 5.6 GB installed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ] || ! .venv-bench/bin/python -c 'import torch, transformers, mergekit' 2>/dev/null; then
  rm -rf .venv-bench
  /usr/bin/python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check -r bench/requirements-bench.txt
fi
.venv-bench/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
