#!/usr/bin/env python3
"""Host faults under the launcher (launch/shardlm-launch) across 2 test hosts: a tp2 x dp2
`shardlm train` (TP inside a host, DP across), saving every 2 steps into the shared run folder,
loses host 1 at step 5; the launcher ends the attempt, names the ranks of the lost host, and
once the host is back its restart resumes from the newest checkpoint, with final weights equal
to an uninterrupted run's bit for bit.

    test_faults.py CASE BUILD_DIR SCRATCH_DIR

partition     host 1's link goes down (its processes run on, blocked): no rank advances, the
              hang detector ends the attempt; the link comes back before the restart
host-failure  every process of host 1 is killed and its link goes down (a node that died and no
              longer answers): mpirun fails; the host comes back before the restart
host-processes-killed
              every process of host 1 is killed, its link stays up (the host answers the probe):
              mpirun fails, the launcher names host 1's ranks from mpirun's report as ranks that
              died on a host that answers, not as a lost host
"""
import os
import shlex
import signal
import subprocess
import sys
import time

import cluster
from support import REPO, TRAIN, assert_same_final_checkpoint, main, must, progress_step, wait_until

LAUNCHER = os.path.join(REPO, "launch", "shardlm-launch")
SLOTS = 2  # ranks per host: 0, 1 on host 0 and 2, 3 on host 1
# Longer than any step or checkpoint save on a loaded 2-core machine (a few seconds), short
# enough that the partition's hang is over in well under a minute.
HANG_TIMEOUT_S = 30


def launcher_command(c, shardlm, run_dir):
    """shardlm-launch on host 0 with the cluster's mpirun flags; quick restarts and probes."""
    return c.command(c.hosts[0], [
        sys.executable, LAUNCHER, "--np", str(SLOTS * len(c.hosts)), "--shardlm", shardlm,
        "--mpirun-args", shlex.join(c.mpirun_flags(SLOTS)), "--hang-timeout", str(HANG_TIMEOUT_S),
        "--hang-grace", "300", "--backoff", "2", "--poll-interval", "0.5",
        "--host-probe-timeout", "3", "--max-restarts", "3", "--"] + TRAIN[1:] + ["--out", run_dir])


def launcher_log(run_dir):
    try:
        with open(os.path.join(run_dir, "launcher.log")) as f:
            return f.read()
    except OSError:
        return ""


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_host_processes(host):
    """Every process of the host's namespace killed at once: what a node failure leaves. They
    are stopped first, so that none sees another die: killed one by one, Open MPI's daemon there
    could report a rank's exit before its own kill, and the host would look alive."""
    pids = [int(p) for p in cluster.sh("ip", "netns", "pids", host).split()]
    signal_all(pids, signal.SIGSTOP)
    signal_all(pids, signal.SIGKILL)


LOST = "lost host(s)"
DIED = "host(s) that answer but whose ranks died"


def run_with_fault(build, scratch, fault, label=LOST):
    """The fault at step 5; the launcher must name host 1's ranks under `label` (and not under
    the other one), and the resumed run end bit-identical to the uninterrupted one."""
    shardlm = os.path.join(build, "shardlm")
    ref, run = os.path.join(scratch, "ref"), os.path.join(scratch, "run")
    with cluster.Cluster(2) as c:
        must(c.mpirun([shardlm] + TRAIN + ["--out", ref], slots=SLOTS), "uninterrupted run")
        lost = c.hosts[1]
        job = subprocess.Popen(launcher_command(c, shardlm, run), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            wait_until("step 5", lambda: progress_step(run) >= 5 or job.poll() is not None, 300)
            assert job.poll() is None, "the run ended before the fault"
            t0 = time.time()
            fault(c, lost)
            named = f"{label}: {lost} (ranks 2, 3;"
            wait_until("the launcher names the lost host's ranks",
                       lambda: named in launcher_log(run) or job.poll() is not None, 240)
            detected_s = time.time() - t0
            c.link(lost, "up")  # the host is back (link restored, node rebooted)
            out, _ = job.communicate(timeout=600)
        finally:
            if job.poll() is None:
                job.kill()
        log = launcher_log(run)
        assert job.returncode == 0, f"launcher exit {job.returncode}\n{log}\n{out[-3000:]}"
        assert named in log, f"{log}\n{out[-3000:]}"
        other = DIED if label == LOST else LOST
        assert f"{other}: " not in log, log
        resumed = [line for line in log.splitlines() if "attempt 2 of" in line]
        assert resumed and "resuming from checkpoints/step_" in resumed[0], log
        print(f"fault at step 5, named after {detected_s:.0f} s:")
        print("\n".join(line for line in log.splitlines() if label in line or "hang:" in line
                        or "attempt 2 of" in line))
    assert_same_final_checkpoint(ref, run)


def partition(c, host):
    c.link(host, "down")


def host_failure(c, host):
    c.link(host, "down")  # first, so that nothing of the host answers any more
    kill_host_processes(host)


def case_host_processes_killed(build, scratch):
    run_with_fault(build, scratch, lambda c, host: kill_host_processes(host), DIED)


def case_partition(build, scratch):
    run_with_fault(build, scratch, partition)


def case_host_failure(build, scratch):
    run_with_fault(build, scratch, host_failure)


if __name__ == "__main__":
    main({"partition": case_partition, "host-failure": case_host_failure,
          "host-processes-killed": case_host_processes_killed})
