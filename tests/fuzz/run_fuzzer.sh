#!/usr/bin/env bash
# One bounded fuzzing run for CTest (tests/fuzz/fuzz.cmake), and the way to run longer ones:
#
#   run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS [LIBFUZZER_FLAGS...]
#
# Fuzzes from the committed seeds (SEED_DIR, also replayed as regression inputs) into
# WORK_DIR/corpus, for SECONDS; libFuzzer leaves a failing input as WORK_DIR/crash-* (or
# leak-*, timeout-*), which this prints. Exit 0 only when nothing was found.
set -euo pipefail
usage="usage: run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS [LIBFUZZER_FLAGS...]"
fuzzer=${1:?$usage}
seeds=${2:?$usage}
work=${3:?$usage}
seconds=${4:?$usage}
shift 4
mkdir -p "$work/corpus"
rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" "$seeds" || rc=$?
found=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true)
if [ $rc -ne 0 ] || [ -n "$found" ]; then
  echo "FAIL: $(basename "$fuzzer") found a problem (exit $rc): ${found:-see the report above}" >&2
  echo "replay: $fuzzer ${found%% *}; keep the input in $seeds once it is fixed" >&2
  exit 1
fi
echo "$(basename "$fuzzer"): nothing found in $seconds s"
