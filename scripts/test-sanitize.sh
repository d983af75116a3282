#!/usr/bin/env bash
# Runs the sanitizer build's tests: unit, MPI, CLI and fuzz labels (`make test-sanitize`).
#   scripts/test-sanitize.sh BUILD_DIR [JOBS]
# A sanitizer report ends the process with an error (halt_on_error), so the test fails;
# tests/sanitize/lsan.supp lists the library leaks that are not shardlm's.
set -euo pipefail
build=${1:?usage: test-sanitize.sh BUILD_DIR [JOBS]}
jobs=${2:-$(nproc)}
repo=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$repo/tests/sanitize/lsan.supp:print_suppressions=0
cd "$build"
ctest --output-on-failure -j"$jobs" --timeout 1800 -L '^(unit|mpi|cli|fuzz)$'
