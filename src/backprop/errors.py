"""The library's exceptions.

Every error that backprop raises on purpose is a :class:`BackpropError`. Each
subclass also derives from the built-in exception that fits, so code that
already catches ``ValueError`` or ``TypeError`` keeps working::

    try:
        net.forward(x)
    except bp.errors.ShapeError as err:   # also a ValueError
        print(err)
"""

from __future__ import annotations


class BackpropError(Exception):
    """Base class of every error raised on purpose by backprop."""


class ShapeError(BackpropError, ValueError):
    """An array has the wrong number of dimensions or the wrong size."""


class DTypeError(BackpropError, TypeError):
    """An array has a dtype that cannot be used without losing information."""


class InvalidValueError(BackpropError, ValueError):
    """A value is out of its allowed range: NaN, infinity, a label out of range, ..."""


class ConfigError(BackpropError, ValueError):
    """An unknown name or an invalid setting in an argument, a flag or a config file."""


class FileFormatError(BackpropError, ValueError):
    """A file is malformed, truncated, oversized or not of the expected kind."""


class ChecksumError(FileFormatError):
    """A file's SHA-256 does not match the one it must have."""


class DatasetUnavailableError(BackpropError, FileNotFoundError):
    """A data set is neither in a local directory nor downloadable."""


class StateError(BackpropError, RuntimeError):
    """A method called out of order, e.g. ``backward`` before any ``forward``."""


class DivergenceError(BackpropError, FloatingPointError):
    """Training produced a NaN or infinite loss."""


class DeviceError(BackpropError, RuntimeError):
    """A device cannot be used (no CUDA device, CuPy missing), or an array is on another device
    or array library than the network's."""


class WriteError(BackpropError, OSError):
    """A file could not be written: a full disk, a read-only or missing folder, no permission.

    The message names the file meant to be written (never a temporary file beside it) and the
    cause; ``errno``, ``strerror`` and ``filename`` are set as for any :class:`OSError`::

        cannot write 'out/model.safetensors': No space left on device
    """

    def __init__(self, path: object, errno: int | None, cause: str) -> None:
        super().__init__(errno, cause, str(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename!r}: {self.strerror}"


class MissingDependencyError(BackpropError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it
    (e.g. ``pip install 'backprop[data]'``)."""
