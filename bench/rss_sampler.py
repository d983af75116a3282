#!/usr/bin/env python3
"""Runs a command (e.g. mpirun ... shardlm train ...) and samples the resident memory (VmRSS)
of every descendant process named `shardlm` every 0.2 s. Prints, per rank process, the peak
over the whole run (what initialisation touched) and the peak over the second half of the run
(the steady state). Stdlib only.

    bench/rss_sampler.py -- mpirun -np 2 build/shardlm train --zero 3 ...
"""
import os
import subprocess
import sys
import time


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "shardlm":
                return None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit("usage: rss_sampler.py -- COMMAND...")
    start = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    samples = {}  # pid -> [(t, kib)]
    while proc.poll() is None:
        for pid in descendants(proc.pid):
            kib = rss_kib(pid)
            if kib is not None:
                samples.setdefault(pid, []).append((time.time() - start, kib))
        time.sleep(0.2)
    if proc.returncode != 0:
        sys.exit(f"command failed with exit code {proc.returncode}")
    for pid, s in sorted(samples.items()):
        half = s[-1][0] / 2
        steady = max(k for t, k in s if t >= half)
        print(f"pid {pid}: peak {max(k for _, k in s) / 1024:.0f} MiB, "
              f"second-half peak {steady / 1024:.0f} MiB ({len(s)} samples)")
    print(f"wall {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
