"""Which way round OpenBLAS runs the split-batch engine's products fastest (benchmarks/README.md,
"The split-batch engine": why each block's Z, A and Δ are stored transposed).

A product ``C = A B`` (``C`` of shape ``(m, n)``) reaches BLAS's column-major ``gemm`` in one of
two forms: with ``C`` stored column-major, BLAS's ``M`` is ``m``; with ``C`` stored row-major
(NumPy's and numba's default), BLAS computes ``Cᵀ = Bᵀ Aᵀ`` and its ``M`` is ``n``. For the
forward products ``Z = A Wᵀ`` of a block of rows, ``m`` is the block's rows.

1. ``products``: each of C3's products (784-256-256-10) at 64 and 128 rows, single-threaded
   (SciPy's ``sgemm``), in both forms: the best of 300 calls each.
2. ``chain``: every product of a C3 training step, the batch of 128 rows split into two blocks
   of 64, one per numba thread, each with single-threaded BLAS (numba's ``np.dot``), with the
   blocks' arrays stored row-major (the engine before) or transposed (the engine now), against
   NumPy's matmul with OpenBLAS's two threads on the whole batch: medians of 300 steps.

Run it on an otherwise idle machine (2 threads)::

    python benchmarks/split_layout.py --json benchmarks/split_layout.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

WIDTHS = (784, 256, 256, 10)
BATCH = 128


def timings(fn: Callable[[], object], calls: int = 300) -> list[float]:
    """Wall times of ``calls`` calls of ``fn()`` in µs, after 20 untimed calls."""
    for _ in range(20):
        fn()
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e6)
    return out


def products() -> list[dict[str, Any]]:
    """Each product of a C3 step on ``rows`` rows, single-threaded, in both forms."""
    from scipy.linalg import blas
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    d0, d1, d2, d3 = WIDTHS
    rows_out = []
    with threadpool_limits(limits=1, user_api="blas"):
        for rows in (64, 128):
            rows_out += _products_of(blas, rng, rows, d0, d1, d2, d3)
    return rows_out


def _products_of(blas: Any, rng: np.random.Generator, rows: int, d0: int, d1: int, d2: int,
                 d3: int) -> list[dict[str, Any]]:
    """The rows of :func:`products` for one batch size."""
    rows_out = []
    shapes = {  # name: (m, k, n) of C = A B (m x n)
        "forward 1: Z = A Wᵀ": (rows, d0, d1), "forward 2": (rows, d1, d2), "forward 3": (rows, d2, d3),
        "dW 1 = Δᵀ A": (d1, rows, d0), "dW 2": (d2, rows, d1), "dW 3": (d3, rows, d2),
        "dA 1 = Δ W": (rows, d2, d1), "dA 2": (rows, d3, d2),
    }
    for name, (m, k, n) in shapes.items():
        a = np.asfortranarray(rng.standard_normal((m, k)).astype(np.float32))
        b = np.asfortranarray(rng.standard_normal((k, n)).astype(np.float32))
        as_m = min(timings(lambda a=a, b=b: blas.sgemm(1.0, a, b)))  # C column-major: M = m
        as_n = min(timings(lambda a=a, b=b: blas.sgemm(1.0, b, a, trans_a=1, trans_b=1)))  # Cᵀ: M = n
        rows_out.append({"rows": rows, "product": name, "m": m, "k": k, "n": n,
                         "us_M_is_m": round(as_m, 1), "us_M_is_n": round(as_n, 1)})
    return rows_out


def chain(threads: int) -> dict[str, Any]:
    """A C3 step's products on two 64-row blocks, row-major or transposed, and NumPy's."""
    import numba
    from threadpoolctl import ThreadpoolController

    pools = ThreadpoolController()

    @numba.njit(parallel=True, nogil=True)
    def row_major(x, w1, w2, w3, g1, g2, g3, n_threads):  # type: ignore[no-untyped-def]
        for k in numba.prange(n_threads):
            n = x.shape[0] // n_threads
            a0 = x[k * n:(k + 1) * n]
            z1 = np.empty((n, w1.shape[0]), x.dtype)
            np.dot(a0, w1.T, z1)
            z2 = np.empty((n, w2.shape[0]), x.dtype)
            np.dot(z1, w2.T, z2)
            z3 = np.empty((n, w3.shape[0]), x.dtype)
            np.dot(z2, w3.T, z3)
            np.dot(z3.T, z2, g3)
            d2 = np.empty((n, w3.shape[1]), x.dtype)
            np.dot(z3, w3, d2)
            np.dot(d2.T, z1, g2)
            d1 = np.empty((n, w2.shape[1]), x.dtype)
            np.dot(d2, w2, d1)
            np.dot(d1.T, a0, g1)

    @numba.njit(parallel=True, nogil=True)
    def transposed(x, w1, w2, w3, g1, g2, g3, n_threads):  # type: ignore[no-untyped-def]
        for k in numba.prange(n_threads):
            n = x.shape[0] // n_threads
            a0 = x[k * n:(k + 1) * n]
            z1 = np.empty((w1.shape[0], n), x.dtype)
            np.dot(w1, a0.T, z1)
            z2 = np.empty((w2.shape[0], n), x.dtype)
            np.dot(w2, z1, z2)
            z3 = np.empty((w3.shape[0], n), x.dtype)
            np.dot(w3, z2, z3)
            np.dot(z3, z2.T, g3)
            d2 = np.empty((w3.shape[1], n), x.dtype)
            np.dot(w3.T, z3, d2)
            np.dot(d2, z1.T, g2)
            d1 = np.empty((w2.shape[1], n), x.dtype)
            np.dot(w2.T, d2, d1)
            np.dot(d1, a0, g1)

    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((d_out, d_in)).astype(np.float32) * 0.05
               for d_in, d_out in zip(WIDTHS[:-1], WIDTHS[1:], strict=True)]
    grads = [np.empty_like(w) for w in weights]
    x = rng.standard_normal((BATCH, WIDTHS[0])).astype(np.float32)

    def numpy_step() -> None:
        w1, w2, w3 = weights
        z1 = x @ w1.T
        z2 = z1 @ w2.T
        z3 = z2 @ w3.T
        np.matmul(z3.T, z2, out=grads[2])
        d2 = z3 @ w3
        np.matmul(d2.T, z1, out=grads[1])
        d1 = d2 @ w2
        np.matmul(d1.T, x, out=grads[0])

    numba.set_num_threads(threads)
    out: dict[str, list[float]] = {"numpy, OpenBLAS 2 threads": [], "split, row-major blocks": [],
                                   "split, transposed blocks": []}
    for _ in range(3):  # alternate, so that the machine's drift touches all three alike
        out["numpy, OpenBLAS 2 threads"] += timings(numpy_step, 100)
        with pools.limit(limits=1, user_api="blas"):
            out["split, row-major blocks"] += timings(lambda: row_major(x, *weights, *grads, threads), 100)
            out["split, transposed blocks"] += timings(lambda: transposed(x, *weights, *grads, threads), 100)
    return {name: round(statistics.median(values), 1) for name, values in out.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    from backprop.bench.machine import machine_info

    result = {"machine": machine_info(args.threads), "products_single_thread": products(),
              "step_chain_us": chain(args.threads)}
    for row in result["products_single_thread"]:
        print(f"{row['rows']:4d} rows  {row['product']:22s} M = m: {row['us_M_is_m']:7.1f} µs   "
              f"M = n: {row['us_M_is_n']:7.1f} µs")
    for name, value in result["step_chain_us"].items():
        print(f"{name:28s} {value:7.1f} µs per step (median)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
