"""What :class:`MLPClassifier` and :class:`MLPRegressor` share: the settings, ``fit`` and
``partial_fit``'s common path, the fitted network and scikit-learn's view of its weights."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ..errors import ConfigError
from ..layers import Dense
from ..training import History
from ._lbfgs import fit_lbfgs
from ._settings import STOCHASTIC_SOLVERS, Settings, build_network, check_settings
from ._stochastic import TrainData, fit_stochastic

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6

    def validate_data(estimator, /, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


#: rows per chunk when sparse input is made dense for prediction
SPARSE_ROWS = 2048


def set_params_from(est: Any, values: dict[str, Any]) -> None:
    """Store the ``__init__`` arguments ``values`` (its ``locals()``) unchanged, as scikit-learn
    requires: no validation in ``__init__``."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 ``(n,)``: finite, ``>= 0``, not all zero; None stays None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n, sample_weight, dtype=np.float64)
    else:
        sw = check_array(sample_weight, ensure_2d=False, dtype=np.float64, order="C",
                         input_name="sample_weight")
    if sw.shape != (n,):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},): one weight per sample")
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight must be finite; it holds NaN or infinite values")
    if (sw < 0).any():
        raise ValueError(f"sample_weight must be >= 0; got a minimum of {sw.min()}")
    if not sw.sum() > 0:
        raise ValueError("Sample weights must contain at least one non-zero number; sample_weight is all zero")
    return sw


def dense_rows(X: Any) -> np.ndarray:
    """Checked input as a C-contiguous dense array (sparse input is made dense, in its dtype)."""
    return X.toarray() if sp.issparse(X) else np.ascontiguousarray(X)


def has_partial_fit(est: Any) -> bool:
    """``partial_fit`` exists for the stochastic solvers only (scikit-learn's rule), else
    AttributeError, so ``hasattr(est, "partial_fit")`` answers as scikit-learn's does."""
    if est.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit is only available for stochastic optimizers; {est.solver} is not "
                             "stochastic")
    return True


class BaseMLP(BaseEstimator):
    """The shared half of the estimators (see :mod:`backprop.sklearn`).

    Subclasses provide ``_validate_input``, ``_head``, ``_stratified_split``, ``_score_outputs``
    and ``_score_is_accuracy``.
    """

    _score_is_accuracy = False

    # ------------------------------------------------------------ training
    def _fit(self, X: Any, y: Any, sample_weight: Any, *, incremental: bool, classes: Any = None) -> BaseMLP:
        s = check_settings(self)
        self._check_loss()
        first = not hasattr(self, "network_") or (not s.warm_start and not incremental)
        dtype = s.dtype if first else self.network_.dtype
        X, targets, weight_y = self._validate_input(X, y, first=first, dtype=dtype, classes=classes)
        X = dense_rows(X)
        weights = self._weights(check_sample_weight(sample_weight, X.shape[0]), weight_y, incremental)
        if first:
            self._initialize(s, X, targets)
        data = TrainData(X, targets, weights)
        if s.stochastic:
            self._stopping_state(s)
            fit_stochastic(self, s, data, incremental)
        else:
            fit_lbfgs(self, s, data)
        return self

    def _weights(self, sample_weight: np.ndarray | None, y: Any, incremental: bool) -> np.ndarray | None:
        """The per-sample weights to train with (the classifier multiplies in ``class_weight``);
        all ones is the same as none, and takes the unweighted path."""
        if sample_weight is not None and np.all(sample_weight == 1.0):
            return None
        return sample_weight

    def _initialize(self, s: Settings, X: np.ndarray, targets: np.ndarray) -> None:
        """A fresh network and fresh fitted state, seeded from ``random_state``."""
        rs = check_random_state(self.random_state)
        net_seed, stream_seed = (int(v) for v in rs.randint(np.iinfo(np.int32).max, size=2))
        loss, output, n_outputs, self.out_activation_, self._loss_scale = self._head(targets)
        self._loss = loss
        self.network_ = build_network(s, X.shape[1], n_outputs, output, net_seed, X.dtype)
        self._rng = np.random.default_rng(stream_seed)  # shuffling and validation splits
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(s.hidden_layer_sizes) + 2
        self.n_iter_ = 0
        self.t_ = 0
        self.history_ = History()
        for stale in ("_optimizer", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
            self.__dict__.pop(stale, None)

    def _stopping_state(self, s: Settings) -> None:
        """scikit-learn's stopping state, created once (a warm start continues it)."""
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            self._best_params = self.network_.parameter_buffer.copy()
            self._best_epoch: int | None = None
            self.best_loss_: float | None = math.inf
            self.validation_scores_: list[float] | None = None
            self.best_validation_score_: float | None = None
        if s.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -math.inf, None
        if not s.early_stopping and self.best_loss_ is None:
            self.best_loss_, self.validation_scores_, self.best_validation_score_ = math.inf, None, None

    def _check_loss(self) -> None:
        raise NotImplementedError

    def _validate_input(self, X: Any, y: Any, *, first: bool, dtype: np.dtype | None,
                        classes: Any = None) -> tuple[Any, np.ndarray, Any]:
        """``(X, targets for fit, y for class weights)``; ``classes``: partial_fit's first call."""
        raise NotImplementedError

    def _head(self, targets: np.ndarray) -> tuple[Any, Any, int, str, float]:
        raise NotImplementedError

    def _check_X(self, X: Any) -> Any:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, accept_sparse=["csr", "csc"], dtype=self.network_.dtype)

    def _outputs(self, X: Any, *, skip_last: bool = False) -> np.ndarray:
        """The network's output ``a^L`` ``(n, n_outputs_)`` for input ``X`` (checked here); with
        ``skip_last``, the output of all layers but the last."""
        X = self._check_X(X)
        predict = self.network_.predict if not skip_last else self._predict_but_last
        if not sp.issparse(X):
            return predict(X)
        X = X.tocsr()
        return np.concatenate([predict(X[i:i + SPARSE_ROWS].toarray()) for i in range(0, X.shape[0], SPARSE_ROWS)])

    def _predict_but_last(self, x: np.ndarray) -> np.ndarray:
        for layer in self.network_.layers[:-1]:
            x = layer.predict(x)
        return x

    def _validate_xy(self, X: Any, y: Any, reset: bool, dtype: np.dtype | None, **kwargs: Any) -> tuple[Any, Any]:
        """scikit-learn's validation of ``(X, y)``: dense or CSR/CSC ``X`` in ``dtype``, or when
        that is None as scikit-learn's MLP does (float32 stays float32, the rest float64)."""
        wanted: Any = [np.float64, np.float32] if dtype is None else dtype
        return validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"], dtype=wanted, order="C",
                             **kwargs)

    # ------------------------------------------------------------ scikit-learn's view of the weights
    def _dense_layers(self) -> list[Dense]:
        if "network_" not in self.__dict__:
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet: it has no coefs_ "
                                 "or intercepts_ before fit")
        return [layer for layer in self.network_.layers if isinstance(layer, Dense)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrix of each layer in scikit-learn's layout ``(d_in, d_out)``: views
        ``W.T`` of the network's weights (writing into them changes the network)."""
        return [layer.params["W"].T for layer in self._dense_layers()]

    @coefs_.setter
    def coefs_(self, value: list[Any]) -> None:
        self._assign("coefs_", "W", value, transpose=True)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vector of each layer, ``(d_out,)``: views of the network's biases."""
        return [layer.params["b"] for layer in self._dense_layers()]

    @intercepts_.setter
    def intercepts_(self, value: list[Any]) -> None:
        self._assign("intercepts_", "b", value, transpose=False)

    def _assign(self, name: str, key: str, value: list[Any], *, transpose: bool) -> None:
        """Copy ``value`` (one array per layer, scikit-learn's layout) into the network."""
        layers = self._dense_layers()
        if len(value) != len(layers):
            raise ConfigError(f"{name} must hold one array per layer ({len(layers)}); got {len(value)}")
        for i, (layer, array) in enumerate(zip(layers, value, strict=True)):
            target = layer.params[key].T if transpose else layer.params[key]
            array = np.asarray(array)
            if array.shape != target.shape:
                raise ConfigError(f"{name}[{i}] must have shape {target.shape}; got {array.shape}")
            target[...] = array

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
