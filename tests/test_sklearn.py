"""backprop.sklearn: scikit-learn's own estimator checks (all of them, none skipped), and the
estimators at work in pipelines, grid searches, with sample weights, dtypes and partial_fit.

Parity with scikit-learn's own MLP is in test_sklearn_parity.py; the parameters and attributes
added for it, class_weight, multilabel, sparse and divergence in test_sklearn_features.py.
"""

from __future__ import annotations

import os

# scikit-learn runs its array-API check (check_array_api_input with NumPy arrays and array-API
# dispatch on, for estimators that do not declare array-API support) only when SCIPY_ARRAY_API=1 is
# set, as scikit-learn's own CI sets it; otherwise it skips it. scikit-learn reads the variable when
# the check runs. scipy reads it once, at its first import: run alone, this module sets it first;
# in the full suite numba (imported by earlier test modules) has imported scipy already, so scipy's
# own array-API mode stays off, which changes nothing for the NumPy arrays this check passes.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
from unittest import SkipTest  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# parametrize_with_checks' expected_failed_checks and the check names used below: 1.6+
sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.exceptions import DataConversionWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_regressor_multioutput,
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

import backprop as bp  # noqa: E402
from backprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# the checks' tiny data sets, and the full-batch tests, ask for more samples per batch than
# there are: the estimator clips and warns (test_batch_size_is_clipped_with_a_warning); short
# runs end at max_iter with scikit-learn's ConvergenceWarning
pytestmark = [pytest.mark.filterwarnings("ignore:batch_size=.* is larger:UserWarning"),
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")]

# small and fast, yet accurate enough for the checks' accuracy (> 0.83) and R² (> 0.5) bars
FAST = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=30, batch_size=32)
LBFGS = dict(solver="lbfgs", hidden_layer_sizes=(16,), max_iter=200)


@parametrize_with_checks([MLPClassifier(**FAST, random_state=0), MLPRegressor(**FAST, random_state=0),
                          MLPClassifier(**LBFGS, random_state=0), MLPRegressor(**LBFGS, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    """Every check passes, none expected to fail; a check that skips (a missing optional
    package, an unset variable) fails here, so that none is left out silently."""
    try:
        check(estimator)
    except SkipTest as skip:
        pytest.fail(f"the check skipped: {skip}")


def test_sample_weight_check_float64():
    """scikit-learn's check: integer weights = repeated samples, zero weights = dropped ones."""
    full_batch = {**FAST, "batch_size": 1000, "dtype": "float64"}
    for est in (MLPClassifier(**full_batch), MLPRegressor(**full_batch)):
        check_sample_weight_equivalence_on_dense_data(type(est).__name__, est)


def test_multioutput_check_float64():
    est = MLPRegressor(**FAST, dtype="float64", random_state=0)
    check_regressor_multioutput("MLPRegressor", est)


# ------------------------------------------------------------------ import
def test_import_backprop_does_not_import_sklearn():
    code = "import sys, backprop; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def _blobs(n=200, n_classes=3, seed=0):
    return make_classification(n_samples=n, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0,
                               random_state=seed)


# ------------------------------------------------------------------ classification
def test_digits_accuracy_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    model = make_pipeline(StandardScaler(),
                          MLPClassifier((64,), learning_rate_init=3e-3, max_iter=30,
                                        batch_size=64, random_state=0))
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.9
    clf = model[-1]
    assert isinstance(clf.network_, bp.Network)
    assert clf.n_features_in_ == 64 and list(clf.classes_) == list(range(10))
    assert clf.n_iter_ == 30 == len(clf.loss_curve_) == len(clf.history_) and clf.t_ == 30 * len(X_train)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.loss_ == clf.loss_curve_[-1]
    assert clf.history_.accuracy[-1] > 0.9


def test_grid_search(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:300] / 16, y_train[:300]
    grid = GridSearchCV(MLPClassifier(max_iter=5, batch_size=50, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "learning_rate_init": [1e-3, 1e-2]},
                        cv=2)
    grid.fit(X, y)
    assert grid.best_params_ == {"hidden_layer_sizes": (32,), "learning_rate_init": 1e-2}
    assert grid.best_estimator_.network_.layers[0].d_out == 32
    assert grid.score(X, y) > 0.8


def test_string_labels_and_binary():
    X, y = _blobs(n_classes=2)
    labels = np.array(["no", "yes"])[y]
    for loss in ("log_loss", "cross_entropy", "binary_cross_entropy", "quadratic"):
        clf = MLPClassifier((8,), loss=loss, learning_rate_init=0.05, max_iter=30,
                            random_state=0).fit(X, labels)
        assert list(clf.classes_) == ["no", "yes"]
        assert set(clf.predict(X)) <= {"no", "yes"} and clf.score(X, labels) > 0.9
        proba = clf.predict_proba(X)
        assert proba.shape == (len(X), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    # one logit for two classes with the (binary) log loss, k outputs otherwise
    assert clf.network_.output_width == 2
    for loss in ("binary_cross_entropy", "log_loss"):
        bce = MLPClassifier((8,), loss=loss, max_iter=1).fit(X, labels)
        assert bce.network_.output_width == 1 == bce.n_outputs_ and bce.out_activation_ == "logistic"


@pytest.mark.parametrize("loss", ["log_loss", "cross_entropy", "binary_cross_entropy", "quadratic"])
def test_every_loss_multiclass(loss):
    X, y = _blobs(n_classes=3)
    clf = MLPClassifier((16,), loss=loss, learning_rate_init=0.02, max_iter=25,
                        random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop", "adamw"])
def test_every_solver(solver):
    X, y = _blobs()
    lr = 0.1 if solver == "sgd" else 0.02
    clf = MLPClassifier((16,), solver=solver, learning_rate_init=lr, alpha=1e-3, max_iter=30,
                        random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert type(clf._optimizer).__name__.lower() == solver
    # alpha is scikit-learn's penalty, added per batch by fit's gradient hook, not the optimizer's
    assert clf._optimizer.weight_decay == 0


def test_optimizer_settings_reach_backprop():
    X, y = _blobs(n=40)
    sgd = MLPClassifier((4,), solver="sgd", max_iter=1).fit(X, y)._optimizer
    assert (sgd.momentum, sgd.nesterov) == (0.9, True)
    sgd = MLPClassifier((4,), solver="sgd", momentum=0.5, nesterovs_momentum=False,
                        max_iter=1).fit(X, y)._optimizer
    assert (sgd.momentum, sgd.nesterov) == (0.5, False)
    adam = MLPClassifier((4,), beta_1=0.8, beta_2=0.99, epsilon=1e-6, max_iter=1).fit(X, y)._optimizer
    assert (adam.beta1, adam.beta2, adam.eps) == (0.8, 0.99, 1e-6)
    assert MLPClassifier((4,), solver="rmsprop", max_iter=1).fit(X, y)._optimizer.momentum == 0
    assert isinstance(MLPClassifier((4,), solver="adamw", max_iter=1).fit(X, y)._optimizer,
                      bp.AdamW)


def test_per_layer_activations_and_dropout():
    X, y = _blobs()
    clf = MLPClassifier((12, 8), activation=["tanh", "logistic"], dropout=0.1, max_iter=2,
                        random_state=0).fit(X, y)
    kinds = [type(layer).__name__ for layer in clf.network_.layers]
    assert kinds == ["Dense", "Tanh", "Dropout", "Dense", "Sigmoid", "Dropout", "Dense"]
    assert clf.network_.layers[2].rate == 0.1
    with pytest.raises(ValueError, match="one name per hidden layer"):
        MLPClassifier((12, 8), activation=["tanh"]).fit(X, y)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPClassifier((4,), activation="swish").fit(X, y)


def test_batch_size_is_clipped_with_a_warning():
    X, y = _blobs(n=30)
    with pytest.warns(UserWarning, match="batch_size=64 is larger than the number of training"):
        clf = MLPClassifier((4,), batch_size=64, max_iter=2, random_state=0).fit(X, y)
    assert clf._optimizer.t == 2  # one full batch per epoch


def test_no_hidden_layer():
    X, y = _blobs()
    clf = MLPClassifier((), learning_rate_init=0.05, max_iter=20, random_state=0).fit(X, y)
    assert [type(layer).__name__ for layer in clf.network_.layers] == ["Dense"]
    assert clf.score(X, y) > 0.85


@pytest.mark.parametrize("bad, match", [
    (dict(solver="newton"), "solver"), (dict(loss="hinge"), "loss"),
    (dict(learning_rate_init=0), "learning_rate_init"), (dict(alpha=-1), "alpha"),
    (dict(batch_size=0), "batch_size"), (dict(max_iter=0), "max_iter"),
    (dict(momentum=1.0), "momentum"), (dict(dropout=1.0), "dropout"),
    (dict(dtype="float16"), "dtype"), (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(n_iter_no_change=0), "n_iter_no_change"), (dict(loss=bp.Huber()), "loss"),
    (dict(learning_rate="optimal"), "learning_rate"), (dict(power_t=-1), "power_t"),
    (dict(beta_1=1.0), "beta_1"), (dict(beta_2=-0.1), "beta_2"), (dict(epsilon=0), "epsilon"),
    (dict(max_fun=0), "max_fun"), (dict(warm_start=1), "warm_start"),
    (dict(nesterovs_momentum="yes"), "nesterovs_momentum"), (dict(class_weight="auto"), "class_weight"),
])
def test_invalid_settings_raise_in_fit_not_init(bad, match):
    X, y = _blobs(n=30)
    clf = MLPClassifier(**bad)  # no validation in __init__ (scikit-learn convention)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_multiclass_multioutput_y_is_refused_clearly():
    X, y = _blobs(n=30)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier().fit(X, np.stack([y, y], axis=1))


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _blobs(n=40)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = MLPClassifier((4,), max_iter=2, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


# ------------------------------------------------------------------ dtypes
def test_dtype_follows_the_input_unless_set():
    """scikit-learn's convention: float32 input is computed in float32, float64 and integer
    input in float64; ``dtype`` overrides it, and later input is converted to the network's."""
    X, y = _blobs()
    X64, X32 = X.astype(np.float64), X.astype(np.float32)
    for data, expected in ((X32, np.float32), (X64, np.float64), (np.round(X * 10).astype(np.int64), np.float64)):
        clf = MLPClassifier((8,), max_iter=3, random_state=0).fit(data, y)
        assert clf.network_.dtype == expected and clf.coefs_[0].dtype == expected
        assert clf.predict_proba(data).dtype == expected
        reg = MLPRegressor((8,), max_iter=3, random_state=0).fit(data, X64[:, 0])
        assert reg.predict(data).dtype == expected
    clf = MLPClassifier((8,), max_iter=3, random_state=0, dtype="float32").fit(X64, y)
    assert all(p.dtype == np.float32 for p in clf.network_.parameters())
    assert clf.predict_proba(X64).dtype == np.float32
    # float64 input is converted once at the boundary: the same as giving float32
    np.testing.assert_array_equal(clf.predict_proba(X64), clf.predict_proba(X32))
    clf32 = MLPClassifier((8,), max_iter=3, random_state=0).fit(X32, y)
    clf32.partial_fit(X64, y)  # continues in float32
    assert clf32.network_.dtype == np.float32


# ------------------------------------------------------------------ params, clone
def test_get_set_params_round_trip_and_clone():
    clf = MLPClassifier((7, 5), ["relu", "tanh"], solver="sgd", alpha=0.01, batch_size=16,
                        learning_rate_init=0.05, max_iter=3, momentum=0.8, nesterovs_momentum=False,
                        early_stopping=True, dropout=0.2, dtype="float64", random_state=3)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 5) and params["activation"] == ["relu", "tanh"]
    assert MLPClassifier(**params).get_params() == params
    other = MLPClassifier().set_params(**params)
    assert other.get_params() == params
    X, y = _blobs()
    clf.fit(X, y)
    twin = clone(clf)
    assert twin.get_params() == params and not hasattr(twin, "network_")
    np.testing.assert_array_equal(twin.fit(X, y).predict_proba(X), clf.predict_proba(X))


# ------------------------------------------------------------------ partial_fit
def test_partial_fit_improves_incrementally():
    X, y = _blobs(n=300)
    clf = MLPClassifier((16,), learning_rate_init=0.01, batch_size=32, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    losses = []
    for _ in range(8):
        clf.partial_fit(X, y, classes=[0, 1, 2])
        losses.append(clf.loss_)
    # as in scikit-learn: n_iter_ counts the last call's epochs; loss_curve_ and t_ accumulate
    assert clf.n_iter_ == 1 and clf.loss_curve_ == losses and clf.t_ == 8 * len(X)
    assert losses[-1] < 0.5 * losses[0]
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="differs"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="unseen labels"):
        clf.partial_fit(X, y + 5)


def test_partial_fit_equals_fit_epoch_by_epoch():
    X, y = _blobs()
    fitted = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    stepped = MLPClassifier((8,), random_state=0)
    for _ in range(3):
        stepped.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_array_equal(stepped.predict_proba(X), fitted.predict_proba(X))


def test_regressor_partial_fit():
    X, y = _wave(300)
    reg = MLPRegressor((32,), "tanh", learning_rate_init=0.01, batch_size=32, random_state=0)
    first = reg.partial_fit(X, y).score(X, y)
    for _ in range(20):
        reg.partial_fit(X, y)
    assert reg.score(X, y) > first and len(reg.loss_curve_) == 21 and reg.t_ == 21 * len(X)
    with pytest.raises(ValueError, match="target columns"):
        reg.partial_fit(X, np.stack([y, y], axis=1))


# ------------------------------------------------------------------ sample weights
def _weighted_and_repeated(est, X, y, sw):
    weighted = clone(est).fit(X, y, sample_weight=sw)
    repeated = clone(est).fit(np.repeat(X, sw, axis=0), np.repeat(y, sw, axis=0))
    method = "predict_proba" if hasattr(est, "predict_proba") else "predict"
    return getattr(weighted, method)(X), getattr(repeated, method)(X)


@pytest.mark.parametrize("solver, dtype, tol", [
    ("adam", "float64", 1e-9), ("sgd", "float64", 1e-9), ("adam", "float32", 1e-4),
])
def test_integer_weights_equal_repeated_samples(solver, dtype, tol):
    """Full-batch training: a weight of 3 is the same as three copies of the sample."""
    X, y = _blobs(n=40)
    sw = np.random.default_rng(0).integers(1, 4, size=len(y))
    full_batch = dict(batch_size=1000, max_iter=15, solver=solver, dtype=dtype,
                      random_state=0, learning_rate_init=0.05)
    a, b = _weighted_and_repeated(MLPClassifier((8,), **full_batch), X, y, sw)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 1e-3)
    a, b = _weighted_and_repeated(MLPRegressor((8,), loss="huber", **full_batch), X, X[:, 0], sw)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 1e-3)


def test_zero_weights_equal_dropped_samples():
    """Full-batch training: a zero weight is the same as leaving the sample out."""
    X, y = _blobs(n=40)
    sw = np.ones(len(y))
    sw[::3] = 0
    keep = sw > 0
    est = MLPClassifier((8,), batch_size=1000, max_iter=15, dtype="float64", random_state=0)
    weighted = clone(est).fit(X, y, sample_weight=sw)
    dropped = clone(est).fit(X[keep], y[keep])
    np.testing.assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), rtol=1e-9)
    assert weighted.loss_curve_ == pytest.approx(dropped.loss_curve_, rel=1e-12)


def test_weights_scale_invariant_and_ones_equal_none():
    """Scaling every weight changes nothing, without a penalty: alpha's term is divided by the
    batch's total weight (scikit-learn's definition), so with alpha > 0 scaling the weights
    scales the penalty down."""
    X, y = _blobs(n=64)
    est = MLPClassifier((8,), batch_size=16, max_iter=4, random_state=0, dtype="float64", alpha=0.0)
    none = clone(est).fit(X, y).predict_proba(X)
    ones = clone(est).fit(X, y, sample_weight=np.ones(len(y))).predict_proba(X)
    np.testing.assert_allclose(ones, none, rtol=1e-12)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=len(y))
    a = clone(est).fit(X, y, sample_weight=sw).predict_proba(X)
    b = clone(est).fit(X, y, sample_weight=7.5 * sw).predict_proba(X)
    np.testing.assert_allclose(a, b, rtol=1e-9)


def test_sample_weight_changes_the_fit_and_is_validated():
    X, y = _blobs(n=60, n_classes=2)
    est = MLPClassifier((8,), learning_rate_init=0.05, max_iter=30, random_state=0)
    sw = np.where(y == 1, 1.0, 1e-3)  # class 0 nearly ignored
    p_weighted = clone(est).fit(X, y, sample_weight=sw).predict_proba(X)[:, 1].mean()
    p_plain = clone(est).fit(X, y).predict_proba(X)[:, 1].mean()
    assert p_weighted > p_plain
    with pytest.raises(ValueError, match="non-zero"):
        clone(est).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match=">= 0"):
        clone(est).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="shape"):
        clone(est).fit(X, y, sample_weight=np.ones(len(y) + 1))


# ------------------------------------------------------------------ early stopping
def test_early_stopping_keeps_the_best_validation_score():
    """scikit-learn's rule: score the held-out split each epoch, stop after more than
    n_iter_no_change epochs without a rise of tol, and keep the best score's weights."""
    X, y = _blobs(n=300, seed=1)
    clf = MLPClassifier((32,), learning_rate_init=0.05, max_iter=200, early_stopping=True,
                        validation_fraction=0.2, n_iter_no_change=3, random_state=0).fit(X, y)
    h, scores = clf.history_, clf.validation_scores_
    assert clf.n_iter_ < 200 and len(h.val_loss) == len(scores) == clf.n_iter_
    assert clf._no_improvement_count == 4 and clf.best_loss_ is None
    assert clf.best_validation_score_ == max(scores) == scores[h.restored_epoch - 1]
    assert h.val_accuracy == scores
    assert clf.score(X, y) > 0.9


def test_verbose_prints_the_loss(capsys):
    X, y = _blobs(n=40)
    MLPClassifier((4,), max_iter=2, verbose=True, early_stopping=True, n_iter_no_change=1,
                  random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out and "Validation score: " in out


# ------------------------------------------------------------------ regression
def _wave(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2


@pytest.mark.parametrize("loss", ["squared_error", "quadratic", "huber"])
def test_regressor_r2(loss):
    X, y = _wave(400)
    X_test, y_test = _wave(200, seed=1)
    reg = MLPRegressor((32, 32), "tanh", loss=loss, learning_rate_init=0.01, batch_size=32,
                       max_iter=60, random_state=0).fit(X, y)
    assert reg.score(X_test, y_test) > 0.9
    assert reg.predict(X_test).shape == (200,) and reg.n_outputs_ == 1


def test_regressor_2d_targets():
    X, y = _wave(200)
    Y = np.stack([y, -y], axis=1)
    reg = MLPRegressor((32,), "tanh", learning_rate_init=0.01, max_iter=40,
                       random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.n_outputs_ == 2
    # a single column is a 1-D target, with scikit-learn's warning, and 1-D predictions
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = MLPRegressor((8,), max_iter=2, random_state=0).fit(X, y[:, None])
    assert column.predict(X).shape == (200,) and column.n_outputs_ == 1
