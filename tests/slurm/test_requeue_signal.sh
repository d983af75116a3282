#!/usr/bin/env bash
# The requeue path the templates rely on, with a plain bash job: it traps SIGUSR1/SIGTERM while
# its "work" runs in the background, answers the signal like the trainer (save, status 75) and
# requeues itself with `scontrol requeue $SLURM_JOB_ID`; the second start sees
# SLURM_RESTART_COUNT=1 and finishes. The signal comes from `scancel --batch --signal=USR1`.
#   test_requeue_signal.sh SCRATCH_DIR
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
setup_scratch "${1:?usage: test_requeue_signal.sh SCRATCH_DIR}"
start_cluster

cat >"$scratch/requeue_job.sh" <<'JOB'
#!/bin/bash
restarts=${SLURM_RESTART_COUNT:-0}
echo "start restart_count=$restarts"
if [ "$restarts" -ge 1 ]; then
  echo "finished restart_count=$restarts"
  exit 0
fi
got=""
trap 'got=USR1' USR1
trap 'got=TERM' TERM
sleep 600 &
work=$!
touch ready  # the job runs in -D SCRATCH_DIR
wait "$work"  # returns as soon as a trapped signal arrives
kill "$work"
echo "got SIG$got: saved"
rc=75
if [ $rc -eq 75 ] && scontrol requeue "$SLURM_JOB_ID"; then
  echo "requeued"
  exit 0
fi
exit $rc
JOB
job=$(sbatch --parsable -n 1 --requeue --open-mode=append -J requeue -o "$scratch/requeue.out" \
  -D "$scratch" "$scratch/requeue_job.sh")
for _ in $(seq 1 120); do
  [ -f "$scratch/ready" ] && break
  sleep 0.5
done
[ -f "$scratch/ready" ] || fail "job $job never started its work"
scancel --batch --signal=USR1 "$job"
state=$(wait_job_done "$job" 120)
restarts=$(job_field "$job" Restarts)
test_log "job $job: $state, Restarts=$restarts"
cat "$scratch/requeue.out"
[ "$state" = COMPLETED ] || fail "job ended $state"
[ "$restarts" = 1 ] || fail "Restarts=$restarts, expected 1"
grep -q "got SIGUSR1: saved" "$scratch/requeue.out" || fail "the trap did not see SIGUSR1"
grep -q "^requeued" "$scratch/requeue.out" || fail "the job did not requeue itself"
grep -q "finished restart_count=1" "$scratch/requeue.out" || fail "no second start with SLURM_RESTART_COUNT=1"
test_log "PASS"
