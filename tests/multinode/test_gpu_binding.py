#!/usr/bin/env python3
"""The GPU binding of --device cuda across 2 test hosts, with SHARDLM_FAKE_CUDA_DEVICE_COUNT=2
standing in for the CUDA runtime's count (so a build without CUDA, on a machine without GPUs,
runs the same code: train/gpu_binding.h).

    test_gpu_binding.py gpu-binding BUILD_DIR SCRATCH_DIR

- 2 hosts x 2 ranks, `shardlm train --print-device-binding`: on each host its ranks (in rank
  order) get devices 0 and 1 of 2, and each line names the rank's own host;
- the same with `shardlm train --device cuda`: every rank prints that binding before the run
  stops at what this build cannot do yet (no CUDA built in, or several CUDA ranks);
- 1 + 3 ranks: host 1's 3 ranks are refused naming host 1, 3 ranks and 2 devices, by both
  commands; with --device cuda that error comes first (not the CUDA build/multi-rank refusal).
"""
import os

import cluster
from support import TRAIN, main, must

FAKE = ["-x", "SHARDLM_FAKE_CUDA_DEVICE_COUNT=2"]


def binding_lines(text):
    return sorted(line for line in text.splitlines() if line.startswith("rank ") and " on host " in line)


def expected_lines(c, slots):
    lines, rank = [], 0
    for host, n in zip(c.hosts, slots):
        for local in range(n):
            lines.append(f"rank {rank} on host {host}: local rank {local} of {n}, device {local} of 2")
            rank += 1
    return sorted(lines)


def train_cuda(shardlm, scratch, name):
    return [shardlm] + TRAIN + ["--device", "cuda", "--out", os.path.join(scratch, name)]


def case_gpu_binding(build, scratch):
    shardlm = os.path.join(build, "shardlm")
    with cluster.Cluster(2) as c:
        p = must(c.mpirun([shardlm, "train", "--print-device-binding"], slots=2, extra=FAKE),
                 "--print-device-binding, 2 x 2")
        assert binding_lines(p.stdout) == expected_lines(c, [2, 2]), p.stdout
        print("\n".join(binding_lines(p.stdout)))

        p = c.mpirun(train_cuda(shardlm, scratch, "fits"), slots=2, extra=FAKE)
        assert p.returncode != 0, "a CUDA run of 4 ranks cannot train yet"
        assert binding_lines(p.stdout) == expected_lines(c, [2, 2]), p.stdout + p.stderr
        # After the binding: a CPU-only build has no CUDA backend, a CUDA build on a machine
        # without a GPU (CI, this test's hosts) finds no device to open, and one with GPUs
        # refuses multi-rank CUDA training (the NCCL communicator is not there yet).
        assert ("built without CUDA" in p.stderr or "no usable CUDA device" in p.stderr
                or "runs one rank on one GPU" in p.stderr), p.stderr

        refused = f"host {c.hosts[1]} runs 3 rank(s) but sees 2 CUDA device(s)"
        p = c.mpirun([shardlm, "train", "--print-device-binding"], slots=[1, 3], extra=FAKE)
        assert p.returncode != 0 and refused in p.stderr, p.stdout + p.stderr
        assert f"host {c.hosts[0]} runs" not in p.stderr, p.stderr  # host 0's rank fits
        p = c.mpirun(train_cuda(shardlm, scratch, "refused"), slots=[1, 3], extra=FAKE)
        assert p.returncode != 0 and refused in p.stderr, p.stdout + p.stderr
        print(refused)


if __name__ == "__main__":
    main({"gpu-binding": case_gpu_binding})
