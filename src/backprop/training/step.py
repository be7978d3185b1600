"""The one training step: forward → loss value and gradient → backward → gradient hook → update.

Seed 001's "backpropagation for mini-batch gradient descent" on a batch ``B`` of m samples:
forward the batch keeping each layer's input, take ``dC/da^L`` from the loss (a mean over the
batch, so it carries ``1/m``), backpropagate to every ``∂C/∂W^l`` and ``∂C/∂b^l``, then let
the optimizer step: for plain SGD ``w ← w − η/m Σ_{x∈B} ∇C_x``. Between backward and the
update a **gradient hook** may see (and change) the gradients: the distributed run
all-reduces them there. ``fit``'s NumPy engine and the scikit-learn estimators run every step
through :class:`TrainingStep`.
"""

from __future__ import annotations

import math

import numpy as np

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
        stats: float64 ``(3,)``, the last batch's ``[Σ loss × weight, Σ weight, correct]``.
        local_weight: the last batch's Σ weight in this process, before the hook (0: no forward
            or backward ran, so the layers' δ are not this batch's).
        last_finite: the last finite batch loss (``None`` before the first).

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
        self.stats = np.zeros(3, np.float64)
        self.last_finite: float | None = None
        self.local_weight = 0.0

    def __call__(self, batch: int, xb: np.ndarray, tb: np.ndarray, g: np.ndarray,
                 wb: np.ndarray | None = None, truth: np.ndarray | None = None) -> np.ndarray:
        """Train on one batch and return its :attr:`stats`.

        Args:
            batch: the batch's number in the epoch, from 1 (for the divergence message).
            xb: inputs ``(m, d_0)``; ``m`` may be 0 (a process's empty share of a batch).
            tb: training targets ``(m, d_L)``.
            g: a work array ``(m, d_L)`` that receives ``dC/da^L``.
            wb: sample weights ``(m,)`` or None.
            truth: class labels ``(m,)`` to count correct predictions, or None.

        Raises:
            Diverged: the batch's loss is NaN or infinite (no update is applied).
        """
        value = self._gradients(xb, tb, g, wb, truth)
        stats = self.stats
        if self.grad_hook is not None:
            self.grad_hook(self.net.gradient_buffer, stats)
            value = stats[0] / stats[1] if stats[1] else 0.0
        if stats[1] == 0:  # no weight in the batch: nothing to learn from it
            return stats
        if not math.isfinite(value):
            raise Diverged(f"the loss became {value}", batch, self.last_finite)
        self.last_finite = value
        self.optimizer.step(self.params, self.grads, fused=self.fused)
        return stats

    def _gradients(self, xb: np.ndarray, tb: np.ndarray, g: np.ndarray, wb: np.ndarray | None,
                   truth: np.ndarray | None) -> float:
        """Forward, loss and backward: set the gradients and :attr:`stats`; return the batch loss."""
        m, stats = xb.shape[0], self.stats
        weight = float(m) if wb is None else float(wb.sum())
        self.local_weight = weight
        if weight == 0.0:  # an empty share, or weights all zero: contributes nothing
            self.net.gradient_buffer.fill(0.0)
            stats[:] = 0.0
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
    the arg-max, or for one logit whether it is positive."""
    guess = a[:, 0] > 0.0 if a.shape[1] == 1 else np.argmax(a, axis=1)
    hit = guess == truth
    return float(np.count_nonzero(hit)) if wb is None else float(wb @ hit)
