"""The NumPy engine, the readable reference: one :class:`~backprop.training.step.TrainingStep`
per mini-batch, the batch gathered by index into arrays reused from step to step.

The same steps run on any array library the network is on (:mod:`backprop.devices`). On a
device other than NumPy the training data are moved there once when they fit in its memory
(else batch by batch, gathered on the host), the loss and accuracy sums stay there, and the
epoch reads them back once, at its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._workspace import Workspace
from ..devices import Device, ops_of, scalar, to_numpy
from ..layers import Dense
from ..training.callbacks import Callback
from ..training.run import Run
from ..training.step import TrainingStep
from .base import Diverged, EpochSums, Report

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
        self.device: Device = run.net.device
        if not self.device.is_numpy:
            self.data = DeviceData(run, self.device)

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """One epoch of steps over the batches of ``order`` (a permutation of ``range(N)``)."""
        if not self.device.is_numpy:
            return self._run_epoch_on_device(order, report)
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

    def _run_epoch_on_device(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """:meth:`run_epoch` on a device: the same steps; the sums stay on the device until the
        end of the epoch (one synchronisation; batch callbacks, when there are any, read each
        batch's loss)."""
        run, step, data = self.run, self.step, self.data
        self.delta_sq = {i: 0.0 for i, _ in self.dense}
        totals = self.device.zeros((3,), np.dtype(np.float64))
        data.start_epoch(order)
        n_batches = 0
        for b, lo in enumerate(range(0, run.n, run.batch_size)):
            xb, tb, g, wb, truth, weight = data.batch(lo, min(lo + run.batch_size, run.n))
            totals += step(b + 1, xb, tb, g, wb, truth, weight=weight)
            self._record_deltas(xb.shape[0] if step.local_weight else 0)  # δ of this batch only
            n_batches = b + 1
            if self.batch_callbacks:
                logs = {"loss": float(to_numpy(step.last_value)) if weight else 0.0, "batch_size": xb.shape[0]}
                for cb in self.batch_callbacks:
                    cb.on_batch_end(b, logs, run.net)
        loss, weight, correct = (float(v) for v in to_numpy(totals))  # the epoch's one read-back
        if report is not None:
            report(run.n, loss, correct)
        if not np.isfinite(loss):
            raise Diverged(f"the loss became {loss} during the epoch (on {self.device.name} it is read "
                           "once per epoch)", n_batches, None)
        return EpochSums(loss=loss, weight=weight, correct=correct, last_finite=loss / weight if weight else None,
                         delta_sq={i: float(to_numpy(v)) for i, v in self.delta_sq.items()})

    def _record_deltas(self, m: int) -> None:
        """Add each Dense layer's Σ_x ‖δˡ_x‖² of the last step to :attr:`delta_sq` (on a device:
        as a 0-d array there)."""
        for i, layer in self.dense:  # Δ = dC/dZ holds δ_x / m in each row: Σ‖δ_x‖² = m²‖Δ‖²
            delta = layer.last_delta
            if delta is not None and m:
                self.delta_sq[i] += m * m * scalar(ops_of(delta).dot_all(delta, delta))


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
        m, ops = idx.shape[0], ops_of(x)
        # NumPy: mode="clip", the indices are a permutation's, always valid, and mode="raise"
        # would gather into a temporary before copying into out
        xb = ops.take(x, idx, out=self._buffer("x", (m, *x.shape[1:]), x.dtype, x))
        tb = ops.take(t, idx, out=self._buffer("t", (m, *t.shape[1:]), t.dtype, t))
        wb = None if weights is None else ops.take(weights, idx, out=self._buffer("w", (m,), weights.dtype, weights))
        truth = None if labels is None else ops.take(labels, idx, out=self._buffer("labels", (m,), labels.dtype,
                                                                                    labels))
        return xb, tb, self._buffer("g", (m, t.shape[1]), x.dtype, x), wb, truth


class DeviceData:
    """A run's training data for a device: moved there whole, once, when it takes at most half of
    the device's free memory (or the library does not say), else gathered batch by batch on the
    host and copied over; arrays already on the device are used as they are.

    Args:
        run: the checked ``fit`` call (its network is on ``device``).
        device: the network's device.
    """

    def __init__(self, run: Run, device: Device) -> None:
        self.run, self.device = run, device
        arrays = [a for a in (run.x, run.t, run.labels, run.weights) if a is not None]
        nbytes = sum(int(np.prod(a.shape)) * numpy_itemsize(a) for a in arrays if not device.holds(a))
        free = device.free_bytes()
        self.resident = free is None or nbytes <= free // 2
        move = device.asarray if self.resident else (lambda a: a)
        self.x, self.t = move(run.x), move(run.t)
        self.labels = None if run.labels is None else move(run.labels)
        self.weights = None if run.weights is None else move(run.weights)
        self.on_device, self.staging = BatchBuffers(), BatchBuffers()
        self._here = device.zeros((1,), run.net.dtype)  # an array on the device, for its work arrays
        self.order: np.ndarray = np.arange(0)
        self.order_here: Any = None

    def start_epoch(self, order: np.ndarray) -> None:
        """Take the epoch's permutation (moved to the device once when the data live there)."""
        self.order = order.astype(np.int64, copy=False)
        self.order_here = self.device.asarray(self.order) if self.resident else self.order

    def batch(self, lo: int, hi: int):
        """``(xb, tb, g, wb, truth, weight)`` for the rows ``order[lo:hi]``, on the device; the
        weight ``Σ wb`` (or the row count) is read from the host copy of the weights."""
        idx = self.order[lo:hi]
        weights = self.run.weights
        weight = float(hi - lo) if weights is None else float(weights[idx].sum())
        if self.resident:
            return (*self.on_device.take(self.x, self.t, self.order_here[lo:hi], self.weights, self.labels), weight)
        xb, tb, g, wb, truth = self.staging.take(self.x, self.t, idx, self.weights, self.labels)
        move = self.device.asarray
        g = self.on_device._buffer("g", tuple(g.shape), self._here.dtype, self._here)
        return (move(xb), move(tb), g, None if wb is None else move(wb), None if truth is None else move(truth),
                weight)


def numpy_itemsize(a: object) -> int:
    """Bytes per element of a NumPy array or a library array (its dtype's name)."""
    from ..devices import numpy_dtype

    return numpy_dtype(a.dtype).itemsize  # type: ignore[attr-defined]
