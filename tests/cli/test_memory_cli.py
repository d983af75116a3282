#!/usr/bin/env python3
"""The memory preflight and `shardlm plan` through the real binary (issues 12 and 18; CTest
label `cli`).

    test_memory_cli.py CASE SHARDLM_BIN SCRATCH_DIR

Cases: refused (the issue's gpt2-xl command is refused quickly, exit 1, on 1 and 2 ranks),
just-under (a fake MemAvailable 1% above the need runs, 1% below is refused), cgroup (a real
memory cgroup's limit is honoured both ways; exit 77 = skipped where none can be made), and
plan-best (the plan's best command runs and its measured allocator peak is within 10% of the
plan's prediction), plan-model-section (for a file holding only a [model] section the printed
command is `--model FILE` and runs, its peak equal to the prediction), and plan-network
(--inter-node-bw and comm_bytes_per_stage).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_cli import CASE, ENV, MPIRUN, SCRATCH, SHARDLM, expect_error, run, tiny  # noqa: E402

SKIP = 77
REFUSAL = ["this run does not fit in memory", "parameters", "gradients", "optimizer",
           "activations", "free of host memory", "--memory-check off"]


def planned(layout_flags, global_batch, extra=()):
    """The plan's prediction for the tiny model's layout {tp, pp, dp, zero, micro_batch}."""
    p = run(["plan", "--json", "--top", "100000", "--mem-per-device", "1TiB", "--device", "cpu",
             "--global-batch", str(global_batch), "--gpus-per-node", str(layout_flags.get("world", 1))]
            + tiny_model_flags() + list(extra), check=0)
    plan = json.loads(p.stdout)
    for c in plan["ranked"]:
        if all(c[k] == v for k, v in layout_flags.items() if k != "world") and c["pp_layers"] == [] \
                and c["recompute"] == "none":
            return c
    raise AssertionError(f"layout {layout_flags} not in the plan")


def tiny_model_flags():
    """The tiny run as `shardlm plan` takes it: its effective config as a file."""
    path = os.path.join(SCRATCH, "tiny.ini")
    if not os.path.exists(path):
        p = run(["train"] + tiny() + ["--print-config", "--out", os.path.join(SCRATCH, "print")], check=0)
        with open(path, "w") as f:
            f.write(p.stdout)
    return ["--model", path, "--seq-len", "32"]


def fake_meminfo(name, available_bytes):
    path = os.path.join(SCRATCH, name)
    with open(path, "w") as f:
        f.write(f"MemTotal: 99999999 kB\nMemAvailable: {int(available_bytes) // 1024} kB\n")
    return path


def train(out, env=None, np=1, extra=()):
    cmd = (MPIRUN + ["-np", str(np)] if np > 1 else []) + [SHARDLM, "train"] + tiny(steps=2, out=out) + list(extra)
    return subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, timeout=300)


def case_refused():
    # The command: refused before anything is allocated; the timeout guards a hang.
    for np in (1, 2):
        out = os.path.join(SCRATCH, f"xl{np}")
        args = ["train", "--model", "gpt2-xl", "--seq-len", "1024", "--micro-batch", "1", "--steps", "1",
                "--out", out]
        p = expect_error(args, *REFUSAL, "needs", "shardlm train --model gpt2-xl", np=np, code=1)
        assert "step 1" not in p.stdout, p.stdout[-2000:]


def case_just_under():
    need = planned({"tp": 1, "pp": 1, "dp": 1, "zero": 0, "micro_batch": 2}, 4)["need_bytes"]
    under = dict(ENV, SHARDLM_MEMINFO=fake_meminfo("meminfo_under", need * 0.99))
    p = train(os.path.join(SCRATCH, "under"), env=under)
    assert p.returncode == 1, f"exit {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    for n in REFUSAL:
        assert n in p.stderr, f"message lacks {n!r}:\n{p.stderr}"
    over = dict(ENV, SHARDLM_MEMINFO=fake_meminfo("meminfo_over", need * 1.01))
    p = train(os.path.join(SCRATCH, "over"), env=over)
    assert p.returncode == 0, f"exit {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    # Two ranks on this node share it: the same MemAvailable is too little for both.
    p = train(os.path.join(SCRATCH, "over2"), env=over, np=2)
    assert p.returncode == 1 and "shared by 2 rank(s)" in p.stderr, p.stderr[-2000:]


def make_cgroup(limit):
    """A fresh memory cgroup with `limit` bytes (v2, else v1); None where none can be made."""
    name = f"shardlm-test-{os.getpid()}"
    for root, limit_file in (("/sys/fs/cgroup", "memory.max"), ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")):
        path = os.path.join(root, name)
        try:
            if root == "/sys/fs/cgroup" and not os.path.exists(os.path.join(root, "cgroup.controllers")):
                continue
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, limit_file), "w") as f:
                f.write(str(int(limit)))
            return path
        except OSError as e:
            print(f"cannot make a memory cgroup under {root}: {e}")
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def train_in_cgroup(path, out):
    shell = f'echo $$ > {path}/cgroup.procs && exec "$@"'
    cmd = ["sh", "-c", shell, "sh", SHARDLM, "train"] + tiny(steps=2, out=out)
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)


def case_cgroup():
    need = planned({"tp": 1, "pp": 1, "dp": 1, "zero": 0, "micro_batch": 2}, 4)["need_bytes"]
    # Under the limit, the cgroup is also charged with this process's libraries and page cache
    # before the check reads its usage: the fitting case leaves room for that.
    for limit, fits in ((need * 0.9, False), (need * 2, True)):
        path = make_cgroup(limit)
        if path is None:
            print("skipped: no memory cgroup can be made here (not root, or the cgroup filesystem is read-only); "
                  "test_memory_plan's HostMemory test covers the parsing with fake files")
            sys.exit(SKIP)
        try:
            p = train_in_cgroup(path, os.path.join(SCRATCH, f"cg{fits}"))
        finally:
            os.rmdir(path)
        if fits:
            # Not refused, and not killed by the limit either: the margin covers the RSS.
            assert p.returncode == 0, f"exit {p.returncode} under a {limit:.0f}-byte limit:\n{p.stderr[-2000:]}"
        else:
            assert p.returncode == 1 and "memory cgroup" in p.stderr, f"exit {p.returncode}:\n{p.stderr[-2000:]}"


def case_plan_best():
    p = run(["plan", "--json", "--device", "cpu", "--gpus-per-node", "2", "--global-batch", "4",
             "--mem-per-device", "4GiB"] + tiny_model_flags(), check=0)
    plan = json.loads(p.stdout)
    best = plan["ranked"][0]
    words = best["command"].split()
    assert words[:3] == ["mpirun", "-n", "2"] and words[3] == "shardlm", words
    out = os.path.join(SCRATCH, "best")
    cmd = MPIRUN + ["-np", "2", SHARDLM] + words[4:] + ["--steps", "2", "--out", out]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\nexit {r.returncode}\n{r.stderr[-2000:]}"
    steps = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line]
    measured = max(steps[-1]["peak_alloc_bytes"])
    predicted = best["peak_bytes"]["total"]
    print(f"best {best['command']}: predicted {predicted}, measured {steps[-1]['peak_alloc_bytes']}")
    assert abs(measured - predicted) <= 0.10 * predicted, (measured, predicted)


def case_plan_model_section():
    """`shardlm plan --model FILE` where FILE holds only the [model] section (no settings): the
    printed command must run as it is (for two steps, on its ranks) and use the planned memory."""
    with open(tiny_model_flags()[1]) as f:
        text = f.read()
    path = os.path.join(SCRATCH, "model-only.ini")
    with open(path, "w") as f:
        f.write(text[text.index("[model]"):])
    p = run(["plan", "--json", "--device", "cpu", "--gpus-per-node", "2", "--global-batch", "4",
             "--mem-per-device", "4GiB", "--model", path, "--seq-len", "32"], check=0)
    best = json.loads(p.stdout)["ranked"][0]
    words = best["command"].split()
    assert words[:4] == ["mpirun", "-n", "2", "shardlm"] and words[5:7] == ["--model", path], words
    out = os.path.join(SCRATCH, "model-only")
    cmd = MPIRUN + ["-np", "2", SHARDLM] + words[4:] + ["--steps", "2", "--out", out]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\nexit {r.returncode}\n{r.stderr[-2000:]}"
    steps = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line]
    assert len(steps) == 2, steps
    assert max(steps[-1]["peak_alloc_bytes"]) == best["peak_bytes"]["total"], (steps[-1], best)
    with open(os.path.join(out, "run_config.ini")) as f:  # the run records the model file
        assert f"model = {path}\n" in f.read()


def case_plan_network():
    """--inter-node-bw sets the inter-node rate the step time uses; comm_bytes_per_stage is what
    that time is made of: dp2 over 2 nodes x 1 sends its DP and world bytes across at 5 MB/s."""
    p = run(["plan", "--json", "--top", "100000", "--device", "cpu", "--nodes", "2",
             "--global-batch", "4", "--inter-node-bw", "40mbit"] + tiny_model_flags(), check=0)
    plan = json.loads(p.stdout)
    assert plan["inter_node_bw"] == 5e6, plan["inter_node_bw"]
    # The cpu rates come from timing the model's kernels here, unless --no-calibrate.
    assert plan["rates"].startswith("measured here"), plan["rates"]
    # (No upper bound on the efficiency: the sanitizer build's FMA probe runs below the peak.)
    assert plan["efficiency"] > 0 and 0 <= plan["thread_scaling"] <= 1, plan
    ref = json.loads(run(["plan", "--json", "--top", "1", "--device", "cpu", "--global-batch", "4",
                          "--no-calibrate"] + tiny_model_flags(), check=0).stdout)
    assert "not measured here" in ref["rates"] and ref["efficiency"] == 0.78, ref["rates"]
    dp2 = [c for c in plan["ranked"] if c["dp"] == 2 and c["zero"] == 0]
    assert dp2, "no dp2 layout"
    (b,) = dp2[0]["comm_bytes_per_stage"]
    assert b["tp"] == 0 and b["pp"] == 0 and b["dp"] > 100_000, b
    assert abs(dp2[0]["comm_s"] - (b["dp"] + b["world"]) / 5e6) < 1e-9, (dp2[0]["comm_s"], b)
    expect_error(["plan", "--global-batch", "4", "--inter-node-bw", "fast"] + tiny_model_flags(),
                 "--inter-node-bw", "'fast'", code=2)


if __name__ == "__main__":
    os.makedirs(SCRATCH, exist_ok=True)
    globals()["case_" + CASE.replace("-", "_")]()
    print(f"{CASE}: ok")
