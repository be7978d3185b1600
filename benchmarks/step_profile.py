"""Where a training step's time goes: each part of the NumPy steps timed alone.

Trains a benchmark configuration (default C3: 784-256-256-10 ReLU, softmax cross-entropy on
logits, Adam, batch 128, float32) through ``bp.fit``'s NumPy steps (``engine="auto"``: the fused
optimizer update where numba is installed) with every layer's forward and backward, the loss,
the optimizer update and the batch gather wrapped in timers, and prints each part's share of
the step beside the matrix products alone (``backprop.bench.gemm.products_alone``). Each part's
figure is the median over the steps of an epoch (the median, not the mean, so that other
processes on a shared machine count less); the step is the best epoch's mean.

    python benchmarks/step_profile.py                 # C3, 2 threads, 3 epochs of 20,000 samples
    python benchmarks/step_profile.py --config C4 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(store: list[float], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store.append(time.perf_counter() - began)
    return wrapper


def profile(config_name: str, threads: int, samples: int, epochs: int) -> None:
    import backprop as bp
    from backprop.bench.configs import CONFIGS
    from backprop.bench.frameworks import build_network
    from backprop.bench.gemm import products_alone
    from backprop.bench.machine import machine_info
    from backprop.engines import numpy as numpy_engine
    from backprop.threads import set_threads

    set_threads(threads)
    config = CONFIGS[config_name]
    (x, y), _ = bp.datasets.load_mnist(dtype=config.dtype)
    x, y = x[:samples], y[:samples]
    net = build_network(config, seed=0)
    loss = bp.losses.get_loss(config.loss)
    optimizer = (bp.Adam(lr=config.lr) if config.optimizer == "adam"
                 else bp.SGD(lr=config.lr, momentum=config.momentum))
    parts: dict[str, list[float]] = defaultdict(list)
    for i, layer in enumerate(net.layers):
        name = f"{i}:{type(layer).__name__}"
        layer.forward = timed(parts[f"forward {name}"], layer.forward)  # type: ignore[method-assign]
        layer.backward = timed(parts[f"backward {name}"], layer.backward)  # type: ignore[method-assign]
    loss.value_and_grad_unchecked = timed(parts["loss value and dC/da"], loss.value_and_grad_unchecked)  # type: ignore[method-assign]
    optimizer.step = timed(parts["optimizer step"], optimizer.step)  # type: ignore[method-assign]
    take = numpy_engine.BatchBuffers.take
    numpy_engine.BatchBuffers.take = timed(parts["gather the batch"], take)  # type: ignore[method-assign]
    steps: list[float] = []
    history = None
    for _ in range(epochs):
        for store in parts.values():
            store.clear()
        began = time.perf_counter()
        history = bp.fit(net, x, y, loss=loss, optimizer=optimizer, epochs=1,
                         batch_size=config.batch_size, engine="auto", verbose=False, seed=0)
        steps.append((time.perf_counter() - began) / -(-len(x) // config.batch_size))
    numpy_engine.BatchBuffers.take = take  # type: ignore[method-assign]
    step = min(steps)
    info = machine_info(threads)
    blas = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info["blas"])
    print(f"{config.describe()}; engine {history.engine if history else '?'}")
    print(f"CPU {info['cpu']}; BLAS {blas}; threads {threads}; load {os.getloadavg()[0]:.1f}")
    print(f"step {step * 1e3:.3f} ms (best epoch of {epochs}; {config.batch_size / step:,.0f} samples/s)")
    rows = [(name, statistics.median(store)) for name, store in parts.items() if store]
    accounted = sum(t for _, t in rows)
    for name, t in rows:
        print(f"  {name:28s} {t * 1e6:9.1f} µs  {t / step:6.1%}")
    print(f"  {'the rest (Python, stats)':28s} {(step - accounted) * 1e6:9.1f} µs  {(step - accounted) / step:6.1%}")
    products = config.batch_size / products_alone(config, config.batch_size)  # seconds per step
    print(f"matrix products alone: {products * 1e3:.3f} ms per step; the step runs at "
          f"{products / step:.2f}x the products-alone rate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="C3", help="a configuration of backprop bench (default C3)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    parser.add_argument("--samples", type=int, default=20_000, help="training samples (default 20,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs, the best one reported (default 3)")
    args = parser.parse_args(argv)
    np.seterr(all="ignore")
    profile(args.config, args.threads, args.samples, args.epochs)


if __name__ == "__main__":
    main()
