"""Data parallelism measured: C3 and C4 on one process with 2 threads against 2 processes
(``mpiexec -n 2``) with 1 thread each (and one process with 1 thread, the unit of both), and
the compute time per step of one 1-thread process at the per-process batches ⌈B/K⌉ of
K = 1 .. 64 that the cost model in benchmarks/README.md ("Data parallelism") needs.

    python benchmarks/distributed.py [--configs C3,C4] [--steps 30] [--repeats 3] [--json PATH]

It prints a table and writes the numbers to ``benchmarks/distributed.json``. Each measurement
runs in a fresh process (the 2-process one under ``mpiexec``, found beside this Python or on
PATH: ``pip install ".[mpi]"``), trains ``--steps`` batches of MNIST per epoch, one untimed
epoch first (numba's compilation, allocations) and then ``--repeats`` timed epochs, whose
median is reported. The all-reduce time per step is measured inside the gradient hook
(``Group.reduce_seconds``), so it includes waiting for the slower process; the "bare"
all-reduce is the same call on the gradient buffer timed alone after a barrier.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: name: (widths, optimizer, batch) as in benchmarks/README.md's table of configurations
CONFIGS = {"C3": ([784, 256, 256, 10], "adam", 128), "C4": ([784, 2048, 2048, 10], "sgd", 256)}
#: the process counts of the cost model; the compute sweep measures batch ⌈B/K⌉ for each
MODEL_K = (1, 2, 4, 8, 16, 32, 64)
#: the most steps per epoch of the compute sweep (--steps × K, capped here)
SWEEP_STEPS = 300


# --------------------------------------------------------------- one measurement
def _build(name: str, seed: int = 0):
    import backprop as bp

    widths, kind, batch = CONFIGS[name]
    layers: list = []
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(bp.Dense(d_in, d_out, init="he_uniform"))
        if i < len(widths) - 2:
            layers.append(bp.ReLU())
    net = bp.Network(layers, seed=seed, dtype="float32")
    opt = bp.Adam(lr=1e-3) if kind == "adam" else bp.SGD(lr=0.01, momentum=0.9)
    return net, opt, batch


def measure(name: str, steps: int, repeats: int, batch: int | None, threads: int) -> dict:
    """Train ``steps`` batches per epoch, one warm-up epoch then ``repeats`` timed ones; in
    every process of the job (rank 0 reports). ``batch``: override the configuration's."""
    import backprop as bp
    from backprop import distributed
    from backprop.threads import set_threads

    set_threads(threads)
    net, opt, default_batch = _build(name)
    b = batch or default_batch
    (x, y), _ = bp.datasets.load_mnist()
    x, y = x[: b * steps], y[: b * steps]
    bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=b, verbose=False)  # warm-up
    group = distributed.init() if distributed.launched() else None
    if group is not None:
        group.reduce_seconds, group.reduce_calls = 0.0, 0
    history = bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=repeats, batch_size=b, verbose=False)
    epoch = statistics.median(history.seconds)
    result = {"config": name, "batch": b, "steps": steps, "threads": threads, "processes": distributed.size(),
              "engine": history.engine, "epoch_seconds": history.seconds, "step_ms": 1e3 * epoch / steps,
              "min_step_ms": 1e3 * min(history.seconds) / steps, "samples_per_s": b * steps / epoch,
              "gradient_bytes": int(net.gradient_buffer.nbytes)}
    if group is not None:
        result["allreduce_ms"] = 1e3 * group.reduce_seconds / group.reduce_calls
        result["allreduce_share"] = result["allreduce_ms"] / result["step_ms"]
        grads, times = net.gradient_buffer, []
        for _ in range(20):
            group.barrier()
            began = time.perf_counter()
            group.sum(grads)
            times.append(time.perf_counter() - began)
        bare = statistics.median(times)
        result["bare_allreduce_ms"] = 1e3 * bare
        result["bare_allreduce_GBps"] = grads.nbytes * 2 * (group.size - 1) / group.size / bare / 1e9  # ring volume
    return result


# ------------------------------------------------------------------ orchestration
def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        sys.exit("distributed.py: no mpiexec; pip install '.[mpi]'")
    return found


def _run(command: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=1800).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["load_before"], result["load_after"] = load, os.getloadavg()[0]
    return result


def _worker_command(name: str, args: argparse.Namespace, threads: int, batch: int | None = None,
                    steps: int | None = None) -> list[str]:
    command = [sys.executable, __file__, "--worker", name, "--threads", str(threads),
               "--steps", str(steps or args.steps), "--repeats", str(args.repeats)]
    return command + (["--batch", str(batch)] if batch else [])


def machine() -> dict:
    """The CPU model, its usable cores, and numpy's BLAS (threadpoolctl)."""
    import numpy  # noqa: F401 (loads the BLAS that threadpoolctl reports)
    from threadpoolctl import threadpool_info

    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info() if info.get("user_api") == "blas"]
    return {"cpu": names[0] if names else platform.processor(), "cores": len(os.sched_getaffinity(0)),
            "blas": blas, "python": platform.python_version()}


# ------------------------------------------------------------------- cost model
#: link speeds of the cost model, Gbit/s
LINKS = (10, 25, 100)


def allreduce_seconds(k: int, nbytes: int, gbit: float) -> float:
    """A ring all-reduce of ``nbytes`` over ``k`` processes: each sends and receives
    ``2(k − 1)/k · nbytes`` over its link of ``gbit`` Gbit/s (bandwidth term only)."""
    return 2 * (k - 1) / k * nbytes * 8 / (gbit * 1e9)


def model(run: dict) -> dict:
    """Predicted scaling efficiency of one configuration's run for K in MODEL_K and each link.

    * fixed global batch B (each process ⌈B/K⌉ rows): ``E = t(B) / (K (t(⌈B/K⌉) + a(K)))``;
    * fixed batch B per process (global batch KB): ``E = t(B) / (t(B) + a(K))``;

    ``t(b)`` is the measured compute time per step at batch b (one process, 1 thread: a
    process is one core of this machine; its fastest timed epoch) and ``a(K)`` :func:`allreduce_seconds` of the
    gradient buffer."""
    compute = {int(k): v / 1e3 for k, v in run["compute_ms_by_k"].items()}
    nbytes, full = run["one_process"]["gradient_bytes"], compute[1]
    out: dict = {"fixed_global": {}, "fixed_per_process": {}}
    for gbit in LINKS:
        out["fixed_global"][gbit] = {k: full / (k * (compute[k] + allreduce_seconds(k, nbytes, gbit)))
                                     for k in MODEL_K if k > 1}
        out["fixed_per_process"][gbit] = {k: full / (full + allreduce_seconds(k, nbytes, gbit))
                                          for k in MODEL_K if k > 1}
    two = run["two_processes"]
    # here: the "link" is shared memory at the bare all-reduce's measured rate
    predicted = compute[2] + two["bare_allreduce_ms"] / 1e3
    out["here"] = {"predicted_step_ms": 1e3 * predicted, "measured_step_ms": two["step_ms"],
                   "predicted_efficiency": full / (2 * predicted),
                   "measured_efficiency": full / (2 * two["step_ms"] / 1e3)}
    return out


def print_model(results: dict) -> None:
    """The cost model's tables, as benchmarks/README.md shows them."""
    for run in results["runs"]:
        m = model(run)
        print(f"\n{run['config']}: gradient {run['one_process']['gradient_bytes'] / 1e6:.2f} MB, compute per step "
              + ", ".join(f"t({-(-CONFIGS[run['config']][2] // int(k))})={v:.2f} ms"
                          for k, v in run["compute_ms_by_k"].items()))
        for kind, table in (("fixed global batch", m["fixed_global"]), ("fixed batch per process",
                                                                         m["fixed_per_process"])):
            print(f"  {kind}: " + "  ".join(f"K={k}" for k in MODEL_K if k > 1))
            for gbit, row in table.items():
                print(f"    {gbit:>3} Gbit/s  " + "  ".join(f"{100 * e:.0f}%" for e in row.values()))
        here = m["here"]
        print(f"  here, 2 processes: predicted {here['predicted_step_ms']:.2f} ms/step "
              f"({100 * here['predicted_efficiency']:.0f}%), measured {here['measured_step_ms']:.2f} ms/step "
              f"({100 * here['measured_efficiency']:.0f}%)")


# ------------------------------------------------------------------------- main
def _median_run(runs: list[dict]) -> dict:
    """The run whose step time is the median of ``runs`` (with every run's step time kept)."""
    ordered = sorted(runs, key=lambda r: r["step_ms"])
    return {**ordered[len(ordered) // 2], "step_ms_rounds": [r["step_ms"] for r in runs],
            "loads": [r["load_before"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="C3,C4")
    p.add_argument("--steps", type=int, default=30, help="batches per epoch (default 30)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per run, median taken (default 3)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of (1 process, 2 processes), interleaved; the median round is reported (default 3)")
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "distributed.json")
    p.add_argument("--model", type=Path, default=None, help="only print the cost model of this results file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = measure(args.worker, args.steps, args.repeats, args.batch, args.threads)
        from backprop import distributed

        if distributed.rank() == 0:
            print(json.dumps(result), flush=True)
        return 0
    if args.model is not None:
        print_model(json.loads(args.model.read_text()))
        return 0
    results: dict = {"machine": machine(), "runs": []}
    print(f"{results['machine']}; load {os.getloadavg()}", flush=True)
    for name in args.configs.split(","):
        ones, twos, singles = [], [], []
        for _ in range(args.rounds):  # interleaved: a change of the machine's load hits all three
            ones.append(_run(_worker_command(name, args, 2), 2))
            twos.append(_run([_mpiexec(), "-n", "2", *_worker_command(name, args, 1)], 1))
            singles.append(_run(_worker_command(name, args, 1), 1))
        one, two, single = _median_run(ones), _median_run(twos), _median_run(singles)
        # compute per step at the per-process batch of K processes, 1 thread: the least disturbed
        # (fastest) timed epoch, of up to 300 steps so that small batches run long enough to time
        sweep = {1: min(r["min_step_ms"] for r in singles)}
        for k in MODEL_K[1:]:
            batch, steps = -(-CONFIGS[name][2] // k), min(SWEEP_STEPS, args.steps * k)
            sweep[k] = _run(_worker_command(name, args, 1, batch, steps), 1)["min_step_ms"]
        results["runs"].append({"config": name, "one_process": one, "two_processes": two,
                                "one_process_one_thread": single, "compute_ms_by_k": sweep})
        for label, r in (("1 process x 2 threads", one), ("2 processes x 1 thread", two),
                         ("1 process x 1 thread", single)):
            extra = (f"; all-reduce {r['allreduce_ms']:.2f} ms/step = {100 * r['allreduce_share']:.1f}% of the "
                     f"step, bare {r['bare_allreduce_ms']:.2f} ms ({r['bare_allreduce_GBps']:.2f} GB/s)"
                     if "allreduce_ms" in r else "")
            print(f"{name} {label}: {r['samples_per_s']:,.0f} samples/s, {r['step_ms']:.2f} ms/step (rounds "
                  f"{[round(v, 2) for v in r['step_ms_rounds']]}, load {[round(v, 1) for v in r['loads']]}){extra}",
                  flush=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print_model(results)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
