#!/usr/bin/env python3
"""SLURM across 2 test hosts: slurmctld on host 0 and one slurmd per host
(tests/slurm/slurm_cluster.sh with SLURM_TEST_HOSTS), the CPU template submitted with
`sbatch --nodes=2` (2 ranks per node: tp2 x dp2, TP inside a node, DP across), its step run by
launch/shardlm-launch with `srun --mpi=pmix`. The end-to-end script is
tests/slurm/test_cpu_template.sh, run inside host 0 (the login node: only the hosts reach each
other's addresses).

    test_slurm.py CASE BUILD_DIR SCRATCH_DIR

slurm-timelimit  --time=1 --signal=B:USR1@20: the warning's save, the requeue, the resume on both
                 nodes; the resumed start's first periodic checkpoint equals an uninterrupted
                 run's bit for bit (TIMELIMIT_COMPARE)
slurm-requeue    `scontrol requeue` mid-run (preemption: SIGTERM to every process of the job on
                 both nodes): saved, requeued, resumed, COMPLETED with final weights equal to an
                 uninterrupted run's
"""
import os
import sys

import cluster
from support import REPO, main

CONFIG = os.path.join(REPO, "configs", "e2e-tiny.ini")
TEMPLATE_TEST = os.path.join(REPO, "tests", "slurm", "test_cpu_template.sh")
# TCP between the hosts only over the test subnet; shared memory inside a host (as
# Cluster.mpirun_flags): the ranks read these from the job's environment (sbatch --export=ALL).
OMPI_ENV = {"OMPI_MCA_btl": "self,vader,tcp", "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
            "OMPI_MCA_btl_tcp_if_include": f"{cluster.SUBNET}.0/24",
            "OMPI_MCA_oob_tcp_if_include": f"{cluster.SUBNET}.0/24", "OMP_NUM_THREADS": "1"}
# The time-limit case trains far longer than the one-minute limit (only the warning can end a
# start) and keeps every checkpoint of its uninterrupted twin's that the comparison needs.
LONG = ["--steps", "100000", "--keep-every", "5"]


def template_test(build, scratch, mode, flags, timeout):
    with cluster.Cluster(2) as c:
        env = dict(os.environ, SLURM_TEST_HOSTS=" ".join(c.hosts), NODES="2", RANKS="4",
                   LAUNCHER="shardlm-launch", SAVE_EVERY="5", **OMPI_ENV)
        env.pop("REFERENCE", None)  # a single-node fixture's run is not this command's twin
        if mode == "timelimit":
            env["TIMELIMIT_COMPARE"] = "1"
        p = c.run(c.hosts[0], [TEMPLATE_TEST, mode, scratch, os.path.join(build, "shardlm"),
                               CONFIG, "--tp", "2"] + flags, timeout=timeout, env=env)
    print(p.stdout[-6000:])
    print(p.stderr[-6000:], file=sys.stderr)
    if p.returncode == 77:
        sys.exit(77)
    assert p.returncode == 0, f"test_cpu_template.sh {mode} across 2 hosts: exit {p.returncode}"


def case_slurm_timelimit(build, scratch):
    template_test(build, scratch, "timelimit", LONG, timeout=540)


def case_slurm_requeue(build, scratch):
    template_test(build, scratch, "requeue", [], timeout=540)


if __name__ == "__main__":
    main({"slurm-timelimit": case_slurm_timelimit, "slurm-requeue": case_slurm_requeue})
