"""``fit``: mini-batch gradient descent as the notes describe it, and ``evaluate``.

Read it like Nielsen's ``SGD``: :func:`fit` checks its arguments once (:func:`check_run`),
then runs the epochs; each epoch (:func:`_epoch`) shuffles, lets the engine take one
training step per mini-batch (:mod:`backprop.training.step`), and records what it measured.
``batch_size=1`` is per-sample (stochastic) gradient descent; ``batch_size=N`` is full-batch
gradient descent. Divergence is handled here, in one place (:func:`_diverged`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import all_finite, float_input, positive_int
from ..devices import check_placement, device_input, ops_of, to_numpy
from ..engines.base import Diverged, Engine
from ..errors import DivergenceError
from ..losses import Loss, get_loss
from ..network import Network
from ..optim import Optimizer
from . import resume as checkpoints
from .callbacks import Callback
from .engine_choice import create_engine
from .history import History
from .metrics import accuracy, class_labels
from .progress import Progress
from .run import GradHook, Run, check_network, check_run, targets


def fit(net: Network, x: Any, y: Any, *, loss: Loss | str, optimizer: Optimizer | None = None,
        epochs: int = 10, batch_size: int = 32, validation_data: tuple[Any, Any] | None = None,
        validation_split: float = 0.0, shuffle: bool = True, seed: int | None = 0,
        callbacks: Sequence[Callback] = (), verbose: bool = True, record_grad_norms: bool = False,
        checkpoint_dir: str | os.PathLike | None = None, resume: bool = False, engine: str = "auto",
        sample_weight: Any = None, grad_hook: GradHook | None = None) -> History:
    """Train ``net`` on ``(x, y)`` by mini-batch gradient descent, in this process.

    :func:`backprop.fit` is this function, or under ``mpiexec`` the same run over all the
    processes (:func:`backprop.distributed.fit`).

    Args:
        net: the network; its parameters are updated in place.
        x: inputs ``(N, d_0)`` of the network's dtype (see :class:`~backprop.Network` for the
            rule); never copied when it has that dtype, so a memory-mapped array
            (:class:`numpy.memmap`) is read a batch at a time.
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
            random generator states, epoch, history), atomically; see
            :mod:`backprop.training.checkpoint`.
        resume: continue from the newest good checkpoint in ``checkpoint_dir`` (a corrupt newest
            one is skipped with a warning): the final weights are bitwise those of a run that was
            never interrupted. The run's settings must match the checkpoint's. Callback state
            (e.g. :class:`EarlyStopping`'s patience count) starts afresh.
        engine: ``"numpy"`` (the readable reference), ``"numba"`` (the compiled engine of
            :mod:`backprop.engines.numba`: whole runs of plain-SGD steps in one call, for small
            batches), ``"numba-split"`` (:mod:`backprop.engines.split`: each step in one compiled
            call that splits the batch's rows between the threads, each running its rows'
            products with single-threaded BLAS; needs numba and SciPy; any optimizer), or
            ``"auto"`` (default): where numba is installed, the compiled steps when they can train
            the setup and ``batch_size <= 32``, else at larger batches the split-batch steps when
            they can, with two or more threads and at most 1,000,000 parameters, else NumPy
            steps whose optimizer update (SGD with momentum, Adam, AdamW) runs fused in one
            compiled pass unless the optimizer says ``fused=False``; without numba, numpy. A
            :class:`~backprop.errors.ConfigError` says why a named engine cannot train the setup.
            The engines agree to rounding, not bit for bit; ``History.engine`` says which ran.
        sample_weight: per-sample weights ``(N,)`` (finite, ≥ 0): each batch's loss is the
            weighted mean ``Σ w_n C_n / Σ w_n`` over its samples (scikit-learn's definition), and
            the logged loss and accuracy are weighted means too. A batch whose weights are all 0
            takes no step.
        grad_hook: ``hook(grads, stats)``, called in every step between backward and the update
            with the network's flat gradient buffer and the batch's ``[Σ loss × weight, Σ weight,
            correct]`` (float64); it may change both in place (see
            :data:`~backprop.training.run.GradHook`). Runs on the NumPy engine.
    Returns:
        :class:`History` with per-epoch loss, accuracy, validation loss/accuracy, lr and time.

    Raises:
        DivergenceError: the loss became NaN or infinite; the network is left at the weights
            it had at the start of that epoch (all finite).
    """
    run = check_run(net, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                    validation_data=validation_data, validation_split=validation_split, shuffle=shuffle,
                    seed=seed, callbacks=callbacks, verbose=verbose, record_grad_norms=record_grad_norms,
                    checkpoint_dir=checkpoint_dir, resume=resume, engine=engine,
                    sample_weight=sample_weight, grad_hook=grad_hook)
    return train(run, create_engine(run))


def train(run: Run, engine: Engine) -> History:
    """The epochs of a checked ``run`` on ``engine``: the loop of :func:`fit`."""
    rng = np.random.default_rng(run.seed)
    history = History(engine=engine.name)
    first_epoch = checkpoints.restore(run, rng, history, engine.name) if run.resume else 1
    if run.group is not None and run.resume:
        run.group.check_resumed(first_epoch, run.net.parameter_buffer)
    if run.record_grad_norms and not history.grad_norms:
        history.grad_norms = {str(i): [None] * len(history.epoch)  # type: ignore[list-item]
                              for i, layer in enumerate(run.net.layers) if layer.params}
    for cb in run.callbacks:
        cb.on_train_begin(run.net, history)
    ops = run.net.device.ops
    start_weights = ops.copy(run.net.parameter_buffer)  # the weights at the start of the epoch
    last_finite: float | None = None  # the last finite batch loss of the epochs before
    for epoch in range(first_epoch, run.epochs + 1):
        for cb in run.callbacks:
            cb.on_epoch_begin(epoch, run.net, history)
        ops.copyto(start_weights, run.net.parameter_buffer)
        logs, last_finite = _epoch(run, engine, epoch, rng, history, start_weights, last_finite)
        for cb in run.callbacks:
            cb.on_epoch_end(epoch, logs, run.net, history)
        if run.checkpoint_dir is not None:
            if run.group is None or run.group.rank == 0:
                checkpoints.save(run, epoch, rng, history, engine.name)
            if run.group is not None:
                run.group.barrier()  # nobody goes on before the checkpoint is written
        if history.stop_training:
            break
    for cb in run.callbacks:
        cb.on_train_end(run.net, history)
    return history


def _epoch(run: Run, engine: Engine, epoch: int, rng: np.random.Generator, history: History,
           start_weights: np.ndarray, last_finite: float | None) -> tuple[dict[str, Any], float | None]:
    """One pass over the data: the engine's steps, then the epoch's logs recorded in ``history``.
    Returns the logs and the last finite batch loss so far (``last_finite``: before this epoch)."""
    began, lr = time.perf_counter(), run.optimizer.lr
    order = rng.permutation(run.n) if run.shuffle else np.arange(run.n)
    bar = Progress(run.n, f"epoch {epoch}/{run.epochs}", run.labels is not None) if run.verbose else None
    try:
        sums = engine.run_epoch(order, None if bar is None else bar.report)
        # the last step can overflow the weights after a finite loss: catch it now, or the next
        # epoch would start from (and a divergence "restore") non-finite weights
        if not _all_finite(run.net.parameter_buffer):
            raise Diverged("the parameters became NaN or infinite", -(-run.n // run.batch_size),
                           sums.last_finite)
    except Diverged as err:
        _diverged(run, err, epoch, start_weights, bar, last_finite)
    logs: dict[str, Any] = {"loss": sums.loss / sums.weight,
                            "accuracy": sums.correct / sums.weight if run.labels is not None else None}
    if run.validation is not None:
        with engine.between_epochs():  # e.g. BLAS kept single-threaded, so that the next epoch starts at speed
            val = (evaluate if run.group is None else run.group.evaluate)(run.net, *run.validation, run.loss)
        logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
    if bar is not None:
        bar.close(logs)
    seconds = time.perf_counter() - began
    if run.group is not None:
        seconds = run.group.max(seconds)  # the slowest process's: the same History everywhere
    history.record(epoch, logs, lr, seconds, validation=run.validation is not None)
    for i, total in sums.delta_sq.items():
        history.grad_norms[i].append(math.sqrt(total / run.n))
    return logs, sums.last_finite if sums.last_finite is not None else last_finite


def _all_finite(buffer: Any) -> bool:
    """Whether every entry of the parameter buffer is finite (on a device: one read-back)."""
    if isinstance(buffer, np.ndarray):
        return all_finite(buffer)
    xp = ops_of(buffer).xp
    return bool(to_numpy(xp.all(xp.isfinite(buffer))))


def _diverged(run: Run, err: Diverged, epoch: int, start_weights: np.ndarray, bar: Progress | None,
              last_finite: float | None) -> None:
    """Put back the weights from the start of the epoch and raise :class:`DivergenceError`
    (``last_finite``: the last finite batch loss of the epochs before, if this one had none)."""
    run.net.device.ops.copyto(run.net.parameter_buffer, start_weights)
    if bar is not None:
        bar.close()
    last = -(-run.n // run.batch_size)
    where = f"batch {err.batch}" + (" (the last of the epoch)" if err.what.startswith("the parameters")
                                     and err.batch == last else "")
    raise DivergenceError(f"{err.what} at epoch {epoch}, {where}; the last finite loss was "
                          f"{err.last_finite if err.last_finite is not None else last_finite}; "
                          f"the network holds the weights from the start of epoch {epoch} "
                          f"(try a smaller learning rate)") from None


def evaluate(net: Network, x: Any, y: Any, loss: Loss | str, *, batch_size: int = 2048) -> dict[str, float | None]:
    """The loss and (for class labels) the accuracy of ``net`` on ``(x, y)``, in inference mode.

    Returns ``{"loss": float, "accuracy": float | None}``.
    """
    check_network(net)
    loss = get_loss(loss)
    batch_size = positive_int(batch_size, "batch_size")  # may exceed N: it only bounds memory
    if check_placement(x, "x", net.device):
        x = device_input(x, "x", net.device, net.dtype, net.input_width)
    else:
        x = float_input(x, "x", net.dtype, net.input_width)
    y = targets(to_numpy(y) if check_placement(y, "y", net.device) else y, x.shape[0], "y")
    a = to_numpy(net.predict(x, batch_size=batch_size))  # on the host: one copy of the outputs
    t = loss.prepare(y, a.shape, net.dtype)
    labels = class_labels(y, a.shape[1], loss)
    return {
        "loss": loss.value_unchecked(a, t),
        "accuracy": accuracy(a, labels, loss) if labels is not None else None,
    }
