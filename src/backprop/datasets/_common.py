"""Helpers every reader of :mod:`backprop.datasets` shares: argument checks and the one
conversion rule (round floats to the asked dtype, refuse anything that loses more)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._validation import describe
from ..errors import DTypeError, InvalidValueError

CHUNK = 1 << 16  # bytes read at a time from a gzip stream, a zip member or a download
MAX_NDIM = 32  # dimensions of an IDX or .npy array (NumPy's limit is 32 or 64)

#: elements checked at a time by :func:`first_non_finite_row` and converted at a time by
#: readers that stream: a bounded temporary whatever the size of the data (16 MB of float32)
BLOCK_ELEMENTS = 1 << 22


def fspath(path: Any, name: str) -> str:
    """``path`` as a string, refusing anything but ``str`` and ``os.PathLike``."""
    if not isinstance(path, (str, os.PathLike)):
        raise DTypeError(f"{name} must be a str or os.PathLike; got {describe(path)}")
    return os.fsdecode(path)


def as_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype (:class:`DTypeError` naming ``dtype`` otherwise)."""
    try:
        return np.dtype(dtype)
    except TypeError as err:
        raise DTypeError(f"dtype must be a NumPy dtype such as 'float32'; got {dtype!r}") from err


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a float dtype (float16, float32, float64, ...)."""
    dt = as_dtype(dtype)
    if dt.kind != "f":
        raise DTypeError(f"dtype must be a float dtype such as 'float32' or 'float64'; got {dt}")
    return dt


def to_float(a: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """``a`` (finite floats, integers or booleans) as ``dtype``, refusing any loss but rounding."""
    if a.dtype.kind in "biu" and a.size:
        limit = 2 ** (np.finfo(dtype).nmant + 1)  # every integer up to this is exact
        if max(-int(a.min()), int(a.max())) > limit:
            raise DTypeError(f"{where} holds integers up to {max(-int(a.min()), int(a.max()))}, "
                             f"which {dtype} cannot hold exactly (limit {limit}); convert it "
                             f"yourself or pass dtype='float64'")
    with np.errstate(over="ignore"):
        out = a.astype(dtype, copy=False)  # already ``dtype``: returned as it is
    if not np.isfinite(out).all():
        raise InvalidValueError(f"{where} holds values beyond the range of {dtype}")
    return out


def labels_from_floats(y: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """Labels read as float64 from an untyped file (CSV): int64 class indices if every value is
    a whole number of at most 2**53, else ``dtype`` (targets for regression).

    Whole numbers are converted in place, a block at a time: ``y`` (which the caller gives
    up) becomes the int64 result, and no second array of labels is ever held.

    Shape: ``(N,)`` float64 in, ``(N,)`` out.
    """
    step = BLOCK_ELEMENTS
    if all(_whole(y[i:i + step]) for i in range(0, len(y), step)):
        labels = y.view(np.int64)
        for i in range(0, len(y), step):
            labels[i:i + step] = y[i:i + step].astype(np.int64)  # a bounded temporary
        return labels
    return to_float(y, dtype, where)


def _whole(y: np.ndarray) -> bool:
    """Whether every value of the float64 block ``y`` is a whole number of at most 2**53."""
    return bool(np.all(y == np.round(y)) and np.all(np.abs(y) <= 2**53))


def first_non_finite_row(a: np.ndarray) -> int | None:
    """The index of the first row of ``a`` (shape ``(N, ...)``) holding NaN or infinity, or
    None; ``a`` is read in blocks of rows, so a memory-mapped array is never read whole at
    once and the temporary is bounded (:data:`BLOCK_ELEMENTS`)."""
    if a.dtype.kind != "f" or a.size == 0:
        return None
    rows = max(1, BLOCK_ELEMENTS // max(1, a.size // len(a)))
    for start in range(0, len(a), rows):
        block = a[start:start + rows]
        ok = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None
