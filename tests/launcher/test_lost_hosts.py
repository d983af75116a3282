#!/usr/bin/env python3
"""launch/shardlm-launch's naming of lost hosts, without a job or root: the heartbeats' host
field grouped by host, the TCP probe (an accepted or refused connection is an answer, a name
that does not resolve is not), this machine never probed, the log lines, and a host that answers
named as one whose ranks died from mpirun's report (the texts Open MPI 4.1 prints).
(The real faults, a partition and a dead host across test hosts: tests/multinode/test_faults.py.)

    test_lost_hosts.py SCRATCH_DIR
"""
import importlib.machinery
import importlib.util
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "..", "..", "launch", "shardlm-launch")


def load_launcher():
    loader = importlib.machinery.SourceFileLoader("shardlm_launch", LAUNCHER)
    spec = importlib.util.spec_from_loader("shardlm_launch", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def closed_port():
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# mpirun's (Open MPI 4.1.4) stderr in tests/multinode's harness, host 1's processes killed, its
# link up: the daemon's loss reported as a start failure, a rank's TCP peer gone; the same with
# only the daemon killed; with only a rank killed (the daemon reports it).
ALL_KILLED = """--------------------------------------------------------------------------
ORTE was unable to reliably start one or more daemons.
--------------------------------------------------------------------------
An MPI communication peer process has unexpectedly disconnected.  This
  Local host: nodeA
  Local PID:  17206
  Peer host:  localhost
--------------------------------------------------------------------------
"""
DAEMON_KILLED = """ORTE has lost communication with a remote daemon.
  HNP daemon   : [[53647,0],0] on node nodeA
  Remote daemon: [[53647,0],1] on node localhost
"""
CONNECT_FAILED = """WARNING: Open MPI failed to TCP connect to a peer MPI process.  This
  Local host: nodeA
  Message:    connect() to 127.0.0.1:1025 failed
  Error:      Operation now in progress (115)
"""
RANK_KILLED = ("mpirun noticed that process rank 2 with PID 19248 on node localhost exited on "
               "signal 9 (Killed).\n")


def check_report(launch, port, me):
    """A host that answers (localhost: refused) is named as one whose ranks died when mpirun's
    report says its processes vanished, and not when its daemon reported a rank's exit."""
    hosts = {me: [0, 1], "localhost": [2, 3]}
    for report, evidence in ((ALL_KILLED, "a peer process there hung up"),
                             (DAEMON_KILLED, "mpirun lost its daemon there"),
                             (CONNECT_FAILED, "connect() to 127.0.0.1 failed")):
        lost, died = launch.failed_hosts(hosts, report.splitlines(True), port, 2)
        assert lost == [] and died == [("localhost", [2, 3], f"tcp/{port}: refused; {evidence}")], died
        line = launch.describe_hosts(launch.DIED_LABEL, died)
        assert line == (f"host(s) that answer but whose ranks died: localhost (ranks 2, 3; "
                        f"tcp/{port}: refused; {evidence})"), line
    assert launch.failed_hosts(hosts, [RANK_KILLED], port, 2) == ([], [])
    assert launch.failed_hosts(hosts, [ALL_KILLED, RANK_KILLED], port, 2) == ([], [])
    assert launch.failed_hosts(hosts, ["Peer host: elsewhere\n"], port, 2) == ([], [])  # not the job's
    lost, died = launch.failed_hosts({me: [0], "no-such-host.invalid": [1]},
                                     ["Peer host: no-such-host.invalid\n"], port, 2)
    assert [h for h, _, _ in lost] == ["no-such-host.invalid"] and died == [], (lost, died)
    _, died = launch.failed_hosts({me: [0, 1], "localhost": [2]}, [f"Peer host: {me}\n"], port, 2)
    assert died == [(me, [0, 1], "the launcher's host; a peer process there hung up")], died


def main():
    launch = load_launcher()
    progress = os.path.join(sys.argv[1], "progress")
    os.makedirs(progress, exist_ok=True)
    beats = ["step=4 time=1 host=nodeA", "step=4 time=1 host=nodeA", "step=4 time=1 host=nodeB",
             "step=4 time=1"]  # rank 3: a trainer from before the host field
    for k, text in enumerate(beats):
        with open(os.path.join(progress, f"rank_{k}.txt"), "w") as f:
            f.write(text + "\n")
    watch = launch.ProgressWatch(progress, len(beats), 0.0)
    assert watch.ranks_by_host() == {"nodeA": [0, 1], "nodeB": [2]}, watch.ranks_by_host()
    assert [watch.step_of(k) for k in range(4)] == [4, 4, 4, 4]

    port = closed_port()
    assert launch.host_answers("127.0.0.1", port, 2) == (True, "refused")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert launch.host_answers("127.0.0.1", server.getsockname()[1], 2) == (True, "accepted")
    ok, why = launch.host_answers("no-such-host.invalid", port, 2)
    assert not ok and why, why

    me = socket.gethostname()
    hosts = {me: [0, 1], "localhost": [2], "no-such-host.invalid": [3, 4]}
    lost, died = launch.failed_hosts(hosts, [], port, 2)
    assert [(h, ranks) for h, ranks, _ in lost] == [("no-such-host.invalid", [3, 4])], lost
    assert died == [], died
    line = launch.describe_hosts(launch.LOST_LABEL, lost)
    assert line.startswith(f"lost host(s): no-such-host.invalid (ranks 3, 4; tcp/{port}: "), line
    assert launch.describe_hosts(launch.LOST_LABEL, []) is None
    assert launch.failed_hosts({me: [0]}, [], port, 2) == ([], [])  # one node: nothing to probe
    check_report(launch, port, me)
    print("lost-hosts: ok")


if __name__ == "__main__":
    main()
