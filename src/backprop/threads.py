"""How many threads the BLAS library (and so every matrix product) may use.

backprop's heavy work is matrix products, which NumPy hands to its BLAS
(OpenBLAS, MKL, ...). :func:`set_threads` limits that library's thread pool for
the whole process, through threadpoolctl; ``backprop train --threads N`` calls it.
"""

from __future__ import annotations

from typing import Any

from ._validation import positive_int

_limiter: Any = None


def set_threads(n: int | None) -> None:
    """Use at most ``n`` BLAS threads from now on (``None``: lift the limit set here)."""
    global _limiter
    from threadpoolctl import threadpool_limits

    if _limiter is not None:
        _limiter.restore_original_limits()
        _limiter = None
    if n is not None:
        _limiter = threadpool_limits(limits=positive_int(n, "threads"), user_api="blas")


def get_threads() -> int | None:
    """The number of threads of the first BLAS library NumPy uses (``None`` if none is found)."""
    from threadpoolctl import threadpool_info

    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else None
