#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (GCC, -DBASIN_SANITIZE=ON) in
# build-asan/. libtorch itself is not instrumented; container-overflow checks are off because
# they need every library instrumented, and leaks in libtorch's static registries are not ours
# (LSan suppressions in scripts/lsan.supp). Exit status: that of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBASIN_SANITIZE=ON -DBASIN_BUILD_BENCH=OFF \
  > build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
cmake --build build-asan -j "$(nproc)" --target basin_unit_tests >> build-asan.log 2>&1 || { tail -40 build-asan.log; exit 1; }
export ASAN_OPTIONS=detect_container_overflow=0:detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build-asan/tests/basin_unit_tests "$@"
