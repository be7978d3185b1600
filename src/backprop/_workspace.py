"""Workspace arrays: allocated once per shape, then reused by every training step.

Layers and losses write their outputs into arrays they own instead of allocating
new ones at each call, so that after the first step of a given batch size a
training step allocates nothing proportional to the batch. An array handed out
here stays valid until the owner's next call with the same shape.
"""

from __future__ import annotations

import numpy as np

_MAX_SHAPES = 16  # beyond this many distinct (name, shape) keys, start afresh


class Workspace:
    """Mixin giving an object ``_buffer(name, shape, dtype)``, its cache of work arrays."""

    _buffers: dict[tuple, np.ndarray]

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` owned by ``self`` and reused."""
        try:
            buffers = self._buffers
        except AttributeError:
            buffers = self._buffers = {}
        key = (name, shape, dtype)
        buf = buffers.get(key)
        if buf is None:
            if len(buffers) >= _MAX_SHAPES:
                buffers.clear()  # many batch sizes in turn: do not hoard memory
            buf = buffers[key] = np.empty(shape, dtype)
        return buf
