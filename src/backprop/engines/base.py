"""What every engine offers ``fit``: run one epoch of training steps and return its sums.

An engine is built once per ``fit`` for one network, loss, optimizer and training set, and
then asked for one epoch at a time::

    sums = engine.run_epoch(order, report)   # order: the epoch's permutation of sample indices

It runs the mini-batches ``order[0:B], order[B:2B], ...`` in turn (the last one may be
smaller), each one training step of seed 001's mini-batch gradient descent, and returns
their :class:`EpochSums`. When a batch's loss is not finite it stops and raises
:class:`Diverged`; ``fit`` alone restores the weights and reports it (divergence is handled
in one place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

#: ``report(seen, loss_sum, correct)``: called now and then during an epoch with the rows
#: trained so far and the running sums (for a progress bar); ``None``: nobody is watching
Report = Callable[[int, float, float], None]


@dataclass(frozen=True)
class EpochSums:
    """The sums over one epoch's batches, from which ``fit`` takes the epoch's means.

    Attributes:
        loss: Σ over batches of (batch loss × batch weight).
        weight: Σ of the batch weights: the number of rows trained, or with sample weights
            their total, so ``loss / weight`` is the epoch's (weighted) mean loss.
        correct: Σ of the (weighted) correct predictions; 0 when the targets are not labels.
        last_finite: the last finite batch loss (``None``: no batch yet).
        delta_sq: with ``fit(record_grad_norms=True)``: per Dense layer (its index in
            ``net.layers``, as a string) Σ over the epoch's samples of ‖δˡ_x‖²; else empty.
    """

    loss: float
    weight: float
    correct: float
    last_finite: float | None
    delta_sq: dict[str, float] = field(default_factory=dict)


class Diverged(Exception):
    """A batch's loss (or the parameters) became NaN or infinite during an epoch.

    Args:
        what: what happened, e.g. ``"the loss became nan"``.
        batch: the batch of the epoch where it happened, counted from 1.
        last_finite: the last finite batch loss before it, or ``None``.
    """

    def __init__(self, what: str, batch: int, last_finite: float | None) -> None:
        super().__init__(f"{what} at batch {batch}")
        self.what = what
        self.batch = batch
        self.last_finite = last_finite


class Engine(Protocol):
    """How the steps of an epoch are executed (:mod:`backprop.engines.numpy`,
    :mod:`backprop.engines.numba`)."""

    #: what ``History.engine`` records: ``"numpy"``, ``"numpy+numba-update"`` or ``"numba"``
    name: str

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """Train on the batches of ``order`` (a permutation of the sample indices, ``(N,)``)."""
        ...
