"""The one training step: forward → loss value and gradient → backward → gradient hook → update.

Seed 001's "backpropagation for mini-batch gradient descent" on a batch ``B`` of m samples:
forward the batch keeping each layer's input, take ``dC/da^L`` from the loss (a mean over the
batch, so it carries ``1/m``), backpropagate to every ``∂C/∂W^l`` and ``∂C/∂b^l``, then let
the optimizer step: for plain SGD ``w ← w − η/m Σ_{x∈B} ∇C_x``. Between backward and the
update a **gradient hook** may see (and change) the gradients: the distributed run
all-reduces them there. ``fit``'s NumPy engine and the scikit-learn estimators run every step
through :class:`TrainingStep`.

The step runs on whatever array library the network is on (:mod:`backprop.devices`). On NumPy it
checks each batch's loss as it goes; on another device it never waits for the device: the loss
and accuracy sums stay there, and ``fit`` reads them (and checks them) once per epoch.
"""

from __future__ import annotations

import math

import numpy as np

from ..devices import ops_of, scalar
from ..engines.base import Diverged
from ..losses import Loss
from ..network import Network
from ..optim import Optimizer
from .run import GradHook


class TrainingStep:
    """One mini-batch step on ``net``, called once per batch.

    Args:
        net: the network; its parameters are updated in place.
        loss: the loss, on targets prepared by ``loss.training_targets``.
        optimizer: the optimizer that applies the update.
        fused: run the optimizer's one-pass compiled update (``optimizer.step(..., fused=)``).
        grad_hook: ``hook(grads, stats)`` between backward and the update (see
            :data:`~backprop.training.run.GradHook`), or None.

    Attributes:
        stats: float64 ``(3,)``, the last batch's ``[Σ loss × weight, Σ weight, correct]``, on the
            network's device.
        local_weight: the last batch's Σ weight in this process, before the hook (0: no forward
            or backward ran, so the layers' δ are not this batch's).
        last_finite: the last finite batch loss (``None`` before the first; on a device other
            than NumPy: not tracked, always ``None``).
        last_value: the last batch's loss: a float, or on a device a 0-d array there.

    Example:
        >>> step = TrainingStep(net, bp.Quadratic(), bp.SGD(lr=0.5), fused=False, grad_hook=None)
        >>> stats = step(1, xb, tb, np.empty_like(tb))   # one update from the batch (xb, tb)
    """

    def __init__(self, net: Network, loss: Loss, optimizer: Optimizer, *, fused: bool,
                 grad_hook: GradHook | None) -> None:
        self.net, self.loss, self.optimizer = net, loss, optimizer
        self.fused = fused
        self.grad_hook = grad_hook
        self.params, self.grads = net.parameters(), net.gradients()
        self.on_host = net.device.is_numpy
        self.stats = np.zeros(3, np.float64) if self.on_host else net.device.zeros((3,), np.dtype(np.float64))
        self.last_finite: float | None = None
        self.local_weight = 0.0
        self.last_value: object = None

    def __call__(self, batch: int, xb: np.ndarray, tb: np.ndarray, g: np.ndarray,
                 wb: np.ndarray | None = None, truth: np.ndarray | None = None,
                 weight: float | None = None) -> np.ndarray:
        """Train on one batch and return its :attr:`stats`.

        Args:
            batch: the batch's number in the epoch, from 1 (for the divergence message).
            xb: inputs ``(m, d_0)``; ``m`` may be 0 (a process's empty share of a batch).
            tb: training targets ``(m, d_L)``.
            g: a work array ``(m, d_L)`` that receives ``dC/da^L``.
            wb: sample weights ``(m,)`` or None.
            truth: class labels ``(m,)`` to count correct predictions, or None.
            weight: ``Σ wb`` (``m`` without weights) when the caller knows it on the host (a
                device run does, so that no step waits for the device); None: computed here.

        Raises:
            Diverged: the batch's loss is NaN or infinite (no update is applied; NumPy only).
        """
        if weight is None:
            weight = float(xb.shape[0]) if wb is None else float(wb.sum())
        value = self._gradients(xb, tb, g, wb, truth, weight)
        stats = self.stats
        if self.grad_hook is not None:
            self.grad_hook(self.net.gradient_buffer, stats)
            if self.on_host:
                value = stats[0] / stats[1] if stats[1] else 0.0
        self.last_value = value
        if not self.on_host:  # no synchronisation: fit checks the epoch's sums and weights
            if weight != 0.0:
                self.optimizer.step(self.params, self.grads, fused=self.fused)
            return stats
        if stats[1] == 0:  # no weight in the batch: nothing to learn from it
            return stats
        if not math.isfinite(value):
            raise Diverged(f"the loss became {value}", batch, self.last_finite)
        self.last_finite = value
        self.optimizer.step(self.params, self.grads, fused=self.fused)
        return stats

    def _gradients(self, xb: np.ndarray, tb: np.ndarray, g: np.ndarray, wb: np.ndarray | None,
                   truth: np.ndarray | None, weight: float) -> float:
        """Forward, loss and backward: set the gradients and :attr:`stats`; return the batch loss
        (on a device: a 0-d array there)."""
        stats = self.stats
        self.local_weight = weight
        if weight == 0.0:  # an empty share, or weights all zero: contributes nothing
            ops = ops_of(stats)
            ops.copyto(self.net.gradient_buffer, 0.0)
            ops.copyto(stats, 0.0)
            return 0.0
        a = self.net.forward_unchecked(xb, train=True)                        # a^L
        if wb is None:
            value = self.loss.value_and_grad_unchecked(a, tb, g)                # C, dC/da^L
        else:
            value = self.loss.weighted_value_and_grad_unchecked(a, tb, wb, g)
        # before backward, which may reuse the output's array
        correct = 0.0 if truth is None else _correct(a, truth, wb)
        self.net.backward_unchecked(g, input_grad=False)                      # δ^l, ∂C/∂W^l, ∂C/∂b^l
        stats[0], stats[1], stats[2] = value * weight, weight, correct
        return value


def _correct(a: np.ndarray, truth: np.ndarray, wb: np.ndarray | None) -> float:
    """The (weighted) number of rows of ``a`` ``(m, k)`` whose predicted class is ``truth``:
    the arg-max, or for one logit whether it is positive (on a device: a 0-d array there)."""
    ops = ops_of(a)
    guess = a[:, 0] > 0.0 if a.shape[1] == 1 else ops.xp.argmax(a, axis=1)
    hit = guess == truth
    if wb is not None:
        return scalar(wb @ ops.astype(hit, wb.dtype))
    count = ops.xp.count_nonzero(hit)
    return float(count) if isinstance(a, np.ndarray) else ops.astype(count, ops.xp.float64)  # device: left there
