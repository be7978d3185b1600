"""backprop's scikit-learn estimators against scikit-learn's own MLP, on ``load_digits``.

    python benchmarks/sklearn_digits.py [--repeats 7] [--epochs 50] [--json PATH]

Both estimators fit the same data (``load_digits``, 1,797 × 64, scaled to [0, 1]) with the
same settings, for exactly ``--epochs`` epochs each (``tol=0`` and ``n_iter_no_change``
larger than the epochs, so neither stops early; scikit-learn's "did not converge" warning is
silenced), one hidden layer of 100 units as both default to. For each setting the two run
interleaved in one process, ``--repeats`` times after one untimed round (first calls,
numba's compilation), and the median wall-clock and CPU time of ``fit`` are reported, with the ratios
scikit-learn / backprop (above 1: backprop is faster). On a machine that other jobs share,
the CPU-time ratio is the steadier of the two. Settings:

* ``adam``: the defaults (Adam, batch ``min(200, N)``);
* ``sgd``: scikit-learn's SGD defaults (momentum 0.9, Nesterov, batch 200);
* ``sgd-plain-b16``: plain SGD (no momentum), batch 16, with the default L2 penalty
  ``alpha=1e-4`` (applied in a gradient hook, so backprop takes NumPy steps);
* ``sgd-plain-b16-alpha0``: the same without the penalty, the textbook setting in which
  backprop's compiled engine runs whole stretches of steps in one call;
* ``sgd-plain-b200``: plain SGD at scikit-learn's default batch.

The machine (CPU model, BLAS and its kernel through threadpoolctl, versions) and the load
average before and after are printed and written to the JSON file with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

try:
    import backprop  # noqa: F401
except ImportError:  # not installed: use the source tree next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SETTINGS: dict[str, dict] = {
    "adam": {"solver": "adam"},
    "sgd": {"solver": "sgd"},
    "sgd-plain-b16": {"solver": "sgd", "momentum": 0.0, "batch_size": 16},
    "sgd-plain-b16-alpha0": {"solver": "sgd", "momentum": 0.0, "batch_size": 16, "alpha": 0.0},
    "sgd-plain-b200": {"solver": "sgd", "momentum": 0.0},
}


def machine() -> dict:
    """CPU model, cores, BLAS (library, version, kernel, threads) and package versions."""
    import numba
    import sklearn

    from backprop.bench.machine import blas_summary, cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas_summary(),
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "scikit-learn": sklearn.__version__, "numba": numba.__version__}}


def load() -> str:
    """The 1, 5 and 15 minute load averages (other jobs on the machine), as text."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def time_fit(cls: type, params: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Wall-clock and CPU seconds of one ``fit``, and the training accuracy it reached."""
    est = cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the epochs are fixed on purpose
        start, cpu = time.perf_counter(), time.process_time()
        est.fit(X, y)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert est.n_iter_ == params["max_iter"], (cls, est.n_iter_)
    return seconds, cpu, float(est.score(X, y))


def main() -> int:
    parser = argparse.ArgumentParser(
        description="backprop.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier "
                    "on load_digits: median fit time per setting and the ratio.")
    parser.add_argument("--repeats", type=int, default=7, help="timed, interleaved repeats (median)")
    parser.add_argument("--epochs", type=int, default=50, help="epochs of every fit")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for both (default 1: on a machine shared with other jobs, "
                             "idle BLAS threads that spin for work distort both clocks)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/sklearn_digits.json"))
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)

    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier as SkMLP

    from backprop.sklearn import MLPClassifier as BpMLP

    about = machine()
    load_before = load()
    print(f"CPU: {about['cpu']} ({about['cores']} cores); BLAS: {about['blas']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in about["versions"].items()))
    print(f"load average before: {load_before}")
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    common = {"max_iter": args.epochs, "tol": 0.0, "n_iter_no_change": args.epochs + 1,
              "random_state": 0}
    results = {}
    print(f"\nfit of {args.epochs} epochs on load_digits ({X.shape[0]} x {X.shape[1]}), "
          f"median of {args.repeats}:\n")
    print("| setting | scikit-learn s | backprop s | scikit-learn / backprop | CPU s, sk / bp | "
          "ratio of CPU s | accuracy sk / bp | engine |\n|---|---|---|---|---|---|---|---|")
    for name in args.settings.split(","):
        params = {**common, **SETTINGS[name]}
        times: dict[str, list[float]] = {"sklearn": [], "backprop": []}
        cpus: dict[str, list[float]] = {"sklearn": [], "backprop": []}
        acc = {}
        for rep in range(args.repeats + 1):  # round 0 untimed: first calls, numba compiling
            for label, cls in (("sklearn", SkMLP), ("backprop", BpMLP)):
                seconds, cpu, acc[label] = time_fit(cls, params, X, y)
                if rep:
                    times[label].append(seconds)
                    cpus[label].append(cpu)
        engine = _engine(BpMLP, params, X, y)
        sk, bp = statistics.median(times["sklearn"]), statistics.median(times["backprop"])
        sk_cpu, bp_cpu = statistics.median(cpus["sklearn"]), statistics.median(cpus["backprop"])
        results[name] = {"params": SETTINGS[name], "sklearn_s": times["sklearn"],
                         "backprop_s": times["backprop"], "sklearn_cpu_s": cpus["sklearn"],
                         "backprop_cpu_s": cpus["backprop"], "sklearn_median_s": sk,
                         "backprop_median_s": bp, "ratio": sk / bp,
                         "ratio_cpu": sk_cpu / bp_cpu, "accuracy": acc, "backprop_engine": engine}
        print(f"| {name} | {sk:.3f} | {bp:.3f} | {sk / bp:.2f}x | {sk_cpu:.3f} / {bp_cpu:.3f} | "
              f"{sk_cpu / bp_cpu:.2f}x | {acc['sklearn']:.3f} / {acc['backprop']:.3f} | {engine} |",
              flush=True)
    load_after = load()
    print(f"\nload average after: {load_after}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": about, "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": "python benchmarks/sklearn_digits.py " + " ".join(sys.argv[1:]),
        "load_average": {"before": load_before, "after": load_after},
        "epochs": args.epochs, "repeats": args.repeats, "threads": args.threads,
        "results": results}, indent=2) + "\n")
    print(f"results: {args.json}")
    return 0


def _engine(cls: type, params: dict, X: np.ndarray, y: np.ndarray) -> str:
    """The engine backprop's estimator trained on (``history_.engine``), from a 1-epoch fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(**{**params, "max_iter": 1, "n_iter_no_change": 2}).fit(X, y)
    return str(est.history_.engine)


if __name__ == "__main__":
    sys.exit(main())
