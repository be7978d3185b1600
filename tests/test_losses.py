"""Losses: the value is the batch mean of the per-sample cost, the gradient is its exact
derivative, integer labels and one-hot rows give the same numbers, and the logit losses
are stable at ±1000."""

from __future__ import annotations

import math

import numpy as np
import pytest

import backprop as bp
from backprop.losses import one_hot

RNG = np.random.default_rng(2024)
N, K = 5, 4
LOGITS = RNG.standard_normal((N, K)) * 2
LABELS = np.array([0, 3, 1, 1, 2])
ONE_HOT = np.eye(K)[LABELS]
REAL = RNG.standard_normal((N, K))
PROBS = RNG.uniform(0, 1, (N, K))
SOFT = RNG.dirichlet(np.ones(K), size=N)

# (loss, targets) for every loss and every target form it accepts
CASES = [
    pytest.param(bp.Quadratic(), REAL, id="quadratic-real"),
    pytest.param(bp.Quadratic(), LABELS, id="quadratic-labels"),
    pytest.param(bp.Huber(), REAL * 2, id="huber-real"),
    pytest.param(bp.Huber(0.3), LABELS, id="huber-labels"),
    pytest.param(bp.CrossEntropy(), LABELS, id="ce-labels"),
    pytest.param(bp.CrossEntropy(), ONE_HOT, id="ce-onehot"),
    pytest.param(bp.CrossEntropy(), SOFT, id="ce-soft"),
    pytest.param(bp.BinaryCrossEntropy(), LABELS, id="bce-labels"),
    pytest.param(bp.BinaryCrossEntropy(), PROBS, id="bce-probs"),
]


@pytest.mark.parametrize(("loss", "y"), CASES)
def test_value_is_the_batch_mean_of_per_sample(loss: bp.Loss, y) -> None:
    per_sample = loss.per_sample(LOGITS, y)
    assert per_sample.shape == (N,)
    assert isinstance(loss.value(LOGITS, y), float)
    np.testing.assert_allclose(loss.value(LOGITS, y), per_sample.mean(), rtol=1e-15)
    # and each C_x is the value of that sample alone
    for n in range(N):
        np.testing.assert_allclose(loss.value(LOGITS[n:n + 1], y[n:n + 1]), per_sample[n],
                                   rtol=1e-15)


@pytest.mark.parametrize(("loss", "y"), CASES)
def test_grad_is_the_derivative_of_value(loss: bp.Loss, y) -> None:
    """Central differences of ``value`` (which carries the 1/N of the mean) entry by entry."""
    grad = loss.grad(LOGITS, y)
    assert grad.shape == LOGITS.shape and grad.dtype == LOGITS.dtype
    eps = 1e-6
    fd = np.zeros_like(LOGITS)
    for idx in np.ndindex(*LOGITS.shape):
        step = np.zeros_like(LOGITS)
        step[idx] = eps
        fd[idx] = (loss.value(LOGITS + step, y) - loss.value(LOGITS - step, y)) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("loss", "y"), CASES)
def test_grad_carries_one_over_n(loss: bp.Loss, y) -> None:
    """grad[n] = ∇_{a_n} C_{x_n} / N: the gradient of a one-sample batch, divided by N."""
    grad = loss.grad(LOGITS, y)
    for n in range(N):
        np.testing.assert_allclose(grad[n] * N, loss.grad(LOGITS[n:n + 1], y[n:n + 1])[0],
                                   rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("loss", [bp.CrossEntropy(), bp.BinaryCrossEntropy(), bp.Quadratic(),
                                  bp.Huber(0.5)], ids=repr)
def test_integer_labels_equal_one_hot_exactly(loss: bp.Loss) -> None:
    """Classification targets as class indices or as one-hot rows: the same numbers, to the bit."""
    assert loss.value(LOGITS, LABELS) == loss.value(LOGITS, ONE_HOT)
    np.testing.assert_array_equal(loss.grad(LOGITS, LABELS), loss.grad(LOGITS, ONE_HOT))
    np.testing.assert_array_equal(loss.per_sample(LOGITS, LABELS), loss.per_sample(LOGITS, ONE_HOT))
    # also for float32 outputs, and for an integer-typed one-hot array
    a32 = LOGITS.astype(np.float32)
    assert loss.value(a32, LABELS) == loss.value(a32, ONE_HOT.astype(np.float32))
    np.testing.assert_array_equal(loss.grad(a32, LABELS), loss.grad(a32, ONE_HOT.astype(np.int64)))
    assert loss.grad(a32, LABELS).dtype == np.float32


def test_binary_cross_entropy_single_output_labels() -> None:
    """One sigmoid output: labels 0/1 of shape (N,) equal targets of shape (N, 1)."""
    a = np.array([[2.0], [-1.0], [0.0]])
    labels = np.array([1, 0, 1])
    loss = bp.BinaryCrossEntropy()
    assert loss.value(a, labels) == loss.value(a, labels[:, None].astype(float))
    np.testing.assert_array_equal(loss.grad(a, labels), loss.grad(a, labels[:, None].astype(float)))
    # C_x = −[y log φ(a) + (1 − y) log(1 − φ(a))]: log(1 + e^{−a}) for y = 1, log(1 + e^a) for 0
    np.testing.assert_allclose(loss.per_sample(a, labels),
                               [math.log1p(math.exp(-2.0)), math.log1p(math.exp(-1.0)),
                                math.log(2.0)],
                               rtol=1e-15)
    sig = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0)), 0.5]
    np.testing.assert_allclose(loss.grad(a, labels)[:, 0], (np.array(sig) - labels) / 3, rtol=1e-15)


def test_quadratic_known_values() -> None:
    """C_x = ½‖a − y‖² (seed 000): ½(1 + 4) = 2.5 and ½(0 + 1) = 0.5; mean 1.5; grad (a − y)/N."""
    a = np.array([[1.0, 2.0], [3.0, 3.0]])
    y = np.array([[0.0, 0.0], [3.0, 4.0]])
    loss = bp.Quadratic()
    np.testing.assert_array_equal(loss.per_sample(a, y), [2.5, 0.5])
    assert loss.value(a, y) == 1.5
    np.testing.assert_array_equal(loss.grad(a, y), [[0.5, 1.0], [0.0, -0.5]])


def test_cross_entropy_known_values() -> None:
    """C_x = log Σ e^{a_j} − a_y; grad = (softmax(a) − y)/N."""
    a = np.log(np.array([[1.0, 2.0, 3.0]]))   # softmax = (1, 2, 3)/6
    loss = bp.CrossEntropy()
    np.testing.assert_allclose(loss.value(a, [2]), math.log(2.0), rtol=1e-15)   # −log(3/6)
    np.testing.assert_allclose(loss.value(a, [0]), math.log(6.0), rtol=1e-15)
    np.testing.assert_allclose(loss.grad(a, [2]), [[1 / 6, 2 / 6, 3 / 6 - 1]], rtol=1e-15)
    # soft targets: −Σ y_j log p_j
    y = np.array([[0.5, 0.25, 0.25]])
    expected = -(0.5 * math.log(1 / 6) + 0.25 * math.log(2 / 6) + 0.25 * math.log(3 / 6))
    np.testing.assert_allclose(loss.value(a, y), expected, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_logits_of_1000(dtype) -> None:
    a = np.array([[1000.0, -1000.0, 0.0],
                  [-1000.0, 1000.0, 1000.0],
                  [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    loss = bp.CrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        per_sample = loss.per_sample(a, [0, 0, 2])
        value = loss.value(a, [0, 0, 2])
        grad = loss.grad(a, [0, 0, 2])
    assert np.isfinite(per_sample).all() and np.isfinite(grad).all() and math.isfinite(value)
    # right class at +1000: cost log(1 + 2e^{−1000}) = 0; wrong class, 2000 behind a tie:
    # 2000 + log 2; three equal logits: log 3. logsumexp(a) − a_y subtracts numbers of size
    # 1000, so the cost is exact to about one ulp of 1000 (1e-13 in float64, 6e-5 in float32).
    ulp = np.spacing(dtype(1000.0))
    np.testing.assert_allclose(per_sample, [0.0, 2000.0 + math.log(2.0), math.log(3.0)],
                               rtol=0, atol=4 * ulp)
    np.testing.assert_allclose(value, (2000.0 + math.log(2.0) + math.log(3.0)) / 3, rtol=0,
                               atol=4 * ulp)
    # the fused gradient (softmax(a) − y)/N needs no subtraction of large numbers: exact
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(grad * 3, [[0.0, 0.0, 0.0], [-1.0, 0.5, 0.5],
                                          [1 / 3, 1 / 3, -2 / 3]], rtol=0, atol=4 * eps)
    assert grad.dtype == dtype


def test_binary_cross_entropy_is_stable_for_logits_of_1000() -> None:
    a = np.array([[1000.0, -1000.0, 1000.0, -1000.0]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])
    loss = bp.BinaryCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(loss.per_sample(a, y), [2000.0])   # 0 + 0 + 1000 + 1000
        np.testing.assert_array_equal(loss.grad(a, y), [[0.0, 0.0, 1.0, -1.0]])


def test_huber_both_regimes() -> None:
    """h(r) = ½r² for |r| ≤ δ, δ(|r| − ½δ) beyond; ∂h/∂a = clip(r, −δ, δ)."""
    loss = bp.Huber(delta=1.0)
    a = np.array([[0.5, -0.25, 3.0, -4.0, 1.0]])
    y = np.zeros_like(a)
    # quadratic: 0.125, 0.03125; linear: 1·(3 − ½) = 2.5, 1·(4 − ½) = 3.5; the seam: ½
    np.testing.assert_array_equal(loss.per_sample(a, y), [0.125 + 0.03125 + 2.5 + 3.5 + 0.5])
    np.testing.assert_array_equal(loss.grad(a, y), [[0.5, -0.25, 1.0, -1.0, 1.0]])
    # δ = 2: the same residuals, 3 and −4 in the linear regime with slope ±2
    loss2 = bp.Huber(delta=2.0)
    np.testing.assert_array_equal(loss2.per_sample(a, y), [0.125 + 0.03125 + 4.0 + 6.0 + 0.5])
    np.testing.assert_array_equal(loss2.grad(a, y), [[0.5, -0.25, 2.0, -2.0, 1.0]])
    # continuous value and slope at the seam |r| = δ
    for r in (1.0 - 1e-9, 1.0 + 1e-9):
        np.testing.assert_allclose(loss.value(np.array([[r]]), [[0.0]]), 0.5, atol=2e-9)
        np.testing.assert_allclose(loss.grad(np.array([[r]]), [[0.0]]), 1.0, atol=2e-9)
    # small residuals: Huber is exactly the quadratic cost
    small = np.array([[0.1, -0.7], [0.3, 0.0]])
    zero = np.zeros_like(small)
    assert loss.value(small, zero) == bp.Quadratic().value(small, zero)


def test_quadratic_with_integer_labels_equals_one_hot() -> None:
    """Nielsen's MNIST setup: integer digits become one-hot target vectors."""
    a = RNG.uniform(0, 1, (6, 10))
    labels = np.array([3, 1, 4, 1, 5, 9])
    loss = bp.Quadratic()
    assert loss.value(a, labels) == loss.value(a, one_hot(labels, 10, np.float64))
    np.testing.assert_allclose(loss.grad(a, labels), (a - np.eye(10)[labels]) / 6, rtol=1e-15)


def test_losses_accept_lists() -> None:
    assert bp.Quadratic().value([[1.0, 0.0]], [[0.0, 0.0]]) == 0.5
    assert bp.CrossEntropy().value([[0.0, 0.0]], [1]) == pytest.approx(math.log(2), rel=1e-15)
