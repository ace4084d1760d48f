#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, and runs every test with CTest.
# Tests that need ../shared report themselves as skipped when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --data   # --data: the quickstart datasets some tests build
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
