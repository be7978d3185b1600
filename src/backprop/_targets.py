"""Checks and conversions of a loss's inputs: the network's outputs and the targets
(integer labels, one-hot rows, real rows), shared by every loss in :mod:`backprop.losses`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import as_array, check_finite, check_ndim
from .devices import ops_of, to_numpy
from .errors import DTypeError, InvalidValueError, ShapeError


def _check_device_outputs(a: Any) -> Any:
    """The checks of :func:`_check_outputs` for outputs on a device (one synchronisation)."""
    xp = ops_of(a).xp
    if len(a.shape) != 2:
        raise ShapeError(f"a must be the network's outputs, a 2-D array of shape (N, k); got shape {tuple(a.shape)}")
    if not xp.isdtype(a.dtype, "real floating"):
        raise DTypeError(f"a must be a floating-point array; got dtype {a.dtype}")
    if a.shape[0] == 0:
        raise ShapeError("a must hold at least one sample; got shape (0, k)")
    if not bool(to_numpy(xp.all(xp.isfinite(a)))):
        raise InvalidValueError("a contains NaN or infinite values")
    return a


def _one_hot_like(t: Any, k: int, like: Any) -> Any:
    """Integer labels ``t`` ``(N,)`` as one-hot rows ``(N, k)`` in ``like``'s library and dtype."""
    ops = ops_of(like)
    cols = ops.xp.arange(k, device=like.device) if not isinstance(like, np.ndarray) else np.arange(k)
    return ops.astype(ops.xp.reshape(t, (-1, 1)) == cols, like.dtype)


def _check_outputs(a: Any) -> np.ndarray:
    a = as_array(a, "a")
    check_ndim(a, "a", 2, "the network's outputs, a 2-D array of shape (N, k)")
    if a.dtype.kind != "f":
        raise DTypeError(f"a must be a floating-point array; got dtype {a.dtype}")
    if a.shape[0] == 0:
        raise ShapeError("a must hold at least one sample; got shape (0, k)")
    return a


def _float_targets(y: np.ndarray, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """Real-valued targets of exactly ``shape``, in ``dtype`` when that loses nothing."""
    if y.shape != shape:
        hint = " (use y.reshape(-1, 1) for a single output)" if y.ndim == 1 and shape[1] == 1 else ""
        raise ShapeError(f"y must have the shape of the outputs {shape}; got shape {y.shape}{hint}")
    if y.dtype != dtype:
        if y.dtype.kind in "biu" or np.can_cast(y.dtype, dtype, casting="safe"):
            y = y.astype(dtype)
        else:
            raise DTypeError(
                f"y has dtype {y.dtype} but the outputs are {dtype}; convert it explicitly "
                f"(y.astype({np.dtype(dtype).name!r})) or use a {y.dtype} network"
            )
    check_finite(y, "y")
    return y


def _class_labels(y: np.ndarray, n: int, k: int) -> np.ndarray:
    """Integer labels ``(N,)`` checked to lie in ``[0, k)``."""
    if y.shape != (n,):
        raise ShapeError(f"integer labels y must have shape ({n},), one per sample; got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= k):
        raise InvalidValueError(
            f"labels in y must lie in [0, {k}) for {k} outputs; got values from {y.min()} to {y.max()}"
        )
    return y.astype(np.intp, copy=False)


def one_hot(labels: np.ndarray, k: int, dtype: Any = np.float32) -> np.ndarray:
    """``(N,)`` integer labels → ``(N, k)`` one-hot rows of ``dtype``."""
    out = np.zeros((labels.shape[0], k), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out
