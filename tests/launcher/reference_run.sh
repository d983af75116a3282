#!/usr/bin/env bash
# The uninterrupted twin of a fault-injection run: `shardlm train` under plain mpirun with the
# flags every end-to-end test uses (--resume auto --save-every $SAVE_EVERY), into a fresh RUN_DIR.
# A recovered run must end with final weights bit-identical to it (compare_checkpoints.sh).
#   reference_run.sh RUN_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]
# Environment: RANKS (default 2), SAVE_EVERY (default 5), MPIRUN_ARGS (extra mpirun flags),
# UNTIL (a checkpoint name, step_<8 digits>: stop the run once it has committed that one; for
# twins of runs too long to finish, which are compared at a checkpoint both committed).
# The trainer's output goes to RUN_DIR.log. CTest runs it once per config as a fixture
# (tests/extra.cmake); the test scripts run it themselves when no REFERENCE is given.
set -euo pipefail
usage="usage: reference_run.sh RUN_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]"
run_dir=${1:?$usage}
bin=${2:?$usage}
config=${3:?$usage}
shift 3
flags=(--oversubscribe)
[ "$(id -u)" -ne 0 ] || flags+=(--allow-run-as-root)
read -r -a extra <<<"${MPIRUN_ARGS:-}"
rm -rf "$run_dir"
mkdir -p "$(dirname "$run_dir")"
echo "reference run: ${RANKS:-2} ranks into $run_dir"
cmd=(mpirun "${flags[@]}" "${extra[@]}" -np "${RANKS:-2}" "$bin" train --config "$config" "$@" --out "$run_dir"
  --resume auto --save-every "${SAVE_EVERY:-5}")
if [ -n "${UNTIL:-}" ]; then
  # setsid: mpirun and its ranks in a session of their own, killed together once UNTIL is there.
  setsid "${cmd[@]}" >"$run_dir.log" 2>&1 &
  pid=$!
  while [ ! -d "$run_dir/checkpoints/$UNTIL" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -d "$run_dir/checkpoints/$UNTIL" ] || { tail -n 30 "$run_dir.log" >&2; echo "FAIL: the reference run ended before $UNTIL" >&2; exit 1; }
  echo "reference run stopped after committing $UNTIL"
  exit 0
fi
if ! "${cmd[@]}" >"$run_dir.log" 2>&1; then
  tail -n 30 "$run_dir.log" >&2
  echo "FAIL: the reference run failed (log: $run_dir.log)" >&2
  exit 1
fi
[ -s "$run_dir/checkpoints/latest" ] || { echo "FAIL: the reference run left no checkpoints/latest" >&2; exit 1; }
echo "reference run done: $(cat "$run_dir/checkpoints/latest")"
