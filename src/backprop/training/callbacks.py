"""Callbacks: hooks that ``fit`` calls around epochs and batches, and ``EarlyStopping``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import boolean, non_negative_float, positive_int
from ..errors import ConfigError
from ..network import Network
from .history import History


class Callback:
    """Hooks called by :func:`fit`. Override what you need; ``logs`` is a dict of floats.

    ``on_epoch_end`` may set ``history.stop_training = True`` to end training.
    ``check`` is called by :func:`fit` before anything is trained, with the names of the
    metrics its logs will hold; raise :class:`~backprop.errors.ConfigError` there if the
    callback needs one that is missing. A callback that overrides ``on_batch_end`` makes
    ``fit`` take the NumPy engine (the compiled one runs many batches per call).

    Shape:
        ``logs`` of ``on_epoch_end``: ``{"loss": float, "accuracy": float | None}`` plus
        ``val_loss``/``val_accuracy`` with validation data; of ``on_batch_end``:
        ``{"loss": float, "batch_size": int}``.

    Example:
        >>> class PrintLoss(bp.Callback):
        ...     def on_epoch_end(self, epoch, logs, net, history):
        ...         print(epoch, round(logs["loss"], 3))
        >>> bp.fit(net, x, y, loss="quadratic", callbacks=[PrintLoss()], verbose=False)
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

    Attributes:
        best: the best score seen (the monitored value, negated for accuracies).
        best_epoch: the epoch that had it (``None`` before the first).
        wait: epochs since the last improvement.

    Example:
        >>> stop = bp.EarlyStopping("val_loss", patience=3)
        >>> history = bp.fit(net, x, y, loss="cross_entropy", validation_split=0.1, callbacks=[stop])
        >>> history.restored_epoch    # the epoch whose weights the network holds
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
