"""RMSprop: divide the gradient by a running root mean square of its recent values.

It has the readable update only (:func:`rmsprop_update`); ``fused=True`` is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._validation import positive_float
from ..devices import ops_of
from . import _checks
from ._decay import l2_gradient
from .base import Optimizer, State

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(
    p: np.ndarray, g: np.ndarray, s: np.ndarray, gd: np.ndarray | None, sq: np.ndarray, b: np.ndarray | None, *,
    lr: float, rho: float, eps: float, mu: float, wd: float,
) -> None:
    """One RMSprop step on one array, in place (see :class:`RMSprop` for the equations).

    ``gd``: where ``g + wd·w`` is written (None: no weight decay); ``sq``: the mean
    square v; ``b``: the velocity (None without momentum).

    Shape:
        ``p``, ``g``, ``s``, ``gd``, ``sq``, ``b``: one shape.
    """
    if gd is not None:  # g ← g + wd·w
        g = l2_gradient(p, g, wd, out=gd)
    ops = ops_of(p)  # NumPy: np.multiply, np.sqrt, np.divide themselves
    sq *= rho
    ops.multiply(g, g, out=s)
    s *= 1.0 - rho
    sq += s  # v ← ρ v + (1 − ρ) g²
    ops.sqrt(sq, out=s)
    s += eps
    ops.divide(g, s, out=s)  # s = g / (√v + ε)
    if b is not None:
        b *= mu
        b += s  # b ← μ b + s
        ops.multiply(b, lr, out=s)
    else:
        s *= lr
    p -= s  # w ← w − η s   or   w ← w − η b


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e; PyTorch's non-centred form).

    The update of each parameter array ``w`` with gradient ``g`` (the mean square ``v``
    and the velocity ``b`` start at 0)::

        input: η (lr, or schedule(t, lr)), ρ (rho), ε (eps), μ (momentum), wd (weight_decay)
        if wd > 0 and w is a weight matrix (ndim >= 2):  g ← g + wd·w
        v ← ρ v + (1 − ρ) g²
        if μ = 0:   w ← w − η g / (√v + ε)
        else:       b ← μ b + g / (√v + ε);   w ← w − η b

    Readable: :func:`rmsprop_update`. There is no fused form.

    Args:
        lr: learning rate η (> 0).
        rho: decay of the mean square, in [0, 1).
        eps: ε > 0, added to √v.
        momentum: μ in [0, 1).
        weight_decay: wd >= 0 (weight matrices only).
        clip_norm, max_norm, schedule: see :class:`~backprop.optim.Optimizer`.
        fused: False or None (default); ``True`` raises ConfigError (no fused form).

    Shape:
        ``params[i]``, ``grads[i]``: any shape, the same; each state array: that of ``params[i]``.

    Attributes:
        rho, eps, momentum, weight_decay: the arguments.
        base_lr, t, last_grad_norm, fused: see :class:`~backprop.optim.Optimizer`.
        state: ``state_dict()["square_avg"]`` (v), and ``["velocity"]`` (b) when momentum > 0.

    Example:
        >>> w = np.array([[1.0, -1.0]])
        >>> RMSprop(lr=0.01, rho=0.9).step([w], [np.array([[0.1, -0.2]])])
        >>> w.round(6)                      # first step: η sign(g) / √(1 − ρ), up to ε
        array([[ 0.968377, -0.968377]])
    """

    _repr_fields = ("rho", "eps", "momentum", "weight_decay")
    _l2_buffer = True

    def __init__(
        self,
        lr: float = 1e-3,
        rho: float = 0.9,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
        fused: bool | None = None,
    ) -> None:
        self.rho = _checks.fraction(rho, "rho")
        self.eps = positive_float(eps, "eps")
        self.momentum = _checks.fraction(momentum, "momentum")
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule, fused=fused
        )

    def _buffer_names(self) -> tuple[str, ...]:
        return ("square_avg", "velocity") if self.momentum > 0 else ("square_avg",)

    def _constants(self, lr: float) -> tuple[Any, ...]:
        return lr, self.rho, self.eps, self.momentum, self.weight_decay

    def _update_array(
        self,
        p: np.ndarray,
        g: np.ndarray,
        s: np.ndarray,
        gd: np.ndarray | None,
        state: State,
        decay: bool,
        c: tuple[Any, ...],
        kernels: ModuleType | None,
    ) -> None:
        lr, rho, eps, mu, wd = c
        velocity = state[1] if mu > 0 else None
        rmsprop_update(p, g, s, gd if decay else None, state[0], velocity, lr=lr, rho=rho, eps=eps, mu=mu, wd=wd)
