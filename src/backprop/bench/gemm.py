"""Matrix products timed on their own: the GEMM peak of the machine, and the rate that a
configuration's matrix products alone allow (the bound each framework's rate is read against).

``np.matmul`` and ``time.perf_counter`` are looked up on their modules at each call, so a test
can replace them.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .configs import Config

#: seconds of each repeat's sample of :func:`products_alone`
PRODUCTS_S = 0.5

#: one product ``np.matmul(a, b, out=out)``: ``(a, b, out)``
Product = tuple[np.ndarray, np.ndarray, np.ndarray]


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


def matrix_products(config: Config, rows: int, rng: np.random.Generator) -> list[Product]:
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
    products: list[Product] = [(a, w.T, np.empty((rows, w.shape[0]), dtype))
                               for a, w in zip(acts, weights, strict=True)]
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
