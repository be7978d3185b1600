"""The arrays an optimizer allocates at its first step: state, scratch, L2 and row buffers.

Per parameter array ``w`` (``params[i]``), in ``w``'s dtype: its state arrays (the
velocities or moments the optimizer keeps), a scratch array, a second one for
``g + wd·w`` where the update needs it, and for max-norm a column of row norms. When the
parameters tile one flat buffer (:func:`~backprop.optim._layout.flat_span`), state and
scratch are flat buffers too and the per-parameter arrays are views into them, so the
update can run over all parameters at once while ``state_dict`` keeps one array per parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..devices import empty_on, from_host, to_numpy
from ._layout import flat_span, views

#: one array's state arrays, in the order of ``Optimizer._buffer_names()``
State = tuple[np.ndarray, ...]


@dataclass
class Flat:
    """The state and scratch arrays as flat buffers (all of shape ``(P,)``, P parameters in all)."""

    slot: State  #: the state arrays, in the order of ``_buffer_names()``
    scratch: np.ndarray
    #: where ``g + wd·w`` of every array (``g`` alone where not decayed) is written before a flat
    #: update under coupled weight decay: ``scratch`` or a buffer of its own; None without it
    l2: np.ndarray | None
    l2_views: list[np.ndarray]  #: ``l2`` as one view per parameter


@dataclass
class Work:
    """Everything but the state itself, one entry per parameter (``flat`` for all at once)."""

    slots: list[State]  #: ``slots[i]``: the state arrays of ``params[i]``
    scratch: list[np.ndarray]  #: one scratch array per parameter, of its shape
    gbuf: list[np.ndarray | None]  #: where ``g + wd·w`` goes, where the update needs its own
    decay: list[bool]  #: whether weight decay applies (weight matrices only, ``ndim >= 2``)
    any_decay: bool  #: whether it applies to some array
    uniform_decay: bool  #: whether it applies to every array or to none
    rows: list[np.ndarray | None]  #: max-norm: room for the row norms, ``(d_out, 1, ...)``
    row_axes: list[tuple[int, ...]]  #: max-norm: the axes summed for a row's norm
    flat: Flat | None  #: the flat buffers, when the parameters tile one


def allocate(
    params: Sequence[np.ndarray],
    names: tuple[str, ...],
    loaded: dict[str, list[np.ndarray]],
    *,
    decay: list[bool],
    l2: str | None,
    max_norm: bool,
) -> tuple[dict[str, list[np.ndarray]], Work]:
    """The state (``loaded`` if given, else zeros) and the work arrays for ``params``.

    ``l2``: where weight decay's ``g + wd·w`` is written: ``"own"`` (a buffer of its own,
    as the update reads ``g`` after overwriting the scratch array), ``"scratch"``, or
    None (the decay is no L2 term).

    Shape:
        ``params[i]``: any shape → ``state[name][i]``, ``scratch[i]``: that shape.
    """
    if flat_span(params) is None:  # also any array library but NumPy: arrays on the parameters' device
        state = {name: [from_host(to_numpy(a), p) for a, p in zip(arrays, params, strict=True)]
                 for name, arrays in loaded.items()} or {name: [_zeros_like(p) for p in params] for name in names}
        scratch = [_empty_like(p) for p in params]
        gbuf = [_empty_like(p) if l2 == "own" and d else None for p, d in zip(params, decay, strict=True)]
        flat = None
    else:
        state, scratch, gbuf, flat = _allocate_flat(params, names, loaded, decay, l2)
    work = Work(
        slots=[tuple(state[name][i] for name in names) for i in range(len(params))],
        scratch=scratch,
        gbuf=gbuf,
        decay=decay,
        any_decay=any(decay),
        uniform_decay=all(decay) or not any(decay),
        rows=[
            _empty_like(p, (p.shape[0],) + (1,) * (p.ndim - 1)) if max_norm and p.ndim >= 2 else None
            for p in params
        ],
        row_axes=[tuple(range(1, p.ndim)) for p in params],
        flat=flat,
    )
    return state, work


def _empty_like(p: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An uninitialised array like ``p`` (its library, device and dtype), of ``shape`` (default p's)."""
    shape = tuple(p.shape) if shape is None else shape
    return np.empty_like(p, shape=shape) if isinstance(p, np.ndarray) else empty_on(p, shape, p.dtype)


def _zeros_like(p: np.ndarray) -> np.ndarray:
    """Zeros like ``p`` (its library, device, dtype and shape)."""
    if isinstance(p, np.ndarray):
        return np.zeros(p.shape, p.dtype)
    z = empty_on(p, tuple(p.shape), p.dtype)
    z[...] = 0.0
    return z


def _allocate_flat(
    params: Sequence[np.ndarray],
    names: tuple[str, ...],
    loaded: dict[str, list[np.ndarray]],
    decay: list[bool],
    l2: str | None,
) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray], list[np.ndarray | None], Flat]:
    """State, scratch and L2 buffers as one flat array each, with a view per parameter."""
    shapes = [p.shape for p in params]
    size, dtype = sum(p.size for p in params), params[0].dtype
    flat_state = {name: np.zeros(size, dtype) for name in names}
    for name, arrays in loaded.items():  # loaded state: copied in
        for view, a in zip(views(flat_state[name], shapes), arrays, strict=True):
            view[...] = a
    state = {name: views(flat, shapes) for name, flat in flat_state.items()}
    scratch = np.empty(size, dtype)
    gbuf: list[np.ndarray | None] = [None] * len(params)
    l2_flat, l2_views = None, []
    if l2 == "own" and any(decay):
        l2_flat = np.empty(size, dtype)
        l2_views = views(l2_flat, shapes)
        gbuf = [v if d else None for v, d in zip(l2_views, decay, strict=True)]
    elif l2 == "scratch" and any(decay):
        l2_flat, l2_views = scratch, views(scratch, shapes)
    flat = Flat(tuple(flat_state[name] for name in names), scratch, l2_flat, l2_views)
    return state, views(scratch, shapes), gbuf, flat
