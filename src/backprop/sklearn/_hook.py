"""The gradient hook that makes :func:`backprop.fit`'s step scikit-learn's step.

:func:`~backprop.fit` calls ``hook(grads, stats)`` in every training step between backward and
the optimizer's update, with the network's flat gradient buffer (the gradient of the batch's
weighted mean loss) and the batch's ``stats = [Σ loss × weight, Σ weight, correct]``. For a
batch ``B`` with total weight ``S_B = Σ_{n∈B} w_n`` (its size ``m_B`` without sample weights)
scikit-learn's MLP minimises

    L_B = Σ_{n∈B} w_n C_n / S_B + (α / 2) Σ_l ‖W^l‖² / S_B

so the hook adds ``α W^l / S_B`` to each weight matrix's gradient (never to the biases) and
records ``L_B`` (at the weights the batch saw) for the epoch's loss, which scikit-learn takes
as ``Σ_B m_B L_B / n``. The ragged last batch uses its own ``S_B``, and with sample weights
``S_B`` is the batch's total weight (scikit-learn ≥ 1.7).
"""

from __future__ import annotations

import numpy as np

from ..layers import Dense
from ..network import Network
from ._settings import LearningRate


class BatchHook:
    """``grad_hook`` for :func:`backprop.fit`, one epoch at a time.

    Args:
        net: the network being trained.
        alpha: the L2 strength α ≥ 0.
        batch_size: rows per batch; n: rows per epoch (to know each batch's size ``m_B``).
        loss_scale: factor from backprop's loss value to scikit-learn's (``1/n_outputs`` for
            "squared_error", whose value scikit-learn averages over the outputs).
        rate: with SGD momentum under a changing rate, multiply the gradient by ``rate.value``
            (the optimizer then runs at η = 1; see ``_settings.scales_gradients``); else None.
        decoupled: a :class:`LearningRate`-like rate for AdamW: shrink ``W ← (1 − η α/S_B) W``
            before the update instead of adding ``α W/S_B`` to the gradient; else None.

    Attributes:
        loss_sum: ``Σ_B m_B L_B`` of the epoch so far.
    """

    def __init__(self, net: Network, *, alpha: float, batch_size: int, n: int, loss_scale: float,
                 rate: LearningRate | None, decoupled: LearningRate | None) -> None:
        dense = [layer for layer in net.layers if isinstance(layer, Dense)]
        self.weights = [layer.params["W"] for layer in dense]
        self.weight_grads = [layer.grads["W"] for layer in dense]
        self.scratch = [np.empty_like(w) for w in self.weights]
        self.alpha, self.batch_size, self.n, self.loss_scale = alpha, batch_size, n, loss_scale
        self.rate, self.decoupled = rate, decoupled
        self.start_epoch()

    def start_epoch(self) -> None:
        self.rows = 0
        self.loss_sum = 0.0

    def __call__(self, grads: np.ndarray, stats: np.ndarray) -> None:
        m = min(self.batch_size, self.n - self.rows)  # the batch's rows: the last may be fewer
        self.rows += m
        total = float(stats[1])  # S_B
        if total == 0.0:  # weights all zero: fit takes no step, the batch adds no loss
            return
        squares = 0.0
        if self.alpha:
            c = self.alpha / total
            for w, g, s in zip(self.weights, self.weight_grads, self.scratch, strict=True):
                squares += float(np.vdot(w, w))                      # ‖W‖², before any change
                if self.decoupled is not None:                       # AdamW: W ← (1 − η α/S) W
                    w *= 1.0 - self.decoupled.value * c
                else:                                                # ∂L_B/∂W += α W / S_B
                    np.multiply(w, c, out=s)
                    g += s
        if self.rate is not None:
            grads *= self.rate.value
        batch_loss = float(stats[0]) / total * self.loss_scale + 0.5 * self.alpha * squares / total
        self.loss_sum += m * batch_loss

    def epoch_loss(self) -> float:
        """scikit-learn's ``loss_`` of the epoch: ``Σ_B m_B L_B / n``."""
        return self.loss_sum / self.n
