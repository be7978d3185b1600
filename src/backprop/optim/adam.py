"""Adam and AdamW: steps scaled by running estimates of the gradient's first two moments.

The update of one array is written twice, side by side: readable (:func:`adam_update`,
one NumPy whole-array operation per line of the equations) and fused
(:func:`fused_adam_update`, the same equations as one compiled loop). The optimizer's
``fused`` argument, or :meth:`~backprop.optim.Optimizer.step`'s, chooses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._validation import positive_float
from ..devices import ops_of
from . import _checks
from ._decay import l2_gradient
from .base import Optimizer, State

__all__ = ["Adam", "AdamW", "adam_update", "fused_adam_update"]


def adam_update(
    p: np.ndarray, g: np.ndarray, s: np.ndarray, gd: np.ndarray | None, m: np.ndarray, v: np.ndarray, *,
    b1: float, b2: float, step_size: float, eps_hat: float, wd: float, decay: bool, decoupled: bool, shrink: float,
) -> None:
    """One Adam (``decoupled``: AdamW) step on one array, in place, in the form of :class:`Adam`.

    ``gd``: where ``g + wd·w`` is written (Adam under ``decay``); ``m``, ``v``: the
    moment estimates; ``step_size = η √(1 − β₂ᵏ) / (1 − β₁ᵏ)``, ``eps_hat = ε √(1 − β₂ᵏ)``,
    ``shrink = 1 − η wd``.

    Shape:
        ``p``, ``g``, ``s``, ``gd``, ``m``, ``v``: one shape.
    """
    if decay:
        if decoupled:  # AdamW: w ← w − η wd w
            p *= shrink
        else:  # Adam: g ← g + wd·w
            assert gd is not None
            g = l2_gradient(p, g, wd, out=gd)
    ops = ops_of(p)  # NumPy: np.multiply, np.sqrt, np.divide themselves
    m *= b1
    ops.multiply(g, 1.0 - b1, out=s)
    m += s  # m ← β₁ m + (1 − β₁) g
    v *= b2
    ops.multiply(g, g, out=s)
    s *= 1.0 - b2
    v += s  # v ← β₂ v + (1 − β₂) g²
    ops.sqrt(v, out=s)
    s += eps_hat
    ops.divide(m, s, out=s)
    s *= step_size
    p -= s  # w ← w − η m̂ / (√v̂ + ε), in the form of the class docstring


def fused_adam_update(
    kernels: ModuleType, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, *,
    b1: float, b2: float, step_size: float, eps_hat: float, wd: float, decay: bool, decoupled: bool, shrink: float,
) -> None:
    """:func:`adam_update` as one compiled pass over the elements (``kernels.adam_update``).

    The same equations, equal to rounding (the kernel may contract ``a·b + c`` into one
    fused multiply-add). The arrays must be C-contiguous (they are updated through flat views).
    """
    t = p.dtype.type  # float32 parameters: float32 arithmetic
    kernels.adam_update(
        p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(b1), t(b2), t(1.0 - b1), t(1.0 - b2),
        t(step_size), t(eps_hat), t(wd), decay, decoupled, t(shrink),
    )


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient (PyTorch's ``Adam``).

    The update of each parameter array ``w`` with gradient ``g``, at step number
    ``k = t + 1`` (1-based; ``m`` and ``v`` start at 0)::

        input: η (lr, or schedule(t, lr)), β₁, β₂ (beta1, beta2), ε (eps), wd (weight_decay)
        if wd > 0 and w is a weight matrix (ndim >= 2):  g ← g + wd·w
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − η · (m / (1 − β₁ᵏ)) / (√v / √(1 − β₂ᵏ) + ε)

    The last line is computed, with one operation fewer, in the algebraically identical
    form ``w ← w − (η √(1 − β₂ᵏ) / (1 − β₁ᵏ)) · m / (√v + ε √(1 − β₂ᵏ))``. For decay
    decoupled from the adaptive scaling use :class:`AdamW`. Readable: :func:`adam_update`;
    fused: :func:`fused_adam_update`.

    Args:
        lr: learning rate η (> 0).
        beta1, beta2: decay rates of the moment estimates, in [0, 1).
        eps: ε > 0.
        weight_decay: wd >= 0 (weight matrices only).
        clip_norm, max_norm, schedule: see :class:`~backprop.optim.Optimizer`.
        fused: True, False or None (default), see :class:`~backprop.optim.Optimizer`;
            ``True`` needs numba.

    Shape:
        ``params[i]``, ``grads[i]``: any shape, the same; ``m[i]``, ``v[i]``: that of ``params[i]``.

    Attributes:
        beta1, beta2, eps, weight_decay: the arguments.
        base_lr, t, last_grad_norm, fused: see :class:`~backprop.optim.Optimizer`.
        state: ``state_dict()["m"]`` and ``["v"]``, the first and second moment estimates.

    Example:
        >>> w = np.array([[1.0, -1.0]])
        >>> Adam(lr=0.1).step([w], [np.array([[0.5, -2.0]])])
        >>> w.round(6)                      # first step: η sign(g), up to ε
        array([[ 0.9, -0.9]])
    """

    _repr_fields = ("beta1", "beta2", "eps", "weight_decay")
    _l2_buffer = True
    _decoupled = False
    _fused_kind = "adam"

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
        fused: bool | None = None,
    ) -> None:
        self.beta1 = _checks.fraction(beta1, "beta1")
        self.beta2 = _checks.fraction(beta2, "beta2")
        self.eps = positive_float(eps, "eps")
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule, fused=fused
        )

    @property
    def has_fused_update(self) -> bool:
        """Always True: Adam and AdamW have a fused update."""
        return True

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _constants(self, lr: float) -> tuple[Any, ...]:
        k = self.t + 1
        sqrt_bc2 = math.sqrt(1.0 - self.beta2**k)  # √(1 − β₂ᵏ)
        step_size = lr * sqrt_bc2 / (1.0 - self.beta1**k)  # η √(1 − β₂ᵏ) / (1 − β₁ᵏ)
        eps_hat = self.eps * sqrt_bc2  # ε √(1 − β₂ᵏ)
        shrink = 1.0 - lr * self.weight_decay  # AdamW's 1 − η wd
        return self.beta1, self.beta2, step_size, eps_hat, self.weight_decay, self._decoupled, shrink

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
        b1, b2, step_size, eps_hat, wd, decoupled, shrink = c
        m, v = state
        if kernels is not None:
            fused_adam_update(kernels, p, g, m, v, b1=b1, b2=b2, step_size=step_size, eps_hat=eps_hat, wd=wd,
                              decay=decay, decoupled=decoupled, shrink=shrink)
        else:
            adam_update(p, g, s, gd, m, v, b1=b1, b2=b2, step_size=step_size, eps_hat=eps_hat, wd=wd,
                        decay=decay, decoupled=decoupled, shrink=shrink)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019; PyTorch's ``AdamW``).

    The update of each parameter array ``w`` with gradient ``g``: first shrink the weight
    matrices (never the biases), then the :class:`Adam` update with the plain gradient::

        input: η (lr, or schedule(t, lr)), β₁, β₂, ε, wd (weight_decay)
        if wd > 0 and w is a weight matrix (ndim >= 2):  w ← w − η · wd · w
        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − η · (m / (1 − β₁ᵏ)) / (√v / √(1 − β₂ᵏ) + ε)

    The decay is not rescaled by the adaptive denominator (no L2 term in ``g``); η is
    the scheduled rate of that step. Readable: :func:`adam_update` with ``decoupled``;
    fused: :func:`fused_adam_update`.

    Args:
        lr, beta1, beta2, eps: as in :class:`Adam`.
        weight_decay: wd >= 0 (default 1e-2).
        clip_norm, max_norm, schedule: see :class:`~backprop.optim.Optimizer`.
        fused: True, False or None (default), as in :class:`Adam`.

    Shape:
        As in :class:`Adam`.

    Attributes:
        As in :class:`Adam`; state ``"m"`` and ``"v"``.

    Example:
        >>> w = np.array([[1.0, -1.0]])
        >>> AdamW(lr=0.1, weight_decay=0.5).step([w], [np.array([[0.5, -2.0]])])
        >>> w.round(6)                      # w (1 − η wd) − η sign(g) = 0.95 w − 0.1 sign(g)
        array([[ 0.85, -0.85]])
    """

    _l2_buffer = False
    _decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            lr, beta1, beta2, eps, weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule, fused=fused
        )
