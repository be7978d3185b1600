"""``MLPClassifier``: binary, multiclass and multilabel classification, with ``class_weight``."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..activations import Sigmoid, Softmax
from ..errors import ConfigError
from ..losses import BinaryCrossEntropy, CrossEntropy, Loss, Quadratic
from ._base import BaseMLP, has_partial_fit, set_params_from
from ._docs import ATTRIBUTES, EXTRA_PARAMETERS, PARAMETERS

#: the classifier's ``loss`` names, and the kind of each backprop loss instance
LOSS_NAMES = ("log_loss", "cross_entropy", "binary_cross_entropy", "quadratic")
_KINDS = {CrossEntropy: "cross_entropy", BinaryCrossEntropy: "binary_cross_entropy", Quadratic: "quadratic"}
_TARGET_TYPES = ("binary", "multiclass", "multilabel-indicator")


def _kind(loss: str | Loss) -> str:
    """The name of the classifier's ``loss`` (its value, or the kind of a backprop instance)."""
    return _KINDS[type(loss)] if isinstance(loss, Loss) else str(loss)


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = f"""A multi-layer perceptron classifier trained by backprop: scikit-learn's
    :class:`~sklearn.neural_network.MLPClassifier` (same parameters, attributes and numbers),
    with backprop's engines underneath and ``class_weight``.

    Binary, multiclass and multilabel (indicator matrix) targets; labels of any type. Each epoch
    trains through :func:`backprop.fit` (see :mod:`backprop.sklearn`).

    Parameters
    ----------
    {PARAMETERS.strip()}
    loss : {{"log_loss", "cross_entropy", "binary_cross_entropy", "quadratic"}} or backprop.Loss, \
default="log_loss"
        backprop's extra. ``"log_loss"`` is scikit-learn's choice: softmax cross-entropy for
        multiclass, one logistic output for binary, one per label for multilabel targets.
        ``"cross_entropy"``: softmax on n_classes logits (binary too); ``"binary_cross_entropy"``:
        one-vs-rest sigmoids (``predict_proba`` normalises them for multiclass);
        ``"quadratic"``: the textbook's ½‖a − y‖² on sigmoid outputs and one-hot targets.
    class_weight : dict, list of dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``: ``{{label: weight}}``, or
        ``"balanced"``, ``n_samples / (n_classes · bincount(y))``, as
        :func:`sklearn.utils.class_weight.compute_sample_weight` computes them. ``partial_fit``
        refuses "balanced" (one call's batch does not give the class frequencies).
    {EXTRA_PARAMETERS.strip()}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (``arange(n_labels)`` for multilabel targets).
    {ATTRIBUTES.strip()}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from backprop.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0)
    >>> clf.fit(X / 16, y).predict_proba(X[:2] / 16).shape
    (2, 10)
    """

    _score_is_accuracy = True

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=1e-4,
                 batch_size="auto", learning_rate="constant", learning_rate_init=1e-3, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 loss="log_loss", class_weight=None, dropout=0.0, dtype=None):
        set_params_from(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)``: a fresh network, or with ``warm_start`` the current one.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each batch's loss is their weighted mean.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(has_partial_fit)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)`` from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            Every label y may ever hold; required on the first call, and equal to ``classes_``
            when given later.

        Returns
        -------
        self : MLPClassifier
        """
        fitted = hasattr(self, "classes_") and hasattr(self, "network_")
        if not fitted and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if fitted and classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"classes={classes!r} is not the same as on the last call to partial_fit: it "
                             f"differs from classes_ = {self.classes_!r}")
        return self._fit(X, y, sample_weight, incremental=True, classes=None if fitted else classes)

    # ------------------------------------------------------------ training
    def _check_loss(self) -> None:
        loss = self.loss
        if not ((isinstance(loss, Loss) and type(loss) in _KINDS) or (isinstance(loss, str) and loss in LOSS_NAMES)):
            raise ConfigError(f"loss must be one of {list(LOSS_NAMES)} (a name, or a backprop CrossEntropy, "
                              f"BinaryCrossEntropy or Quadratic); got {loss!r}")
        cw = self.class_weight
        if not (cw is None or isinstance(cw, (dict, list)) or (isinstance(cw, str) and cw == "balanced")):
            raise ConfigError(f"class_weight must be None, 'balanced', a dict or a list of dicts; got {cw!r}")

    def _validate_input(self, X, y, *, first, dtype, classes=None):
        X, y = self._validate_xy(X, y, reset=first, dtype=dtype, multi_output=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if type_of_target(y) not in _TARGET_TYPES:
            raise ValueError(f"{type(self).__name__} supports binary, multiclass and multilabel-indicator y; "
                             f"got {type_of_target(y)} targets")
        if first:
            self._set_classes(y, classes)
        else:
            self._check_classes(y)
        if self._y_type == "multilabel-indicator":
            return X, y.astype(X.dtype), y
        if len(self.classes_) == 1 and _kind(self.loss) == "quadratic":
            # one class: one sigmoid output trained to 0, as log_loss trains it (scikit-learn's
            # binarized target); predict_proba's first column, 1 - p, is then classes_[0]'s
            return X, np.zeros((len(y), 1), X.dtype), y
        return X, np.searchsorted(self.classes_, y).astype(np.intp), y

    def _set_classes(self, y: np.ndarray, classes: Any) -> None:
        """``classes_`` from y, or from partial_fit's ``classes``, which must hold y's labels.
        A single class is accepted, as scikit-learn accepts it."""
        multilabel = type_of_target(y).startswith("multilabel")
        self._label_binarizer = LabelBinarizer().fit(y if classes is None or multilabel else classes)
        self.classes_ = self._label_binarizer.classes_
        self._y_type = self._label_binarizer.y_type_
        if classes is not None and not multilabel:
            self._refuse_unseen(unique_labels(y))

    def _check_classes(self, y: np.ndarray) -> None:
        """scikit-learn's rules for a call that continues: a warm start needs y's classes to be
        ``classes_``; ``partial_fit`` refuses classes not in ``classes_``."""
        if self._y_type == "multilabel-indicator" or y.ndim == 2:
            if y.ndim != 2 or y.shape[1] != len(self.classes_) or self._y_type != "multilabel-indicator":
                raise ValueError(f"y must be like the first call's: {self._y_type} targets with "
                                 f"{len(self.classes_)} classes; got {type_of_target(y)} of shape {y.shape}")
            return
        classes = unique_labels(y)
        if self.warm_start:
            if set(classes) != set(self.classes_):
                raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                                 f"call to fit. Previously got {self.classes_}, `y` has {classes}")
        else:
            self._refuse_unseen(classes)

    def _refuse_unseen(self, classes: np.ndarray) -> None:
        """ValueError when y's labels ``classes`` are not all in ``classes_``."""
        if len(np.setdiff1d(classes, self.classes_)):
            raise ValueError(f"`y` has classes not in `self.classes_` (unseen labels). `self.classes_` has "
                             f"{self.classes_}. 'y' has {classes}.")

    def _weights(self, sample_weight, y, incremental):
        cw = self.class_weight
        if cw is not None:
            if incremental and isinstance(cw, str):
                raise ValueError(f"class_weight={cw!r} is not supported for partial_fit: one call's y does not "
                                 "give the class frequencies; pass a dict, e.g. from "
                                 "sklearn.utils.class_weight.compute_class_weight('balanced', classes=..., y=...)")
            by_class = compute_sample_weight(cw, y)
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
            if not sample_weight.sum() > 0:
                raise ValueError("the weights (sample_weight × class_weight) are all zero")
        return super()._weights(sample_weight, y, incremental)

    def _head(self, targets):
        """The loss, output layer, output width, output activation name and loss scale."""
        loss = self.loss
        kind = _kind(loss)
        k, y_type = len(self.classes_), self._y_type
        if kind == "log_loss":
            kind = "cross_entropy" if y_type == "multiclass" else "binary_cross_entropy"
        instance = copy.deepcopy(loss) if isinstance(loss, Loss) else None
        if kind == "cross_entropy":
            if y_type == "multilabel-indicator":
                raise ConfigError("loss='cross_entropy' (one softmax over the classes) cannot fit multilabel "
                                  "targets; use 'log_loss' or 'binary_cross_entropy'")
            return instance or CrossEntropy(), None, k, "softmax", 1.0
        if kind == "binary_cross_entropy":
            return instance or BinaryCrossEntropy(), None, 1 if y_type == "binary" else k, "logistic", 1.0
        return instance or Quadratic(), Sigmoid(), k, "logistic", 1.0

    def _stratified_split(self, y: np.ndarray) -> bool:
        """Whether early stopping's validation split is stratified: yes for single-label
        targets (class indices ``y`` ``(n,)``), and then every class present needs 2 samples.

        Raises ValueError worded as :func:`sklearn.model_selection.train_test_split` words it
        for scikit-learn's MLP, which stratifies its binarized labels: a binary class is named
        ``'True'`` (``classes_[1]``) or ``'False'``, then by its label."""
        if y.ndim != 1:
            return False
        lonely = np.flatnonzero(np.bincount(y, minlength=len(self.classes_)) == 1)
        if lonely.size:
            labels = self.classes_[lonely].tolist()
            names = [str(bool(i)) for i in lonely] if len(self.classes_) == 2 else labels
            raise ValueError("The least populated classes in y have only 1 member, which is too few. The "
                             "minimum number of groups for any class cannot be less than 2. Classes with too "
                             f"few members are: {names} (the labels {labels}: early stopping holds out a "
                             "validation split stratified by class)")
        return True

    def _score_outputs(self, a: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> float:
        proba = self._probabilities(a)
        if self._y_type == "multilabel-indicator":
            return float(accuracy_score(y.astype(int), (proba > 0.5).astype(int), sample_weight=sample_weight))
        if len(self.classes_) == 1:  # every sample is of the one class (quadratic's y: (n, 1) zeros)
            y = np.zeros(len(y), np.intp)
        return float(accuracy_score(y, self._class_indices(proba), sample_weight=sample_weight))

    # ------------------------------------------------------------ prediction
    def _probabilities(self, a: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, n_outputs_)`` → ``(n, n_classes)`` probabilities."""
        if isinstance(self._loss, CrossEntropy):
            return Softmax.f(a)
        p = Sigmoid.f(a) if isinstance(self._loss, BinaryCrossEntropy) else a
        if p.shape[1] == 1:
            return np.hstack([1 - p, p])
        if self._y_type == "multilabel-indicator":
            return p
        total = p.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = p / total
        p[total[:, 0] == 0] = 1 / p.shape[1]  # every sigmoid underflowed: no preference
        return p

    def decision_function(self, X):
        """backprop's extra: the logits, the output layer's ``z = a Wᵀ + b`` before its link.

        Returns ``(n_samples,)`` for binary targets (positive: ``classes_[1]``), else
        ``(n_samples, n_classes)``; ``predict`` is their arg-max (multilabel: ``z > 0``).
        """
        check_is_fitted(self)
        z = self._logits(X)
        if z.shape[1] == 2 and self._y_type == "binary":  # two softmax logits or two sigmoids
            return z[:, 1] - z[:, 0]
        return z[:, 0] if z.shape[1] == 1 else z

    def _logits(self, X: Any) -> np.ndarray:
        """The output ``z`` of the last Dense layer ``(n, n_outputs_)`` (the network's output,
        or the input of its final Sigmoid for the quadratic loss)."""
        return self._outputs(X, skip_last=isinstance(self._loss, Quadratic))

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_samples, n_classes)``, of the network's dtype.

        Column j is the probability of ``classes_[j]``; rows sum to 1, except for multilabel
        targets, where each column is its label's own probability.
        """
        return self._probabilities(self._outputs(X))

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, shape ``(n_samples, n_classes)``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample ``(n_samples,)``, or for multilabel targets
        the indicator matrix ``(n_samples, n_classes)`` of probabilities above 0.5."""
        proba = self.predict_proba(X)
        if self._y_type == "multilabel-indicator":
            return self._label_binarizer.inverse_transform(proba)
        return self.classes_[self._class_indices(proba)]

    def _class_indices(self, proba: np.ndarray) -> np.ndarray:
        """The index in ``classes_`` of each row's most probable class ``(n,)``: its arg-max, or
        0 where y held a single class (the second column of ``predict_proba`` is then no
        class, as in scikit-learn)."""
        if len(self.classes_) == 1:
            return np.zeros(len(proba), np.intp)
        return proba.argmax(axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}
