#!/usr/bin/env bash
# Runs the sanitizer build's tests: unit, MPI, CLI and fuzz labels (`make test-sanitize`).
#   scripts/test-sanitize.sh BUILD_DIR [JOBS]
# A sanitizer report ends the process with an error (halt_on_error), so the test fails.
# LeakSanitizer runs for the unit and fuzz tests (tests/sanitize/lsan.supp lists the library
# leaks that are not shardlm's). Under mpirun it is off: Open MPI's plugins are unloaded at
# exit, so their start-up allocations show as leaks from "<unknown module>" that no suppression
# can name; ASan's memory errors and UBSan stay on there.
set -euo pipefail
build=${1:?usage: test-sanitize.sh BUILD_DIR [JOBS]}
jobs=${2:-$(nproc)}
repo=$(cd "$(dirname "$0")/.." && pwd)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$repo/tests/sanitize/lsan.supp:print_suppressions=0
cd "$build"
rc=0
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
  ctest --output-on-failure -j"$jobs" --timeout 1800 -L '^(unit|fuzz)$' || rc=1
ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 \
  ctest --output-on-failure -j"$jobs" --timeout 1800 -L '^(mpi|cli)$' || rc=1
exit $rc
