"""``fit``: mini-batch gradient descent as the notes describe it, and ``evaluate``.

One step on a mini-batch ``B`` of m samples (seed 001, "backpropagation for
mini-batch gradient descent"): forward the batch storing each layer's input,
take ``dC/da^L`` from the loss (a mean over the batch, so it carries ``1/m``),
backpropagate to every ``∂C/∂W^l`` and ``∂C/∂b^l``, and let the optimizer step:
for plain SGD ``w ← w − η/m Σ_{x∈B} ∇C_x``. ``batch_size=1`` is per-sample
(stochastic) gradient descent; ``batch_size=N`` is full-batch gradient descent.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import (
    as_array,
    boolean,
    describe,
    float_input,
    fraction,
    non_negative_float,
    positive_int,
    seed_value,
)
from .._workspace import Workspace
from ..errors import (
    BackpropError,
    ConfigError,
    DivergenceError,
    DTypeError,
    InvalidValueError,
    ShapeError,
)
from ..layers import Dense, Dropout
from ..losses import Loss, get_loss
from ..network import Network
from ..optim import SGD, Adam, AdamW, Optimizer
from ..training import checkpoint
from .metrics import accuracy, class_labels


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch.

    ``val_*`` lists stay empty without validation data; ``*accuracy`` lists hold ``None``
    where the targets are not class labels.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    #: set by a callback (e.g. :class:`EarlyStopping`) to end training after this epoch
    stop_training: bool = False
    #: the epoch whose weights the network holds at the end, if a callback restored them
    restored_epoch: int | None = None
    #: with ``fit(record_grad_norms=True)``: for each Dense layer (by index in ``net.layers``),
    #: per epoch, the root-mean-square over the epoch's samples of ‖δˡ‖ = ‖∂C_x/∂zˡ‖, the
    #: per-sample error at that layer's output (small values in early layers: vanishing gradients)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    #: which engine ran the steps (see ``fit(engine=...)``): ``"numpy"``, ``"numba"`` (the
    #: compiled steps), or ``"numpy+numba-update"`` (NumPy steps whose optimizer update ran
    #: compiled)
    engine: str = "numpy"

    def as_dict(self) -> dict[str, Any]:
        """The per-epoch lists by name (JSON-serialisable)."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        out: dict[str, Any] = {k: list(getattr(self, k)) for k in keys}
        if self.grad_norms:
            out["grad_norms"] = {k: list(v) for k, v in self.grad_norms.items()}
        return out

    def __len__(self) -> int:
        return len(self.epoch)

    def _repr_html_(self) -> str:
        """The per-epoch table as HTML, for notebooks."""
        table = {k: v for k, v in self.as_dict().items() if k != "grad_norms" and v}
        head = "".join(f"<th>{k}</th>" for k in table)
        body = "".join(
            "<tr>" + "".join(f"<td>{'' if v[i] is None else f'{v[i]:.4g}'}</td>" for v in table.values())
            + "</tr>" for i in range(len(self)))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = {k: v[-1] for k, v in self.as_dict().items() if v and v[-1] is not None}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items())
        return f"History({len(self)} epochs; last: {shown})"


class Callback:
    """Hooks called by :func:`fit`. Override what you need; ``logs`` is a dict of floats.

    ``on_epoch_end`` may set ``history.stop_training = True`` to end training.
    ``check`` is called by :func:`fit` before anything is trained, with the names of the
    metrics its logs will hold; raise :class:`~backprop.errors.ConfigError` there if the
    callback needs one that is missing.
    """

    def check(self, metrics: frozenset[str]) -> None: ...
    def on_train_begin(self, net: Network, history: History) -> None: ...
    def on_epoch_begin(self, epoch: int, net: Network, history: History) -> None: ...
    def on_batch_end(self, batch: int, logs: dict[str, float], net: Network) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, Any], net: Network, history: History) -> None: ...
    def on_train_end(self, net: Network, history: History) -> None: ...


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs,
    and (``restore_best``) put back the weights of the best epoch.

    Args:
        monitor: ``"val_loss"`` (default), ``"val_accuracy"``, ``"loss"`` or ``"accuracy"``.
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        restore_best: restore the best epoch's weights at the end.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        if monitor not in ("val_loss", "val_accuracy", "loss", "accuracy"):
            raise ConfigError(f"monitor must be one of val_loss, val_accuracy, loss, accuracy; got {monitor!r}")
        self.monitor = monitor
        self.patience = positive_int(patience, "patience")
        self.min_delta = non_negative_float(min_delta, "min_delta")
        self.restore_best = boolean(restore_best, "restore_best")
        self._sign = -1.0 if monitor.endswith("accuracy") else 1.0  # lower is better after sign

    def check(self, metrics):
        if self.monitor not in metrics:
            raise ConfigError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                              f"measure (available: {sorted(metrics)}); pass validation_data or "
                              f"validation_split for val_* metrics; accuracy needs class labels")

    def on_train_begin(self, net, history):
        self.best = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0

    def on_epoch_end(self, epoch, logs, net, history):
        value = logs.get(self.monitor)
        if value is None:
            raise ConfigError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                              f"measure (available: {sorted(k for k, v in logs.items() if v is not None)})")
        score = self._sign * value
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = score, epoch, 0
            if self.restore_best:
                self.best_weights = [p.copy() for p in net.parameters()]
        else:
            self.wait += 1
            if self.wait >= self.patience:
                history.stop_training = True

    def on_train_end(self, net, history):
        if self.restore_best and self.best_weights is not None:
            for p, best in zip(net.parameters(), self.best_weights, strict=True):
                p[...] = best
            history.restored_epoch = self.best_epoch


def _check_network(net: Any) -> None:
    if not isinstance(net, Network):
        raise DTypeError(f"net must be a backprop Network; got {describe(net)}")


def _check_callbacks(callbacks: Any) -> list[Callback]:
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise DTypeError(f"callbacks must be a list of Callback objects; got {describe(callbacks)}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise DTypeError(f"callbacks[{i}] must be a backprop Callback (subclass bp.Callback); "
                             f"got {describe(cb)}")
    return list(callbacks)


def _targets(y: Any, n: int, name: str) -> np.ndarray:
    y = as_array(y, name)
    if y.shape[:1] != (n,):
        raise ShapeError(f"{name} must have one target per sample of x ({n}); got shape {y.shape}")
    return y


def _split(x: np.ndarray, y: np.ndarray, validation_split: float):
    if not 0.0 <= validation_split < 1.0:
        raise InvalidValueError(f"validation_split must lie in [0, 1); got {validation_split}")
    n_val = int(round(x.shape[0] * validation_split))
    if n_val == 0:
        return x, y, None
    if n_val >= x.shape[0]:
        raise InvalidValueError("validation_split leaves no training data")
    return x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])


def evaluate(net: Network, x: Any, y: Any, loss: Loss | str, *, batch_size: int = 2048) -> dict[str, float | None]:
    """The loss and (for class labels) the accuracy of ``net`` on ``(x, y)``, in inference mode.

    Returns ``{"loss": float, "accuracy": float | None}``.
    """
    _check_network(net)
    loss = get_loss(loss)
    batch_size = positive_int(batch_size, "batch_size")  # may exceed N: it only bounds memory
    x = float_input(x, "x", net.dtype, net.input_width)
    y = _targets(y, x.shape[0], "y")
    t = loss.prepare(y, (x.shape[0], net.output_width), net.dtype)
    a = net.predict(x, batch_size=batch_size)
    labels = class_labels(y, net.output_width, loss)
    return {
        "loss": loss.value_prepared(a, t),
        "accuracy": accuracy(a, labels, loss) if labels is not None else None,
    }


def fit(
    net: Network,
    x: Any,
    y: Any,
    *,
    loss: Loss | str,
    optimizer: Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed: int | None = 0,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    record_grad_norms: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    engine: str = "auto",
) -> History:
    """Train ``net`` on ``(x, y)`` by mini-batch gradient descent.

    Args:
        net: the network; its parameters are updated in place.
        x: inputs ``(N, d_0)`` of the network's dtype (see :class:`~backprop.Network` for the rule).
        y: targets for ``loss``: ``(N,)`` integer labels or ``(N, d_L)`` rows.
        loss: a :class:`~backprop.Loss` or its name (``"cross_entropy"``, ``"quadratic"``, ...).
        optimizer: default ``SGD(lr=0.1)``.
        epochs: passes over the data.
        batch_size: samples per step, 1 ≤ batch_size ≤ N (the last batch of an epoch may be smaller).
        validation_data: ``(x_val, y_val)``, evaluated after each epoch.
        validation_split: alternatively, the fraction of ``(x, y)`` (its last rows) held out.
        shuffle: visit the samples in a fresh seeded permutation each epoch (the data are
            indexed, never copied).
        seed: seed of the shuffling; with the network's seed it fixes the run bit for bit.
        callbacks: :class:`Callback` objects, e.g. :class:`EarlyStopping`.
        verbose: show a progress bar per epoch with live loss and accuracy.
        record_grad_norms: record per Dense layer the size of δˡ in ``History.grad_norms``
            (one small reduction per layer and step).
        checkpoint_dir: write a checkpoint here after every epoch (weights, optimizer state,
            random generator states, epoch, history), atomically; see :mod:`backprop.checkpoint`.
        resume: continue from the newest good checkpoint in ``checkpoint_dir`` (a corrupt newest
            one is skipped with a warning): the final weights are bitwise those of a run that was
            never interrupted. The run's settings must match the checkpoint's. Callback state
            (e.g. :class:`EarlyStopping`'s patience count) starts afresh.
        engine: ``"numpy"`` (the readable reference), ``"numba"`` (the optional compiled
            engine of :mod:`backprop.compiled`: whole runs of plain-SGD steps in one call, for
            small batches; a :class:`~backprop.errors.ConfigError` says why when it cannot
            train this setup), or ``"auto"`` (default): where numba is installed, the compiled
            steps when they can train the setup and ``batch_size <= 32``, else NumPy steps
            whose optimizer update (SGD with momentum, Adam, AdamW) runs as one compiled pass;
            without numba, numpy. The engines agree to rounding, not bit for bit;
            ``History.engine`` says which ran.

    Returns:
        :class:`History` with per-epoch loss, accuracy, validation loss/accuracy, lr and time.

    Raises:
        DivergenceError: the loss became NaN or infinite; the network is left at the weights
            it had at the start of that epoch (all finite).
    """
    # everything is checked before anything changes: a refused call trains nothing
    _check_network(net)
    loss = get_loss(loss)
    optimizer = SGD(lr=0.1) if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise ConfigError(f"optimizer must be a backprop Optimizer; got {describe(optimizer)}")
    epochs = positive_int(epochs, "epochs")
    validation_split = fraction(validation_split, "validation_split")
    shuffle = boolean(shuffle, "shuffle")
    verbose = boolean(verbose, "verbose")
    record_grad_norms = boolean(record_grad_norms, "record_grad_norms")
    resume = boolean(resume, "resume")
    seed = seed_value(seed, "seed")
    callbacks = _check_callbacks(callbacks)
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {describe(engine)}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise DTypeError(f"checkpoint_dir must be a str, an os.PathLike or None; "
                         f"got {describe(checkpoint_dir)}")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs checkpoint_dir")
    x = float_input(x, "x", net.dtype, net.input_width)
    y = _targets(y, x.shape[0], "y")
    if validation_data is not None and validation_split:
        raise ConfigError("give validation_data or validation_split, not both")
    if validation_data is None:
        x, y, validation_data = _split(x, y, validation_split)
    n = x.shape[0]
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise InvalidValueError(f"batch_size must be at most the number of training samples ({n}); "
                                f"got {batch_size}")
    k = net.output_width
    t = loss.prepare(y, (n, k), net.dtype)  # validated once; the hot path trusts it
    labels = class_labels(y, k, loss)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ConfigError(f"validation_data must be a pair (x_val, y_val); got {describe(validation_data)}")
        x_val = float_input(validation_data[0], "validation_data[0]", net.dtype, net.input_width)
        y_val = _targets(validation_data[1], x_val.shape[0], "validation_data[1]")
        try:  # fail now, not after an epoch, and name the argument at fault (not "y")
            loss.prepare(y_val, (x_val.shape[0], k), net.dtype)
        except BackpropError as err:
            raise type(err)(f"validation_data[1]: {err}") from None
    # the metrics the epoch logs will hold: a callback that needs another one fails now
    metrics = {"loss"} | ({"accuracy"} if labels is not None else set())
    if validation_data is not None:
        metrics.add("val_loss")
        if class_labels(y_val, k, loss) is not None:
            metrics.add("val_accuracy")
    for cb in callbacks:
        cb.check(frozenset(metrics))
    compiled_run = _compiled_engine(engine, net, loss, optimizer, batch_size, callbacks, record_grad_norms, x)
    update_kernel = _compiled_update_kernels(engine, compiled_run, optimizer)

    rng = np.random.default_rng(seed)
    last_finite: float | None = None
    params, grads = net.parameters(), net.gradients()
    good_weights = [np.empty_like(p) for p in params]  # the weights at the start of the epoch
    t_fast = loss.training_targets(t, k, net.dtype)      # e.g. one-hot rows for CrossEntropy
    batches = _BatchBuffers()
    history = History(engine="numba" if compiled_run is not None
                      else "numpy+numba-update" if update_kernel is not None else "numpy")
    dense = [(str(i), layer) for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]
    dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
    fingerprint = {"architecture": net.config(), "dtype": net.dtype.name, "samples": n,
                   "batch_size": batch_size, "seed": seed, "shuffle": shuffle,
                   "loss": repr(loss), "optimizer": repr(optimizer), "engine": history.engine}
    first_epoch = 1
    if resume:
        first_epoch = _restore(checkpoint_dir, fingerprint, net, params, optimizer, rng, dropouts, history)
    if record_grad_norms and not history.grad_norms:
        history.grad_norms = {i: [None] * len(history.epoch) for i, _ in dense}
    for cb in callbacks:
        cb.on_train_begin(net, history)

    with _compiled_update(optimizer, update_kernel):  # restored however fit ends
        for epoch in range(first_epoch, epochs + 1):
            for cb in callbacks:
                cb.on_epoch_begin(epoch, net, history)
            start = time.perf_counter()
            lr = optimizer.lr
            for p, good in zip(params, good_weights, strict=True):
                np.copyto(good, p)
            order = rng.permutation(n) if shuffle else np.arange(n)
            delta_sq = dict.fromkeys(history.grad_norms, 0.0)  # Σ over samples of ‖δˡ_x‖²
            bar = _progress(verbose, n, f"epoch {epoch}/{epochs}")
            if compiled_run is not None:
                total_loss, correct, last_finite = _compiled_epoch(compiled_run, x, t_fast, labels, order, n,
                                                                   bar, params, good_weights, last_finite, epoch)
            else:
                total_loss, correct, last_finite = _numpy_epoch(
                    net, loss, optimizer, batches, x, t_fast, labels, order, batch_size, bar, params, grads,
                    good_weights, last_finite, epoch, dense if record_grad_norms else [], delta_sq, callbacks)
            # the last step of the epoch can overflow the weights after a finite loss; catch it
            # now, or the next epoch would "restore" the non-finite weights it started from
            if not all(np.isfinite(p).all() for p in params):
                _diverged(params, good_weights, bar, f"the parameters became NaN or infinite at epoch "
                          f"{epoch}, batch {-(-n // batch_size)} (the last of the epoch)", last_finite, epoch)

            logs: dict[str, Any] = {"loss": total_loss / n,
                                    "accuracy": correct / n if labels is not None else None}
            if validation_data is not None:
                val = evaluate(net, x_val, y_val, loss)
                logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if v is not None}, refresh=True)
                bar.close()
            history.epoch.append(epoch)
            history.loss.append(logs["loss"])
            history.accuracy.append(logs["accuracy"])
            if validation_data is not None:
                history.val_loss.append(logs["val_loss"])
                history.val_accuracy.append(logs["val_accuracy"])
            history.lr.append(lr)
            history.seconds.append(time.perf_counter() - start)
            for i in history.grad_norms:
                history.grad_norms[i].append(math.sqrt(delta_sq[i] / n))
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs, net, history)
            if checkpoint_dir is not None:
                checkpoint.save(checkpoint_dir, epoch=epoch, params=params, optimizer=optimizer.state_dict(),
                                shuffle_rng=rng.bit_generator.state,
                                dropout_rngs=[d.rng.bit_generator.state for d in dropouts],
                                history=history.as_dict(), fingerprint=fingerprint)
            if history.stop_training:
                break

    for cb in callbacks:
        cb.on_train_end(net, history)
    return history


#: the values of ``fit(engine=...)``
ENGINES = ("auto", "numpy", "numba")
#: the largest batch for which ``engine="auto"`` picks the compiled engine: beyond it the
#: NumPy path's multi-threaded BLAS products win
AUTO_COMPILED_MAX_BATCH = 32


def _numpy_epoch(net: Network, loss: Loss, optimizer: Optimizer, batches: _BatchBuffers, x: np.ndarray,
                 t: np.ndarray, labels: np.ndarray | None, order: np.ndarray, batch_size: int, bar,
                 params: list[np.ndarray], grads: list[np.ndarray], good_weights: list[np.ndarray],
                 last_finite: float | None, epoch: int, dense: list[tuple[str, Dense]],
                 delta_sq: dict[str, float], callbacks: list[Callback]) -> tuple[float, int, float | None]:
    """One epoch of NumPy steps over the batches of ``order`` (the readable reference path).

    ``dense`` lists the Dense layers whose Σ‖δˡ_x‖² is added into ``delta_sq`` (empty: none).
    Returns ``(Σ batch loss × batch rows, correct predictions, last finite batch loss)``.
    """
    n, k = x.shape[0], net.output_width
    total_loss, correct = 0.0, 0
    for b, lo in enumerate(range(0, n, batch_size)):
        idx = order[lo:lo + batch_size]
        xb, tb, g = batches.take(x, t, idx, k)  # gathered into reused arrays
        a = net.forward_unchecked(xb, train=True)
        batch_loss = loss.value_and_grad_into(a, tb, g)
        if not math.isfinite(batch_loss):
            _diverged(params, good_weights, bar, f"the loss became {batch_loss} at epoch {epoch}, "
                      f"batch {b + 1}", last_finite, epoch)
        last_finite = batch_loss
        if labels is not None:  # before backward: the output array is reused by nothing yet
            correct += batches.count_correct(a, labels, idx, loss)
        net.backward_unchecked(g, input_grad=False)
        if dense:
            m = len(idx)
            for i, layer in dense:  # Δ = dC/dZ holds δ_x / m in each row: Σ‖δ_x‖² = m²‖Δ‖²
                delta = layer.last_delta
                delta_sq[i] += m * m * float(np.vdot(delta, delta))
        optimizer.step(params, grads)
        total_loss += batch_loss * len(idx)
        if bar is not None:
            bar.update(len(idx))
            if b % 50 == 0:
                bar.set_postfix(_postfix(total_loss, correct, lo + len(idx), labels), refresh=False)
        if callbacks:
            logs = {"loss": batch_loss, "batch_size": len(idx)}
            for cb in callbacks:
                cb.on_batch_end(b, logs, net)
    return total_loss, correct, last_finite


def _compiled_engine(engine: str, net: Network, loss: Loss, optimizer: Optimizer, batch_size: int,
                     callbacks: list[Callback], record_grad_norms: bool, x: np.ndarray):
    """The compiled engine's runner for this fit, or None for the NumPy path."""
    if engine == "numpy":
        return None
    from ..engines import numba as compiled

    reason = compiled.unsupported_reason(net, loss, optimizer)
    if reason is None and any(type(cb).on_batch_end is not Callback.on_batch_end for cb in callbacks):
        reason = "a callback has on_batch_end, and the compiled engine runs many batches per call"
    if reason is None and record_grad_norms:
        reason = "record_grad_norms needs every batch's δ, which the compiled engine does not keep"
    if engine == "numba":
        if reason is not None:
            raise ConfigError(f"engine='numba' cannot train this: {reason}; use engine='numpy'")
    elif reason is not None or batch_size > AUTO_COMPILED_MAX_BATCH:
        return None
    return compiled.CompiledSGD(net, loss, optimizer, batch_size, sparse_input=compiled.sparse_rows(net, x))


def _compiled_update_kernels(engine: str, compiled_run, optimizer: Optimizer):
    """With ``engine="auto"`` on the NumPy path: :mod:`backprop.compiled_kernels`, whose
    one-pass updates the optimizer will use, when numba is installed and the optimizer is SGD
    with momentum, Adam or AdamW (else None)."""
    if engine != "auto" or compiled_run is not None:
        return None
    kind = type(optimizer)
    if not ((kind is SGD and optimizer.momentum > 0) or kind in (Adam, AdamW)):
        return None
    from ..engines import numba as compiled

    if not compiled.available():
        return None
    from ..engines import numba_kernels as compiled_kernels

    return compiled_kernels


@contextlib.contextmanager
def _compiled_update(optimizer: Optimizer, kernels):
    """Let ``optimizer`` use the compiled updates while fit trains (nothing if None)."""
    if kernels is None:
        yield
        return
    optimizer.compiled = kernels
    try:
        yield
    finally:
        optimizer.compiled = None


def _compiled_epoch(run, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None, order: np.ndarray,
                    n: int, bar, params: list[np.ndarray], good_weights: list[np.ndarray],
                    last_finite: float | None, epoch: int) -> tuple[float, int, float | None]:
    """One epoch on the compiled engine, in runs of batches between progress-bar updates.
    Returns ``(Σ batch loss × batch rows, correct predictions, last finite batch loss)``."""
    n_batches = -(-n // run.batch_size)
    per_call = n_batches if bar is None else max(1, 8192 // run.batch_size)
    total_loss, correct = 0.0, 0
    for first in range(0, n_batches, per_call):
        stop = min(first + per_call, n_batches)
        run_loss, run_correct, failed, last = run.run(x, t, labels, order, first, stop)
        total_loss += run_loss
        correct += run_correct
        last_finite = last if last is not None else last_finite
        if failed is not None:
            batch, value = failed
            _diverged(params, good_weights, bar, f"the loss became {value} at epoch {epoch}, batch "
                      f"{batch + 1}", last_finite, epoch)
        if bar is not None:
            seen = min(stop * run.batch_size, n)
            bar.update(seen - bar.n)
            bar.set_postfix(_postfix(total_loss, correct, seen, labels), refresh=False)
    return total_loss, correct, last_finite


def _diverged(params: list[np.ndarray], good_weights: list[np.ndarray], bar, what: str,
              last_finite: float | None, epoch: int) -> None:
    """Put back the weights from the start of the epoch and raise :class:`DivergenceError`."""
    for p, good in zip(params, good_weights, strict=True):
        np.copyto(p, good)
    if bar is not None:
        bar.close()
    raise DivergenceError(f"{what}; the last finite loss was {last_finite}; the network holds the "
                          f"weights from the start of epoch {epoch} (try a smaller learning rate)")


def _restore(directory, fingerprint: dict[str, Any], net: Network, params: list[np.ndarray],
             optimizer: Optimizer, rng: np.random.Generator, dropouts: list[Dropout],
             history: History) -> int:
    """Load the newest good checkpoint into the run; returns the epoch to continue from."""
    saved = checkpoint.load_latest(directory)
    if saved is None:
        return 1
    saved_fingerprint = {"engine": "numpy", **saved.fingerprint}  # runs from before fit(engine=...)
    differ = sorted(k for k in fingerprint if json.dumps(saved_fingerprint.get(k), sort_keys=True)
                    != json.dumps(fingerprint[k], sort_keys=True))
    if differ:
        raise ConfigError(f"cannot resume from {saved.path}: the run's settings differ in {differ}")
    if len(saved.params) != len(params) or len(saved.dropout_rngs) != len(dropouts):
        raise ConfigError(f"cannot resume from {saved.path}: it holds a different network")
    optimizer.load_state_dict(saved.optimizer)  # checks everything before it changes anything
    for p, value in zip(params, saved.params, strict=True):
        np.copyto(p, value)
    rng.bit_generator.state = saved.shuffle_rng
    for layer, state in zip(dropouts, saved.dropout_rngs, strict=True):
        layer.rng.bit_generator.state = state
    h = saved.history
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        setattr(history, key, list(h.get(key, [])))
    history.grad_norms = {k: list(v) for k, v in h.get("grad_norms", {}).items()}
    return saved.epoch + 1


class _BatchBuffers(Workspace):
    """Mini-batches gathered by index into arrays reused from step to step (the data set is
    never copied, and a step allocates nothing proportional to the batch)."""

    def take(self, x: np.ndarray, t: np.ndarray, idx: np.ndarray, k: int):
        m = idx.shape[0]
        # mode="clip": the indices are a permutation's, always valid, and mode="raise" would
        # gather into a temporary before copying into out
        xb = np.take(x, idx, axis=0, out=self._buffer("x", (m, *x.shape[1:]), x.dtype), mode="clip")
        tb = np.take(t, idx, axis=0, out=self._buffer("t", (m, *t.shape[1:]), t.dtype), mode="clip")
        return xb, tb, self._buffer("g", (m, k), x.dtype)

    def count_correct(self, a: np.ndarray, labels: np.ndarray, idx: np.ndarray, loss: Loss) -> int:
        m = idx.shape[0]
        truth = np.take(labels, idx, out=self._buffer("labels", (m,), labels.dtype), mode="clip")
        if a.shape[1] == 1:  # one logit: class 1 where it is positive (BinaryCrossEntropy)
            guess = np.greater(a[:, 0], 0.0, out=self._buffer("hit", (m,), np.dtype(bool)))
            return int(np.count_nonzero(guess == truth))
        guess = np.argmax(a, axis=1, out=self._buffer("guess", (m,), np.dtype(np.intp)))
        hit = np.equal(guess, truth, out=self._buffer("hit", (m,), np.dtype(bool)))
        return int(np.count_nonzero(hit))


def _postfix(total_loss: float, correct: int, seen: int, labels) -> dict[str, str]:
    shown = {"loss": f"{total_loss / seen:.4f}"}
    if labels is not None:
        shown["acc"] = f"{correct / seen:.4f}"
    return shown


def _progress(verbose: bool, total: int, desc: str):
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, leave=True, dynamic_ncols=True)
