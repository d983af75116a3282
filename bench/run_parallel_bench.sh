#!/usr/bin/env bash
# Runs bench_parallel for the layouts of docs/parallelism.md and prints one table.
# Usage: bench/run_parallel_bench.sh [BUILD_DIR]        (default: build)
# Environment: MODEL (mini), SEQ_LEN (256), MICRO_BATCH (2), MICRO_BATCHES (8, per DP rank),
#   STEPS (3 timed steps after 1 warm-up), LOG_DIR (runs/bench-parallel: one log per layout,
#   with the per-rank byte and bubble tables), LAYOUTS (names to run, default all).
# Each rank gets OMP_NUM_THREADS = max(1, cores / ranks) threads, so every layout uses the
# same cores; layouts with more ranks than cores run oversubscribed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
[[ "$build" = /* ]] || build="$repo/$build"
bench="$build/bench/bench_parallel"
[ -x "$bench" ] || { echo "no $bench: build the bench_parallel target first" >&2; exit 2; }
log_dir=${LOG_DIR:-$repo/runs/bench-parallel}
mkdir -p "$log_dir"
common=(--model "${MODEL:-mini}" --seq-len "${SEQ_LEN:-256}" --micro-batch "${MICRO_BATCH:-2}"
        --micro-batches "${MICRO_BATCHES:-8}" --steps "${STEPS:-3}" --warmup 1)
mpirun_flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpirun_flags+=(--allow-run-as-root)
cores=$(nproc)

# name ranks flags. mini has 6 heads, which tp 4 cannot split: tp4 runs it with 12 heads of 32
# (same parameters and FLOPs, H * head_dim = C).
layouts=(
  "1         1 "
  "dp2       2 "
  "tp2       2 --tp 2"
  "pp2       2 --pp 2"
  "tp2pp2    4 --tp 2 --pp 2"
  "dp2-zero1 2 --zero 1"
  "tp4-h12   4 --tp 4 --n-head 12"
  "pp4       4 --pp 4"
)

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(uptime | sed 's/.*load/load/')"
echo "per layout: ${common[*]}; logs in $log_dir"
summaries=()
for entry in "${layouts[@]}"; do
  read -r name ranks flags <<<"$entry"
  if [ -n "${LAYOUTS:-}" ] && [[ " $LAYOUTS " != *" $name "* ]]; then continue; fi
  threads=$(( cores / ranks > 0 ? cores / ranks : 1 ))
  # shellcheck disable=SC2086  # flags is a word list
  if ! OMP_NUM_THREADS=$threads mpirun "${mpirun_flags[@]}" -np "$ranks" "$bench" $flags "${common[@]}" \
      --name "$name" >"$log_dir/$name.log" 2>&1; then
    echo "layout $name failed (exit code or byte mismatch); see $log_dir/$name.log" >&2
  fi
  summaries+=("$(grep '^summary ' "$log_dir/$name.log" || echo "summary name=$name failed=yes")")
done

# One row per layout from the key=value summary lines.
printf '%s\n' "${summaries[@]}" | awk '
  BEGIN {
    printf "%-10s %5s %7s %9s %9s %9s %9s %6s  %-28s\n", "layout", "ranks", "step s", "tokens/s",
           "tp MB", "dp MB", "pp MB", "bytes", "bubble theory/bound/wait/idle"
  }
  {
    delete v
    for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["failed"] == "yes") { printf "%-10s failed\n", v["name"]; next }
    bubble = v["pp"] > 1 ? sprintf("%.3f / %.3f / %.3f / %.3f", v["bubble_theory"], v["bubble_bound"],
                                    v["bubble_wait"], v["bubble_idle"]) : "-"
    printf "%-10s %5d %7.2f %9.0f %9s %9s %9s %6s  %-28s\n", v["name"], v["ranks"], v["step_s"],
           v["tokens_per_s"], v["tp_MB"], v["dp_MB"], v["pp_MB"], v["bytes_match"] == "yes" ? "=" : "DIFF", bubble
  }'
echo "(MB: the most any rank sends per step through that communicator; bytes '=': measured equals the"
echo " analytical count on every rank and communicator; bubble: pipeline runs only, see the logs)"
