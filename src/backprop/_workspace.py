"""Workspace arrays: allocated once per shape, then reused by every training step.

Layers and losses write their outputs into arrays they own instead of allocating
new ones at each call, so that after the first step of a given batch size a
training step allocates nothing proportional to the batch. An array handed out
here stays valid until the owner's next call with the same shape. Besides a
network's parameter and gradient buffers, these are the only arrays the training
path creates; they are made in the library and on the device of the array they
are for (``like``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_MAX_SHAPES = 16  # beyond this many distinct (name, shape) keys, start afresh


class Workspace:
    """Mixin giving an object ``_buffer(name, shape, dtype, like)``, its cache of work arrays."""

    _buffers: dict[tuple, Any]

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any, like: Any = None) -> Any:
        """An uninitialised array of ``shape`` and ``dtype`` owned by ``self`` and reused: a NumPy
        array, or, when ``like`` is an array of another library (CuPy, PyTorch, ...), one of
        ``like``'s library on ``like``'s device."""
        try:
            buffers = self._buffers
        except AttributeError:
            buffers = self._buffers = {}
        host = like is None or isinstance(like, np.ndarray)
        if host:
            key: tuple = (name, shape, dtype)
        else:
            from .devices import device_of

            key = (name, shape, dtype, type(like), str(device_of(like)))
        buf = buffers.get(key)
        if buf is None:
            if len(buffers) >= _MAX_SHAPES:
                buffers.clear()  # many batch sizes in turn: do not hoard memory
            if host:
                buf = np.empty(shape, dtype)
            else:
                from .devices import empty_on

                buf = empty_on(like, shape, dtype)
            buffers[key] = buf
        return buf

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its work arrays (they are scratch, made again on the next call)."""
        state = dict(self.__dict__)
        state.pop("_buffers", None)
        return state

    def _clear_workspace(self) -> None:
        """Drop every work array (after the owner moved to another device)."""
        self._buffers = {}
