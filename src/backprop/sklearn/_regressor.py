"""``MLPRegressor``: one or more real targets; squared error, Poisson, and backprop's extras."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from ..errors import ConfigError
from ..losses import Huber, Loss, Poisson, Quadratic
from ._base import BaseMLP, has_partial_fit, set_params_from
from ._docs import ATTRIBUTES, EXTRA_PARAMETERS, PARAMETERS

LOSS_NAMES = ("squared_error", "poisson", "quadratic", "huber")
_KINDS = {Quadratic: "quadratic", Huber: "huber", Poisson: "poisson"}


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = f"""A multi-layer perceptron regressor trained by backprop: scikit-learn's
    :class:`~sklearn.neural_network.MLPRegressor` (same parameters, attributes and numbers),
    with backprop's engines underneath.

    The output layer is linear (for ``loss="poisson"`` its output is the log of the mean), one
    unit per target. ``y`` may be 1-D (predictions are then 1-D, as they are for a single
    column) or ``(n_samples, n_targets)``. Each epoch trains through :func:`backprop.fit`
    (see :mod:`backprop.sklearn`).

    Parameters
    ----------
    {PARAMETERS.strip()}
    loss : {{"squared_error", "poisson", "quadratic", "huber"}} or backprop.Loss, \
default="squared_error"
        ``"squared_error"``: scikit-learn's half squared error; it trains on ½‖a − y‖² per sample
        (:class:`backprop.Quadratic`, as scikit-learn's gradient does) and reports ``loss_`` averaged
        over the targets, as scikit-learn does. ``"poisson"``: half the Poisson deviance with a log
        link (:class:`backprop.losses.Poisson`; ``y >= 0``). backprop's extras: ``"quadratic"``
        (½‖a − y‖², reported as it is) and ``"huber"`` (:class:`backprop.Huber`, δ = 1; pass
        ``backprop.Huber(delta=...)`` for another δ).
    {EXTRA_PARAMETERS.strip()}

    Attributes
    ----------
    {ATTRIBUTES.strip()}

    Examples
    --------
    >>> import numpy as np
    >>> from backprop.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor((32,), "tanh", learning_rate_init=0.01, random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).predict(X[:3]).shape
    (3,)
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=1e-4,
                 batch_size="auto", learning_rate="constant", learning_rate_init=1e-3, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 loss="squared_error", dropout=0.0, dtype=None):
        set_params_from(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)``: a fresh network, or with ``warm_start`` the current one.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is their weighted mean.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` from the current weights (``y`` with as many targets as at first).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_loss(self) -> None:
        loss = self.loss
        if not ((isinstance(loss, Loss) and type(loss) in _KINDS) or (isinstance(loss, str) and loss in LOSS_NAMES)):
            raise ConfigError(f"loss must be one of {list(LOSS_NAMES)} (a name, or a backprop Quadratic, Huber "
                              f"or Poisson); got {loss!r}")

    def _validate_input(self, X, y, *, first, dtype, classes=None):
        X, y = self._validate_xy(X, y, reset=first, dtype=dtype, multi_output=True, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        targets = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(X.dtype)
        if not first and targets.shape[1] != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} target columns, as when the estimator was first "
                             f"fitted; got shape {y.shape}")
        return X, targets, y

    def _head(self, targets):
        """The loss, output layer, output width, output activation name and loss scale."""
        loss, k = self.loss, targets.shape[1]
        if isinstance(loss, Loss):
            kind, instance = _KINDS[type(loss)], copy.deepcopy(loss)
        else:
            kind, instance = loss, {"squared_error": Quadratic, "quadratic": Quadratic, "huber": Huber,
                                    "poisson": Poisson}[loss]()
        # scikit-learn reports its squared error averaged over the targets (its gradient is not)
        scale = 1.0 / k if kind == "squared_error" else 1.0
        return instance, None, k, "exp" if kind == "poisson" else "identity", scale

    def _stratified_split(self, y: np.ndarray) -> bool:
        return False

    def _predictions(self, a: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, n_outputs_)`` → predictions (``exp`` for the Poisson link)."""
        return np.exp(a) if isinstance(self._loss, Poisson) else a

    def _score_outputs(self, a: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        return float(r2_score(y, self._predictions(a), sample_weight=sample_weight))

    def predict(self, X):
        """Predicted targets, of the network's dtype: ``(n_samples,)`` for one target, else
        ``(n_samples, n_targets)``."""
        p = self._predictions(self._outputs(X))
        return p[:, 0] if p.shape[1] == 1 else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
