"""backprop.sklearn: scikit-learn's parameters and fitted attributes, its rules (stopping,
partial_fit, minimum sizes, divergence), sparse and multilabel input, the Poisson loss, the
engines underneath, and class_weight."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")

import scipy.sparse as sp  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import check_class_weight_classifiers  # noqa: E402

import backprop as bp  # noqa: E402
from backprop.sklearn import MLPClassifier, MLPRegressor, SolverDivergedError  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore:batch_size=.* is larger:UserWarning")]


def _blobs(n=200, n_classes=3, seed=0):
    return make_classification(n_samples=n, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0, random_state=seed)


# ------------------------------------------------------------------ fitted attributes
def test_coefs_are_views_in_sklearns_layout():
    X, y = _blobs()
    clf = MLPClassifier((5, 4), max_iter=2, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(6, 5), (5, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (4,), (3,)]
    assert (clf.n_layers_, clf.n_outputs_, clf.out_activation_) == (4, 3, "softmax")
    buffer = clf.network_.parameter_buffer
    assert all(np.shares_memory(c, buffer) for c in clf.coefs_ + clf.intercepts_)
    np.testing.assert_array_equal(clf.coefs_[0], clf.network_.layers[0].params["W"].T)
    clf.coefs_[2][...] = 0.0  # writing into a view changes the network
    clf.intercepts_ = [b for b in clf.intercepts_[:2]] + [np.array([0.0, 5.0, 0.0])]  # assigning copies in
    assert set(clf.predict(X)) == {clf.classes_[1]}
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(6, 5\)"):
        clf.coefs_ = [np.zeros((5, 6)), *clf.coefs_[1:]]
    assert not hasattr(MLPClassifier(), "coefs_")


def test_fitted_attributes_of_each_solver():
    X, y = _blobs()
    sgd = MLPClassifier((8,), solver="sgd", max_iter=4, batch_size=50, random_state=0).fit(X, y)
    assert sgd.t_ == 4 * 200 and sgd.n_iter_ == 4 == len(sgd.loss_curve_)
    assert sgd.best_loss_ == min(sgd.loss_curve_) and sgd.loss_ == sgd.loss_curve_[-1]
    assert sgd.validation_scores_ is None and sgd.best_validation_score_ is None
    early = MLPClassifier((8,), early_stopping=True, max_iter=4, random_state=0).fit(X, y)
    assert early.best_loss_ is None and len(early.validation_scores_) == 4
    lbfgs = MLPClassifier((8,), solver="lbfgs", max_iter=15, random_state=0).fit(X, y)
    assert lbfgs.t_ == 0 and lbfgs.n_iter_ <= 15 and len(lbfgs.history_) == lbfgs.n_iter_
    assert not hasattr(lbfgs, "loss_curve_") and lbfgs.loss_ == pytest.approx(lbfgs.history_.loss[-1])
    binary = MLPClassifier((8,), max_iter=1).fit(X, y % 2)
    assert (binary.n_outputs_, binary.out_activation_) == (1, "logistic")
    reg = MLPRegressor((8,), max_iter=1).fit(X, X[:, :2])
    assert (reg.n_outputs_, reg.out_activation_, reg.n_layers_) == (2, "identity", 3)


def test_pickle_keeps_the_network_whole_and_training_continues():
    X, y = _blobs()
    clf = MLPClassifier((8,), solver="sgd", max_iter=3, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert np.shares_memory(copy.coefs_[0], copy.network_.parameter_buffer)
    clf.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.network_.parameter_buffer, clf.network_.parameter_buffer)


def test_decision_function_is_the_logits():
    X, y = _blobs()
    for loss in ("log_loss", "cross_entropy", "quadratic"):
        for target in (y, y % 2):
            clf = MLPClassifier((8,), loss=loss, max_iter=3, random_state=0).fit(X, target)
            z = clf.decision_function(X)
            guess = (z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)
            np.testing.assert_array_equal(clf.classes_[guess], clf.predict(X))


# ------------------------------------------------------------------ stopping rules and schedules
def test_tol_stops_without_early_stopping():
    """scikit-learn's test_tolerance and test_n_iter_no_change: the training loss's rule."""
    X, y = _blobs(n=100)
    for n_iter_no_change in (2, 5):
        clf = MLPClassifier((8,), solver="sgd", tol=0.01, max_iter=3000, n_iter_no_change=n_iter_no_change,
                            random_state=0).fit(X, y)
        assert clf.n_iter_ < 3000 and clf._no_improvement_count == n_iter_no_change + 1
    clf = MLPClassifier((8,), solver="sgd", tol=1e9, max_iter=30, n_iter_no_change=np.inf, random_state=0).fit(X, y)
    assert clf.n_iter_ == 30 and clf._no_improvement_count == 29  # the first epoch improves on inf


def test_adaptive_rate_divides_by_five_until_tiny():
    """scikit-learn's test_adaptive_learning_rate."""
    clf = MLPClassifier(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive")
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.n_iter_ < 3000 and clf._rate.value < 1e-6
    assert clf._rate.value == pytest.approx(1e-3 / 5 ** 5)


def test_warm_start_continues_and_invscaling_counts_samples():
    """scikit-learn's test_learning_rate_warmstart and test_warm_start_full_iteration."""
    X, y = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    clf = MLPClassifier(hidden_layer_sizes=4, solver="sgd", learning_rate="invscaling", max_iter=1, power_t=0.25,
                        warm_start=True, random_state=0)
    clf.fit(X, y)
    first = clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf._rate.value == 1e-3 / (8 + 1) ** 0.25 and clf.t_ == 8 and len(clf.loss_curve_) == 2
    assert not np.array_equal(first, clf.coefs_[0])
    clf.set_params(max_iter=3, n_iter_no_change=np.inf)
    assert clf.fit(X, y).n_iter_ == 3
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        clf.fit(X + [[0, 0]], y + [2])


def test_early_stopping_split_is_stratified_and_sized():
    """scikit-learn's test_early_stopping_stratified and test_minimum_input_sample_size."""
    with pytest.raises(ValueError, match="least populated class.* in y ha.* only 1 member"):
        MLPClassifier(early_stopping=True).fit([[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1])
    X, y = make_classification(n_samples=2, n_features=5, n_informative=2, n_redundant=0, n_classes=2,
                               n_clusters_per_class=1, random_state=0)
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPRegressor(early_stopping=True, random_state=0).fit(X, X[:, 0])
    X, y = _blobs(n=100)  # a stratified split holds each class in proportion
    clf = MLPClassifier((4,), early_stopping=True, validation_fraction=0.3, max_iter=2, random_state=0).fit(X, y)
    assert clf.t_ == 2 * 70


# ------------------------------------------------------------------ partial_fit
def test_partial_fit_errors_as_sklearn():
    X, y = [[3, 2], [1, 6]], [1, 0]
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`.* has \[2\]"):
        MLPClassifier(solver="sgd").partial_fit(X, y, classes=[2])
    with pytest.raises(ValueError, match="classes not in `self.classes_`"):
        MLPClassifier(solver="sgd").partial_fit(X, y, classes=[0, 1]).partial_fit(X, [1, 2])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    clf = MLPClassifier(early_stopping=True, random_state=0).fit(X * 10, y * 10)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="not the same as on the last call"):
        MLPClassifier().fit(X, y).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    # labels absent from a call are fine when they were announced (scikit-learn's bug 6994)
    clf = MLPClassifier(random_state=0).partial_fit([[1], [2], [3]], ["a", "b", "c"], classes=["a", "b", "c", "d"])
    clf.partial_fit([[4]], ["d"])
    assert list(clf.classes_) == ["a", "b", "c", "d"]


# ------------------------------------------------------------------ input kinds
def test_sparse_input_trains_like_dense():
    X, y = _blobs()
    X[X < 0.5] = 0.0
    dense = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    for kind in (sp.csr_matrix, sp.csc_array):
        sparse = MLPClassifier((8,), max_iter=5, random_state=0).fit(kind(X), y)
        np.testing.assert_array_equal(sparse.network_.parameter_buffer, dense.network_.parameter_buffer)
        np.testing.assert_array_equal(sparse.predict_proba(kind(X)), dense.predict_proba(X))


def test_multilabel_indicator_targets():
    X, Y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=4, random_state=0)
    clf = MLPClassifier((32,), learning_rate_init=0.01, max_iter=100, random_state=0).fit(X, Y)
    assert list(clf.classes_) == [0, 1, 2, 3] and clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 4) and not np.allclose(proba.sum(axis=1), 1)  # one probability per label
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    assert clf.score(X, Y) > 0.5  # subset accuracy
    clf = MLPClassifier((8,), early_stopping=True, max_iter=3, random_state=0).fit(X, Y)  # not stratified
    assert len(clf.validation_scores_) == 3
    with pytest.raises(ValueError, match="cannot fit multilabel targets"):
        MLPClassifier(loss="cross_entropy").fit(X, Y)


def test_poisson_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(400, 2))
    y = rng.poisson(np.exp(1 + X[:, 0] - X[:, 1]))
    reg = MLPRegressor((1,), activation="identity", loss="poisson", solver="lbfgs", alpha=0.0, tol=1e-8,
                       random_state=0).fit(X, y)
    assert reg.out_activation_ == "exp" and (reg.predict(X) > 0).all()
    from sklearn.linear_model import PoissonRegressor  # the same model, fitted as a GLM

    glm = PoissonRegressor(alpha=0, tol=1e-8).fit(X, y)
    np.testing.assert_allclose(reg.predict(X), glm.predict(X), rtol=1e-4)
    with pytest.raises(ValueError, match="Poisson targets y must be >= 0"):
        MLPRegressor(loss="poisson").fit(X, -y)
    grad = bp.gradcheck(bp.Network([bp.Dense(2, 3), bp.Tanh(), bp.Dense(3, 2)], seed=0, dtype="float64"),
                        bp.losses.Poisson(), X[:20], np.stack([y[:20], y[20:40]], axis=1).astype(float))
    assert max(grad.rel_errors.values()) < 1e-6


# ------------------------------------------------------------------ divergence
def test_divergence_is_sklearns_value_error():
    """scikit-learn's test_nonfinite_params: a ValueError with its words; the network keeps the
    finite weights from the start of the epoch that diverged."""
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reg = MLPRegressor()
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights") as err:
            reg.fit(X, rng.standard_normal(10))
    assert isinstance(err.value, SolverDivergedError) and isinstance(err.value, bp.errors.DivergenceError)
    assert np.isfinite(reg.network_.parameter_buffer).all()


def test_divergence_with_early_stopping_keeps_the_best_weights():
    """scikit-learn's test_mlp_diverging_loss: no error; the last validation score is NaN."""
    X, y = _blobs(n=150)
    mlp = MLPRegressor(100, activation="identity", solver="sgd", learning_rate_init=1, max_iter=20,
                       early_stopping=True, n_iter_no_change=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="diverged"):
            mlp.fit(X, y.astype(float))
    assert math.isnan(mlp.validation_scores_[-1]) and isinstance(mlp.validation_scores_[-1], float)
    assert np.isfinite(mlp.network_.parameter_buffer).all() and np.isfinite(mlp.predict(X)).all()


# ------------------------------------------------------------------ engines
def test_engines_underneath():
    """Without a penalty or sample weights fit's plain step runs, so engine="auto" may pick the
    compiled engine (plain SGD, batches <= 32); alpha or weights add the gradient hook, which
    runs on NumPy steps (with the fused optimizer update where numba has one)."""
    pytest.importorskip("numba")
    X, y = _blobs()
    plain = MLPClassifier((8,), solver="sgd", momentum=0.0, alpha=0.0, batch_size=16, max_iter=2,
                          random_state=0).fit(X, y)
    assert plain.history_.engine == "numba"
    hooked = MLPClassifier((8,), solver="sgd", momentum=0.0, alpha=1e-4, batch_size=16, max_iter=2,
                           random_state=0).fit(X, y)
    assert hooked.history_.engine == "numpy"
    adam = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    assert adam.history_.engine == "numpy+numba-update"
    # the compiled and NumPy steps agree to rounding: numba's SGD vs the hooked one at alpha -> 0
    tiny = MLPClassifier((8,), solver="sgd", momentum=0.0, alpha=1e-300, batch_size=16, max_iter=2,
                         dtype="float64", random_state=0).fit(X, y)
    exact = MLPClassifier((8,), solver="sgd", momentum=0.0, alpha=0.0, batch_size=16, max_iter=2,
                          dtype="float64", random_state=0).fit(X, y)
    assert (tiny.history_.engine, exact.history_.engine) == ("numpy", "numba")
    np.testing.assert_allclose(tiny.network_.parameter_buffer, exact.network_.parameter_buffer, atol=1e-12)


# ------------------------------------------------------------------ class_weight
def test_class_weight_check_of_sklearn():
    """scikit-learn's check_class_weight_classifiers (parametrize_with_checks runs it too): with
    class 0 weighted 1000 and the others 1e-4, nearly every prediction is class 0."""
    for solver in ("adam", "lbfgs"):
        clf = MLPClassifier((16,), solver=solver, learning_rate_init=0.01, max_iter=30, batch_size=32, random_state=0)
        check_class_weight_classifiers("MLPClassifier", clf)


def test_class_weight_is_a_product_with_sample_weight():
    X, y = _blobs()
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    by_class = {0: 2.0, 1: 0.5, 2: 1.0}
    est = dict(hidden_layer_sizes=(8,), max_iter=3, batch_size=32, dtype="float64", random_state=0)
    weighted = MLPClassifier(class_weight=by_class, **est).fit(X, y, sample_weight=sw)
    manual = MLPClassifier(**est).fit(X, y, sample_weight=sw * np.array([2.0, 0.5, 1.0])[y])
    np.testing.assert_array_equal(weighted.network_.parameter_buffer, manual.network_.parameter_buffer)
    balanced = MLPClassifier(class_weight="balanced", **est).fit(X[:150], y[:150])
    counts = np.bincount(y[:150])
    manual = MLPClassifier(**est).fit(X[:150], y[:150], sample_weight=(150 / (3 * counts))[y[:150]])
    np.testing.assert_allclose(balanced.network_.parameter_buffer, manual.network_.parameter_buffer, rtol=1e-12)


def test_balanced_class_weight_raises_balanced_accuracy():
    """An imbalanced problem (5% positives): "balanced" weights lift the balanced accuracy
    (measured: 0.567 without, 0.748 with)."""
    X, y = make_classification(n_samples=2000, n_features=8, n_informative=4, weights=[0.95, 0.05],
                               class_sep=0.6, flip_y=0.0, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    scores = {}
    for cw in (None, "balanced"):
        clf = MLPClassifier((16,), learning_rate_init=0.01, max_iter=100, class_weight=cw, random_state=0)
        scores[cw] = balanced_accuracy_score(y_test, clf.fit(X_train, y_train).predict(X_test))
    assert scores[None] < 0.6 and scores["balanced"] > 0.7
