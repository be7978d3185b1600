"""The MNIST runs of the documentation: test accuracy, wall time and peak memory of each.

    python benchmarks/mnist_runs.py [--runs main,nielsen1,nielsen3] [--engines numpy,auto]
                                    [--threads N] [--json benchmarks/mnist_runs.json]

Each run is one ``backprop train`` command (listed in ``RUNS``), started in a fresh process
in a temporary folder, once per engine (``--engine numpy``: the readable NumPy steps, as on a
platform without numba; ``--engine auto``: what a plain install runs). Recorded per run:
the wall time of the whole process (start-up, data loading, training, evaluation, writing the
model), its CPU time (user and system, all threads), its peak resident memory
(``ru_maxrss``), the test accuracy at the last epoch from the model's ``.metrics.json``, and
the engine that ran. ``--threads N`` passes ``--threads N`` to every run (BLAS threads; on a
machine that other jobs share, use 1: idle BLAS threads spin for work and inflate both
clocks). The machine (CPU model, BLAS and its
kernel, versions), the date and the load average before and after are written beside them:
on a machine that other jobs share, wall times grow with the load, accuracies do not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> the flags of ``backprop train`` (none: the main job)
RUNS: dict[str, list[str]] = {
    "main": [],
    "nielsen1": ["--layers", "784,30,10", "--activation", "sigmoid", "--loss", "quadratic",
                 "--optimizer", "sgd", "--lr", "3.0", "--batch-size", "10", "--epochs", "30",
                 "--init", "normal"],
    "nielsen3": ["--layers", "784,100,10", "--activation", "sigmoid", "--loss",
                 "binary_cross_entropy", "--init", "normal_fan_in", "--weight-decay", "1e-4",
                 "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "10", "--epochs", "60"],
    "best": ["--config", str(ROOT / "examples" / "mnist-best.toml")],
}


def machine() -> dict:
    """CPU model, cores, BLAS (library, version, kernel, threads) and versions."""
    import numpy as np

    from backprop.bench.machine import blas_summary, cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_summary(),
            "python": platform.python_version(), "numpy": np.__version__}


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run(name: str, engine: str, threads: int | None) -> dict:
    """One ``backprop train`` in a fresh process and folder: wall and CPU s, peak MB, accuracy,
    engine."""
    flags = [*RUNS[name], "--engine", engine, *([] if threads is None else ["--threads", str(threads)])]
    argv = [sys.executable, "-m", "backprop", "train", *flags, "--quiet", "--out", "model.safetensors"]
    env = dict(os.environ, MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{shlex.join(argv)} failed: {proc.stderr.read().decode()[-2000:]}")
        metrics = json.loads((Path(folder) / "model.metrics.json").read_text())
    return {"command": shlex.join(["backprop", "train", *flags]),
            "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
            "test_accuracy": metrics["test"]["accuracy"], "engine": metrics["engine"]}


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the documentation's MNIST commands and record "
                                                 "test accuracy, wall time and peak memory.")
    parser.add_argument("--runs", default="main,nielsen1,nielsen3",
                        help=f"comma-separated, from {', '.join(RUNS)} (best: about 20 minutes "
                             "on 2 cores, so not run by default)")
    parser.add_argument("--engines", default="numpy,auto", help="comma-separated: numpy, auto, numba")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads of every run "
                        "(default: backprop train's own, all cores)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/mnist_runs.json"))
    args = parser.parse_args()

    if args.threads is not None:  # so that the BLAS line below states the runs' threads
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    about = machine()
    before = load()
    print(f"CPU: {about['cpu']} ({about['cores']} cores); BLAS: {about['blas']}; load average {before}")
    results = []
    for name in args.runs.split(","):
        for engine in args.engines.split(","):
            r = {"run": name, **run(name, engine, args.threads)}
            results.append(r)
            print(f"{name:>9} {engine:>5}: {r['test_accuracy']:.2%} in {r['wall_s']:.1f} s "
                  f"({r['cpu_s']:.1f} CPU s), peak {r['peak_mb']:,.0f} MB ({r['engine']})", flush=True)
    after = load()
    print(f"load average after: {after}")
    data = {"machine": about, "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "command": "python benchmarks/mnist_runs.py " + " ".join(sys.argv[1:]),
            "threads": args.threads, "load_average": {"before": before, "after": after},
            "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
