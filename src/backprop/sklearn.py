"""scikit-learn estimators backed by backprop: :class:`MLPClassifier` and :class:`MLPRegressor`.

They follow scikit-learn's conventions (``fit``/``predict``/``score``, ``get_params``/
``set_params``, ``clone``, pipelines, grid search, ``partial_fit``, ``sample_weight``) and
pass its estimator checks. This module imports scikit-learn; ``import backprop`` does not
import this module, so backprop itself never needs scikit-learn
(``pip install backprop[sklearn]``).

How the settings map onto backprop objects
------------------------------------------
* ``hidden_layer_sizes=(h_1, ..., h_m)``, ``activation`` (one name, or one per hidden layer),
  ``dropout``, ``dtype``, ``random_state`` → the :class:`~backprop.Network`
  ``[Dense(d_0, h_1), act_1, (Dropout), ..., Dense(h_m, k), (output activation)]``, seeded
  from ``random_state``; the fitted network is ``network_``.
* ``loss`` → :class:`~backprop.CrossEntropy` (softmax on k = n_classes logits),
  :class:`~backprop.BinaryCrossEntropy` (one logit for two classes, else k),
  :class:`~backprop.Quadratic` (classifier: the textbook's k sigmoid outputs on one-hot
  targets; regressor: a linear output), :class:`~backprop.Huber` (linear output).
* ``solver``, ``learning_rate_init``, ``momentum``, ``nesterov``, ``alpha`` →
  :class:`~backprop.SGD` (momentum, Nesterov), :class:`~backprop.RMSprop` (momentum),
  :class:`~backprop.Adam`, :class:`~backprop.AdamW`, with ``lr=learning_rate_init`` and
  ``weight_decay=alpha`` (weight matrices only, never biases).
* ``max_iter``, ``batch_size``, ``shuffle`` → the epochs and shuffled mini-batches of the
  training loop.
* ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``, ``tol`` →
  :class:`~backprop.EarlyStopping` on the loss of a held-out split (``patience``,
  ``min_delta``), which restores the best epoch's weights; per-epoch numbers go to a
  :class:`~backprop.History` (``history_``).

One training step is backprop's mini-batch step (``Network.forward_unchecked``,
``Loss.grad_unchecked``, ``Network.backward_unchecked``, ``Optimizer.step``), written out
here rather than calling :func:`backprop.fit` because it also weighs the samples.

Sample weights
--------------
With ``sample_weight`` the cost of a mini-batch B is the **weighted mean**
``C_B = Σ_{n∈B} w_n C_n / Σ_{n∈B} w_n`` (scikit-learn's MLP uses the same per-batch
normalisation). The loss's gradient rows ``∇C_n / |B|`` are scaled by
``w_n |B| / Σ_{n∈B} w_n`` before backpropagation, which gives exactly ``∇C_B``. For
full-batch training (``batch_size >= n_samples``) integer weights are therefore the same as
repeating samples and zero weights the same as dropping them; with shuffled mini-batches
the batches themselves differ, so the two agree only approximately. A mini-batch whose
weights are all zero contributes nothing: no optimizer step is taken for it.
``loss_curve_`` holds the weighted mean over each epoch.

Dtypes
------
The network computes in ``dtype`` (``"float32"`` by default) from end to end: its
parameters, activations, ``predict_proba`` and the regressor's ``predict`` are of that dtype.
Following scikit-learn's convention, input of any numeric dtype (float64, integers, lists,
DataFrames) is converted **once**, at the boundary of ``fit``/``partial_fit``/``predict``, to
``dtype``. This differs from :class:`backprop.Network`, which refuses a lossy conversion
(float64 into float32) rather than performing it silently.

Errors
------
Invalid settings raise ``ValueError`` from ``fit`` (never from ``__init__``, as scikit-learn
requires). A training loss that becomes NaN or infinite raises
:class:`backprop.errors.DivergenceError` (a ``FloatingPointError``): lower
``learning_rate_init``.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
import warnings
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError as err:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("backprop.sklearn needs scikit-learn: pip install 'backprop[sklearn]' "
                      "(or pip install scikit-learn)") from err
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted

from .activations import ACTIVATIONS, Sigmoid, Softmax
from .errors import DivergenceError
from .layers import Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, CrossEntropy, Huber, Loss, Quadratic
from .network import Network
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop
from .training import EarlyStopping, History
from .training.metrics import predicted_classes

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6

    def _validate_data(estimator, /, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


__all__ = ["MLPClassifier", "MLPRegressor"]

_SOLVERS = ("adam", "adamw", "rmsprop", "sgd")
_DTYPES = ("float32", "float64")
#: scikit-learn's activation names that backprop spells differently
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
#: hidden activations that get He initialisation; the others get Glorot
_RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu")


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as a float64 array ``(n,)`` of finite weights >= 0, not all zero."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n, sample_weight, dtype=np.float64)
    else:
        sw = check_array(sample_weight, ensure_2d=False, dtype=np.float64, order="C",
                         input_name="sample_weight")
    if sw.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample; "
                         f"got shape {sw.shape}")
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight must be finite; it holds NaN or infinite values")
    if (sw < 0).any():
        raise ValueError(f"sample_weight must be >= 0; got a minimum of {sw.min()}")
    if not sw.sum() > 0:
        raise ValueError("sample_weight must contain at least one non-zero weight; all are zero")
    return sw


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: settings, network, training loop."""

    #: loss names this estimator accepts, and the loss classes (for instances)
    _loss_classes: dict[str, type[Loss]] = {}

    def __init__(self, hidden_layer_sizes, activation, *, loss, solver, alpha, batch_size,
                 learning_rate_init, max_iter, shuffle, random_state, momentum, nesterov,
                 early_stopping, validation_fraction, n_iter_no_change, tol, dropout, dtype,
                 verbose):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.momentum = momentum
        self.nesterov = nesterov
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dropout = dropout
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------ settings
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError("hidden_layer_sizes must be a tuple of positive integers, e.g. "
                             f"(100,); got {sizes!r}") from None
        if not all(_is_int(h) and h >= 1 for h in sizes):
            raise ValueError(f"hidden_layer_sizes must hold positive integers; got {sizes!r}")
        return tuple(int(h) for h in sizes)

    def _activations(self, n_hidden: int) -> list[str]:
        acts = self.activation
        names = [acts] * n_hidden if isinstance(acts, str) else list(acts)
        if len(names) != n_hidden:
            raise ValueError(f"activation must be one name, or a list of one name per hidden layer "
                             f"({n_hidden}); got {len(names)} names: {acts!r}")
        known = sorted(set(ACTIVATIONS) | set(_ACTIVATION_ALIASES))
        out = []
        for name in names:
            name = _ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else name
            if name not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {known}; got {name!r}")
            out.append(name)
        return out

    def _validate_hyperparameters(self) -> None:
        """Check every setting (scikit-learn validates in ``fit``, never in ``__init__``)."""
        self._activations(len(self._hidden_sizes()))
        self._make_loss()
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {list(_SOLVERS)}; got {self.solver!r}")
        if not (_is_real(self.learning_rate_init) and self.learning_rate_init > 0):
            raise ValueError(f"learning_rate_init must be a finite number > 0; "
                             f"got {self.learning_rate_init!r}")
        if not (_is_real(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0; got {self.alpha!r}")
        if self.momentum is not None and not (_is_real(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be None or a number in [0, 1); got {self.momentum!r}")
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov must be True or False; got {self.nesterov!r}")
        if not (self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or a positive integer; "
                             f"got {self.batch_size!r}")
        if not (_is_int(self.max_iter) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer; got {self.max_iter!r}")
        if not (_is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be a number in (0, 1); "
                             f"got {self.validation_fraction!r}")
        if not (_is_int(self.n_iter_no_change) and self.n_iter_no_change >= 1):
            raise ValueError(f"n_iter_no_change must be a positive integer; "
                             f"got {self.n_iter_no_change!r}")
        if not (_is_real(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0; got {self.tol!r}")
        if not (_is_real(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1); got {self.dropout!r}")
        self._compute_dtype()

    def _compute_dtype(self) -> np.dtype:
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {self.dtype!r}")
        return dtype

    def _make_loss(self) -> Loss:
        loss = self.loss
        if isinstance(loss, Loss):
            if not isinstance(loss, tuple(self._loss_classes.values())):
                raise ValueError(f"loss must be one of {list(self._loss_classes)} (a name or a "
                                 f"backprop loss of those kinds); got {loss!r}")
            return copy.deepcopy(loss)
        if not isinstance(loss, str) or loss not in self._loss_classes:
            raise ValueError(f"loss must be one of {list(self._loss_classes)}; got {loss!r}")
        return self._loss_classes[loss]()

    def _make_optimizer(self) -> Optimizer:
        lr, wd = float(self.learning_rate_init), float(self.alpha)
        if self.solver == "adam":
            return Adam(lr=lr, weight_decay=wd)
        if self.solver == "adamw":
            return AdamW(lr=lr, weight_decay=wd)
        if self.solver == "rmsprop":
            mu = 0.0 if self.momentum is None else float(self.momentum)
            return RMSprop(lr=lr, momentum=mu, weight_decay=wd)
        mu = 0.9 if self.momentum is None else float(self.momentum)
        return SGD(lr=lr, momentum=mu, nesterov=bool(self.nesterov) and mu > 0, weight_decay=wd)

    def _build_network(self, n_features: int, n_outputs: int, output: Layer | None,
                       seed: int, dtype: np.dtype) -> Network:
        sizes = self._hidden_sizes()
        layers: list[Layer] = []
        d_in = n_features
        for width, name in zip(sizes, self._activations(len(sizes)), strict=True):
            init = "he_uniform" if name in _RELU_LIKE else "glorot_uniform"
            layers += [Dense(d_in, width, init=init), ACTIVATIONS[name]()]
            if self.dropout:
                layers.append(Dropout(float(self.dropout)))
            d_in = width
        layers.append(Dense(d_in, n_outputs, init="glorot_uniform"))
        if output is not None:
            layers.append(output)
        return Network(layers, seed=seed, dtype=dtype)

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"batch_size={self.batch_size} is larger than the number of training "
                          f"samples ({n}); using batch_size={n}", UserWarning, stacklevel=5)
            return n
        return int(self.batch_size)

    # ------------------------------------------------------------ training
    def _fit(self, X, y, sample_weight, *, incremental: bool, classes=None):
        first = not (incremental and hasattr(self, "network_"))
        self._validate_hyperparameters()
        if first:
            dtype, loss = self._compute_dtype(), self._make_loss()
        else:
            dtype, loss = self.network_.dtype, self._loss
        X, y = self._validate_xy(X, y, reset=first, dtype=dtype)
        sw = _check_sample_weight(sample_weight, X.shape[0])
        if first:
            n_outputs, output = self._init_targets(y, classes, loss)
            rs = check_random_state(self.random_state)
            seed, self._seed = (int(s) for s in rs.randint(np.iinfo(np.int32).max, size=2))
            self._loss = loss
            self.network_ = self._build_network(X.shape[1], n_outputs, output, seed, dtype)
            self._optimizer = self._make_optimizer()
            self._rng = np.random.default_rng(self._seed)
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.history_ = History()
        T, labels = self._targets(y, loss, dtype, self.network_.output_width)

        val = None
        if self.early_stopping and not incremental:
            train, held = train_test_split(np.arange(X.shape[0]), random_state=self._seed,
                                           test_size=self.validation_fraction, stratify=labels)
            for part, name in ((train, "training"), (held, "validation")):
                if sw is not None and not sw[part].sum() > 0:
                    raise ValueError(f"the sample weights of the {name} split are all zero; "
                                     "change random_state or validation_fraction")
            val = (X[held], T[held], None if labels is None else labels[held],
                   None if sw is None else sw[held])
            X, T = X[train], T[train]
            labels = None if labels is None else labels[train]
            sw = None if sw is None else sw[train]
        epochs = 1 if incremental else int(self.max_iter)
        self._run_epochs(X, T, labels, sw, epochs, val)
        return self

    def _run_epochs(self, X, T, labels, sw, epochs: int, val) -> None:
        """``epochs`` passes of mini-batch training over ``(X, T)`` weighted by ``sw``.

        ``X`` ``(n, d_0)`` and ``T`` (targets prepared by the loss) are of the network's dtype;
        ``labels`` ``(n,)`` are class indices (classifier) or None; ``sw`` ``(n,)`` float64 or
        None; ``val`` is ``(X_val, T_val, labels_val, sw_val)`` for early stopping, or None.
        """
        net, loss, opt, history = self.network_, self._loss, self._optimizer, self.history_
        params, grads = net.parameters(), net.gradients()
        n = X.shape[0]
        bs = self._batch_size(n)
        total_weight = float(sw.sum()) if sw is not None else float(n)
        stopper = None
        if val is not None:
            stopper = EarlyStopping("val_loss", patience=int(self.n_iter_no_change),
                                    min_delta=float(self.tol), restore_best=True)
            stopper.on_train_begin(net, history)
        for _ in range(epochs):
            start = time.perf_counter()
            lr = opt.lr
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            total_loss = total_correct = 0.0
            for lo in range(0, n, bs):
                idx = order[lo:lo + bs]
                xb, tb = X[idx], T[idx]
                a = net.forward_unchecked(xb, train=True)
                g = loss.grad_unchecked(a, tb)  # rows ∇C_n / |B|
                if sw is None:
                    batch_loss = loss.value_unchecked(a, tb) * len(idx)
                    wb = None
                else:
                    wb = sw[idx]
                    w_sum = float(wb.sum())
                    if w_sum == 0.0:
                        continue  # nothing to learn from this batch
                    batch_loss = float(loss.per_sample_unchecked(a, tb) @ wb)
                    g *= (wb * (len(idx) / w_sum)).astype(g.dtype)[:, None]  # w_n |B| / Σ w
                if not math.isfinite(batch_loss):
                    raise DivergenceError(
                        f"the training loss became {batch_loss} at iteration {self.n_iter_ + 1}; "
                        f"try a smaller learning_rate_init (now {self.learning_rate_init})"
                    )
                net.backward_unchecked(g, input_grad=False)
                opt.step(params, grads)
                total_loss += batch_loss
                if labels is not None:
                    hit = predicted_classes(a, loss) == labels[idx]
                    total_correct += float(hit @ wb) if wb is not None else int(hit.sum())
            self.n_iter_ += 1
            epoch_loss = total_loss / total_weight
            logs: dict[str, Any] = {
                "loss": epoch_loss,
                "accuracy": total_correct / total_weight if labels is not None else None,
            }
            if val is not None:
                logs["val_loss"], logs["val_accuracy"] = self._evaluate(*val)
            self.loss_curve_.append(epoch_loss)
            self.loss_ = epoch_loss
            history.epoch.append(self.n_iter_)
            history.loss.append(epoch_loss)
            history.accuracy.append(logs["accuracy"])
            if val is not None:
                history.val_loss.append(logs["val_loss"])
                history.val_accuracy.append(logs["val_accuracy"])
            history.lr.append(lr)
            history.seconds.append(time.perf_counter() - start)
            if self.verbose:
                shown = f", validation loss = {logs['val_loss']:.8f}" if val is not None else ""
                print(f"Iteration {self.n_iter_}, loss = {epoch_loss:.8f}{shown}")
            if stopper is not None:
                stopper.on_epoch_end(self.n_iter_, logs, net, history)
                if history.stop_training:
                    if self.verbose:
                        print(f"Validation loss did not improve by more than tol={self.tol} for "
                              f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                    break
        if stopper is not None:
            stopper.on_train_end(net, history)
            history.stop_training = False
            if self.verbose and history.restored_epoch is not None:
                print(f"Restored the weights of iteration {history.restored_epoch}, "
                      "the best validation loss")

    def _evaluate(self, X, T, labels, sw) -> tuple[float, float | None]:
        """The (weighted) mean loss and accuracy on a held-out split, in inference mode."""
        a = self.network_.predict(X)
        costs = self._loss.per_sample_unchecked(a, T)
        w = np.ones(len(costs)) if sw is None else sw
        val_loss = float(costs @ w / w.sum())
        if labels is None:
            return val_loss, None
        return val_loss, float((predicted_classes(a, self._loss) == labels) @ w / w.sum())

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return _validate_data(self, X, reset=False, dtype=self.network_.dtype)


_COMMON_DOC = """
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer, first to last; ``()`` gives no hidden layer.
    activation : str or list of str, default="relu"
        Activation of the hidden layers: one name for all, or one per hidden layer. Names:
        ``"relu"``, ``"tanh"``, ``"sigmoid"`` (or ``"logistic"``), ``"leaky_relu"``,
        ``"elu"``, ``"gelu"``, ``"softplus"``, ``"identity"``. ReLU-like layers are
        He-initialised, the others Glorot-initialised.
    solver : {"adam", "sgd", "rmsprop", "adamw"}, default="adam"
        The optimizer: :class:`backprop.Adam`, :class:`backprop.SGD`,
        :class:`backprop.RMSprop` or :class:`backprop.AdamW`.
    alpha : float, default=1e-4
        Weight decay of the weight matrices (never the biases), the optimizer's
        ``weight_decay``: an L2 term ``g + alpha·w`` for sgd, rmsprop and adam, decoupled for
        adamw. Unlike scikit-learn's MLP it is not divided by the batch size.
    batch_size : int or "auto", default="auto"
        Samples per mini-batch; ``"auto"`` is ``min(200, n_samples)``. A larger value is
        clipped to ``n_samples`` with a warning.
    learning_rate_init : float, default=1e-3
        The (constant) learning rate η of the optimizer.
    max_iter : int, default=200
        Epochs: passes over the training data (fewer with ``early_stopping``).
    shuffle : bool, default=True
        Visit the samples in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, dropout, the shuffling and the validation split.
    momentum : float or None, default=None
        Momentum μ of "sgd" and "rmsprop"; None means 0.9 for "sgd" and 0 for "rmsprop".
        Ignored by "adam" and "adamw".
    nesterov : bool, default=True
        Nesterov momentum; used by "sgd" when its momentum is > 0.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for classification) and
        stop when the validation loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs (:class:`backprop.EarlyStopping`); the best epoch's weights are restored.
        Not used by ``partial_fit``.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        The smallest decrease of the validation loss that counts as an improvement.
    dropout : float, default=0.0
        Dropout rate after each hidden activation while training (:class:`backprop.Dropout`).
    dtype : {"float32", "float64"}, default="float32"
        Dtype of the network's parameters and computation. Input of another numeric dtype is
        converted once, at the boundary, as scikit-learn estimators do.
    verbose : bool, default=False
        Print the loss after each epoch.
"""

_ATTRIBUTES_DOC = """
    network_ : backprop.Network
        The fitted network; its input width is ``n_features_in_``.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during ``fit``, when ``X`` has string column names.
    n_iter_ : int
        Epochs run so far (``partial_fit`` adds one per call).
    loss_curve_ : list of float
        The (weighted) mean training loss of each epoch, without the weight decay term.
    loss_ : float
        The last entry of ``loss_curve_``.
    history_ : backprop.History
        Per-epoch loss, accuracy (classifier), validation loss and accuracy (with early
        stopping), learning rate and seconds; ``history_.restored_epoch`` is the epoch whose
        weights early stopping restored.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""A multi-layer perceptron classifier trained by backprop.

    Binary and multiclass; class labels may be of any type (strings too), encoded with
    :class:`~sklearn.preprocessing.LabelEncoder`. Multilabel ``y`` (2-D) is not supported.
    See :mod:`backprop.sklearn` for how the settings map onto backprop objects, how sample
    weights enter the loss, and the dtype convention.

    Parameters
    ----------
    {_COMMON_DOC.strip()}
    loss : {{"cross_entropy", "binary_cross_entropy", "quadratic"}} or backprop.Loss, \
default="cross_entropy"
        ``"cross_entropy"``: softmax cross-entropy on k = n_classes logits.
        ``"binary_cross_entropy"``: sigmoid cross-entropy; one logit for two classes, else
        k one-vs-rest logits (``predict_proba`` normalises their sigmoids to sum to 1).
        ``"quadratic"``: the textbook's ½‖a − y‖² on k sigmoid outputs and one-hot targets
        (``predict_proba`` normalises the outputs).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    {_ATTRIBUTES_DOC.strip()}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from backprop.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0)
    >>> clf.fit(X / 16, y).predict_proba(X[:2] / 16).shape
    (2, 10)
    """

    _loss_classes = {"cross_entropy": CrossEntropy, "binary_cross_entropy": BinaryCrossEntropy,
                     "quadratic": Quadratic}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="cross_entropy",
                 solver="adam", alpha=1e-4, batch_size="auto", learning_rate_init=1e-3,
                 max_iter=200, shuffle=True, random_state=None, momentum=None, nesterov=True,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 dropout=0.0, dtype="float32", verbose=False):
        super().__init__(
            hidden_layer_sizes, activation, loss=loss, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate_init=learning_rate_init, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, momentum=momentum, nesterov=nesterov,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, tol=tol, dropout=dropout, dtype=dtype,
            verbose=verbose)

    def fit(self, X, y, sample_weight=None):
        """Train a fresh network on ``(X, y)`` for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, converted once to ``dtype``.
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the loss is their weighted mean (see :mod:`backprop.sklearn`).

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of training on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class label that may ever appear. Required on the first call (unless the
            estimator was fitted before); on later calls it must equal ``classes_`` if given.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        if hasattr(self, "network_") and classes is not None:
            if not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={classes!r} differs from the classes of the first "
                                 f"call to partial_fit, {self.classes_!r}")
        elif not hasattr(self, "network_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit "
                             "(every label that y may contain)")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _validate_xy(self, X, y, *, reset, dtype):
        shape = getattr(y, "shape", None)
        if shape is None and isinstance(y, (list, tuple)):
            try:
                shape = np.shape(y)
            except ValueError:  # ragged: validate_data words the error
                pass
        shape = tuple(shape) if shape is not None else ()
        if len(shape) == 2 and shape[1] > 1:
            raise ValueError(f"{type(self).__name__} supports binary and multiclass y of shape "
                             f"(n_samples,); got shape {shape} (multilabel and multi-output "
                             "classification are not supported)")
        X, y = _validate_data(self, X, y, reset=reset, dtype=dtype)
        check_classification_targets(y)
        return X, y

    def _init_targets(self, y, classes, loss):
        """Set ``classes_``; return the output width and output layer for ``loss``."""
        encoder = LabelEncoder().fit(y if classes is None else classes)
        n_classes = len(encoder.classes_)
        if n_classes < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"got 1 class ({encoder.classes_[0]!r})")
        self._label_encoder, self.classes_ = encoder, encoder.classes_
        if isinstance(loss, BinaryCrossEntropy) and n_classes == 2:
            return 1, None
        return n_classes, (Sigmoid() if isinstance(loss, Quadratic) else None)

    def _targets(self, y, loss, dtype, n_outputs):
        labels = self._label_encoder.transform(y).astype(np.intp)
        return loss.prepare(labels, (len(labels), n_outputs), dtype), labels

    def _probabilities(self, a: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, k)`` → probabilities ``(n, n_classes)``, rows summing to 1."""
        if isinstance(self._loss, CrossEntropy):
            return Softmax.f(a)
        p = Sigmoid.f(a) if isinstance(self._loss, BinaryCrossEntropy) else a
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        total = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = p / total
        p[total[:, 0] == 0] = 1 / p.shape[1]  # every sigmoid underflowed: no preference
        return p

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), of the network's dtype
            Column j is the probability of ``classes_[j]``; rows sum to 1.
        """
        X = self._check_X(X)
        return self._probabilities(self.network_.predict(X))

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``: the arg-max of ``predict_proba``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""A multi-layer perceptron regressor trained by backprop.

    The output layer is linear (no activation), one unit per target. ``y`` may be 1-D
    (predictions are then 1-D) or 2-D ``(n_samples, n_targets)`` (predictions of that shape).
    Targets are not rescaled: standardise them (e.g. with
    :class:`~sklearn.compose.TransformedTargetRegressor`) when they are far from unit scale.
    See :mod:`backprop.sklearn` for how the settings map onto backprop objects, how sample
    weights enter the loss, and the dtype convention.

    Parameters
    ----------
    {_COMMON_DOC.strip()}
    loss : {{"quadratic", "huber"}} or backprop.Loss, default="quadratic"
        ``"quadratic"``: ½‖a − y‖² per sample; ``"huber"``: :class:`backprop.Huber` with
        δ = 1 (pass ``backprop.Huber(delta=...)`` for another δ).

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
    {_ATTRIBUTES_DOC.strip()}

    Examples
    --------
    >>> import numpy as np
    >>> from backprop.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor((32,), "tanh", learning_rate_init=0.01, random_state=0)
    >>> reg.fit(X, X[:, 0] ** 2).predict(X[:3]).shape
    (3,)
    """

    _loss_classes = {"quadratic": Quadratic, "huber": Huber}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="quadratic",
                 solver="adam", alpha=1e-4, batch_size="auto", learning_rate_init=1e-3,
                 max_iter=200, shuffle=True, random_state=None, momentum=None, nesterov=True,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 dropout=0.0, dtype="float32", verbose=False):
        super().__init__(
            hidden_layer_sizes, activation, loss=loss, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate_init=learning_rate_init, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, momentum=momentum, nesterov=nesterov,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, tol=tol, dropout=dropout, dtype=dtype,
            verbose=verbose)

    def fit(self, X, y, sample_weight=None):
        """Train a fresh network on ``(X, y)`` for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs, converted once to ``dtype``.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Real-valued targets, converted once to ``dtype``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the loss is their weighted mean (see :mod:`backprop.sklearn`).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of training on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            As many targets as on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_xy(self, X, y, *, reset, dtype):
        return _validate_data(self, X, y, reset=reset, dtype=dtype, multi_output=True,
                              y_numeric=True)

    def _init_targets(self, y, classes, loss):
        self._y_1d = y.ndim == 1
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return self.n_outputs_, None

    def _targets(self, y, loss, dtype, n_outputs):
        y = y.reshape(-1, 1) if y.ndim == 1 else y
        if y.shape[1] != n_outputs:
            raise ValueError(f"y must have {n_outputs} target columns, as when the estimator "
                             f"was first fitted; got shape {y.shape}")
        return loss.prepare(y.astype(dtype, copy=False), y.shape, dtype), None

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets), of the network's dtype
            1-D when the estimator was fitted on a 1-D ``y``.
        """
        X = self._check_X(X)
        a = self.network_.predict(X)
        return a[:, 0] if self._y_1d else a

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
