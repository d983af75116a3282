#!/usr/bin/env bash
# Stress run of the stop paths under CPU load (not part of `make test`: minutes, and it loads
# every core on purpose). Repeats one stop test N times while a busy loop runs on every core,
# and counts the outcomes; the logs of every failed iteration are kept.
#
#   tests/stress/stress_stop.sh launcher|launcher-early|slurm N BUILD_DIR [OUT_DIR]
#
# launcher: tests/launcher/launcher_test.py stop-resume (SIGTERM to shardlm-launch: the job must
#           save and the launcher exit 75, then a second launch resumes bit-exact).
# launcher-early: launcher_test.py stop-early (the SIGTERM as the launcher starts mpirun).
# slurm:    tests/slurm/test_cpu_template.sh early (SIGUSR1 to the batch script as the step
#           starts, before the ranks run: the stop must not be lost).
# Environment: LOAD (busy loops, default: one per core), RANKS, SAVE_EVERY.
set -euo pipefail
usage="usage: stress_stop.sh launcher|launcher-early|slurm N BUILD_DIR [OUT_DIR]"
what=${1:?$usage}
n=${2:?$usage}
build=$(realpath "${3:?$usage}")
out=${4:-$build/stress-$what}
repo=$(cd "$(dirname "$0")/../.." && pwd)
config=$repo/configs/e2e-tiny.ini
bin=$build/shardlm
mkdir -p "$out"

busy=()
stop_load() { [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null || true; }
trap stop_load EXIT
for _ in $(seq 1 "${LOAD:-$(nproc)}"); do
  (while :; do :; done) &
  busy+=($!)
done

export OMP_NUM_THREADS=1 MPIRUN_ARGS="--bind-to none --mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none"
export REFERENCE=$out/reference
if [ ! -s "$REFERENCE/checkpoints/latest" ]; then
  "$repo/tests/launcher/reference_run.sh" "$REFERENCE" "$bin" "$config" >/dev/null
fi
pass=0
failed=()
for i in $(seq 1 "$n"); do
  log=$out/iteration_$i.log
  case "$what" in
    launcher) cmd=(python3 "$repo/tests/launcher/launcher_test.py" stop-resume "$out/run" "$bin" "$config") ;;
    launcher-early) cmd=(python3 "$repo/tests/launcher/launcher_test.py" stop-early "$out/run" "$bin" "$config") ;;
    slurm) cmd=("$repo/tests/slurm/test_cpu_template.sh" early "$out/run" "$bin" "$config") ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  if SEED=$i "${cmd[@]}" >"$log" 2>&1; then
    pass=$((pass + 1))
    rm -f "$log"
  else
    failed+=("$i")
    cp -r "$out/run" "$out/failed_$i" 2>/dev/null || true
  fi
  echo "[$(date +%T)] iteration $i: $pass passed, ${#failed[@]} failed; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "$what: $pass of $n passed under load; failed iterations: ${failed[*]:-none} (logs in $out)"
[ ${#failed[@]} -eq 0 ]
