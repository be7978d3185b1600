"""The compiled engine: runs of plain-SGD mini-batch steps in one numba call.

At batch sizes of about 10 a NumPy step is two dozen library calls of about a microsecond
each around small matrix products, so Python and call overhead, not arithmetic, set the
speed. This engine runs many whole steps (forward, loss, backward, update) inside one
compiled function, on the network's own arrays. It computes the equations of
:class:`~backprop.layers.Dense`, the activations and the losses in loops
(:mod:`backprop.engines.numba_kernels`), with differences in floating-point order only:

* **the update is applied per group of samples**, ``W ← W − η Σ_x δ_x a_xᵀ`` as a running
  sum into ``W``, instead of forming ``∂C/∂W`` first;
* **the sums are blocked**: ten or five samples (or four units) per pass over a weight row, and
  the inner sums are vectorised, so they add in another order than BLAS;
* **on mostly-zero input** (:func:`sparse_rows`; MNIST's pixels are 81% zeros) the first
  layer skips the terms of inputs that are exactly 0: ``zʲ = bʲ + Σ_{k: a_k ≠ 0} a_k W_{jk}``
  and the update touches only the weights of non-zero inputs, whose gradient
  ``δ_j a_k`` is the only non-zero one. The positions of the data's non-zero entries are
  listed once per fit (:class:`SparseRows`), and the first layer's weights are held
  transposed during a run, so a non-zero input reads one contiguous row; they are written
  back at the end of the run.

So results agree with the NumPy engine to rounding (the tests check float64 runs to 1e-10),
not bit for bit. The NumPy engine stays the readable reference. Between runs of this engine
the promise is bit for bit: the same seed gives the same weights in every process on one
machine, whether numba just compiled the kernels or loaded them from its disk cache (see
:mod:`~backprop.engines.numba_kernels` for how), and ``fit(resume=True)`` continues exactly.

Supported: ``Dense`` layers, each followed by at most one of Identity, Sigmoid, Tanh, ReLU,
LeakyReLU; the Quadratic, CrossEntropy and BinaryCrossEntropy losses; :class:`~backprop.SGD`
without momentum, clipping or max-norm (weight decay and schedules are fine).
:func:`unsupported_reason` says why anything else is not. numba is installed with backprop
where it has wheels (see ``pyproject.toml``), and imported only when the engine is first used;
where it is absent, ``fit(engine="auto")`` takes the NumPy engine.
"""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

import numpy as np

from ..activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from ..errors import ConfigError, InvalidValueError, ShapeError
from ..layers import Dense
from ..losses import BinaryCrossEntropy, CrossEntropy, Loss, Quadratic
from ..network import Network
from ..optim import SGD, Optimizer
from .base import Diverged, EpochSums, Report

__all__ = ["available", "unsupported_reason", "SparseRows", "to_sparse_rows", "sparse_rows", "NumbaEngine"]

# The activations and losses the kernels compute, by the names of their codes in
# numba_kernels.Activation and numba_kernels.LossKind (that module imports numba, so the codes
# themselves are looked up only when an engine is built)
_ACTIVATIONS: dict[type, str] = {Identity: "IDENTITY", Sigmoid: "SIGMOID", Tanh: "TANH", ReLU: "RELU",
                                 LeakyReLU: "LEAKY_RELU"}
_LOSSES: dict[type, str] = {Quadratic: "QUADRATIC", CrossEntropy: "CROSS_ENTROPY",
                            BinaryCrossEntropy: "BINARY_CROSS_ENTROPY"}

#: with a progress report, the rows of data between two reports (one compiled call each)
REPORT_ROWS = 8192


def available() -> bool:
    """Whether numba is installed (it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def _structure(net: Network) -> tuple[list[Dense], list[str], list[float]] | str:
    """The Dense layers with the names of their activations (``"IDENTITY"`` for none) and
    LeakyReLU slopes, or why the kernels cannot compute ``net``."""
    dense: list[Dense] = []
    names: list[str] = []
    slopes: list[float] = []
    after_dense = False  # whether the previous layer was a Dense (free for an activation)
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            dense.append(layer)
            names.append("IDENTITY")
            slopes.append(0.0)
            after_dense = True
            continue
        name = _ACTIVATIONS.get(type(layer))
        if name is None:
            return f"layer {i} ({type(layer).__name__}) has no compiled form"
        if not after_dense:
            return f"layer {i} ({type(layer).__name__}) must directly follow a Dense layer"
        names[-1] = name
        slopes[-1] = float(layer.slope) if isinstance(layer, LeakyReLU) else 0.0
        after_dense = False
    return dense, names, slopes


def unsupported_reason(net: Network, loss: Loss, optimizer: Optimizer) -> str | None:
    """``None`` when the compiled engine can train this combination, else the reason."""
    if not available():
        return "numba is not installed (pip install 'backprop[fast]')"
    structure = _structure(net)
    if isinstance(structure, str):
        return structure
    if type(loss) not in _LOSSES:
        return f"the loss {type(loss).__name__} has no compiled form (Quadratic, CrossEntropy, BinaryCrossEntropy)"
    arrays = [d.params[k] for d in structure[0] for k in ("W", "b")]
    if not all(a.flags.c_contiguous and a.flags.writeable for a in arrays):
        return "the compiled engine needs writable, C-contiguous parameter arrays"
    if type(optimizer) is not SGD:
        return f"the optimizer {type(optimizer).__name__} has no compiled form (plain SGD only)"
    if optimizer.momentum > 0 or optimizer.clip_norm is not None or optimizer.max_norm is not None:
        return "the compiled engine runs SGD without momentum, clip_norm or max_norm"
    return None


class NumbaEngine:
    """Plain mini-batch SGD on ``net`` in compiled runs of steps: the compiled
    :class:`~backprop.engines.base.Engine`.

    The network's own parameter arrays are updated in place; the per-layer work arrays of one
    batch are allocated here, once. Whether the first layer works on the non-zero inputs only
    is decided here too, from ``x`` (:func:`sparse_rows`).

    Args:
        net: the network (:func:`unsupported_reason` must say None).
        loss: its loss.
        optimizer: a plain :class:`~backprop.SGD`; its ``t`` advances by the steps taken and
            its schedule gives each step's rate.
        batch_size: rows per step (the last step of an epoch may have fewer).
        x: the training inputs, in the network's dtype.
        t: the loss's training targets (``loss.training_targets``: one-hot rows for class
            labels), in the network's dtype.
        labels: the class labels, to count correct predictions; None where the targets are
            not classes.

    Shape:
        - x: ``(N, d_0)``
        - t: ``(N, d_L)``
        - labels: ``(N,)`` integers, or None
        - ``run_epoch``'s order: ``(N,)``, a permutation of ``range(N)``

    Attributes:
        name: ``"numba"`` (what ``History.engine`` records).
        sparse: whether the first layer works on the non-zero entries of ``x`` only.
        last_finite: the last finite batch loss this engine has seen (None before the first).

    Example::

        >>> net = bp.Network([bp.Dense(784, 30), bp.Sigmoid(), bp.Dense(30, 10)], seed=0)
        >>> loss = bp.CrossEntropy()
        >>> t = loss.training_targets(loss.prepare(y, (len(y), 10), net.dtype), 10, net.dtype)
        >>> engine = NumbaEngine(net, loss, bp.SGD(lr=0.5), 10, x, t, y)
        >>> sums = engine.run_epoch(np.random.default_rng(0).permutation(len(x)), None)
        >>> sums.loss / sums.weight   # the epoch's mean loss
    """

    name = "numba"

    def __init__(self, net: Network, loss: Loss, optimizer: Optimizer, batch_size: int, x: np.ndarray,
                 t: np.ndarray, labels: np.ndarray | None) -> None:
        reason = unsupported_reason(net, loss, optimizer)
        if reason is not None:
            raise ConfigError(f"the compiled engine cannot train this: {reason}")
        from .numba_kernels import Activation, LossKind

        structure = _structure(net)
        assert not isinstance(structure, str) and isinstance(optimizer, SGD)  # unsupported_reason saw to it
        dense, names, slopes = structure
        self.optimizer, self.batch_size = optimizer, batch_size
        self.x, self.t, self.labels = x, t, labels
        self.loss_code = int(LossKind[_LOSSES[type(loss)]])
        dtype = net.dtype
        self.codes = np.array([Activation[name] for name in names], dtype=np.int64)
        self.slopes = np.array(slopes, dtype=dtype)
        widths = [dense[0].d_in] + [d.d_out for d in dense]
        # the network's own arrays, updated in place; per-layer workspaces for one batch
        self.weights = tuple(d.params["W"] for d in dense)
        self.biases = tuple(d.params["b"] for d in dense)
        self.acts = tuple(np.empty((batch_size, w), dtype) for w in widths)          # Aˡ, A⁰ = x
        self.pre = tuple(np.empty((batch_size, w), dtype) for w in widths[1:])       # Zˡ
        self.deltas = tuple(np.empty((batch_size, w), dtype) for w in widths[1:])    # dC/dAˡ, then δˡ
        self.stats = np.zeros(4, dtype=np.float64)  # Σ loss·m, correct, last finite loss, bad loss
        rows = sparse_rows(net, x)
        self.sparse = rows is not None
        # placeholders when dense (the kernel's signature is the same either way)
        self.rows = rows if rows is not None else SparseRows(np.zeros(1, np.int64), np.zeros(1, np.uint16))
        self.wt0 = np.empty((dense[0].d_in, dense[0].d_out) if self.sparse else (1, 1), dtype)  # W⁰ transposed
        self.last_finite: float | None = None

    def run_epoch(self, order: np.ndarray, report: Report | None) -> EpochSums:
        """Train on the batches of ``order`` (``(N,)``, a permutation of ``range(N)``): all of
        them in one compiled call when ``report`` is None, else in runs of
        :data:`REPORT_ROWS` rows with a ``report(rows so far, Σ loss × rows, correct)`` after
        each.

        Raises:
            Diverged: a batch's mean loss was NaN or beyond the dtype's range; its update was
                not applied (the weights are those after the batch before).
            InvalidValueError: the schedule returned a rate that is not finite and >= 0; the
                steps before that one have been taken, as :meth:`SGD.step` would have.
        """
        n = self.x.shape[0]
        _check_order(order, n)
        n_batches = -(-n // self.batch_size)
        per_call = n_batches if report is None else max(1, REPORT_ROWS // self.batch_size)
        loss_sum, correct = 0.0, 0
        for first in range(0, n_batches, per_call):
            stop = min(first + per_call, n_batches)
            run_loss, run_correct, failed = self._run(order, first, stop)
            loss_sum += run_loss
            correct += run_correct
            if failed is not None:
                batch, value = failed
                raise Diverged(f"the loss became {value}", batch + 1, self.last_finite)
            if report is not None:
                report(min(stop * self.batch_size, n), loss_sum, correct)
        return EpochSums(loss=loss_sum, weight=float(n), correct=float(correct), last_finite=self.last_finite)

    def between_epochs(self) -> AbstractContextManager[Any]:
        """Nothing to arrange: the kernel runs on one thread (see :class:`~backprop.engines.base.Engine`)."""
        return nullcontext()

    def _run(self, order: np.ndarray, first: int, stop: int) -> tuple[float, int, tuple[int, float] | None]:
        """Take the steps for batches ``first .. stop-1`` of the epoch's ``order``.

        Returns ``(Σ batch loss × batch rows, correct predictions, failed)``: ``failed`` is
        None, or ``(batch index, loss)`` for the batch whose mean loss was NaN or beyond the
        dtype's range (its update was not applied and the run stopped there). Updates
        :attr:`last_finite`.
        """
        opt = self.optimizer
        lrs, bad, bad_rate = _rates(opt, stop - first)
        runnable = len(lrs) if bad is None else bad
        dtype = self.weights[0].dtype
        shrinks = (1.0 - lrs * opt.weight_decay).astype(dtype)  # L2 decay: w ← (1 − η wd) w
        have_labels = self.labels is not None
        labels = self.labels if self.labels is not None else np.zeros(1, dtype=np.intp)
        self.stats[:] = (0.0, 0.0, np.nan, np.nan)
        if self.sparse:
            np.copyto(self.wt0, self.weights[0].T)
        done = _kernel()(self.x, self.t, labels, have_labels, order, first, first + runnable, self.batch_size,
                         self.weights, self.biases, self.acts, self.pre, self.deltas,
                         self.codes, self.slopes, self.loss_code, lrs.astype(dtype), shrinks,
                         opt.weight_decay != 0, dtype.type(0), dtype.type(1),
                         float(np.finfo(dtype).max), self.stats,
                         self.sparse, self.wt0, *self.rows)
        if self.sparse:
            np.copyto(self.weights[0], self.wt0.T)
        opt.t += done
        if done:
            self.last_finite = float(self.stats[2])
        failed = (first + done, float(self.stats[3])) if done < runnable else None
        if failed is None and bad is not None:
            raise InvalidValueError(f"schedule must return a finite learning rate >= 0; "
                                    f"{opt.schedule!r} returned {bad_rate} at step {opt.t}")
        return float(self.stats[0]), int(self.stats[1]), failed


def _rates(opt: SGD, steps: int) -> tuple[np.ndarray, int | None, float]:
    """The learning rates of the optimizer's next ``steps`` steps, as :meth:`SGD.step` would
    use them, float64 ``(steps,)``; the index of the first one that is not finite and >= 0
    (None: all are good) and its value. Bad rates are replaced by 0 in the array (none is
    used: a run stops before the first)."""
    if opt.schedule is None:
        lrs = np.full(steps, opt.base_lr, dtype=np.float64)
    else:
        lrs = np.array([float(opt.schedule(opt.t + s, opt.base_lr)) for s in range(steps)], dtype=np.float64)
    good = np.isfinite(lrs) & (lrs >= 0)
    if good.all():
        return lrs, None, 0.0
    bad = int(np.flatnonzero(~good)[0])
    value = float(lrs[bad])
    lrs[~good] = 0.0
    return lrs, bad, value


def _check_order(order: Any, n: int) -> None:
    """The kernels index the data with ``order`` unchecked: refuse anything but ``(n,)``
    integers in ``[0, n)``."""
    if not isinstance(order, np.ndarray) or order.shape != (n,) or order.dtype.kind not in "iu":
        raise ShapeError(f"order must be a permutation of the {n} sample indices, an integer array of "
                         f"shape ({n},); got {getattr(order, 'dtype', type(order).__name__)} of shape "
                         f"{getattr(order, 'shape', None)}")
    if n and (order.min() < 0 or order.max() >= n):
        raise ShapeError(f"order must hold sample indices in [0, {n}); got values from {order.min()} to {order.max()}")


#: the smallest first layer for which the sparse-input form pays (measured: at 30 units the
#: dense blocked loops are faster, at 100 the sparse form is)
SPARSE_MIN_WIDTH = 64
#: the largest fraction of non-zero inputs for which the sparse-input form pays
SPARSE_MAX_DENSITY = 0.3


class SparseRows(NamedTuple):
    """Where an ``(N, d)`` array's non-zero entries are, row by row (the column indices of
    compressed sparse rows; the values stay in the array): row ``r``'s are at columns
    ``idx[ptr[r]:ptr[r + 1]]``."""

    ptr: np.ndarray  #: (N + 1,) int64
    idx: np.ndarray  #: (≥ nnz,) uint16 when d ≤ 65,536 (2 bytes per non-zero entry), else int32


def to_sparse_rows(x: np.ndarray, max_density: float = 1.0) -> SparseRows | None:
    """Where the 2-D array ``x``'s non-zero entries are, as :class:`SparseRows`, or None when
    more than ``max_density`` of its entries are non-zero (found in the same single pass)."""
    from .numba_kernels import sparse_rows as fill

    n, d = x.shape
    cap = int(max_density * x.size)
    ptr = np.zeros(n + 1, np.int64)
    # np.empty: the pages past the last entry are never touched, so never take memory
    idx = np.empty(cap + d, np.uint16 if d <= 1 << 16 else np.int32)
    return SparseRows(ptr, idx) if fill(x, cap, ptr, idx) >= 0 else None


def sparse_rows(net: Network, x: np.ndarray) -> SparseRows | None:
    """Whether :class:`NumbaEngine` trains ``net`` on ``x`` with the sparse-input first layer:
    ``x``'s non-zero entries when at most :data:`SPARSE_MAX_DENSITY` of them are non-zero
    (MNIST: 19%) and the first Dense layer has at least :data:`SPARSE_MIN_WIDTH` units; else
    None (the dense form pays)."""
    first = next(layer for layer in net.layers if isinstance(layer, Dense))
    if first.d_out < SPARSE_MIN_WIDTH:
        return None
    return to_sparse_rows(x, SPARSE_MAX_DENSITY)


def _kernel() -> Any:
    """The compiled step kernel (numba is imported, and the kernels compiled or loaded from
    numba's on-disk cache, at the first call)."""
    from .numba_kernels import sgd_steps

    return sgd_steps
