#!/usr/bin/env python3
"""launch/shardlm-launch's naming of lost hosts, without a job or root: the heartbeats' host
field grouped by host, the TCP probe (an accepted or refused connection is an answer, a name
that does not resolve is not), this machine never probed, and the log line.
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
    lost = launch.lost_hosts({me: [0, 1], "localhost": [2], "no-such-host.invalid": [3, 4]}, port, 2)
    assert [(h, ranks) for h, ranks, _ in lost] == [("no-such-host.invalid", [3, 4])], lost
    line = launch.describe_lost_hosts(lost, port)
    assert line.startswith(f"lost host(s): no-such-host.invalid (ranks 3, 4; tcp/{port}: "), line
    assert launch.describe_lost_hosts([], port) is None
    assert launch.lost_hosts({me: [0]}, port, 2) == []  # one node: nothing to probe
    print("lost-hosts: ok")


if __name__ == "__main__":
    main()
