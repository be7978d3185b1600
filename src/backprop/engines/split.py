"""The split-batch engine: each mini-batch's rows split between threads, in one compiled call.

A NumPy step at batch 128 runs its matrix products on every core (multi-threaded BLAS) and
everything else on one: the gather, the bias and activation passes, the loss, the sums for
``∂C/∂b``, and the Python between them (benchmarks/README.md, "Where a step's time goes").
This engine runs forward, loss and backward in one compiled call per step
(:func:`~backprop.engines.split_kernels.split_step`) that gives each of ``T`` threads a
block of the batch's rows: the thread does all of that block's work, its matrix products
with single-threaded BLAS, so every part of the step runs on every core. The blocks' shares of
the gradients are added into the network's gradient buffer, and the step ends with the
optimizer's update: its fused update (Adam, AdamW, SGD with momentum:
:meth:`~backprop.optim.Optimizer.fused_form`) inside the same call, each thread updating a
range of the parameters, or else the optimizer's own ``step`` after the call (any
optimizer, any setting).

Results agree with the NumPy engine to rounding, not bit for bit: the gradients are summed
per block and then over the blocks, and the element-wise parts are the compiled engine's
loops. With the same ``T``, runs repeat bit for bit.

Supported: what the compiled engine's kernels compute (``Dense`` layers, each followed by at
most one of Identity, Sigmoid, Tanh, ReLU, LeakyReLU; the Quadratic, CrossEntropy and
BinaryCrossEntropy losses), with any optimizer, on NumPy arrays, without per-sample weights,
gradient hooks or per-layer δ records. It needs numba and SciPy (numba calls BLAS through
SciPy); :func:`unsupported_reason` says why anything else is not trained here.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..losses import Loss
from ..network import Network
from ..optim import Optimizer
from .base import BatchEnd, Diverged, EpochSums, Report
from .numba import _LOSSES, _check_order, _structure

__all__ = ["available", "unsupported_reason", "SplitEngine"]

#: one split-batch epoch at a time in a process: numba's "workqueue" threading layer (its
#: fallback where neither TBB nor OpenMP is found) ends the process when two threads launch
#: parallel kernels at once, and two epochs at once would share the cores anyway
_ONE_AT_A_TIME = threading.Lock()

#: numba's threading layer once this process has run a split-batch epoch (None: not yet); and
#: in a child made by fork(), the parent's at the fork
_ran_with: str | None = None
_forked_from: str | None = None


def _after_fork_in_child() -> None:
    global _forked_from
    _forked_from = _ran_with


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _note_threading_layer() -> None:
    """Remember the threading layer numba's parallel kernels ran on (once they have run)."""
    global _ran_with
    if _ran_with is None:
        import numba

        try:
            _ran_with = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet
            pass


def fork_refusal() -> str | None:
    """Why this process must not run the split-batch engine: it was forked from one whose GNU
    OpenMP thread pool had run (libgomp's threads do not survive fork(), and a parallel region
    in the child waits for them forever). None where it may."""
    if _forked_from == "omp":
        return ("this process was forked from one that ran numba's OpenMP thread pool, which a forked "
                "child cannot use (start worker processes with the 'spawn' or 'forkserver' method)")
    return None


def available() -> bool:
    """Whether numba and SciPy are installed (neither is imported here)."""
    return all(importlib.util.find_spec(name) is not None for name in ("numba", "scipy"))


def unsupported_reason(net: Network, loss: Loss) -> str | None:
    """``None`` when the split-batch engine can train ``net`` with ``loss``, else the reason."""
    if not available():
        return ("it needs numba and SciPy (numba calls BLAS through SciPy), and one is not installed "
                "(pip install 'backprop[fast]')")
    forked = fork_refusal()
    if forked is not None:
        return forked
    if not net.device.is_numpy:
        return f"the network is on {net.device.name}, and the split-batch engine runs on NumPy arrays only"
    structure = _structure(net)
    if isinstance(structure, str):
        return structure
    if type(loss) not in _LOSSES:
        return f"the loss {type(loss).__name__} has no compiled form (Quadratic, CrossEntropy, BinaryCrossEntropy)"
    return None


class SplitEngine:
    """Training steps whose forward, loss and backward run in one compiled call, the batch's
    rows split between ``threads`` threads; then the optimizer's step.

    Args:
        net: the network (:func:`unsupported_reason` must say None); its parameters are
            updated in place and its gradient buffer holds each step's gradients.
        loss: its loss.
        optimizer: any optimizer; ``optimizer.step(params, grads, fused=fused)`` ends each step.
        batch_size: rows per step (the last step of an epoch may have fewer).
        x: the training inputs, C-contiguous, in the network's dtype.
        t: the loss's training targets, in the network's dtype.
        labels: class labels to count correct predictions, or None.
        threads: the threads a batch is split between (each runs single-threaded BLAS).
        fused: apply the optimizer's fused update inside the compiled call where it has one
            (:meth:`~backprop.optim.Optimizer.fused_form`); passed to its ``step`` otherwise.
        on_batch_end: hooks called after each step (callbacks' ``on_batch_end``).

    Shape:
        - x: ``(N, d_0)``; t: ``(N, d_L)``; labels: ``(N,)`` integers, or None
        - ``run_epoch``'s order: ``(N,)``, a permutation of ``range(N)``

    Attributes:
        name: ``"numba-split"`` (what ``History.engine`` records).
        threads: as given.
        last_finite: the last finite batch loss (None before the first).
    """

    name = "numba-split"

    def __init__(self, net: Network, loss: Loss, optimizer: Optimizer, batch_size: int, x: np.ndarray,
                 t: np.ndarray, labels: np.ndarray | None, *, threads: int, fused: bool,
                 on_batch_end: Sequence[BatchEnd] = ()) -> None:
        import numba

        from .numba_kernels import Activation, LossKind

        most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # fixed at numba's import
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= most:
            raise ConfigError(f"threads must be an integer from 1 to {most} (numba's thread pool, "
                              f"NUMBA_NUM_THREADS); got {threads!r}")
        structure = _structure(net)
        assert not isinstance(structure, str)  # unsupported_reason saw to it
        dense, names, slopes = structure
        self.net, self.optimizer, self.batch_size = net, optimizer, batch_size
        self.threads, self.fused, self.on_batch_end = threads, fused, tuple(on_batch_end)
        # read-only views, whatever was given: numba compiles one machine code per argument type,
        # and a memory-mapped file is read-only; with two versions a run on a mapped file and one
        # on the same array in memory would differ in the last bits (see numba_kernels on why)
        self.x, self.t = _read_only(np.ascontiguousarray(x)), _read_only(np.ascontiguousarray(t))
        self.labels = _read_only(np.ascontiguousarray(labels, dtype=np.int64) if labels is not None
                                 else np.zeros(1, dtype=np.int64))
        self.have_labels = labels is not None
        dtype = net.dtype
        self.one = dtype.type(1)
        self.ones = _read_only(np.ones(batch_size, dtype))  # ∂C/∂b = Δᵀ 1, one matrix-vector product
        self.loss_code = int(LossKind[_LOSSES[type(loss)]])
        self.codes = np.array([Activation[name] for name in names], dtype=np.int64)
        self.slopes = np.array(slopes, dtype=dtype)
        self.widths = np.array([dense[0].d_in] + [d.d_out for d in dense], dtype=np.int64)
        self.offsets = np.array([_offset(net.parameter_buffer, d.params[k]) for d in dense for k in ("W", "b")],
                                dtype=np.int64)
        self.params, self.grads = net.parameters(), net.gradients()
        # the work arrays of one batch, in one flat array: A⁰ … Aᴸ, then Z¹ … Zᴸ, then Δ¹ … Δᴸ
        sizes = [batch_size * int(w) for w in self.widths]
        self.act_at = np.cumsum([0] + sizes[:-1]).astype(np.int64)
        self.pre_at = (sum(sizes) + np.cumsum([0] + sizes[1:-1])).astype(np.int64)
        self.delta_at = (self.pre_at + sum(sizes[1:])).astype(np.int64)
        self.work = np.zeros(sum(sizes) + 2 * sum(sizes[1:]), dtype)
        self.shares = np.zeros((threads - 1, net.parameter_buffer.size), dtype)
        self.sums = np.zeros(2, np.float64)
        self.last_finite: float | None = None
        self.at = np.append(self.offsets, net.parameter_buffer.size).astype(np.int64)
        self._no_constants = np.zeros(8, dtype), np.zeros(1, np.bool_)
        self._step_constants = np.zeros(8, dtype), np.zeros(1, np.bool_)  # refilled at every step
        self._take_fused_form()
        self._warm_up()

    def _warm_up(self) -> None:
        """Import SciPy's BLAS (before any thread limit, so that the limit applies to it) and load
        the kernel (from numba's disk cache, or compile it) with a call on an empty batch, which
        updates nothing and zeroes the gradient buffer: so that the first epoch pays neither."""
        import numba

        from ..threads import blas_pools
        from .split_kernels import NO_UPDATE, split_step

        self._kernel: Any = split_step  # a numba dispatcher: its signature is the kernel's
        # NumPy's and SciPy's BLAS (numba's np.dot calls SciPy's), found once per process
        self._pools = blas_pools(after=("scipy.linalg.cython_blas",))
        empty = _read_only(np.zeros(1, dtype=np.int64))
        before = numba.get_num_threads()
        numba.set_num_threads(self.threads)
        try:
            with _ONE_AT_A_TIME:
                self._call(empty, 0, 0, *self._no_constants, update=NO_UPDATE)
        finally:
            numba.set_num_threads(before)
            _note_threading_layer()

    def _call(self, order: np.ndarray, lo: int, m: int, c: np.ndarray, flags: np.ndarray, update: int) -> bool:
        """One call of the kernel: the step on rows ``order[lo:lo+m]``; False where the loss was
        not finite (nothing updated)."""
        net = self.net
        return bool(self._kernel(self.x, self.t, self.labels, self.have_labels, order, lo, m, net.parameter_buffer,
                                 self.offsets, self.widths, self.codes, self.slopes, self.loss_code, self.work,
                                 self.batch_size, self.act_at, self.pre_at, self.delta_at, self.shares,
                                 net.gradient_buffer, self.sums, self.one, self.ones, update, *self.state, self.at,
                                 self.decay, c, flags))

    def _take_fused_form(self) -> None:
        """Ask the optimizer for its fused update (done again at every epoch: resuming loads
        new state arrays into the optimizer after the engine is built)."""
        from .split_kernels import ADAM, MOMENTUM, NO_UPDATE

        form = self.optimizer.fused_form(self.params, self.grads) if self.fused else None
        self.form = form
        self.update = NO_UPDATE if form is None else {"adam": ADAM, "momentum": MOMENTUM}[form.kind]
        empty = self.net.parameter_buffer[:0]
        self.state = ((form.state if form is not None else ()) + (empty, empty))[:2]  # stand-ins where unused
        self.decay = np.array(form.decay if form is not None else [False] * len(self.params))

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """One epoch of steps over the batches of ``order``; ``report(rows so far, Σ loss ×
        rows, correct)`` after each step.

        Raises:
            Diverged: a batch's mean loss was NaN or infinite; its update was not applied.
            ShapeError: ``order`` is not ``(N,)`` integers in ``[0, N)`` (the kernel indexes the
                data with it unchecked).
        """
        import numba

        n, batch_size, net, opt = self.x.shape[0], self.batch_size, self.net, self.optimizer
        _check_order(order, n)
        self._take_fused_form()
        loss_sum, correct = 0.0, 0.0
        order = _read_only(np.ascontiguousarray(order, dtype=np.int64))
        before = numba.get_num_threads()
        numba.set_num_threads(self.threads)
        try:
            # one epoch at a time; each block's products single-threaded, on its own thread
            with _ONE_AT_A_TIME, self._pools.limit(limits=1):
                for b, lo in enumerate(range(0, n, batch_size)):
                    m = min(batch_size, n - lo)
                    finite = self._call(order, lo, m, *self._constants(), update=self.update)
                    value = self.sums[0] / m
                    if not finite:
                        raise Diverged(f"the loss became {value}", b + 1, self.last_finite)
                    self.last_finite = value
                    if self.form is not None:  # the fused update ran inside the call
                        opt.t += 1
                    else:
                        opt.step(self.params, self.grads, fused=self.fused)
                    loss_sum += float(self.sums[0])
                    correct += float(self.sums[1])
                    if report is not None:
                        report(lo + m, loss_sum, correct)
                    for hook in self.on_batch_end:
                        hook(b, {"loss": value, "batch_size": m}, net)
        finally:
            numba.set_num_threads(before)
            _note_threading_layer()
        return EpochSums(loss=loss_sum, weight=float(n), correct=correct, last_finite=self.last_finite)

    def between_epochs(self) -> AbstractContextManager[Any]:
        """NumPy's BLAS (and SciPy's) single-threaded for the work between two epochs (``fit``'s
        evaluation on validation data). A multi-threaded BLAS call leaves OpenBLAS's idle worker
        spinning for 0.1-0.2 s, on a core this engine's threads need: measured on C3 with
        validation, each epoch after the first ran 60-100 ms longer, while evaluating 10,000
        images on one thread costs 51 ms against 33 on two (benchmarks/README.md)."""
        return self._pools.limit(limits=1)

    def _constants(self) -> tuple[np.ndarray, np.ndarray]:
        """The fused update's scalars for this step, in the parameters' dtype (see
        :func:`~backprop.engines.split_kernels.add_and_update`), and its flag."""
        if self.form is None:
            return self._no_constants
        c, flags = self._step_constants
        if self.form.kind == "adam":
            b1, b2, step_size, eps_hat, wd, decoupled, shrink = self.optimizer.fused_constants()
            c[:] = b1, b2, 1.0 - b1, 1.0 - b2, step_size, eps_hat, wd, shrink
            flags[0] = decoupled
        else:
            lr, mu, wd, nesterov = self.optimizer.fused_constants()
            c[:] = lr, mu, wd, 0.0, 0.0, 0.0, 0.0, 0.0
            flags[0] = nesterov
        return c, flags


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``."""
    view = a.view()
    view.flags.writeable = False
    return view


def _offset(buffer: np.ndarray, view: np.ndarray) -> int:
    """Where ``view`` starts in the flat ``buffer`` it is a view of, in entries."""
    start = view.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
    return start // buffer.itemsize
