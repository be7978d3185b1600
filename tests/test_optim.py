"""Tests of backprop.optim and backprop.schedules, written as worked examples.

Most tests use one tiny weight matrix and one bias, with gradients held fixed,
so that every expected value can be worked out by hand in the comments:

    W  = [[1, -2], [0.5, 3]]       b  = [0.1, -0.2]
    gW = [[0.2, -0.4], [-0.1, 0.5]] gb = [0.3, -0.1]
    sign(gW) = [[1, -1], [-1, 1]]   sign(gb) = [1, -1]
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from backprop.errors import ConfigError, DTypeError, InvalidValueError, ShapeError
from backprop.optim import SGD, Adam, AdamW, Optimizer, RMSprop
from backprop.optim.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearWarmup,
    Schedule,
    StepDecay,
)

W0 = [[1.0, -2.0], [0.5, 3.0]]
B0 = [0.1, -0.2]
GW = [[0.2, -0.4], [-0.1, 0.5]]
GB = [0.3, -0.1]
SIGN_GW = np.array([[1.0, -1.0], [-1.0, 1.0]])
SIGN_GB = np.array([1.0, -1.0])


def fresh(dtype=np.float64):
    """params, grads: new copies of W, b and their fixed gradients."""
    params = [np.array(W0, dtype=dtype), np.array(B0, dtype=dtype)]
    grads = [np.array(GW, dtype=dtype), np.array(GB, dtype=dtype)]
    return params, grads


def steps(opt, n, dtype=np.float64):
    """Run n steps with the fixed gradients; return the params."""
    params, grads = fresh(dtype)
    for _ in range(n):
        opt.step(params, [g.copy() for g in grads])
    return params


# --------------------------------------------------------------------------- SGD


def test_sgd_is_the_notes_gradient_descent():
    # w ← w − η g with η = 0.1, the same g twice:
    # W1 = W − 0.1 gW = [[1 − 0.02, −2 + 0.04], [0.5 + 0.01, 3 − 0.05]]
    #                 = [[0.98, −1.96], [0.51, 2.95]]
    # b1 = b − 0.1 gb = [0.1 − 0.03, −0.2 + 0.01] = [0.07, −0.19]
    # W2 = W1 − 0.1 gW = [[0.96, −1.92], [0.52, 2.90]],  b2 = [0.04, −0.18]
    opt = SGD(lr=0.1)
    params, grads = fresh()
    opt.step(params, grads)
    assert_allclose(params[0], [[0.98, -1.96], [0.51, 2.95]], rtol=0, atol=1e-15)
    assert_allclose(params[1], [0.07, -0.19], rtol=0, atol=1e-15)
    opt.step(params, grads)
    assert_allclose(params[0], [[0.96, -1.92], [0.52, 2.90]], rtol=0, atol=1e-15)
    assert_allclose(params[1], [0.04, -0.18], rtol=0, atol=1e-15)
    assert opt.t == 2
    assert opt.state_dict() == {"optimizer": "SGD", "t": 2}  # plain SGD keeps no arrays


def test_momentum_three_steps_by_hand():
    # v ← 0.9 v + g, w ← w − 0.1 v, with v0 = 0 and the same g each time:
    # v1 = g,          W1 = W − 0.1 g
    # v2 = 1.9 g,      W2 = W − (0.1 + 0.19) g  = W − 0.29 g
    # v3 = 2.71 g,     W3 = W − (0.29 + 0.271) g = W − 0.561 g
    # W2 = [[1 − 0.058, −2 + 0.116], [0.5 + 0.029, 3 − 0.145]] = [[0.942, −1.884], [0.529, 2.855]]
    # b2 = [0.1 − 0.087, −0.2 + 0.029] = [0.013, −0.171]
    # W3 = [[1 − 0.1122, −2 + 0.2244], [0.5 + 0.0561, 3 − 0.2805]]
    #    = [[0.8878, −1.7756], [0.5561, 2.7195]]
    opt = SGD(lr=0.1, momentum=0.9)
    assert_allclose(steps(opt, 1)[0], [[0.98, -1.96], [0.51, 2.95]], atol=1e-14)
    opt = SGD(lr=0.1, momentum=0.9)
    w2, b2 = steps(opt, 2)
    assert_allclose(w2, [[0.942, -1.884], [0.529, 2.855]], atol=1e-14)
    assert_allclose(b2, [0.013, -0.171], atol=1e-14)
    assert_allclose(opt.state_dict()["velocity"][0], 1.9 * np.array(GW), atol=1e-14)
    opt = SGD(lr=0.1, momentum=0.9)
    assert_allclose(steps(opt, 3)[0], [[0.8878, -1.7756], [0.5561, 2.7195]], atol=1e-14)


def test_nesterov_differs_from_momentum_by_hand():
    # Nesterov: v ← 0.9 v + g, w ← w − 0.1 (g + 0.9 v)
    # step 1: v1 = g,     W1 = W − 0.1 (1 + 0.9) g   = W − 0.19 g
    # step 2: v2 = 1.9 g, W2 = W1 − 0.1 (1 + 1.71) g = W − (0.19 + 0.271) g = W − 0.461 g
    # W2 = [[1 − 0.0922, −2 + 0.1844], [0.5 + 0.0461, 3 − 0.2305]]
    #    = [[0.9078, −1.8156], [0.5461, 2.7695]]
    # Classical momentum gave W − 0.29 g, so Nesterov − classical = −0.171 g
    #   = [[−0.0342, 0.0684], [0.0171, −0.0855]]
    w1 = steps(SGD(lr=0.1, momentum=0.9, nesterov=True), 1)[0]
    assert_allclose(w1, [[0.962, -1.924], [0.519, 2.905]], atol=1e-14)
    w2, b2 = steps(SGD(lr=0.1, momentum=0.9, nesterov=True), 2)
    assert_allclose(w2, [[0.9078, -1.8156], [0.5461, 2.7695]], atol=1e-14)
    assert_allclose(b2, [0.1 - 0.461 * 0.3, -0.2 + 0.461 * 0.1], atol=1e-14)
    classical = steps(SGD(lr=0.1, momentum=0.9), 2)[0]
    assert_allclose(w2 - classical, [[-0.0342, 0.0684], [0.0171, -0.0855]], atol=1e-14)


def test_sgd_weight_decay_applies_to_W_and_not_to_b():
    # g ← g + wd·w for W only, wd = 0.5:
    # gW + 0.5 W = [[0.2 + 0.5, −0.4 − 1], [−0.1 + 0.25, 0.5 + 1.5]] = [[0.7, −1.4], [0.15, 2]]
    # W1 = W − 0.1 · that = [[0.93, −1.86], [0.485, 2.8]]
    # b1 = b − 0.1 gb     = [0.07, −0.19]    (no decay on the bias)
    w1, b1 = steps(SGD(lr=0.1, weight_decay=0.5), 1)
    assert_allclose(w1, [[0.93, -1.86], [0.485, 2.8]], atol=1e-15)
    assert_allclose(b1, [0.07, -0.19], atol=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda wd: SGD(lr=0.1, weight_decay=wd),
        lambda wd: SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=wd),
        lambda wd: RMSprop(lr=0.01, momentum=0.5, weight_decay=wd),
        lambda wd: Adam(lr=0.1, weight_decay=wd),
        lambda wd: AdamW(lr=0.1, weight_decay=wd),
    ],
    ids=["sgd", "nesterov", "rmsprop", "adam", "adamw"],
)
def test_weight_decay_never_touches_biases(make):
    w_decayed, b_decayed = steps(make(0.5), 3)
    w_plain, b_plain = steps(make(0.0), 3)
    assert_array_equal(b_decayed, b_plain)
    assert not np.allclose(w_decayed, w_plain)


# ----------------------------------------------------------------------- RMSprop


def test_rmsprop_two_steps_by_hand():
    # v ← 0.9 v + 0.1 g², w ← w − 0.01 g / (√v + 1e-8), same g twice (ε moves the
    # results by ~1e-8 at |g| = 0.1, hence atol=1e-7):
    # v1 = 0.1 g²,                  step 1 = 0.01 · sign(g) / √0.1  = 0.0316227766 sign(g)
    # v2 = 0.09 g² + 0.1 g² = 0.19 g², step 2 = 0.01 · sign(g) / √0.19 = 0.0229415734 sign(g)
    opt = RMSprop(lr=0.01, rho=0.9, eps=1e-8)
    params, grads = fresh()
    opt.step(params, grads)
    assert_allclose(params[0], np.array(W0) - 0.0316227766 * SIGN_GW, atol=1e-7)
    assert_allclose(params[1], np.array(B0) - 0.0316227766 * SIGN_GB, atol=1e-7)
    assert_allclose(opt.state_dict()["square_avg"][0], 0.1 * np.square(GW), atol=1e-16)
    opt.step(params, grads)
    assert_allclose(params[0], np.array(W0) - (0.0316227766 + 0.0229415734) * SIGN_GW, atol=1e-7)


def test_rmsprop_with_momentum_by_hand():
    # b ← 0.5 b + g / (√v + ε), w ← w − 0.01 b
    # b1 = sign(g)/√0.1 = 3.16227766 sign(g)
    # b2 = 0.5 · 3.16227766 + 1/√0.19 = 1.58113883 + 2.29415734 = 3.87529617 (times sign(g))
    # W2 = W − 0.01 (3.16227766 + 3.87529617) sign(g) = W − 0.0703757383 sign(g)
    w2, b2 = steps(RMSprop(lr=0.01, momentum=0.5), 2)
    assert_allclose(w2, np.array(W0) - 0.0703757383 * SIGN_GW, atol=1e-7)
    assert_allclose(b2, np.array(B0) - 0.0703757383 * SIGN_GB, atol=1e-7)


# -------------------------------------------------------------------- Adam, AdamW


def test_adam_two_steps_by_hand():
    # Step 1 (k = 1) with g:   m = 0.1 g, v = 0.001 g²; m̂ = m/0.1 = g, v̂ = v/0.001 = g²
    #   W1 = W − 0.1 g/|g| = W − 0.1 sign(g) = [[0.9, −1.9], [0.6, 2.9]], b1 = [0.0, −0.1]
    # Step 2 (k = 2) with −g:  m = 0.9·0.1 g − 0.1 g = −0.01 g,   m̂ = −0.01 g / (1 − 0.81) = −g/19
    #   v = 0.999·0.001 g² + 0.001 g² = 0.001999 g², v̂ = 0.001999 g² / (1 − 0.998001) = g²
    #   W2 = W1 − 0.1 (−g/19)/|g| = W1 + sign(g)/190,  1/190 = 0.00526315789
    opt = Adam(lr=0.1)
    params, grads = fresh()
    opt.step(params, grads)
    assert_allclose(params[0], [[0.9, -1.9], [0.6, 2.9]], atol=1e-7)
    assert_allclose(params[1], [0.0, -0.1], atol=1e-7)
    opt.step(params, [-g for g in grads])
    assert_allclose(params[0], np.array([[0.9, -1.9], [0.6, 2.9]]) + SIGN_GW / 190, atol=1e-7)
    assert_allclose(opt.state_dict()["m"][0], -0.01 * np.array(GW), atol=1e-15)
    assert_allclose(opt.state_dict()["v"][1], 0.001999 * np.square(GB), atol=1e-15)


def test_adam_l2_against_adamw_decoupled_decay():
    # wd = 0.5, η = 0.1, one step.
    # Adam (L2): g' = gW + 0.5 W = [[0.7, −1.4], [0.15, 2]]; the first Adam step is η·sign(g'):
    #   W1 = W − 0.1 sign(g') = [[0.9, −1.9], [0.4, 2.9]]   (the decay only flipped one sign)
    # AdamW: W ← (1 − 0.1·0.5) W = 0.95 W = [[0.95, −1.9], [0.475, 2.85]], then − 0.1 sign(gW):
    #   W1 = [[0.85, −1.8], [0.575, 2.75]]
    # AdamW − Adam without decay ([[0.9, −1.9], [0.6, 2.9]]) = −0.05 W exactly the decoupled shrink
    # Both leave b alone: b1 = b − 0.1 sign(gb) = [0.0, −0.1]
    w_l2, b_l2 = steps(Adam(lr=0.1, weight_decay=0.5), 1)
    w_dec, b_dec = steps(AdamW(lr=0.1, weight_decay=0.5), 1)
    w_none, _ = steps(Adam(lr=0.1), 1)
    assert_allclose(w_l2, [[0.9, -1.9], [0.4, 2.9]], atol=1e-7)
    assert_allclose(w_dec, [[0.85, -1.8], [0.575, 2.75]], atol=1e-7)
    assert_allclose(w_dec - w_none, -0.05 * np.array(W0), atol=1e-12)
    assert_allclose(b_l2, [0.0, -0.1], atol=1e-7)
    assert_array_equal(b_dec, b_l2)
    assert AdamW().weight_decay == 1e-2


# ------------------------------------------------------------ clipping, max-norm


def test_clip_norm_scales_all_gradients_by_the_global_norm():
    # grads: gW = [[3, 0], [0, 0]], gb = [0, 4]; global norm √(9 + 16) = 5 > clip_norm = 1,
    # so every grad is scaled by 1/5 in place: gW = [[0.6, 0], [0, 0]], gb = [0, 0.8]
    # SGD with η = 1: W1 = [[1 − 0.6, −2], [0.5, 3]], b1 = [0.1, −0.2 − 0.8] = [0.1, −1.0]
    params, _ = fresh()
    grads = [np.array([[3.0, 0.0], [0.0, 0.0]]), np.array([0.0, 4.0])]
    opt = SGD(lr=1.0, clip_norm=1.0)
    assert opt.last_grad_norm is None
    opt.step(params, grads)
    assert opt.last_grad_norm == pytest.approx(5.0)
    assert_allclose(grads[0], [[0.6, 0.0], [0.0, 0.0]], atol=1e-15)
    assert_allclose(grads[1], [0.0, 0.8], atol=1e-15)
    assert_allclose(params[0], [[0.4, -2.0], [0.5, 3.0]], atol=1e-15)
    assert_allclose(params[1], [0.1, -1.0], atol=1e-15)


def test_clip_norm_leaves_small_gradients_alone():
    params, grads = fresh()
    # ‖(gW, gb)‖² = 0.04 + 0.16 + 0.01 + 0.25 + 0.09 + 0.01 = 0.56 < 1
    opt = SGD(lr=0.1, clip_norm=1.0)
    opt.step(params, grads)
    assert opt.last_grad_norm == pytest.approx(math.sqrt(0.56))
    assert_array_equal(grads[0], GW)
    assert_allclose(params[0], [[0.98, -1.96], [0.51, 2.95]], atol=1e-15)


def test_clip_norm_float32_squares_that_overflow_are_recounted():
    params = [np.zeros((2, 2), np.float32)]
    grads = [np.full((2, 2), 1e30, np.float32)]  # (1e30)² overflows float32
    opt = SGD(lr=1.0, clip_norm=1.0)
    opt.step(params, grads)
    assert opt.last_grad_norm == pytest.approx(2e30, rel=1e-6)
    assert_allclose(params[0], -0.5, rtol=1e-6)


def test_max_norm_rescales_only_the_long_rows_of_weight_matrices():
    # W = [[3, 4], [0.6, 0.8]]: row norms 5 and 1. max_norm = 2:
    # row 0 → [3, 4] · 2/5 = [1.2, 1.6]; row 1 (norm 1 ≤ 2) untouched, bit for bit.
    # b = [10, 0] has norm 10 but biases are not constrained.
    params = [np.array([[3.0, 4.0], [0.6, 0.8]]), np.array([10.0, 0.0])]
    grads = [np.zeros((2, 2)), np.zeros(2)]
    SGD(lr=0.1, max_norm=2.0).step(params, grads)
    assert_allclose(params[0][0], [1.2, 1.6], atol=1e-15)
    assert_array_equal(params[0][1], [0.6, 0.8])
    assert_array_equal(params[1], [10.0, 0.0])


def test_max_norm_is_applied_after_the_update():
    # SGD, η = 1, gW = [[−3, −4], [0, 0]] turns row 0 of W = 0 into [3, 4] (norm 5), cut to 1:
    params = [np.zeros((2, 2))]
    SGD(lr=1.0, max_norm=1.0).step(params, [np.array([[-3.0, -4.0], [0.0, 0.0]])])
    assert_allclose(params[0], [[0.6, 0.8], [0.0, 0.0]], atol=1e-15)


# --------------------------------------------------------------------- schedules


def test_schedule_values():
    assert [Constant()(k, 0.1) for k in (0, 1, 100)] == [0.1, 0.1, 0.1]
    # StepDecay(3, 0.5): 1 · 0.5^(k // 3)
    assert [StepDecay(3, gamma=0.5)(k, 1.0) for k in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    # ExponentialDecay(0.9): 2 · 0.9^k → 2, 1.8, 1.62
    assert [ExponentialDecay(0.9)(k, 2.0) for k in range(3)] == pytest.approx([2.0, 1.8, 1.62])
    # CosineDecay(4, 0.2): 0.2 + 0.8 (1 + cos(πk/4))/2
    #   → 1, 0.2 + 0.4 (1 + √½) = 0.882843, 0.6, 0.2 + 0.4 (1 − √½) = 0.317157, 0.2
    cosine = CosineDecay(4, min_lr=0.2)
    assert [cosine(k, 1.0) for k in range(5)] == pytest.approx([1.0, 0.882843, 0.6, 0.317157, 0.2])
    assert cosine(100, 1.0) == 0.2
    # LinearWarmup(4): 1 · (k + 1)/4 → 0.25, 0.5, 0.75, 1, then constant
    assert [LinearWarmup(4)(k, 1.0) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    # ... then StepDecay(2, 0.5) counted from the end of the warm-up: k = 4, 5 → 1; k = 6, 7 → 0.5
    warm = LinearWarmup(4, after=StepDecay(2, gamma=0.5))
    assert [warm(k, 1.0) for k in range(4, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_schedule_reprs():
    assert repr(StepDecay(3, gamma=0.5)) == "StepDecay(step_size=3, gamma=0.5)"
    assert repr(LinearWarmup(10, after=CosineDecay(90))) == (
        "LinearWarmup(warmup_steps=10, after=CosineDecay(total_steps=90, min_lr=0.0))"
    )
    assert repr(Constant()) == "Constant()"
    assert isinstance(ExponentialDecay(0.5), Schedule)


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: StepDecay(0), InvalidValueError, "step_size"),
        (lambda: StepDecay(2.5), DTypeError, "step_size"),
        (lambda: StepDecay(2, gamma=0.0), InvalidValueError, "gamma"),
        (lambda: ExponentialDecay(1.5), InvalidValueError, "gamma"),
        (lambda: ExponentialDecay(float("nan")), InvalidValueError, "gamma"),
        (lambda: CosineDecay(0), InvalidValueError, "total_steps"),
        (lambda: CosineDecay(10, min_lr=-1.0), InvalidValueError, "min_lr"),
        (lambda: LinearWarmup(-3), InvalidValueError, "warmup_steps"),
        (lambda: LinearWarmup(3, after="cosine"), DTypeError, "after"),
        (lambda: Constant()(-1, 0.1), InvalidValueError, "step"),
        (lambda: Constant()(1.5, 0.1), DTypeError, "step"),
    ],
)
def test_schedule_bad_arguments(make, error, name):
    with pytest.raises(error, match=name):
        make()


def test_optimizer_follows_its_schedule():
    # StepDecay(1, 0.5) with η = 0.1: step 1 uses 0.1, step 2 uses 0.05:
    # W2 = W − 0.15 gW = [[0.97, −1.94], [0.515, 2.925]]
    opt = SGD(lr=0.1, schedule=StepDecay(1, gamma=0.5))
    assert opt.lr == 0.1
    w2, _ = steps(opt, 2)
    assert_allclose(w2, [[0.97, -1.94], [0.515, 2.925]], atol=1e-15)
    assert opt.lr == 0.025
    opt.lr = 1.0  # sets the base rate
    assert opt.base_lr == 1.0 and opt.lr == 0.25


def test_a_schedule_that_returns_nan_is_refused():
    opt = SGD(lr=0.1, schedule=lambda step, base: float("nan"))
    params, grads = fresh()
    with pytest.raises(InvalidValueError, match="schedule"):
        opt.step(params, grads)
    assert_array_equal(params[0], W0)


# ---------------------------------------------------------------------- state


def quadratic_grads(params):
    """Gradients of ½‖W − T‖² + ½‖b − c‖² (a different g at every step)."""
    W, b = params
    return [W - np.array([[0.3, 0.1], [-0.2, 0.4]]), b - np.array([0.5, -0.5])]


ALL_CONFIGS = {
    "sgd": lambda: SGD(lr=0.1, weight_decay=0.01, clip_norm=1.0),
    "momentum": lambda: SGD(lr=0.1, momentum=0.9, max_norm=2.5),
    "nesterov": lambda: SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "rmsprop": lambda: RMSprop(lr=0.01, weight_decay=0.1, schedule=ExponentialDecay(0.9)),
    "rmsprop-momentum": lambda: RMSprop(lr=0.01, momentum=0.5, clip_norm=0.5),
    "adam": lambda: Adam(lr=0.05, weight_decay=0.1, max_norm=2.5, clip_norm=1.0),
    "adamw": lambda: AdamW(lr=0.05, schedule=LinearWarmup(3, after=CosineDecay(20))),
}


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_state_dict_round_trip_continues_bitwise(name):
    make = ALL_CONFIGS[name]
    opt = make()
    params, _ = fresh()
    for _ in range(5):
        opt.step(params, quadratic_grads(params))
    saved_state, saved_params = opt.state_dict(), [p.copy() for p in params]
    for _ in range(5):
        opt.step(params, quadratic_grads(params))

    resumed = make()
    resumed.load_state_dict(saved_state)
    assert resumed.t == 5
    for _ in range(5):
        resumed.step(saved_params, quadratic_grads(saved_params))
    for a, b in zip(params, saved_params, strict=True):
        assert_array_equal(a, b)
    after, again = opt.state_dict(), resumed.state_dict()
    assert after.keys() == again.keys()
    for key in after:
        if isinstance(after[key], list):
            for a, b in zip(after[key], again[key], strict=True):
                assert_array_equal(a, b)


def test_state_dict_holds_copies():
    opt = Adam(lr=0.1)
    params, grads = fresh()
    opt.step(params, grads)
    state = opt.state_dict()
    state["m"][0][...] = 123.0
    assert not np.any(opt.state_dict()["m"][0] == 123.0)
    opt.load_state_dict(state)
    state["m"][0][...] = 0.0
    assert np.all(opt.state_dict()["m"][0] == 123.0)


def test_state_dict_before_the_first_step_loads_into_a_fresh_optimizer():
    opt = Adam()
    assert opt.state_dict() == {"optimizer": "Adam", "t": 0}
    other = Adam()
    other.load_state_dict(opt.state_dict())
    params, grads = fresh()
    other.step(params, grads)
    assert other.t == 1


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        (lambda s: s.update(optimizer="SGD"), ConfigError, "optimizer"),
        (lambda s: s.pop("t"), ConfigError, "'t'"),
        (lambda s: s.update(t=-1), InvalidValueError, "t"),
        (lambda s: s.update(t=2.0), DTypeError, "t"),
        (lambda s: s.pop("v"), ConfigError, "lacks"),
        (lambda s: s.update(velocity=[]), ConfigError, "unknown"),
        (lambda s: s.update(v=[np.zeros((2, 2)), np.zeros(3)]), ShapeError, "'v'"),
        (lambda s: s.update(v="zeros"), DTypeError, "'v'"),
        (lambda s: s.update(m=[np.zeros((2, 2), int), np.zeros(2, int)]), DTypeError, "'m'"),
    ],
)
def test_load_state_dict_refuses_bad_state(mutate, error, words):
    opt = Adam(lr=0.1)
    params, grads = fresh()
    opt.step(params, grads)
    state = opt.state_dict()
    mutate(state)
    before = opt.state_dict()
    with pytest.raises(error, match=words):
        opt.load_state_dict(state)
    assert opt.t == before["t"]  # nothing changed
    assert_array_equal(opt.state_dict()["m"][0], before["m"][0])


def test_loaded_state_must_match_the_parameters_at_the_next_step():
    donor = SGD(lr=0.1, momentum=0.9)
    donor.step([np.zeros((3, 3))], [np.ones((3, 3))])
    opt = SGD(lr=0.1, momentum=0.9)
    opt.load_state_dict(donor.state_dict())
    params, grads = fresh()
    with pytest.raises(ShapeError, match="velocity"):
        opt.step(params, grads)
    opt32 = SGD(lr=0.1, momentum=0.9)
    donor_state = donor.state_dict()
    donor_state["velocity"] = [np.zeros((2, 2)), np.zeros(2)]
    opt32.load_state_dict(donor_state)
    params32, grads32 = fresh(np.float32)
    with pytest.raises(DTypeError, match="dtype"):
        opt32.step(params32, grads32)


# ----------------------------------------------------------- dtype, allocation


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_float32_params_stay_float32(name):
    opt = ALL_CONFIGS[name]()
    params, _ = fresh(np.float32)
    for _ in range(3):
        opt.step(params, [g.astype(np.float32) for g in quadratic_grads(params)])
    assert all(p.dtype == np.float32 for p in params)
    for value in opt.state_dict().values():
        if isinstance(value, list):
            assert all(a.dtype == np.float32 for a in value)
    # and the float32 run tracks the float64 one
    opt64 = ALL_CONFIGS[name]()
    params64, _ = fresh()
    for _ in range(3):
        opt64.step(params64, quadratic_grads(params64))
    assert_allclose(params[0], params64[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_steps_after_the_first_allocate_nothing(name, dtype):
    # 128 × 256 weights: an allocated temporary would weigh 128 KiB (float32) or more,
    # while 100 steps' worth of Python floats and views stays far below 8 KiB.
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((128, 256)).astype(dtype), rng.standard_normal(128).astype(dtype)]
    grads = [rng.standard_normal((128, 256)).astype(dtype), rng.standard_normal(128).astype(dtype)]
    opt = ALL_CONFIGS[name]()
    opt.step(params, grads)  # allocates the state
    opt.step(params, grads)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(100):
            opt.step(params, grads)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 8192
    assert after - before < 1024


# ------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: SGD(lr=0.0), InvalidValueError, "lr"),
        (lambda: SGD(lr=-0.1), InvalidValueError, "lr"),
        (lambda: SGD(lr=float("inf")), InvalidValueError, "lr"),
        (lambda: SGD(lr="0.1"), DTypeError, "lr"),
        (lambda: SGD(lr=0.1, momentum=1.0), InvalidValueError, "momentum"),
        (lambda: SGD(lr=0.1, momentum=-0.5), InvalidValueError, "momentum"),
        (lambda: SGD(lr=0.1, nesterov=True), ConfigError, "nesterov"),
        (lambda: SGD(lr=0.1, momentum=0.9, nesterov="yes"), DTypeError, "nesterov"),
        (lambda: SGD(lr=0.1, weight_decay=-1e-4), InvalidValueError, "weight_decay"),
        (lambda: SGD(lr=0.1, clip_norm=0.0), InvalidValueError, "clip_norm"),
        (lambda: SGD(lr=0.1, max_norm=-3.0), InvalidValueError, "max_norm"),
        (lambda: SGD(lr=0.1, schedule=0.5), DTypeError, "schedule"),
        (lambda: RMSprop(rho=1.0), InvalidValueError, "rho"),
        (lambda: RMSprop(eps=0.0), InvalidValueError, "eps"),
        (lambda: RMSprop(momentum=1.5), InvalidValueError, "momentum"),
        (lambda: Adam(beta1=1.0), InvalidValueError, "beta1"),
        (lambda: Adam(beta2=-0.1), InvalidValueError, "beta2"),
        (lambda: Adam(eps=-1e-8), InvalidValueError, "eps"),
        (lambda: AdamW(weight_decay=float("nan")), InvalidValueError, "weight_decay"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, error, name):
    with pytest.raises(error, match=name):
        make()


def test_step_checks_lengths_and_shapes():
    opt = SGD(lr=0.1, momentum=0.9)
    params, grads = fresh()
    with pytest.raises(ShapeError, match="grads"):
        opt.step(params, grads[:1])
    with pytest.raises(ShapeError, match=r"grads\[1\]"):
        opt.step(params, [grads[0], np.zeros((1, 2))])
    opt.step(params, grads)
    with pytest.raises(ShapeError, match=r"grads\[0\]"):
        opt.step(params, [np.zeros((1, 2)), grads[1]])  # would broadcast without the check
    with pytest.raises(ShapeError, match="first stepped"):
        opt.step(params[:1], grads[:1])
    with pytest.raises(ShapeError, match=r"params\[1\]"):
        opt.step([params[0], np.zeros(3)], [grads[0], np.zeros(3)])


def test_step_checks_dtypes_and_writability_at_the_first_step():
    with pytest.raises(DTypeError, match=r"params\[0\]"):
        SGD(lr=0.1).step([np.zeros((2, 2), dtype=int)], [np.zeros((2, 2))])
    with pytest.raises(DTypeError, match=r"grads\[0\]"):
        SGD(lr=0.1).step([np.zeros(2)], [[0.0, 0.0]])
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(InvalidValueError, match=r"params\[0\]"):
        SGD(lr=0.1).step([frozen], [np.zeros(2)])


def test_reprs_show_the_hyperparameters():
    assert repr(SGD(lr=0.5)) == "SGD(lr=0.5, momentum=0.0, nesterov=False, weight_decay=0.0)"
    assert repr(AdamW(clip_norm=1.0, schedule=ExponentialDecay(0.5))) == (
        "AdamW(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.01, "
        "clip_norm=1.0, schedule=ExponentialDecay(gamma=0.5))"
    )
    assert repr(RMSprop(momentum=0.5, max_norm=3.0)) == (
        "RMSprop(lr=0.001, rho=0.9, eps=1e-08, momentum=0.5, weight_decay=0.0, max_norm=3.0)"
    )


def test_positional_arguments_follow_the_documented_order():
    opt = SGD(0.1, 0.9, True, 0.01)
    assert (opt.base_lr, opt.momentum, opt.nesterov, opt.weight_decay) == (0.1, 0.9, True, 0.01)
    adam = Adam(0.01, 0.8, 0.99, 1e-6, 0.1)
    assert (adam.beta1, adam.beta2, adam.eps, adam.weight_decay) == (0.8, 0.99, 1e-6, 0.1)
    assert isinstance(adam, Optimizer)


# ----------------------------------------------------------------- convergence


@pytest.mark.parametrize(
    ("make", "n_steps"),
    [
        (lambda L: SGD(lr=1.0 / L), 500),
        (lambda L: SGD(lr=0.2 / L, momentum=0.9), 500),
        (lambda L: SGD(lr=0.2 / L, momentum=0.9, nesterov=True), 500),
        (lambda L: RMSprop(lr=0.01, schedule=CosineDecay(3000)), 3000),
        (lambda L: RMSprop(lr=0.01, momentum=0.5, schedule=CosineDecay(3000)), 3000),
        (lambda L: Adam(lr=0.05, schedule=CosineDecay(3000)), 3000),
        (lambda L: AdamW(lr=0.05, weight_decay=0.0, schedule=CosineDecay(3000)), 3000),
    ],
    ids=["sgd", "momentum", "nesterov", "rmsprop", "rmsprop-momentum", "adam", "adamw"],
)
def test_each_optimizer_minimises_a_quadratic(make, n_steps):
    # f(W) = ½‖A wᵀ − c‖² for W of shape (1, 5); ∇f = (Aᵀ(A wᵀ − c))ᵀ; the minimiser is lstsq(A, c)
    rng = np.random.default_rng(1)
    A = rng.standard_normal((20, 5))
    c = rng.standard_normal(20)
    target = np.linalg.lstsq(A, c, rcond=None)[0]
    L = np.linalg.eigvalsh(A.T @ A).max()  # the gradient's Lipschitz constant
    W, grad = np.zeros((1, 5)), np.zeros((1, 5))
    opt = make(L)
    for _ in range(n_steps):
        grad[0] = A.T @ (A @ W[0] - c)
        opt.step([W], [grad])
    assert_allclose(W[0], target, atol=1e-3)


# ------------------------------------------------------------------ fused updates
#
# fused=True: always the one-pass compiled update; False: always the readable one; None
# (the default): as each step(..., fused=...) asks. A spy stands in for numba's kernels
# module where only the choice is tested (so these run without numba), doing the
# kernels' equations in NumPy and recording each call's array size.


class SpyKernels:
    """The two fused kernels' contract (flat arrays, updated in place), recorded."""

    def __init__(self):
        self.calls = []

    def momentum_update(self, p, g, v, lr, mu, wd, decay, nesterov):
        self.calls.append(("momentum", p.size))
        g = g + wd * p if decay else g
        v *= mu
        v += g
        p -= lr * (g + mu * v) if nesterov else lr * v

    def adam_update(self, p, g, m, v, b1, b2, one_minus_b1, one_minus_b2, step_size, eps_hat, wd, decay,
                    decoupled, shrink):
        self.calls.append(("adam", p.size))
        if decay and decoupled:
            p *= shrink
        elif decay:
            g = g + wd * p
        m *= b1
        m += one_minus_b1 * g
        v *= b2
        v += one_minus_b2 * g * g
        p -= step_size * m / (np.sqrt(v) + eps_hat)


@pytest.fixture
def spy(monkeypatch):
    """Kernels that record their calls, with numba reported installed."""
    from backprop.optim import _fused

    kernels = SpyKernels()
    monkeypatch.setattr(_fused, "numba_installed", lambda: True)
    monkeypatch.setattr(_fused, "kernels", lambda owner: kernels)
    return kernels


def test_has_fused_update_names_the_optimizers_with_a_fused_form():
    assert not SGD(lr=0.1).has_fused_update  # plain SGD: one multiply and one subtract already
    assert SGD(lr=0.1, momentum=0.9).has_fused_update
    assert SGD(lr=0.1, momentum=0.9, nesterov=True).has_fused_update
    assert not RMSprop().has_fused_update
    assert Adam().has_fused_update and AdamW().has_fused_update
    assert not Optimizer(lr=0.1).has_fused_update


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: SGD(lr=0.1, momentum=0.9), ["momentum", "momentum"]),
        (lambda: Adam(lr=0.1), ["adam", "adam"]),
        (lambda: AdamW(lr=0.1, weight_decay=0.5), ["adam", "adam"]),
    ],
    ids=["momentum", "adam", "adamw"],
)
def test_fused_none_follows_each_step_call(spy, make, expected):
    opt = make()
    assert opt.fused is None
    params, grads = fresh()
    opt.step(params, grads)  # nobody asks: readable
    opt.step(params, grads, fused=False)
    assert spy.calls == []
    opt.step(params, grads, fused=True)  # one kernel call per array (W, b)
    assert [kind for kind, _ in spy.calls] == expected
    assert [size for _, size in spy.calls] == [4, 2]


def test_fused_true_or_false_on_the_optimizer_overrides_the_step_call(spy):
    params, grads = fresh()
    always = SGD(lr=0.1, momentum=0.9, fused=True)
    always.step(params, grads)
    always.step(params, grads, fused=False)
    assert len(spy.calls) == 4
    spy.calls.clear()
    never = Adam(lr=0.1, fused=False)
    never.step(params, grads, fused=True)
    assert spy.calls == []


def test_fused_update_skips_arrays_that_are_not_c_contiguous(spy):
    # W is a transposed view (F-ordered): the readable update; b: the kernel
    W = np.array(W0).T.copy().T
    assert not W.flags.c_contiguous
    params, grads = [W, np.array(B0)], [np.array(GW), np.array(GB)]
    SGD(lr=0.1, momentum=0.9, fused=True).step(params, grads)
    assert spy.calls == [("momentum", 2)]
    assert_allclose(params[0], np.array(W0) - 0.1 * np.array(GW), atol=1e-15)  # first step: v = g


def test_fused_and_readable_updates_agree_through_the_spy(spy):
    # the spy does the kernels' equations: its route through step gives the readable numbers
    for make in (lambda f: SGD(lr=0.1, momentum=0.9, weight_decay=0.1, fused=f),
                 lambda f: AdamW(lr=0.05, weight_decay=0.5, fused=f)):
        runs = []
        for fused in (True, False):
            opt, params = make(fused), fresh()[0]
            for _ in range(4):
                opt.step(params, quadratic_grads(params))
            runs.append(params)
        for a, b in zip(*runs, strict=True):
            assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: SGD(lr=0.1, fused=True), r"fused=True needs an optimizer with a fused update.*SGD\(lr=0.1"),
        (lambda: RMSprop(fused=True), r"fused=True needs an optimizer with a fused update.*RMSprop"),
        (lambda: Optimizer(lr=0.1, fused=True), r"fused=True needs an optimizer with a fused update"),
    ],
    ids=["sgd-without-momentum", "rmsprop", "base"],
)
def test_fused_true_without_a_fused_form_is_a_config_error(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_fused_must_be_true_false_or_none(value):
    with pytest.raises(DTypeError, match="fused must be True, False or None"):
        Adam(fused=value)
    params, grads = fresh()
    with pytest.raises(DTypeError, match="fused must be True, False or None"):
        Adam().step(params, grads, fused=value)


def test_fused_true_at_a_step_without_a_fused_form_changes_nothing():
    for opt in (RMSprop(lr=0.1), SGD(lr=0.1)):
        params, grads = fresh()
        with pytest.raises(ConfigError, match="fused=True needs an optimizer with a fused update"):
            opt.step(params, grads, fused=True)
        assert opt.t == 0
        assert_array_equal(params[0], W0)


def test_fused_true_without_numba_is_a_config_error(monkeypatch):
    import importlib.util

    from backprop.optim import _fused

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "numba" else find_spec(name, *args))
    monkeypatch.setattr(_fused, "_kernels", None)  # as if never imported
    with pytest.raises(ConfigError, match=r"fused=True needs numba, which is not installed \(pip install"):
        Adam(fused=True)
    with pytest.raises(ConfigError, match=r"fused=True needs numba.*SGD\(lr=0.1, momentum=0.9"):
        SGD(lr=0.1, momentum=0.9, fused=True)
    opt, (params, grads) = SGD(lr=0.1, momentum=0.9), fresh()
    with pytest.raises(ConfigError, match=r"fused=True needs numba"):
        opt.step(params, grads, fused=True)
    assert opt.t == 0
    assert_array_equal(params[0], W0)
    opt.step(params, grads)  # the readable update needs no numba
    assert opt.t == 1


def test_repr_shows_fused_only_when_set():
    assert repr(SGD(lr=0.5, momentum=0.9)) == "SGD(lr=0.5, momentum=0.9, nesterov=False, weight_decay=0.0)"
    assert repr(SGD(lr=0.5, momentum=0.9, fused=False)) == (
        "SGD(lr=0.5, momentum=0.9, nesterov=False, weight_decay=0.0, fused=False)"
    )
    assert repr(RMSprop(fused=False)).endswith("weight_decay=0.0, fused=False)")


FUSED_CONFIGS = {
    "momentum": lambda f: SGD(lr=0.1, momentum=0.9, weight_decay=0.05, schedule=StepDecay(3, 0.5), fused=f),
    "nesterov": lambda f: SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, fused=f),
    "adam": lambda f: Adam(lr=0.05, weight_decay=0.1, clip_norm=1.0, fused=f),
    "adamw": lambda f: AdamW(lr=0.05, weight_decay=0.2, max_norm=2.5, fused=f),
}


@pytest.mark.parametrize("name", FUSED_CONFIGS)
def test_numba_fused_updates_agree_with_the_readable_ones_in_float64(name):
    pytest.importorskip("numba")
    runs = []
    for fused in (True, False):
        opt, params = FUSED_CONFIGS[name](fused), fresh()[0]
        for _ in range(8):
            opt.step(params, quadratic_grads(params))
        runs.append((params, opt.state_dict()))
    (p_fused, s_fused), (p_numpy, s_numpy) = runs
    assert s_fused.keys() == s_numpy.keys() and s_fused["t"] == 8
    assert np.abs(p_fused[0] - np.array(W0)).min() > 1e-3  # every weight moved
    for a, b in zip(p_fused, p_numpy, strict=True):
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for key in s_fused:
        if isinstance(s_fused[key], list):
            for a, b in zip(s_fused[key], s_numpy[key], strict=True):
                assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------- flat buffers
#
# A network keeps its parameters in one contiguous buffer (layer 0's W, b, layer 1's W, b, ...)
# and its gradients in another, and hands out views. The optimizer then updates the buffers
# in one call: the same numbers, bit for bit, as array by array.

NET_SHAPES = [(5, 4), (5,), (3, 5), (3,)]


def flat_views(buffer, shapes=NET_SHAPES):
    """Consecutive views of ``buffer``, one per shape, as a network hands them out."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(buffer[offset:offset + size].reshape(shape))
        offset += size
    return views


def net_like(dtype, flat, seed=0, gap=0):
    """params and grads of NET_SHAPES: views of one buffer each (``gap`` elements apart), or separate."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s).astype(dtype) for s in NET_SHAPES]
    if not flat:
        return values, [np.zeros(s, dtype) for s in NET_SHAPES]
    n = sum(math.prod(s) for s in NET_SHAPES) + gap * len(NET_SHAPES)
    buffers = np.empty(n, dtype), np.empty(n, dtype)
    if gap:  # each array begins `gap` elements after the previous one ends
        sizes = [math.prod(s) + gap for s in NET_SHAPES]
        starts = np.cumsum([0] + sizes[:-1])
        params = [buffers[0][a:a + math.prod(s)].reshape(s) for a, s in zip(starts, NET_SHAPES, strict=True)]
        grads = [buffers[1][a:a + math.prod(s)].reshape(s) for a, s in zip(starts, NET_SHAPES, strict=True)]
    else:
        params, grads = flat_views(buffers[0]), flat_views(buffers[1])
    for p, v in zip(params, values, strict=True):
        p[...] = v
    return params, grads


def train(opt, params, grads, n_steps, seed=1):
    """n steps with the gradients of ½‖w − target‖² plus noise, written into ``grads`` in place."""
    rng = np.random.default_rng(seed)
    targets = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    for _ in range(n_steps):
        for p, g, target in zip(params, grads, targets, strict=True):
            np.subtract(p, target, out=g)
            g += rng.standard_normal(p.shape).astype(p.dtype)
        opt.step(params, grads)


FLAT_CONFIGS = dict(
    ALL_CONFIGS,
    plain=lambda: SGD(lr=0.1),
    momentum_wd=lambda: SGD(lr=0.1, momentum=0.9, weight_decay=0.05, clip_norm=2.0),
    adam_plain=lambda: Adam(lr=0.05),
    adamw_decay=lambda: AdamW(lr=0.05, weight_decay=0.3, max_norm=1.5),
    rmsprop_all=lambda: RMSprop(lr=0.01, momentum=0.5, weight_decay=0.1, clip_norm=1.0, max_norm=2.0),
)


def count_updates(monkeypatch, opt):
    """A list that gets the size of each array ``opt`` updates (one per array, or the whole buffer)."""
    calls, update = [], opt._update_array

    def counted(p, *args):
        calls.append(p.size)
        return update(p, *args)

    monkeypatch.setattr(opt, "_update_array", counted)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FLAT_CONFIGS)
def test_flat_buffers_update_in_one_call_bitwise_as_array_by_array(monkeypatch, name, dtype):
    runs = {}
    for flat in (True, False):
        opt = FLAT_CONFIGS[name]()
        params, grads = net_like(dtype, flat)
        calls = count_updates(monkeypatch, opt)
        train(opt, params, grads, 6)
        monkeypatch.undo()
        runs[flat] = (opt, params, grads, calls)
    (opt_f, p_f, g_f, calls_f), (opt_a, p_a, g_a, calls_a) = runs[True], runs[False]
    assert calls_f == [43] * 6  # 20 + 5 + 15 + 3 elements, one call per step
    assert calls_a == [20, 5, 15, 3] * 6
    for a, b in zip(p_f + g_f, p_a + g_a, strict=True):  # grads too: clipping scales them in place
        assert a.dtype == dtype
        assert_array_equal(a, b)
    assert opt_f.last_grad_norm == opt_a.last_grad_norm
    state_f, state_a = opt_f.state_dict(), opt_a.state_dict()
    assert state_f.keys() == state_a.keys()
    for key, arrays in state_f.items():
        if isinstance(arrays, list):  # one array per parameter, as ever
            assert [a.shape for a in arrays] == NET_SHAPES
            for a, b in zip(arrays, state_a[key], strict=True):
                assert_array_equal(a, b)


@pytest.mark.parametrize(
    "layout",
    ["gap", "reversed", "separate-grads", "transposed"],
)
def test_arrays_that_do_not_tile_one_buffer_are_updated_one_by_one(monkeypatch, layout):
    opt, reference = Adam(lr=0.05, weight_decay=0.1), Adam(lr=0.05, weight_decay=0.1)
    params, grads = net_like(np.float64, flat=True, gap=1 if layout == "gap" else 0)
    ref_params, ref_grads = net_like(np.float64, flat=False)
    if layout == "reversed":  # adjacent views, but not in memory order
        params, grads, ref_params, ref_grads = params[::-1], grads[::-1], ref_params[::-1], ref_grads[::-1]
    elif layout == "separate-grads":  # flat parameters, gradients in arrays of their own
        grads = [np.zeros(s) for s in NET_SHAPES]
    elif layout == "transposed":  # one buffer, but the first weight matrix is a transposed view
        buffer = np.empty(20)
        params[0] = buffer.reshape(4, 5).T
        params[0][...] = ref_params[0]
    calls = count_updates(monkeypatch, opt)
    train(opt, params, grads, 4)
    train(reference, ref_params, ref_grads, 4)
    assert calls == [p.size for p in params] * 4
    for a, b in zip(params, ref_params, strict=True):
        assert_array_equal(a, b)


def test_the_flat_path_follows_the_arrays_passed_at_each_step(monkeypatch):
    # flat at the first step; then separate gradient arrays (array by array); then a new
    # list of the very same views (flat again): the state is the same throughout
    opt, reference = SGD(lr=0.1, momentum=0.9), SGD(lr=0.1, momentum=0.9)
    params, grads = net_like(np.float64, flat=True)
    ref_params, ref_grads = net_like(np.float64, flat=False)
    calls = count_updates(monkeypatch, opt)
    train(opt, params, grads, 2)
    train(opt, params, [g.copy() for g in grads], 1)
    train(opt, list(params), list(grads), 2, seed=2)
    train(reference, ref_params, ref_grads, 2)
    train(reference, ref_params, [g.copy() for g in ref_grads], 1)
    train(reference, ref_params, ref_grads, 2, seed=2)
    assert calls == [43, 43, 20, 5, 15, 3, 43, 43]
    for a, b in zip(params, ref_params, strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize(("save_flat", "load_flat"), [(True, True), (True, False), (False, True)])
def test_state_dict_moves_between_flat_and_separate_arrays_bitwise(save_flat, load_flat):
    make = FLAT_CONFIGS["adam"]
    opt = make()
    params, grads = net_like(np.float64, save_flat)
    train(opt, params, grads, 3)
    state = opt.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    params2, grads2 = net_like(np.float64, load_flat)
    for a, b in zip(params2, params, strict=True):
        a[...] = b
    train(opt, params, grads, 3, seed=5)
    train(resumed, params2, grads2, 3, seed=5)
    for a, b in zip(params, params2, strict=True):
        assert_array_equal(a, b)
    for a, b in zip(opt.state_dict()["v"], resumed.state_dict()["v"], strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["momentum", "adam", "adamw_decay"])
def test_flat_steps_after_the_first_allocate_nothing(name):
    opt = FLAT_CONFIGS[name]()
    params, grads = net_like(np.float32, flat=True)
    for g in grads:
        g[...] = 0.01
    opt.step(params, grads)
    opt.step(params, grads)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(100):
            opt.step(params, grads)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 8192
    assert after - before < 1024


def test_flat_span_finds_the_memory_a_list_of_views_tiles():
    from backprop.optim._layout import flat_span

    buffer = np.arange(50.0)
    views = flat_views(buffer[2:])  # 43 elements from offset 2: a stretch inside a larger buffer
    span = flat_span(views)
    assert span.shape == (43,) and np.shares_memory(span, buffer)
    assert_array_equal(span, np.arange(2.0, 45.0))
    span[0] = -1.0
    assert views[0][0, 0] == -1.0
    assert flat_span(flat_views(buffer)[:2]).shape == (25,)  # a prefix tiles too
    assert flat_span([np.zeros(3)]).shape == (3,)  # one array owns its memory: its own span
    assert flat_span(flat_views(buffer)[1:]).shape == (23,)  # 5 + 15 + 3
    assert flat_span([]) is None
    assert flat_span(flat_views(buffer)[::-1]) is None  # out of order
    assert flat_span([np.zeros(3), np.zeros(2)]) is None  # two buffers
    assert flat_span([buffer[:4], buffer[5:9]]) is None  # a gap
    assert flat_span([buffer[:4].reshape(2, 2).T, buffer[4:6]]) is None  # not C-contiguous
    assert flat_span([buffer[:4], buffer[4:8].astype(np.float32)]) is None  # another buffer, dtype
    assert flat_span([buffer[::2][:3], buffer[6:8]]) is None  # strided
    assert flat_span([buffer.view(np.int64)[:4]]) is None  # the buffer's dtype differs


@pytest.mark.parametrize(
    ("make", "sizes"),
    [
        (lambda: SGD(lr=0.1, momentum=0.9), [43]),  # no decay anywhere: one call over the buffer
        (lambda: Adam(lr=0.05), [43]),
        (lambda: SGD(lr=0.1, momentum=0.9, weight_decay=0.1), [20, 5, 15, 3]),  # W decayed, b not
        (lambda: AdamW(lr=0.05, weight_decay=0.1), [20, 5, 15, 3]),
    ],
    ids=["momentum", "adam", "momentum-decay", "adamw-decay"],
)
def test_fused_flat_update_is_one_kernel_call_unless_only_some_arrays_decay(spy, make, sizes):
    # the kernels decay inside their loop, all elements or none: with W decayed and b not,
    # they run array by array
    params, grads = net_like(np.float64, flat=True)
    train(make(), params, grads, 1)  # fused=None: readable
    assert spy.calls == []
    opt = make()
    opt.fused = True
    train(opt, params, grads, 2)
    assert [size for _, size in spy.calls] == sizes * 2


def test_fused_flat_update_of_weight_matrices_only_decays_in_one_call(spy):
    shapes = [(3, 4), (2, 3)]
    params, grads = flat_views(np.zeros(18), shapes), flat_views(np.ones(18), shapes)
    ref_params, ref_grads = [np.zeros(s) for s in shapes], [np.ones(s) for s in shapes]
    SGD(lr=0.1, momentum=0.9, weight_decay=0.5, fused=True).step(params, grads)
    SGD(lr=0.1, momentum=0.9, weight_decay=0.5, fused=True).step(ref_params, ref_grads)
    assert [size for _, size in spy.calls] == [18, 12, 6]
    for a, b in zip(params, ref_params, strict=True):
        assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["momentum", "adam", "adamw"])
def test_numba_fused_flat_update_matches_the_fused_update_array_by_array(name):
    pytest.importorskip("numba")
    make = {"momentum": lambda: SGD(lr=0.1, momentum=0.9, nesterov=True, fused=True),
            "adam": lambda: Adam(lr=0.05, fused=True),
            "adamw": lambda: AdamW(lr=0.05, weight_decay=0.2, fused=True)}[name]
    runs = []
    for flat in (True, False):
        params, grads = net_like(np.float64, flat)
        train(make(), params, grads, 5)
        runs.append(params)
    for a, b in zip(*runs, strict=True):
        assert_allclose(a, b, rtol=1e-14, atol=1e-15)
