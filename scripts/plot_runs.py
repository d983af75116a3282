"""`shardlm plot`: training curves of one or several runs from their metrics.jsonl.

The shardlm binary carries this script (embedded at build time, src/cli/cmd_plot.cpp) and runs
it with Debian's python3 and python3-matplotlib; it also runs on its own:
    python3 scripts/plot_runs.py RUN_DIR... [-o FILE.png] [--x tokens|steps|time]
Panels: train and validation loss (log scale), validation bits per byte when the data has a
byte count, tokens per second, MFU, and the mean step-time split (compute / communication /
pipeline bubble) per run. docs/observability.md shows an example.
"""
import argparse
import json
import math
import os
import sys

PROG = "shardlm plot"
X_LABELS = {"tokens": "tokens consumed", "steps": "optimizer step", "time": "training time (s)"}


def fail(message, code=1):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(code)


def metrics_path(run):
    path = os.path.join(run, "metrics.jsonl") if os.path.isdir(run) else run
    if not os.path.isfile(path):
        fail(f"{path} does not exist (give a run directory with a metrics.jsonl, or the file)")
    return path


def read_metrics(path):
    """Step and evaluation records; a step logged twice (a resume from an older checkpoint)
    keeps its newest line."""
    steps, evals = {}, {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{lineno}: not a JSON line ({e})")
            if "step" not in rec:
                fail(f"{path}:{lineno}: a record without 'step'")
            (evals if "val_loss" in rec else steps)[rec["step"]] = rec
    if not steps and not evals:
        fail(f"{path} holds no metrics yet")
    return [steps[k] for k in sorted(steps)], [evals[k] for k in sorted(evals)]


def run_time(steps):
    """Training time at each step line, continued across starts (elapsed_s restarts at 0)."""
    out, offset, last = [], 0.0, 0.0
    for rec in steps:
        t = rec.get("elapsed_s") or 0.0
        if t < last:
            offset += last
        last = t
        out.append(offset + t)
    return out


def interp(x, xs, ys):
    """ys at x by linear interpolation over increasing xs (the ends held)."""
    if not xs:
        return 0.0
    if x <= xs[0]:
        return ys[0] * x / xs[0] if xs[0] else ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            a = (x - xs[i - 1]) / (xs[i] - xs[i - 1]) if xs[i] != xs[i - 1] else 1.0
            return ys[i - 1] + a * (ys[i] - ys[i - 1])
    return ys[-1]


class Run:
    def __init__(self, label, path):
        self.label = label
        self.steps, self.evals = read_metrics(path)
        s = [r["step"] for r in self.steps]
        self.axis = {"steps": s, "tokens": [r.get("tokens", 0) for r in self.steps],
                     "time": run_time(self.steps)}

    def x(self, kind, step_numbers):
        """x positions of evaluation steps on the chosen axis."""
        if kind == "steps":
            return step_numbers
        return [interp(n, self.axis["steps"], self.axis[kind]) for n in step_numbers]

    def values(self, key, records):
        return [math.nan if r.get(key) is None else r[key] for r in records]


def labels_for(runs):
    """The folder names, or parent/folder where two runs share a name."""
    names = [os.path.basename(os.path.normpath(r)) or r for r in runs]
    if len(set(names)) == len(names):
        return names
    return [os.path.join(os.path.basename(os.path.dirname(os.path.normpath(r))), n)
            for r, n in zip(runs, names)]


def plot(runs, xkind, out, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5), constrained_layout=True)
    (ax_loss, ax_bpb, ax_split), (ax_speed, ax_mfu, ax_mem) = axes
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    human = FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if abs(v) >= 1e6
                          else f"{v / 1e3:g}k" if abs(v) >= 1e3 else f"{v:g}")
    plain = FuncFormatter(lambda v, _: f"{v:.3g}")
    has_bpb = False
    for i, run in enumerate(runs):
        c = colors[i % len(colors)]
        x = run.axis[xkind]
        if run.steps:
            ax_loss.plot(x, run.values("loss", run.steps), color=c, lw=1.2, alpha=0.8,
                         label=f"{run.label} train")
            ax_speed.plot(x, run.values("tokens_per_s", run.steps), color=c, lw=1.4, label=run.label)
            ax_mfu.plot(x, [100 * v for v in run.values("mfu", run.steps)], color=c, lw=1.4,
                        label=run.label)
            ax_mem.plot(x, [v / 2**30 for v in run.values("peak_mem_bytes", run.steps)], color=c,
                        lw=1.4, label=run.label)
        if run.evals:
            ex = run.x(xkind, [r["step"] for r in run.evals])
            ax_loss.plot(ex, run.values("val_loss", run.evals), color=c, ls="--", marker="o",
                         ms=4, lw=1.6, label=f"{run.label} validation")
            bpb = run.values("val_bpb", run.evals)
            if any(not math.isnan(v) for v in bpb):
                has_bpb = True
                ax_bpb.plot(ex, bpb, color=c, marker="o", ms=4, lw=1.6, label=run.label)
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(plain)
    ax_loss.yaxis.set_minor_formatter(plain)
    ax_loss.tick_params(axis="y", which="minor", labelsize=7)
    ax_loss.set_title("loss (cross-entropy in nats, log scale)")
    ax_loss.set_ylabel("loss")
    ax_bpb.set_title("validation bits per byte")
    ax_bpb.set_ylabel("bits / byte")
    if not has_bpb:
        ax_bpb.text(0.5, 0.5, "no bits/byte:\nsynthetic data has no text bytes", ha="center",
                    va="center", transform=ax_bpb.transAxes, color="gray")
    ax_speed.set_title("throughput")
    ax_speed.set_ylabel("tokens / s")
    ax_speed.yaxis.set_major_formatter(human)
    ax_mfu.set_title("model FLOPs utilisation")
    ax_mfu.set_ylabel("MFU (%)")
    ax_mem.set_title("peak memory (largest rank)")
    ax_mem.set_ylabel("GiB")
    for ax in (ax_speed, ax_mfu, ax_mem):
        ax.set_ylim(bottom=0)
    for ax in (ax_loss, ax_bpb, ax_speed, ax_mfu, ax_mem):
        ax.set_xlabel(X_LABELS[xkind])
        ax.grid(True, which="both", alpha=0.3)
        if xkind == "tokens":
            ax.xaxis.set_major_formatter(human)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    split_panel(ax_split, runs)
    fig.suptitle(title, fontsize=13)
    fig.savefig(out, dpi=100)


def split_panel(ax, runs):
    """Mean seconds per step in compute / communication / bubble, one bar per run."""
    parts = [("compute_s", "compute", "#4c72b0"), ("comm_s", "communication", "#dd8452"),
             ("bubble_s", "pipeline bubble", "#c44e52")]
    names = [r.label for r in runs]
    bottoms = [0.0] * len(runs)
    for key, label, color in parts:
        means = []
        for r in runs:
            vals = [v for v in r.values(key, r.steps) if not math.isnan(v)]
            means.append(1e3 * sum(vals) / len(vals) if vals else 0.0)
        ax.barh(names, means, left=bottoms, color=color, label=label)
        bottoms = [b + m for b, m in zip(bottoms, means)]
    ax.set_title("step time split (mean over ranks and steps)")
    ax.set_xlabel("milliseconds per step")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", alpha=0.3)


def main(argv):
    p = argparse.ArgumentParser(prog=PROG, description="Plot the metrics.jsonl of runs.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or metrics.jsonl)")
    p.add_argument("-o", "--output", default="", help="PNG to write (default: RUN_DIR/plot.png "
                   "of the first run)")
    p.add_argument("--x", choices=sorted(X_LABELS), default="tokens", help="x axis")
    p.add_argument("--title", default="", help="figure title")
    args = p.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail(f"{sys.executable} has no matplotlib: install Debian's python3-matplotlib "
             "(scripts/install-deps.sh), or point SHARDLM_PLOT_PYTHON at a python that has it")
    paths = [metrics_path(r) for r in args.runs]
    runs = [Run(label, path) for label, path in zip(labels_for(args.runs), paths)]
    first = args.runs[0]
    out = args.output or os.path.join(first if os.path.isdir(first) else os.path.dirname(first)
                                      or ".", "plot.png")
    title = args.title or "shardlm: " + ", ".join(r.label for r in runs)
    plot(runs, args.x, out, title)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
