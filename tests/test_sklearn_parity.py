"""backprop.sklearn against scikit-learn's own MLP: the same data and the same initial weights
give the same weights, to rounding (float64).

Each test builds both estimators with ``warm_start=True``, fits them once to create their
weights, writes the same random weights into both (``coefs_`` and ``intercepts_``: ours are
views of the network's buffer), then fits again from there with ``shuffle=False``, so the two
see the same batches in the same order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.7")  # MLP sample_weight: 1.7+

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from backprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y3 = make_classification(n_samples=50, n_features=6, n_informative=4, n_classes=3, random_state=0)
WEIGHTS = np.random.default_rng(0).uniform(0.2, 3.0, size=50)
# three targets: multiclass, binary (one logistic output), regression
PROBLEMS = {"multiclass": (MLPClassifier, SkClassifier, Y3), "binary": (MLPClassifier, SkClassifier, Y3 % 2),
            "regression": (MLPRegressor, SkRegressor, X[:, :2] @ np.array([1.0, -2.0]))}


def twins(ours_cls, theirs_cls, x, y, **params):
    """Both estimators, fitted once (max_iter=1), then set to the same random weights."""
    params = {"shuffle": False, "warm_start": True, "random_state": 0, **params}
    ours = ours_cls(dtype="float64", **{**params, "max_iter": 1}).fit(x, y)
    theirs = theirs_cls(**{**params, "max_iter": 1}).fit(x, y)
    rng = np.random.default_rng(1)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        b[...] = rng.uniform(-0.5, 0.5, b.shape)
        a[...] = b  # writes into our network's parameter buffer
    ours.set_params(**params)
    theirs.set_params(**params)
    return ours, theirs


def max_weight_difference(ours, theirs) -> float:
    pairs = zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True)
    return max(float(np.abs(a - b).max()) for a, b in pairs)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_alpha_one_sgd_epoch_equals_sklearn(problem, weighted):
    """alpha as scikit-learn means it: ``alpha·W/S_B`` per batch, ``S_B`` the batch's size or
    total weight, the ragged last batch (50 = 16 + 16 + 16 + 2) with its own. Nesterov momentum."""
    ours_cls, theirs_cls, y = PROBLEMS[problem]
    ours, theirs = twins(ours_cls, theirs_cls, X, y, solver="sgd", alpha=0.1, batch_size=16,
                         learning_rate_init=0.1, hidden_layer_sizes=(7,))
    sw = WEIGHTS if weighted else None
    ours.fit(X, y, sample_weight=sw)
    theirs.fit(X, y, sample_weight=sw)
    assert max_weight_difference(ours, theirs) < 1e-14
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-13)
    assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_ == 1


@pytest.mark.parametrize("learning_rate, momentum", [("invscaling", 0.9), ("invscaling", 0.0), ("adaptive", 0.9)])
def test_learning_rate_schedules_equal_sklearn(learning_rate, momentum):
    """Five epochs of a changing rate: scikit-learn's velocity carries each step's own rate;
    with tol=10 every epoch fails to improve, so "adaptive" divides the rate by 5 every second
    epoch, and the stopping rule counts the same epochs."""
    ours, theirs = twins(MLPClassifier, SkClassifier, X, Y3, solver="sgd", alpha=1e-3, batch_size=16,
                         learning_rate_init=0.2, hidden_layer_sizes=(7,), max_iter=5, tol=10.0,
                         n_iter_no_change=1, learning_rate=learning_rate, momentum=momentum, power_t=0.3)
    ours.fit(X, Y3)
    theirs.fit(X, Y3)
    assert max_weight_difference(ours, theirs) < 1e-13
    # [0]: the first fit, from different weights
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-12)
    assert ours.n_iter_ == theirs.n_iter_ and ours._no_improvement_count == theirs._no_improvement_count


def test_stopping_rule_equals_sklearn():
    """Without early stopping: stop after more than n_iter_no_change epochs whose training loss
    is not ``tol`` below the best; the same epoch count, loss curve and best loss."""
    ours, theirs = twins(MLPClassifier, SkClassifier, X, Y3, solver="sgd", batch_size=10, learning_rate_init=0.05,
                         hidden_layer_sizes=(7,), max_iter=300, tol=1e-3, n_iter_no_change=3)
    ours.fit(X, Y3)
    theirs.fit(X, Y3)
    assert 4 < ours.n_iter_ == theirs.n_iter_ < 300
    # [0]: the first fit, from different weights
    np.testing.assert_allclose(ours.loss_curve_[1:], theirs.loss_curve_[1:], rtol=1e-10)
    assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-10)
    assert max_weight_difference(ours, theirs) < 1e-10


def test_adam_equals_sklearn_but_for_epsilon():
    """Adam: with ε negligible the weights agree to rounding; with ε = 1e-8 they differ where
    a gradient entry is near ε (backprop adds ε to √v̂, scikit-learn to √v), by little."""
    for epsilon, bound in ((1e-15, 1e-10), (1e-8, 1e-4)):
        ours, theirs = twins(MLPClassifier, SkClassifier, X, Y3, solver="adam", epsilon=epsilon, alpha=0.1,
                             batch_size=16, learning_rate_init=0.01, hidden_layer_sizes=(7, 5), activation="tanh")
        ours.fit(X, Y3, sample_weight=WEIGHTS)
        theirs.fit(X, Y3, sample_weight=WEIGHTS)
        assert max_weight_difference(ours, theirs) < bound


def test_multilabel_and_poisson_epochs_equal_sklearn():
    """Multilabel targets train one logistic output per label; Poisson a log link."""
    labels = np.stack([Y3 == 0, Y3 == 1, X[:, 0] > 0], axis=1).astype(int)
    ours, theirs = twins(MLPClassifier, SkClassifier, X, labels, solver="sgd", alpha=0.1, batch_size=16,
                         learning_rate_init=0.1, hidden_layer_sizes=(7,))
    ours.fit(X, labels)
    theirs.fit(X, labels)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert max_weight_difference(ours, theirs) < 1e-14
    counts = np.random.default_rng(0).poisson(np.exp(0.3 * X[:, 0]))
    ours, theirs = twins(MLPRegressor, SkRegressor, X, counts, solver="sgd", loss="poisson", alpha=0.1,
                         batch_size=16, learning_rate_init=0.01, hidden_layer_sizes=(7,))
    ours.fit(X, counts)
    theirs.fit(X, counts)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert max_weight_difference(ours, theirs) < 1e-14
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)


@pytest.mark.parametrize("problem", ["multiclass", "regression"])
def test_lbfgs_equals_sklearn(problem):
    """solver="lbfgs": scipy's L-BFGS-B on the same objective from the same weights takes the
    same path: 30 iterations agree to 1e-8 (further on, non-convexity amplifies rounding)."""
    ours_cls, theirs_cls, y = PROBLEMS[problem]
    ours, theirs = twins(ours_cls, theirs_cls, X, y, solver="lbfgs", alpha=1e-2, hidden_layer_sizes=(8,),
                         activation="tanh", max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 30
    assert max_weight_difference(ours, theirs) < 1e-8
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
