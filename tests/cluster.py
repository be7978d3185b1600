"""A cluster of K "hosts" on one Linux machine, for running ``mpiexec`` over TCP as on real machines.

Each host is a network namespace with one interface, ``eth0``, joined by a veth pair to a
bridge (the "switch"), which lives in a namespace of its own: the machine's own network (the
root namespace) is left untouched, and the hosts can reach one another and nothing else.
Addresses come from 192.0.2.0/24 (TEST-NET-1, RFC 5737: reserved for documentation, never
routed). Every process started on a host also gets

- its own host name (``host0``, ``host1``, ...; a UTS namespace),
- its own private folder, mounted at the same path on every host (a mount namespace): files
  written there stay on that host, like a local disk; everything else is shared, like NFS;
- its own cores (``taskset``), as on separate machines: unpinned, every process would believe it
  had the whole machine for its BLAS threads.

``mpiexec`` (MPICH's Hydra) starts the processes of the other hosts through a launcher script,
``-launcher ssh -launcher-exec <bin>/launch``, which does what ``ssh host command`` would: it
runs the command on the named host. ``mpiexec`` itself runs on host 0 (connections from a
namespace to the root namespace are not made here), and Hydra starts host 0's processes itself.

Faults: :meth:`Cluster.cut` / :meth:`Cluster.mend` take a host's link down and up,
:meth:`Cluster.shape` limits its rate (``tc tbf``), :meth:`Cluster.lose` drops a share of the
frames on the switch (nftables, inside the switch's namespace).

Needs root, ``ip`` (iproute2), ``unshare`` and ``taskset`` (util-linux); ``tc`` and ``nft`` for
shaping and loss. :func:`unavailable` says what is missing. Names start with ``bpc<pid>``; a
cluster left behind by a process that has died is removed by the next one (:func:`remove_stale`).

As a script ("try it on one machine")::

    sudo python tests/cluster.py --hosts 2 -- backprop train --epochs 1 --quiet

makes two hosts, runs ``mpiexec -n 2`` (one process per host) with that command across them,
and tears the cluster down afterwards. ``python tests/cluster.py --clean`` deletes what the
clusters of processes that have ended left behind (CI runs it last).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: first three octets of every address (TEST-NET-1, RFC 5737)
NETWORK = "192.0.2"
#: what every cluster's namespace names start with, followed by the creating process's id
PREFIX = "bpc"
_counter = itertools.count()
#: the environment that makes MPICH's UCX transport use TCP between hosts, as between real
#: machines: left to choose, UCX sees that the hosts share one machine and moves their data
#: through shared memory, never touching the links (measured: 0.3 ms and 15 KB on the wire
#: for an all-reduce of 2 MB, against 4 ms and 2 MB with these). Processes on one host still
#: talk through MPICH's own shared memory.
WIRE = {"UCX_TLS": "tcp,self", "UCX_NET_DEVICES": "eth0"}


def unavailable() -> str | None:
    """Why a cluster cannot be made here (None when it can)."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux"), ("taskset", "util-linux")):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (apt-get install {package})"
    probe = f"{PREFIX}{os.getpid()}probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    alone = subprocess.run(["unshare", "--uts", "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if alone.returncode != 0:
        return f"`unshare --uts --mount` failed: {alone.stderr.strip()}"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _namespaces() -> list[str]:
    listed = _ip("netns", "list").stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def _end_processes_in(namespace: str) -> None:
    """SIGKILL every process in ``namespace`` (they are this cluster's: the namespace is ours)."""
    for pid in _ip("netns", "pids", namespace, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def remove_stale() -> list[str]:
    """Delete the namespaces of clusters whose creating process has ended; returns their names."""
    stale = []
    for name in _namespaces():
        digits = name[len(PREFIX):].split("x")[0]
        if name.startswith(PREFIX) and digits.isdigit() and not Path(f"/proc/{digits}").exists():
            _end_processes_in(name)
            _ip("netns", "delete", name, check=False)
            stale.append(name)
    return stale


@dataclass(frozen=True)
class Host:
    """One host of a :class:`Cluster`: ``name`` (its host name), ``address``, ``namespace``,
    ``cores`` (a taskset list such as ``"1"``) and ``port`` (its veth on the switch)."""

    index: int
    name: str
    address: str
    namespace: str
    cores: str
    port: str


class Cluster:
    """``k`` hosts joined by a switch; a context manager that tears everything down on exit.

    Args:
        k: the number of hosts (at most 200).
        cores: each host's cores for taskset; default :func:`default_cores` (with more hosts
            than cores some share one: say so beside any timing).
        workdir: where the launcher scripts and the hosts' private folders go (default: a new
            temporary folder, removed on exit).

    Attributes:
        hosts: the :class:`Host` list.
        local: the path at which every host sees its own private folder.
        bin: the folder of ``launch`` (for Hydra) and ``on-<host>`` (run a command on a host).
    """

    def __init__(self, k: int, cores: Sequence[str] | None = None, workdir: str | os.PathLike | None = None) -> None:
        if not 1 <= k <= 200:
            raise ValueError(f"k must be in 1..200; got {k}")
        cores = list(cores) if cores is not None else default_cores(k, sorted(os.sched_getaffinity(0)))
        if len(cores) != k:
            raise ValueError(f"cores must name one core list per host ({k}); got {cores}")
        tag = f"{PREFIX}{os.getpid()}x{next(_counter)}"
        self.switch = f"{tag}-switch"
        self.hosts = [Host(i, f"host{i}", f"{NETWORK}.{10 + i}", f"{tag}-host{i}", cores[i], f"port{i}")
                      for i in range(k)]
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-") if workdir is None else workdir)
        self.bin = self.workdir / "bin"
        self.local = self.workdir / "local"
        self._up = False

    # ------------------------------------------------------------ lifetime
    def __enter__(self) -> Cluster:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        """Make the switch, the hosts, their links and the scripts (undone by :meth:`down`,
        which runs here too when any step fails)."""
        remove_stale()
        try:
            self._up = True
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "switch", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "switch", "up")
            for host in self.hosts:
                _ip("netns", "add", host.namespace)
                _ip("-n", host.namespace, "link", "set", "lo", "up")
                # both ends are made inside the namespaces: the root namespace never sees them
                _ip("-n", self.switch, "link", "add", host.port, "type", "veth",
                    "peer", "name", "eth0", "netns", host.namespace)
                _ip("-n", self.switch, "link", "set", host.port, "master", "switch", "up")
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
                _ip("-n", host.namespace, "link", "set", "eth0", "up")
            self._write_scripts()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """End every process on the hosts, delete the namespaces (and so the links) and the
        temporary folder. Safe to call twice."""
        if not self._up:
            return
        for namespace in [h.namespace for h in self.hosts] + [self.switch]:
            _end_processes_in(namespace)
        for namespace in [h.namespace for h in self.hosts] + [self.switch]:
            _ip("netns", "delete", namespace, check=False)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._up = False

    def _write_scripts(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        self.local.mkdir(exist_ok=True)
        for host in self.hosts:
            private = self.private(host.index)
            private.mkdir(parents=True, exist_ok=True)
            inner = (f"hostname {host.name} && mount --bind {shlex.quote(str(private))} "
                     f"{shlex.quote(str(self.local))} && exec taskset -c {host.cores} \"$@\"")
            self._script(f"on-{host.name}", [
                f"# run a command on {host.name}: its network namespace, host name, private folder, cores",
                f"exec ip netns exec {host.namespace} unshare --uts --mount --propagation private "
                f"sh -c {shlex.quote(inner)} on-{host.name} \"$@\""])
        cases = "\n".join(f"  {h.address}|{h.name}) exec {self.bin}/on-{h.name} sh -c \"$*\" ;;"
                          for h in self.hosts)
        self._script("launch", [
            "# what Hydra runs as `ssh [options] HOST COMMAND...`: COMMAND on HOST, through a shell",
            'while [ "${1#-}" != "$1" ]; do shift; done  # ssh options such as -x',
            'host=$1; shift',
            'case $host in', cases,
            '  *) echo "launch: no host $host in this cluster" >&2; exit 255 ;;',
            'esac'])

    def _script(self, name: str, lines: list[str]) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
        path.chmod(0o755)

    # ------------------------------------------------------------ running
    def private(self, i: int) -> Path:
        """Host ``i``'s private folder as seen from outside the cluster (inside, it is :attr:`local`)."""
        return self.workdir / "hosts" / self.hosts[i].name

    def on(self, i: int, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` on host ``i``."""
        return [str(self.bin / f"on-{self.hosts[i].name}"), *argv]

    def mpiexec(self, mpiexec: str, argv: Sequence[str], *, per_host: int = 1,
                hosts: int | Sequence[int] | None = None, env: dict[str, str] | None = None) -> list[str]:
        """The command line of ``mpiexec`` run on host 0 starting ``per_host`` processes of ``argv``
        on each of the first ``hosts`` hosts (default all), or on the hosts of the list
        ``hosts`` in its order (rank 0 on the first)."""
        order = range(hosts or len(self.hosts)) if hosts is None or isinstance(hosts, int) else hosts
        chosen = [self.hosts[i] for i in order]
        env = {**WIRE, **(env or {})}
        genv = [a for name, value in env.items() for a in ("-genv", name, value)]
        return self.on(0, [mpiexec, "-launcher", "ssh", "-launcher-exec", str(self.bin / "launch"),
                           "-iface", "eth0", "-hosts", ",".join(f"{h.address}:{per_host}" for h in chosen),
                           "-n", str(per_host * len(chosen)), *genv, *argv])

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start ``argv`` (made by :meth:`on` or :meth:`mpiexec`) in a session of its own."""
        return subprocess.Popen(list(argv), start_new_session=True, **kwargs)  # type: ignore[call-overload]

    # ------------------------------------------------------------ faults
    def cut(self, i: int) -> None:
        """Take host ``i``'s link down (its port on the switch): nothing reaches it or leaves it."""
        _ip("-n", self.switch, "link", "set", self.hosts[i].port, "down")

    def mend(self, i: int) -> None:
        """Bring host ``i``'s link back up."""
        _ip("-n", self.switch, "link", "set", self.hosts[i].port, "up")

    def shape(self, rate: str | None) -> None:
        """Limit every host's sending rate to ``rate`` (tc's units: ``"1gbit"``), with a token
        bucket on its ``eth0``; ``None`` lifts the limit."""
        for host in self.hosts:
            base = ["tc", "-n", host.namespace, "qdisc"]
            if rate is None:
                subprocess.run([*base, "del", "dev", "eth0", "root"], capture_output=True)
                continue
            # burst: at least rate × 1 ms (a tick's worth of tokens) and 64 KB (a TSO segment)
            bits = _rate_bits(rate)
            burst = max(64 * 1024, int(bits / 8 / 1000))
            done = subprocess.run([*base, "replace", "dev", "eth0", "root", "tbf", "rate", rate,
                                   "burst", str(burst), "latency", "50ms"], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"tc tbf on {host.name}: {done.stderr.strip()}")

    def lose(self, percent: int) -> None:
        """Drop ``percent`` % of the frames the switch forwards, at random (0: none)."""
        nft = ["ip", "netns", "exec", self.switch, "nft"]
        subprocess.run([*nft, "delete", "table", "bridge", "lossy"], capture_output=True)
        if percent:
            rules = ("table bridge lossy {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n"
                     f"  numgen random mod 100 < {int(percent)} counter drop\n }}\n}}\n")
            done = subprocess.run([*nft, "-f", "-"], input=rules, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"nft on the switch: {done.stderr.strip()}")

    def dropped(self) -> int:
        """Frames dropped so far by :meth:`lose`."""
        listed = subprocess.run(["ip", "netns", "exec", self.switch, "nft", "list", "table", "bridge", "lossy"],
                                capture_output=True, text=True).stdout
        words = listed.split()
        return int(words[words.index("packets") + 1]) if "packets" in words else 0

    def bytes_sent(self, i: int) -> int:
        """Bytes host ``i`` has sent on its link so far."""
        shown = _ip("-n", self.hosts[i].namespace, "-s", "-j", "link", "show", "eth0").stdout
        return int(json.loads(shown)[0]["stats64"]["tx"]["bytes"])

    def pids(self, i: int) -> list[int]:
        """The processes running on host ``i``."""
        return [int(p) for p in _ip("netns", "pids", self.hosts[i].namespace, check=False).stdout.split()]


def default_cores(k: int, available: Sequence[int]) -> list[str]:
    """One core per host while they last; with more hosts than cores, host 0 (which also runs
    ``mpiexec``) keeps a core of its own and the others take turns on the rest: three hosts on
    cores [0, 1] get 0, 1, 1."""
    if k <= len(available) or len(available) == 1:
        return [str(available[i % len(available)]) for i in range(k)]
    rest = available[1:]
    return [str(available[0])] + [str(rest[(i - 1) % len(rest)]) for i in range(1, k)]


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the MPICH wheel's) or on PATH, or None."""
    return shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def tool_missing(*tools: str) -> str | None:
    """Why a tool the faults need is missing (``tc``, ``nft``), or None."""
    for tool in tools:
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (apt-get install {'iproute2' if tool == 'tc' else 'nftables'})"
    return None


def _rate_bits(rate: str) -> float:
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1.0}
    for unit, scale in units.items():
        if rate.lower().endswith(unit):
            return float(rate[: -len(unit)]) * scale
    raise ValueError(f"rate must be like 1gbit or 100mbit; got {rate!r}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command under mpiexec across K network-namespace "
                                     "hosts on this machine (needs root), then tear them down.")
    parser.add_argument("--hosts", type=int, default=2, help="number of hosts (default 2)")
    parser.add_argument("--per-host", type=int, default=1, help="processes per host (default 1)")
    parser.add_argument("--mpiexec", default=find_mpiexec(),
                        help="the mpiexec to use (default: the one beside this Python)")
    parser.add_argument("--clean", action="store_true",
                        help="only delete what clusters of processes that have ended left behind")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run on every process")
    args = parser.parse_args(argv)
    if args.clean:
        if os.geteuid() == 0 and shutil.which("ip"):
            for name in remove_stale():
                print(f"deleted {name}", file=sys.stderr)
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    why = unavailable() or (None if args.mpiexec else "no mpiexec found (pip install 'backprop[mpi]')")
    if why or not command:
        parser.error(why or "give the command to run after --")
    with Cluster(args.hosts) as cluster:
        for host in cluster.hosts:
            print(f"{host.name}: {host.address}, cores {host.cores}", file=sys.stderr)
        started = time.perf_counter()
        code = subprocess.run(cluster.mpiexec(args.mpiexec, command, per_host=args.per_host)).returncode
        print(f"mpiexec exited with {code} after {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
