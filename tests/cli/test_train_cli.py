#!/usr/bin/env python3
"""End-to-end tests of `shardlm train` through its command line (CTest label `cli`).

    test_train_cli.py CASE SHARDLM_BIN SCRATCH_DIR

Each CASE runs the real binary (under mpirun where it needs several ranks) on synthetic tokens
or on a small prepared dataset, and checks exit codes, messages, metrics and checkpoints.
Checkpoints are compared with `shardlm ckpt consolidate` + h5py, exactly where the claim is
bit-exactness.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

CASE, SHARDLM, SCRATCH = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
ENV = dict(os.environ, OMP_NUM_THREADS="1")
# A tiny synthetic run: seconds for a few steps.
TINY_FLAGS = {"model": "tiny", "n-layer": 2, "n-embd": 64, "n-head": 4, "vocab-size": 512, "max-seq-len": 32,
              "seq-len": 32, "micro-batch": 2, "global-batch": 4, "lr": "1e-3", "warmup": 2, "log-every": 1}


def tiny(**overrides):
    """TINY_FLAGS as arguments, with overrides (n_layer=3 -> --n-layer 3; None drops a flag)."""
    flags = dict(TINY_FLAGS)
    flags.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return [x for k, v in flags.items() if v is not None for x in (f"--{k}", str(v))]


TINY = tiny()


def run(args, np=1, check=None, timeout=300):
    cmd = (MPIRUN + ["-np", str(np)] if np > 1 else []) + [SHARDLM] + args
    # errors="replace": a refusal may quote the damaged bytes it read.
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, errors="replace", timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{' '.join(cmd)}\nexit {p.returncode}, expected {check}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}")
    return p


def expect_error(args, *needles, np=1, code=None):
    p = run(args, np=np)
    assert p.returncode != 0, f"expected failure: {args}\n{p.stdout[-2000:]}"
    if code is not None:
        assert p.returncode == code, f"exit {p.returncode}, expected {code}: {p.stderr[-2000:]}"
    text = p.stdout + p.stderr
    for n in needles:
        assert n in text, f"message lacks {n!r}:\n{text[-3000:]}"
    return p


def consolidated(run_dir, tag):
    out = os.path.join(SCRATCH, f"{tag}.h5")
    run(["ckpt", "consolidate", os.path.join(run_dir, "checkpoints"), out], check=0)
    with h5py.File(out, "r") as f:
        tensors = {}
        f.visititems(lambda name, obj: tensors.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("param", "exp_avg", "exp_avg_sq") else None)
    return tensors


def assert_identical(a, b, what):
    assert a.keys() == b.keys(), f"{what}: different tensors"
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{what}: {k} differs (max {np.max(np.abs(a[k] - b[k]))})"


def losses(run_dir):
    out = {}
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        m = json.loads(line)
        if "loss" in m:
            out[m["step"]] = m["loss"]
    return out


def heartbeat_step(path):
    """The step a rank's progress file reports (0 before the first one)."""
    try:
        return int(open(path).read().split()[0].split("=")[1])
    except (OSError, IndexError, ValueError):
        return 0


def case_config_errors():
    d = os.path.join(SCRATCH, "run")
    expect_error(["train", "--out", d, "--no-such-flag", "1"], "no-such-flag", code=2)
    expect_error(["train", "--steps", "3"], "--out", code=2)
    expect_error(["train", "--out", d, "--model", "gpt5"], "unknown model preset 'gpt5'")
    expect_error(["train", "--out", d] + tiny(n_embd=66), "n_embd (66) must be divisible by n_head (4)")
    expect_error(["train", "--out", d] + tiny(seq_len=64), "sequence length 64", "max_seq_len 32")
    expect_error(["train", "--out", d] + tiny(global_batch_tokens=128), "contradict")
    expect_error(["train", "--out", d] + tiny(global_batch=3), "--global-batch 3", "not a multiple")
    expect_error(["train", "--out", d] + TINY + ["--on-nan", "maybe"], "--on-nan")
    bad = os.path.join(SCRATCH, "bad.ini")
    open(bad, "w").write("lr = 1e-3\nlearning-rate = 5\n")
    expect_error(["train", "--out", d, "--config", bad], bad, "learning-rate")
    expect_error(["train", "--out", d, "--config", os.path.join(SCRATCH, "missing.ini")], "missing.ini")
    # Layouts that do not divide the model are refused before training, on every rank.
    expect_error(["train", "--out", d] + TINY + ["--tp", "3"], "world size 2", "tp=3", np=2)
    expect_error(["train", "--out", d] + tiny(n_head=2, tp=4), "n_head 2 is not divisible by tp", np=4)
    expect_error(["train", "--out", d] + TINY + ["--pp", "2", "--pp-layers", "1,2"], "--pp-layers sums to 3", np=2)
    expect_error(["train", "--out", d] + TINY + ["--pp", "4"], "pp 4 is larger than n_layer 2", np=4)
    # A config that differs between ranks is an error naming the ranks, not a hang.
    cmd = MPIRUN + ["-np", "1", SHARDLM, "train", "--out", d] + tiny(lr="1e-3") + [":", "-np", "1", SHARDLM, "train", "--out", d] + tiny(lr="2e-3")
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "differs between ranks" in p.stdout + p.stderr and "rank 1" in p.stdout + p.stderr, p.stderr[-2000:]
    # Help at every level.
    assert "--global-batch" in run(["train", "--help"], check=0).stdout


def case_resume_bit_exact():
    straight, split = os.path.join(SCRATCH, "straight"), os.path.join(SCRATCH, "split")
    run(["train", "--out", straight] + tiny(steps=8), check=0)
    run(["train", "--out", split] + tiny(steps=8, exit_after_minutes="0.0000001"), check=75)
    assert os.path.exists(os.path.join(split, "checkpoints", "step_00000001")), os.listdir(os.path.join(split, "checkpoints"))
    run(["train", "--out", split] + tiny(steps=8, resume="auto"), check=0)
    a, b = losses(straight), losses(split)
    for step in range(2, 9):
        assert a[step] == b[step], f"step {step}: {a[step]} vs {b[step]}"
    assert_identical(consolidated(straight, "straight"), consolidated(split, "split"), "resume on the same layout")
    # Resuming with a different model is refused, naming the difference.
    expect_error(["train", "--out", split, "--steps", "9"] + tiny(n_layer=3), "n_layer: 2 -> 3")


def case_signal_requeue():
    """SIGTERM during training: every rank saves at the same step, exit 75; resuming finishes
    with weights bit-identical to an uninterrupted run (2 ranks, tp2)."""
    straight, stopped = os.path.join(SCRATCH, "straight"), os.path.join(SCRATCH, "stopped")
    args = tiny(steps=60, tp=2)
    run(["train", "--out", straight] + args, np=2, check=0)
    cmd = MPIRUN + ["-np", "2", SHARDLM, "train", "--out", stopped] + args
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Wait until training is under way, then signal one rank (as SLURM would signal the step).
    progress = os.path.join(stopped, "progress", "rank_1.txt")
    deadline = time.time() + 120
    while time.time() < deadline and heartbeat_step(progress) < 3:
        time.sleep(0.05)
    pids = subprocess.run(["pgrep", "-f", "--", f"--out {stopped}"], capture_output=True, text=True).stdout.split()
    ranks = [p for p in pids if int(p) != proc.pid]
    assert ranks, "no rank processes found"
    os.kill(int(ranks[-1]), signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, f"exit {proc.returncode}\n{out[-3000:]}"
    assert "stop requested (signal 15)" in out, out[-2000:]
    steps = sorted(os.listdir(os.path.join(stopped, "checkpoints")))
    assert any(s.startswith("step_") for s in steps), steps
    run(["train", "--out", stopped, "--resume", "auto"] + args, np=2, check=0)
    assert_identical(consolidated(straight, "straight"), consolidated(stopped, "stopped"), "after SIGTERM and resume")


def case_kill_during_save():
    """kill -9 at random moments of a run that saves every step: the newest committed
    checkpoint always verifies, and the run resumes from it."""
    d = os.path.join(SCRATCH, "killed")
    args = tiny(n_embd=256, vocab_size=4096, steps=1000, save_every=1, keep_last=2)
    rng = np.random.default_rng(7)
    for trial in range(4):
        proc = subprocess.Popen([SHARDLM, "train", "--out", d] + args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill at a random moment after the first commit (on a loaded machine the first save
        # can take longer than the random delay, and then there is nothing to verify yet).
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(os.path.join(d, "checkpoints", "latest")):
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0, 2.0)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        p = run(["ckpt", "verify", os.path.join(d, "checkpoints")])
        assert p.returncode == 0, f"trial {trial}: latest checkpoint does not verify:\n{p.stdout}\n{p.stderr}"
    committed = [s for s in os.listdir(os.path.join(d, "checkpoints")) if s.startswith("step_") and not s.endswith(".tmp")]
    assert 1 <= len(committed) <= 3, committed  # retention: keep-last 2 (+ the one being replaced)
    # A resume starts from the newest committed checkpoint.
    out = run(["train", "--out", d] + tiny(n_embd=256, vocab_size=4096, steps=1000, exit_after_minutes="0.0000001")).stdout
    assert "resumed from" in out, out[-2000:]


COMPARE = os.path.join(REPO, "tests", "launcher", "compare_checkpoints.sh")


def committed_steps(run_dir):
    root = os.path.join(run_dir, "checkpoints")
    return sorted(n for n in os.listdir(root) if n.startswith("step_") and not n.endswith(".tmp"))


def assert_same_checkpoints(a, b, what):
    """Every committed checkpoint of run a equals run b's, file by file (compare_checkpoints.sh)."""
    steps = committed_steps(a)
    assert steps and steps == committed_steps(b), f"{what}: {steps} vs {committed_steps(b)}"
    for step in steps:
        p = subprocess.run([COMPARE, os.path.join(a, "checkpoints", step), os.path.join(b, "checkpoints", step)],
                           capture_output=True, text=True)
        assert p.returncode == 0, f"{what}: {step} differs:\n{p.stdout}{p.stderr}"


def case_async_save():
    """--async-save writes the same checkpoints, bit for bit, as a synchronous save (dp2, ZeRO-1
    and -3, tp2 x pp2); a stop with a save in flight exits 75 with it committed, and the resume from it
    continues bit-exact."""
    # dp2 (the writer thread copies the snapshot while the next step runs), ZeRO-1 (its update
    # gathers parameters), ZeRO-3 (copied on the training thread) and tp2 x pp2.
    for layout, np_ in (({}, 2), ({"zero": 1}, 2), ({"zero": 3}, 2), ({"tp": 2, "pp": 2}, 4)):
        tag = "_".join(f"{k}{v}" for k, v in layout.items()) or "dp2"
        sync, back = os.path.join(SCRATCH, f"sync_{tag}"), os.path.join(SCRATCH, f"async_{tag}")
        args = tiny(steps=8, save_every=2, keep_last=10, **layout)
        run(["train", "--out", sync] + args, np=np_, check=0)
        out = run(["train", "--out", back] + args + ["--async-save"], np=np_, check=0).stdout
        assert "s in the background; training stalled" in out, out[-2000:]
        assert_same_checkpoints(sync, back, f"{tag}: async vs sync")
        # Stopped after step 1 while its save is in flight (every step saves), then resumed.
        split = os.path.join(SCRATCH, f"split_{tag}")
        stop = tiny(steps=8, save_every=1, keep_last=10, exit_after_minutes="0.0000001", **layout)
        run(["train", "--out", split] + stop + ["--async-save"], np=np_, check=75)
        assert committed_steps(split) == ["step_00000001"], committed_steps(split)
        run(["train", "--out", split] + tiny(steps=8, save_every=2, keep_last=10, **layout) + ["--async-save"],
            np=np_, check=0)
        for step in ("step_00000004", "step_00000008"):
            p = subprocess.run([COMPARE, os.path.join(sync, "checkpoints", step), os.path.join(split, "checkpoints", step)],
                               capture_output=True, text=True)
            assert p.returncode == 0, f"{tag}: resumed {step} differs:\n{p.stdout}{p.stderr}"
    # A bare --async-save means on; anything but on/off is refused.
    expect_error(["train", "--out", os.path.join(SCRATCH, "bad")] + TINY + ["--async-save=maybe"],
                 "--async-save", code=2)
    assert "--async-save" in run(["train", "--help"], check=0).stdout


def case_async_stop():
    """SIGTERM while background saves run (a bigger model that saves every step): exit 75 with
    the stop step's checkpoint committed; the resume ends bit-identical to an uninterrupted run."""
    straight, stopped = os.path.join(SCRATCH, "straight"), os.path.join(SCRATCH, "stopped")
    args = tiny(n_embd=256, vocab_size=4096, steps=40, save_every=1, keep_last=2)
    run(["train", "--out", straight] + args, np=2, check=0)
    cmd = MPIRUN + ["-np", "2", SHARDLM, "train", "--out", stopped, "--async-save"] + args
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = os.path.join(stopped, "checkpoints")
    deadline = time.time() + 120
    in_flight = lambda: os.path.isdir(ckpt) and any(n.endswith(".tmp") and n.startswith("step_") for n in os.listdir(ckpt))
    while time.time() < deadline and not (heartbeat_step(os.path.join(stopped, "progress", "rank_0.txt")) >= 3 and in_flight()):
        time.sleep(0.002)
    assert in_flight(), "no background save seen in flight"
    pids = subprocess.run(["pgrep", "-f", "--", f"--out {stopped}"], capture_output=True, text=True).stdout.split()
    ranks = [p for p in pids if int(p) != proc.pid]
    assert ranks, "no rank processes found"
    os.kill(int(ranks[0]), signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, f"exit {proc.returncode}\n{out[-3000:]}"
    stop_step = int(out.split("stop requested (signal 15) at step ")[1].split(":")[0])
    latest = open(os.path.join(ckpt, "latest")).read().strip()
    assert latest == "step_%08d" % stop_step, (latest, stop_step)
    assert not any(n.endswith(".tmp") for n in os.listdir(ckpt)), os.listdir(ckpt)
    run(["ckpt", "verify", os.path.join(ckpt, latest)], check=0)
    run(["train", "--out", stopped, "--async-save"] + args, np=2, check=0)
    p = subprocess.run([COMPARE, os.path.join(straight, "checkpoints", "step_00000040"),
                        os.path.join(stopped, "checkpoints", "step_00000040")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def case_async_disk_full():
    """A background write that fails (the file-size limit stands in for a full disk): the run
    fails with an error naming the file; the previous checkpoint stays `latest` and verifies."""
    import resource
    d = os.path.join(SCRATCH, "full")
    run(["train", "--out", d] + tiny(steps=2), check=0)
    rank_file_bytes = os.path.getsize(os.path.join(d, "checkpoints", "step_00000002", "rank_00000.h5"))
    limit = rank_file_bytes // 4  # the rank file cannot be written; the small files can

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    cmd = [SHARDLM, "train", "--out", d, "--async-save", "--tensorboard", "off"] + tiny(steps=6, save_every=2)
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=limited)
    text = p.stdout + p.stderr
    assert p.returncode == 1, f"exit {p.returncode}\n{text[-3000:]}"
    assert "saving checkpoint step 4 (writing rank files)" in text and "step_00000004.tmp/rank_00000.h5" in text, text[-3000:]
    assert open(os.path.join(d, "checkpoints", "latest")).read().strip() == "step_00000002"
    run(["ckpt", "verify", os.path.join(d, "checkpoints")], check=0)
    # Nothing lost: without the limit the run resumes from step 2 and finishes.
    out = run(["train", "--out", d, "--async-save"] + tiny(steps=6, save_every=2), check=0).stdout
    assert "resumed from" in out and "step_00000002" in out, out[-2000:]


def case_corrupt_checkpoint():
    d = os.path.join(SCRATCH, "corrupt")
    run(["train", "--out", d] + tiny(steps=2), check=0)
    ckpt = os.path.join(d, "checkpoints", "step_00000002")
    rank_file = os.path.join(ckpt, "rank_00000.h5")
    with h5py.File(rank_file, "r") as f:
        ds = f["param/h.0.mlp.c_fc.weight"]
        offset = ds.id.get_offset()
    with open(rank_file, "r+b") as f:
        f.seek(offset + 100)
        b = f.read(1)
        f.seek(offset + 100)
        f.write(bytes([b[0] ^ 0xFF]))
    # The whole-file checksum refuses it before HDF5 or any tensor is read.
    expect_error(["ckpt", "verify", ckpt], "rank_00000.h5: whole-file CRC32C is")
    expect_error(["train", "--out", d] + tiny(steps=4), "rank_00000.h5: whole-file CRC32C is", "damaged")
    # Truncated rank file.
    size = os.path.getsize(rank_file)
    with open(rank_file, "r+b") as f:
        f.truncate(size // 2)
    expect_error(["ckpt", "verify", ckpt], "rank_00000.h5")


def case_nan():
    d = os.path.join(SCRATCH, "nan")
    p = expect_error(["train", "--out", d] + tiny(steps=5, grad_clip=0, lr="1e30", min_lr="1e29"), "non-finite", "at step 1")
    d2 = os.path.join(SCRATCH, "nan_skip")
    run(["train", "--out", d2] + tiny(steps=4, grad_clip=0, on_nan="skip", lr="1e30", min_lr="1e29"), check=0)
    skipped = [json.loads(l) for l in open(os.path.join(d2, "metrics.jsonl")) if '"skipped"' in l]
    assert skipped and skipped[0]["step"] == 2, skipped


def case_data_run():
    """A real dataset: tokenizer, shards, training with eval (val loss and bits per byte),
    and a refused shard that was truncated."""
    data = os.path.join(SCRATCH, "data")
    text = os.path.join(SCRATCH, "text.txt")
    with open(os.path.join(REPO, "data", "tinyshakespeare.txt")) as f:
        open(text, "w").write(f.read()[:200000])
    run(["tokenizer", "train", "--input", text, "--vocab-size", "512", "--model-prefix", os.path.join(SCRATCH, "tok")], check=0)
    run(["data", "prepare", "--input", text, "--tokenizer", os.path.join(SCRATCH, "tok.model"), "--out", data, "--val-fraction", "0.1", "--quiet"], check=0)
    d = os.path.join(SCRATCH, "run")
    out = run(["train", "--out", d, "--data", data] + tiny(vocab_size=None, steps=6, eval_every=3, eval_steps=2), check=0).stdout
    evals = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if "val_loss" in l]
    assert [e["step"] for e in evals] == [0, 3, 6], evals
    assert all(0 < e["val_bpb"] < 20 for e in evals), evals
    assert "vocab_size=512" in open(os.path.join(d, "run_config.ini")).read()
    steps = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if '"loss"' in l]
    assert set(steps[0]) >= {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "mfu", "elapsed_s"}, steps[0]
    shard = os.path.join(data, "train_00000.bin")
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 10)
    expect_error(["train", "--out", os.path.join(SCRATCH, "run2"), "--data", data] + tiny(vocab_size=None, steps=1), "train_00000.bin")


def case_legacy_checkpoint():
    """A checkpoint written by main before the redesign (tests/fixtures/checkpoint_v1_main_e9a1530:
    2 ranks, pp 2, ZeRO-1, no `family` in its config) verifies, resumes on one rank and on tp 2
    exactly as that commit continued it, and generates."""
    fixture = os.path.join(REPO, "tests", "fixtures", "checkpoint_v1_main_e9a1530")
    ckpt = os.path.join(fixture, "step_00000003")
    run(["ckpt", "verify", ckpt], check=0)
    args = ["--model", "tiny", "--n-layer", "2", "--n-head", "2", "--n-embd", "16", "--vocab-size", "100",
            "--max-seq-len", "8", "--seq-len", "8", "--micro-batch", "2", "--global-batch", "4", "--steps", "5",
            "--resume", ckpt]
    expected = {}
    for line in open(os.path.join(fixture, "expected_metrics.jsonl")):
        m = json.loads(line)
        if "loss" in m:
            expected[m["step"]] = m["loss"]
    with h5py.File(os.path.join(fixture, "expected_step5.h5"), "r") as f:
        want = {}
        f.visititems(lambda name, obj: want.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) and name.split("/")[0] in ("param", "exp_avg", "exp_avg_sq") else None)
    assert len(want) > 20, sorted(want)
    for tag, np_, extra in (("one_rank", 1, []), ("tp2", 2, ["--tp", "2"])):
        d = os.path.join(SCRATCH, tag)
        run(["train", "--out", d] + args + extra, np=np_, check=0)
        got = losses(d)
        for step, loss in expected.items():
            # The metrics of e9a1530 carry 6 significant digits.
            assert abs(got[step] - loss) <= 2e-5 * abs(loss), f"{tag} step {step}: {got[step]} vs {loss}"
        have = consolidated(d, tag)
        assert have.keys() == want.keys(), f"{tag}: tensors {sorted(set(have) ^ set(want))}"
        for k in want:
            assert np.allclose(have[k], want[k], rtol=1e-5, atol=1e-7), f"{tag}: {k} differs by {np.max(np.abs(have[k] - want[k]))}"
        out = run(["generate", "--checkpoint", d, "--prompt-ids", "1 2 3", "--max-tokens", "4", "--temperature", "0"], check=0).stdout
        assert out.strip(), "generate printed nothing"


def metrics_lines(run_dir):
    """Every line of a run's metrics with the timing keys dropped (they differ between runs)."""
    timing = ("tokens_per_s", "mfu", "elapsed_s", "compute_s", "comm_s", "bubble_s", "cpu_s",
              "peak_mem_bytes")
    return [{k: v for k, v in json.loads(l).items() if k not in timing} for l in open(os.path.join(run_dir, "metrics.jsonl"))]


def config_hash(stdout):
    line = next(l for l in stdout.splitlines() if l.startswith("--- effective config"))
    return line


def case_config_roundtrip():
    """The run_config.ini a run writes is --config input: fed back with another --out it gives
    the same effective config (text and hash) and the same run, bit for bit (2 ranks, tp 2)."""
    first, again = os.path.join(SCRATCH, "first"), os.path.join(SCRATCH, "again")
    out1 = run(["train", "--out", first] + tiny(steps=6, tp=2, save_every=3, eval_every=3, lr="3e-3", min_lr="3e-4"), np=2, check=0).stdout
    ini = os.path.join(first, "run_config.ini")
    out2 = run(["train", "--config", ini, "--out", again], np=2, check=0).stdout
    text1, text2 = open(ini).read(), open(os.path.join(again, "run_config.ini")).read()
    assert text1 == text2, f"effective configs differ:\n{text1}\n---\n{text2}"
    assert config_hash(out1) == config_hash(out2), (config_hash(out1), config_hash(out2))
    a, b = metrics_lines(first), metrics_lines(again)
    assert a == b and len(a) == 6 + 3, f"metrics differ:\n{a}\n{b}"
    assert_identical(consolidated(first, "first"), consolidated(again, "again"), "run again from its run_config.ini")
    # What --print-config prints is that text (for the launcher), and it trains nothing.
    printed = run(["train", "--config", ini, "--out", os.path.join(SCRATCH, "printed"), "--print-config", "--world-size", "2"], check=0).stdout
    assert printed == text1, printed
    assert not os.path.exists(os.path.join(SCRATCH, "printed")), "--print-config wrote a run directory"
    expect_error(["train", "--config", ini, "--out", os.path.join(SCRATCH, "ws"), "--world-size", "2"],
                 "--world-size", "--print-config", code=2)
    # The [model] record is checked: settings that give another model are refused, by name.
    expect_error(["train", "--config", ini, "--out", os.path.join(SCRATCH, "other"), "--n-layer", "3"],
                 ini, "[model]", "n_layer: 2 -> 3", code=2)
    # The sectioned run_config.ini of earlier versions is not --config input: a clear refusal.
    old = os.path.join(SCRATCH, "old.ini")
    open(old, "w").write(LEGACY_RUN_CONFIG)
    expect_error(["train", "--config", old, "--out", os.path.join(SCRATCH, "old")], old, "section [device]", code=2)
    expect_error(["train", "--out", os.path.join(SCRATCH, "dev")] + TINY + ["--device", "tpu"], "--device", "'tpu'", code=2)


# run_config.ini as shardlm wrote it before the one config dialect (src/train/run_config.cpp at
# e9a1530), for the tiny() run.
LEGACY_RUN_CONFIG = """[model]
n_layer=2
n_head=4
n_embd=64
vocab_size=512
max_seq_len=32
vocab_pad_multiple=128

[device]
device=cpu

[data]
data=synthetic
seed=1337

[batch]
seq_len=32
micro_batch=2
global_batch=4
steps=4

[optimizer]
lr=0.001
min_lr=6e-05
warmup=2
weight_decay=0.1
grad_clip=1
beta1=0.9
beta2=0.95
eps=1e-08
on_nan=error

[parallel]
tp=1
pp=1
zero=0
pp_layers=

[checkpoint]
save_every=0
keep_last=3
keep_every=0

[logging]
eval_every=0
eval_steps=4
log_every=1
peak_tflops=0
"""


def case_legacy_run_dir():
    """A run directory whose run_config.ini an earlier version wrote still resumes, keeps that
    file, and still refuses another model (the trainer, and the launcher before it starts)."""
    d = os.path.join(SCRATCH, "legacy")
    run(["train", "--out", d] + tiny(steps=2), check=0)
    with open(os.path.join(d, "run_config.ini"), "w") as f:
        f.write(LEGACY_RUN_CONFIG)
    out = run(["train", "--out", d] + tiny(steps=4), check=0).stdout
    assert "resumed from" in out and "at step 2" in out, out[-2000:]
    assert open(os.path.join(d, "run_config.ini")).read() == LEGACY_RUN_CONFIG
    expect_error(["train", "--out", d] + tiny(steps=5, n_layer=3), "different model", "n_layer: 2 -> 3")
    launcher = os.path.join(REPO, "launch", "shardlm-launch")
    p = subprocess.run([sys.executable, launcher, "--np", "1", "--shardlm", SHARDLM, "--"] + tiny(steps=5, n_embd=128) + ["--out", d],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "n_embd: 64 in the run, 128 requested" in p.stderr, p.stderr[-2000:]


def case_generate_device():
    """shardlm generate --device: cpu by default and by name; cuda generates where a GPU is and
    is refused with the reason where there is none; an unknown name is refused."""
    d = os.path.join(SCRATCH, "gen")
    run(["train", "--out", d] + tiny(steps=1), check=0)
    gen = ["generate", "--checkpoint", d, "--prompt-ids", "1 2 3", "--max-tokens", "4", "--temperature", "0"]
    default = run(gen, check=0).stdout
    assert default.strip() and run(gen + ["--device", "cpu"], check=0).stdout == default
    p = run(gen + ["--device", "cuda"])
    if p.returncode == 0:  # a machine with a GPU: the same greedy tokens
        assert p.stdout.strip(), "generate --device cuda printed nothing"
        print("generate --device cuda ran on a GPU:", p.stdout.strip())
    else:
        assert p.returncode == 1, f"exit {p.returncode}: {p.stderr}"
        err = p.stderr.strip()
        assert err.startswith("shardlm generate: error: --device cuda: "), err
        assert "no usable CUDA device on this machine" in err or "built without CUDA" in err, err
        assert len(err.splitlines()) == 1, err
    expect_error(gen + ["--device", "tpu"], "--device must be one of 'cpu', 'cuda', got 'tpu'")


# llama-tiny shrunk like TINY: 4 query heads over 2 key/value heads (head_dim 16), SwiGLU 344 wide.
LLAMA = tiny(model="llama-tiny")


def llama_tensor_shapes(n_layer=2, C=64, KV=2, g=2, hd=16, F=344, Vp=512):
    """Global shapes of the Llama tensor plan (src/model/llama/family.h) for LLAMA's sizes."""
    shapes = {"embed_tokens": (Vp, C), "norm.weight": (C,), "lm_head": (Vp, C)}
    for l in range(n_layer):
        shapes.update({f"h.{l}.input_norm.weight": (C,), f"h.{l}.attn.qkv.weight": (KV, g + 2, hd, C),
                       f"h.{l}.attn.o_proj.weight": (C, KV * g * hd), f"h.{l}.post_attn_norm.weight": (C,),
                       f"h.{l}.mlp.gate_up.weight": (2, F, C), f"h.{l}.mlp.down.weight": (C, F)})
    return shapes


def case_llama():
    """A Llama run on tp2 (one key/value head per rank, untied head): it resumes bit-exact on the
    same layout; ckpt inspect, consolidate and verify show its tensors under their Llama names
    and global shapes; generate's KV-cached tokens equal the recomputed ones."""
    straight, split = os.path.join(SCRATCH, "straight"), os.path.join(SCRATCH, "split")
    args = LLAMA + ["--steps", "6", "--tp", "2"]
    run(["train", "--out", straight] + args, np=2, check=0)
    run(["train", "--out", split] + args + ["--exit-after-minutes", "0.0000001"], np=2, check=75)
    run(["train", "--out", split] + args + ["--resume", "auto"], np=2, check=0)
    a, b = losses(straight), losses(split)
    assert sorted(a) == list(range(1, 7)) and all(a[s] == b[s] for s in a), (a, b)
    tensors = consolidated(straight, "straight")
    assert_identical(tensors, consolidated(split, "split"), "Llama resume on tp2")

    shapes = llama_tensor_shapes()
    roles = ("param", "exp_avg", "exp_avg_sq")
    want = {f"{r}/{n}": shape for r in roles for n, shape in shapes.items()}
    assert {k: v.shape for k, v in tensors.items()} == want, sorted(set(tensors) ^ set(want))
    ckpt = os.path.join(straight, "checkpoints", "step_00000006")
    inspect = run(["ckpt", "inspect", ckpt], check=0).stdout
    listed = {line.split()[0]: line for line in inspect.splitlines() if line.startswith("  param/")}
    assert set(listed) == {f"param/{n}" for n in shapes}, inspect
    for name, shape in shapes.items():
        assert "[" + ", ".join(map(str, shape)) + "]" in listed[f"param/{name}"], listed[f"param/{name}"]
    assert "family=llama" in inspect and "n_kv_head=2" in inspect, inspect
    verified = run(["ckpt", "verify", ckpt], check=0).stdout
    assert f"{len(want)} tensors" in verified, verified

    # Generation from the tp2 checkpoint: greedy and sampled, with and without the KV cache.
    for sampling in (["--temperature", "0"], ["--temperature", "0.9", "--top-k", "20", "--seed", "3"]):
        gen = ["generate", "--checkpoint", straight, "--prompt-ids", "1 2 3", "--max-tokens", "24"] + sampling
        cached = run(gen, check=0).stdout
        assert len(cached.split()) == 27, cached
        assert run(gen + ["--no-kv-cache"], check=0).stdout == cached, f"{sampling}: cached tokens differ"

    # A corrupted Llama tensor: verify refuses its rank file (the whole-file checksum catches the
    # damage before HDF5 reads the file; cli_corrupt-checkpoint covers the per-tensor checks).
    rank_file = os.path.join(ckpt, "rank_00001.h5")
    with h5py.File(rank_file, "r") as f:
        offset = f["param/h.1.attn.qkv.weight"].id.get_offset()
    with open(rank_file, "r+b") as f:
        f.seek(offset + 8)
        byte = f.read(1)
        f.seek(offset + 8)
        f.write(bytes([byte[0] ^ 0xFF]))
    expect_error(["ckpt", "verify", ckpt], "rank_00001.h5", "the file is damaged")
def damaged_copy(src, dst, rng):
    """dst = src with 1-8 random bit flips or cut at a random offset; what was done, or None
    when the damage cancelled out (the same bit flipped twice)."""
    data = bytearray(open(src, "rb").read())
    if rng.random() < 0.3:
        cut = rng.randrange(len(data))
        damaged, how = data[:cut], "truncated to %d of %d bytes" % (cut, len(data))
    else:
        damaged = bytearray(data)
        flips = [(rng.randrange(len(data)), rng.randrange(8)) for _ in range(rng.randint(1, 8))]
        for at, bit in flips:
            damaged[at] ^= 1 << bit
        how = "bits flipped at " + ", ".join("%d.%d" % f for f in flips)
    if damaged == data:
        return None
    open(dst, "wb").write(damaged)
    return how


def case_damaged_files():
    """Random damage (bit flips, truncation; seeded, DAMAGE_TRIALS per file kind) to every file
    a run reads back: each damaged file is refused with an error naming it, never a crash (a
    signal) and never accepted. A config is text a person writes, so a damaged one may parse as
    another valid config; it must never crash, and a refusal names the file."""
    import random
    seed, trials = int(os.environ.get("SEED", "13")), int(os.environ.get("DAMAGE_TRIALS", "40"))
    rng = random.Random(seed)
    print(f"SEED={seed}, {trials} trials per file kind")
    run_dir = os.path.join(SCRATCH, "run")
    run(["train", "--out", run_dir] + tiny(steps=2), np=2, check=0)
    ckpt = os.path.join(run_dir, "checkpoints", "step_00000002")
    text = os.path.join(SCRATCH, "text.txt")
    with open(os.path.join(REPO, "data", "tinyshakespeare.txt")) as f:
        open(text, "w").write(f.read()[:50000])
    tok = os.path.join(SCRATCH, "tok")
    run(["tokenizer", "train", "--input", text, "--vocab-size", "400", "--model-prefix", tok], check=0)
    data = os.path.join(SCRATCH, "data")
    run(["data", "prepare", "--input", text, "--tokenizer", tok + ".model", "--out", data, "--val-fraction", "0.2",
         "--block-bytes", "2048", "--quiet"], check=0)
    config = os.path.join(SCRATCH, "run.ini")
    open(config, "w").write(open(os.path.join(run_dir, "run_config.ini")).read())
    # file kind -> (folder holding it, the commands that read it: one per trial, in turn)
    dump = os.path.join(SCRATCH, "consolidated.h5")
    # consolidate reads through CheckpointReader, which opens a rank file only when it needs one
    # (with dp 2 rank 1 holds copies of rank 0's tensors): rank_00001.h5 goes to verify only.
    verify, consolidate = ["ckpt", "verify", "{dir}"], ["ckpt", "consolidate", "{dir}", dump]
    kinds = {name: (ckpt, [verify, consolidate]) for name in ("manifest.h5", "manifest.crc32c", "rank_00000.h5")}
    kinds["rank_00001.h5"] = (ckpt, [verify])
    kinds.update({name: (data, [["data", "inspect", "{dir}"]])
                  for name in ("index.txt", "tokenizer.model", "train_00000.bin", "val_00000.bin")})
    counts = {}
    for name, (folder, commands) in kinds.items():
        assert os.path.exists(os.path.join(folder, name)), name
        for t in range(trials):
            work = os.path.join(SCRATCH, "damaged")
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(folder, work)
            how = damaged_copy(os.path.join(folder, name), os.path.join(work, name), rng)
            if how is None:
                continue
            args = [a.replace("{dir}", work) for a in commands[t % len(commands)]]
            p = run(args)
            what = f"{name} {how}: shardlm {' '.join(args)} exit {p.returncode}\n{p.stderr[-1500:]}"
            assert p.returncode not in (0,) and 0 < p.returncode < 128, "not refused cleanly: " + what
            assert name in p.stderr, "the error does not name the file: " + what
            counts[name] = counts.get(name, 0) + 1
    for t in range(trials):
        damaged = os.path.join(SCRATCH, "damaged.ini")
        how = damaged_copy(config, damaged, rng)
        if how is None:
            continue
        p = run(["train", "--config", damaged, "--print-config"])
        what = f"config {how}: exit {p.returncode}\n{p.stderr[-1500:]}"
        assert 0 <= p.returncode < 128, "crashed: " + what
        counts["config"] = counts.get("config", 0) + 1
    print("damaged and refused (config: no crash):", counts)


def case_threads_and_isa():
    """The start's backend line: each of 2 ranks takes its share of the CPUs and a passive wait
    policy (re-executed with it) when nothing is set; OMP_NUM_THREADS and --threads win;
    SHARDLM_ISA picks the kernels' level (same loss within rounding) or is refused by name."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "SHARDLM_ISA")}

    def backend_line(args, np=1, **extra):
        cmd = (MPIRUN + ["-np", str(np)] if np > 1 else []) + [SHARDLM] + args
        p = subprocess.run(cmd, env=dict(env, **extra), capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        lines = [l for l in p.stdout.splitlines() if l.startswith("backend: ")]
        assert len(lines) == 1, p.stdout[-3000:]
        return lines[0], p.stdout

    cpus = len(os.sched_getaffinity(0))
    line, _ = backend_line(["train", "--out", os.path.join(SCRATCH, "tp2")] + tiny(steps=1, tp=2), np=2)
    want = (f"{max(1, cpus // 2)} OpenMP thread(s) per rank ({cpus} CPUs / 2 rank(s) on this node), "
            "wait policy passive (set for ranks sharing a node)")
    assert line.endswith(want), f"{line!r}\nwant ...{want!r}"
    line, _ = backend_line(["train", "--out", os.path.join(SCRATCH, "omp")] + tiny(steps=1), OMP_NUM_THREADS="1")
    assert "1 OpenMP thread(s) per rank (OMP_NUM_THREADS), wait policy libgomp's default" in line, line
    line, _ = backend_line(["train", "--out", os.path.join(SCRATCH, "flag"), "--threads", "2"] + tiny(steps=1),
                           OMP_NUM_THREADS="1", OMP_WAIT_POLICY="active")
    assert "2 OpenMP thread(s) per rank (--threads), wait policy active (OMP_WAIT_POLICY)" in line, line

    step1 = {}
    for isa in ("sse", "avx2"):
        d = os.path.join(SCRATCH, isa)
        line, _ = backend_line(["train", "--out", d] + tiny(steps=2), SHARDLM_ISA=isa, OMP_NUM_THREADS="1")
        # oneDNN's GEMMs are capped at the forced level too (sse -> its SSE4.1 kernels).
        assert f"CPU kernels ISA {isa} (GEMMs: oneDNN {'sse41' if isa == 'sse' else isa})," in line, line
        step1[isa] = losses(d)
    assert step1["sse"].keys() == step1["avx2"].keys() == {1, 2}, step1
    for step, loss in step1["sse"].items():
        assert abs(loss - step1["avx2"][step]) <= 1e-4 * abs(loss), f"sse and avx2 losses differ: {step1}"
    p = subprocess.run([SHARDLM, "train", "--out", os.path.join(SCRATCH, "bad")] + tiny(steps=1),
                       env=dict(env, SHARDLM_ISA="avx9"), capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "SHARDLM_ISA=avx9: not an ISA level (one of sse, avx2, avx512" in p.stderr, \
        (p.returncode, p.stderr)


if __name__ == "__main__":
    shutil.rmtree(SCRATCH, ignore_errors=True)
    os.makedirs(SCRATCH)
    globals()["case_" + CASE.replace("-", "_")]()
    print(f"{CASE}: ok")
