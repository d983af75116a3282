# shellcheck shell=bash
# The body shared by slurm/shardlm-cpu.sbatch and slurm/shardlm-gpu.sbatch; sourced by them,
# not run on its own. The templates set the #SBATCH resources and the defaults that differ
# (LAUNCHER); everything about running, signalling and requeueing the job step lives here.
#
# What it does, once per start of the job (the first start and every requeue):
#   1. builds `$SHARDLM_BIN train [--config $CONFIG] $TRAIN_ARGS --device $DEVICE --out $RUN_DIR
#      --resume auto --save-every $SAVE_EVERY [--exit-after-minutes $EXIT_AFTER_MINUTES]` and
#      runs it as one
#      job step with `srun --mpi=pmix`, `mpirun` or launch/shardlm-launch (LAUNCHER), in the
#      BACKGROUND, then waits:
#      bash runs a trap only between commands, so a foreground step would delay the signal;
#   2. on SIGUSR1 (the --signal=B:USR1@<sec> pre-timeout warning, or `scancel --batch
#      --signal=USR1`) and SIGTERM (preemption, `scontrol requeue`, scancel) sends SIGUSR1 to the
#      step: the trainer treats both alike (save a checkpoint, exit 75), and SIGUSR1 is what
#      both srun and mpirun pass on to every rank (mpirun answers SIGTERM by killing the ranks);
#   3. exit 0 from the step: done. Exit 75: `scontrol requeue $SLURM_JOB_ID` while
#      SLURM_RESTART_COUNT < MAX_RESTARTS (the requeued job resumes from the newest checkpoint),
#      else stop with 75. Anything else: the job fails with that code. For restarts after a
#      crash or a hang inside the allocation, LAUNCHER=shardlm-launch runs the step through
#      launch/shardlm-launch (docs/launcher.md), which passes 75 back to this script.
# Events are logged with a timestamp to the job's output and appended to $RUN_DIR/slurm_job.log.

: "${SLURM_JOB_ID:?shardlm-job.sh runs inside a SLURM batch job}"
: "${RUN_DIR:=${SLURM_SUBMIT_DIR:-$PWD}/runs/${SLURM_JOB_NAME:-shardlm}}"
: "${SHARDLM_BIN:=shardlm}"
: "${CONFIG:=}"
: "${TRAIN_ARGS:=}"
: "${DEVICE:=cpu}"
: "${SAVE_EVERY:=100}"
: "${EXIT_AFTER_MINUTES:=}"
: "${MAX_RESTARTS:=10}"
: "${LAUNCHER:=srun}"
: "${MPIRUN_ARGS:=}"
: "${SRUN_ARGS:=}"
: "${SHARDLM_LAUNCH:=${SHARDLM_SLURM_DIR:-.}/../launch/shardlm-launch}"
: "${LAUNCH_ARGS:=}"
readonly SHARDLM_EXIT_REQUEUE=75

restart_count=${SLURM_RESTART_COUNT:-0}
mkdir -p "$RUN_DIR"

job_log() {
  local line
  line="$(date '+%Y-%m-%d %H:%M:%S') [shardlm-job $SLURM_JOB_ID restart $restart_count] $*"
  echo "$line"
  echo "$line" >>"$RUN_DIR/slurm_job.log"
}

train_cmd=("$SHARDLM_BIN" train)
[ -z "$CONFIG" ] || train_cmd+=(--config "$CONFIG")
read -r -a train_extra <<<"$TRAIN_ARGS"
train_cmd+=("${train_extra[@]}" --device "$DEVICE" --out "$RUN_DIR" --resume auto
  --save-every "$SAVE_EVERY")
[ -z "$EXIT_AFTER_MINUTES" ] || train_cmd+=(--exit-after-minutes "$EXIT_AFTER_MINUTES")

ntasks=${SLURM_NTASKS:-1}
case "$LAUNCHER" in
  srun)
    read -r -a launcher_extra <<<"$SRUN_ARGS"
    # --kill-on-bad-exit: one dead rank ends the step instead of leaving the others blocked.
    step_cmd=(srun --mpi=pmix --ntasks="$ntasks" --kill-on-bad-exit=1 "${launcher_extra[@]}")
    ;;
  mpirun)
    read -r -a launcher_extra <<<"$MPIRUN_ARGS"
    step_cmd=(mpirun -np "$ntasks")
    [ "$(id -u)" -ne 0 ] || step_cmd+=(--allow-run-as-root)
    step_cmd+=("${launcher_extra[@]}")
    ;;
  shardlm-launch)
    # The launcher picks srun inside the allocation and adds --resume auto itself.
    read -r -a launcher_extra <<<"$LAUNCH_ARGS"
    step_cmd=("$SHARDLM_LAUNCH" --np "$ntasks" --shardlm "$SHARDLM_BIN" "${launcher_extra[@]}" --)
    train_cmd=("${train_cmd[@]:2}")
    ;;
  *)
    job_log "LAUNCHER must be srun, mpirun or shardlm-launch, got '$LAUNCHER'"
    exit 2
    ;;
esac
step_cmd+=("${train_cmd[@]}")

step_pid=""
stop_signal=""
stop_pending=""  # a stop that came before every rank could take it (see step_ready)
step_started=$RUN_DIR/progress/.step_started
# True once every rank of this start wrote its first heartbeat (progress/rank_<r>.txt newer than
# the step's start): from then on each rank has its stop handlers, and a SIGUSR1 to the step
# reaches them. Before that, mpirun or srun may drop it, or a rank not yet past exec die of it.
step_ready() {
  [ -n "$step_pid" ] || return 1
  local r
  for ((r = 0; r < ntasks; r++)); do
    [ "$RUN_DIR/progress/rank_$r.txt" -nt "$step_started" ] || return 1
  done
}
# shellcheck disable=SC2317  # called from the traps below
forward_stop() {  # signal name
  stop_signal=$1
  if step_ready && kill -0 "$step_pid" 2>/dev/null; then
    job_log "got SIG$1: asking the job step to save and stop (SIGUSR1 to pid $step_pid)"
    kill -USR1 "$step_pid" 2>/dev/null || true
    stop_pending=""
  elif [ -z "$step_pid" ]; then
    job_log "got SIG$1 before the job step started: not starting it"
  else
    job_log "got SIG$1 while the job step starts: passing it on once every rank runs"
    stop_pending=$1
  fi
}
trap 'forward_stop USR1' USR1
trap 'forward_stop TERM' TERM
# A signal that came while the template ran (it traps them from its first line) counts too.
[ -z "${SHARDLM_EARLY_STOP:-}" ] || forward_stop "$SHARDLM_EARLY_STOP"
if [ -n "$stop_signal" ]; then
  job_log "stopped on request before the job step started (exit 75, nothing new to save)"
  if [ "$restart_count" -lt "$MAX_RESTARTS" ] && scontrol requeue "$SLURM_JOB_ID"; then exit 0; fi
  exit "$SHARDLM_EXIT_REQUEUE"
fi

job_log "start on ${SLURM_JOB_NODELIST:-?} ($ntasks tasks): ${step_cmd[*]}"
if [ -s "$RUN_DIR/checkpoints/latest" ]; then
  job_log "resuming from $(cat "$RUN_DIR/checkpoints/latest")"
fi
mkdir -p "$RUN_DIR/progress"
touch "$step_started"
"${step_cmd[@]}" &
step_pid=$!
# `wait` returns early (status > 128) whenever a trapped signal arrives; wait again until the
# step itself has ended, then collect its real status. While a stop is pending, poll for the
# ranks' first heartbeats instead (a short sleep delays a trap by at most 0.2 s).
while kill -0 "$step_pid" 2>/dev/null; do
  if [ -n "$stop_pending" ]; then
    if step_ready; then
      forward_stop "$stop_pending"
    else
      sleep 0.2
    fi
  else
    wait "$step_pid"
  fi
done
wait "$step_pid"
rc=$?

case $rc in
  0)
    job_log "job step finished (exit 0)"
    exit 0
    ;;
  "$SHARDLM_EXIT_REQUEUE")
    if [ "$restart_count" -ge "$MAX_RESTARTS" ]; then
      job_log "job step saved and asked to resume (exit 75), but the restart cap is reached" \
        "($restart_count >= MAX_RESTARTS=$MAX_RESTARTS); not requeueing"
      exit "$SHARDLM_EXIT_REQUEUE"
    fi
    job_log "job step saved a checkpoint (exit 75${stop_signal:+ after SIG$stop_signal}); requeueing" \
      "(restart $((restart_count + 1)) of at most $MAX_RESTARTS)"
    if scontrol requeue "$SLURM_JOB_ID"; then
      exit 0
    fi
    job_log "scontrol requeue failed (job cancelled, or already being requeued by SLURM)"
    exit "$SHARDLM_EXIT_REQUEUE"
    ;;
  *)
    job_log "job step failed (exit $rc)${stop_signal:+ after SIG$stop_signal}"
    exit "$rc"
    ;;
esac
