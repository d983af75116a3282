#!/usr/bin/env bash
# End-to-end: a CPU training job from slurm/shardlm-cpu.sbatch on the private cluster is
# interrupted, saves, is requeued, resumes from its checkpoint and goes on.
#
#   test_cpu_template.sh MODE SCRATCH_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]
#
# MODE: signal     `scancel --batch --signal=USR1` once the run has made progress (what the
#                  --signal=B:USR1@<sec> warning does); the job saves, exits 75, requeues itself
#       requeue    `scontrol requeue` from outside (preemption-like: SIGTERM to the job)
#       early      `scancel --batch --signal=USR1` the moment the batch script logs the step's
#                  start, before the ranks run: the stop must not be lost (mpirun drops a
#                  signal before its ranks exist): the script holds it until every rank has
#                  written its first heartbeat, then the job saves and requeues as in signal
#       timelimit  --time=1 --signal=B:USR1@20: the pre-timeout warning must come, the job
#                  save and requeue itself before the limit, and the next start resume from
#                  that checkpoint and train on (then the test cancels it). TRAINER_FLAGS must
#                  make the run longer than a minute, so that only the warning can end the start.
#                  With TIMELIMIT_COMPARE=1 the test cancels once the resumed start has
#                  committed a checkpoint of its own, and that one must equal the same step of
#                  an uninterrupted run, bit for bit (stopped there: UNTIL of
#                  tests/launcher/reference_run.sh; TRAINER_FLAGS then need --keep-every
#                  SAVE_EVERY, so that the twin keeps that checkpoint while it saves on).
# signal, early and requeue must end COMPLETED with final weights bit-identical to an uninterrupted
# run of the same command under plain mpirun.
# Environment: RANKS (default 2), NODES (sbatch --nodes, RANKS/NODES tasks per node; default:
# the template's one node), LAUNCHER (mpirun|srun|shardlm-launch, default the
# template's), SAVE_EVERY (default 5), REFERENCE (a finished uninterrupted run of the same
# command, from tests/launcher/reference_run.sh; made here when unset), MPIRUN_ARGS,
# CKPT_COMPARE_IGNORE (compare_checkpoints.sh).
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
usage="usage: test_cpu_template.sh signal|early|requeue|timelimit SCRATCH_DIR TRAINER_BIN CONFIG [FLAGS...]"
parse_e2e_args "$usage" "signal|early|requeue|timelimit" "$@"
[ -x "$bin" ] || fail "$bin is not executable"
start_cluster
[ "$mode" = timelimit ] || RANKS=$ranks SAVE_EVERY=$save_every reference_run "$bin" "$config" "${flags[@]}"

export RUN_DIR=$scratch/run SHARDLM_BIN=$bin CONFIG=$config SAVE_EVERY=$save_every TRAIN_ARGS="${flags[*]}"
export MPIRUN_ARGS
[ "${LAUNCHER:-}" != shardlm-launch ] || export LAUNCH_ARGS="--poll-interval 0.25"
time_args=() node_args=()
# slurmctld checks limits every 30 s and sends the warning at the first check that leaves less
# than @<sec> + 30 s: with --time=1 that is 10-40 s into the start, when the trainer is up.
[ "$mode" != timelimit ] || time_args=(--time=1 --signal=B:USR1@20)
# Several nodes: RANKS/NODES ranks on each (TP groups, which the mesh puts on consecutive ranks,
# then inside a node).
[ -z "${NODES:-}" ] || node_args+=(--nodes="$NODES" --ntasks-per-node=$((ranks / NODES)))
job=$(sbatch --parsable -n "$ranks" -J "cpu-$mode" -o "$scratch/job.out" -D "$scratch" \
  "${time_args[@]}" "${node_args[@]}" "$REPO_DIR/slurm/shardlm-cpu.sbatch")
test_log "job $job submitted ($mode, LAUNCHER=${LAUNCHER:-template default})"

job_ended() {
  case "$FINAL_STATES" in *" $(job_field "$job" JobState) "*) return 0 ;; esac
  return 1
}

if [ "$mode" = early ]; then
  # Interrupt the first start as its step is launched.
  deadline=$((SECONDS + 120))
  until grep -q "restart 0\] start on" "$RUN_DIR/slurm_job.log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "the batch script did not start the step in 120 s"
    ! job_ended || fail "job ended before the interruption"
    sleep 0.02
  done
  test_log "interrupting as the step starts (rank 0 at step $(progress_step "$RUN_DIR"))"
  scancel --batch --signal=USR1 "$job"
  state=$(wait_job_done "$job" 300)
elif [ "$mode" != timelimit ]; then
  # Interrupt once the run is under way: after the first checkpoint, before the end.
  deadline=$((SECONDS + 120))
  until [ "$(progress_step "$RUN_DIR")" -gt "$save_every" ]; do
    [ $SECONDS -lt $deadline ] || fail "no progress past step $save_every in 120 s"
    ! job_ended || fail "job ended before the interruption"
    sleep 0.1
  done
  test_log "interrupting at step $(progress_step "$RUN_DIR")"
  if [ "$mode" = signal ]; then
    scancel --batch --signal=USR1 "$job"
  else
    scontrol requeue "$job"
  fi
  state=$(wait_job_done "$job" 300)
else
  # The first start ends with a save and a requeue, the second resumes and trains on.
  deadline=$((SECONDS + 150))
  resumed=""
  while [ $SECONDS -lt $deadline ] && ! job_ended; do
    resumed=$(sed -n 's/.*restart 1\] resuming from step_0*\([0-9]*\)$/\1/p' "$RUN_DIR/slurm_job.log" 2>/dev/null || true)
    [ -z "$resumed" ] || [ "$(progress_step "$RUN_DIR")" -le "$resumed" ] || break
    sleep 0.25
  done
  ! job_ended || fail "job ended $(job_field "$job" JobState) before it resumed after the time-limit warning"
  [ -n "$resumed" ] || fail "no start resumed after the time-limit warning in 150 s"
  [ "$(progress_step "$RUN_DIR")" -gt "$resumed" ] || fail "the resumed start made no progress past step $resumed"
  if [ -n "${TIMELIMIT_COMPARE:-}" ]; then
    # A checkpoint of the resumed start: what it trained after the time-limit save.
    deadline=$((SECONDS + 60))
    until [ "$(sed -n 's/^step_0*//p' "$RUN_DIR/checkpoints/latest")" -gt "$resumed" ]; do
      [ $SECONDS -lt $deadline ] || fail "the resumed start committed no checkpoint past step $resumed in 60 s"
      ! job_ended || fail "job ended before the resumed start saved"
      sleep 0.25
    done
    # Named now: the cancel's SIGTERM makes the trainer save once more, at a step of its own.
    upto=$(cat "$RUN_DIR/checkpoints/latest")
  fi
  test_log "restart 1 resumed from step $resumed and reached step $(progress_step "$RUN_DIR"); cancelling"
  state=$(cancel_job "$job" 60)
fi
restarts=$(job_field "$job" Restarts)
test_log "job $job: $state, Restarts=$restarts"
cat "$RUN_DIR/slurm_job.log"
[ "${restarts:-0}" -ge 1 ] || fail "the job was never requeued (Restarts=$restarts)"
# Every start ran all ranks in one MPI job (no singletons from a launcher without PMI wiring).
[ "$(grep -c "^shardlm train: $ranks ranks" "$scratch/job.out")" -ge 2 ] ||
  fail "expected two starts of a $ranks-rank trainer in $scratch/job.out"
grep -q "resuming from step_" "$RUN_DIR/slurm_job.log" || fail "no start resumed from a checkpoint"
case "$mode" in
  early)
    grep -q "got SIGUSR1" "$RUN_DIR/slurm_job.log" || fail "the batch script never saw SIGUSR1"
    grep -q "exit 75.*requeueing" "$RUN_DIR/slurm_job.log" || fail "the stop before the ranks ran was lost"
    grep -h "got SIGUSR1" "$RUN_DIR/slurm_job.log" | head -n1
    ;;
  signal | timelimit)
    grep -q "got SIGUSR1" "$RUN_DIR/slurm_job.log" || fail "the batch script never saw SIGUSR1"
    grep -q "exit 75.*requeueing" "$RUN_DIR/slurm_job.log" || fail "the job did not save and requeue itself"
    ;;
esac
if [ "$mode" = timelimit ]; then
  [ "$state" = CANCELLED ] || fail "job ended $state, expected CANCELLED by the test"
  saved=$(sed -n 's/^stop requested (signal 10) at step \([0-9]*\):.*/\1/p' "$scratch/job.out" | head -n1)
  [ "$saved" = "$resumed" ] || fail "the first start stopped at step '${saved}' on SIGUSR1, the second resumed from $resumed"
  grep -q "^resumed from .*step_0*$resumed at step $resumed " "$scratch/job.out" ||
    fail "the trainer did not report resuming at step $resumed"
  if [ -n "${TIMELIMIT_COMPARE:-}" ]; then
    ref_dir=$scratch/ref
    RANKS=$ranks SAVE_EVERY=$save_every UNTIL=$upto "$REPO_DIR/tests/launcher/reference_run.sh" \
      "$ref_dir" "$bin" "$config" "${flags[@]}" || fail "the reference run failed"
    "$REPO_DIR/tests/launcher/compare_checkpoints.sh" "$ref_dir/checkpoints/$upto" "$RUN_DIR/checkpoints/$upto" ||
      fail "$upto of the resumed start differs from the uninterrupted run's"
    test_log "$upto, saved by the start resumed from step $resumed, equals the uninterrupted run's"
  fi
else
  [ "$state" = COMPLETED ] || fail "job ended $state"
  grep -q "job step finished (exit 0)" "$RUN_DIR/slurm_job.log" || fail "the last start did not finish"
  compare_final "$ref_dir" "$RUN_DIR"
fi
if [ -n "${NODES:-}" ]; then
  # The ranks ran on NODES hosts (their heartbeats name them).
  hosts=$(sed -n 's/.* host=\([^ ]*\).*/\1/p' "$RUN_DIR"/progress/rank_*.txt | sort -u)
  [ "$(grep -c . <<<"$hosts")" -eq "$NODES" ] || fail "the ranks ran on $(echo $hosts), not $NODES nodes"
  test_log "ranks ran on $(echo $hosts)"
fi
test_log "PASS"
