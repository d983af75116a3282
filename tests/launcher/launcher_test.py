#!/usr/bin/env python3
"""Fault tests for launch/shardlm-launch with real MPI ranks.

    launcher_test.py MODE SCRATCH_DIR TRAINER_BIN CONFIG [TRAINER_FLAGS...]

TRAINER_BIN is `shardlm`; CONFIG and TRAINER_FLAGS go to `train`. The run must last at least
4 checkpoint intervals (--save-every, default 5 here) so that faults land mid-run.

Modes that inject a fault into a launcher run and then require it to end with exit 0 and final
weights bit-identical to an uninterrupted run of the same command (compare_checkpoints.sh):
  kill-rank         kill -9 a random rank at a random step
  kill-during-save  kill -9 a random rank while a checkpoint is being written (its
                    step_<n>.tmp folder exists); the restart must resume from a committed one
  hang              SIGSTOP a random rank at a random step: the hang detector must name it,
                    kill everything and restart
  stop-resume       SIGTERM to the launcher: the job saves and the launcher exits 75; running
                    the same command again resumes and finishes
  stop-early        the same, with the SIGTERM the moment the launcher starts mpirun, before
                    the ranks run: the stop is held until every rank runs, not lost
Modes that check the launcher's refusals:
  refuse-model      a finished run, then requests with a changed model key (by flag, by
                    config file): exit 2 naming it, the trainer never started
  give-up           a trainer that always fails: --max-restarts restarts with backoff, then a
                    non-zero exit, every attempt logged with its reason

Environment: RANKS (default 2), SAVE_EVERY (default 5), MPIRUN_ARGS (extra mpirun flags),
REFERENCE (a finished uninterrupted run of the same command, from reference_run.sh; made here
when unset), SEED (random choices; printed so a failure can be replayed), CKPT_COMPARE_IGNORE.
"""

import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAUNCHER = os.path.join(REPO, "launch", "shardlm-launch")
COMPARE = os.path.join(HERE, "compare_checkpoints.sh")
REFERENCE_RUN = os.path.join(HERE, "reference_run.sh")
MODES = ("kill-rank", "kill-during-save", "hang", "stop-resume", "stop-early", "refuse-model", "give-up")


class TestFailure(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


class Setup:
    def __init__(self, argv):
        if len(argv) < 4 or argv[0] not in MODES:
            sys.exit(__doc__)
        self.mode = argv[0]
        self.scratch = os.path.abspath(argv[1])
        self.bin = os.path.abspath(argv[2])
        self.config = os.path.abspath(argv[3])
        self.flags = argv[4:]
        self.ranks = int(os.environ.get("RANKS", "2"))
        self.save_every = int(os.environ.get("SAVE_EVERY", "5"))
        self.mpirun_args = os.environ.get("MPIRUN_ARGS", "")
        seed = int(os.environ.get("SEED", str(int(time.time() * 1000) % 100000)))
        log("mode %s, %d ranks, SEED=%d" % (self.mode, self.ranks, seed))
        self.rng = random.Random(seed)
        self.started = []  # the launchers started with start_launcher
        subprocess.run(["rm", "-rf", self.scratch], check=True)
        os.makedirs(self.scratch)

    def train_flags(self, out):
        return ["--config", self.config] + self.flags + ["--out", out, "--save-every", str(self.save_every)]

    def reference(self):
        """The uninterrupted twin run's RUN_DIR: $REFERENCE, or one made now with plain mpirun."""
        given = os.environ.get("REFERENCE")
        if given:
            check(os.path.isfile(os.path.join(given, "checkpoints", "latest")),
                  "REFERENCE=%s holds no finished run" % given)
            return given
        out = os.path.join(self.scratch, "ref")
        env = dict(os.environ, RANKS=str(self.ranks), SAVE_EVERY=str(self.save_every))
        rc = subprocess.run([REFERENCE_RUN, out, self.bin, self.config] + self.flags, env=env).returncode
        check(rc == 0, "the reference run failed (see %s.log)" % out)
        return out

    def launcher_cmd(self, out, *launcher_flags, trainer_flags=None):
        return [sys.executable, LAUNCHER, "--np", str(self.ranks), "--shardlm", self.bin,
                "--mpirun-args", self.mpirun_args, "--poll-interval", "0.25", "--backoff", "1",
                *launcher_flags, "--"] + (trainer_flags if trainer_flags is not None else self.train_flags(out))

    def start_launcher(self, out, *launcher_flags, trainer_flags=None):
        cmd = self.launcher_cmd(out, *launcher_flags, trainer_flags=trainer_flags)
        log("launcher: " + shlex.join(cmd))
        self.launcher_out = open(os.path.join(self.scratch, "launcher.out"), "a")
        proc = subprocess.Popen(cmd, stdout=self.launcher_out, stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def print_evidence(self):
        """On a failure: the launcher logs and the job's own output (mpirun's and the ranks'),
        so that a CI log says why a rank died, not only that the launcher ended wrong."""
        for path in (os.path.join(self.scratch, "run", "launcher.log"), os.path.join(self.scratch, "launcher.out")):
            if os.path.isfile(path):
                with open(path, errors="replace") as f:
                    lines = f.read().splitlines()
                print("--- %s (last 80 lines) ---" % path, file=sys.stderr)
                print("\n".join(lines[-80:]), file=sys.stderr)

    def kill_leftovers(self):
        """SIGKILL every launcher this test started that still runs, with everything under it
        (its job runs in a session of its own, so killing the launcher alone would orphan it)."""
        for proc in self.started:
            if proc.poll() is None:
                pids = descendants(proc.pid) + [proc.pid]
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait()
                log("killed the launcher left running and its %d processes" % (len(pids) - 1))


def progress_step(run_dir, rank=0):
    try:
        with open(os.path.join(run_dir, "progress", "rank_%d.txt" % rank)) as f:
            for part in f.read().split():
                if part.startswith("step="):
                    return int(part[5:])
    except (OSError, ValueError):
        pass
    return 0


def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rank_pids(launcher_pid):
    """rank -> pid for the trainer processes under the launcher."""
    ranks = {}
    for pid in descendants(launcher_pid):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(item.split(b"=", 1)[1])] = pid
    return ranks


def wait_for(cond, seconds, what, proc=None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise TestFailure("the launcher exited (%d) while waiting for %s" % (proc.returncode, what))
        time.sleep(0.002)
    raise TestFailure("timed out after %d s waiting for %s" % (seconds, what))


def wait_launcher(proc, seconds=300):
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise TestFailure("the launcher did not finish in %d s" % seconds)


def launcher_log(run_dir):
    with open(os.path.join(run_dir, "launcher.log")) as f:
        return f.read()


def compare_final(ref, run):
    names = []
    for d in (ref, run):
        with open(os.path.join(d, "checkpoints", "latest")) as f:
            names.append(f.read().strip())
    check(names[0] == names[1], "final checkpoints differ: %s vs %s" % tuple(names))
    rc = subprocess.run([COMPARE] + [os.path.join(d, "checkpoints", names[0]) for d in (ref, run)]).returncode
    check(rc == 0, "final weights differ from the uninterrupted run")


def rank_pid(s, proc, rank):
    return wait_for(lambda: rank_pids(proc.pid).get(rank), 60, "the pid of rank %d" % rank, proc)


def random_rank_at_random_step(s, proc, run_dir):
    """Waits for a random step past the first checkpoint; returns (rank, pid, step)."""
    step = s.rng.randint(s.save_every + 1, 3 * s.save_every)
    rank = s.rng.randrange(s.ranks)
    pid = rank_pid(s, proc, rank)  # before the step: the fault must not come late
    wait_for(lambda: progress_step(run_dir) >= step, 120, "step %d" % step, proc)
    return rank, pid, progress_step(run_dir)


SAVE_IN_PROGRESS = re.compile(r"^step_(\d{8})\.tmp$")  # not *.deleting.tmp / *.replaced.tmp


def kill_during_save(s, proc, run):
    """kill -9 a random rank while step_<n>.tmp exists, after the first committed checkpoint;
    returns n."""
    ckpt = os.path.join(run, "checkpoints")
    rank = s.rng.randrange(s.ranks)
    pid = rank_pid(s, proc, rank)
    wait_for(lambda: progress_step(run) > s.save_every, 120, "step %d" % (s.save_every + 1), proc)

    def saving():
        try:
            names = os.listdir(ckpt)
        except OSError:
            return None
        for name in names:
            m = SAVE_IN_PROGRESS.match(name)
            if m and int(m.group(1)) > s.save_every:
                return name
        return None
    tmp = wait_for(saving, 120, "a checkpoint save in progress (step_<n>.tmp)", proc)
    # Checked again right before the kill: the save was still running when the kill came.
    check(os.path.isdir(os.path.join(ckpt, tmp)), "%s was committed before the kill" % tmp)
    os.kill(pid, signal.SIGKILL)
    log("kill -9 rank %d (pid %d) while %s was being written" % (rank, pid, tmp))
    return int(SAVE_IN_PROGRESS.match(tmp).group(1))


def fault_run(s, mode):
    ref = s.reference()
    run = os.path.join(s.scratch, "run")
    extra = ("--hang-timeout", "5", "--hang-grace", "120") if mode == "hang" else ()
    proc = s.start_launcher(run, *extra)
    if mode == "kill-rank":
        rank, pid, step = random_rank_at_random_step(s, proc, run)
        log("kill -9 rank %d (pid %d) at step %d" % (rank, pid, step))
        os.kill(pid, signal.SIGKILL)
    elif mode == "hang":
        rank, pid, step = random_rank_at_random_step(s, proc, run)
        log("SIGSTOP rank %d (pid %d) at step %d" % (rank, pid, step))
        os.kill(pid, signal.SIGSTOP)
    elif mode == "kill-during-save":
        saving_step = kill_during_save(s, proc, run)
    rc = wait_launcher(proc)
    text = launcher_log(run)
    print(text, end="")
    check(rc == 0, "the launcher ended with %d" % rc)
    check("attempt 2 of" in text, "the launcher never restarted")
    if mode == "hang":
        check("hang: no rank advanced" in text, "no hang was reported")
        check("rank %d: " % rank in text and "is stopped" in text, "the report does not name stopped rank %d" % rank)
        check("ranks that stopped making progress: " in text and str(rank) in
              text.split("ranks that stopped making progress: ")[1].split("\n")[0],
              "rank %d not named among the ranks that stopped" % rank)
    else:
        check("signal 9" in text or "SIGKILL" in text, "the restart reason does not name the kill")
    if mode == "kill-during-save":
        m = re.search(r"attempt 2 of \d+ \(.*?\), resuming from checkpoints/step_(\d{8}):", text)
        check(m is not None, "the restart did not resume from a committed checkpoint")
        resumed = int(m.group(1))
        check(resumed <= saving_step, "the restart resumed from step %d, after the interrupted save of %d"
              % (resumed, saving_step))
        log("the restart resumed from step %d (%s)" % (resumed, "the interrupted save was never committed"
            if resumed < saving_step else "rank 0 had committed it after the other ranks' part"))
    compare_final(ref, run)


def attempt_started(run):
    try:
        return "attempt 1 of" in launcher_log(run)
    except OSError:
        return False


def stop_resume(s, early=False):
    ref = s.reference()
    run = os.path.join(s.scratch, "run")
    proc = s.start_launcher(run)
    if early:
        wait_for(lambda: attempt_started(run), 120, "the first attempt's start", proc)
        log("SIGTERM to the launcher as it starts mpirun (rank 0 at step %d)" % progress_step(run))
    else:
        wait_for(lambda: progress_step(run) > s.save_every, 120, "step %d" % (s.save_every + 1), proc)
        log("SIGTERM to the launcher at step %d" % progress_step(run))
    proc.send_signal(signal.SIGTERM)
    rc = wait_launcher(proc)
    check(rc == 75, "the launcher ended with %d after SIGTERM, expected 75" % rc)
    if early:
        text = launcher_log(run)
        held = "while the job starts: passing it on once every rank runs" in text
        log("the stop was %s" % ("held until every rank ran" if held else "passed on at once (the ranks were up)"))
        check("saved a checkpoint and stopped on request" in text, "the early stop did not end in a save")
    log("resuming with the same command")
    rc = wait_launcher(s.start_launcher(run))
    text = launcher_log(run)
    print(text, end="")
    check(rc == 0, "the resumed launcher ended with %d" % rc)
    check("resuming from checkpoints/step_" in text, "the second launch did not resume")
    compare_final(ref, run)


def refuse_model(s):
    run = os.path.join(s.scratch, "run")
    short = ["--steps", "2"]  # any finished run will do
    rc = wait_launcher(s.start_launcher(run, trainer_flags=s.train_flags(run) + short))
    check(rc == 0, "the first run ended with %d" % rc)
    with open(os.path.join(run, "run_config.ini")) as f:
        text = f.read()
    model = text.split("[model]", 1)[1].split("[", 1)[0] if "[model]" in text else ""
    stored = dict(line.strip().split("=", 1) for line in model.splitlines() if "=" in line)
    check("n_layer" in stored and "n_embd" in stored, "run_config.ini has no [model] n_layer, n_embd:\n" + text)

    def refused(trainer_flags, key, requested):
        cmd = s.launcher_cmd(run, trainer_flags=trainer_flags)
        log("changed model: " + shlex.join(cmd))
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(res.stdout, end="")
        check(res.returncode == 2, "the launcher ended with %d, expected 2" % res.returncode)
        check("%s: %s in the run, %s requested" % (key, stored[key], requested) in res.stdout,
              "the message does not name %s" % key)
        check(launcher_log(run).count("attempt 1 of") == 1, "the launcher started the trainer for the changed model")

    # By flag: --n-layer wins over the config file.
    n_layer = str(int(stored["n_layer"]) + 1)
    refused(s.train_flags(run) + short + ["--n-layer", n_layer], "n_layer", n_layer)
    # By config file: a copy of CONFIG with another n-embd.
    n_embd = str(int(stored["n_embd"]) * 2)
    changed = os.path.join(s.scratch, "changed.ini")
    with open(s.config) as f:
        lines = [line for line in f.read().splitlines() if line.split("=", 1)[0].strip() != "n-embd"]
    with open(changed, "w") as f:
        f.write("\n".join(lines + ["n-embd = " + n_embd]) + "\n")
    flags = s.train_flags(run) + short
    flags[flags.index(s.config)] = changed
    refused(flags, "n_embd", n_embd)


def give_up(s):
    run = os.path.join(s.scratch, "run")
    # A flag the trainer rejects: every attempt fails at once.
    cmd = s.launcher_cmd(run, "--max-restarts", "2", "--backoff", "0.5",
                         trainer_flags=s.train_flags(run) + ["--no-such-flag", "1"])
    started = time.monotonic()
    rc = subprocess.run(cmd).returncode
    elapsed = time.monotonic() - started
    text = launcher_log(run)
    print(text, end="")
    check(rc not in (0, 75), "the launcher ended with %d, expected a failure" % rc)
    check(text.count("attempt 3 of 3") == 1 and "attempt 4" not in text, "expected exactly 3 attempts")
    check("checkpoint in 0.5 s" in text and "checkpoint in 1 s" in text,
          "the second wait did not double the backoff")
    check("giving up after 2 restarts; last failure: exit code" in text, "no final give-up line with the reason")
    check(elapsed >= 1.5, "restarts came faster than the backoff (%.1f s)" % elapsed)


def main(argv):
    s = Setup(argv)
    try:
        if s.mode in ("kill-rank", "kill-during-save", "hang"):
            fault_run(s, s.mode)
        elif s.mode in ("stop-resume", "stop-early"):
            stop_resume(s, early=s.mode == "stop-early")
        elif s.mode == "refuse-model":
            refuse_model(s)
        else:
            give_up(s)
    except TestFailure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        s.print_evidence()
        return 1
    finally:
        s.kill_leftovers()
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
