"""The optional compiled engine: runs of plain-SGD mini-batch steps in one numba call.

At batch sizes of about 10 a NumPy step is two dozen library calls of about a microsecond
each around small matrix products, so Python and call overhead, not arithmetic, set the
speed. This engine runs many whole steps (forward, loss, backward, update) inside one
compiled function, on the network's own arrays. It computes the equations of
:class:`~backprop.layers.Dense`, the activations and the losses in loops
(:mod:`backprop.compiled_kernels`), with differences in floating-point order only:

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

So results agree with the NumPy path to rounding (the tests check float64 runs to 1e-10),
not bit for bit. The NumPy path stays the readable reference.

Supported: ``Dense`` layers, each followed by at most one of Identity, Sigmoid, Tanh, ReLU,
LeakyReLU; the Quadratic, CrossEntropy and BinaryCrossEntropy losses; :class:`~backprop.SGD`
without momentum, clipping or max-norm (weight decay and schedules are fine).
:func:`unsupported_reason` says why anything else is not. numba is an optional extra
(``pip install "backprop[fast]"``), imported only when the engine is first used.
"""

from __future__ import annotations

import importlib.util
from typing import Any, NamedTuple

import numpy as np

from ..activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from ..errors import ConfigError, InvalidValueError
from ..layers import Dense
from ..losses import BinaryCrossEntropy, CrossEntropy, Loss, Quadratic
from ..network import Network
from ..optim import SGD, Optimizer

__all__ = ["available", "unsupported_reason", "SparseRows", "to_sparse_rows", "sparse_rows", "CompiledSGD"]

# activation codes (one per Dense layer: the activation that follows it)
_ACTIVATION_CODES = {Identity: 0, Sigmoid: 1, Tanh: 2, ReLU: 3, LeakyReLU: 4}
# loss codes
_LOSS_CODES = {Quadratic: 0, CrossEntropy: 1, BinaryCrossEntropy: 2}


def available() -> bool:
    """Whether numba is installed (it is not imported here)."""
    return importlib.util.find_spec("numba") is not None


def _structure(net: Network) -> tuple[list[Dense], list[int], list[float]] | str:
    """The Dense layers with their activation codes and LeakyReLU slopes, or why not."""
    dense: list[Dense] = []
    codes: list[int] = []
    slopes: list[float] = []
    after_dense = False  # whether the previous layer was a Dense (free for an activation)
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            dense.append(layer)
            codes.append(0)
            slopes.append(0.0)
            after_dense = True
            continue
        code = _ACTIVATION_CODES.get(type(layer))
        if code is None:
            return f"layer {i} ({type(layer).__name__}) has no compiled form"
        if not after_dense:
            return f"layer {i} ({type(layer).__name__}) must directly follow a Dense layer"
        codes[-1] = code
        slopes[-1] = float(layer.slope) if isinstance(layer, LeakyReLU) else 0.0
        after_dense = False
    return dense, codes, slopes


def unsupported_reason(net: Network, loss: Loss, optimizer: Optimizer) -> str | None:
    """``None`` when the compiled engine can train this combination, else the reason."""
    if not available():
        return "numba is not installed (pip install 'backprop[fast]')"
    structure = _structure(net)
    if isinstance(structure, str):
        return structure
    if type(loss) not in _LOSS_CODES:
        return f"the loss {type(loss).__name__} has no compiled form (Quadratic, CrossEntropy, BinaryCrossEntropy)"
    arrays = [d.params[k] for d in structure[0] for k in ("W", "b")]
    if not all(a.flags.c_contiguous and a.flags.writeable for a in arrays):
        return "the compiled engine needs writable, C-contiguous parameter arrays"
    if type(optimizer) is not SGD:
        return f"the optimizer {type(optimizer).__name__} has no compiled form (plain SGD only)"
    if optimizer.momentum > 0 or optimizer.clip_norm is not None or optimizer.max_norm is not None:
        return "the compiled engine runs SGD without momentum, clip_norm or max_norm"
    return None


class CompiledSGD:
    """Plain mini-batch SGD on ``net`` in compiled runs of steps.

    Args:
        net: the network (checked with :func:`unsupported_reason` first).
        loss: its loss.
        optimizer: a plain :class:`~backprop.SGD`; its ``t`` advances by the steps taken and
            its schedule gives each step's rate.
        batch_size: rows per step (the last step of an epoch may have fewer).
        sparse_input: where the non-zero entries are in the training data that :meth:`run`
            will get, from :func:`sparse_rows`: the first layer then works on each sample's
            non-zero inputs, with its weights held transposed during a run (worth it for inputs
            that are mostly 0 and a first layer of :data:`SPARSE_MIN_WIDTH` units or more).
            None: dense.
    """

    def __init__(self, net: Network, loss: Loss, optimizer: SGD, batch_size: int,
                 sparse_input: SparseRows | None = None) -> None:
        reason = unsupported_reason(net, loss, optimizer)
        if reason is not None:
            raise ConfigError(f"the compiled engine cannot train this: {reason}")
        dense, codes, slopes = _structure(net)
        self.dense = dense
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.loss_code = _LOSS_CODES[type(loss)]
        dtype = net.dtype
        self.codes = np.array(codes, dtype=np.int64)
        self.slopes = np.array(slopes, dtype=dtype)
        widths = [dense[0].d_in] + [d.d_out for d in dense]
        # the network's own arrays, updated in place; per-layer workspaces for one batch
        self.weights = tuple(d.params["W"] for d in dense)
        self.biases = tuple(d.params["b"] for d in dense)
        self.acts = tuple(np.empty((batch_size, w), dtype) for w in widths)          # Aˡ, A⁰ = x
        self.pre = tuple(np.empty((batch_size, w), dtype) for w in widths[1:])       # Zˡ
        self.deltas = tuple(np.empty((batch_size, w), dtype) for w in widths[1:])    # dC/dAˡ, then δˡ
        self.stats = np.zeros(4, dtype=np.float64)  # Σ loss·m, correct, last finite loss, bad loss
        self.sparse = sparse_input is not None
        self.rows = sparse_input if sparse_input is not None else SparseRows(  # placeholders when dense
            np.zeros(1, np.int64), np.zeros(1, np.uint16))
        d_in, d_out = dense[0].d_in, dense[0].d_out
        self.wt0 = np.empty((d_in, d_out) if self.sparse else (1, 1), dtype)  # W⁰ transposed

    def run(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None, order: np.ndarray,
            first: int, stop: int) -> tuple[float, int, int | None, float | None]:
        """Take the steps for batches ``first .. stop-1`` of the epoch's ``order``.

        ``x`` is ``(N, d_0)`` (the data ``sparse_input`` was made from, if given), ``t`` the
        loss's training targets ``(N, d_L)`` (one-hot rows for class labels), ``labels`` the
        ``(N,)`` class labels or None, ``order`` the epoch's permutation of ``range(N)``.

        Returns ``(Σ batch loss × batch rows, correct predictions, failed, last)``. ``failed``
        is None, or ``(batch index, loss)`` for the batch whose mean loss was NaN or beyond the
        dtype's range (its update was not applied and the run stopped there); ``last`` is the
        last finite batch loss (None if the run's first batch failed).

        Raises:
            InvalidValueError: the schedule returned a rate that is not finite and >= 0; the
                steps before that one have been taken, as :meth:`SGD.step` would have.
        """
        if self.sparse and len(self.rows.ptr) != len(x) + 1:
            raise ValueError(f"x has {len(x)} rows; sparse_input was made from {len(self.rows.ptr) - 1}")
        opt = self.optimizer
        steps = stop - first
        if opt.schedule is None:
            lrs = np.full(steps, opt.base_lr, dtype=np.float64)
        else:  # the schedule's rate for each step, as SGD.step would use it
            lrs = np.array([float(opt.schedule(opt.t + s, opt.base_lr)) for s in range(steps)], dtype=np.float64)
        good = np.isfinite(lrs) & (lrs >= 0)
        bad = None if good.all() else int(np.flatnonzero(~good)[0])
        runnable = steps if bad is None else bad
        bad_rate = None if bad is None else lrs[bad]
        lrs[~good] = 0.0  # never used: the run stops before the first bad rate
        dtype = self.weights[0].dtype
        shrinks = (1.0 - lrs * opt.weight_decay).astype(dtype)  # L2 decay: w ← (1 − η wd) w
        have_labels = labels is not None
        label_arr = labels if have_labels else np.zeros(1, dtype=np.intp)
        self.stats[:] = (0.0, 0.0, np.nan, np.nan)
        if self.sparse:
            np.copyto(self.wt0, self.weights[0].T)
        done = _kernel()(x, t, label_arr, have_labels, order, first, first + runnable, self.batch_size,
                         self.weights, self.biases, self.acts, self.pre, self.deltas,
                         self.codes, self.slopes, self.loss_code, lrs.astype(dtype), shrinks,
                         opt.weight_decay != 0, dtype.type(0), dtype.type(1),
                         float(np.finfo(dtype).max), self.stats,
                         self.sparse, self.wt0, *self.rows)
        if self.sparse:
            np.copyto(self.weights[0], self.wt0.T)
        opt.t += done
        failed = (first + done, float(self.stats[3])) if done < runnable else None
        if failed is None and bad is not None:
            raise InvalidValueError(f"schedule must return a finite learning rate >= 0; "
                                    f"{opt.schedule!r} returned {bad_rate} at step {opt.t}")
        last = float(self.stats[2]) if done else None
        return float(self.stats[0]), int(self.stats[1]), failed, last


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
    """What :class:`CompiledSGD` should get as ``sparse_input`` for training ``net`` on ``x``:
    its non-zero entries when at most :data:`SPARSE_MAX_DENSITY` of them are non-zero
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


class NumbaEngine:  # TEMPORARY adapter until the numba branch lands
    name = "numba"

    def __init__(self, net, loss, optimizer, batch_size, x, t, labels) -> None:
        self.run = CompiledSGD(net, loss, optimizer, batch_size, sparse_input=sparse_rows(net, x))
        self.x, self.t, self.labels, self.batch_size = x, t, labels, batch_size

    def run_epoch(self, order, report):
        from .base import Diverged, EpochSums
        n = self.x.shape[0]
        n_batches = -(-n // self.batch_size)
        per_call = n_batches if report is None else max(1, 8192 // self.batch_size)
        total_loss, correct, last_finite = 0.0, 0, None
        for first in range(0, n_batches, per_call):
            stop = min(first + per_call, n_batches)
            run_loss, run_correct, failed, last = self.run.run(self.x, self.t, self.labels, order, first, stop)
            total_loss += run_loss
            correct += run_correct
            last_finite = last if last is not None else last_finite
            if failed is not None:
                raise Diverged(f"the loss became {failed[1]}", failed[0] + 1, last_finite)
            if report is not None:
                report(min(stop * self.batch_size, n), total_loss, correct)
        return EpochSums(total_loss, float(n), float(correct), last_finite)
