"""Weight decay, for every optimizer: the L2 gradient ``g + wd·w``, and the array-by-array decay
that comes before an update over a flat buffer (it concerns weight matrices only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..devices import ops_of
from ._buffers import Flat


def l2_gradient(p: np.ndarray, g: np.ndarray, wd: float, out: np.ndarray) -> np.ndarray:
    """``out = g + wd·w``: the gradient of ``C + (wd/2)‖w‖²`` (L2 weight decay); returns ``out``."""
    ops_of(p).multiply(p, wd, out=out)
    out += g
    return out


def decay_each(params: Sequence[np.ndarray], grads: Sequence[np.ndarray], g: np.ndarray, *, wd: float,
               shrink: float | None, decay: list[bool], flat: Flat) -> np.ndarray:
    """Weight decay, array by array, before a flat update; returns the gradient buffer to use.

    Decoupled (``shrink = 1 − η wd``, AdamW): ``w ← shrink · w`` for the arrays ``decay`` marks,
    in place, and ``g`` unchanged. Coupled (``shrink`` None): ``l2[i] = g_i + wd·w_i`` for the
    marked arrays, ``l2[i] = g_i`` for the rest, into ``flat.l2``.

    Shape:
        ``params[i]``, ``grads[i]``: any shape, the same; ``g``: the gradients' flat buffer.
    """
    if shrink is not None:
        for p, d in zip(params, decay, strict=True):
            if d:
                p *= shrink
        return g
    assert flat.l2 is not None  # allocated whenever some array is decayed
    for p, gi, out, d in zip(params, grads, flat.l2_views, decay, strict=True):
        if d:
            l2_gradient(p, gi, wd, out)
        else:
            ops_of(out).copyto(out, gi)
    return flat.l2
