#!/usr/bin/env bash
# A private SLURM cluster for the tests: munged, slurmctld and slurmd on localhost, or across the
# test hosts of tests/multinode/cluster.py (SLURM_TEST_HOSTS: one slurmd per host).
# <scratch_dir> is the cluster's handle; its files (config, state, spool, logs, pid files, munge
# socket) live in a private folder under /run that <scratch_dir>/cluster.dir names, with
# <scratch_dir>/slurm.conf and <scratch_dir>/log linked to it. Why not in <scratch_dir> itself:
# munged runs as user munge, which cannot reach a checkout under a 0700 folder (mktemp -d,
# /root), and slurm.conf paths must not contain spaces; /run/shardlm-slurm.XXXXXX has neither
# problem whatever the checkout's path.
#
#   slurm_cluster.sh start  <scratch_dir>   generate slurm.conf, start the daemons, wait for the
#                                           node to be idle (no-op when already running)
#   slurm_cluster.sh stop   <scratch_dir>   cancel jobs, shut the daemons down, kill leftovers by
#                                           pid, fail if anything is still running (safe to repeat)
#   slurm_cluster.sh status [<scratch_dir>] print daemon and node state; exit 0 only when every
#                                           daemon runs (default: the folder of $SLURM_CONF)
#   slurm_cluster.sh env    <scratch_dir>   print `export SLURM_CONF=...` for the clients
#
# Clients (sbatch, squeue, scontrol, srun) find the cluster through SLURM_CONF (the real
# slurm.conf under /run, as `env` prints it).
# Needs root (slurmd runs jobs as their submitter) and the packages of scripts/install-slurm.sh.
# Exit code 77 means "cannot run here" (not root, SLURM not installed): CTest reports a skip.
#
# Environment: SLURM_TEST_CPUS (CPUs each node claims, default 4), SLURM_TEST_CTLD_PORT /
# SLURM_TEST_SLURMD_PORT (default 6817 / 6818), SLURM_TEST_START_TIMEOUT (seconds, default 60),
# SLURM_TEST_HOSTS (network namespaces made by tests/multinode/cluster.py, e.g. "shlmn12h0
# shlmn12h1"; default none = the single node localhost): one node per host, named after it, at
# its eth0 address; slurmctld runs in the first host, each slurmd in its own host (its network,
# its hostname). The clients must then run inside a host too (the first is the login node:
# nothing outside the namespaces reaches their addresses); this script runs its own clients
# there. munged is shared: its socket is a file, which every namespace sees.
#
# What this is built on (see docs/slurm.md): no systemd here, so the daemons are started by hand;
# munged gets a private socket (AuthInfo=socket=...) so a system munged is never touched; the
# host name is not "localhost", so slurmd is told its node name with -N; cgroups are not
# available, so proctrack/linuxproc and task/none.
set -euo pipefail

readonly SKIP=77
die() { echo "slurm_cluster: $*" >&2; exit 1; }
log() { echo "slurm_cluster: $*" >&2; }

usage() {
  awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

# Every daemon we start carries this variable (=$R); stop finds leftovers (slurmstepd and the job
# processes it spawned) by it and by SLURM_CONF=<our conf> + SLURM_JOB_ID in their environment.
marker_var=SHARDLM_SLURM_CLUSTER

# The cluster's private folder (R) for the handle S: made by new_cluster_dir at start, found
# through S/cluster.dir afterwards.
readonly CLUSTER_DIR_PARENT=${SLURM_TEST_RUN_DIR:-/run}

set_paths() {
  local dir=$1
  S=$(cd "$dir" && pwd -P)
  R=""
  [ ! -s "$S/cluster.dir" ] || R=$(cat "$S/cluster.dir")
  CONF=$R/slurm.conf
  MUNGE_DIR=$R/munge
  MUNGE_SOCKET=$MUNGE_DIR/munge.socket
  MUNGE_PID=$MUNGE_DIR/munged.pid
  CTLD_PID=$R/run/slurmctld.pid
}

# The cluster's nodes: the test hosts, or localhost.
read -r -a NODES <<<"${SLURM_TEST_HOSTS:-localhost}"
multi_host() { [ -n "${SLURM_TEST_HOSTS:-}" ]; }

# slurm.conf names each slurmd's pid file after its node (SlurmdPidFile=...%n).
slurmd_pid_file() { echo "$R/run/slurmd-$1.pid"; }

node_addr() {  # node
  if ! multi_host; then echo 127.0.0.1; return; fi
  ip -n "$1" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}'
}

# Runs a command on a node: inside the test host's network namespace with its hostname (as
# tests/multinode/cluster.py's Cluster.command does), or here on localhost.
on_node() {  # node command...
  local node=$1
  shift
  if multi_host; then
    ip netns exec "$node" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$node" "$@"
  else
    "$@"
  fi
}

# A SLURM client (squeue, scontrol, ...) on the first node, where slurmctld's address is reachable.
client() { on_node "${NODES[0]}" env SLURM_CONF="$CONF" "$@"; }

# A fresh private folder, root's and world-readable (munged insists that clients can reach its
# socket, and user munge must traverse it), linked from S for the tests' log dumps.
new_cluster_dir() {
  mkdir -p "$CLUSTER_DIR_PARENT"
  R=$(mktemp -d "$CLUSTER_DIR_PARENT/shardlm-slurm.XXXXXX") || die "cannot make a folder in $CLUSTER_DIR_PARENT"
  chmod 0755 "$R"
  printf '%s\n' "$R" >"$S/cluster.dir"
  printf '%s\n' "$R" >"$R/cluster.dir"  # so that `status` finds it from $SLURM_CONF's folder
  set_paths "$S"
  mkdir -p "$R/state" "$R/spool" "$R/log" "$R/run"
  ln -sfn "$R/log" "$S/log"
  ln -sfn "$R/slurm.conf" "$S/slurm.conf"
}

# Undoes new_cluster_dir once nothing runs there any more.
remove_cluster_dir() {
  ! mountpoint -q "$R/cgroup" 2>/dev/null || umount "$R/cgroup" || true
  case "$R" in "$CLUSTER_DIR_PARENT"/shardlm-slurm.*) rm -rf "$R" ;; esac
  rm -f "$S/cluster.dir" "$S/log" "$S/slurm.conf"
}

check_can_run() {
  if [ "$(id -u)" -ne 0 ]; then
    log "needs root (slurmd runs jobs as their submitting user); skipping"
    exit $SKIP
  fi
  local b
  for b in munged munge slurmctld slurmd sbatch scontrol sinfo; do
    if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
      log "$b not found (run scripts/install-slurm.sh); skipping"
      exit $SKIP
    fi
  done
  [ -r /etc/munge/munge.key ] || { log "/etc/munge/munge.key missing (reinstall munge); skipping"; exit $SKIP; }
  if multi_host; then
    local n
    for n in "${NODES[@]}"; do
      [ -n "$(node_addr "$n" 2>/dev/null)" ] || die "SLURM_TEST_HOSTS: $n is no test host with an eth0 address"
    done
  fi
}

pid_alive() {  # pid_file
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

write_conf() {
  local cpus=${SLURM_TEST_CPUS:-4}
  cat >"$CONF" <<EOF
# Generated by tests/slurm/slurm_cluster.sh for a private test cluster.
ClusterName=shardlmtest
SlurmctldHost=${NODES[0]}($(node_addr "${NODES[0]}"))
SlurmctldPort=${SLURM_TEST_CTLD_PORT:-6817}
SlurmdPort=${SLURM_TEST_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=5 is the smallest accepted value; it bounds how fast a requeued job runs again.
AuthInfo=cred_expire=5,socket=$MUNGE_SOCKET
StateSaveLocation=$R/state
# %n: the node's name; several slurmd share this folder (one per test host).
SlurmdSpoolDir=$R/spool/%n
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$R/run/slurmd-%n.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd-%n.log
# Per node, like a node's local /tmp: test hosts share one file system, and the PMIx plugins of
# one job step's slurmstepd would otherwise both create TmpFS/spmix_appdir_<uid>_<job>.<step>
# (the second fails: "File exists").
TmpFS=$R/tmp/%n
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2,sched_min_interval=100000
ReturnToService=2
JobRequeue=1
JobFileAppend=1
KillWait=5
MinJobAge=600
InactiveLimit=0
# Lets the node claim more CPUs than the machine has, so 4-rank jobs run on 2 cores.
SlurmdParameters=config_overrides
EOF
  local n
  for n in "${NODES[@]}"; do
    echo "NodeName=$n NodeAddr=$(node_addr "$n") CPUs=$cpus RealMemory=4096 State=UNKNOWN" >>"$CONF"
  done
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$CONF"
}

# slurmd 22.05 always starts its cgroup plugin, which looks for a cgroup or tmpfs file system at
# /sys/fs/cgroup; inside a test host there is none (`ip netns exec` mounts a fresh /sys for the
# namespace). Nothing here uses cgroups (proctrack/linuxproc, task/none), so the plugin is
# pointed at an empty tmpfs of the cluster's own, made before the slurmd start and seen by them.
write_cgroup_conf() {
  mkdir -p "$R/cgroup"
  mount -t tmpfs -o size=1m shardlm-slurm-cgroup "$R/cgroup"
  printf 'CgroupPlugin=cgroup/v1\nCgroupAutomount=no\nCgroupMountpoint=%s\n' "$R/cgroup" >"$R/cgroup.conf"
}

start_munged() {
  if pid_alive "$MUNGE_PID"; then return; fi
  mkdir -p "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"  # munged insists that clients can reach its socket
  rm -f "$MUNGE_SOCKET" "$MUNGE_PID"
  env "$marker_var=$R" runuser -u munge -- /usr/sbin/munged \
    --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_PID" --log-file="$MUNGE_DIR/munged.log" \
    --seed-file="$MUNGE_DIR/munged.seed" --key-file=/etc/munge/munge.key
  local _
  for _ in $(seq 1 100); do
    if munge --socket="$MUNGE_SOCKET" -n 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1; then
      return
    fi
    sleep 0.1
  done
  die "munged did not answer on $MUNGE_SOCKET (log: $MUNGE_DIR/munged.log)"
}

# The nodes' states, each once, comma-separated ("idle"; "allocated,idle"; "nodes missing").
node_state() {
  local states
  states=$(client sinfo -h -N -o '%N %T' 2>/dev/null | sort -u) || return 1
  [ "$(grep -c . <<<"$states")" -ge ${#NODES[@]} ] || { echo "nodes missing"; return; }
  awk '{print $2}' <<<"$states" | sort -u | paste -sd,
}

# Every node is up: idle, mixed or allocated (not down, unknown, or marked * = not responding).
nodes_ready() {  # node_state
  local st
  [ -n "$1" ] || return 1
  for st in ${1//,/ }; do
    case "$st" in idle | mixed | allocated) ;; *) return 1 ;; esac
  done
}

slurmds_alive() {
  local n
  for n in "${NODES[@]}"; do pid_alive "$(slurmd_pid_file "$n")" || return 1; done
}

# A daemon is dead once its pid file names a process that is gone, or when it wrote no pid file
# within 10 s (the daemons write it a moment after they have put themselves in the background).
daemon_died() {  # pid_file started_at
  if [ -s "$1" ]; then
    pid_alive "$1" && return 1
    return 0
  fi
  [ $((SECONDS - $2)) -ge 10 ]
}

wait_idle() {
  local started=$SECONDS deadline=$((SECONDS + ${SLURM_TEST_START_TIMEOUT:-60})) state="" n
  while [ $SECONDS -lt $deadline ]; do
    state=$(node_state || true)
    ! nodes_ready "$state" || return 0
    daemon_died "$CTLD_PID" "$started" && break
    for n in "${NODES[@]}"; do daemon_died "$(slurmd_pid_file "$n")" "$started" && break 2; done
    sleep 0.2
  done
  log "nodes not idle (state '${state:-none}'); log tails:"
  tail -n 15 "$R/log/slurmctld.log" "$R/log"/slurmd-*.log >&2 2>/dev/null || true
  return 1
}

cmd_start() {
  check_can_run
  mkdir -p "$1"
  set_paths "$1"
  if [ -n "$R" ] && pid_alive "$MUNGE_PID" && pid_alive "$CTLD_PID" && slurmds_alive; then
    log "already running in $S"
    wait_idle || die "running but not healthy; stop it first"
    return
  fi
  # Half-started from an earlier run: clear it out, then start afresh.
  cmd_stop "$S" >/dev/null 2>&1 || true
  new_cluster_dir
  local port n
  for port in "${SLURM_TEST_CTLD_PORT:-6817}" "${SLURM_TEST_SLURMD_PORT:-6818}"; do
    if [ -n "$(on_node "${NODES[0]}" ss -ltnH "sport = :$port" 2>/dev/null)" ]; then
      die "port $port is already in use (another SLURM?); set SLURM_TEST_CTLD_PORT/SLURM_TEST_SLURMD_PORT"
    fi
  done
  write_conf
  ! multi_host || write_cgroup_conf
  start_munged
  # -c: discard jobs saved by an earlier cluster in this folder.
  on_node "${NODES[0]}" env "$marker_var=$R" SLURM_CONF="$CONF" /usr/sbin/slurmctld -c -f "$CONF"
  for n in "${NODES[@]}"; do
    mkdir -p "$R/spool/$n" "$R/tmp/$n"
    on_node "$n" env "$marker_var=$R" SLURM_CONF="$CONF" /usr/sbin/slurmd -N "$n" -f "$CONF"
  done
  if ! wait_idle; then
    cmd_stop "$S" || true
    die "cluster did not come up"
  fi
  log "up in $S (export SLURM_CONF=$CONF)"
}

# Pids of processes that belong to the cluster in $S, never this script or its ancestors:
# daemons we started carry $marker_var; slurmd and every slurmstepd work in $R/log (slurmd
# scrubs the environment, so the marker does not reach slurmstepd); job processes carry
# SLURM_CONF=$CONF and a SLURM_JOB_ID.
cluster_pids() {
  local self_chain=" " p=$$ pid cwd
  while [ -n "$p" ] && [ "$p" != 0 ]; do
    self_chain+="$p "
    p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || true)
  done
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    case "$self_chain" in *" $pid "*) continue ;; esac
    [ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
    cwd=$(readlink "$p/cwd" 2>/dev/null || true)
    case "$cwd" in "$R/log" | "$R/log/"* | "$R/spool" | "$R/spool/"*) echo "$pid"; continue ;; esac
    { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | awk -v m="$marker_var=$R" -v c="SLURM_CONF=$CONF" '
      $0 == m { hit = 1 } $0 == c { conf = 1 } /^SLURM_JOB_ID=/ { job = 1 }
      END { exit !(hit || (conf && job)) }' && echo "$pid"
  done
  return 0
}

wait_gone() {  # seconds pid...
  local secs=$1 p alive
  shift
  local deadline=$((SECONDS + secs))
  while :; do
    alive=()
    for p in "$@"; do
      kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive+=("$p")
    done
    [ ${#alive[@]} -eq 0 ] && return 0
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

cmd_stop() {
  [ -s "$1/cluster.dir" ] || { log "nothing to stop in $1"; return 0; }
  set_paths "$1"
  if pid_alive "$CTLD_PID"; then
    # Jobs first: `scontrol shutdown` would leave the slurmstepd of running jobs alive.
    local jobs
    jobs=$(client squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      client scancel $jobs 2>/dev/null || true
      # squeue lists pending, running and completing jobs by default: wait until none is left.
      local deadline=$((SECONDS + 20))
      while [ $SECONDS -lt $deadline ] && [ -n "$(client squeue -h -o %i 2>/dev/null || true)" ]; do
        sleep 0.5
      done
    fi
    client scontrol shutdown >/dev/null 2>&1 || true
  fi
  # Each pid file is read once: the daemons remove theirs as they shut down.
  local daemon_pids=() f pid
  for f in "$CTLD_PID" "$R"/run/slurmd-*.pid; do
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && daemon_pids+=("$pid")
  done
  [ ${#daemon_pids[@]} -eq 0 ] || wait_gone 15 "${daemon_pids[@]}" || true
  local mp
  mp=$(cat "$MUNGE_PID" 2>/dev/null || true)
  if [ -n "$mp" ] && kill -0 "$mp" 2>/dev/null; then
    kill -TERM "$mp" 2>/dev/null || true
    wait_gone 10 "$mp" || true
  fi
  # Whatever is still there (a daemon that ignored shutdown, an orphaned step or job process).
  local left
  mapfile -t left < <(cluster_pids)
  if [ ${#left[@]} -gt 0 ]; then
    log "killing leftovers: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
    wait_gone 10 "${left[@]}" || true
  fi
  mapfile -t left < <(cluster_pids)
  if [ ${#left[@]} -gt 0 ]; then
    local p
    for p in "${left[@]}"; do
      log "still running: pid $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
    done
    die "could not stop everything in $S"
  fi
  remove_cluster_dir
  log "stopped $S"
}

cmd_status() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    [ -n "${SLURM_CONF:-}" ] || die "status: give the scratch folder or set SLURM_CONF"
    dir=$(dirname "$SLURM_CONF")
  fi
  [ -s "$dir/cluster.dir" ] || { echo "no cluster in $dir"; return 1; }
  set_paths "$dir"
  local ok=0 name f
  for name in munged slurmctld "${NODES[@]/#/slurmd@}"; do
    case $name in munged) f=$MUNGE_PID ;; slurmctld) f=$CTLD_PID ;; *) f=$(slurmd_pid_file "${name#slurmd@}") ;; esac
    if pid_alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: not running"; ok=1; fi
  done
  if [ $ok -eq 0 ]; then
    echo "nodes: $(node_state || echo unknown)"
    client squeue -o '%.8i %.10j %.10T %.6D %.4C %R' 2>/dev/null || true
  fi
  local stray
  stray=$(cluster_pids | tr '\n' ' ')
  [ -z "$stray" ] || echo "processes of this cluster: $stray"
  return $ok
}

[ $# -ge 1 ] || usage
case "$1" in
  start) [ $# -eq 2 ] || usage; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || usage; check_can_run; cmd_stop "$2" ;;
  status) [ $# -le 2 ] || usage; cmd_status "${2:-}" ;;
  env) [ $# -eq 2 ] || usage; set_paths "$2"; [ -n "$R" ] || die "no cluster in $2"; printf 'export SLURM_CONF=%q\n' "$CONF" ;;
  *) usage ;;
esac
