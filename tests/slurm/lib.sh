# shellcheck shell=bash
# Helpers for the SLURM tests (sourced): a private cluster per test in the test's scratch
# folder, stopped on every exit; job state polling; failure reports with the logs that explain.
#
#   setup_scratch DIR      stop a cluster an earlier killed run left in DIR, then empty DIR
#   start_cluster          start it (exit 77 = skip when SLURM cannot run here), export SLURM_CONF,
#                          stop it again when the test exits, failing the test if that fails
#   job_field JOB FIELD    one field of `scontrol show job` (JobState, Restarts, ExitCode, ...)
#   wait_job_done JOB SEC  wait for a final state, print it
#   cancel_job JOB SEC     scancel until the job is gone from the queue, print its final state
#   progress_step RUN_DIR  the step rank 0 last reported in RUN_DIR/progress, 0 before the first
#   reference_run BIN CONFIG [FLAGS..]  set ref_dir to the uninterrupted twin run: $REFERENCE
#                          when set (CTest's fixture), else one made now in $scratch/ref
#   compare_final REF RUN  fail unless RUN's final checkpoint is REF's, bit for bit
#   fail MESSAGE           print, dump logs, exit 1
set -euo pipefail

SLURM_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SLURM_TESTS_DIR/../.." && pwd)
export SLURM_TESTS_DIR REPO_DIR
: "${MPIRUN_ARGS:=}"  # extra mpirun flags (CTest passes the ones the MPI tests use)
scratch=""

test_log() { echo "[$(date +%T)] $*"; }

dump_logs() {
  [ -n "$scratch" ] || return 0
  local f
  for f in "$scratch"/*.out "$scratch"/*/slurm_job.log "$scratch"/cluster/log/slurmctld.log "$scratch"/cluster/log/slurmd*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f" >&2
    tail -n 40 "$f" >&2
  done
}

fail() {
  echo "FAIL: $*" >&2
  dump_logs
  exit 1
}

setup_scratch() {
  scratch=$1
  if [ -s "$scratch/cluster/cluster.dir" ]; then
    "$SLURM_TESTS_DIR/slurm_cluster.sh" stop "$scratch/cluster" || fail "could not stop the cluster left in $scratch"
  fi
  rm -rf "$scratch"
  mkdir -p "$scratch"
  scratch=$(cd "$scratch" && pwd -P)
}

stop_cluster_on_exit() {
  local rc=$?
  trap - EXIT
  if ! "$SLURM_TESTS_DIR/slurm_cluster.sh" stop "$scratch/cluster"; then
    echo "FAIL: the cluster did not stop cleanly" >&2
    [ $rc -ne 0 ] || rc=1
  fi
  exit $rc
}

start_cluster() {
  local rc=0
  "$SLURM_TESTS_DIR/slurm_cluster.sh" start "$scratch/cluster" || rc=$?
  [ $rc -ne 77 ] || exit 77
  trap stop_cluster_on_exit EXIT
  [ $rc -eq 0 ] || fail "the cluster did not start"
  eval "$("$SLURM_TESTS_DIR/slurm_cluster.sh" env "$scratch/cluster")"
  export SLURM_CONF
}

job_field() {  # job field
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

readonly FINAL_STATES=" COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY BOOT_FAIL DEADLINE PREEMPTED "

wait_job_done() {  # job seconds
  local deadline=$((SECONDS + $2)) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(job_field "$1" JobState)
    case "$FINAL_STATES" in *" $state "*) echo "$state"; return 0 ;; esac
    sleep 0.5
  done
  fail "job $1 not finished after $2 s (state ${state:-unknown})"
}

# Cancels a job for good and prints its final state. A cancel's SIGTERM makes the trainer save
# and exit 75, and the batch script may then requeue the job before slurmctld has finished
# cancelling it (seen with a job on 2 nodes, which stays COMPLETING until both are done): so
# scancel again until squeue no longer lists the job.
cancel_job() {  # job seconds
  local deadline=$((SECONDS + $2))
  while [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null || true)" ]; do
    [ $SECONDS -lt $deadline ] || fail "job $1 still listed $2 s after the first scancel"
    scancel "$1" 2>/dev/null || true
    sleep 1
  done
  job_field "$1" JobState
}

progress_step() {  # run_dir
  local step
  step=$(sed -n 's/^step=\([0-9]*\).*/\1/p' "$1/progress/rank_0.txt" 2>/dev/null || true)
  echo "${step:-0}"
}

# Sets ref_dir to the folder of the uninterrupted twin run.
reference_run() {  # bin config [flags...]
  if [ -n "${REFERENCE:-}" ]; then
    [ -s "$REFERENCE/checkpoints/latest" ] || fail "REFERENCE=$REFERENCE holds no finished run"
    ref_dir=$REFERENCE
    return 0
  fi
  ref_dir=$scratch/ref
  "$REPO_DIR/tests/launcher/reference_run.sh" "$ref_dir" "$@" || fail "the reference run failed"
}

compare_final() {  # reference_dir run_dir
  local ref_latest run_latest
  ref_latest=$(cat "$1/checkpoints/latest")
  run_latest=$(cat "$2/checkpoints/latest" 2>/dev/null || echo none)
  [ "$ref_latest" = "$run_latest" ] || fail "final checkpoints differ: $ref_latest vs $run_latest"
  "$REPO_DIR/tests/launcher/compare_checkpoints.sh" "$1/checkpoints/$ref_latest" "$2/checkpoints/$run_latest" ||
    fail "final weights differ from the uninterrupted run"
}

# The arguments every end-to-end script takes: MODE SCRATCH_DIR TRAINER_BIN CONFIG [FLAGS...].
# parse_e2e_args USAGE "mode1|mode2" "$@" sets mode, bin, config, ranks (RANKS, default 2),
# save_every (SAVE_EVERY, default 5) and the array flags, and prepares the scratch folder.
parse_e2e_args() {
  local usage=$1 modes=$2
  shift 2
  mode=${1:?$usage}
  [[ "$mode" =~ ^($modes)$ ]] || { echo "$usage" >&2; exit 2; }
  setup_scratch "${2:?$usage}"
  bin=$(realpath "${3:?$usage}")
  config=$(realpath "${4:?$usage}")
  flags=("${@:5}")
  ranks=${RANKS:-2}
  save_every=${SAVE_EVERY:-5}
}
