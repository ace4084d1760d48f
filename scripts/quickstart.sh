#!/usr/bin/env bash
# The main job on the built-in default: installs dependencies, builds, and runs what basin can
# do so far without any model hub: create a small RoBERTa classifier, inspect it, build a
# labelled dataset, and evaluate the classifier on it (accuracy, macro-F1, loss, predictions).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
out=out/quickstart
rm -rf "$out" && mkdir -p "$out"
./build/basin init-model --out "$out/model" --head classification --labels negative,positive \
  --hidden 128 --layers 2 --heads 4 --intermediate 512 --seed 1
./build/basin inspect "$out/model" --no-tensors
/usr/bin/python3 scripts/make_demo_data.py "$out/demo.jsonl"
./build/basin eval --model "$out/model" --data "$out/demo.jsonl" --predictions "$out/predictions.jsonl"
echo "predictions written to $out/predictions.jsonl"
