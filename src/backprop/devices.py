"""Devices: where a network's arrays live, and the one shim that runs the same maths on any array library.

The layers, activations, losses, optimizers and the training step are written once. They take
the array library from the arrays they are given (the Python array API standard, through
``array_api_compat``) and call it through :func:`ops_of`, which hands back an :class:`Ops`:

* NumPy and CuPy: their own functions, which write into ``out=`` (NumPy's fast path, unchanged);
* PyTorch: its ``out=`` matrix product, the element-wise maths computed then assigned;
* array-api-strict (the standard and nothing else, for tests): computed, then assigned into
  ``out`` with ``out[...] = value``.

A :class:`Device` names where a network's arrays are: ``"cpu"`` (NumPy), ``"cuda"`` or
``"cuda:N"`` (CuPy), or an array namespace with a device, e.g. ``(torch, "cuda:0")`` or
``(array_api_strict, array_api_strict.Device("device1"))``. Arrays cross between the host and a
device only through :meth:`Device.asarray` and :func:`to_numpy`, at a boundary (the start of a
``fit``, a save), never inside a training step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConfigError, DeviceError, DTypeError, InvalidValueError, ShapeError

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


class Device:
    """Where a network's arrays are: an array library and one of its devices.

    Build one with :func:`get_device` (or pass what it accepts as ``Network(device=...)``).

    Attributes:
        kind: ``"numpy"``, ``"cupy"``, ``"torch"`` or ``"array_api_strict"``.
        ops: the library's :class:`Ops`.
        device: the library's device object (``None`` for NumPy and CuPy).
        name: a readable name, e.g. ``"cpu"``, ``"cuda:0"``, ``"torch:cuda:0"``.

    Example:
        >>> dev = bp.devices.get_device("cpu")
        >>> dev.asarray(np.ones(3)) is not None
        True
    """

    def __init__(self, kind: str, device: Any, name: str, cuda_index: int | None = None) -> None:
        self.kind, self.device, self.name = kind, device, name
        self.ops = _ops_for_kind(kind)
        self.cuda_index = cuda_index

    @property
    def is_numpy(self) -> bool:
        """Whether the arrays are NumPy arrays in host memory."""
        return self.kind == "numpy"

    def dtype(self, dtype: np.dtype) -> Any:
        """The library's dtype for the NumPy dtype ``dtype`` (float32, float64, int64, bool)."""
        if self.kind in ("numpy", "cupy"):
            return np.dtype(dtype)
        return getattr(self.ops.xp, np.dtype(dtype).name)

    def _context(self) -> Any:
        if self.kind == "cupy":
            import cupy

            return cupy.cuda.Device(self.cuda_index)
        from contextlib import nullcontext

        return nullcontext()

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """An uninitialised array on this device."""
        with self._context():
            return self.ops.empty(shape, self.dtype(dtype), self.device)

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """Zeros on this device."""
        with self._context():
            return self.ops.zeros(shape, self.dtype(dtype), self.device)

    def asarray(self, x: Any) -> Any:
        """``x`` (a NumPy array, or an array already here) as an array on this device: one copy
        from the host (none when ``x`` is already here)."""
        if self.holds(x):
            return x
        if not isinstance(x, np.ndarray):
            raise DeviceError(f"only NumPy arrays move to {self.name}; got {describe_array(x)}")
        if self.kind == "numpy":
            return x
        if self.kind == "cupy":
            with self._context():
                return self.ops.xp.asarray(x)
        if self.kind == "torch":
            import torch

            return torch.as_tensor(x, device=self.device)
        return self.ops.xp.asarray(x, device=self.device)

    def holds(self, x: Any) -> bool:
        """Whether ``x`` is an array of this device's library on this device."""
        if self.kind == "numpy":
            return type(x) is np.ndarray or isinstance(x, np.ndarray)
        try:
            ops = ops_of(x)
        except (DTypeError, DeviceError):
            return False
        if ops.kind != self.kind:
            return False
        if self.kind == "cupy":
            return int(x.device.id) == self.cuda_index
        return bool(device_of(x) == self.device)

    def free_bytes(self) -> int | None:
        """Free memory on the device in bytes, where the library reports it (else ``None``)."""
        if self.kind == "cupy":
            import cupy

            with self._context():
                return int(cupy.cuda.runtime.memGetInfo()[0])
        if self.kind == "torch" and getattr(self.device, "type", "") == "cuda":
            import torch

            return int(torch.cuda.mem_get_info(self.device)[0])
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by what names it (its :class:`Ops` holds a module, which cannot be pickled)."""
        return (_rebuild, (self.kind, self.device, self.name, self.cuda_index))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Device({self.name!r})"


CPU = Device("numpy", None, "cpu")


def _rebuild(kind: str, device: Any, name: str, cuda_index: int | None) -> Device:
    """The :class:`Device` a pickle names (:data:`CPU` itself for NumPy)."""
    return CPU if kind == "numpy" else Device(kind, device, name, cuda_index)


def describe_array(x: Any) -> str:
    """``"a torch array on cuda:0"``, for error messages."""
    try:
        ops = ops_of(x)
    except (DTypeError, DeviceError):
        return type(x).__name__
    return f"a {ops.kind} array on {device_of(x) if ops.kind != 'numpy' else 'cpu'}"


def _cuda(index: int) -> Device:
    """The CuPy device ``cuda:index``, or a one-line :class:`DeviceError` saying what is missing."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        raise DeviceError(f"device 'cuda' needs CuPy, which is not installed: {_GPU_HINT}") from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as err:  # CuPy raises its own CUDARuntimeError without a driver
        raise DeviceError(f"device 'cuda' needs a CUDA device, and CuPy finds none ({err})") from None
    if count == 0:
        raise DeviceError("device 'cuda' needs a CUDA device, and CuPy finds none")
    if not 0 <= index < count:
        raise DeviceError(f"device 'cuda:{index}' does not exist: CuPy sees {count} CUDA device(s), "
                          f"cuda:0 to cuda:{count - 1}")
    return Device("cupy", None, f"cuda:{index}", cuda_index=index)


def _from_string(spec: str) -> Device:
    text = spec.strip().lower()
    if text == "cpu":
        return CPU
    if text == "cuda":
        return _cuda(0)
    if text.startswith("cuda:") and text[5:].isdigit():
        return _cuda(int(text[5:]))
    raise ConfigError(f"device must be one of {ACCEPTED}; got {spec!r}")


def _from_namespace(xp: Any, device: Any) -> Device:
    kind = _kind(xp)
    if kind == "numpy":
        if device not in (None, "cpu"):
            raise ConfigError(f"NumPy arrays live on 'cpu' only; got device {device!r}")
        return CPU
    if kind == "cupy":
        index = device if isinstance(device, int) else (getattr(device, "id", None) if device is not None else 0)
        if isinstance(device, str):
            return _from_string(device)
        return _cuda(int(index or 0))
    if kind == "torch":
        import torch

        dev = torch.device("cpu" if device is None else device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise DeviceError(f"device {str(dev)!r} needs PyTorch built with CUDA and a CUDA device; "
                              "this PyTorch finds none")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return Device("torch", dev, f"torch:{dev}")
    import array_api_strict

    strict = array_api_strict.Device() if device is None else device
    if not isinstance(strict, array_api_strict.Device):
        raise ConfigError(f"array_api_strict's devices are array_api_strict.Device objects; got {device!r}")
    return Device("array_api_strict", strict, f"array_api_strict:{strict}")


def get_device(spec: Any) -> Device:
    """The :class:`Device` that ``spec`` names (see :data:`ACCEPTED`).

    Raises:
        ConfigError: an unknown device string or value; the message lists the accepted forms.
        DeviceError: ``"cuda"`` without CuPy or without a CUDA device (one line saying which).
    """
    if spec is None:
        return CPU
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, str):
        return _from_string(spec)
    if isinstance(spec, tuple) and len(spec) == 2:
        return _from_namespace(_namespace(spec[0]), spec[1])
    xp = _namespace(spec)
    return _from_namespace(xp, None)


def _namespace(value: Any) -> Any:
    """An array namespace given as a module (``torch`` is taken as array_api_compat's wrapper)."""
    name = getattr(value, "__name__", None)
    known = {"numpy": "numpy", "cupy": "cupy", "torch": "array_api_compat.torch",
             "array_api_compat.numpy": "numpy", "array_api_compat.cupy": "cupy",
             "array_api_compat.torch": "array_api_compat.torch", "array_api_strict": "array_api_strict"}
    if name not in known:
        raise ConfigError(f"device must be one of {ACCEPTED}; got {value!r}")
    return importlib.import_module(known[name])


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of ``x`` (``x`` itself when it is a NumPy array): the one way arrays come
    back to the host, used by save, checkpoints, ONNX and ``to_torch``."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (np.generic, float, int)):
        return np.asarray(x)
    kind = ops_of(x).kind
    if kind == "cupy":
        return x.get()
    if kind == "torch":
        return x.detach().cpu().numpy()
    import array_api_strict

    return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))


def device_input(x: Any, name: str, device: Device, dtype: np.dtype, width: int | None) -> Any:
    """Check a batch ``x`` of shape ``(N, width)`` that is already on ``device`` (the rules of
    :func:`~backprop._validation.float_input`, applied there; one synchronisation for the
    finiteness check) and return it, converted once when it is a narrower float."""
    xp = device.ops.xp
    if len(x.shape) != 2:
        raise ShapeError(f"{name} must be a 2-D batch of shape (N, {width if width else 'd'}); "
                         f"got shape {tuple(x.shape)}")
    if width is not None and x.shape[1] != width:
        raise ShapeError(f"{name} must have {width} columns (the network's input width); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ShapeError(f"{name} must hold at least one sample; got shape {tuple(x.shape)}")
    want = device.dtype(dtype)
    if x.dtype != want:
        if x.dtype == device.dtype(np.dtype(np.float32)) and np.dtype(dtype) == np.float64:
            x = xp.astype(x, want)
        else:
            raise DTypeError(f"{name} has dtype {x.dtype} but the network computes in {dtype}; "
                             f"convert it explicitly")
    if not bool(to_numpy(xp.all(xp.isfinite(x)))):
        raise InvalidValueError(f"{name} contains NaN or infinite values")
    return x


def check_placement(x: Any, name: str, device: Device) -> bool:
    """Whether ``x`` is on ``device`` (True) or is host data to move there (False); an array of
    another library or device raises :class:`DeviceError` naming the argument."""
    if device.holds(x):
        return not device.is_numpy
    if isinstance(x, (np.ndarray, list, tuple)) or np.isscalar(x):
        return False
    try:
        ops_of(x)
    except (DTypeError, DeviceError):
        return False  # not an array library we know: the host checks say what is wrong
    if device.is_numpy and ops_of(x).kind == "torch" and str(device_of(x)) == "cpu":
        return False  # a CPU tensor reads as a NumPy array (as before devices existed)
    raise DeviceError(f"{name} is {describe_array(x)}, but the network is on {device.name}; move it "
                      f"there first (net.device.asarray(backprop.devices.to_numpy({name}))) or pass a NumPy array")


def empty_on(like: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialised array of ``shape`` and ``dtype`` in ``like``'s library, on its device."""
    ops = ops_of(like)
    if ops.kind == "cupy":
        with like.device:
            return ops.empty(shape, dtype, None)
    return ops.empty(shape, dtype, device_of(like))


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of a library's dtype (``torch.float32`` → ``float32``)."""
    if isinstance(dtype, np.dtype):
        return dtype
    return np.dtype(str(dtype).rsplit(".", 1)[-1])


def dtype_kind(dtype: Any) -> str:
    """NumPy's kind letter (``"f"`` float, ``"i"`` integer, ...) of any library's dtype; ``"?"``
    for a dtype NumPy does not have (e.g. ``torch.bfloat16``)."""
    try:
        return numpy_dtype(dtype).kind
    except TypeError:
        return "?"


def from_host(x: np.ndarray, like: Any) -> Any:
    """A copy of the host array ``x`` in ``like``'s library, on ``like``'s device."""
    if isinstance(like, np.ndarray):
        return x
    ops = ops_of(like)
    if ops.kind == "cupy":
        with like.device:
            return ops.xp.asarray(x)
    if ops.kind == "torch":
        import torch

        return torch.as_tensor(x, device=like.device)
    return ops.xp.asarray(x, device=device_of(like))


def scalar(value: Any) -> Any:
    """A NumPy result as a Python ``float``; another library's 0-d array as it is, on its device
    (no synchronisation: the training loop sums such values and reads them once per epoch)."""
    if isinstance(value, (np.generic, np.ndarray, float, int)):
        return float(value)
    return value
