#!/usr/bin/env bash
# End-to-end: a CPU training job from slurm/shardlm-cpu.sbatch on the private cluster is
# interrupted, saves, requeues itself (or is requeued), resumes and finishes with final weights
# bit-identical to an uninterrupted run of the same command under plain mpirun.
#
#   test_cpu_template.sh MODE SCRATCH_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]
#
# MODE: signal     `scancel --batch --signal=USR1` once the run has made progress (what the
#                  --signal=B:USR1@<sec> warning does); the job saves, exits 75, requeues itself
#       requeue    `scontrol requeue` from outside (preemption-like: SIGTERM to the job)
#       timelimit  --time=1 --signal=B:USR1@50: the pre-timeout warning must come, the job
#                  save and requeue before the limit, every start, until the run is done
#                  (the run must need more than a minute of training: it needs at least one
#                  restart, and the test checks that there was one)
# TRAINER_BIN is `shardlm` (or tests/launcher/contract_trainer); CONFIG and TRAINER_FLAGS are
# passed to `train`. Environment: RANKS (default 2), LAUNCHER (mpirun|srun, default the
# template's), SAVE_EVERY (default 5), MPIRUN_ARGS, CKPT_COMPARE_IGNORE (compare_checkpoints.sh).
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
usage="usage: test_cpu_template.sh signal|requeue|timelimit SCRATCH_DIR TRAINER_BIN CONFIG [FLAGS...]"
mode=${1:?$usage}
setup_scratch "${2:?$usage}"
bin=$(realpath "${3:?$usage}")
config=$(realpath "${4:?$usage}")
shift 4
ranks=${RANKS:-2}
save_every=${SAVE_EVERY:-5}
case "$mode" in signal | requeue | timelimit) ;; *) echo "$usage" >&2; exit 2 ;; esac
[ -x "$bin" ] || fail "$bin is not executable"
start_cluster

test_log "reference run: $ranks ranks, uninterrupted"
# shellcheck disable=SC2046  # mpirun_flags is a word list
mpirun $(mpirun_flags) -np "$ranks" "$bin" train --config "$config" "$@" --out "$scratch/ref" \
  --resume auto --save-every "$save_every" >"$scratch/ref.log" 2>&1 || {
  tail -n 30 "$scratch/ref.log" >&2
  fail "the reference run failed"
}

export RUN_DIR=$scratch/run SHARDLM_BIN=$bin CONFIG=$config SAVE_EVERY=$save_every TRAIN_ARGS="$*"
export MPIRUN_ARGS
time_args=()
[ "$mode" != timelimit ] || time_args=(--time=1 --signal=B:USR1@50)
job=$(sbatch --parsable -n "$ranks" -J "cpu-$mode" -o "$scratch/job.out" -D "$scratch" \
  "${time_args[@]}" "$REPO_DIR/slurm/shardlm-cpu.sbatch")
test_log "job $job submitted ($mode, LAUNCHER=${LAUNCHER:-template default})"

progress_step() {  # the step rank 0 last reported, 0 before the first
  sed -n 's/^step=\([0-9]*\).*/\1/p' "$RUN_DIR/progress/rank_0.txt" 2>/dev/null || echo 0
}
if [ "$mode" != timelimit ]; then
  # Interrupt once the run is under way: after the first checkpoint, before the end.
  deadline=$((SECONDS + 300))
  until [ "$(progress_step)" -gt "$save_every" ]; do
    [ $SECONDS -lt $deadline ] || fail "no progress past step $save_every in 300 s"
    case "$(job_field "$job" JobState)" in COMPLETED | FAILED | CANCELLED | TIMEOUT) fail "job ended before the interruption" ;; esac
    sleep 0.2
  done
  test_log "interrupting at step $(progress_step)"
  if [ "$mode" = signal ]; then
    scancel --batch --signal=USR1 "$job"
  else
    scontrol requeue "$job"
  fi
fi

state=$(wait_job_done "$job" 900)
restarts=$(job_field "$job" Restarts)
test_log "job $job: $state, Restarts=$restarts"
cat "$RUN_DIR/slurm_job.log"
[ "$state" = COMPLETED ] || fail "job ended $state"
[ "${restarts:-0}" -ge 1 ] || fail "the job was never requeued (Restarts=$restarts)"
case "$mode" in
  signal | timelimit)
    grep -q "got SIGUSR1" "$RUN_DIR/slurm_job.log" || fail "the batch script never saw SIGUSR1"
    grep -q "exit 75.*requeueing" "$RUN_DIR/slurm_job.log" || fail "the job did not save and requeue itself"
    ;;
esac
grep -q "resuming from step_" "$RUN_DIR/slurm_job.log" || fail "no start resumed from a checkpoint"
grep -q "job step finished (exit 0)" "$RUN_DIR/slurm_job.log" || fail "the last start did not finish"

ref_latest=$(cat "$scratch/ref/checkpoints/latest")
run_latest=$(cat "$RUN_DIR/checkpoints/latest")
[ "$ref_latest" = "$run_latest" ] || fail "final checkpoints differ: $ref_latest vs $run_latest"
"$REPO_DIR/tests/launcher/compare_checkpoints.sh" "$scratch/ref/checkpoints/$ref_latest" \
  "$RUN_DIR/checkpoints/$run_latest" || fail "final weights differ from the uninterrupted run"
test_log "PASS"
