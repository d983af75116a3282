#!/usr/bin/env bash
# launch/shardlm-launch inside a SLURM allocation: it must pick `srun --mpi=pmix`, notice a
# fault in one rank, end the job step on its own and restart it within the same allocation,
# finishing with final weights bit-identical to an uninterrupted run.
#
#   test_launcher_srun.sh MODE SCRATCH_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]
#
# MODE: kill  kill -9 one rank (srun --kill-on-bad-exit ends the step; the launcher restarts)
#       hang  SIGSTOP one rank (the hang detector fires; two SIGINTs end the srun step)
# The run must last at least 4 checkpoint intervals. Environment: RANKS (default 2), SAVE_EVERY
# (default 5), REFERENCE (a finished uninterrupted run of the same command, from
# tests/launcher/reference_run.sh; made here when unset), MPIRUN_ARGS.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
usage="usage: test_launcher_srun.sh kill|hang SCRATCH_DIR TRAINER_BIN CONFIG [FLAGS...]"
parse_e2e_args "$usage" "kill|hang" "$@"
start_cluster
RANKS=$ranks SAVE_EVERY=$save_every reference_run "$bin" "$config" "${flags[@]}"

run_dir=$scratch/run
launch=(python3 "$REPO_DIR/launch/shardlm-launch" --shardlm "$bin" --poll-interval 0.25 --backoff 1
  --hang-timeout 5 --hang-grace 120 -- --config "$config" "${flags[@]}" --out "$run_dir" --save-every "$save_every")
job=$(sbatch --parsable -n "$ranks" -J "launch-$mode" -o "$scratch/job.out" -D "$scratch" \
  --wrap "$(printf '%q ' "${launch[@]}")")
test_log "job $job submitted: ${launch[*]}"

# The rank's process: the trainer executable with this job's id and the rank in its environment.
rank_pid() {  # rank
  local p env
  for p in /proc/[0-9]*; do
    [ "$p/exe" -ef "$bin" ] 2>/dev/null || continue
    env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null || true)
    grep -qx "SLURM_JOB_ID=$job" <<<"$env" || continue
    grep -qx "SLURM_PROCID=$1" <<<"$env" || continue
    echo "${p#/proc/}"
    return 0
  done
  return 1
}
# Find the rank first, so that the fault lands right after the first checkpoint.
rank=$((RANDOM % ranks))
deadline=$((SECONDS + 120))
until pid=$(rank_pid "$rank"); do
  [ $SECONDS -lt $deadline ] || { ps -eo pid,stat,args >&2; fail "rank $rank of job $job not found in 120 s"; }
  sleep 0.2
done
until [ "$(progress_step "$run_dir")" -gt "$save_every" ]; do
  [ $SECONDS -lt $deadline ] || fail "no progress past step $save_every in 120 s"
  sleep 0.05
done
if [ "$mode" = kill ]; then
  test_log "kill -9 rank $rank (pid $pid) at step $(progress_step "$run_dir")"
  kill -KILL "$pid"
else
  test_log "SIGSTOP rank $rank (pid $pid) at step $(progress_step "$run_dir")"
  kill -STOP "$pid"
fi

state=$(wait_job_done "$job" 300)
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

[ "$(grep -c "^shardlm train: $ranks ranks" "$scratch/job.out")" -ge 2 ] ||
  fail "expected two starts of a $ranks-rank trainer in $scratch/job.out"
compare_final "$ref_dir" "$run_dir"
test_log "PASS"
