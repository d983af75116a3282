#!/usr/bin/env python3
"""The planner against measurement on this machine (docs/planner.md's table).

    bench/planner_check.py BUILD_DIR [--steps N] [--only NAME,NAME..] [--copy-binary]
    bench/planner_check.py BUILD_DIR --memory-grid


For each configuration (both families, 1-8 ranks, ZeRO 0-3, recompute none/selective/full):
`shardlm plan --json` predicts the worst rank's allocator peak and the step time; `mpirun
shardlm train` runs the layout with shardlm's default threads (the node's cores divided among
its ranks: more ranks than cores share them); its metrics give the measured allocator peak per
rank, the step time (median over the steps after the first two of compute_s + comm_s +
bubble_s, the time of Trainer::train_step) and the CPU seconds per step (cpu_s, mean over the
ranks); /usr/bin/time gives each rank's peak RSS. Prints a Markdown table with the 1-minute load
average when each row finished: timings on a shared machine are only as good as that column.
--memory-grid instead trains the GPT-2 model on dp 2 for 2 steps with every ZeRO stage and
recompute mode and prints the measured peak per rank (the largest rank's) by role next to the
plan's.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

BUILD = os.path.abspath(sys.argv[1])
STEPS = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 6
ONLY = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
SHARDLM = os.path.join(BUILD, "shardlm")
if "--copy-binary" in sys.argv:  # so that a rebuild during the run cannot swap it
    SHARDLM = shutil.copy(SHARDLM, os.path.join(tempfile.mkdtemp(), "shardlm"))
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
ENV = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # shardlm's default threads

GPT2 = ["--model", "tiny", "--n-layer", "4", "--n-embd", "256", "--n-head", "8", "--vocab-size", "4096",
        "--max-seq-len", "128"]
LLAMA = ["--model", "llama-tiny", "--n-layer", "4", "--vocab-size", "4096", "--max-seq-len", "128"]
# (name, model flags, ranks, tp, pp, zero, recompute, micro-batch, global batch)
CONFIGS = [
    ("gpt2 1 rank", GPT2, 1, 1, 1, 0, "none", 4, 8),
    ("gpt2 1 rank selective", GPT2, 1, 1, 1, 0, "selective", 4, 8),
    ("gpt2 1 rank full", GPT2, 1, 1, 1, 0, "full", 4, 8),
    ("gpt2 dp2 zero1", GPT2, 2, 1, 1, 1, "none", 4, 8),
    ("gpt2 dp2 zero2", GPT2, 2, 1, 1, 2, "none", 4, 8),
    ("gpt2 dp2 zero3", GPT2, 2, 1, 1, 3, "none", 4, 8),
    ("gpt2 tp2", GPT2, 2, 2, 1, 0, "none", 4, 8),
    ("gpt2 pp2 full", GPT2, 2, 1, 2, 0, "full", 2, 8),
    ("gpt2 tp2 pp2", GPT2, 4, 2, 2, 0, "none", 2, 8),
    ("gpt2 dp4 zero3 selective", GPT2, 4, 1, 1, 3, "selective", 2, 8),
    ("gpt2 tp2 pp2 dp2 zero1", GPT2, 8, 2, 2, 1, "none", 2, 8),
    ("llama 1 rank", LLAMA, 1, 1, 1, 0, "none", 4, 8),
    ("llama tp2 selective", LLAMA, 2, 2, 1, 0, "selective", 4, 8),
    ("llama pp2", LLAMA, 2, 1, 2, 0, "none", 2, 8),
    ("llama dp2 zero2 full", LLAMA, 2, 1, 1, 2, "full", 4, 8),
    ("llama tp2 dp2 zero3", LLAMA, 4, 2, 1, 3, "none", 2, 8),
    ("llama dp4 zero2", LLAMA, 4, 1, 1, 2, "none", 2, 8),
]
SEQ = "128"
MIB = 1 << 20


def sh(cmd, **kw):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def predicted(cfg, ranks, tp, pp, zero, recompute, B, G):
    """The plan's entry for this layout (even split), on one node of `ranks` ranks."""
    plan = json.loads(sh([SHARDLM, "plan", "--model", cfg, "--seq-len", SEQ, "--global-batch", str(G),
                          "--gpus-per-node", str(ranks), "--device", "cpu", "--mem-per-device", "1TiB",
                          "--json", "--top", "100000"]).stdout)
    want = dict(tp=tp, pp=pp, zero=zero, micro_batch=B, recompute=recompute, pp_layers=[])
    best = next(c for c in plan["ranked"] if all(c[k] == v for k, v in want.items()))
    return best, plan


def measure(name, cfg, ranks, tp, pp, zero, recompute, B, G, tmp):
    out = os.path.join(tmp, name.replace(" ", "_"))
    rss_file = out + ".rss"  # every rank appends its line (O_APPEND): none is lost with mpirun's output
    cmd = (MPIRUN + ["-np", str(ranks)] if ranks > 1 else []) + [
        "/usr/bin/time", "-a", "-o", rss_file, "-f", "RSS_KB %M", SHARDLM, "train", "--config", cfg, "--seq-len", SEQ,
        "--global-batch", str(G), "--micro-batch", str(B), "--tp", str(tp), "--pp", str(pp), "--zero", str(zero),
        "--recompute", recompute, "--steps", str(STEPS), "--out", out, "--eval-steps", "1", "--tensorboard", "off"]
    sh(cmd)
    rss = [int(line.split()[1]) * 1024 for line in open(rss_file) if line.startswith("RSS_KB")]
    if len(rss) != ranks:
        raise SystemExit(f"{name}: {len(rss)} RSS lines from /usr/bin/time for {ranks} ranks in {rss_file}")
    steps = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line]
    timed = steps[2:] if len(steps) > 2 else steps[-1:]
    return dict(peak=max(steps[-1]["peak_alloc_bytes"]), rss=max(rss),
                step_s=statistics.median(s["compute_s"] + s["comm_s"] + s["bubble_s"] for s in timed),
                cpu_s=statistics.median(s["cpu_s"] for s in timed))


def main():
    tmp = tempfile.mkdtemp(prefix="planner_check_")
    print(f"{STEPS} steps, seq-len {SEQ}; step time = median of compute_s + comm_s + bubble_s over the steps "
          f"after the first two; cpu s = CPU seconds per step of a rank (median of cpu_s); load = 1-minute load "
          f"average on this {os.cpu_count()}-core machine when the row finished; plan's rates = the dense matmuls' and "
          f"the attention's efficiency and a thread's worth past a rank's first, as `shardlm plan` measured them "
          f"for that row (plan/cpu_calibration.h)\n")
    print("| config | ranks | predicted peak/rank | measured peak (max rank) | error | max RSS | RSS - peak "
          "| plan's rates | predicted step s | measured step s | error | cpu s/step | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for name, model, *layout in CONFIGS:
        if ONLY and name not in ONLY:
            continue
        cfg = os.path.join(tmp, name.replace(" ", "_") + ".ini")
        with open(cfg, "w") as f:
            f.write(sh([SHARDLM, "train"] + model + ["--seq-len", SEQ, "--print-config", "--out", tmp]).stdout)
        c, plan = predicted(cfg, *layout)
        rates = f"{100 * plan['efficiency']:.0f}% / {100 * plan['attention_efficiency']:.0f}% / {plan['thread_scaling']:.2f}"
        m = measure(name, cfg, *layout, tmp)
        pred, pred_s = c["peak_bytes"]["total"], c["step_s"]
        load = open("/proc/loadavg").read().split()[0]
        print(f"| {name} | {layout[0]} | {pred / MIB:.2f} MiB | {m['peak'] / MIB:.2f} MiB "
              f"| {100 * (m['peak'] - pred) / pred:+.1f}% | {m['rss'] / MIB:.0f} MiB | {(m['rss'] - m['peak']) / MIB:.0f} MiB "
              f"| {rates} | {pred_s:.3f} | {m['step_s']:.3f} | {100 * (m['step_s'] - pred_s) / pred_s:+.0f}% "
              f"| {m['cpu_s']:.3f} | {load} |", flush=True)


def memory_grid():
    tmp = tempfile.mkdtemp(prefix="planner_grid_")
    cfg = os.path.join(tmp, "gpt2.ini")
    with open(cfg, "w") as f:
        f.write(sh([SHARDLM, "train"] + GPT2 + ["--seq-len", SEQ, "--print-config", "--out", tmp]).stdout)
    print("GPT-2 (4 layers, C 256, vocab 4096), seq-len 128, dp 2, micro-batch 4 x 1 per rank; MiB per rank, "
          "measured (the largest rank's peak) / planned\n")
    roles = ["parameters", "gradients", "optimizer", "activations", "communication"]
    print("| zero | recompute | peak | " + " | ".join(roles) + " |")
    print("|---|---|---|" + "---|" * len(roles), flush=True)
    for zero in range(4):
        for recompute in ("none", "selective", "full"):
            c, _ = predicted(cfg, 2, 1, 1, zero, recompute, 4, 8)
            out = os.path.join(tmp, f"z{zero}_{recompute}")
            sh(MPIRUN + ["-np", "2", SHARDLM, "train", "--config", cfg, "--seq-len", SEQ, "--global-batch", "8",
                         "--micro-batch", "4", "--zero", str(zero), "--recompute", recompute, "--steps", "2",
                         "--out", out, "--eval-steps", "1", "--tensorboard", "off"])
            last = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line][-1]
            worst = max(range(2), key=lambda r: last["peak_alloc_bytes"][r])
            cells = [f"{last['peak_alloc_bytes'][worst] / MIB:.2f} / {c['peak_bytes']['total'] / MIB:.2f}"]
            cells += [f"{last['peak_alloc_bytes_by_role'][r][worst] / MIB:.2f} / {c['peak_bytes'][r] / MIB:.2f}"
                      for r in roles]
            print(f"| {zero} | {recompute} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    memory_grid() if "--memory-grid" in sys.argv else main()
