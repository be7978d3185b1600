"""The NumPy engine, the readable reference: one :class:`~backprop.training.step.TrainingStep`
per mini-batch, the batch gathered by index into arrays reused from step to step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._workspace import Workspace
from ..layers import Dense
from ..training.callbacks import Callback
from ..training.run import Run
from ..training.step import TrainingStep
from .base import EpochSums, Report

#: ``shard(idx)``: the rows of the global batch ``idx`` that this process trains on (a
#: distributed run); None: all of them
Shard = Callable[[np.ndarray], np.ndarray]


class NumpyEngine:
    """Runs an epoch as NumPy training steps (see :mod:`backprop.engines.base`).

    Args:
        run: the checked ``fit`` call.
        step: the training step (its ``fused`` decides :attr:`name`).
        shard: which rows of each global batch this process takes, or None for all.

    Attributes:
        name: ``"numpy"``, or ``"numpy+numba-update"`` when the step's update is fused.
    """

    def __init__(self, run: Run, step: TrainingStep, shard: Shard | None = None) -> None:
        self.run, self.step, self.shard = run, step, shard
        self.name = "numpy+numba-update" if step.fused else "numpy"
        self.batches = BatchBuffers()
        self.dense = [(str(i), layer) for i, layer in enumerate(run.net.layers)
                      if isinstance(layer, Dense)] if run.record_grad_norms else []
        self.delta_sq: dict[str, float] = {}
        self.batch_callbacks = [cb for cb in run.callbacks if _overrides_on_batch_end(cb)]

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """One epoch of steps over the batches of ``order`` (a permutation of ``range(N)``)."""
        run, step = self.run, self.step
        self.delta_sq = {i: 0.0 for i, _ in self.dense}
        total_loss = total_weight = correct = 0.0
        for b, lo in enumerate(range(0, run.n, run.batch_size)):
            idx = order[lo:lo + run.batch_size]
            mine = idx if self.shard is None else self.shard(idx)
            xb, tb, g, wb, truth = self.batches.take(run.x, run.t, mine, run.weights, run.labels)
            stats = step(b + 1, xb, tb, g, wb, truth)
            total_loss += stats[0]
            total_weight += stats[1]
            correct += stats[2]
            self._record_deltas(len(mine) if step.local_weight else 0)  # δ of this batch only
            if report is not None:
                report(lo + len(idx), total_loss, correct)
            if self.batch_callbacks:
                logs = {"loss": float(step.last_finite or 0.0) if stats[1] else 0.0, "batch_size": len(idx)}
                for cb in self.batch_callbacks:
                    cb.on_batch_end(b, logs, run.net)
        return EpochSums(loss=total_loss, weight=total_weight, correct=correct, last_finite=step.last_finite,
                         delta_sq=dict(self.delta_sq))

    def _record_deltas(self, m: int) -> None:
        """Add each Dense layer's Σ_x ‖δˡ_x‖² of the last step to :attr:`delta_sq`."""
        for i, layer in self.dense:  # Δ = dC/dZ holds δ_x / m in each row: Σ‖δ_x‖² = m²‖Δ‖²
            delta = layer.last_delta
            if delta is not None and m:
                self.delta_sq[i] += m * m * float(np.vdot(delta, delta))


def _overrides_on_batch_end(cb: Callback) -> bool:
    return type(cb).on_batch_end is not Callback.on_batch_end


class BatchBuffers(Workspace):
    """Mini-batches gathered by index into arrays reused from step to step (the data set is
    never copied, so a memory-mapped one is read a batch at a time, and a step allocates
    nothing proportional to the batch)."""

    def take(self, x: np.ndarray, t: np.ndarray, idx: np.ndarray, weights: np.ndarray | None = None,
             labels: np.ndarray | None = None):
        """``(xb, tb, g, wb, truth)`` for the rows ``idx`` of inputs ``x`` ``(N, d_0)``, targets
        ``t`` ``(N, k)``, weights ``(N,)`` and labels ``(N,)``: the batch's inputs ``(m, d_0)``,
        targets ``(m, k)``, a gradient work array ``(m, k)``, weights ``(m,)`` or None, labels
        ``(m,)`` or None."""
        m = idx.shape[0]
        # mode="clip": the indices are a permutation's, always valid, and mode="raise" would
        # gather into a temporary before copying into out
        xb = np.take(x, idx, axis=0, out=self._buffer("x", (m, *x.shape[1:]), x.dtype), mode="clip")
        tb = np.take(t, idx, axis=0, out=self._buffer("t", (m, *t.shape[1:]), t.dtype), mode="clip")
        wb = None if weights is None else weights[idx]
        truth = None if labels is None else np.take(labels, idx, out=self._buffer("labels", (m,), labels.dtype),
                                                    mode="clip")
        return xb, tb, self._buffer("g", (m, t.shape[1]), x.dtype), wb, truth
