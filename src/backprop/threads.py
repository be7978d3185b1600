"""How many threads the BLAS library (and so every matrix product) may use.

backprop's heavy work is matrix products, which NumPy hands to its BLAS
(OpenBLAS, MKL, ...). :func:`set_threads` limits that library's thread pool for
the whole process, through threadpoolctl; ``backprop train --threads N`` calls it.
"""

from __future__ import annotations

import os
from typing import Any

from ._validation import positive_int

_limiter: Any = None
_limit: int | None = None  # the n of the last set_threads(n)


def set_threads(n: int | None) -> None:
    """Use at most ``n`` BLAS threads from now on (``None``: lift the limit set here)."""
    global _limiter, _limit
    from threadpoolctl import threadpool_limits

    if _limiter is not None:
        _limiter.restore_original_limits()
        _limiter = None
    _limit = None
    if n is not None:
        _limit = positive_int(n, "threads")
        _limiter = threadpool_limits(limits=_limit, user_api="blas")


def get_threads() -> int | None:
    """The number of threads of the first BLAS library NumPy uses (``None`` if none is found)."""
    from threadpoolctl import threadpool_info

    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else None


def worker_count() -> int:
    """How many threads backprop's own element-wise work may use (the optimizers' updates):
    the limit of :func:`set_threads` if set, else the usable cores, capped by
    ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` when the environment sets them. Cheap: it asks
    no library."""
    if _limit is not None:
        return _limit
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) >= 1:
            cores = min(cores, int(value))
    return cores
