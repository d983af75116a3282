#!/usr/bin/env python3
"""Watching a run, end to end through the real binary (CTest label `observe`):

    test_observe.py CASE SHARDLM_BIN SCRATCH_DIR

tensorboard  a run on a small real dataset (resumed once: two event files) read back with TensorBoard's own
             EventAccumulator (run under the test venv's python): every scalar of metrics.jsonl
             is there, at its step, equal as the float TensorBoard stores; --tensorboard off
             writes none; bad values are refused naming the flag.
trace        a tp2 x pp2 run on 4 MPI ranks with --trace-steps 2:3 and a save at step 3: every
             rank file is valid trace-event JSON with the kernels, communicator calls (bytes),
             pipeline exchanges and checkpoint I/O that rank must have; `shardlm trace merge`
             joins them into one timeline; the step-time split of metrics.jsonl is filled.
plot         `shardlm plot` of two runs with each x axis writes PNGs; bad input is refused.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

CASE, SHARDLM, SCRATCH = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
ENV = dict(os.environ, OMP_NUM_THREADS="1")
TINY = ["train", "--model", "tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "4", "--vocab-size", "512",
        "--max-seq-len", "32", "--seq-len", "32", "--micro-batch", "1", "--global-batch", "4", "--warmup", "2",
        "--log-every", "1"]


def run(args, np=1, check=0, timeout=300):
    cmd = (MPIRUN + ["-np", str(np)] if np > 1 else []) + [SHARDLM] + args
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{' '.join(cmd)}\nexit {p.returncode}, expected {check}\n--- stdout\n"
                             f"{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}")
    return p


def expect_error(args, code, *needles):
    p = run(args, check=code)
    for n in needles:
        assert n in p.stderr, f"message lacks {n!r}:\n{p.stderr[-2000:]}"


def records(run_dir):
    return [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]


def fresh(name):
    path = os.path.join(SCRATCH, name)
    shutil.rmtree(path, ignore_errors=True)
    return path


def tensorboard_tag(key, is_eval):
    """The rule of src/train/metrics_log.h (documented in docs/observability.md)."""
    if not is_eval:
        return "train/" + key
    return "val/" + (key[4:] if key.startswith("val_") else key)


def as_float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def prepared_dataset():
    """A small real dataset (tokenizer of 512 pieces, shards), so evaluations have val_bpb."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text, data, prefix = (os.path.join(SCRATCH, n) for n in ("text.txt", "data", "tok"))
    with open(os.path.join(repo, "data", "tinyshakespeare.txt")) as f:
        open(text, "w").write(f.read()[:200000])
    run(["tokenizer", "train", "--input", text, "--vocab-size", "512", "--model-prefix", prefix])
    shutil.rmtree(data, ignore_errors=True)
    run(["data", "prepare", "--input", text, "--tokenizer", prefix + ".model", "--out", data,
         "--val-fraction", "0.1", "--quiet"])
    return data


def case_tensorboard():
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = prepared_dataset()
    out = fresh("tb")
    first = run(TINY + ["--data", data, "--steps", "3", "--eval-every", "2", "--eval-steps", "2", "--out", out])
    assert "run summary: 3 steps" in first.stdout and "best val bpb" in first.stdout, first.stdout
    assert "newest checkpoint " + os.path.join(out, "checkpoints", "step_00000003") in first.stdout, first.stdout
    # Resumes: a second event file.
    run(TINY + ["--data", data, "--steps", "5", "--eval-every", "2", "--eval-steps", "2", "--out", out])
    files = sorted(os.listdir(os.path.join(out, "tensorboard")))
    assert len(files) == 2 and all("tfevents" in f for f in files), files

    acc = EventAccumulator(os.path.join(out, "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tb = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}
    expected = {}
    for rec in records(out):
        is_eval = "val_loss" in rec
        for key, value in rec.items():
            if key == "step" or isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
                continue
            expected.setdefault(tensorboard_tag(key, is_eval), {})[rec["step"]] = value
    assert set(tb) == set(expected), f"tags differ: {sorted(tb)} vs {sorted(expected)}"
    for tag, by_step in expected.items():
        assert set(tb[tag]) == set(by_step), f"{tag}: steps {sorted(tb[tag])} vs {sorted(by_step)}"
        for step, value in by_step.items():
            got = tb[tag][step]
            if value is None:  # NaN / inf in JSON
                assert not math.isfinite(got), f"{tag} step {step}: {got}, metrics has null"
            else:
                assert got == as_float32(value), f"{tag} step {step}: TensorBoard {got!r}, metrics {value!r}"
    for tag in ("train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "train/mfu",
                "train/peak_mem_bytes", "train/compute_s", "val/loss", "val/bpb"):
        assert tag in tb, f"no {tag}"
    assert len(tb["train/loss"]) == 5 and sorted(tb["val/loss"]) == [0, 2, 3, 4, 5], tb["val/loss"]

    off = fresh("tb-off")
    run(TINY + ["--steps", "1", "--out", off, "--tensorboard", "off"])
    assert not os.path.exists(os.path.join(off, "tensorboard")), "--tensorboard off wrote event files"
    expect_error(TINY + ["--out", off, "--tensorboard", "yes"], 2, "--tensorboard must be 'on' or 'off'")
    expect_error(TINY + ["--out", off, "--trace-steps", "3"], 2, "--trace-steps must be A:B")
    expect_error(TINY + ["--out", off, "--trace-steps", "4:2"], 2, "--trace-steps must be A:B with 1 <= A <= B")
    expect_error(TINY + ["--out", off, "--trace-steps", "x:2"], 2, "--trace-steps A")


def events_by_name(doc):
    names = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "X":
            names.setdefault(e["name"], []).append(e)
    return names


def check_rank_file(path, rank):
    doc = json.load(open(path))
    assert doc["otherData"]["shardlm_rank"] == rank and doc["otherData"]["steps"] == "2:3", doc["otherData"]
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    assert any(e["name"] == "process_name" and f"rank {rank} " in e["args"]["name"] for e in meta), meta
    for e in doc["traceEvents"]:
        assert e["pid"] == rank, e
        if e["ph"] == "X":
            for k in ("name", "cat", "ts", "dur", "tid", "args"):
                assert k in e, f"{path}: event lacks {k}: {e}"
            assert e["ts"] >= 0 and e["dur"] >= 0, e
            assert e["args"]["step"] in (2, 3), f"{path}: event outside the window: {e}"
            assert e["cat"] in ("kernel", "comm", "pipeline", "checkpoint", "step"), e
    return doc


def case_trace():
    out = fresh("trace")
    p = run(TINY + ["--tp", "2", "--pp", "2", "--steps", "4", "--save-every", "3", "--trace-steps", "2:3",
                    "--out", out], np=4)
    assert "run summary: 4 steps" in p.stdout, p.stdout[-2000:]
    trace_dir = os.path.join(out, "trace")
    assert sorted(os.listdir(trace_dir)) == [f"rank-{r:05d}.json" for r in range(4)], os.listdir(trace_dir)
    sent, received = 0, 0
    for rank in range(4):
        doc = check_rank_file(os.path.join(trace_dir, f"rank-{rank:05d}.json"), rank)
        names = events_by_name(doc)
        stage = rank // 2  # world rank = pp * (dp * tp) + tp
        for kernel in ("matmul_forward", "matmul_backward", "attention_forward", "layernorm_forward", "adamw_update"):
            assert kernel in names and names[kernel][0]["args"]["family"], f"rank {rank}: no {kernel}"
        assert {e["args"]["step"] for e in names["step.train_step"]} == {2, 3}, names["step.train_step"]
        tp_reduce = names.get("tp.all_reduce", [])
        assert tp_reduce and all(e["args"]["bytes"] > 0 for e in tp_reduce), f"rank {rank}: no tp.all_reduce bytes"
        assert "world.all_reduce" in names, f"rank {rank}: no gradient-norm all-reduce"
        # 1F1B with 4 micro-batches: stage 0 sends activations, stage 1 sends gradients back.
        mine = ("pipeline.send_activation", "pipeline.send_activation_recv_grad") if stage == 0 else \
               ("pipeline.recv_activation", "pipeline.send_grad")
        for name in mine:
            assert name in names, f"rank {rank} (stage {stage}): no {name} in {sorted(names)}"
            assert all(e["args"]["peer"] == 1 - stage and e["args"]["bytes"] == 64 * 32 * 4 * (2 if "recv_grad" in name else 1)
                       for e in names[name]), names[name][:2]
        sent += sum(len(names.get(n, [])) for n in ("pp.send", "pp.send_recv"))
        received += sum(len(names.get(n, [])) for n in ("pp.recv", "pp.send_recv"))
        # Step 3 is followed by a save: its I/O is in the window.
        for name in ("checkpoint.save", "checkpoint.write_rank_file", "checkpoint.write_block"):
            assert name in names and all(e["args"]["step"] == 3 for e in names[name]), f"rank {rank}: no {name}"
        assert all(e["args"]["bytes"] > 0 for e in names["checkpoint.write_block"])
    assert sent > 0 and received > 0, (sent, received)

    merged = os.path.join(SCRATCH, "trace-merged.json")
    m = run(["trace", "merge", trace_dir, "-o", merged])
    assert "merged 4 rank trace(s)" in m.stdout, m.stdout
    doc = json.load(open(merged))
    pids = {e["pid"] for e in doc["traceEvents"]}
    assert pids == {0, 1, 2, 3}, pids
    assert sum(1 for e in doc["traceEvents"] if e["name"] == "process_name") == 4
    total = sum(len(json.load(open(os.path.join(trace_dir, f)))["traceEvents"]) for f in os.listdir(trace_dir))
    assert len(doc["traceEvents"]) == total, (len(doc["traceEvents"]), total)
    # Merging a file twice, or a file that is no rank trace, is refused naming it.
    dup = run(["trace", "merge", os.path.join(trace_dir, "rank-00000.json"),
               os.path.join(trace_dir, "rank-00000.json"), "-o", merged], check=1)
    assert "are both rank 0" in dup.stderr, dup.stderr
    bad = run(["trace", "merge", os.path.join(out, "run_config.ini"), "-o", merged], check=1)
    assert "run_config.ini is not JSON" in bad.stderr, bad.stderr

    # The split: every logged step has it, communication (tp) and the bubble (pp) are non-zero;
    # a rank's CPU seconds per step are positive and no more than all cores for the step.
    steps = [r for r in records(out) if "loss" in r]
    assert len(steps) == 4
    for r in steps:
        assert r["compute_s"] > 0 and r["comm_s"] > 0 and r["bubble_s"] > 0, r
        step_s = r["compute_s"] + r["comm_s"] + r["bubble_s"]
        assert 0 < r["cpu_s"] <= 1.1 * os.cpu_count() * step_s + 0.01, r
        assert r["peak_mem_bytes"] > 1 << 20, r


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def case_plot():
    a, b = fresh("plot-a"), fresh("plot-b")
    run(TINY + ["--steps", "4", "--eval-every", "2", "--lr", "1e-3", "--out", a])
    run(TINY + ["--steps", "4", "--eval-every", "2", "--lr", "3e-3", "--out", b])
    for x in ("tokens", "steps", "time"):
        png = os.path.join(SCRATCH, f"plot-{x}.png")
        p = run(["plot", a, b, "-o", png, "--x", x])
        assert p.stdout.strip() == png, p.stdout
        w, h = png_size(png)
        assert w >= 1000 and h >= 700, (w, h)
    p = run(["plot", a])  # default: RUN_DIR/plot.png
    assert os.path.isfile(os.path.join(a, "plot.png")), p.stdout
    missing = run(["plot", os.path.join(SCRATCH, "no-such-run")], check=1)
    assert "no-such-run does not exist (give a run directory with a metrics.jsonl" in missing.stderr, missing.stderr
    usage = run(["plot", a, "--x", "epochs"], check=2)
    assert "invalid choice: 'epochs'" in usage.stderr, usage.stderr


if __name__ == "__main__":
    os.makedirs(SCRATCH, exist_ok=True)
    globals()["case_" + CASE]()
    print(f"observe {CASE}: ok")
