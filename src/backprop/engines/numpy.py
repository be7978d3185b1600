"""The NumPy engine, the readable reference: one training step (:class:`~backprop.engines.base.Step`,
in ``fit`` the :class:`~backprop.training.step.TrainingStep`) per mini-batch, the batch gathered
by index into arrays reused from step to step.

The same steps run on any array library the network is on (:mod:`backprop.devices`). On a
device other than NumPy the training data are moved there once when they fit in its memory
(else batch by batch, gathered on the host), the loss and accuracy sums stay there, and the
epoch reads them back once, at its end. One loop serves both: what differs is where the
batches come from (:class:`HostBatches`, :class:`DeviceData`) and where the sums are kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from .._workspace import Workspace
from ..devices import Device, ops_of, scalar, to_numpy
from ..layers import Dense
from .base import BatchEnd, Diverged, EpochSums, Report, Step, TrainingSet

#: ``shard(idx)``: the rows of the global batch ``idx`` that this process trains on (a
#: distributed run); None: all of them
Shard = Callable[[np.ndarray], np.ndarray]


class NumpyEngine:
    """Runs an epoch as training steps (see :mod:`backprop.engines.base`).

    Args:
        step: the training step (its ``fused`` decides :attr:`name`; its ``net`` is trained).
        data: the training set.
        batch_size: rows per global batch.
        record_grad_norms: add each Dense layer's Σ_x ‖δˡ_x‖² to :attr:`EpochSums.delta_sq`.
        on_batch_end: hooks called after each step (callbacks' ``on_batch_end``).
        shard: which rows of each global batch this process takes, or None for all.

    Attributes:
        name: ``"numpy"``, or ``"numpy+numba-update"`` when the step's update is fused.
    """

    def __init__(self, step: Step, data: TrainingSet, batch_size: int, *, record_grad_norms: bool = False,
                 on_batch_end: Sequence[BatchEnd] = (), shard: Shard | None = None) -> None:
        self.step, self.batch_size, self.on_batch_end = step, batch_size, tuple(on_batch_end)
        self.n = data.n
        self.name = "numpy+numba-update" if step.fused else "numpy"
        net = step.net
        self.dense = [(str(i), layer) for i, layer in enumerate(net.layers)
                      if isinstance(layer, Dense)] if record_grad_norms else []
        self.delta_sq: dict[str, Any] = {}
        self.device: Device = net.device
        self.data: HostBatches | DeviceData = HostBatches(data, shard) if self.device.is_numpy \
            else DeviceData(data, self.device, net.dtype)

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """One epoch of steps over the batches of ``order`` (a permutation of ``range(N)``).

        On NumPy the step checks each batch's loss and ``report`` sees every batch; on another
        device the sums stay there and are read (and checked) once, at the end."""
        step, data, on_host = self.step, self.data, self.device.is_numpy
        self.delta_sq = {i: 0.0 for i, _ in self.dense}
        totals = np.zeros(3) if on_host else self.device.zeros((3,), np.dtype(np.float64))  # [Σ C·w, Σ w, correct]
        data.start_epoch(order)
        n_batches = 0
        for b, lo in enumerate(range(0, self.n, self.batch_size)):
            hi = min(lo + self.batch_size, self.n)
            xb, tb, g, wb, truth, weight = data.batch(lo, hi)
            totals += step(b + 1, xb, tb, g, wb, truth, weight=weight)
            self._record_deltas(xb.shape[0] if step.local_weight else 0)  # δ of this batch only
            n_batches = b + 1
            if report is not None and on_host:
                report(hi, totals[0], totals[2])
            if self.on_batch_end:
                logs = {"loss": float(to_numpy(step.last_value)), "batch_size": hi - lo}
                for hook in self.on_batch_end:
                    hook(b, logs, step.net)
        loss, weight, correct = (float(v) for v in to_numpy(totals))  # on a device: the epoch's one read-back
        if on_host:
            return EpochSums(loss=loss, weight=weight, correct=correct, last_finite=step.last_finite,
                             delta_sq=dict(self.delta_sq))
        if report is not None:
            report(self.n, loss, correct)
        if not np.isfinite(loss):
            raise Diverged(f"the loss became {loss} during the epoch (on {self.device.name} it is read "
                           "once per epoch)", n_batches, None)
        return EpochSums(loss=loss, weight=weight, correct=correct, last_finite=loss / weight if weight else None,
                         delta_sq={i: float(to_numpy(v)) for i, v in self.delta_sq.items()})

    def between_epochs(self) -> AbstractContextManager[Any]:
        """Nothing to arrange: BLAS keeps its threads (see :class:`~backprop.engines.base.Engine`)."""
        return nullcontext()

    def _record_deltas(self, m: int) -> None:
        """Add each Dense layer's Σ_x ‖δˡ_x‖² of the last step to :attr:`delta_sq` (on a device:
        as a 0-d array there)."""
        for i, layer in self.dense:  # Δ = dC/dZ holds δ_x / m in each row: Σ‖δ_x‖² = m²‖Δ‖²
            delta = layer.last_delta
            if delta is not None and m:
                self.delta_sq[i] += m * m * scalar(ops_of(delta).dot_all(delta, delta))


class HostBatches:
    """A training set in host memory, gathered batch by batch (see :class:`BatchBuffers`); with
    ``shard``, this process's rows of each global batch."""

    def __init__(self, data: TrainingSet, shard: Shard | None = None) -> None:
        self.data, self.shard = data, shard
        self.buffers = BatchBuffers()
        self.order: np.ndarray = np.arange(0)

    def start_epoch(self, order: np.ndarray) -> None:
        """Take the epoch's permutation."""
        self.order = order

    def batch(self, lo: int, hi: int):
        """``(xb, tb, g, wb, truth, None)`` for the rows ``order[lo:hi]`` (or this process's share
        of them); the step computes the batch's weight itself."""
        idx = self.order[lo:hi]
        mine = idx if self.shard is None else self.shard(idx)
        d = self.data
        return (*self.buffers.take(d.x, d.t, mine, d.weights, d.labels), None)


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
        data: the training set.
        device: the network's device.
        dtype: the network's dtype (of the work arrays made on the device).
    """

    def __init__(self, data: TrainingSet, device: Device, dtype: np.dtype) -> None:
        self.host, self.device = data, device
        arrays = [a for a in (data.x, data.t, data.labels, data.weights) if a is not None]
        nbytes = sum(int(np.prod(a.shape)) * numpy_itemsize(a) for a in arrays if not device.holds(a))
        free = device.free_bytes()
        self.resident = free is None or nbytes <= free // 2
        move = device.asarray if self.resident else (lambda a: a)
        self.x, self.t = move(data.x), move(data.t)
        self.labels = None if data.labels is None else move(data.labels)
        self.weights = None if data.weights is None else move(data.weights)
        self.on_device, self.staging = BatchBuffers(), BatchBuffers()
        self._here = device.zeros((1,), dtype)  # an array on the device, for its work arrays
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
        weights = self.host.weights
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
