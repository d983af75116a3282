#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in one short run (about a minute; every step has
# a time limit and the whole script stays under 5 minutes): unpacks the bundle that
# scripts/collect-runtime-libs.sh made on the build machine (programs + the Debian libraries
# they need), finds cuBLAS on this machine, prints nvidia-smi, runs the backend op tests
# (tests/unit/test_backend_ops.cpp: every op on the CPU and on CUDA, CUDA against the CPU, and
# a whole GPT-2 step) and the train-step benchmark
# (bench/bench_train_step_cuda.cpp), and ends with a short table.
#
#   usage: bash scripts/gpu-check.sh [BUNDLE]   (default: build-cuda/gpu-bundle/shardlm-gpu.tar.gz)
# Environment: BENCH_ARGS (default "--model gpt2 --seq-len 1024 --micro-batch 8 --steps 10
#   --warmup-steps 3"), TEST_TIMEOUT / BENCH_TIMEOUT in seconds (default 90 / 120).
# Logs go to $OUT when it is set (the device tool's output folder), else to the work folder.
# Exit status: 0 when the tests pass and the benchmark ran, 1 otherwise.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=${1:-$repo/build-cuda/gpu-bundle/shardlm-gpu.tar.gz}
bench_args=${BENCH_ARGS:---model gpt2 --seq-len 1024 --micro-batch 8 --steps 10 --warmup-steps 3}
test_timeout=${TEST_TIMEOUT:-90}
bench_timeout=${BENCH_TIMEOUT:-120}

if [[ ! -f "$bundle" ]]; then
  echo "gpu-check: no bundle at $bundle: run scripts/collect-runtime-libs.sh on the build machine and" \
       "carry build-cuda/gpu-bundle" >&2
  exit 1
fi
work=$(mktemp -d /tmp/shardlm-gpu.XXXXXX)
tar -xzf "$bundle" -C "$work"
logs=${OUT:-$work}
mkdir -p "$logs"

# cuBLAS comes from this machine's CUDA toolkit (or a CUDA 13 PyTorch's wheels): the first
# folder that holds both libraries.
find_cublas() {
  local dir
  for dir in $(ldconfig -p 2>/dev/null | awk '/libcublasLt\.so\.13 / {print $NF}' | xargs -r -n1 dirname) \
             /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
             /usr/lib/x86_64-linux-gnu; do
    [[ -e "$dir/libcublas.so.13" && -e "$dir/libcublasLt.so.13" ]] && { echo "$dir"; return 0; }
  done
  # pip wheels (nvidia-cublas): .../site-packages/nvidia/cu13/lib or .../nvidia/cublas/lib
  local found
  found=$(timeout 30 find / \( -path /proc -o -path /sys \) -prune -o -name libcublasLt.so.13 -print 2>/dev/null | head -1)
  [[ -n "$found" && -e "$(dirname "$found")/libcublas.so.13" ]] && { dirname "$found"; return 0; }
  return 1
}
if ! cublas_dir=$(find_cublas); then
  echo "gpu-check: libcublas.so.13 / libcublasLt.so.13 not found on this machine" >&2
  exit 1
fi
# Only our programs see the bundled libraries (nvidia-smi keeps the machine's own).
run_bundled() { env LD_LIBRARY_PATH="$work/lib:$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || nvidia-smi
echo "cuBLAS from $cublas_dir; bundle unpacked in $work"
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
# The CPU rows and the CPU side of the CUDA rows use OpenMP.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) < 16 ? $(nproc) : 16 ))}

echo "== backend op tests (CPU against references, CUDA against the CPU), limit ${test_timeout}s"
test_start=$SECONDS
run_bundled timeout "$test_timeout" "$work/bin/test_backend_ops" 2>&1 | tee "$logs/test_backend_ops.log"
test_rc=${PIPESTATUS[0]}
test_seconds=$((SECONDS - test_start))

# The trainer itself on the GPU: the same tiny run on --device cuda and --device cpu (losses
# must agree), and a CUDA run stopped after its first step and resumed, which must end
# bit-identical to the straight one (checkpoint staging through host memory).
echo "== shardlm train --device cuda vs cpu, and a stop/resume on cuda"
train_args=(--model tiny --n-layer 2 --n-embd 128 --n-head 4 --vocab-size 1000 --max-seq-len 64 --seq-len 64
            --micro-batch 4 --global-batch 8 --steps 20 --warmup 2 --lr 1e-3 --log-every 5)
run_bundled timeout 120 "$work/bin/shardlm" train --device cuda --out "$work/run_cuda" "${train_args[@]}" \
  > "$logs/train_cuda.log" 2>&1
train_cuda_rc=$?
run_bundled timeout 120 "$work/bin/shardlm" train --device cpu --out "$work/run_cpu" "${train_args[@]}" \
  > "$logs/train_cpu.log" 2>&1
run_bundled timeout 60 "$work/bin/shardlm" train --device cuda --out "$work/run_resume" "${train_args[@]}" \
  --exit-after-minutes 0.0000001 > "$logs/train_resume.log" 2>&1
stop_rc=$?
run_bundled timeout 120 "$work/bin/shardlm" train --device cuda --out "$work/run_resume" "${train_args[@]}" \
  >> "$logs/train_resume.log" 2>&1
resume_rc=$?
# metrics.jsonl lines: {"step":N,"loss":X,...}: loss per step of each run.
losses() { grep -o '"step":[0-9]*,"loss":[-0-9.e+na]*' "$1/metrics.jsonl" | sed 's/"step":\([0-9]*\),"loss":/\1 /'; }
losses "$work/run_cuda" > "$logs/losses_cuda.txt" 2>/dev/null
losses "$work/run_cpu" > "$logs/losses_cpu.txt" 2>/dev/null
losses "$work/run_resume" > "$logs/losses_resume.txt" 2>/dev/null
train_summary=$(paste "$logs/losses_cuda.txt" "$logs/losses_cpu.txt" | awk '
  { d = $2 - $4; if (d < 0) d = -d; r = d / ($4 < 0 ? -$4 : $4); if (r > worst) worst = r; n++ }
  END { printf "%d steps, worst |cuda-cpu|/cpu loss %.2e", n, worst }')
resume_same=$(paste "$logs/losses_cuda.txt" "$logs/losses_resume.txt" | awk '
  $1 != $3 || $2 != $4 { bad++ } END { print (bad || NR == 0 ? "DIFFERENT" : "identical") }')
tps=$(grep -o '"tokens_per_s":[0-9.e+]*' "$work/run_cuda/metrics.jsonl" | tail -1 | cut -d: -f2)
echo "train: exit cuda $train_cuda_rc, stop $stop_rc (75 expected), resume $resume_rc; $train_summary; resumed losses $resume_same; cuda tokens/s $tps"

echo "== benchmark: bench_train_step_cuda $bench_args, limit ${bench_timeout}s"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
run_bundled timeout "$bench_timeout" "$work/bin/bench_train_step_cuda" $bench_args 2>&1 | tee "$logs/bench_train_step_cuda.log"
bench_rc=${PIPESTATUS[0]}

echo
echo "== summary"
# One line per test ends in "(N ms)"; gtest's closing lists repeat the names without it.
# Parameterized names end in /cuda_<row> or /cuda.
count() { grep -cE "^\[ *$1 *\] [^ ]*/cuda(_[^ ]*)?[ ,].*\([0-9]+ ms\)\$" "$logs/test_backend_ops.log"; }
passed=$(count OK)
failed=$(count FAILED)
skipped=$(count SKIPPED)
cpu_failed=$(grep -cE '^\[  FAILED  \] [^ ]*/cpu(_[^ ]*)?[ ,].*\([0-9]+ ms\)$' "$logs/test_backend_ops.log")
printf "%-34s %s\n" "device" "$(grep -m1 '^device:' "$logs/bench_train_step_cuda.log" | sed 's/^device: //')"
printf "%-34s %s passed, %s failed, %s skipped; CPU tests: %s failed (exit %s, %s s)\n" \
  "test_backend_ops, CUDA tests" "$passed" "$failed" "$skipped" "$cpu_failed" \
  "$test_rc" "$test_seconds"
grep -E '^\[  FAILED  \] .*\([0-9]+ ms\)$' "$logs/test_backend_ops.log" | sed 's/, where GetParam().* = / /; s/^/    /'
# GEMM rows: "gemm: math=fp32 layer=qkv N=.. C=.. OC=.. fwd_ms=.. fwd_tflops=.. bwd_ms=.. bwd_tflops=.."
printf "%-6s %-10s %-22s %12s %12s\n" "math" "layer" "N x C -> OC" "fwd TFLOP/s" "bwd TFLOP/s"
awk '/^gemm:/ {
  for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "%-6s %-10s %-22s %12s %12s\n", v["math"], v["layer"], v["N"] " x " v["C"] " -> " v["OC"], v["fwd_tflops"], v["bwd_tflops"]
}' "$logs/bench_train_step_cuda.log"
# Step rows: "result: math=.. model=.. seq_len=.. micro_batch=.. tokens_per_s=.. step_ms=.. model_tflops=.. ..."
printf "%-6s %-8s %-10s %12s %10s %13s %8s\n" "math" "model" "B x T" "tokens/s" "step ms" "model TFLOP/s" "loss"
awk '/^result:/ {
  for (i = 2; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "%-6s %-8s %-10s %12s %10s %13s %8s\n", v["math"], v["model"], v["micro_batch"] " x " v["seq_len"], v["tokens_per_s"], v["step_ms"], v["model_tflops"], v["loss"]
}' "$logs/bench_train_step_cuda.log"
[[ $bench_rc -ne 0 ]] && echo "bench_train_step_cuda exited with $bench_rc"
printf "%-34s %s\n" "shardlm train (tiny, 20 steps)" "exit cuda $train_cuda_rc / stop $stop_rc / resume $resume_rc; $train_summary; resume $resume_same"

# A CUDA test that skipped here (no device seen) is a failure of the check, not a pass.
[[ $test_rc -eq 0 && $skipped -eq 0 && $passed -gt 0 && $bench_rc -eq 0 && $train_cuda_rc -eq 0 && $stop_rc -eq 75 && $resume_rc -eq 0 && $resume_same == identical ]]
