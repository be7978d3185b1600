"""The machine a benchmark ran on, for the record beside every figure: the CPU model, the cores,
the library versions, the BLAS libraries (through threadpoolctl) and the thread counts."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

from .frameworks import import_torch

#: environment variables that cap the threads of a BLAS or OpenMP library
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def blas_summary() -> str:
    """The first BLAS library NumPy uses, in one line: ``"openblas 0.3.31, kernel Haswell, 2 threads"``
    (``"unknown"`` when threadpoolctl finds none)."""
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i['version']}, kernel {i.get('architecture')}, {i['num_threads']} threads"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return blas[0] if blas else "unknown"


def machine_info(threads: int) -> dict[str, Any]:
    """CPU, cores, library versions, BLAS libraries and thread counts, for the record."""
    from threadpoolctl import threadpool_info

    from .._version import __version__

    info: dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
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
    """scikit-learn's version, or None when it is not installed."""
    try:
        import sklearn
    except ImportError:
        return None
    return str(sklearn.__version__)


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
        var = min(caps, key=caps.__getitem__)
        return caps[var], f"from {var}"
    return usable_cores(), "the usable cores"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def numpy_blas(info: dict[str, Any]) -> dict[str, Any]:
    """numpy's own BLAS library among :func:`machine_info`'s ``"blas"`` (else the first; ``{}``
    when there is none)."""
    libs = info["blas"]
    return next((lib for lib in libs if "numpy" in (lib.get("filepath") or "")),
                libs[0] if libs else {})
