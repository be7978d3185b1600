"""Norm constraints around the update: global gradient clipping before it, max-norm after it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..devices import ops_of, to_numpy


def clip_global_norm(grads: Sequence[np.ndarray], clip_norm: float, span: np.ndarray | None) -> float:
    """``‖g‖ = sqrt(Σ_i Σ g_i²)``; if ``‖g‖ > clip_norm``, ``g_i ← g_i · clip_norm/‖g‖`` in place.

    Returns ``‖g‖`` as measured before clipping. A NaN or infinite norm scales nothing,
    so a divergence stays visible. ``span``: the flat buffer ``grads`` tile, if they do
    (scaled in one call; the norm is still summed array by array, so it is the same
    number bit for bit).

    Shape:
        ``grads[i]``: any shape; ``span``: ``(Σ_i grads[i].size,)``.
    """
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is handled below
        for g in grads:  # on a device: one read-back per array (clipping needs the norm now)
            total += float(to_numpy(ops_of(g).sum_of_squares(g)))
    if not math.isfinite(total):  # float32 overflow of the squares? recount in float64
        total = sum(float(to_numpy(ops_of(g).sum_of_squares(g, float64=True))) for g in grads)
    norm = math.sqrt(total)
    if clip_norm < norm < math.inf:
        scale = clip_norm / norm
        for g in grads if span is None else (span,):
            g *= scale
    return norm


def max_norm_rows(
    params: Sequence[np.ndarray],
    scratch: Sequence[np.ndarray],
    rows: Sequence[np.ndarray | None],
    row_axes: Sequence[tuple[int, ...]],
    c: float,
) -> None:
    """Max-norm (Srivastava et al. 2014): each row ``w_j`` of a weight matrix, ``w_j ← w_j · c / max(‖w_j‖, c)``.

    A row is the incoming weights of one unit (``W`` is ``(d_out, d_in)``); rows within
    the bound keep their values bit for bit. Arrays whose ``rows[i]`` is None (biases)
    are left alone.

    Shape:
        ``params[i]``, ``scratch[i]``: one shape ``(d_out, ...)``; ``rows[i]``: ``(d_out, 1, ...)``.
    """
    for p, s, r, axes in zip(params, scratch, rows, row_axes, strict=True):
        if r is None:
            continue
        ops = ops_of(p)  # NumPy: np.multiply, ... themselves
        ops.multiply(p, p, out=s)
        ops.sum_keepdims(s, axes, out=r)  # r_j = ‖w_j‖²
        ops.sqrt(r, out=r)
        ops.maximum(r, c, out=r)
        ops.divide(c, r, out=r)  # the factor: exactly 1.0 for rows within the bound
        ops.copyto(s, r)  # spread it over the row first: an in-place broadcast
        p *= s  # multiply would allocate NumPy's iterator buffer at every call
