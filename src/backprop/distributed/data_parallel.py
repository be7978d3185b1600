"""A ``fit`` run over the processes of a :class:`~backprop.distributed.group.Group`.

:func:`train` turns a checked :class:`~backprop.training.run.Run` into its data-parallel form
and runs ``fit``'s epoch loop on it: the NumPy engine takes, from each global batch, this
process's rows (:meth:`Reducer.shard`), and the training step's gradient hook
(:meth:`Reducer.__call__`) sums the processes' gradients between backward and the update.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..engines import Engine, EpochSums, Report
from ..errors import DivergenceError, StateError
from ..layers import Dense, Dropout
from ..training import History
from ..training.engine_choice import create_engine
from ..training.fit import train as train_epochs
from ..training.run import Run
from .group import Group


class Reducer:
    """The shard function and the gradient hook of one data-parallel run.

    Args:
        run: the checked run (its weights, network and the caller's own ``grad_hook``).
        group: the processes.

    For the global batch ``idx`` (``B`` rows, weight ``W``) process ``r`` trains on
    ``idx[⌊rB/K⌋:⌊(r+1)B/K⌋]``. After its backward the step's gradient is ``g_r``, the
    gradient of its share's mean loss, and ``stats = [Σ loss × w, w_r, correct]`` of its
    share; the hook makes them the batch's:

        g ← Σ_r (w_r / W) g_r,      stats ← Σ_r stats_r          (two in-place all-reduces)
    """

    def __init__(self, run: Run, group: Group) -> None:
        self.group, self.net, self.weights = group, run.net, run.weights
        self.user_hook = run.grad_hook
        self.dropouts = [layer for layer in run.net.layers if isinstance(layer, Dropout)]
        #: weighted runs recording ‖δ‖: Dense layers whose Δ the hook rescales (see __call__)
        self.dense = [layer for layer in run.net.layers if isinstance(layer, Dense)] \
            if run.record_grad_norms and run.weights is not None else []
        self.batch_rows = self.share_rows = 0
        self.batch_weight = 0.0
        self.no_rows = np.empty((0, run.net.input_width or 0), run.net.dtype)

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This process's rows of the global batch ``idx`` ``(B,)``; notes the batch's weight
        ``W`` (computed as one process computes it) and tells Dropout layers the share."""
        part = self.group.rows(idx.shape[0])
        self.batch_rows, self.share_rows = idx.shape[0], part.stop - part.start
        self.batch_weight = float(idx.shape[0]) if self.weights is None else float(self.weights[idx].sum())
        for layer in self.dropouts:
            layer.share(idx.shape[0], part.start)
        return idx[part]

    def __call__(self, grads: np.ndarray, stats: np.ndarray) -> None:
        """The gradient hook: scale this share's gradient by ``w_r / W``, then sum gradients
        and stats over the processes (then the caller's own hook, on the batch's gradient)."""
        local, total = float(stats[1]), self.batch_weight
        if local:
            if local != total:
                grads *= local / total  # (w_r / W) g_r
            if self.dense:
                self._rescale_deltas(local)
        elif total:  # an empty (or all-zero-weight) share skipped its forward:
            if self.dropouts:  # draw the masks anyway, as one process does for this batch
                self.net.forward_unchecked(self.no_rows, train=True)
            for layer in self.dense:
                layer.last_delta = None  # no δ from this share
        began = time.perf_counter()
        self.group.sum(grads)
        self.group.sum(stats)
        self.group.reduce_seconds += time.perf_counter() - began
        self.group.reduce_calls += 1
        if self.user_hook is not None:
            self.user_hook(grads, stats)

    def _rescale_deltas(self, local: float) -> None:
        """``record_grad_norms`` with sample weights: the engine adds ``m_r² ‖Δ_r‖²`` per Dense
        layer, where one process adds ``B² ‖Δ‖²`` for the whole batch; Δ's rows are
        ``w_n δ_n / w_r`` here and ``w_n δ_n / W`` there, so scaling Δ_r by ``B w_r / (m_r W)``
        makes the processes' sum the one-process value."""
        scale = self.batch_rows * local / (self.share_rows * self.batch_weight)
        for layer in self.dense:
            if layer.last_delta is not None:
                layer.last_delta *= scale

    def stop(self) -> None:
        """Put the Dropout layers back to drawing for their input alone."""
        for layer in self.dropouts:
            layer.share(None)


class ReducedEngine:
    """An engine whose epoch sums of ``‖δˡ‖²`` (``record_grad_norms``) are summed over the
    processes; loss, weight and correct already are, step by step, by the hook."""

    def __init__(self, engine: Engine, group: Group) -> None:
        self.engine, self.group, self.name = engine, group, engine.name

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        sums = self.engine.run_epoch(order, report)
        keys = sorted(sums.delta_sq)
        totals = self.group.sum(np.array([sums.delta_sq[k] for k in keys], np.float64))
        return dataclasses.replace(sums, delta_sq=dict(zip(keys, totals.tolist(), strict=True)))

    def between_epochs(self) -> AbstractContextManager[Any]:
        return self.engine.between_epochs()


def train(run: Run, group: Group) -> History:
    """``fit``'s epoch loop (:func:`backprop.training.fit.train`) over the processes of ``group``.

    ``run`` comes from ``check_run(check_finite=False)``: each process scans its share of the
    inputs for NaN and infinity here, and all raise the same error. Only rank 0 shows progress;
    every process ends with the same weights and ``History`` (``History.engine`` says
    "data-parallel over K processes"). A failure on one process ends the job
    (:meth:`Group.abort`), except :class:`~backprop.errors.DivergenceError`, which every
    process raises at the same step.
    """
    group.check_finite(run.x, "x")  # check_run(check_finite=False) left it to the processes' shares
    if run.validation is not None:
        group.check_finite(run.validation[0], "the validation inputs")
    reducer = Reducer(run, group)
    run = dataclasses.replace(run, group=group, verbose=run.verbose and group.rank == 0, grad_hook=reducer)
    engine: Engine = create_engine(run, reducer.shard)  # engine="numba" refuses, on every process
    if run.record_grad_norms:
        engine = ReducedEngine(engine, group)
    try:
        history = train_epochs(run, engine)
    except DivergenceError:
        raise
    except BaseException as err:  # the others would wait in an all-reduce forever
        code = 130 if isinstance(err, KeyboardInterrupt) else 1
        group.abort(f"backprop: fit failed: {type(err).__name__}: {err}", code)
    finally:
        reducer.stop()
    if not group.same_weights(run.net.parameter_buffer):
        raise StateError("the processes ended with different weights: the MPI library's all-reduce "
                         "gave them different sums")
    history.engine = f"{engine.name}, {group.describe()}"
    return history
