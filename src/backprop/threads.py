"""How many threads the BLAS library (and so every matrix product) may use.

backprop's heavy work is matrix products, which NumPy hands to its BLAS
(OpenBLAS, MKL, ...). :func:`set_threads` limits that library's thread pool for
the whole process, through threadpoolctl; ``backprop train --threads N`` calls it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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


#: threadpoolctl's controllers of the BLAS libraries, by the modules imported before they were made
_pools: dict[tuple[str, ...], Any] = {}


def blas_pools(after: tuple[str, ...] = ()) -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded once NumPy and the modules
    ``after`` are imported (``ThreadpoolController.select(user_api="blas")``), made once per
    process: making one scans the process's libraries (2-3 ms and 150-680 kB, which every
    ``fit`` paid twice). A library loaded later by another module is not in it; its thread
    counts are read afresh at each call (``.info()``, ``.limit``)."""
    controller = _pools.get(after)
    if controller is None:
        import importlib

        from threadpoolctl import ThreadpoolController

        for name in after:
            importlib.import_module(name)
        controller = _pools[after] = ThreadpoolController().select(user_api="blas")
    return controller


def get_threads() -> int | None:
    """The number of threads of the first BLAS library NumPy uses (``None`` if none is found)."""
    blas = blas_pools().lib_controllers
    return int(blas[0].num_threads) if blas else None


#: the environment variables through which a user sets the BLAS libraries' thread counts
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_from_environment(environ: Mapping[str, str]) -> int | None:
    """The thread count a user set in the environment (the first of :data:`THREAD_VARIABLES`
    that holds a positive integer, or OpenMP's list form ``"4,2"``), or None."""
    for name in THREAD_VARIABLES:
        first = environ.get(name, "").split(",")[0].strip()
        if first.isdigit() and int(first) > 0:
            return int(first)
    return None


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a taskset or cpuset counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_process(requested: int | None, processes: int, cores: int,
                        environ: Mapping[str, str]) -> int | None:
    """The BLAS threads for one of ``processes`` processes sharing ``cores``: ``requested``
    (``--threads``) when given; else None (leave the BLAS as it is) when the user set a count
    in the environment, which the BLAS read when it loaded; else the cores divided among the
    processes (at least 1)."""
    if requested is not None:
        return requested
    if threads_from_environment(environ) is not None:
        return None
    return max(1, cores // processes)


def oversubscription(threads: int, processes: int, cores: int) -> str | None:
    """A warning when ``processes`` × ``threads`` exceed this machine's ``cores`` (BLAS threads
    that wait spin, so such a run can be many times slower), else None."""
    if threads * processes <= cores:
        return None
    return (f"{processes} process{'es' if processes != 1 else ''} × {threads} BLAS thread"
            f"{'s' if threads != 1 else ''} on this machine's {cores} core{'s' if cores != 1 else ''}: "
            f"oversubscribed, which can be many times slower; use --threads {max(1, cores // processes)} "
            f"(or set OPENBLAS_NUM_THREADS)")
