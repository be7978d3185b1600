"""The data-parallel step across two hosts over TCP (tests/cluster.py: network namespaces of
this machine, each pinned to a core of its own), with the link as it is and limited to
10 Gbit/s and 1 Gbit/s, beside the cost model of benchmarks/README.md; the cost of the
collective timeout's polling; and progress bars against ``--quiet``.

    sudo python benchmarks/hosts.py [--steps 40] [--repeats 3] [--rounds 3] [--json PATH]

Needs root, ``ip``, ``tc``, and ``pip install ".[mpi]"``. Writes ``benchmarks/hosts.json``.

* **Step**: C3 (the main job's network, float32, Adam, B = 128) under ``mpiexec`` with one
  process per host, 1 BLAS thread each; ``--steps`` batches per epoch, one untimed epoch, then
  ``--repeats`` timed ones (median). The gradient hook's all-reduce time is measured inside it.
* **Bare all-reduce** of the 1.08 MB gradient, after a barrier, 30 times (median), three ways
  interleaved: MPI's blocking ``Allreduce``; ``Iallreduce`` then ``Wait`` (the nonblocking
  algorithm, waited for in C); and :meth:`Group.sum` (``Iallreduce`` polled with ``Test`` under
  a deadline: the collective timeout). The same for the 3 numbers of the step's second
  all-reduce.
* **Raw TCP**: 256 MB sent from host 0 to host 1 over one socket.
* **Compute**: one process on host 0 alone at batch 64 (the per-process batch of 2 hosts).
* **Progress bars**: ``backprop train`` (the main job on 12,800 MNIST samples, 3 epochs) across
  the two hosts with rank 0 on host 1, so that its bars cross the link through Hydra's proxies,
  with and without ``--quiet``, interleaved; epochs 2 and 3 of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from distributed import machine  # noqa: E402

import cluster as cl  # noqa: E402

#: the links measured: None is the veth pair as it is; the others are tc tbf rates
LINKS = (None, "10gbit", "1gbit")
#: the per-message latency of the model over TCP between hosts, s (see benchmarks/README.md)
LATENCY = 10e-6


# ------------------------------------------------------------------ workers (under mpiexec)
def worker_step(steps: int, repeats: int, batch: int) -> dict:
    import numpy as np

    import backprop as bp
    from backprop import distributed
    from backprop.threads import set_threads

    set_threads(1)
    net = bp.Network([bp.Dense(784, 256), bp.ReLU(), bp.Dense(256, 256), bp.ReLU(), bp.Dense(256, 10)],
                     seed=0, dtype="float32")
    opt = bp.Adam(lr=1e-3)
    (x, y), _ = bp.datasets.load_mnist()
    x, y = x[: 128 * steps], y[: 128 * steps]
    fit = dict(loss="cross_entropy", optimizer=opt, batch_size=batch, verbose=False)
    bp.fit(net, x, y, epochs=1, **fit)  # warm-up: numba's compilation, allocations, connections
    group = distributed.init() if distributed.launched() else None
    if group is not None:
        group.reduce_seconds, group.reduce_calls = 0.0, 0
    history = bp.fit(net, x, y, epochs=repeats, **fit)
    epoch = statistics.median(history.seconds)
    result: dict = {"processes": distributed.size(), "batch": batch, "steps": steps, "engine": history.engine,
                    "epoch_seconds": history.seconds, "step_ms": 1e3 * epoch / (x.shape[0] / batch),
                    "gradient_bytes": int(net.gradient_buffer.nbytes)}
    if group is None:
        return result
    from mpi4py import MPI

    result["hook_allreduce_ms"] = 1e3 * group.reduce_seconds / group.reduce_calls
    for name, buffer in (("gradient", net.gradient_buffer), ("stats", np.zeros(3))):
        ways = {"blocking": lambda b=buffer: group.comm.Allreduce(MPI.IN_PLACE, b, op=MPI.SUM),
                "waited": lambda b=buffer: group.comm.Iallreduce(MPI.IN_PLACE, b, op=MPI.SUM).Wait(),
                "polled": lambda b=buffer: group.sum(b)}
        times: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(30):
            for way, call in ways.items():
                group.barrier()
                began = time.perf_counter()
                call()
                times[way].append(time.perf_counter() - began)
        for way, values in times.items():
            result[f"{name}_{way}_ms"] = 1e3 * statistics.median(values)
    return result


def worker_tcp(role: str, address: str, megabytes: int) -> dict:
    import socket

    chunk = bytes(1 << 20)
    if role == "listen":
        with socket.create_server((address, 5001)) as server:
            conn, _ = server.accept()
            with conn:
                got = 0
                while got < megabytes << 20:
                    data = conn.recv(1 << 20)
                    if not data:
                        break
                    got += len(data)
        return {"received": got}
    for _ in range(100):  # until the listener is up
        try:
            sock = socket.create_connection((address, 5001))
            break
        except OSError:
            time.sleep(0.05)
    began = time.perf_counter()
    with sock:
        for _ in range(megabytes):
            sock.sendall(chunk)
    seconds = time.perf_counter() - began
    return {"megabytes": megabytes, "seconds": seconds, "gbit_per_s": megabytes * (1 << 20) * 8 / seconds / 1e9}


# ------------------------------------------------------------------ orchestration
def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MV2_"))}
    env.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return env


def last_json(command: list[str], timeout: float = 600) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[-6:])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def me(*args: str) -> list[str]:
    return [sys.executable, __file__, *args]


def tcp(cluster: cl.Cluster) -> dict:
    listener = subprocess.Popen(cluster.on(1, me("--worker", "tcp-listen", cluster.hosts[1].address)),
                                stdout=subprocess.PIPE, text=True, env=environment())
    try:
        return last_json(cluster.on(0, me("--worker", "tcp-send", cluster.hosts[1].address)))
    finally:
        listener.communicate(timeout=60)


def progress(cluster: cl.Cluster, mpiexec: str, quiet: bool) -> tuple[float, float]:
    """Median seconds of epochs 2 and 3 of the main job on 12,800 samples, rank 0 on host 1,
    and the CPU seconds of the whole job (every process of both hosts, Hydra's included: all
    are waited-for descendants of this process), which other jobs' load disturbs far less."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = cluster.local / "bars.safetensors"
    argv = [sys.executable, "-m", "backprop", "train", "--limit", "12800", "--epochs", "3",
            "--out", str(out), *(["--quiet"] if quiet else [])]
    done = subprocess.run(cluster.mpiexec(mpiexec, argv, hosts=[1, 0]), capture_output=True, text=True,
                          env=environment(), timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime
    seconds = json.loads((cluster.private(1) / "bars.metrics.json").read_text())["history"]["seconds"]
    return statistics.median(seconds[1:]), cpu


def predicted(compute_ms: float, gradient_bytes: int, gbit: float, k: int = 2) -> dict:
    """The cost model: step = t(B/K) + a(K), a(K) = 2(K − 1)/K · 8G / bandwidth + 2(K − 1) latencies."""
    wire = 2 * (k - 1) / k * gradient_bytes * 8 / (gbit * 1e9)
    allreduce = wire + 2 * (k - 1) * LATENCY
    return {"allreduce_ms": 1e3 * allreduce, "step_ms": compute_ms + 1e3 * allreduce}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    p.add_argument("--json", type=Path, default=HERE / "hosts.json")
    p.add_argument("--parts", default="step,progress", help="what to measure: step, progress or both")
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        kind = args.worker[0]
        if kind == "step":
            result = worker_step(args.steps, args.repeats, int(args.worker[1]))
        else:
            result = worker_tcp("listen" if kind == "tcp-listen" else "send", args.worker[1], 256)
        from backprop import distributed

        if distributed.rank() == 0:
            print(json.dumps(result), flush=True)
        return 0
    why = cl.unavailable() or cl.tool_missing("tc")
    mpiexec = cl.find_mpiexec()
    if why or mpiexec is None:
        sys.exit(f"hosts.py: {why or 'no mpiexec'}")
    results: dict = {"machine": machine(), "links": {}, "load": [os.getloadavg()[0]]}
    print(f"{results['machine']}; load {os.getloadavg()}", flush=True)
    with cl.Cluster(2, workdir=tempfile.mkdtemp(prefix="bpc-bench-")) as cluster:
        step = me("--steps", str(args.steps), "--repeats", str(args.repeats), "--worker", "step")
        parts = args.parts.split(",")
        compute = [last_json(cluster.on(0, [*step, "64"]))["step_ms"]
                   for _ in range(args.rounds if "step" in parts else 0)]
        if compute:
            results["compute_ms_b64"] = statistics.median(compute)
            print(f"compute, one process at batch 64 on one core: {compute} ms/step", flush=True)
        for link in LINKS if "step" in parts else ():
            cluster.shape(link)
            runs = []
            for _ in range(args.rounds):
                runs.append(last_json(cluster.mpiexec(mpiexec, [*step, "128"])))
                results["load"].append(os.getloadavg()[0])
            raw = tcp(cluster)
            name = link or "as is"
            median = {key: statistics.median(r[key] for r in runs) for key in runs[0]
                      if isinstance(runs[0][key], float)}
            results["links"][name] = {"runs": runs, "median": median, "tcp": raw}
            print(f"{name}: raw TCP {raw['gbit_per_s']:.2f} Gbit/s; "
                  + ", ".join(f"{k} {v:.3f}" for k, v in median.items()), flush=True)
        cluster.shape(None)
        bars: dict[str, list[float]] = {"bars": [], "quiet": [], "bars_cpu": [], "quiet_cpu": []}
        for _ in range(args.rounds if "progress" in parts else 0):
            for name, quiet in (("bars", False), ("quiet", True)):
                epoch, cpu = progress(cluster, mpiexec, quiet)
                bars[name].append(epoch)
                bars[f"{name}_cpu"].append(cpu)
        results["progress"] = bars
        print(f"progress bars {bars['bars']} s/epoch, --quiet {bars['quiet']} s/epoch; CPU seconds of the "
              f"job {bars['bars_cpu']} against {bars['quiet_cpu']}", flush=True)
    results["load"].append(os.getloadavg()[0])
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    report(results)
    return 0


def report(results: dict) -> None:
    links = list(results["links"].values())
    gradient = links[0]["runs"][0]["gradient_bytes"] if links else 0
    print("\n| link | raw TCP | bare all-reduce (blocking / waited / polled) | modelled all-reduce | step measured "
          "| step modelled | 3-number all-reduce (blocking / waited / polled) |")
    print("|---|---|---|---|---|---|---|")
    for name, data in results["links"].items():
        m, raw = data["median"], data["tcp"]["gbit_per_s"]
        gbit = {"as is": raw, "10gbit": 10.0, "1gbit": 1.0}[name]
        model = predicted(results["compute_ms_b64"], gradient, min(gbit, raw))
        print(f"| {name} | {raw:.2f} Gbit/s | {m['gradient_blocking_ms']:.2f} / {m['gradient_waited_ms']:.2f} / "
              f"{m['gradient_polled_ms']:.2f} ms | {model['allreduce_ms']:.2f} ms | {m['step_ms']:.2f} ms "
              f"| {model['step_ms']:.2f} ms | {1e3 * m['stats_blocking_ms']:.0f} / {1e3 * m['stats_waited_ms']:.0f} / "
              f"{1e3 * m['stats_polled_ms']:.0f} µs |")
    if not results["progress"]["bars"]:
        return
    bars, quiet, bars_cpu, quiet_cpu = (statistics.median(results["progress"][k])
                                        for k in ("bars", "quiet", "bars_cpu", "quiet_cpu"))
    print(f"CPU seconds of the whole job: bars {bars_cpu:.2f}, --quiet {quiet_cpu:.2f}: "
          f"{100 * (bars_cpu / quiet_cpu - 1):+.1f}%")
    print(f"\nprogress bars {bars:.3f} s/epoch, --quiet {quiet:.3f} s/epoch: {100 * (bars / quiet - 1):+.1f}%")


if __name__ == "__main__":
    sys.exit(main())
