"""What every engine offers ``fit``: run one epoch of training steps and return its sums.

An engine is built once per ``fit`` for one network, loss, optimizer and training set, and
then asked for one epoch at a time::

    sums = engine.run_epoch(order, report)   # order: the epoch's permutation of sample indices

It runs the mini-batches ``order[0:B], order[B:2B], ...`` in turn (the last one may be
smaller), each one training step of seed 001's mini-batch gradient descent, and returns
their :class:`EpochSums`. When a batch's loss is not finite it stops and raises
:class:`Diverged`; ``fit`` alone restores the weights and reports it (divergence is handled
in one place). ``fit`` evaluates on validation data between epochs inside
``engine.between_epochs()``.

Engines sit below :mod:`backprop.training`, which builds them: what they are given is
described here (:class:`TrainingSet`, :class:`Step`, :data:`BatchEnd`), so that nothing in
this package imports the training package.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: ``report(seen, loss_sum, correct)``: called now and then during an epoch with the rows
#: trained so far and the running sums (for a progress bar); ``None``: nobody is watching
Report = Callable[[int, float, float], None]

#: ``on_batch_end(batch, logs, net)``: a callback's hook after each step (``batch`` counted from
#: 0; ``logs``: ``{"loss": the batch's loss, "batch_size": its rows}``)
BatchEnd = Callable[[int, dict[str, Any], Any], None]


@dataclass(frozen=True)
class TrainingSet:
    """The checked training data an engine steps through (``fit`` checked them once).

    Attributes:
        x: inputs ``(N, d_0)`` in the network's dtype (possibly memory-mapped: read by batch).
        t: targets in the loss's training form ``(N, d_L)``.
        labels: class labels ``(N,)`` to count correct predictions, or None.
        weights: per-sample weights ``(N,)`` float64, or None.
    """

    x: np.ndarray
    t: np.ndarray
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def n(self) -> int:
        """The number of samples ``N``."""
        return int(self.x.shape[0])


class Step(Protocol):
    """One mini-batch training step, as the NumPy engine calls it
    (:class:`backprop.training.step.TrainingStep` is the one ``fit`` builds).

    Attributes:
        net: the network the step trains.
        fused: whether the optimizer update is the fused, compiled one.
        local_weight: the last batch's Σ weight in this process (0: no forward or backward ran).
        last_finite: the last finite batch loss, or None.
        last_value: the last batch's loss (a float, or a 0-d array on the network's device).
    """

    net: Any
    fused: bool
    local_weight: float
    last_finite: float | None
    last_value: object

    def __call__(self, batch: int, xb: Any, tb: Any, g: Any, wb: Any = None, truth: Any = None,
                 weight: float | None = None) -> Any:
        """Train on one batch (``batch``: its number, from 1); return ``[Σ loss × weight,
        Σ weight, correct]`` (float64 ``(3,)``, on the network's device)."""
        ...


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
    :mod:`backprop.engines.numba`, :mod:`backprop.engines.split`)."""

    #: what ``History.engine`` records: ``"numpy"``, ``"numpy+numba-update"``, ``"numba"`` or
    #: ``"numba-split"``
    name: str

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """Train on the batches of ``order`` (a permutation of the sample indices, ``(N,)``)."""
        ...

    def between_epochs(self) -> AbstractContextManager[Any]:
        """The context that ``fit``'s work between two epochs (the evaluation on validation
        data) runs in: ``contextlib.nullcontext()``, except where that work would slow the next
        epoch (the split-batch engine's)."""
        ...
