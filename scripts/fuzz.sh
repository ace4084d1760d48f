#!/usr/bin/env bash
# Fuzzes basin's parsers with libFuzzer (clang, AddressSanitizer, UndefinedBehaviorSanitizer):
# safetensors headers, torch.save archives (pytorch_model.bin), sharded indexes, config.json, tokenizer.json with tokenization, the dataset
# readers and the experiment spec. Each harness runs for BUDGET seconds (default 300) from the
# committed seed corpus (fuzz/corpus); a crash, a hang (10 s per input), a leak or more than 2 GB
# of memory fails the run, and the input that did it is kept in build-fuzz/. Prints executions
# per harness; exit status 1 if any harness failed.
#
# usage: scripts/fuzz.sh [BUDGET_SECONDS] [HARNESS...]
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-300}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(safetensors torch_bin index config tokenizer dataset spec)
CXX=clang++ cmake -S fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo > build-fuzz.log 2>&1 || { cat build-fuzz.log; exit 1; }
cmake --build build-fuzz -j "$(nproc)" >> build-fuzz.log 2>&1 || { tail -30 build-fuzz.log; exit 1; }
failed=0
for h in "${harnesses[@]}"; do
  corpus=build-fuzz/corpus/$h
  mkdir -p "$corpus" build-fuzz/artifacts/$h
  cp -n fuzz/corpus/$h/* "$corpus"/ 2>/dev/null || true
  ( cd build-fuzz/artifacts/$h && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ../../fuzz_$h ../../corpus/$h -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 ) > build-fuzz/$h.log 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' build-fuzz/$h.log | grep -o '[0-9]*$')
  if [ $status -ne 0 ]; then
    failed=1
    echo "$h: FAILED after ${execs:-?} executions (build-fuzz/$h.log; input in build-fuzz/artifacts/$h)"
  else
    echo "$h: ${execs:-?} executions in ${budget} s, no crash"
  fi
done
exit $failed
