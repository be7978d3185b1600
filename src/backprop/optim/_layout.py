"""Memory layout: whether a list of arrays tiles one flat buffer (and that answer remembered for
the same lists, :class:`FlatSpans`), and views into one.

A :class:`~backprop.Network` keeps its parameters in one contiguous 1-D buffer, and
``net.parameters()`` returns views into it, in order (layer 0's ``W``, layer 0's ``b``,
layer 1's ``W``, ...); its gradients live in another such buffer. When the lists an
optimizer is given tile buffers like that, the element-wise part of its update can run
once over the whole buffer instead of once per array: the same operations on the same
elements, so the same numbers bit for bit, in a few NumPy calls instead of a few per array.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np


def _root(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself when it owns it)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def flat_span(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """A 1-D view of the memory that ``arrays`` tile, in order, or None.

    They tile it when all are C-contiguous ndarrays of one dtype, views of one
    C-contiguous base array of that dtype, and each begins where the one before it
    ends. Then element ``j`` of ``arrays[i].ravel()`` is element ``offsets[i] + j`` of
    the span, with ``offsets[i] = Σ_{k<i} arrays[k].size``.

    Shape:
        ``arrays[i]``: any shape → span ``(Σ_i arrays[i].size,)``.
    """
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        return None
    first = arrays[0]
    root = _root(first)
    dtype = first.dtype
    if root.dtype != dtype or not root.flags.c_contiguous:
        return None
    start = end = first.__array_interface__["data"][0]
    for a in arrays:
        if a.dtype != dtype or not a.flags.c_contiguous or _root(a) is not root:
            return None
        if a.__array_interface__["data"][0] != end:
            return None
        end += a.nbytes
    offset, rest = divmod(start - root.__array_interface__["data"][0], dtype.itemsize)
    size = (end - start) // dtype.itemsize
    if rest or offset < 0 or offset + size > root.size:
        return None
    return root.reshape(-1)[offset : offset + size]


def views(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive C-contiguous views of ``flat``, one per shape, in order.

    Shape:
        ``flat``: ``(Σ_i prod(shapes[i]),)`` → ``views[i]``: ``shapes[i]``.
    """
    out, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return out


class FlatSpans:
    """:func:`flat_span` of a parameter list and of its gradient list, worked out once and
    remembered while the same list objects come back (an optimizer's ``step`` at every batch)."""

    def __init__(self) -> None:
        self._key: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None
        self._spans: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The spans ``(parameters, gradients)`` if both lists tile one buffer each, else None."""
        key = self._key
        if key is not None and _same(key[0], params) and _same(key[1], grads):
            return self._spans  # the same arrays as last time: the same memory
        p, g = flat_span(params), flat_span(grads)
        self._key = (tuple(params), tuple(grads))
        self._spans = None if p is None or g is None else (p, g)
        return self._spans


def _same(seen: tuple[np.ndarray, ...], arrays: Sequence[np.ndarray]) -> bool:
    """Whether ``arrays`` holds the very objects of ``seen``, in order."""
    return len(seen) == len(arrays) and all(map(operator.is_, seen, arrays))
