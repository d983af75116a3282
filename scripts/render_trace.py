#!/usr/bin/env python3
"""Draws one step of a merged shardlm trace (`shardlm trace merge`) as a PNG timeline, for the
docs when no browser is at hand (Perfetto / chrome://tracing show the same file interactively).
One band per rank; inside it a lane for the micro-batch forward/backward phases, one for
kernels, one for communicator calls (the pipeline's own pp sends and receives are left to the
lane of pipeline exchanges, which checkpoint I/O shares).
    python3 scripts/render_trace.py MERGED.json STEP OUT.png [--title TEXT]
Needs matplotlib (Debian's python3-matplotlib).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

LANES = ["phase", "kernel", "comm", "pipeline"]
COLORS = {"forward": "#4c72b0", "backward": "#8172b3", "gradient_sync": "#937860",
          "optimizer": "#64b5cd", "evaluate": "#bbbbbb", "kernel": "#55a868", "comm": "#dd8452",
          "pipeline": "#c44e52", "checkpoint": "#da8bc3"}


def lane_and_color(e):
    cat, name = e["cat"], e["name"]
    if cat == "step":
        phase = name.split(".")[-1]
        return ("phase", COLORS.get(phase)) if phase != "train_step" else (None, None)
    if cat == "checkpoint":
        return "pipeline", COLORS["checkpoint"]
    if cat == "comm" and e["args"].get("group") == "pp":
        return None, None  # the pipeline exchange it belongs to is drawn in its own lane
    return cat, COLORS[cat]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("trace")
    p.add_argument("step", type=int)
    p.add_argument("out")
    p.add_argument("--title", default="")
    a = p.parse_args()
    doc = json.load(open(a.trace))
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    events = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["args"].get("step") == a.step]
    steps = [e for e in events if e["name"] == "step.train_step"]
    if not steps:
        raise SystemExit(f"{a.trace}: no step.train_step of step {a.step}")
    t0 = min(e["ts"] for e in steps)
    t1 = max(e["ts"] + e["dur"] for e in steps)
    ranks = sorted(names)
    fig, ax = plt.subplots(figsize=(15, 1.1 + 1.25 * len(ranks)), constrained_layout=True)
    yticks, ylabels = [], []
    for i, pid in enumerate(ranks):
        base = (len(ranks) - 1 - i) * (len(LANES) + 1)
        for j, lane in enumerate(LANES):
            yticks.append(base + len(LANES) - 1 - j)
            ylabels.append(f"{names[pid]}  {lane}" if j == 0 else lane)
        for e in events:
            if e["pid"] != pid or e["ts"] > t1:
                continue
            lane, color = lane_and_color(e)
            if lane is None:
                continue
            y = base + len(LANES) - 1 - LANES.index(lane)
            ax.broken_barh([((e["ts"] - t0) / 1e3, max(e["dur"] / 1e3, 0.02))], (y - 0.4, 0.8),
                           facecolors=color, edgecolor="none")
    ax.set_yticks(yticks)
    ax.set_yticklabels(ylabels, fontsize=8)
    ax.set_xlim(0, (t1 - t0) / 1e3)
    ax.set_xlabel("milliseconds since the step began (rank 0's clock)")
    ax.grid(True, axis="x", alpha=0.3)
    legend = [Patch(color=COLORS[k], label=k.replace("_", " ")) for k in
              ("forward", "backward", "gradient_sync", "optimizer", "kernel", "comm", "pipeline")]
    ax.legend(handles=legend, ncol=7, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(a.title or f"one training step (step {a.step})")
    fig.savefig(a.out, dpi=100)
    print(a.out)


if __name__ == "__main__":
    main()
