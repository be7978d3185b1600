"""``check_run``: every argument of ``fit`` checked before anything trains, into a frozen ``Run``.

A refused call changes nothing. What passes is described once, in a :class:`Run`, which the
epoch loop, the engines and the checkpoints then read without checking again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_array, boolean, describe, float_input, fraction, positive_int, seed_value
from ..devices import check_placement, device_input, to_numpy
from ..errors import BackpropError, ConfigError, DTypeError, InvalidValueError, ShapeError
from ..losses import Loss, get_loss
from ..network import Network
from ..optim import SGD, Optimizer
from .callbacks import Callback
from .metrics import class_labels
from .parallel import ProcessGroup

#: the values of ``fit(engine=...)``
ENGINES = ("auto", "numpy", "numba", "numba-split")

#: ``hook(grads, stats)``, called by every training step between backward and the optimizer
#: step: ``grads`` is the network's flat gradient buffer ``(n_params,)``; ``stats`` is a float64
#: array ``[Σ loss × weight, Σ weight, correct]`` of the batch. The hook may change both in
#: place (the distributed run all-reduces them); the update and the epoch's sums use the result.
GradHook = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Run:
    """One ``fit`` call, checked: the data in the network's dtype and the settings.

    Attributes:
        x: training inputs ``(N, d_0)`` (the caller's array when it already had the right
            dtype: never copied, so a memory-mapped array stays on disk).
        k: the network's output width ``d_L``.
        t: targets in the loss's training form, e.g. one-hot rows ``(N, k)`` for CrossEntropy.
        labels: class labels ``(N,)`` when the targets are classes (for accuracy), else None.
        weights: per-sample weights ``(N,)`` float64, or None.
        validation: ``(x_val, y_val)`` or None.
        group: the processes of a data-parallel run (:class:`~backprop.training.parallel.ProcessGroup`;
            :mod:`backprop.distributed` sets it), or None.
    """

    net: Network
    loss: Loss
    optimizer: Optimizer
    x: np.ndarray
    k: int
    t: np.ndarray
    labels: np.ndarray | None
    weights: np.ndarray | None
    validation: tuple[np.ndarray, np.ndarray] | None
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int | None
    callbacks: tuple[Callback, ...]
    verbose: bool
    record_grad_norms: bool
    checkpoint_dir: str | os.PathLike | None
    resume: bool
    engine: str
    grad_hook: GradHook | None
    group: ProcessGroup | None = None

    @property
    def n(self) -> int:
        """The number of training samples."""
        return int(self.x.shape[0])

    @property
    def metrics(self) -> frozenset[str]:
        """The names the epoch's logs will hold."""
        names = {"loss"} | ({"accuracy"} if self.labels is not None else set())
        if self.validation is not None:
            names.add("val_loss")
            if class_labels(self.validation[1], self.k, self.loss) is not None:
                names.add("val_accuracy")
        return frozenset(names)


def check_run(net: Any, x: Any, y: Any, *, loss: Any, optimizer: Any, epochs: Any, batch_size: Any,
              validation_data: Any, validation_split: Any, shuffle: Any, seed: Any, callbacks: Any,
              verbose: Any, record_grad_norms: Any, checkpoint_dir: Any, resume: Any, engine: Any,
              sample_weight: Any, grad_hook: Any, check_finite: bool = True) -> Run:
    """Check every argument of :func:`~backprop.fit` (see there) and describe the run.

    ``check_finite=False`` leaves the inputs' NaN-and-infinity scan to the caller: a
    data-parallel run scans each process's share of the rows instead of every row everywhere."""
    check_network(net)
    loss = get_loss(loss)
    optimizer = SGD(lr=0.1) if optimizer is None else optimizer
    if not isinstance(optimizer, Optimizer):
        raise ConfigError(f"optimizer must be a backprop Optimizer; got {describe(optimizer)}")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {describe(engine)}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise DTypeError(f"checkpoint_dir must be a str, an os.PathLike or None; got {describe(checkpoint_dir)}")
    resume = boolean(resume, "resume")
    if resume and checkpoint_dir is None:
        raise ConfigError("resume=True needs checkpoint_dir")
    if grad_hook is not None and not callable(grad_hook):
        raise DTypeError(f"grad_hook must be a callable (grads, stats) or None; got {describe(grad_hook)}")
    x, y, weights, validation = _data(net, x, y, sample_weight, validation_data,
                                      fraction(validation_split, "validation_split"), check_finite)
    n, k = x.shape[0], net.output_width
    if k is None:
        raise ConfigError("net has no Dense layer, so it has nothing to train")
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise InvalidValueError(f"batch_size must be at most the number of training samples ({n}); got {batch_size}")
    t = loss.prepare(y, (n, k), net.dtype)  # validated once; the hot path trusts it
    if validation is not None:
        try:  # fail now, not after an epoch, and name the argument at fault (not "y")
            loss.prepare(validation[1], (validation[0].shape[0], k), net.dtype)
        except BackpropError as err:
            raise type(err)(f"validation_data[1]: {err}") from None
    run = Run(net=net, loss=loss, optimizer=optimizer, x=x, k=k, t=loss.training_targets(t, k, net.dtype),
              labels=class_labels(y, k, loss), weights=weights, validation=validation,
              epochs=positive_int(epochs, "epochs"), batch_size=batch_size, shuffle=boolean(shuffle, "shuffle"),
              seed=seed_value(seed, "seed"), callbacks=tuple(check_callbacks(callbacks)),
              verbose=boolean(verbose, "verbose"), record_grad_norms=boolean(record_grad_norms, "record_grad_norms"),
              checkpoint_dir=checkpoint_dir, resume=resume, engine=engine, grad_hook=grad_hook)
    for cb in run.callbacks:  # a callback that needs a metric this run lacks fails now
        cb.check(run.metrics)
    return run


def _data(net: Network, x: Any, y: Any, sample_weight: Any, validation_data: Any, validation_split: float,
          check_finite: bool = True):
    """The training inputs, targets and weights, and the validation pair, checked. Inputs already
    on the network's device stay there (checked there); targets are checked on the host (one
    copy back when they are on the device)."""
    if check_placement(x, "x", net.device):
        x = device_input(x, "x", net.device, net.dtype, net.input_width)
    else:
        x = float_input(x, "x", net.dtype, net.input_width, finite=check_finite)
    if not net.device.is_numpy and check_placement(y, "y", net.device):
        y = to_numpy(y)
    y = targets(y, x.shape[0], "y")
    weights = None if sample_weight is None else check_sample_weight(sample_weight, x.shape[0])
    if validation_data is not None and validation_split:
        raise ConfigError("give validation_data or validation_split, not both")
    if validation_data is None:
        n_val = int(round(x.shape[0] * validation_split))
        if n_val == 0:
            return x, y, weights, None
        if n_val >= x.shape[0]:
            raise InvalidValueError("validation_split leaves no training data")
        weights = None if weights is None else weights[:-n_val]
        return x[:-n_val, ...], y[:-n_val], weights, (x[-n_val:, ...], y[-n_val:])
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ConfigError(f"validation_data must be a pair (x_val, y_val); got {describe(validation_data)}")
    x_val = float_input(validation_data[0], "validation_data[0]", net.dtype, net.input_width,
                        finite=check_finite)
    return x, y, weights, (x_val, targets(validation_data[1], x_val.shape[0], "validation_data[1]"))


def check_network(net: Any) -> None:
    if not isinstance(net, Network):
        raise DTypeError(f"net must be a backprop Network; got {describe(net)}")


def check_callbacks(callbacks: Any) -> list[Callback]:
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise DTypeError(f"callbacks must be a list of Callback objects; got {describe(callbacks)}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise DTypeError(f"callbacks[{i}] must be a backprop Callback (subclass bp.Callback); got {describe(cb)}")
    return list(callbacks)


def targets(y: Any, n: int, name: str) -> np.ndarray:
    """``y`` as an array with one target per sample of x (``n``)."""
    y = as_array(y, name)
    if y.shape[:1] != (n,):
        raise ShapeError(f"{name} must have one target per sample of x ({n}); got shape {y.shape}")
    return y


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """Per-sample weights ``(n,)`` as float64: finite, ≥ 0, not all zero."""
    w = as_array(sample_weight, "sample_weight")
    if w.shape != (n,):
        raise ShapeError(f"sample_weight must have one weight per sample of x, shape ({n},); got shape {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise InvalidValueError("sample_weight must be finite and >= 0")
    if not w.any():
        raise InvalidValueError("sample_weight must not be all zero: nothing would be learned")
    return w

