"""What the multinode test scripts share: failing with the job's output, the small training run
they all use, reading a run's progress and comparing final checkpoints.

Every test script is run as `SCRIPT CASE BUILD_DIR SCRATCH_DIR` (tests.cmake) through main().
"""
import os
import shutil
import subprocess
import sys
import time

import cluster

REPO = os.path.dirname(os.path.dirname(cluster.HERE))
COMPARE_CHECKPOINTS = os.path.join(REPO, "tests", "launcher", "compare_checkpoints.sh")

# A small run, 4 ranks = tp2 x dp2 (two per host) with "--tp 2", else dp over the ranks.
TRAIN = ["train", "--model", "tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "4",
         "--vocab-size", "512", "--max-seq-len", "32", "--seq-len", "32", "--micro-batch", "2",
         "--global-batch", "4", "--lr", "1e-3", "--warmup", "2", "--log-every", "1", "--steps",
         "10", "--save-every", "2", "--tp", "2"]


def must(p, what):
    assert p.returncode == 0, f"{what}: exit {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n--- stderr\n{p.stderr[-4000:]}"
    return p


def tx_bytes(c, host):
    """Bytes host's eth0 has sent (its namespace's own /sys)."""
    return int(must(c.run(host, ["cat", "/sys/class/net/eth0/statistics/tx_bytes"]), "tx").stdout)


def progress_step(run_dir, rank=0):
    """The step `rank` last reported (0 before the first)."""
    try:
        with open(os.path.join(run_dir, "progress", f"rank_{rank}.txt")) as f:
            return int(f.read().split()[0].split("=")[1])
    except (OSError, IndexError, ValueError):
        return 0


def wait_until(what, condition, timeout, poll=0.2):
    """Polls `condition` until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"not within {timeout} s: {what}"
        time.sleep(poll)


def latest_checkpoint(run_dir):
    with open(os.path.join(run_dir, "checkpoints", "latest")) as f:
        return f.read().strip()


def assert_same_final_checkpoint(ref_dir, run_dir):
    """The runs ended in the same checkpoint, bit for bit (tests/launcher/compare_checkpoints.sh)."""
    want, got = latest_checkpoint(ref_dir), latest_checkpoint(run_dir)
    assert want == got, f"final checkpoints differ: {want} vs {got}"
    p = subprocess.run([COMPARE_CHECKPOINTS, os.path.join(ref_dir, "checkpoints", want),
                        os.path.join(run_dir, "checkpoints", got)], capture_output=True, text=True)
    must(p, f"compare {want} with the uninterrupted run's")


def main(cases):
    """SCRIPT CASE BUILD_DIR SCRATCH_DIR: runs cases[CASE](build, scratch) in a fresh scratch
    folder; exit 77 (skipped) without root."""
    case, build, scratch = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    if os.geteuid() != 0:
        print("multinode tests need root (network namespaces): skipped")
        sys.exit(77)
    shutil.rmtree(scratch, ignore_errors=True)  # a rerun must not resume an earlier run
    os.makedirs(scratch)
    t0 = time.time()
    cases[case](build, scratch)
    print(f"{case}: ok ({time.time() - t0:.0f} s)")
