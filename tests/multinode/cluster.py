#!/usr/bin/env python3
"""Test hosts on this machine: N network namespaces on one private bridge, each with its own
hostname, all seeing the same file system (so any folder is a shared run folder).

    with Cluster(2) as c:               # hosts c.hosts[0], c.hosts[1]
        c.run(c.hosts[1], ["hostname"])  # runs inside that host: its network, its hostname
        c.mpirun(["./test_x"], slots=2)  # MPI over TCP across the hosts, started on host 0

Layout: a "switch" namespace holds bridge br0; each host namespace gets one veth pair, eth0 on
its side with 10.231.0.(i+1)/24, the other end on the bridge. No interface, route or address is
added outside these namespaces, so test traffic can only reach the namespaces' own addresses.
Hostnames: every command runs in a fresh UTS namespace (unshare --uts) named after its host, which
is what Open MPI compares to tell nodes apart; /etc/netns/HOST/hosts (bind-mounted over
/etc/hosts by `ip netns exec`) resolves the host names.

Teardown leaves nothing behind: stop() kills every process in the namespaces, deletes them and
their /etc/netns entries; it runs on normal exit, exceptions, SIGINT/SIGTERM/SIGHUP; and a
harness that was killed outright (SIGKILL, a CTest timeout) is swept by the next one, or by
`cluster.py sweep` (CTest's cleanup fixture): names carry the owning harness's pid, and those of
a dead pid are removed.

    cluster.py sweep        remove what dead harnesses left
    cluster.py hold N       start N hosts, print their names, wait for a signal (for tests)
"""
import os
import signal
import subprocess
import sys
import time

PREFIX = "shlmn"  # every name this harness makes starts with it
SUBNET = "10.231.0"
NETNS_ETC = "/etc/netns"
HERE = os.path.dirname(os.path.abspath(__file__))
RSH_AGENT = os.path.join(HERE, "netns_rsh.sh")


def sh(*argv, check=True, timeout=30):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def namespaces():
    return [line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()]


def owner_pid(name):
    """The pid in a name made by this harness (shlmn<pid>h0, shlmn<pid>sw), else None."""
    if not name.startswith(PREFIX):
        return None
    digits = name[len(PREFIX):].split("h")[0].split("sw")[0]
    return int(digits) if digits.isdigit() else None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_namespace(ns):
    """Kill what runs in `ns`, delete it (its veth ends go with it) and its /etc/netns entry."""
    for _ in range(20):
        pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).split()]
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    sh("ip", "netns", "delete", ns, check=False)
    etc = os.path.join(NETNS_ETC, ns)
    if os.path.isdir(etc):
        for f in os.listdir(etc):
            os.unlink(os.path.join(etc, f))
        os.rmdir(etc)


def write_hosts_file(host, text):
    """/etc/netns/HOST/hosts (retried once: another cluster's stop() may remove an empty
    /etc/netns between our mkdir and open)."""
    for attempt in range(2):
        try:
            os.makedirs(os.path.join(NETNS_ETC, host), exist_ok=True)
            with open(os.path.join(NETNS_ETC, host, "hosts"), "w") as f:
                f.write(text)
            return
        except FileNotFoundError:
            if attempt:
                raise


def remove_netns_etc_if_empty():
    try:
        os.rmdir(NETNS_ETC)  # only when empty: another cluster may be using it
    except OSError:
        pass


def sweep(keep_pid=None):
    """Removes the namespaces and /etc/netns entries of harnesses that are no longer running."""
    leftovers = set(namespaces())
    if os.path.isdir(NETNS_ETC):
        leftovers |= set(os.listdir(NETNS_ETC))
    removed = []
    for name in sorted(leftovers):
        pid = owner_pid(name)
        if pid is None or pid == keep_pid or alive(pid):
            continue
        remove_namespace(name)
        removed.append(name)
    remove_netns_etc_if_empty()
    return removed


class Cluster:
    def __init__(self, n_hosts, rate=None):
        assert 1 <= n_hosts <= 8, n_hosts
        self.tag = f"{PREFIX}{os.getpid()}"
        self.switch = self.tag + "sw"
        self.hosts = [f"{self.tag}h{i}" for i in range(n_hosts)]
        self.address = {h: f"{SUBNET}.{i + 1}" for i, h in enumerate(self.hosts)}
        self.rate = rate  # e.g. "200mbit": a tbf limit on every host's eth0
        self._old_handlers = {}

    # --- lifetime -------------------------------------------------------------------------
    def __enter__(self):
        sweep(keep_pid=os.getpid())
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        return False

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)  # unwinds through __exit__, which tears down

    def start(self):
        sw = self.switch
        sh("ip", "netns", "add", sw)
        sh("ip", "-n", sw, "link", "set", "lo", "up")
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "br0", "up")
        hosts_file = "127.0.0.1 localhost\n" + "".join(f"{a} {h}\n" for h, a in self.address.items())
        for i, host in enumerate(self.hosts):
            write_hosts_file(host, hosts_file)
            sh("ip", "netns", "add", host)
            # Both veth ends are born inside the namespaces: nothing touches the host's network.
            sh("ip", "-n", sw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
               "netns", host)
            sh("ip", "-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            sh("ip", "-n", host, "link", "set", "lo", "up")
            sh("ip", "-n", host, "addr", "add", f"{self.address[host]}/24", "dev", "eth0")
            sh("ip", "-n", host, "link", "set", "eth0", "up")
            if self.rate:
                sh("tc", "-n", host, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
                   self.rate, "burst", "64kb", "latency", "400ms")

    def stop(self):
        for ns in self.hosts + [self.switch]:
            if ns in namespaces() or os.path.isdir(os.path.join(NETNS_ETC, ns)):
                remove_namespace(ns)
        remove_netns_etc_if_empty()

    def leftovers(self):
        """Names of this cluster that still exist (empty after stop())."""
        mine = [n for n in namespaces() if n.startswith(self.tag)]
        if os.path.isdir(NETNS_ETC):
            mine += [n for n in os.listdir(NETNS_ETC) if n.startswith(self.tag)]
        return mine

    # --- running things -------------------------------------------------------------------
    def command(self, host, argv):
        """argv run inside `host`: its network namespace, a UTS namespace named after it."""
        return ["ip", "netns", "exec", host, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', host] + list(argv)

    def run(self, host, argv, timeout=300, env=None):
        return subprocess.run(self.command(host, argv), capture_output=True, text=True,
                              timeout=timeout, env=env)

    def slots_of(self, slots):
        """Ranks per host: `slots` on each, or a list with one count per host."""
        return list(slots) if isinstance(slots, (list, tuple)) else [slots] * len(self.hosts)

    def mpirun_flags(self, slots):
        """mpirun's flags (after -np) for all hosts with `slots` ranks each, or slots[i] on host
        i (filled host by host): TCP between hosts restricted to the test subnet, shared memory inside a host,
        the rsh agent that starts Open MPI's daemons inside the hosts. Also what a launcher
        passes on (shardlm-launch --mpirun-args)."""
        return (["--oversubscribe", "--bind-to", "none",
                 "--host", ",".join(f"{h}:{n}" for h, n in zip(self.hosts, self.slots_of(slots))),
                 "--mca", "plm_rsh_agent", RSH_AGENT,
                 "--mca", "btl", "self,vader,tcp", "--mca", "btl_vader_single_copy_mechanism",
                 "none", "--mca", "btl_tcp_if_include", f"{SUBNET}.0/24",
                 "--mca", "oob_tcp_if_include", f"{SUBNET}.0/24", "-x", "OMP_NUM_THREADS=1",
                 "-x", "PATH"] + (["-x", "LD_LIBRARY_PATH"] if "LD_LIBRARY_PATH" in os.environ
                                  else []))

    def mpirun_command(self, argv, slots, np=None, extra=()):
        """mpirun on host 0 over all hosts with `slots` ranks each (mpirun_flags)."""
        np = np or sum(self.slots_of(slots))
        mpirun = (["mpirun", "--allow-run-as-root", "-np", str(np)] + self.mpirun_flags(slots) +
                  list(extra))
        return self.command(self.hosts[0], mpirun + list(argv))

    def link(self, host, state):
        """Takes host's eth0 "down" (a partition: its processes run on, nothing gets through)
        or "up" again."""
        sh("ip", "-n", host, "link", "set", "eth0", state)

    def mpirun(self, argv, slots, np=None, timeout=600, extra=()):
        return subprocess.run(self.mpirun_command(argv, slots, np, extra), capture_output=True,
                              text=True, timeout=timeout)


def main():
    if os.geteuid() != 0:
        sys.exit("cluster.py: network namespaces need root")
    if sys.argv[1:2] == ["sweep"]:
        for name in sweep():
            print("removed", name)
    elif sys.argv[1:2] == ["hold"]:
        with Cluster(int(sys.argv[2])) as c:
            print(" ".join(c.hosts), flush=True)
            while True:
                time.sleep(1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
