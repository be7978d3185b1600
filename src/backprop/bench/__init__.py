"""``backprop bench``: backprop against PyTorch and scikit-learn on MNIST, in one process.

For each configuration (:data:`CONFIGS`) and each repeat, the frameworks run one after the
other (repeat r: backprop, torch, sklearn; repeat r+1: ...), so that a change in the machine's
speed during the run touches all of them alike. Every framework gets the same thread count,
the same initial weights (copied from backprop's network; scikit-learn's through a warm start),
the same data and, for backprop and PyTorch, the same mini-batches in the same order. Reported
per configuration: samples (or images) per second, median and range over the repeats; the
ratio backprop/peer; the achieved GFLOP/s against the GEMM peak measured in the same run; the
rate the configuration's matrix products alone allow (:func:`products_alone`); and the test
accuracy after the same epochs. See ``benchmarks/README.md``.

PyTorch and scikit-learn are optional: a framework that is not installed is reported as such.
They are imported inside the functions that use them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

FRAMEWORKS = ("backprop", "torch", "sklearn")
NOT_INSTALLED = "not installed"
CANNOT_EXPRESS = "n/a (cannot express)"
DEFAULT_JSON = Path("benchmarks/results.json")
QUICK_JSON = Path("benchmarks/results-quick.json")
#: --quick: steps per epoch are chosen so that an epoch costs about this many FLOPs ...
QUICK_FLOP_BUDGET = 4e9
#: ... within these bounds; and this many test images
QUICK_STEPS, QUICK_TEST = (4, 30), 1000
#: seconds of each repeat's sample of :func:`products_alone`
PRODUCTS_S = 0.5


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: a network, its loss and optimizer, a batch size, a dtype.

    ``output="sigmoid"`` means a sigmoid output layer under the quadratic cost
    ``mean_n ½‖a_n − y_n‖²`` (one-hot targets); ``output="logits"`` means softmax
    cross-entropy on logits. ``task="predict"`` times inference on the test images.
    """

    name: str
    widths: tuple[int, ...]
    hidden: str             # "sigmoid" | "relu"
    output: str             # "sigmoid" (quadratic cost) | "logits" (softmax cross-entropy)
    optimizer: str          # "sgd" | "adam"
    lr: float
    batch_size: int
    momentum: float = 0.0
    dtype: str = "float32"
    init: str = "he_uniform"
    task: str = "train"     # "train" | "predict"

    @property
    def loss(self) -> str:
        return "quadratic" if self.output == "sigmoid" else "cross_entropy"

    def describe(self) -> str:
        net = f"[{','.join(map(str, self.widths))}] {self.hidden}"
        if self.task == "predict":
            return f"{net}: predict on the test images, {self.dtype}"
        out = ("sigmoid output, quadratic cost" if self.output == "sigmoid"
               else "softmax cross-entropy")
        opt = (f"Adam lr={self.lr:g}" if self.optimizer == "adam" else
               f"SGD η={self.lr:g}" + (f" momentum {self.momentum:g}" if self.momentum else ""))
        return f"{net}, {out}, {opt}, batch {self.batch_size}, init {self.init}, {self.dtype}"


_C3 = dict(widths=(784, 256, 256, 10), hidden="relu", output="logits", optimizer="adam",
           lr=1e-3, batch_size=128)
_C4 = dict(widths=(784, 2048, 2048, 10), hidden="relu", output="logits", optimizer="sgd",
           lr=0.01, momentum=0.9, batch_size=256)
#: the configurations of the issue "Performance", item 2, in the order they run
CONFIGS: dict[str, Config] = {c.name: c for c in (
    Config("C1", (784, 30, 10), "sigmoid", "sigmoid", "sgd", 3.0, 10, init="normal"),
    Config("C2", (784, 100, 10), "sigmoid", "logits", "sgd", 0.5, 10, init="normal_fan_in"),
    Config("C3", **_C3),
    Config("C4", **_C4),
    Config("C3-predict", **_C3, task="predict"),
    Config("C4-predict", **_C4, task="predict"),
    Config("C3-f64", **_C3, dtype="float64"),
    Config("C4-f64", **_C4, dtype="float64"),
)}


# ------------------------------------------------------------------ the pieces
def macs(widths: Sequence[int]) -> int:
    """Multiply-adds of one sample's forward pass through the Dense layers: ``Σ d_in·d_out``."""
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def flops(config: Config, n_samples: int, epochs: int = 1) -> int:
    """The nominal FLOPs of a run: ``6·N·Σ d_in·d_out`` per training epoch (forward 2, backward
    4 per multiply-add), ``2·N·Σ d_in·d_out`` for one inference pass over N samples."""
    if config.task == "predict":
        return 2 * n_samples * macs(config.widths)
    return 6 * n_samples * macs(config.widths) * epochs


def executed_flops(config: Config, n_samples: int, epochs: int = 1) -> int:
    """:func:`flops` less the first layer's ``dC/dx = Δ W`` (``2·N·d_0·d_1`` per epoch), which
    neither backprop (``input_grad=False``) nor PyTorch (the input needs no gradient) computes."""
    if config.task == "predict":
        return flops(config, n_samples)
    w = config.widths
    return flops(config, n_samples, epochs) - 2 * n_samples * w[0] * w[1] * epochs


def matrix_products(config: Config, rows: int, rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    """The matrix products of one training step on a batch of ``rows`` samples (or of one
    ``predict`` chunk of ``rows`` images), as ``(a, b, out)`` for ``np.matmul(a, b, out=out)``
    on random data, with the operands laid out as :class:`~backprop.Dense` holds them.

    Per layer ``Z = A Wᵀ`` (A ``(rows, d_in)``, W ``(d_out, d_in)``); for training then, from the
    last layer back, ``dW = Δᵀ A`` (Δ ``(rows, d_out)``) and, except for the first layer, whose
    input needs no gradient, ``dA = Δ W``. Their FLOPs are :func:`executed_flops` for ``rows``.
    """
    dtype = np.dtype(config.dtype)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    widths = config.widths
    acts = [rand(rows, d) for d in widths[:-1]]
    weights = [rand(d_out, d_in) for d_in, d_out in zip(widths[:-1], widths[1:], strict=True)]
    products = [(a, w.T, np.empty((rows, w.shape[0]), dtype)) for a, w in zip(acts, weights, strict=True)]
    if config.task == "train":
        for layer in reversed(range(len(weights))):
            delta = rand(rows, widths[layer + 1])
            products.append((delta.T, acts[layer], np.empty_like(weights[layer])))
            if layer > 0:
                products.append((delta, weights[layer], np.empty_like(acts[layer])))
    return products


def products_alone(config: Config, n_samples: int, seconds: float = PRODUCTS_S, seed: int = 0) -> float:
    """Samples (images) per second that ``config``'s matrix products alone allow: those of
    :func:`matrix_products`, for one batch (training) or for ``n_samples`` images in chunks of
    ``Network.PREDICT_ROWS`` (``predict``), run back to back for at least ``seconds``.

    Everything else a step does (activations, loss, bias, the optimizer, the batch gather) is
    left out, so backprop's rate over this one is the share of its time spent in the products.
    """
    from ..network import Network

    rng = np.random.default_rng(seed)
    if config.task == "train":
        plans, per_call = [matrix_products(config, config.batch_size, rng)], config.batch_size
    else:
        rows = min(Network.PREDICT_ROWS, n_samples)
        full, rest = divmod(n_samples, rows)
        plans = [matrix_products(config, rows, rng)] * full
        plans += [matrix_products(config, rest, rng)] if rest else []
        per_call = n_samples

    def call() -> None:
        for plan in plans:
            for a, b, out in plan:
                np.matmul(a, b, out=out)

    call()  # warm-up: threads, pages
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * per_call / elapsed


def epoch_orders(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The sample order of each epoch exactly as :func:`backprop.fit` draws it with
    ``shuffle=True, seed=seed``: one generator, one ``permutation(n)`` per epoch."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def gemm_peak(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of numpy's ``matmul`` of two square ``size``² matrices: best of ``repeats``."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    c = np.empty_like(a)
    np.matmul(a, b, out=c)  # warm-up: threads, pages
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def import_torch():
    """The ``torch`` module, or ``None`` when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def import_sklearn_mlp():
    """scikit-learn's ``MLPClassifier``, or ``None`` when scikit-learn is not installed."""
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    return MLPClassifier


# ------------------------------------------------------------------ backprop
def build_network(config: Config, seed: int):
    """backprop's network for ``config``; its weights are drawn from ``seed``."""
    from ..activations import ReLU, Sigmoid
    from ..layers import Dense
    from ..network import Network

    act = {"sigmoid": Sigmoid, "relu": ReLU}[config.hidden]
    layers: list = []
    n_dense = len(config.widths) - 1
    for i, (d_in, d_out) in enumerate(zip(config.widths[:-1], config.widths[1:], strict=True)):
        layers.append(Dense(d_in, d_out, init=config.init))
        if i < n_dense - 1:
            layers.append(act())
    if config.output == "sigmoid":
        layers.append(Sigmoid())
    return Network(layers, seed=seed, dtype=config.dtype)


def dense_params(net) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of each Dense layer of ``net``, in order (W of shape ``(d_out, d_in)``)."""
    return [(layer.params["W"], layer.params["b"]) for layer in net.layers if "W" in layer.params]


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(outputs).argmax(axis=1) == labels))


def _backprop_runner(config: Config, data: Data, seed: int, epochs: int, engine: str = "auto"):
    from ..losses import get_loss
    from ..optim import SGD, Adam
    from ..training import fit

    def run(n: int) -> dict[str, Any]:
        net = build_network(config, seed)
        if config.task == "predict":
            start = time.perf_counter()
            net.predict(data.x_test[:n])
            return {"seconds": time.perf_counter() - start, "engine": "numpy"}
        opt = (Adam(lr=config.lr) if config.optimizer == "adam"
               else SGD(lr=config.lr, momentum=config.momentum))
        start = time.perf_counter()
        history = fit(net, data.x[:n], data.y[:n], loss=get_loss(config.loss), optimizer=opt,
                      epochs=epochs, batch_size=config.batch_size, shuffle=True, seed=seed,
                      verbose=False, engine=engine)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "accuracy": _accuracy(net.predict(data.x_test), data.y_test),
                "engine": history.engine}

    return run


# ------------------------------------------------------------------ PyTorch
def build_torch_model(config: Config, net):
    """An ``nn.Sequential`` equal to backprop's ``net``: the same layers and a bit-for-bit copy
    of its initial weights (``nn.Linear.weight`` is ``(d_out, d_in)``, like backprop's ``W``)."""
    torch = import_torch()
    from torch import nn

    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[config.hidden]
    params = dense_params(net)
    modules: list = []
    for i, (W, b) in enumerate(params):
        linear = nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(params) - 1:
            modules.append(act())
    if config.output == "sigmoid":
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def _torch_runner(config: Config, data: Data, seed: int, epochs: int):
    torch = import_torch()
    from torch.nn import functional as F

    # converted once, outside the timed region (torch.from_numpy shares the memory)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    x_test = torch.from_numpy(data.x_test)
    onehot = torch.nn.functional.one_hot(y, config.widths[-1]).to(x.dtype)
    targets = onehot if config.loss == "quadratic" else y

    def loss_fn(a, t):
        if config.loss == "quadratic":  # mean over the batch of ½‖a − y‖², as bp.Quadratic
            return F.mse_loss(a, t, reduction="sum") * (0.5 / a.shape[0])
        return F.cross_entropy(a, t)

    def run(n: int) -> dict[str, Any]:
        model = build_torch_model(config, build_network(config, seed))
        if config.task == "predict":
            model.eval()
            start = time.perf_counter()
            with torch.inference_mode():
                model(x_test[:n])
            return {"seconds": time.perf_counter() - start}
        if config.optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                  nesterov=False)
        bs = config.batch_size
        model.train()
        start = time.perf_counter()
        for order in epoch_orders(n, epochs, seed):  # the very batches fit visits
            perm = torch.from_numpy(order)
            total_loss, correct = 0.0, 0
            for lo in range(0, n, bs):
                idx = perm[lo:lo + bs]
                xb, tb = x.index_select(0, idx), targets.index_select(0, idx)
                labels = y.index_select(0, idx) if config.loss == "quadratic" else tb
                out = model(xb)
                loss = loss_fn(out, tb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # what fit does per step: the batch loss as a float and the running accuracy
                total_loss += loss.item() * idx.shape[0]
                correct += int((out.argmax(1) == labels).sum())
        seconds = time.perf_counter() - start
        model.eval()
        with torch.inference_mode():
            acc = _accuracy(model(x_test).numpy(), data.y_test)
        return {"seconds": seconds, "accuracy": acc}

    return run


# ------------------------------------------------------------------ scikit-learn
def build_sklearn_model(config: Config, net, data: Data, seed: int, epochs: int):
    """An ``MLPClassifier`` holding backprop's initial weights, ready for ``fit(x, y)``.

    scikit-learn has no way to pass initial weights, so: fit once for one epoch on a few
    hundred samples (this creates ``coefs_``), overwrite ``coefs_``/``intercepts_`` with
    backprop's ``Wᵀ``/``b``, and switch on ``warm_start``, under which the next ``fit``
    starts from those weights (with a fresh optimizer state).
    """
    MLPClassifier = import_sklearn_mlp()
    from sklearn.exceptions import ConvergenceWarning

    clf = MLPClassifier(
        hidden_layer_sizes=config.widths[1:-1],
        activation={"sigmoid": "logistic", "relu": "relu"}[config.hidden],
        solver=config.optimizer, alpha=0.0, batch_size=config.batch_size,
        learning_rate="constant", learning_rate_init=config.lr,
        momentum=config.momentum, nesterovs_momentum=False,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8,
        max_iter=1, shuffle=True, random_state=seed,
        tol=0.0, n_iter_no_change=10**9, early_stopping=False,
    )
    m = min(len(data.y), 500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # batch_size > m is clipped, with a warning
        clf.fit(data.x[:m], data.y[:m])
    for coef, intercept, (W, b) in zip(clf.coefs_, clf.intercepts_, dense_params(net), strict=True):
        coef[...] = W.T
        intercept[...] = b
    clf.set_params(warm_start=True, max_iter=epochs)
    return clf


def _sklearn_runner(config: Config, data: Data, seed: int, epochs: int):
    from sklearn.exceptions import ConvergenceWarning

    def run(n: int) -> dict[str, Any]:
        clf = build_sklearn_model(config, build_network(config, seed), data, seed, epochs)
        if config.task == "predict":
            start = time.perf_counter()
            clf.predict_proba(data.x_test[:n])
            return {"seconds": time.perf_counter() - start}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: intended
            start = time.perf_counter()
            clf.fit(data.x[:n], data.y[:n])
            seconds = time.perf_counter() - start
        acc = _accuracy(clf.predict_proba(data.x_test), data.y_test)
        return {"seconds": seconds, "accuracy": acc}

    return run


# ------------------------------------------------------------------ the harness
@dataclass
class Data:
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _peer_status(name: str, config: Config, enabled: dict[str, bool]) -> str | None:
    """Why framework ``name`` does not run ``config`` (``None``: it runs)."""
    if not enabled.get(name, True):
        return f"disabled (--no-{name})"
    if name == "torch" and import_torch() is None:
        return NOT_INSTALLED
    if name == "sklearn":
        if import_sklearn_mlp() is None:
            return NOT_INSTALLED
        if config.output == "sigmoid":  # MLPClassifier: softmax/log-loss output only
            return CANNOT_EXPRESS
    return None


def quick_sizes(config: Config, n_train: int, n_test: int) -> tuple[int, int]:
    """(training samples, test samples) of a --quick run: a few dozen steps at most."""
    if config.task == "predict":
        return n_train, min(n_test, QUICK_TEST)
    per_step = flops(config, config.batch_size)
    steps = int(min(max(QUICK_FLOP_BUDGET // per_step, QUICK_STEPS[0]), QUICK_STEPS[1]))
    return min(n_train, steps * config.batch_size), min(n_test, QUICK_TEST)


#: seconds of rest before each timed run. After parallel work, idle worker threads spin for a
#: while before they sleep (OpenBLAS's for about 0.1 s, OpenMP's in PyTorch for a
#: configurable time); on a 2-core machine they would take a core from the next framework's
#: run, so each run starts on a quiet machine.
PAUSE_S = 0.5


def run_config(config: Config, data: Data, *, repeats: int, epochs: int, seed: int,
               enabled: dict[str, bool], log: Callable[[str], None] = print,
               engine: str = "auto", pause: float = PAUSE_S,
               products_seconds: float = PRODUCTS_S) -> dict[str, Any]:
    """Run ``config`` for every framework, interleaved, ``repeats`` times: the raw results.
    ``engine`` is backprop's ``fit(engine=...)``; the one that ran is recorded. Each timed
    run starts after ``pause`` seconds of rest. Each repeat ends with :func:`products_alone`
    timed for ``products_seconds``; the best of those samples is kept."""
    factories = {"backprop": functools.partial(_backprop_runner, engine=engine),
                 "torch": _torch_runner, "sklearn": _sklearn_runner}
    results: dict[str, dict[str, Any]] = {}
    runners = {}
    for name in FRAMEWORKS:
        status = None if name == "backprop" else _peer_status(name, config, enabled)
        results[name] = {"status": status or "ok"}
        if status is None:
            runners[name] = factories[name](config, data, seed, epochs)
            results[name].update(seconds=[], accuracy=[])
    predict = config.task == "predict"
    n = data.x_test.shape[0] if predict else data.x.shape[0]
    def attempt(name: str, run: Callable[[int], dict[str, Any]], m: int) -> dict[str, Any] | None:
        try:
            return run(m)
        except Exception as err:  # a peer's failure is reported, not fatal
            if name == "backprop":
                raise
            results[name] = {"status": f"error: {type(err).__name__}: {err}"}
            return None

    # untimed warm-up (first-call costs: thread pools, allocator, lazy initialisation); at
    # least 500 samples, so that scikit-learn's warm start sees every class
    for name, run in runners.items():
        attempt(name, run, min(n, max(2 * config.batch_size, 500)))
    alone: list[float] = []
    for r in range(repeats):
        shown = []
        for name, run in runners.items():
            time.sleep(pause)  # let the previous run's idle worker threads stop spinning
            out = None if results[name]["status"] != "ok" else attempt(name, run, n)
            if out is None:
                continue
            results[name]["seconds"].append(out["seconds"])
            if "accuracy" in out:
                results[name]["accuracy"].append(out["accuracy"])
            if "engine" in out:
                results[name]["engine"] = out["engine"]
            shown.append(f"{name} {out['seconds']:.3f} s")
        time.sleep(pause)
        alone.append(products_alone(config, n, products_seconds))
        shown.append(f"matrix products alone {n / alone[-1]:.3f} s")
        log(f"  {config.name} repeat {r + 1}/{repeats}: " + ", ".join(shown))
    return {"n_samples": n, "results": results, "products_alone_samples_per_s": alone}


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
            rates = [work / s for s in res["seconds"]]
            median_s = statistics.median(res["seconds"])
            gflops = total_flops / median_s / 1e9
            entry.update(
                samples_per_s={"median": work / median_s, "min": min(rates), "max": max(rates)},
                gflops=gflops, pct_of_peak=100.0 * gflops / peak if peak else None,
                accuracy=statistics.median(res["accuracy"]) if res.get("accuracy") else None,
                accuracy_runs=res.get("accuracy", []),
            )
        out[name] = entry
    bp = out["backprop"]
    for name in FRAMEWORKS[1:]:
        peer = out[name]
        if peer["status"] == "ok" and bp["status"] == "ok":
            peer["ratio_backprop_over_peer"] = (bp["samples_per_s"]["median"]
                                                / peer["samples_per_s"]["median"])
    alone = None
    if raw.get("products_alone_samples_per_s"):  # reports from before it was measured have none
        rate = max(raw["products_alone_samples_per_s"])  # the best sample: a bound
        gflops = total_flops * rate / work / 1e9
        alone = {"samples_per_s": rate, "gflops": gflops,
                 "gflops_executed": executed_flops(config, n, epochs) * rate / work / 1e9,
                 "pct_of_peak": 100.0 * gflops / peak if peak else None,
                 "backprop_over_products_alone": (bp["samples_per_s"]["median"] / rate
                                                  if bp["status"] == "ok" else None)}
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
        "results": out, "products_alone": alone, "accuracy_diff_pp_vs_torch": diff,
    }


def machine_info(threads: int) -> dict[str, Any]:
    """CPU, cores, library versions, BLAS libraries and thread counts, for the record."""
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    from .. import __version__

    info: dict[str, Any] = {
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": _usable_cores(),
        "platform": platform.platform(), "python": platform.python_version(),
        "backprop": __version__, "numpy": np.__version__, "threads": threads,
        "blas": [{k: lib.get(k) for k in ("internal_api", "version", "architecture",
                                          "num_threads", "threading_layer", "filepath")}
                 for lib in threadpool_info() if lib.get("user_api") == "blas"],
        # OPENBLAS_CORETYPE forces OpenBLAS's kernels for an older CPU (some images set it as
        # a safety measure); it can slow numpy's matrix products severalfold
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                         if k in os.environ},
    }
    torch = import_torch()
    info["torch"] = torch.__version__ if torch is not None else None
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        info["torch_mkl"] = bool(torch.backends.mkl.is_available())
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    info["sklearn"] = _sklearn_version()
    info["numba"] = _numba_version()
    return info


def _numba_version() -> str | None:
    """numba's version (the compiled engine's compiler), or None; read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numba")
    except PackageNotFoundError:
        return None


def _sklearn_version() -> str | None:
    try:
        import sklearn
    except ImportError:
        return None
    return sklearn.__version__


#: environment variables that cap the threads of a BLAS or OpenMP library
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads() -> tuple[int, str]:
    """The default ``--threads`` and where it comes from: the smallest of the caps set in
    :data:`THREAD_ENV` (the user asked for them), else the usable cores."""
    caps = {}
    for var in THREAD_ENV:
        try:
            value = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if value >= 1:
            caps[var] = value
    if caps:
        var = min(caps, key=caps.get)
        return caps[var], f"from {var}"
    return _usable_cores(), "the usable cores"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _numpy_blas(info: dict[str, Any]) -> dict[str, Any]:
    libs = info["blas"]
    return next((lib for lib in libs if "numpy" in (lib.get("filepath") or "")),
                libs[0] if libs else {})


# ------------------------------------------------------------------ output
def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_header(report: dict[str, Any]) -> str:
    m, s, p = report["machine"], report["settings"], report["gemm_peak"]
    blas = _numpy_blas(m)
    lines = []
    if s["quick"]:
        lines.append("*** QUICK SMOKE TEST: data subsets, a few dozen steps; NOT a measurement ***")
    lines += [
        f"backprop bench: backprop {m['backprop']} vs torch {m['torch'] or NOT_INSTALLED}, "
        f"scikit-learn {m['sklearn'] or NOT_INSTALLED} (numpy {m['numpy']}, "
        f"numba {m.get('numba') or NOT_INSTALLED + ': no compiled engine'}, Python {m['python']})",
        f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); numpy BLAS "
        f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')})",
        f"threads: {s['threads']} ({s['threads_from']}); numpy's BLAS uses "
        f"{blas.get('num_threads')}"
        + (f", torch {m['torch_threads']}" if m.get("torch_threads") is not None else ""),
        "GEMM peak (numpy matmul {0}x{0}, best of {1}; sampled again before each configuration "
        "and at the end, the best sample counting): ".format(p["size"], p["repeats"])
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in p["gflops"].items()) + " at the start",
        f"{s['epochs']} epoch(s) per training run; median of {s['repeats']} interleaved repeats; "
        f"seed {s['seed']}",
    ]
    if s["repeats"] < 3:
        lines.append("note: fewer than 3 repeats; the medians are not a measurement")
    if m.get("openblas_env"):
        forced = ", ".join(f"{k}={v}" for k, v in m["openblas_env"].items())
        lines.append(f"note: {forced} is set, forcing numpy's OpenBLAS onto those kernels; unset it "
                     "(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE backprop bench) to let OpenBLAS "
                     "pick the CPU's own")
    return "\n".join(lines)


def format_summary(report: dict[str, Any]) -> str:
    """Every configuration on one line: backprop's rate and engine, the ratios, GFLOP/s against
    the run's best GEMM-peak sample, and the accuracy difference to PyTorch."""
    p = report["gemm_peak"]
    lines = ["summary (GEMM peak = best of all samples in the run: " + ", ".join(
        f"{dt} {v:.1f} GFLOP/s (samples {min(p['samples'][dt]):.1f}-{max(p['samples'][dt]):.1f})"
        for dt, v in p["gflops"].items()) + ")"]
    head = ["config", "backprop/s", "engine", "vs torch", "vs sklearn", "GFLOP/s", "% peak",
            "products alone % peak", "acc - torch"]
    rows = []
    for e in report["configs"]:
        res = e["results"]
        bp = res["backprop"]
        ratio = {k: (f"{res[k]['ratio_backprop_over_peer']:.2f}x" if "ratio_backprop_over_peer" in res[k]
                     else "n/a") for k in ("torch", "sklearn")}
        pct = bp.get("pct_of_peak")
        alone = (e.get("products_alone") or {}).get("pct_of_peak")
        diff = e["accuracy_diff_pp_vs_torch"]
        rows.append([e["name"], _fmt_rate(bp["samples_per_s"]["median"]), bp.get("engine", "-"),
                     ratio["torch"], ratio["sklearn"], f"{bp['gflops']:.1f}",
                     "-" if pct is None else f"{pct:.1f}%", "-" if alone is None else f"{alone:.1f}%",
                     "-" if diff is None else f"{diff:+.2f} pp"])
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def format_config(entry: dict[str, Any]) -> str:
    predict = entry["task"] == "predict"
    unit = "images/s" if predict else "samples/s"
    dtype = entry["config"]["dtype"]
    what = (f"{entry['n_samples']:,} test images" if predict else
            f"{entry['epochs']} epoch(s) x {entry['n_samples']:,} samples")
    head = ["framework", f"{unit} (median)", "min-max", "backprop/peer", "GFLOP/s",
            f"% {dtype} peak"] + ([] if predict else ["test acc"])
    rows = []
    for name, res in entry["results"].items():
        if res["status"] != "ok":
            rows.append([name, res["status"]])
            continue
        r = res["samples_per_s"]
        ratio = res.get("ratio_backprop_over_peer")
        pct = res["pct_of_peak"]
        shown = f"{name} ({res['engine']})" if "engine" in res else name
        row = [shown, _fmt_rate(r["median"]), f"{_fmt_rate(r['min'])}-{_fmt_rate(r['max'])}",
               "-" if name == "backprop" else f"{ratio:.2f}x", f"{res['gflops']:.2f}",
               "-" if pct is None else f"{pct:.1f}%"]
        if not predict:
            row.append("-" if res["accuracy"] is None else f"{100 * res['accuracy']:.2f}%")
        rows.append(row)
    widths = [max(len(r[c]) for r in [head, *rows] if len(r) > c and len(r) == len(head))
              for c in range(len(head))]
    lines = [f"{entry['name']}: {entry['description']}; {what}"]
    for r in [head, *rows]:
        if len(r) == len(head):
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        else:  # a framework that did not run: its name and why
            lines.append("  " + r[0].ljust(widths[0]) + "  " + r[1])
    alone = entry.get("products_alone")
    if alone is not None:
        pct = "" if alone["pct_of_peak"] is None else f" ({alone['pct_of_peak']:.1f}% of peak)"
        share = alone["backprop_over_products_alone"]
        lines.append(f"  the matrix products alone (numpy matmul, random data of these shapes, best of the "
                     f"repeats): {_fmt_rate(alone['samples_per_s'])} {unit}, {alone['gflops']:.2f} GFLOP/s"
                     f"{pct}" + ("" if share is None else f"; backprop runs at {share:.2f}x that rate"))
    diff = entry["accuracy_diff_pp_vs_torch"]
    if diff is not None:
        verdict = "within" if abs(diff) <= 0.3 else "OUTSIDE"
        lines.append(f"  test accuracy, backprop - torch: {diff:+.2f} percentage points "
                     f"({verdict} the issue's 0.3)")
    return "\n".join(lines)


# ------------------------------------------------------------------ entry points
def parse_configs(text: str) -> list[Config]:
    """``"C1,C3-f64"`` (case-insensitive; ``"all"``) → the configurations, in the order given."""
    names = {k.lower(): k for k in CONFIGS}
    chosen = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.lower() == "all":
            chosen += list(CONFIGS.values())
        elif part.lower() in names:
            chosen.append(CONFIGS[names[part.lower()]])
        else:
            raise ConfigError(f"--configs: unknown configuration {part!r}; known: "
                              f"{', '.join(CONFIGS)} (or all)")
    if not chosen:
        raise ConfigError("--configs: name at least one configuration")
    return list(dict.fromkeys(chosen))


def run_benchmark(configs: Sequence[Config], *, repeats: int = 3, epochs: int = 1,
                  threads: int | None = None, quick: bool = False, seed: int = 0,
                  torch: bool = True, sklearn: bool = True, gemm_size: int | None = None,
                  engine: str = "auto", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``configs`` and return the report (what ``--json`` writes); ``log`` gets the output."""
    from threadpoolctl import threadpool_limits

    from ..datasets import load_mnist

    threads, threads_from = (threads, "--threads") if threads else default_threads()
    torch_mod = import_torch() if torch else None
    old_torch_threads = torch_mod.get_num_threads() if torch_mod is not None else None
    with threadpool_limits(limits=threads, user_api="blas"):
        if torch_mod is not None:
            torch_mod.set_num_threads(threads)
        try:
            size = gemm_size or (1024 if quick else 2048)
            gemm_repeats = 3 if quick else 5
            dtypes = sorted({c.dtype for c in configs} | {"float32"})
            # the peak is sampled at the start, before each configuration and at the end, and
            # the best sample counts: a busy moment of a shared machine can only lower a sample
            samples: dict[str, list[float]] = {dt: [gemm_peak(dt, size, gemm_repeats)] for dt in dtypes}
            peaks = {dt: max(v) for dt, v in samples.items()}
            report: dict[str, Any] = {
                "benchmark": "backprop bench",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "settings": {"configs": [c.name for c in configs], "repeats": repeats,
                             "epochs": epochs, "threads": threads, "threads_from": threads_from,
                             "quick": quick, "seed": seed, "engine": engine,
                             "torch": torch, "sklearn": sklearn},
                "machine": machine_info(threads),
                "gemm_peak": {"size": size, "repeats": gemm_repeats, "gflops": peaks,
                              "samples": samples},
                "configs": [],
            }
            log(format_header(report))
            datasets: dict[str, tuple] = {}
            enabled = {"torch": torch, "sklearn": sklearn}
            raws = []
            for config in configs:
                samples[config.dtype].append(gemm_peak(config.dtype, size, gemm_repeats))
                peaks[config.dtype] = max(samples[config.dtype])
                if config.dtype not in datasets:
                    datasets[config.dtype] = load_mnist(dtype=config.dtype)
                (x, y), (xt, yt) = datasets[config.dtype]
                n, n_test = quick_sizes(config, len(y), len(yt)) if quick else (len(y), len(yt))
                data = Data(x[:n], y[:n], xt[:n_test], yt[:n_test])
                log("")
                raw = run_config(config, data, repeats=repeats, epochs=epochs, seed=seed,
                                 enabled=enabled, log=log, engine=engine, pause=0.0 if quick else PAUSE_S,
                                 products_seconds=0.02 if quick else PRODUCTS_S)
                raws.append(raw)
                log(format_config(summarise(config, raw, epochs=epochs, peaks=peaks)))
            for dt in dtypes:
                samples[dt].append(gemm_peak(dt, size, gemm_repeats))
                peaks[dt] = max(samples[dt])
            report["configs"] = [summarise(c, raw, epochs=epochs, peaks=peaks)
                                 for c, raw in zip(configs, raws, strict=True)]
            log("")
            log(format_summary(report))
        finally:
            if torch_mod is not None:
                torch_mod.set_num_threads(old_torch_threads)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``backprop bench`` and ``benchmarks/run.py``."""
    p.add_argument("--configs", default="all",
                   help=f"comma-separated configurations: {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved repeats per configuration; the median is reported (default 3)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per run (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every framework (default: the usable cores, or the "
                        "smallest of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS "
                        "where set)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: data subsets, a few dozen steps per run (not a measurement)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="skip PyTorch")
    p.add_argument("--no-sklearn", dest="sklearn", action="store_false", help="skip scikit-learn")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the data order")
    p.add_argument("--gemm-size", type=int, default=None,
                   help="side of the GEMM peak's square matrices (default 2048; 1024 with --quick)")
    p.add_argument("--engine", choices=("auto", "numpy", "numba"), default="auto",
                   help="backprop's training engine (fit(engine=...)); auto: where numba is "
                        "installed, compiled steps where able (plain SGD, batch <= 32), else NumPy "
                        "steps with a compiled optimizer update")
    p.add_argument("--json", type=Path, default=None,
                   help=f"write the results here (default {DEFAULT_JSON}, relative to the current "
                        f"directory; {QUICK_JSON} with --quick)")


def cmd_bench(args: argparse.Namespace) -> int:
    for flag, value in (("--repeats", args.repeats), ("--epochs", args.epochs),
                        ("--threads", args.threads), ("--gemm-size", args.gemm_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer; got {value}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer; got {args.seed}")
    configs = parse_configs(args.configs)
    report = run_benchmark(configs, repeats=args.repeats, epochs=args.epochs,
                           threads=args.threads, quick=args.quick, seed=args.seed,
                           torch=args.torch, sklearn=args.sklearn, gemm_size=args.gemm_size,
                           engine=args.engine)
    path = args.json or (QUICK_JSON if args.quick else DEFAULT_JSON)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``bench`` command to ``backprop``'s sub-commands (see ``cli.COMMAND_MODULES``)."""
    p = subparsers.add_parser(
        "bench", help="benchmark backprop against PyTorch and scikit-learn on MNIST",
        description="Train (and predict with) the same networks in backprop, PyTorch and "
                    "scikit-learn, interleaved in one process, and report samples/s, "
                    "ratios, GFLOP/s against the measured GEMM peak, and test accuracy.")
    add_arguments(p)
    p.set_defaults(func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """``python benchmarks/run.py [options]``: the same as ``backprop bench [options]``."""
    parser = argparse.ArgumentParser(prog="benchmarks/run.py",
                                     description="Same as `backprop bench`.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_bench(args)
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
