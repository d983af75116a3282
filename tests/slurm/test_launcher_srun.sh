#!/usr/bin/env bash
# launch/shardlm-launch inside a SLURM allocation: it must pick `srun --mpi=pmix`, notice a
# fault in one rank, end the job step on its own and restart it within the same allocation,
# finishing with final weights bit-identical to an uninterrupted run.
#
#   test_launcher_srun.sh MODE SCRATCH_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]
#
# MODE: kill  kill -9 one rank (srun --kill-on-bad-exit ends the step; the launcher restarts)
#       hang  SIGSTOP one rank (the hang detector fires; two SIGINTs end the srun step)
# TRAINER_BIN is `shardlm` (or tests/launcher/contract_trainer); the run must last at least 4
# checkpoint intervals. Environment: RANKS (default 3), SAVE_EVERY (default 5), MPIRUN_ARGS.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
usage="usage: test_launcher_srun.sh kill|hang SCRATCH_DIR TRAINER_BIN CONFIG [FLAGS...]"
mode=${1:?$usage}
setup_scratch "${2:?$usage}"
bin=$(realpath "${3:?$usage}")
config=$(realpath "${4:?$usage}")
shift 4
ranks=${RANKS:-3}
save_every=${SAVE_EVERY:-5}
case "$mode" in kill | hang) ;; *) echo "$usage" >&2; exit 2 ;; esac
start_cluster

test_log "reference run: $ranks ranks, uninterrupted"
# shellcheck disable=SC2046  # mpirun_flags is a word list
mpirun $(mpirun_flags) --oversubscribe -np "$ranks" "$bin" train --config "$config" "$@" \
  --out "$scratch/ref" --resume auto --save-every "$save_every" >"$scratch/ref.log" 2>&1 || {
  tail -n 30 "$scratch/ref.log" >&2
  fail "the reference run failed"
}

run_dir=$scratch/run
launch=(python3 "$REPO_DIR/launch/shardlm-launch" --shardlm "$bin" --poll-interval 0.25 --backoff 1
  --hang-timeout 8 --hang-grace 120 -- --config "$config" "$@" --out "$run_dir" --save-every "$save_every")
job=$(sbatch --parsable -n "$ranks" -J "launch-$mode" -o "$scratch/job.out" -D "$scratch" \
  --wrap "$(printf '%q ' "${launch[@]}")")
test_log "job $job submitted: ${launch[*]}"

# The rank's process: the trainer executable with this job's id and the rank in its environment.
rank_pid() {  # rank
  local p env
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$bin" ] || continue
    env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null || true)
    grep -x "SLURM_JOB_ID=$job" <<<"$env" >/dev/null || continue
    grep -x "SLURM_PROCID=$1" <<<"$env" >/dev/null || continue
    echo "${p#/proc/}"
    return 0
  done
  return 1
}
progress_step() {
  sed -n 's/^step=\([0-9]*\).*/\1/p' "$run_dir/progress/rank_0.txt" 2>/dev/null || echo 0
}
deadline=$((SECONDS + 300))
until [ "$(progress_step)" -gt "$save_every" ]; do
  [ $SECONDS -lt $deadline ] || fail "no progress past step $save_every in 300 s"
  sleep 0.2
done
rank=$((RANDOM % ranks))
pid=""
for _ in $(seq 1 50); do
  pid=$(rank_pid "$rank") && break
  sleep 0.2
done
[ -n "$pid" ] || {
  ps -eo pid,stat,args >&2
  fail "rank $rank of job $job not found"
}
if [ "$mode" = kill ]; then
  test_log "kill -9 rank $rank (pid $pid) at step $(progress_step)"
  kill -KILL "$pid"
else
  test_log "SIGSTOP rank $rank (pid $pid) at step $(progress_step)"
  kill -STOP "$pid"
fi

state=$(wait_job_done "$job" 600)
test_log "job $job: $state"
cat "$run_dir/launcher.log"
[ "$state" = COMPLETED ] || fail "job ended $state"
grep -q "srun --mpi=pmix --ntasks=$ranks" "$run_dir/launcher.log" || fail "the launcher did not use srun inside the allocation"
grep -q "attempt 2 of" "$run_dir/launcher.log" || fail "the launcher never restarted"
if [ "$mode" = hang ]; then
  grep -q "hang: no rank advanced" "$run_dir/launcher.log" || fail "no hang was reported"
  grep -q "rank $rank: .*is stopped" "$run_dir/launcher.log" || fail "the hang report does not name stopped rank $rank"
fi
grep -q "attempt 2 finished (exit 0)" "$run_dir/launcher.log" || fail "the restarted attempt did not finish"

ref_latest=$(cat "$scratch/ref/checkpoints/latest")
run_latest=$(cat "$run_dir/checkpoints/latest")
[ "$ref_latest" = "$run_latest" ] || fail "final checkpoints differ: $ref_latest vs $run_latest"
"$REPO_DIR/tests/launcher/compare_checkpoints.sh" "$scratch/ref/checkpoints/$ref_latest" \
  "$run_dir/checkpoints/$run_latest" || fail "final weights differ from the uninterrupted run"
test_log "PASS"
