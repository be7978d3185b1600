"""backprop.sklearn where scikit-learn's own MLP tests found it behaving differently: a target
with a single class, and the error for a class too small for a stratified split; and the tool
that runs scikit-learn's test_mlp.py against backprop's estimators."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.7")

from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402

import backprop  # noqa: E402
from backprop.sklearn import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ROOT = Path(__file__).resolve().parents[1]
SKLEARN_TEST_FILE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
X = np.random.default_rng(0).standard_normal((12, 3))


def twins(x, y, **params):
    """Ours (float64) and scikit-learn's, fitted once, then given the same random weights."""
    params = {"shuffle": False, "warm_start": True, "random_state": 0, "hidden_layer_sizes": (4,), **params}
    ours = MLPClassifier(dtype="float64", **{**params, "max_iter": 1}).fit(x, y)
    theirs = SkClassifier(**{**params, "max_iter": 1}).fit(x, y)
    rng = np.random.default_rng(1)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        b[...] = rng.uniform(-0.5, 0.5, b.shape)
        a[...] = b
    ours.set_params(**params)
    theirs.set_params(**params)
    return ours, theirs


# ------------------------------------------------------------------ a single class
@pytest.mark.parametrize("labels", [np.full(12, 7), np.array(["only"] * 12)], ids=["int", "str"])
def test_a_single_class_trains_and_predicts_as_sklearn(labels):
    """scikit-learn trains one logistic output towards 0 (its binarized target), predicts the one
    class, and gives predict_proba two columns, [1 - p, p]: the same weights here after three
    epochs of SGD from the same start, and the same outputs."""
    ours, theirs = twins(X, labels, solver="sgd", learning_rate_init=0.3, batch_size=5, max_iter=3,
                         n_iter_no_change=100)
    ours.fit(X, labels)
    theirs.fit(X, labels)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    assert list(ours.classes_) == list(theirs.classes_) == [labels[0]]
    assert ours.n_outputs_ == theirs.n_outputs_ == 1 and ours.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    assert ours.predict_proba(X).shape == (12, 2)
    assert ours.predict(X).tolist() == theirs.predict(X).tolist() == [labels[0]] * 12
    assert ours.score(X, labels) == theirs.score(X, labels) == 1.0


def test_a_single_class_predicts_it_whatever_the_output():
    """The second column of predict_proba is no class: even where the network's output p is
    above 0.5 (here, before it has learnt anything), predict gives the one class."""
    clf = MLPClassifier((4,), solver="sgd", learning_rate_init=1e-9, max_iter=1, random_state=0)
    clf.fit(X, np.full(12, 3))
    clf.intercepts_[-1][...] = 5.0  # a view of the output bias: p = sigmoid(z) > 0.5 for every row
    proba = clf.predict_proba(X)
    assert (proba[:, 1] > 0.5).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.predict(X).tolist() == [3] * 12


def test_sklearns_preserve_feature_names_case():
    """scikit-learn's test_preserve_feature_names[MLPClassifier]: a DataFrame and a Series of one
    class, early stopping, and no warning (the validation split keeps the feature names)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    x = pd.DataFrame(rng.randn(10, 2), columns=["colname_a", "colname_b"])
    y = pd.Series(np.full(10, 1), name="colname_y")
    clf = MLPClassifier(early_stopping=True, validation_fraction=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(x, y)
    assert clf.feature_names_in_.tolist() == ["colname_a", "colname_b"]
    assert clf.validation_scores_[0] == 1.0  # every held-out sample is the one class, predicted
    assert clf.predict(x).tolist() == [1] * 10


@pytest.mark.parametrize("loss", ["cross_entropy", "quadratic"])
def test_a_single_class_with_backprops_other_losses(loss):
    """cross_entropy: one softmax output, probability 1; quadratic: one sigmoid trained towards
    0 like log_loss, so the first column (1 - p) is the class's and grows with training."""
    y = np.full(12, 2)
    clf = MLPClassifier((4,), loss=loss, solver="sgd", learning_rate_init=0.5, max_iter=1, random_state=0,
                        warm_start=True, dtype="float64")
    first = clf.fit(X, y).predict_proba(X)
    clf.set_params(max_iter=30, n_iter_no_change=100)
    later = clf.fit(X, y).predict_proba(X)
    assert clf.predict(X).tolist() == [2] * 12
    if loss == "cross_entropy":
        assert later.shape == (12, 1) and np.array_equal(later, np.ones((12, 1)))
    else:
        assert later.shape == (12, 2) and (later[:, 0] > first[:, 0]).all()
        np.testing.assert_allclose(later.sum(axis=1), 1.0, rtol=1e-12)


def test_partial_fit_accepts_a_single_class_and_refuses_unseen_labels():
    clf = MLPClassifier((3,), solver="sgd", random_state=0).partial_fit(X, np.full(12, 4), classes=[4])
    assert clf.classes_.tolist() == [4] and clf.predict(X[:2]).tolist() == [4, 4]
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`.* has \[2\]"):
        MLPClassifier(solver="sgd").partial_fit(X[:2], [1, 0], classes=[2])


# ------------------------------------------------------------------ the stratified split
def sklearn_message(x, y) -> str:
    with pytest.raises(ValueError) as err:
        SkClassifier(early_stopping=True).fit(x, y)
    return str(err.value)


@pytest.mark.parametrize("y", [[0, 0, 0, 1], [0, 1, 1, 1], ["b", "a", "a", "a"]], ids=["1", "0", "str"])
def test_a_class_too_small_to_stratify_is_named_as_sklearn_names_it(y):
    """scikit-learn stratifies its binarized target, so it names the class 'True' or 'False';
    our message is its message, then the label."""
    x = [[1, 2], [2, 3], [3, 4], [4, 5]]
    with pytest.raises(ValueError) as err:
        MLPClassifier(early_stopping=True).fit(x, y)
    ours, theirs = str(err.value), sklearn_message(x, y)
    lonely = min(set(y), key=y.count)
    name = "True" if lonely == max(y) else "False"  # is it classes_[1]?
    assert theirs.endswith(f"Classes with too few members are: ['{name}']")
    assert ours.startswith(theirs)
    assert ours.endswith(f"(the labels [{lonely!r}]: early stopping holds out a validation split "
                         "stratified by class)")


def test_multiclass_names_the_labels_too_small_to_stratify():
    """scikit-learn does not stratify multiclass targets; we do, and name the labels."""
    x = np.arange(14.0).reshape(7, 2)
    with pytest.raises(ValueError, match=r"Classes with too few members are: \[0, 3\] \(the labels \[0, 3\]"):
        MLPClassifier(early_stopping=True).fit(x, [0, 1, 1, 2, 2, 2, 3])


# ------------------------------------------------------------------ scikit-learn's file
def test_sklearns_own_tests_of_these_cases_pass():
    """tools/sklearn_mlp_tests.py runs scikit-learn's installed test_mlp.py against our
    estimators; here only the tests of the cases above (the whole file: run the tool)."""
    if not SKLEARN_TEST_FILE.is_file():
        pytest.skip("this scikit-learn was installed without its tests")
    env = {**os.environ, "PYTHONPATH": str(Path(backprop.__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "sklearn_mlp_tests.py"), "-q",
                          "-k", "early_stopping_stratified or preserve_feature_names or partial_fit_errors"],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "4 passed" in run.stdout


def test_the_tool_swaps_exactly_the_estimators_import():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import sklearn_mlp_tests as tool
    finally:
        sys.path.remove(str(ROOT / "tools"))
    if not SKLEARN_TEST_FILE.is_file():
        pytest.skip("this scikit-learn was installed without its tests")
    text = tool.installed_test_file().read_text(encoding="utf-8")
    out = tool.swapped(text)
    assert tool.SKLEARN_IMPORT not in out and out.count(tool.BACKPROP_IMPORT) == 1
    assert out.replace(tool.BACKPROP_IMPORT, tool.SKLEARN_IMPORT) == text
    with pytest.raises(SystemExit, match="found it 0 times"):
        tool.swapped("import sklearn\n")
