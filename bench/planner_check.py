#!/usr/bin/env python3
"""The planner against measurement on this machine (docs/planner.md's table).

    bench/planner_check.py BUILD_DIR [--steps N]

For each configuration (both families, 1-4 ranks, ZeRO 0/1 — the stages and recompute modes
the trainer runs): `shardlm plan --json` predicts the worst rank's allocator peak and the step
time; `mpirun shardlm train` runs the layout; the metrics give the measured allocator peak per
rank and the step time (median of the timed steps), /usr/bin/time each rank's peak RSS.
Prints a Markdown table. Timings on a shared machine: note the load (printed) with them.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

BUILD = os.path.abspath(sys.argv[1])
STEPS = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 6
SHARDLM = os.path.join(BUILD, "shardlm")
if "--copy-binary" in sys.argv:  # so that a rebuild during the run cannot swap it
    import shutil
    SHARDLM = shutil.copy(SHARDLM, os.path.join(tempfile.mkdtemp(), "shardlm"))
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
ENV = dict(os.environ, OMP_NUM_THREADS="1")

GPT2 = ["--model", "tiny", "--n-layer", "4", "--n-embd", "256", "--n-head", "8", "--vocab-size", "4096",
        "--max-seq-len", "128"]
LLAMA = ["--model", "llama-tiny", "--n-layer", "4", "--vocab-size", "4096", "--max-seq-len", "128"]
# (name, model flags, ranks, tp, pp, zero, micro-batch, global batch)
CONFIGS = [
    ("gpt2 1 rank", GPT2, 1, 1, 1, 0, 4, 8),
    ("gpt2 dp2", GPT2, 2, 1, 1, 0, 4, 8),
    ("gpt2 dp2 zero1", GPT2, 2, 1, 1, 1, 4, 8),
    ("gpt2 tp2", GPT2, 2, 2, 1, 0, 4, 8),
    ("gpt2 pp2", GPT2, 2, 1, 2, 0, 2, 8),
    ("gpt2 tp2 pp2", GPT2, 4, 2, 2, 0, 2, 8),
    ("llama 1 rank", LLAMA, 1, 1, 1, 0, 4, 8),
    ("llama tp2", LLAMA, 2, 2, 1, 0, 4, 8),
    ("llama pp2", LLAMA, 2, 1, 2, 0, 2, 8),
    ("llama tp2 dp2 zero1", LLAMA, 4, 2, 1, 1, 2, 8),
]
SEQ = "128"


def sh(cmd, **kw):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def main():
    tmp = tempfile.mkdtemp(prefix="planner_check_")
    rows = []
    for name, model, ranks, tp, pp, zero, B, G in CONFIGS:
        cfg = os.path.join(tmp, name.replace(" ", "_") + ".ini")
        with open(cfg, "w") as f:
            f.write(sh([SHARDLM, "train"] + model + ["--seq-len", SEQ, "--print-config", "--out", tmp]).stdout)
        plan = json.loads(sh([SHARDLM, "plan", "--model", cfg, "--seq-len", SEQ, "--global-batch", str(G),
                              "--gpus-per-node", str(ranks), "--device", "cpu", "--mem-per-device", "1TiB",
                              "--json", "--top", "100000"]).stdout)
        want = dict(tp=tp, pp=pp, zero=zero, micro_batch=B, recompute="none", pp_layers=[])
        c = next(c for c in plan["ranked"] if all(c[k] == v for k, v in want.items()))
        out = os.path.join(tmp, name.replace(" ", "_"))
        cmd = (MPIRUN + ["-np", str(ranks)] if ranks > 1 else []) + ["/usr/bin/time", "-f", "RSS_KB %M", SHARDLM,
               "train", "--config", cfg, "--seq-len", SEQ, "--global-batch", str(G), "--micro-batch", str(B),
               "--tp", str(tp), "--pp", str(pp), "--zero", str(zero), "--steps", str(STEPS), "--out", out,
               "--eval-steps", "1"]
        p = sh(cmd)
        rss = [int(line.split()[1]) * 1024 for line in p.stderr.splitlines() if line.startswith("RSS_KB")]
        steps = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in l]
        measured_peak = max(steps[-1]["peak_alloc_bytes"])
        # Step time: the median over steps after the first (warm-up), from the cumulative clock.
        times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(steps[1:], steps[2:])]
        step_s = statistics.median(times)
        if not rss:
            print(f"{name}: no RSS line from /usr/bin/time in:\n{p.stderr[-1500:]}", file=sys.stderr)
        rows.append((name, ranks, c, measured_peak, step_s, max(rss) if rss else float("nan")))
        print_row(*rows[-1])
    return rows


def header():
    print("| config | ranks | predicted peak/rank | measured peak (max rank) | error | max RSS | RSS - peak "
          "| predicted step s | measured step s | error | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)


def print_row(name, ranks, c, peak, step_s, rss):
    pred = c["peak_bytes"]["total"]
    mib = 1 << 20
    load = open("/proc/loadavg").read().split()[0]
    print(f"| {name} | {ranks} | {pred / mib:.2f} MiB | {peak / mib:.2f} MiB | {100 * (peak - pred) / pred:+.1f}% "
          f"| {rss / mib:.0f} MiB | {(rss - peak) / mib:.0f} MiB | {c['step_s']:.3f} | {step_s:.3f} "
          f"| {100 * (step_s - c['step_s']) / c['step_s']:+.0f}% | {load} |", flush=True)


if __name__ == "__main__":
    print(f"{STEPS} steps, seq-len {SEQ}, step time = median over the steps after the first two; "
          f"load = 1-minute load average on this 2-core machine when the row finished\n")
    header()
    main()
