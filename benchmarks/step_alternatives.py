"""What was tried to bring C3's training step closer to its matrix products, each measured
beside what the NumPy engine does today (see benchmarks/README.md, "What was tried").

C3's step (784-256-256-10, ReLU, softmax cross-entropy, Adam, batch 128, float32) spends about
0.24 of its time outside the matrix products, on one thread while BLAS runs on two. Each
experiment below asks whether a part of that time can move onto the second core, or shrink:

1. ``floor``: the two largest parts alone, on one core: the fused Adam update of 269,322
   parameters and the gather of 128 random MNIST rows.
2. ``prange``: the Adam update as a numba ``prange`` kernel (numba's thread pool) right after a
   2-thread OpenBLAS product, against the serial kernel; and again with OpenBLAS told to put its
   idle threads to sleep at once (``OPENBLAS_THREAD_TIMEOUT=4``).
3. ``handoff``: half of the Adam update on a Python thread (``threading.Event`` handoff, the
   kernel releases the GIL) while the main thread does the other half.
4. ``prefetch``: the next batch gathered on a Python thread while the main thread runs the
   step's products.
5. ``afn``: the Adam kernel compiled with approximate functions (``fastmath`` ``afn``, and all
   flags), its time and its distance in ulps from the kernel the library uses.
6. ``halves``: a compiled step that splits the batch over two threads (numba ``prange``), each
   running forward and backward of its 64 rows with single-threaded BLAS (numba's ``np.dot``,
   through SciPy), against one half alone and the whole batch on one thread. Needs SciPy.
7. ``forward``: the forward products of the batch on two threads, split by rows (as the
   split-batch engine does) or by output units (activations stored transposed, a barrier per
   layer), each thread with single-threaded BLAS, against OpenBLAS's two threads on the whole
   batch. Needs SciPy.

Each experiment runs in a fresh process (thread pools and environment variables start clean),
median of repeated timings, after a warm-up. Run it on an otherwise idle machine::

    python benchmarks/step_alternatives.py                     # all, 2 threads
    python benchmarks/step_alternatives.py --only prange handoff --json /tmp/alt.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

EXPERIMENTS = ("floor", "prange", "handoff", "prefetch", "afn", "halves", "forward")
BATCH, WIDTHS = 128, (784, 256, 256, 10)
N_PARAMS = sum(d_out * d_in + d_out for d_in, d_out in zip(WIDTHS[:-1], WIDTHS[1:], strict=True))  # 269,322
FLAGS = {"reassoc", "contract", "nsz", "arcp"}  # the library's kernels' fastmath flags


def median_us(fn: Callable[[], object], calls: int = 1000, warmup: int = 50) -> float:
    """The median wall time of ``fn()`` in µs over ``calls`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e6


def adam_arrays(seed: int = 0) -> tuple[np.ndarray, ...]:
    """Parameters, gradients and the two moments, float32 ``(N_PARAMS,)`` each."""
    rng = np.random.default_rng(seed)
    p, g = (rng.standard_normal(N_PARAMS).astype(np.float32) * 0.01 for _ in range(2))
    return p, g, np.zeros(N_PARAMS, np.float32), np.zeros(N_PARAMS, np.float32)


def adam_constants() -> tuple[np.float32, ...]:
    """β₁, β₂, 1 − β₁, 1 − β₂, step size, ε̂ of a first Adam step at lr 1e-3, float32."""
    f = np.float32
    return f(0.9), f(0.999), f(0.1), f(0.001), f(1e-3), f(1e-8)


def library_adam(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
    """The library's fused Adam kernel (``optim/fused_kernels.py``) over the flat arrays."""
    from backprop.optim.fused_kernels import adam_update

    f = np.float32
    adam_update(p, g, m, v, *adam_constants(), f(0), False, False, f(1))


def mnist() -> np.ndarray:
    """The embedded MNIST training images, float32 ``(60000, 784)``."""
    import backprop as bp

    (x, _), _ = bp.datasets.load_mnist(dtype="float32")
    return x


def first_layer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, Wᵀ, Z)`` of C3's largest product, ``Z = A Wᵀ``: ``(128, 784) @ (784, 256)``."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((BATCH, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32)
    return a, w.T, np.empty((BATCH, 256), np.float32)


# ---------------------------------------------------------------------------- the experiments

def floor() -> dict[str, float]:
    """The fused Adam kernel and the batch gather, each alone on one core."""
    x = mnist()
    p, g, m, v = adam_arrays()
    library_adam(p, g, m, v)  # compile or load from numba's cache
    order = np.random.default_rng(0).permutation(len(x))
    out = np.empty((BATCH, x.shape[1]), x.dtype)
    at = [0]

    def gather() -> None:  # a new part of the permutation each call: rows not in cache
        lo = at[0] = (at[0] + BATCH) % (len(x) - BATCH)
        np.take(x, order[lo:lo + BATCH], axis=0, out=out, mode="clip")

    return {"adam_us": median_us(lambda: library_adam(p, g, m, v)), "gather_us": median_us(gather, 400)}


def prange() -> dict[str, float]:
    """A 2-thread product followed by the Adam update: serial kernel, then numba's prange."""
    import math as _math

    import numba

    @numba.njit(fastmath=FLAGS, nogil=True, error_model="numpy", parallel=True)
    def adam_prange(p, g, m, v, b1, b2, omb1, omb2, step, eps):  # type: ignore[no-untyped-def]
        for i in numba.prange(p.shape[0]):
            mi = b1 * m[i] + omb1 * g[i]
            vi = b2 * v[i] + omb2 * (g[i] * g[i])
            m[i], v[i] = mi, vi
            p[i] = p[i] - step * mi / (_math.sqrt(vi) + eps)

    a, wt, z = first_layer()
    p, g, m, v = adam_arrays()
    c = adam_constants()
    library_adam(p, g, m, v)
    adam_prange(p, g, m, v, *c)
    return {
        "product_us": median_us(lambda: np.matmul(a, wt, out=z), 300),
        "product_then_serial_adam_us": median_us(lambda: (np.matmul(a, wt, out=z), library_adam(p, g, m, v)), 300),
        "product_then_prange_adam_us": median_us(lambda: (np.matmul(a, wt, out=z), adam_prange(p, g, m, v, *c)), 300),
        "numba_threads": numba.get_num_threads(),
    }


def handoff() -> dict[str, float]:
    """A 2-thread product, then Adam: all on the main thread, or half on a Python thread."""
    a, wt, z = first_layer()
    p, g, m, v = adam_arrays()
    half = N_PARAMS // 2
    library_adam(p, g, m, v)
    go, done = threading.Event(), threading.Event()

    def worker() -> None:
        while True:
            go.wait()
            go.clear()
            library_adam(p[half:], g[half:], m[half:], v[half:])
            done.set()

    threading.Thread(target=worker, daemon=True).start()

    def split() -> None:
        np.matmul(a, wt, out=z)
        go.set()
        library_adam(p[:half], g[:half], m[:half], v[:half])
        done.wait()
        done.clear()

    return {"serial_us": median_us(lambda: (np.matmul(a, wt, out=z), library_adam(p, g, m, v))),
            "split_us": median_us(split),
            "half_adam_us": median_us(lambda: library_adam(p[:half], g[:half], m[:half], v[:half]))}


def prefetch() -> dict[str, float]:
    """The step's three largest products with the next batch's gather: before them on the main
    thread, or during them on a Python thread."""
    x = mnist()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    out = np.empty((BATCH, x.shape[1]), x.dtype)
    a, wt, z = first_layer()
    delta = rng.standard_normal((BATCH, 256)).astype(np.float32)
    dw = np.empty((256, 784), np.float32)
    a2 = rng.standard_normal((BATCH, 256)).astype(np.float32)
    w2t = rng.standard_normal((256, 256)).astype(np.float32).T
    z2 = np.empty((BATCH, 256), np.float32)
    at = [0]
    go, done = threading.Event(), threading.Event()

    def gather() -> None:
        lo = at[0] = (at[0] + BATCH) % (len(x) - BATCH)
        np.take(x, order[lo:lo + BATCH], axis=0, out=out, mode="clip")

    def products() -> None:
        np.matmul(a, wt, out=z)
        np.matmul(a2, w2t, out=z2)
        np.matmul(delta.T, a, out=dw)

    def worker() -> None:
        while True:
            go.wait()
            go.clear()
            gather()
            done.set()

    threading.Thread(target=worker, daemon=True).start()

    def overlapped() -> None:
        go.set()
        products()
        done.wait()
        done.clear()

    results = {"products_us": median_us(products, 600)}
    serial, threaded = [], []
    for _ in range(3):  # interleaved: the machine's speed drifts between rounds
        serial.append(median_us(lambda: (gather(), products()), 600))
        threaded.append(median_us(overlapped, 600))
    results["gather_then_products_us"] = min(serial)
    results["gather_on_thread_us"] = min(threaded)
    return results


def afn() -> dict[str, float]:
    """The Adam kernel with the library's flags, with ``afn`` added, and with every flag."""
    import numba

    def adam(p, g, m, v, b1, b2, omb1, omb2, step, eps):  # type: ignore[no-untyped-def]
        for i in range(p.shape[0]):
            mi = b1 * m[i] + omb1 * g[i]
            vi = b2 * v[i] + omb2 * (g[i] * g[i])
            m[i], v[i] = mi, vi
            p[i] = p[i] - step * mi / (math.sqrt(vi) + eps)

    kernels = {"library_flags": numba.njit(fastmath=FLAGS, error_model="numpy")(adam),
               "with_afn": numba.njit(fastmath=FLAGS | {"afn"}, error_model="numpy")(adam),
               "all_flags": numba.njit(fastmath=True, error_model="numpy")(adam)}
    results: dict[str, float] = {}
    after: dict[str, np.ndarray] = {}
    for name, kernel in kernels.items():
        arrays = adam_arrays()
        for _ in range(5):
            kernel(*arrays, *adam_constants())
        after[name] = arrays[0].copy()
        results[f"{name}_us"] = median_us(lambda k=kernel, arr=arrays: k(*arr, *adam_constants()))
    base = after["library_flags"]
    for name in ("with_afn", "all_flags"):
        results[f"{name}_max_ulps"] = float(np.max(np.abs(after[name] - base) / np.spacing(np.abs(base))))
    return results


def halves() -> dict[str, Any]:
    """Forward and backward of C3's network on 64 rows per thread, in one prange over two threads,
    each calling single-threaded BLAS; against one half and against the whole batch alone."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls BLAS through SciPy
    except ImportError:
        return {"skipped": "SciPy is not installed (numba's np.dot needs it)"}
    import numba
    from threadpoolctl import threadpool_limits

    @numba.njit(fastmath=FLAGS, nogil=True, error_model="numpy")
    def rows(x, lo, hi, w1, b1, w2, b2, w3, b3, a1, a2, o, d3, d2, d1, g1, g2, g3):  # type: ignore[no-untyped-def]
        xs, h1, h2, out = x[lo:hi], a1[lo:hi], a2[lo:hi], o[lo:hi]
        e3, e2, e1 = d3[lo:hi], d2[lo:hi], d1[lo:hi]
        np.dot(xs, w1.T, h1)
        for i in range(hi - lo):
            for j in range(h1.shape[1]):
                h1[i, j] = max(h1[i, j] + b1[j], 0.0)
        np.dot(h1, w2.T, h2)
        for i in range(hi - lo):
            for j in range(h2.shape[1]):
                h2[i, j] = max(h2[i, j] + b2[j], 0.0)
        np.dot(h2, w3.T, out)
        for i in range(hi - lo):
            for j in range(out.shape[1]):
                e3[i, j] = out[i, j] + b3[j]  # stands in for dC/dZ: the element-wise work is not the point
        np.dot(e3.T, h2, g3)
        np.dot(e3, w3, e2)
        for i in range(hi - lo):
            for j in range(e2.shape[1]):
                e2[i, j] = e2[i, j] if h2[i, j] > 0 else 0.0
        np.dot(e2.T, h1, g2)
        np.dot(e2, w2, e1)
        for i in range(hi - lo):
            for j in range(e1.shape[1]):
                e1[i, j] = e1[i, j] if h1[i, j] > 0 else 0.0
        np.dot(e1.T, xs, g1)

    @numba.njit(nogil=True, parallel=True)
    def both(x, w1, b1, w2, b2, w3, b3, a1, a2, o, d3, d2, d1, g1s, g2s, g3s):  # type: ignore[no-untyped-def]
        half = x.shape[0] // 2
        for t in numba.prange(2):
            rows(x, t * half, (t + 1) * half, w1, b1, w2, b2, w3, b3, a1, a2, o, d3, d2, d1, g1s[t], g2s[t], g3s[t])

    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    x = rand(BATCH, 784)
    w1, w2, w3 = rand(256, 784), rand(256, 256), rand(10, 256)
    b1, b2, b3 = rand(256), rand(256), rand(10)
    a1, a2, d2, d1 = (np.empty((BATCH, 256), np.float32) for _ in range(4))
    o, d3 = np.empty((BATCH, 10), np.float32), np.empty((BATCH, 10), np.float32)
    g1s, g2s, g3s = np.empty((2, 256, 784), np.float32), np.empty((2, 256, 256), np.float32), \
        np.empty((2, 10, 256), np.float32)
    arrays = (w1, b1, w2, b2, w3, b3, a1, a2, o, d3, d2, d1)
    with threadpool_limits(1):  # SciPy's BLAS is loaded above, so this limits it too
        both(x, *arrays, g1s, g2s, g3s)
        return {"two_halves_in_parallel_us": median_us(lambda: both(x, *arrays, g1s, g2s, g3s), 300),
                "one_half_alone_us": median_us(lambda: rows(x, 0, BATCH // 2, *arrays, g1s[0], g2s[0], g3s[0]), 300),
                "whole_batch_one_thread_us": median_us(lambda: rows(x, 0, BATCH, *arrays, g1s[0], g2s[0], g3s[0]),
                                                       300),
                "numba_threading_layer": numba.threading_layer()}


def forward() -> dict[str, Any]:
    """C3's forward products: rows split or units split over two numba threads (single-threaded
    BLAS each), or OpenBLAS's two threads on the whole batch."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  numba's np.dot calls BLAS through SciPy
    except ImportError:
        return {"skipped": "SciPy is not installed (numba's np.dot needs it)"}
    import numba
    from threadpoolctl import threadpool_limits

    @numba.njit(parallel=True)
    def by_rows(a0, w1, w2, w3, z1, z2, z3):  # type: ignore[no-untyped-def]
        half = a0.shape[0] // 2
        for k in numba.prange(2):
            r0, r1 = k * half, (k + 1) * half
            np.dot(a0[r0:r1], w1.T, z1[r0:r1])
            np.dot(z1[r0:r1], w2.T, z2[r0:r1])
            np.dot(z2[r0:r1], w3.T, z3[r0:r1])

    @numba.njit(parallel=True)
    def by_units(a0t, w1, w2, w3, z1t, z2t, z3t):  # type: ignore[no-untyped-def]
        for k in numba.prange(2):  # one parallel region per layer: each needs all of the last
            np.dot(w1[k * 128:(k + 1) * 128], a0t, z1t[k * 128:(k + 1) * 128])
        for k in numba.prange(2):
            np.dot(w2[k * 128:(k + 1) * 128], z1t, z2t[k * 128:(k + 1) * 128])
        for k in numba.prange(2):
            np.dot(w3[k * 5:(k + 1) * 5], z2t, z3t[k * 5:(k + 1) * 5])

    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    a0, w1, w2, w3 = rand(BATCH, 784), rand(256, 784), rand(256, 256), rand(10, 256)
    a0t = np.ascontiguousarray(a0.T)
    z1, z2, z3 = (np.empty((BATCH, w), np.float32) for w in (256, 256, 10))
    z1t, z2t, z3t = (np.empty((w, BATCH), np.float32) for w in (256, 256, 10))

    def whole() -> None:
        np.matmul(a0, w1.T, out=z1)
        np.matmul(z1, w2.T, out=z2)
        np.matmul(z2, w3.T, out=z3)

    rows_us, units_us, whole_us = [], [], []
    for _ in range(3):  # interleaved rounds
        with threadpool_limits(1):
            rows_us.append(median_us(lambda: by_rows(a0, w1, w2, w3, z1, z2, z3), 400))
            units_us.append(median_us(lambda: by_units(a0t, w1, w2, w3, z1t, z2t, z3t), 400))
        with threadpool_limits(2):
            whole_us.append(median_us(whole, 400))
    return {"rows_split_us": min(rows_us), "units_split_us": min(units_us), "openblas_two_threads_us": min(whole_us)}


# ---------------------------------------------------------------------------------- the driver

def run_one(name: str, threads: int) -> dict[str, Any]:
    """Run experiment ``name`` in this process under ``threads`` BLAS and numba threads."""
    from backprop.threads import set_threads

    set_threads(threads)
    if name in ("prange", "halves", "forward"):
        import numba

        numba.set_num_threads(threads)
    return globals()[name]()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=EXPERIMENTS, default=list(EXPERIMENTS),
                        help="which experiments (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS and numba threads (default 2)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", choices=EXPERIMENTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.threads)))
        return
    from backprop.bench.machine import machine_info

    info = machine_info(args.threads)
    blas = ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info["blas"])
    print(f"CPU {info['cpu']}; BLAS {blas}; threads {args.threads}; load {os.getloadavg()[0]:.1f}; "
          f"OpenBLAS environment {info['openblas_env'] or 'none'}")
    runs: list[tuple[str, dict[str, str]]] = [(name, {}) for name in args.only]
    if "prange" in args.only:  # again, with OpenBLAS's idle threads asleep at once
        runs.insert(args.only.index("prange") + 1, ("prange", {"OPENBLAS_THREAD_TIMEOUT": "4"}))
    results: list[dict[str, Any]] = []
    for name, env in runs:
        command = [sys.executable, __file__, "--child", name, "--threads", str(args.threads)]
        done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"experiment {name} failed:\n{done.stderr}")
        result = {"experiment": name, "env": env, **json.loads(done.stdout.strip().splitlines()[-1])}
        results.append(result)
        shown = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
                          if k not in ("experiment", "env"))
        print(f"{name}{' ' + str(env) if env else ''}: {shown}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
