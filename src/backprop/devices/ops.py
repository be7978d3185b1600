"""The one shim that runs the same maths on any array library: :func:`ops_of` hands back an
:class:`Ops` for an array's library (see :mod:`backprop.devices` for what each library gets)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DeviceError, DTypeError

#: what ``device=`` accepts, for error messages
ACCEPTED = ('"cpu", "cuda", "cuda:N" (CuPy), an array namespace (numpy, cupy, torch, array_api_strict), '
            'a pair (namespace, device) such as (torch, "cuda:0") or '
            '(array_api_strict, array_api_strict.Device("device1")), or a backprop Device')

#: the element-wise functions of :class:`Ops`, by their array API names
ELEMENTWISE = ("abs", "add", "divide", "exp", "expm1", "greater", "less", "less_equal", "log", "logaddexp", "maximum",
               "minimum", "multiply", "negative", "sqrt", "subtract", "tanh")

_GPU_HINT = ('pip install "backprop[gpu]" (CuPy for CUDA 13; for CUDA 12: pip install cupy-cuda12x)')


def _assigning(fn: Callable[..., Any], xp: Any) -> Callable[..., Any]:
    """``fn`` with an ``out=`` argument for a library whose functions have none: the result is
    computed, cast to ``out``'s dtype (a comparison gives booleans) and assigned into ``out``."""
    def into(*args: Any, out: Any = None) -> Any:
        value = fn(*args)
        if out is None:
            return value
        if value.dtype != out.dtype:
            value = xp.astype(value, out.dtype)
        out[...] = value
        return out
    return into


class Ops:
    """The array functions the layers, losses and optimizers call, for one array library.

    Each element-wise function of :data:`ELEMENTWISE` (``ops.exp(x, out=o)``, ``ops.maximum(a, b,
    out=o)``, ...) takes Python scalars as operands and writes into ``out`` when given. On NumPy
    and CuPy these attributes *are* the library's own functions (``ops.exp is np.exp``), so the
    NumPy path is today's ``out=`` path.

    Args:
        xp: the array namespace (``numpy``, ``cupy``, or ``array_api_compat``'s ``torch``, or
            ``array_api_strict``).
        native_out: the library's functions take ``out=`` and scalars (NumPy, CuPy).
        kind: ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"array_api_strict"``.
    """

    abs: Callable[..., Any]
    add: Callable[..., Any]
    divide: Callable[..., Any]
    exp: Callable[..., Any]
    expm1: Callable[..., Any]
    greater: Callable[..., Any]
    less: Callable[..., Any]
    less_equal: Callable[..., Any]
    log: Callable[..., Any]
    logaddexp: Callable[..., Any]
    maximum: Callable[..., Any]
    minimum: Callable[..., Any]
    multiply: Callable[..., Any]
    negative: Callable[..., Any]
    sqrt: Callable[..., Any]
    subtract: Callable[..., Any]
    tanh: Callable[..., Any]

    def __init__(self, xp: Any, native_out: bool, kind: str, lib: Any = None) -> None:
        self.xp, self.native_out, self.kind = xp, native_out, kind
        #: the library's own module, whose functions take ``out=`` (NumPy, CuPy), else ``xp``
        self.lib = xp if lib is None else lib
        for name in ELEMENTWISE:
            fn = getattr(self.lib if native_out else xp, name)
            setattr(self, name, fn if native_out else _assigning(fn, xp))
        if kind == "torch":
            import torch

            self._torch_matmul = torch.matmul

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        """``out ← a @ b`` (``out`` of the product's shape and dtype), returned."""
        if self.native_out:
            return self.lib.matmul(a, b, out=out)
        if self.kind == "torch":
            return self._torch_matmul(a, b, out=out)
        out[...] = a @ b
        return out

    def sum(self, x: Any, axis: int, out: Any) -> Any:
        """``out ← Σ`` of ``x`` along ``axis`` (``out`` of the reduced shape), returned."""
        if self.kind == "numpy":
            return self.lib.add.reduce(x, axis=axis, out=out)
        if self.native_out:
            return self.lib.sum(x, axis=axis, out=out)
        out[...] = self.xp.sum(x, axis=axis)
        return out

    def max(self, x: Any, axis: int, out: Any) -> Any:
        """``out ← max`` of ``x`` along ``axis``, returned."""
        if self.kind == "numpy":
            return self.lib.maximum.reduce(x, axis=axis, out=out)
        if self.native_out:
            return self.lib.max(x, axis=axis, out=out)
        out[...] = self.xp.max(x, axis=axis)
        return out

    def copyto(self, out: Any, x: Any) -> None:
        """``out[...] = x`` (an array of ``out``'s shape, or a scalar)."""
        if self.native_out:
            self.lib.copyto(out, x)
        else:
            out[...] = x

    def take(self, x: Any, idx: Any, out: Any) -> Any:
        """``out ← x[idx]``: the rows ``idx`` (1-D integer indices, all valid) of ``x``."""
        if self.kind == "numpy":  # mode="clip": no temporary (the indices are valid)
            return self.lib.take(x, idx, axis=0, out=out, mode="clip")
        if self.native_out:
            return self.lib.take(x, idx, axis=0, out=out)
        out[...] = self.xp.take(x, idx, axis=0)
        return out

    def dot_all(self, a: Any, b: Any) -> Any:
        """``Σ_ij a_ij b_ij`` as a 0-d array (NumPy: a scalar)."""
        if self.native_out:
            return self.lib.vdot(a, b)
        return self.xp.sum(a * b)

    def sum_of_squares(self, g: Any, float64: bool = False) -> Any:
        """``Σ g²`` over every entry, as a 0-d array or scalar (``float64``: summed in float64)."""
        if self.kind == "numpy":
            if float64:
                return np.square(g, dtype=np.float64).sum()
            flat = g.ravel()
            return flat @ flat
        if float64:
            g = self.xp.astype(g, self.xp.float64)
        return self.xp.sum(g * g)

    def sum_keepdims(self, x: Any, axes: tuple[int, ...], out: Any) -> Any:
        """``out ← Σ`` of ``x`` over ``axes``, the reduced axes kept (of size 1), returned."""
        if self.kind == "numpy":
            return x.sum(axis=axes, keepdims=True, out=out)
        if self.native_out:
            return self.lib.sum(x, axis=axes, keepdims=True, out=out)
        out[...] = self.xp.sum(x, axis=axes, keepdims=True)
        return out

    def rowdot(self, a: Any, b: Any) -> Any:
        """``Σ_j a_ij b_ij`` for each row ``i``: shape ``(N,)``."""
        if self.kind == "numpy":
            return self.lib.einsum("ij,ij->i", a, b)
        return self.xp.sum(a * b, axis=1)

    def astype(self, x: Any, dtype: Any) -> Any:
        """``x`` converted to ``dtype`` (a copy), in its library."""
        return x.astype(dtype) if self.kind == "numpy" else self.xp.astype(x, dtype)

    def copy(self, x: Any) -> Any:
        """A fresh copy of ``x`` in its library and on its device."""
        return x.copy() if self.native_out else self.xp.asarray(x, copy=True)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        """``x`` reshaped; a view when ``x`` is contiguous (a slice of a flat buffer is)."""
        return x.reshape(shape) if self.native_out else self.xp.reshape(x, shape)

    def empty(self, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
        """An uninitialised array; ``device`` is ``None`` for NumPy and CuPy (the current device)."""
        if self.native_out:
            return self.lib.empty(shape, dtype)
        return self.xp.empty(shape, dtype=dtype, device=device)

    def zeros(self, shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
        """An array of zeros (see :meth:`empty`)."""
        if self.native_out:
            return self.lib.zeros(shape, dtype)
        return self.xp.zeros(shape, dtype=dtype, device=device)


_NUMPY_OPS = Ops(np, True, "numpy")
_OPS: dict[type, Ops] = {np.ndarray: _NUMPY_OPS}


def _compat() -> Any:
    """``array_api_compat``, or a one-line :class:`DeviceError` saying how to install it."""
    try:
        return importlib.import_module("array_api_compat")
    except ImportError:
        raise DeviceError("arrays other than NumPy's need array-api-compat: pip install array-api-compat "
                          "(it comes with backprop's gpu, torch and test extras)") from None


def _kind(xp: Any) -> str:
    compat = _compat()

    if compat.is_numpy_namespace(xp):
        return "numpy"
    if compat.is_cupy_namespace(xp):
        return "cupy"
    if compat.is_torch_namespace(xp):
        return "torch"
    if compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    raise DeviceError(f"arrays of {xp.__name__} are not supported; use NumPy, CuPy, PyTorch or array-api-strict")


def _ops_for_kind(kind: str) -> Ops:
    if kind == "numpy":
        return _NUMPY_OPS
    if kind == "cupy":  # CuPy's own functions for out=, array_api_compat's namespace for the rest
        return Ops(importlib.import_module("array_api_compat.cupy"), True, kind, importlib.import_module("cupy"))
    if kind == "torch":
        return Ops(importlib.import_module("array_api_compat.torch"), False, kind)
    return Ops(importlib.import_module("array_api_strict"), False, kind)


def ops_of(x: Any) -> Ops:
    """The :class:`Ops` of ``x``'s array library (cached by the array's type: one dict look-up)."""
    try:
        return _OPS[type(x)]
    except KeyError:
        pass
    if not is_library_array(x):
        raise DTypeError(f"expected an array (NumPy, CuPy, PyTorch or array-api-strict); got {type(x).__name__}")
    compat = _compat()
    try:
        xp = compat.array_namespace(x)
    except TypeError:
        raise DTypeError(f"expected an array (NumPy, CuPy, PyTorch or array-api-strict); got {type(x).__name__}") \
            from None
    kind = _kind(xp)
    ops = _OPS[type(x)] = _OPS.get(type(x)) or _ops_for_kind(kind)
    return ops


def is_library_array(x: Any) -> bool:
    """Whether ``x`` is an array of an array library (NumPy, CuPy, PyTorch, array-api-strict, ...)."""
    return isinstance(x, np.ndarray) or hasattr(x, "__array_namespace__") \
        or type(x).__module__.split(".")[0] in ("torch", "cupy")


def on_device(x: Any) -> bool:
    """Whether ``x`` is an array of another library than NumPy (CuPy, PyTorch, ...)."""
    return not isinstance(x, np.ndarray) and is_library_array(x)


def device_of(x: Any) -> Any:
    """The library device object of ``x`` (``None`` for NumPy)."""
    if type(x) is np.ndarray:
        return None
    return _compat().device(x)
