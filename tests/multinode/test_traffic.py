#!/usr/bin/env python3
"""The network, measured: what the hosts' links carry during training against the project's own
formulas (plan/traffic.h through `shardlm plan --json`) and the planner's step time.

    test_traffic.py CASE BUILD_DIR SCRATCH_DIR

traffic-bytes  bytes each host's eth0 sent per training step (tx_bytes in its namespace),
               differenced between a 2-step and a 12-step run, which removes start-up (MPI
               wiring, the config hash), against the cross-host bytes of the layout's
               communicators, for dp2 (1 rank per host: the whole gradient all-reduce crosses),
               tp2 x dp2 (2 per host: TP over shared memory, both DP groups cross) and tp2 x pp2
               (a stage per host: activations, their gradients and the tied embedding cross)
traffic-rate   dp2 over links rate-limited to RATE (tbf): the measured step time and its comm_s
               against what `shardlm plan --inter-node-bw RATE` predicts
"""
import json
import os
import statistics
import subprocess
import time

import cluster
from support import must, tx_bytes, main

# A model big enough that the gradient all-reduce (4 x 0.57 M fp32 parameters per rank and
# step) dwarfs the per-step control traffic (the loss, the norm, the stop flag: bytes).
MODEL = ["--model", "tiny", "--n-layer", "2", "--n-embd", "128", "--n-head", "4",
         "--vocab-size", "512", "--max-seq-len", "32", "--seq-len", "32", "--micro-batch", "2",
         "--global-batch", "4", "--lr", "1e-3", "--warmup", "2", "--log-every", "1"]
SHORT, LONG = 2, 12  # steps of the two runs whose difference is N = 10 steps' traffic
# Measured / formula per step. Above 1: what the formulas leave out. TCP/IP and Ethernet
# headers (66 bytes per segment: ~1% with veth's 64 kB GSO segments, 4.6% at 1448-byte ones),
# the ACKs a host sends for the equal volume it receives (66 bytes per one or two segments),
# Open MPI's fragment headers, and the per-step control collectives. Below 1 cannot happen
# unless the formula counts bytes that do not cross.
BYTES_TOLERANCE = (0.99, 1.05)
RATE = "40mbit"  # slow enough that communication is most of a step under any load
# Measured / predicted, for the step time and its comm part. Below 0.8 the link would carry the
# formula's bytes (which traffic-bytes finds on the wire) faster than its rate: the limit or the
# bytes are wrong. Above 1 is expected: the prediction is bytes / rate, a lower bound; Open
# MPI's two-round ring all-reduce took 1.65x here (recursive doubling 1.17x, raw TCP 1.04x), and
# load adds compute and skew between the ranks. 2.5 leaves room for both, and fails a step
# that something other than the link's bandwidth dominates.
RATE_BOUNDS = (0.8, 2.5)


def planned(shardlm, scratch, flags, hosts, slots, inter_bw=None):
    """The planner's candidate for the layout the training flags give (tp from the flags, dp
    the rest, no ZeRO or recompute): its step time and comm_bytes_per_stage."""
    cfg = os.path.join(scratch, "model.ini")
    printed = must(subprocess.run([shardlm, "train"] + flags + ["--print-config", "--world-size",
                                   str(hosts * slots), "--out", os.path.join(scratch, "unused")], capture_output=True, text=True),
                   "print-config").stdout
    with open(cfg, "w") as f:
        f.write(printed)
    arg = dict(zip(flags, flags[1:]))  # "--flag" -> its value
    plan = ["plan", "--model", cfg, "--seq-len", arg["--seq-len"], "--global-batch",
            arg["--global-batch"], "--nodes", str(hosts), "--gpus-per-node", str(slots),
            "--device", "cpu", "--top", "100000", "--json"]
    plan += ["--inter-node-bw", inter_bw] if inter_bw else []
    report = json.loads(must(subprocess.run([shardlm] + plan, capture_output=True, text=True),
                             "shardlm plan").stdout)
    tp, pp = int(arg.get("--tp", "1")), int(arg.get("--pp", "1"))
    want = dict(tp=tp, pp=pp, dp=hosts * slots // (tp * pp), zero=0, recompute="none",
                micro_batch=int(arg["--micro-batch"]), pp_layers=[])
    for c in report["ranked"] + report["not_yet_runnable"] + report["dropped"]:
        if all(c[k] == v for k, v in want.items()):
            return report, c
    raise AssertionError(f"shardlm plan lists no layout {want}")


def cross_host_bytes(candidate, slots, host):
    """Bytes `host` sends to the others per step by the formulas: each of its `slots` ranks
    sends its stage's bytes of every communicator that spans hosts (ranks are numbered TP
    fastest, then DP, then PP: TP spans hosts when tp > slots, DP when tp x dp does, PP and the
    world when all ranks do, as in plan/step_time.cpp)."""
    tp, dp, pp = candidate["tp"], candidate["dp"], candidate["pp"]
    world = tp * dp * pp
    total = 0
    for rank in range(host * slots, (host + 1) * slots):
        b = candidate["comm_bytes_per_stage"][rank // (tp * dp)]
        total += ((b["tp"] if tp > slots else 0) + (b["dp"] if tp * dp > slots else 0) +
                  (b["pp"] + b["world"] if world > slots else 0))
    return total


def sent_during(c, argv, slots):
    """Bytes each host's eth0 sent while mpirun ran argv across the hosts."""
    before = [tx_bytes(c, h) for h in c.hosts]
    must(c.mpirun(argv, slots=slots), " ".join(argv[:3]))
    return [tx_bytes(c, h) - b for h, b in zip(c.hosts, before)]


def case_bytes(build, scratch):
    shardlm = os.path.join(build, "shardlm")
    with cluster.Cluster(2) as c:
        for name, slots, layout in (("dp2", 1, []), ("tp2 x dp2", 2, ["--tp", "2"]),
                                    ("tp2 x pp2", 2, ["--tp", "2", "--pp", "2"])):
            flags = MODEL + layout
            _, cand = planned(shardlm, scratch, flags, len(c.hosts), slots)
            want = [cross_host_bytes(cand, slots, h) for h in range(len(c.hosts))]
            runs = {}
            for steps in (SHORT, LONG):
                out = os.path.join(scratch, f"{name.replace(' ', '')}-{steps}")
                runs[steps] = sent_during(c, [shardlm, "train"] + flags +
                                          ["--steps", str(steps), "--out", out], slots)
            per_step = [(l - s) / (LONG - SHORT) for s, l in zip(runs[SHORT], runs[LONG])]
            ratios = [p / w for p, w in zip(per_step, want)]
            print(f"{name} ({slots} rank(s) per host): formula {want} B/step/host "
                  f"({cand['comm_bytes_per_stage']} B/rank by stage); measured "
                  f"{[round(p) for p in per_step]} B/step/host, ratio {[round(r, 4) for r in ratios]}; "
                  f"start-up ({SHORT}-step run) {runs[SHORT]} B")
            lo, hi = BYTES_TOLERANCE
            assert all(lo <= r <= hi for r in ratios), f"{name}: measured/formula {ratios} not in {BYTES_TOLERANCE}"


def step_times(metrics_path, skip=2):
    """(step time, comm time) medians over the logged steps after the first `skip`."""
    rows = [json.loads(line) for line in open(metrics_path) if '"loss"' in line]
    rows = rows[skip:]
    assert len(rows) >= 4, f"too few logged steps in {metrics_path}"
    step = statistics.median(r["compute_s"] + r["comm_s"] + r["bubble_s"] for r in rows)
    return step, statistics.median(r["comm_s"] for r in rows)


def case_rate(build, scratch):
    shardlm = os.path.join(build, "shardlm")
    with cluster.Cluster(2, rate=RATE) as c:
        _, cand = planned(shardlm, scratch, MODEL, len(c.hosts), 1, inter_bw=RATE)
        out = os.path.join(scratch, "run")
        t0 = time.time()
        must(c.mpirun([shardlm, "train"] + MODEL + ["--steps", "10", "--out", out], slots=1),
             "rate-limited run")
        step_s, comm_s = step_times(os.path.join(out, "metrics.jsonl"))
        print(f"dp2 over {RATE} links ({time.time() - t0:.0f} s): step {step_s:.3f} s measured, "
              f"{cand['step_s']:.3f} s predicted (ratio {step_s / cand['step_s']:.2f}); comm "
              f"{comm_s:.3f} s measured, {cand['comm_s']:.3f} s predicted (ratio "
              f"{comm_s / cand['comm_s']:.2f})")
        lo, hi = RATE_BOUNDS
        assert lo <= step_s / cand["step_s"] <= hi, "step time outside the bounds"
        assert lo <= comm_s / cand["comm_s"] <= hi, "communication time outside the bounds"


if __name__ == "__main__":
    main({"traffic-bytes": case_bytes, "traffic-rate": case_rate})
