"""The stochastic solvers ("sgd", "adam", "rmsprop", "adamw"): scikit-learn's epoch loop, each
epoch one call of :func:`backprop.fit`.

Per epoch (scikit-learn's ``_fit_stochastic``): train one pass of shuffled mini-batches through
``fit`` (its one training step, its engines and its divergence check), with the gradient hook
of :mod:`._hook` where scikit-learn's penalty, sample weights or momentum convention need it;
then count the samples seen (``t_``), record the loss, score the validation split (early
stopping), apply the stopping rule on ``tol`` / ``n_iter_no_change``, and move the learning
rate ("invscaling", "adaptive"). Each epoch is its own ``fit`` call with a shuffle seed drawn
from the estimator's generator, so ``fit(max_iter=k)`` and k calls of ``partial_fit`` train
the same weights.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..distributed.fit import fit
from ..errors import ConfigError, DivergenceError
from ._hook import BatchHook
from ._settings import LearningRate, Settings, make_optimizer, scales_gradients

#: scikit-learn's words for a diverged fit (its ``_fit`` raises them as a ValueError)
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and "
              "need to be preprocessed.")


class SolverDivergedError(DivergenceError, ValueError):
    """Training diverged: a :class:`~backprop.errors.DivergenceError` that is also the
    ``ValueError`` scikit-learn's MLP raises for non-finite weights."""


@dataclass(frozen=True)
class TrainData:
    """The training rows of one call, checked.

    Attributes:
        X: inputs ``(n, d)`` in the network's dtype, C-contiguous.
        y: targets as :func:`backprop.fit` takes them: class indices ``(n,)`` or rows ``(n, k)``.
        weights: per-sample weights ``(n,)`` float64 (sample_weight × class_weight), or None.
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None

    def rows(self, idx: np.ndarray) -> TrainData:
        w = None if self.weights is None else self.weights[idx]
        return TrainData(np.ascontiguousarray(self.X[idx]), self.y[idx], w)


def fit_stochastic(est: Any, s: Settings, data: TrainData, incremental: bool) -> None:
    """Train ``est.network_`` on ``data``: up to ``max_iter`` epochs, or one (``partial_fit``)."""
    if s.early_stopping and incremental:
        raise ConfigError("partial_fit does not support early_stopping=True")
    if not incremental or not hasattr(est, "_optimizer"):
        est._rate = LearningRate(s.learning_rate_init)
        est._optimizer = make_optimizer(s, est._rate)
    train, val = _split(est, s, data) if s.early_stopping else (data, None)
    n = train.X.shape[0]
    if s.batch_size is not None and s.batch_size > n:
        warnings.warn(f"batch_size={s.batch_size} is larger than the number of training samples ({n}); "
                      f"using batch_size={n}", UserWarning, stacklevel=4)
    batch_size = s.batch_rows(n)
    hook = _hook(est, s, train, batch_size)
    est.n_iter_ = 0
    try:
        for _ in range(s.max_iter):
            if _epoch(est, s, train, val, batch_size, hook) or incremental:
                break
            if est.n_iter_ == s.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({s.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
    if val is not None:  # early stopping: the weights of the best validation score
        np.copyto(est.network_.parameter_buffer, est._best_params)
        est.history_.restored_epoch = est._best_epoch


def _hook(est: Any, s: Settings, train: TrainData, batch_size: int) -> BatchHook | None:
    """The gradient hook, or None where ``fit``'s plain step is already scikit-learn's (no
    penalty, no sample weights, no momentum under a changing rate): the compiled engine may
    then run."""
    scale = scales_gradients(s)
    if not (s.alpha or train.weights is not None or scale):
        return None
    decoupled = LearningRate(s.learning_rate_init) if s.solver == "adamw" else None
    return BatchHook(est.network_, alpha=s.alpha, batch_size=batch_size, n=train.X.shape[0],
                     loss_scale=est._loss_scale, rate=est._rate if scale else None, decoupled=decoupled)


def _split(est: Any, s: Settings, data: TrainData) -> tuple[TrainData, TrainData]:
    """The training and validation rows for early stopping: ``validation_fraction`` held out,
    stratified by class for binary and multiclass targets."""
    idx = np.arange(data.X.shape[0])
    stratify = data.y if est._stratified_split(data.y) else None
    seed = int(est._rng.integers(2**31 - 1))
    train, held = train_test_split(idx, test_size=s.validation_fraction, random_state=seed, stratify=stratify)
    if held.shape[0] < 2:
        raise ConfigError("The validation set is too small. Increase 'validation_fraction' or the size of "
                          f"your dataset (early stopping holds out {held.shape[0]} of {idx.shape[0]} samples).")
    for part, name in ((train, "training"), (held, "validation")):
        if data.weights is not None and not data.weights[part].sum() > 0:
            raise ConfigError(f"the sample weights of the {name} split are all zero; change random_state "
                              "or validation_fraction")
    return data.rows(train), data.rows(held)


def _epoch(est: Any, s: Settings, train: TrainData, val: TrainData | None, batch_size: int,
           hook: BatchHook | None) -> bool:
    """One epoch and scikit-learn's bookkeeping after it; True: stop training."""
    began, lr = time.perf_counter(), _current_rate(est, s)
    if hook is not None:
        hook.start_epoch()
    n = train.X.shape[0]
    try:
        history = fit(est.network_, train.X, train.y, loss=est._loss, optimizer=est._optimizer, epochs=1,
                      batch_size=batch_size, shuffle=s.shuffle, seed=int(est._rng.integers(2**63)),
                      verbose=False, sample_weight=train.weights, grad_hook=hook)
    except DivergenceError as err:
        return _diverged(est, val, n, err)
    loss = hook.epoch_loss() if hook is not None else history.loss[0] * est._loss_scale
    est.n_iter_ += 1
    est.t_ += n
    est.loss_ = loss
    est.loss_curve_.append(loss)
    if s.verbose:
        print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
    score, val_loss = _validation(est, val) if val is not None else (None, None)
    _count_no_improvement(est, s, loss, score)
    if s.solver == "sgd" and s.learning_rate == "invscaling":
        est._rate.value = s.learning_rate_init / (est.t_ + 1) ** s.power_t
    logs = {"loss": loss, "accuracy": history.accuracy[0], "val_loss": val_loss,
            "val_accuracy": score if est._score_is_accuracy else None}
    est.history_.record(len(est.history_) + 1, logs, lr, time.perf_counter() - began, validation=val is not None)
    est.history_.engine = history.engine
    return _should_stop(est, s, val is not None)


def _current_rate(est: Any, s: Settings) -> float:
    return est._rate.value if s.solver == "sgd" and s.learning_rate != "constant" else est._optimizer.lr


def _diverged(est: Any, val: TrainData | None, n: int, err: DivergenceError) -> bool:
    """A non-finite loss or weights: with early stopping, score the epoch NaN and stop (the best
    weights are restored, as scikit-learn ends up doing); without, raise scikit-learn's error."""
    est.n_iter_ += 1
    est.t_ += n
    est.loss_ = math.nan
    est.loss_curve_.append(math.nan)
    if val is None:
        raise SolverDivergedError(f"{NON_FINITE} {err}") from None
    est.validation_scores_.append(math.nan)
    warnings.warn(f"The training loss diverged at iteration {est.n_iter_} ({err}); training stopped and the "
                  "weights of the best validation score are restored. Try a smaller learning_rate_init.",
                  ConvergenceWarning, stacklevel=5)
    return True


def _validation(est: Any, val: TrainData) -> tuple[float, float]:
    """The validation score (accuracy or R², weighted) and the mean validation loss; both NaN
    when the predictions are not finite (scikit-learn's rule)."""
    a = est.network_.predict(val.X)
    if not np.isfinite(a).all():
        return math.nan, math.nan
    costs = est._loss.per_sample_unchecked(a, est._loss.prepare(val.y, a.shape, a.dtype))
    w = np.ones(len(costs)) if val.weights is None else val.weights
    val_loss = float(costs @ w / w.sum()) * est._loss_scale
    score = est._score_outputs(a, val.y, val.weights)
    if est.verbose:
        print(f"Validation score: {score:f}")
    return float(score), val_loss


def _count_no_improvement(est: Any, s: Settings, loss: float, score: float | None) -> None:
    """scikit-learn's rule: an epoch improves when the validation score rises by more than
    ``tol`` over the best so far (early stopping), else when the training loss falls by more
    than ``tol`` below the best so far; count the epochs in a row that do not."""
    if score is not None:
        est.validation_scores_.append(score)
        worse = score < est.best_validation_score_ + s.tol
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_params = est.network_.parameter_buffer.copy()
            est._best_epoch = len(est.history_) + 1
    else:
        worse = loss > est.best_loss_ - s.tol
        est.best_loss_ = min(est.best_loss_, loss)
    est._no_improvement_count = est._no_improvement_count + 1 if worse else 0


def _should_stop(est: Any, s: Settings, early_stopping: bool) -> bool:
    """After more than ``n_iter_no_change`` epochs without improvement: stop, or with
    ``learning_rate="adaptive"`` (sgd) divide the rate by 5 while it is above 1e-6."""
    if est._no_improvement_count <= s.n_iter_no_change:
        return False
    what = "Validation score did not improve" if early_stopping else "Training loss did not improve"
    msg = f"{what} more than tol={s.tol:f} for {s.n_iter_no_change:g} consecutive epochs."
    if s.solver == "sgd" and s.learning_rate == "adaptive" and est._rate.value > 1e-6:
        est._rate.value /= 5.0
        est._no_improvement_count = 0
        if s.verbose:
            print(f"{msg} Setting learning rate to {est._rate.value:f}")
        return False
    if s.verbose:
        print(f"{msg} Stopping.")
    return True
