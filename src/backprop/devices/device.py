"""``Device``: where a network's arrays live, and moving arrays across the boundary (see
:mod:`backprop.devices`)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..errors import ConfigError, DeviceError, DTypeError, InvalidValueError, ShapeError
from .ops import _GPU_HINT, ACCEPTED, _kind, _ops_for_kind, device_of, ops_of


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
