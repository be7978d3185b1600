"""The harness: interleaved repeats of every framework, their medians, and the whole run.

For each configuration and each repeat, the frameworks run one after the other (repeat r:
backprop, torch, sklearn; repeat r+1: ...), so that a change in the machine's speed during the
run touches all of them alike; each repeat ends with the configuration's matrix products timed
alone (:func:`~backprop.bench.gemm.products_alone`). :func:`summarise` turns the raw times into
medians, ratios, GFLOP/s against the GEMM peak and accuracies; :func:`run_benchmark` runs a
list of configurations under one thread count and returns the report.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import frameworks
from .configs import Config, Data, executed_flops, flops, quick_sizes
from .frameworks import FRAMEWORKS, Runner, import_torch
from .gemm import PRODUCTS_S, gemm_peak, products_alone
from .machine import default_threads, machine_info
from .report import format_config, format_header, format_summary

#: seconds of rest before each timed run. After parallel work, idle worker threads spin for a
#: while before they sleep (OpenBLAS's for about 0.1 s, OpenMP's in PyTorch for a
#: configurable time); on a 2-core machine they would take a core from the next framework's
#: run, so each run starts on a quiet machine.
PAUSE_S = 0.5

Log = Callable[[str], None]


def _runners(config: Config, data: Data, seed: int, epochs: int, enabled: dict[str, bool],
             engine: str) -> tuple[dict[str, dict[str, Any]], dict[str, Runner]]:
    """Every framework's result record (``{"status": "ok"|why not}``) and the runners of those
    that run. The factories are looked up on :mod:`.frameworks` here, so a test can replace one."""
    factories: dict[str, Callable[[Config, Data, int, int], Runner]] = {
        "backprop": functools.partial(frameworks.backprop_runner, engine=engine),
        "torch": frameworks.torch_runner, "sklearn": frameworks.sklearn_runner}
    results: dict[str, dict[str, Any]] = {}
    runners: dict[str, Runner] = {}
    for name in FRAMEWORKS:
        status = None if name == "backprop" else frameworks.peer_status(name, config, enabled)
        results[name] = {"status": status or "ok"}
        if status is None:
            runners[name] = factories[name](config, data, seed, epochs)
            results[name].update(seconds=[], accuracy=[])
    return results, runners


def _attempt(results: dict[str, dict[str, Any]], name: str, run: Runner, n: int) -> dict[str, Any] | None:
    """``run(n)``; a peer's failure is recorded in ``results`` as its status (``None`` is
    returned), backprop's is raised."""
    try:
        return run(n)
    except Exception as err:  # a peer's failure is reported, not fatal
        if name == "backprop":
            raise
        results[name] = {"status": f"error: {type(err).__name__}: {err}"}
        return None


def _repeat(runners: dict[str, Runner], results: dict[str, dict[str, Any]], n: int,
            pause: float) -> list[str]:
    """One timed run of each framework still ``"ok"``, recorded in ``results``; the times, as
    ``"name 1.234 s"``, for the log."""
    shown = []
    for name, run in runners.items():
        time.sleep(pause)  # let the previous run's idle worker threads stop spinning
        out = None if results[name]["status"] != "ok" else _attempt(results, name, run, n)
        if out is None:
            continue
        results[name]["seconds"].append(out["seconds"])
        if "accuracy" in out:
            results[name]["accuracy"].append(out["accuracy"])
        if "engine" in out:
            results[name]["engine"] = out["engine"]
        shown.append(f"{name} {out['seconds']:.3f} s")
    return shown


def run_config(config: Config, data: Data, *, repeats: int, epochs: int, seed: int,
               enabled: dict[str, bool], log: Log = print,
               engine: str = "auto", pause: float = PAUSE_S,
               products_seconds: float = PRODUCTS_S) -> dict[str, Any]:
    """Run ``config`` for every framework, interleaved, ``repeats`` times: the raw results.
    ``engine`` is backprop's ``fit(engine=...)``; the one that ran is recorded. Each timed
    run starts after ``pause`` seconds of rest. Each repeat ends with :func:`products_alone`
    timed for ``products_seconds``; the best of those samples is kept."""
    results, runners = _runners(config, data, seed, epochs, enabled, engine)
    n = data.x_test.shape[0] if config.task == "predict" else data.x.shape[0]
    # untimed warm-up (first-call costs: thread pools, allocator, lazy initialisation); at
    # least 500 samples, so that scikit-learn's warm start sees every class
    for name, run in runners.items():
        _attempt(results, name, run, min(n, max(2 * config.batch_size, 500)))
    alone: list[float] = []
    for r in range(repeats):
        shown = _repeat(runners, results, n, pause)
        time.sleep(pause)
        alone.append(products_alone(config, n, products_seconds))
        shown.append(f"matrix products alone {n / alone[-1]:.3f} s")
        log(f"  {config.name} repeat {r + 1}/{repeats}: " + ", ".join(shown))
    return {"n_samples": n, "results": results, "products_alone_samples_per_s": alone}


def _rates(res: dict[str, Any], work: int, total_flops: int, peak: float | None) -> dict[str, Any]:
    """One framework's medians from its times ``res["seconds"]``: samples/s (median, min,
    max over the repeats), GFLOP/s and % of ``peak`` at the median, the median accuracy."""
    rates = [work / s for s in res["seconds"]]
    median_s = statistics.median(res["seconds"])
    gflops = total_flops / median_s / 1e9
    return dict(
        samples_per_s={"median": work / median_s, "min": min(rates), "max": max(rates)},
        gflops=gflops, pct_of_peak=100.0 * gflops / peak if peak else None,
        accuracy=statistics.median(res["accuracy"]) if res.get("accuracy") else None,
        accuracy_runs=res.get("accuracy", []),
    )


def _products_alone_entry(config: Config, raw: dict[str, Any], bp: dict[str, Any], epochs: int,
                          peak: float | None) -> dict[str, Any] | None:
    """The best sample of the matrix products alone (a bound) as a rate, nominal and executed
    GFLOP/s, % of ``peak`` and backprop's median over it; and backprop's rate over the products
    timed in the same repeat, repeat by repeat (median, min, max: the machine's drift between
    repeats cancels in these); ``None`` where it was not measured."""
    if not raw.get("products_alone_samples_per_s"):  # reports from before it was measured
        return None
    n = raw["n_samples"]
    work = n if config.task == "predict" else n * epochs
    samples = raw["products_alone_samples_per_s"]
    rate = max(samples)
    gflops = flops(config, n, epochs) * rate / work / 1e9
    seconds = raw["results"]["backprop"].get("seconds", [])
    per_repeat = None
    if bp["status"] == "ok" and len(seconds) == len(samples):
        ratios = [work / s / alone for s, alone in zip(seconds, samples, strict=True)]
        per_repeat = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    return {"samples_per_s": rate, "gflops": gflops,
            "gflops_executed": executed_flops(config, n, epochs) * rate / work / 1e9,
            "pct_of_peak": 100.0 * gflops / peak if peak else None,
            "backprop_over_products_alone": (bp["samples_per_s"]["median"] / rate
                                             if bp["status"] == "ok" else None),
            "backprop_over_products_alone_per_repeat": per_repeat}


def summarise(config: Config, raw: dict[str, Any], *, epochs: int,
              peaks: dict[str, float]) -> dict[str, Any]:
    """Throughput, ratios, GFLOP/s and accuracy from :func:`run_config`'s raw times."""
    n = raw["n_samples"]
    work = n if config.task == "predict" else n * epochs  # samples processed per run
    total_flops = flops(config, n, epochs)
    peak = peaks.get(config.dtype)
    out: dict[str, Any] = {}
    for name, res in raw["results"].items():
        entry = dict(res)
        if res["status"] == "ok":
            entry.update(_rates(res, work, total_flops, peak))
        out[name] = entry
    bp = out["backprop"]
    for name in FRAMEWORKS[1:]:
        peer = out[name]
        if peer["status"] == "ok" and bp["status"] == "ok":
            peer["ratio_backprop_over_peer"] = (bp["samples_per_s"]["median"]
                                                / peer["samples_per_s"]["median"])
    diff = None
    if out["torch"].get("accuracy") is not None and bp.get("accuracy") is not None:
        diff = 100.0 * (bp["accuracy"] - out["torch"]["accuracy"])
    return {
        "name": config.name, "task": config.task, "description": config.describe(),
        "config": {**{k: getattr(config, k) for k in config.__dataclass_fields__},
                   "loss": config.loss},
        "n_samples": n, "epochs": epochs if config.task == "train" else None,
        "flops_per_run": total_flops,
        "flops_per_run_executed": executed_flops(config, n, epochs),
        "results": out, "products_alone": _products_alone_entry(config, raw, bp, epochs, peak),
        "accuracy_diff_pp_vs_torch": diff,
    }


class _GemmPeak:
    """The GEMM peak per dtype, sampled at the start, before each configuration and at the end;
    the best sample counts: a busy moment of a shared machine can only lower a sample.

    Attributes:
        samples: every sample so far, GFLOP/s, per dtype.
        best: the best of them per dtype (the peak the report divides by).
    """

    def __init__(self, dtypes: Sequence[str], size: int, repeats: int) -> None:
        self.size, self.repeats = size, repeats
        self.samples: dict[str, list[float]] = {dt: [gemm_peak(dt, size, repeats)] for dt in dtypes}
        self.best = {dt: max(v) for dt, v in self.samples.items()}

    def sample(self, dtype: str) -> None:
        """Measure ``dtype``'s peak once more."""
        self.samples[dtype].append(gemm_peak(dtype, self.size, self.repeats))
        self.best[dtype] = max(self.samples[dtype])

    def record(self) -> dict[str, Any]:
        """The report's ``"gemm_peak"``; it holds :attr:`best` and :attr:`samples` themselves,
        so later samples show in it."""
        return {"size": self.size, "repeats": self.repeats, "gflops": self.best,
                "samples": self.samples}


def _config_data(config: Config, datasets: dict[str, Any], quick: bool) -> Data:
    """MNIST in ``config``'s dtype (loaded once per dtype into ``datasets``); with ``quick``, the
    subsets of :func:`~backprop.bench.configs.quick_sizes`."""
    from ..datasets import load_mnist

    if config.dtype not in datasets:
        datasets[config.dtype] = load_mnist(dtype=config.dtype)
    (x, y), (xt, yt) = datasets[config.dtype]
    n, n_test = quick_sizes(config, len(y), len(yt)) if quick else (len(y), len(yt))
    return Data(x[:n], y[:n], xt[:n_test], yt[:n_test])


def _run_all(configs: Sequence[Config], settings: dict[str, Any], gemm_size: int | None,
             log: Log) -> dict[str, Any]:
    """:func:`run_benchmark` once the thread counts are set: the report of ``configs``."""
    quick, epochs = settings["quick"], settings["epochs"]
    peak = _GemmPeak(sorted({c.dtype for c in configs} | {"float32"}),
                     gemm_size or (1024 if quick else 2048), 3 if quick else 5)
    report: dict[str, Any] = {
        "benchmark": "backprop bench", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings, "machine": machine_info(settings["threads"]),
        "gemm_peak": peak.record(), "configs": [],
    }
    log(format_header(report))
    datasets: dict[str, Any] = {}
    enabled = {"torch": settings["torch"], "sklearn": settings["sklearn"]}
    raws = []
    for config in configs:
        peak.sample(config.dtype)
        data = _config_data(config, datasets, quick)
        log("")
        raw = run_config(config, data, repeats=settings["repeats"], epochs=epochs,
                         seed=settings["seed"], enabled=enabled, log=log, engine=settings["engine"],
                         pause=0.0 if quick else PAUSE_S,
                         products_seconds=0.02 if quick else PRODUCTS_S)
        raws.append(raw)
        log(format_config(summarise(config, raw, epochs=epochs, peaks=peak.best)))
    for dt in list(peak.samples):
        peak.sample(dt)
    report["configs"] = [summarise(c, raw, epochs=epochs, peaks=peak.best)
                         for c, raw in zip(configs, raws, strict=True)]
    log("")
    log(format_summary(report))
    return report


def run_benchmark(configs: Sequence[Config], *, repeats: int = 3, epochs: int = 1,
                  threads: int | None = None, quick: bool = False, seed: int = 0,
                  torch: bool = True, sklearn: bool = True, gemm_size: int | None = None,
                  engine: str = "auto", log: Log = print) -> dict[str, Any]:
    """Run ``configs`` and return the report (what ``--json`` writes); ``log`` gets the output.

    Every framework runs on ``threads`` threads (default: :func:`default_threads`); PyTorch's
    own thread count is restored at the end.
    """
    from threadpoolctl import threadpool_limits

    threads, threads_from = (threads, "--threads") if threads else default_threads()
    settings = {"configs": [c.name for c in configs], "repeats": repeats, "epochs": epochs,
                "threads": threads, "threads_from": threads_from, "quick": quick, "seed": seed,
                "engine": engine, "torch": torch, "sklearn": sklearn}
    torch_mod = import_torch() if torch else None
    old_torch_threads = torch_mod.get_num_threads() if torch_mod is not None else None
    with threadpool_limits(limits=threads, user_api="blas"):
        if torch_mod is not None:
            torch_mod.set_num_threads(threads)
        try:
            return _run_all(configs, settings, gemm_size, log)
        finally:
            if torch_mod is not None:
                torch_mod.set_num_threads(old_torch_threads)
