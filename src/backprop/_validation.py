"""Checks shared by every public boundary: one place that words the errors.

Each checker raises a subclass of :class:`backprop.errors.BackpropError` whose
message names the argument, what was expected and what was given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import DTypeError, InvalidValueError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_array(value: Any, name: str) -> np.ndarray:
    """``value`` as an ndarray, refusing object, string and other non-numeric data.

    Lists and tuples are accepted and converted (they carry no dtype to lose).
    """
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (list, tuple)) or np.isscalar(value):
        try:
            array = np.asarray(value)
        except ValueError as err:  # ragged nested lists
            raise ShapeError(f"{name} must be a rectangular array; got a ragged {type(value).__name__}") from err
    elif hasattr(value, "__array__"):
        array = np.asarray(value)
    else:
        raise DTypeError(f"{name} must be a NumPy array; got {describe(value)}")
    if array.dtype.kind not in "biuf":
        raise DTypeError(
            f"{name} must hold numbers (bool, integer or float); got dtype {array.dtype}"
        )
    return array


def check_ndim(array: np.ndarray, name: str, ndim: int | tuple[int, ...], what: str) -> None:
    """Raise :class:`ShapeError` unless ``array.ndim`` is (one of) ``ndim``."""
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        raise ShapeError(f"{name} must be {what}; got shape {array.shape}")


#: elements per slice in :func:`check_finite`'s scan: one small reused mask instead of a
#: temporary the size of the data (47 MB for MNIST), which also saves the page faults
_FINITE_CHUNK = 1 << 16
#: elements per block in :func:`check_finite`: the data are read a block at a time, so a
#: memory-mapped array is never read whole at once and no temporary exceeds a block
_FINITE_BLOCK = 1 << 22


def _blocks(array: np.ndarray) -> Iterator[np.ndarray]:
    """``array`` in blocks of about :data:`_FINITE_BLOCK` elements, in memory order: slices
    of the flat view when it is contiguous (C or F), else blocks of rows."""
    if array.flags.c_contiguous or array.flags.f_contiguous:
        flat = array.ravel(order="K")  # a view, in memory order
        for start in range(0, flat.size, _FINITE_BLOCK):
            yield flat[start:start + _FINITE_BLOCK]
    else:  # a strided view (ndim >= 1): no flat view to slice
        rows = max(1, _FINITE_BLOCK // max(1, array[0].size))
        for start in range(0, len(array), rows):
            yield array[start:start + rows]


def _block_finite(block: np.ndarray) -> bool:
    if block.ndim != 1:
        return bool(np.isfinite(block).all())
    if block.dtype in (np.float32, np.float64):
        # a NaN or infinite entry makes Σ x² NaN or +inf (the squares are >= 0: nothing cancels),
        # so a finite sum proves every entry finite, in one BLAS pass (half the time of the
        # slices below); a sum that overflows (entries beyond about 1e19 in float32) is no proof
        # either way, and the slices decide
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(block, block)):
                return True
    mask = np.empty(min(block.size, _FINITE_CHUNK), dtype=bool)
    for start in range(0, block.size, _FINITE_CHUNK):
        part = block[start:start + _FINITE_CHUNK]
        ok = mask[: part.size]
        np.isfinite(part, out=ok)
        if not ok.all():
            return False
    return True


def all_finite(array: np.ndarray) -> bool:
    """Whether every entry of the float array is finite, read in blocks (see :func:`check_finite`)."""
    return all(_block_finite(block) for block in _blocks(array))


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise :class:`InvalidValueError` if ``array`` holds NaN or infinity.

    The array is read in blocks of 4M elements (16 MB of float32): a memory-mapped array is
    checked without being read whole at once, and the temporaries stay bounded.
    """
    if array.dtype.kind == "f" and not all_finite(array):
        n_nan = sum(int(np.isnan(block).sum()) for block in _blocks(array))
        n_inf = sum(int(np.isinf(block).sum()) for block in _blocks(array))
        raise InvalidValueError(
            f"{name} must be finite; it holds {n_nan} NaN and {n_inf} infinite values"
        )


def float_input(value: Any, name: str, dtype: np.dtype, width: int | None = None, *,
                finite: bool = True) -> np.ndarray:
    """Validate a float batch of shape ``(N, width)`` for a network of ``dtype``.

    The dtype rule, the same at every boundary: an array of the network's dtype
    passes untouched; a floating array that converts to it without loss
    (float16 or float32 into a float64 network) is converted once, here;
    anything else (float64 into a float32 network, integers, booleans) raises
    :class:`DTypeError` rather than silently losing precision or guessing a scale.

    An array of the network's dtype is never copied, a memory map included (``np.memmap``,
    :func:`backprop.datasets.load_npy`): its finiteness is checked a block at a time
    (``finite=False``: not here; the caller checks, e.g. each process its own rows with
    :func:`first_non_finite_row`).
    """
    array = as_array(value, name)
    check_ndim(array, name, 2, f"a 2-D batch of shape (N, {width if width else 'd'})")
    if width is not None and array.shape[1] != width:
        raise ShapeError(
            f"{name} must have {width} columns (the network's input width); got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ShapeError(f"{name} must hold at least one sample; got shape {array.shape}")
    if array.dtype != dtype:
        if array.dtype.kind == "f" and np.can_cast(array.dtype, dtype, casting="safe"):
            array = array.astype(dtype)
        else:
            if array.dtype.kind == "f":
                hint = (
                    f"convert it explicitly (x.astype({dtype.name!r})) or build the network "
                    f"with dtype={array.dtype.name!r}"
                )
            else:
                hint = "scale integer or boolean data to floats yourself, e.g. x / 255"
            raise DTypeError(
                f"{name} has dtype {array.dtype} but the network computes in {dtype}; {hint}"
            )
    if finite:
        check_finite(array, name)
    return array


def first_non_finite_row(array: np.ndarray, rows: slice | None = None) -> int | None:
    """The index of the first row of ``array`` ``(N, ...)`` among ``rows`` (default: all) that
    holds NaN or infinity, or None. Only those rows are read, in blocks of about 4M elements
    (a memory-mapped array is never read whole at once)."""
    if array.dtype.kind != "f" or len(array) == 0:
        return None
    start, stop, _ = (rows or slice(None)).indices(len(array))
    per_block = max(1, _FINITE_BLOCK // max(1, array[0].size))
    for begin in range(start, stop, per_block):
        block = np.asarray(array[begin:min(begin + per_block, stop)])
        if not all_finite(block):
            ok = np.isfinite(block).reshape(len(block), -1).all(axis=1)
            return begin + int(np.argmin(ok))
    return None


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, refusing bools, floats and non-positive numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DTypeError(f"{name} must be a positive integer; got {describe(value)}")
    if value < 1:
        raise InvalidValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


def non_negative_float(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DTypeError(f"{name} must be a number; got {describe(value)}")
    if not np.isfinite(value) or value < 0:
        raise InvalidValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def positive_float(value: Any, name: str) -> float:
    """``value`` as a finite float > 0."""
    value = non_negative_float(value, name)
    if value == 0:
        raise InvalidValueError(f"{name} must be > 0; got 0")
    return value


_REAL = (int, float, np.integer, np.floating)  # bools are ints: every check refuses them first


def finite_float(value: Any, name: str) -> float:
    """``value`` as a finite float (any sign), refusing bools, strings and None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL):
        raise DTypeError(f"{name} must be a number; got {describe(value)}")
    if not np.isfinite(value):
        raise InvalidValueError(f"{name} must be a finite number; got {value}")
    return float(value)


def fraction(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1), refusing bools, strings and None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL):
        raise DTypeError(f"{name} must be a number in [0, 1); got {describe(value)}")
    if not 0.0 <= value < 1.0:  # also refuses NaN
        raise InvalidValueError(f"{name} must lie in [0, 1); got {value}")
    return float(value)


def boolean(value: Any, name: str) -> bool:
    """``value`` if it is True or False (a NumPy bool too); ints, strings and None are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise DTypeError(f"{name} must be True or False; got {describe(value)}")
    return bool(value)


def optional_positive_int(value: Any, name: str) -> int | None:
    """``None``, or ``value`` as an int >= 1 (see :func:`positive_int`)."""
    return None if value is None else positive_int(value, name)


def seed_value(value: Any, name: str) -> int | None:
    """``None`` or a non-negative integer (a seed that can be written to a file and reused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DTypeError(f"{name} must be a non-negative integer or None; got {describe(value)}")
    if value < 0:
        raise InvalidValueError(f"{name} must be a non-negative integer or None; got {value}")
    return int(value)


def path_arg(value: Any, name: str) -> str:
    """``value`` as a path string, refusing anything but ``str`` and ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)):
        raise DTypeError(f"{name} must be a str or os.PathLike; got {describe(value)}")
    return os.fsdecode(value)


def canonical_name(name: Any) -> Any:
    """A name as the registries spell it: ``"cross-entropy"`` → ``"cross_entropy"`` (command
    lines use hyphens, Python names underscores; both are accepted). Non-strings pass through,
    so the lookup that follows refuses them."""
    return name.replace("-", "_") if isinstance(name, str) else name
