"""Stochastic gradient descent: the notes' update ``w ← w − η g``, with optional momentum.

The update of one array is written twice, side by side: readable (:func:`sgd_update`,
:func:`momentum_update`, one NumPy whole-array operation per line of the equations) and
fused (:func:`fused_momentum_update`, the same equations as one compiled loop). The
optimizer's ``fused`` argument, or :meth:`~backprop.optim.Optimizer.step`'s, chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..devices import ops_of
from ..errors import ConfigError
from . import _checks
from ._decay import l2_gradient
from .base import Optimizer, State

__all__ = ["SGD", "sgd_update", "momentum_update", "fused_momentum_update"]


def sgd_update(p: np.ndarray, g: np.ndarray, s: np.ndarray, *, lr: float, wd: float, decay: bool) -> None:
    """``w ← w − η g`` in place, with ``g ← g + wd·w`` first when ``decay``.

    Shape:
        ``p``, ``g`` and the scratch array ``s``: one shape.
    """
    if decay:  # s = η (g + wd·w)
        l2_gradient(p, g, wd, out=s)
        s *= lr
    else:  # s = η g
        ops_of(p).multiply(g, lr, out=s)
    p -= s  # w ← w − η g


def momentum_update(
    p: np.ndarray, g: np.ndarray, s: np.ndarray, v: np.ndarray, *,
    lr: float, mu: float, wd: float, decay: bool, nesterov: bool,
) -> None:
    """``v ← μ v + g``, then ``w ← w − η v`` (or ``w ← w − η (g + μ v)``), in place.

    Shape:
        ``p``, ``g``, the velocity ``v`` and the scratch array ``s``: one shape.
    """
    if decay:  # g ← g + wd·w
        g = l2_gradient(p, g, wd, out=s)
    v *= mu
    v += g  # v ← μ v + g
    multiply = ops_of(p).multiply  # NumPy's own np.multiply on NumPy arrays
    if nesterov:  # w ← w − η g − η μ v
        multiply(g, lr, out=s)
        p -= s
        multiply(v, lr * mu, out=s)
    else:  # w ← w − η v
        multiply(v, lr, out=s)
    p -= s


def fused_momentum_update(
    kernels: ModuleType, p: np.ndarray, g: np.ndarray, v: np.ndarray, *,
    lr: float, mu: float, wd: float, decay: bool, nesterov: bool,
) -> None:
    """:func:`momentum_update` as one compiled pass over the elements (``kernels.momentum_update``).

    The same equations, equal to rounding (the kernel may contract ``a·b + c`` into one
    fused multiply-add). The arrays must be C-contiguous (they are updated through flat views).
    """
    t = p.dtype.type  # float32 parameters: float32 arithmetic
    kernels.momentum_update(
        p.reshape(-1), g.reshape(-1), v.reshape(-1), t(lr), t(mu), t(wd), decay, nesterov
    )


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    The update of each parameter array ``w`` with gradient ``g`` (PyTorch's convention;
    the velocity ``v`` starts at 0)::

        input: η (lr, or schedule(t, lr)), μ (momentum), wd (weight_decay), nesterov
        if wd > 0 and w is a weight matrix (ndim >= 2):  g ← g + wd·w
        if μ = 0:
            w ← w − η g                      (the notes' gradient descent)
        else:
            v ← μ v + g
            w ← w − η v                      (classical momentum)
            w ← w − η (g + μ v)              (nesterov=True, with the new v)

    As the loss is a batch mean, ``μ = 0`` is the textbook's ``w ← w − η/m Σ_x ∇C_x``.
    Readable: :func:`sgd_update`, :func:`momentum_update`; fused (momentum only):
    :func:`fused_momentum_update`.

    Args:
        lr: learning rate η (> 0).
        momentum: μ in [0, 1).
        nesterov: use Nesterov's look-ahead form (needs momentum > 0).
        weight_decay: wd >= 0, the textbook's λ/n (weight matrices only, never biases).
        clip_norm, max_norm, schedule: see :class:`~backprop.optim.Optimizer`.
        fused: True, False or None (default), see :class:`~backprop.optim.Optimizer`;
            ``True`` needs momentum > 0 and numba.

    Shape:
        ``params[i]``, ``grads[i]``: any shape, the same; ``velocity[i]``: that of ``params[i]``.

    Attributes:
        momentum, nesterov, weight_decay: the arguments.
        base_lr, t, last_grad_norm, fused: see :class:`~backprop.optim.Optimizer`.
        state: ``state_dict()["velocity"]``, one array per parameter, when momentum > 0;
            plain SGD keeps no state.

    Example:
        >>> w, b = np.array([[1.0, -2.0]]), np.array([0.5])
        >>> opt = SGD(lr=0.1, momentum=0.9)
        >>> opt.step([w, b], [np.array([[0.5, 0.5]]), np.array([1.0])])
        >>> w, b
        (array([[ 0.95, -2.05]]), array([0.4]))
    """

    _repr_fields = ("momentum", "nesterov", "weight_decay")
    _fused_kind = "momentum"

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
        fused: bool | None = None,
    ) -> None:
        self.momentum = _checks.fraction(momentum, "momentum")
        self.nesterov = _checks.flag(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0; got momentum=0.0")
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule, fused=fused
        )

    @property
    def has_fused_update(self) -> bool:
        """True with momentum > 0: the momentum update has a fused form, plain SGD none."""
        return self.momentum > 0

    def _buffer_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum > 0 else ()

    def _constants(self, lr: float) -> tuple[Any, ...]:
        return lr, self.momentum, self.weight_decay, self.nesterov

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
        lr, mu, wd, nesterov = c
        if mu == 0:
            sgd_update(p, g, s, lr=lr, wd=wd, decay=decay)
        elif kernels is not None:
            fused_momentum_update(kernels, p, g, state[0], lr=lr, mu=mu, wd=wd, decay=decay, nesterov=nesterov)
        else:
            momentum_update(p, g, s, state[0], lr=lr, mu=mu, wd=wd, decay=decay, nesterov=nesterov)
