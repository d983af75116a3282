#!/usr/bin/env python3
"""Training stall per checkpoint save, synchronous vs --async-save (docs/performance.md).

    bench/save_stall.py SHARDLM_BIN [--np N] [--runs R] [--out DIR] [-- TRAIN_FLAGS...]

Trains the same run R times in each mode (alternating, so that load from other users hits both
alike) and reads, per save, how long the training thread was held:
  sync   the "saved DIR (X s)" line: the whole save runs on the training thread;
  async  the "training stalled Y s" of "saved DIR (... in the background; training stalled
         Y s)": the snapshot copy, the step-boundary polls and agreements, and any wait for
         the previous save, i.e. everything the training thread spent on that save.
The final save (the run waits for it before exiting in both modes) is left out. Also printed,
from metrics.jsonl's elapsed_s: the median duration of the step after a save (a sync save's
time falls in it; an async save's copy and write run beside it, on the same cores) and of the
other steps, and the whole run's wall time, so that what the writer thread costs the training
steps beside it shows too.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

# A GPT-2 of ~14 M parameters: 168 MB of checkpointed state (parameters + two AdamW moments),
# one rank file of that size; a step takes a fraction of a second on 2 cores.
DEFAULT_FLAGS = ["--model", "tiny", "--n-layer", "6", "--n-embd", "384", "--n-head", "6",
                 "--vocab-size", "8192", "--max-seq-len", "64", "--seq-len", "16", "--micro-batch", "1",
                 "--steps", "30", "--save-every", "5", "--keep-last", "2", "--log-every", "1",
                 "--eval-steps", "1", "--tensorboard", "off"]
SYNC_LINE = re.compile(r"^saved (\S+) \(([0-9.]+) s\)$", re.M)
ASYNC_LINE = re.compile(r"^saved (\S+) \(([0-9.]+) s in the background; training stalled ([0-9.]+) s\)$", re.M)


def train(args, out, asynchronous):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.shardlm, "train", "--out", out, "--resume", "none"] + args.flags
    if asynchronous:
        cmd.append("--async-save")
    if args.np > 1:
        mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(args.np)]
        if os.geteuid() == 0:
            mpirun.append("--allow-run-as-root")
        cmd = mpirun + cmd
    started = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - started
    if p.returncode != 0:
        sys.exit("%s\nexit %d\n%s" % (" ".join(cmd), p.returncode, (p.stdout + p.stderr)[-3000:]))
    if asynchronous:
        saves = [(m.group(1), float(m.group(2)), float(m.group(3))) for m in ASYNC_LINE.finditer(p.stdout)]
        stalls = [s[2] for s in saves[:-1]]
        written = [s[1] for s in saves[:-1]]
    else:
        saves = [(m.group(1), float(m.group(2))) for m in SYNC_LINE.finditer(p.stdout)]
        stalls = written = [s[1] for s in saves[:-1]]
    records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    elapsed = {m["step"]: m["elapsed_s"] for m in records if "loss" in m and "elapsed_s" in m}
    durations = {n: elapsed[n] - elapsed[n - 1] for n in elapsed if n - 1 in elapsed}
    every = int(args.flags[args.flags.index("--save-every") + 1])
    # The step after a save: a synchronous save's time lands in it (elapsed_s is taken when a
    # step is logged, before its save); with --async-save the copy and the write run beside it.
    after = [d for n, d in durations.items() if (n - 1) % every == 0]
    others = [d for n, d in durations.items() if (n - 1) % every != 0]
    return {"stalls": stalls, "written": written, "wall": wall,
            "step": statistics.median(others) if others else 0,
            "after": statistics.median(after) if after else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shardlm")
    ap.add_argument("--np", type=int, default=1, help="MPI ranks (default 1: no mpirun)")
    ap.add_argument("--runs", type=int, default=3, help="runs per mode")
    ap.add_argument("--out", default="runs/bench-save-stall", help="scratch run directories")
    ap.add_argument("flags", nargs="*", help="shardlm train flags (after --) instead of the default run")
    args = ap.parse_args()
    args.flags = args.flags or DEFAULT_FLAGS
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.np)))
    results = {False: [], True: []}
    for i in range(args.runs):
        for asynchronous in (False, True):
            r = train(args, os.path.join(args.out, "async" if asynchronous else "sync"), asynchronous)
            results[asynchronous].append(r)
            print("run %d %-5s: stall per save %s s, run %.1f s, median step %.3f s, after a save %.3f s" % (
                i + 1, "async" if asynchronous else "sync", " ".join("%.3f" % s for s in r["stalls"]),
                r["wall"], r["step"], r["after"]), flush=True)
    summary = {}
    for asynchronous, rs in results.items():
        stalls = [s for r in rs for s in r["stalls"]]
        summary[asynchronous] = {
            "stall": statistics.median(stalls),
            "written": statistics.median([w for r in rs for w in r["written"]]),
            "wall": statistics.median(r["wall"] for r in rs),
            "step": statistics.median(r["step"] for r in rs),
            "after": statistics.median(r["after"] for r in rs),
            "saves": len(stalls),
        }
    s, a = summary[False], summary[True]
    print("\nmedians over %d runs per mode (%d and %d saves):" % (args.runs, s["saves"], a["saves"]))
    print("| mode | training stall per save | save written in | step after a save | other steps | run wall time |")
    print("|---|---|---|---|---|---|")
    print("| sync | %.3f s | %.3f s (on the training thread) | %.3f s | %.3f s | %.1f s |" % (
        s["stall"], s["written"], s["after"], s["step"], s["wall"]))
    print("| async | %.3f s (%.1f%% of sync) | %.3f s (background) | %.3f s | %.3f s | %.1f s |" % (
        a["stall"], 100 * a["stall"] / s["stall"], a["written"], a["after"], a["step"], a["wall"]))


if __name__ == "__main__":
    main()
