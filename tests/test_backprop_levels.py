"""The three levels of backpropagation agree with each other and with finite differences.

The notes derive the same gradients three times, at three levels of detail, and the
library implements each level separately:

* (a) seed 001's / seed 002's derivatives of *individual parameters*
  (``∂J/∂w_ij = a_i e_j``, ``∂cost/∂w_ik = ∂cost/∂z_i · a_k``), one scalar at a time:
  :func:`backprop.reference.per_parameter_gradients`;
* (b) seed 000's *per-sample δ recursion* ``δ^{l-1} = (f^{l-1})' ∘ (W^l)ᵀ δ^l``,
  ``∇_W C = δ^l (a^{l-1})ᵀ``, ``∇_b C = δ^l``, one sample at a time:
  :func:`backprop.reference.per_sample_gradients`;
* (c) seed 001's *mini-batch matrix form* ``∂J/∂W = A^{l-1}(E^l)ᵀ``, ``Σ_n e_n``,
  ``E^l = (W^{l+1}E^{l+1}) ⊙ f'(Z^l)``, in our row layout ``dW = Δᵀ A``:
  ``Network.backward``, the code that trains.

Hypothesis draws hundreds of random architectures (1 to 5 Dense layers of widths 1 to
20, any activation layers between and after them, every loss and target form, batches
of 1 to 16) in float64 and checks that (c) equals (a) and (b) to rounding (relative
error ≤ 1e-10, or, for ill-conditioned draws, within a bound on accumulated rounding
error), and that (c) equals central finite differences of the loss value, which share
no code with any of the three. The gradient with respect to the input ``x`` (seed 000's
``∇_x C``) is checked in every property, beside every weight and bias.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import backprop as bp
from backprop import reference
from backprop.gradcheck import relative_error
from backprop.losses import one_hot

#: every activation layer kind (Dropout rides along: it is the identity at inference, and
#: the references treat it so)
ACTIVATION_KINDS = ("Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus",
                    "GELU", "Softmax", "Dropout")
#: activations whose derivative jumps at z = 0: finite differences must not straddle 0
KINKED = (bp.ReLU, bp.LeakyReLU, bp.ELU)
ALL_INITS = ("normal", "normal_fan_in", "glorot_uniform", "glorot_normal", "he_normal",
             "he_uniform", "uniform_fan_in")
#: initializers that keep activations of order 1 through 5 layers (every one but the
#: textbook's N(0, 1), whose pre-activations grow ~sqrt(20) per layer and turn a 1e-5
#: finite-difference step into a 1e-2 change deep in the network, across the kink margin)
SCALED_INITS = tuple(name for name in ALL_INITS if name != "normal")

#: the target forms each loss accepts (those that need k >= 2 outputs are filtered below)
TARGET_FORMS = {
    "Quadratic": ("real", "labels"),
    "Huber": ("real", "labels"),
    "CrossEntropy": ("labels", "one_hot", "soft"),
    "BinaryCrossEntropy": ("labels", "probabilities"),
}


@dataclass
class Case:
    """One drawn example: a float64 network, a loss, a batch and its targets."""

    net: bp.Network
    loss: bp.Loss
    x: np.ndarray
    y: np.ndarray
    target_form: str

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example
        layers = ", ".join(repr(layer) for layer in self.net.layers)
        return (f"Case([{layers}], loss={self.loss!r}, N={self.x.shape[0]}, "
                f"targets={self.target_form}, seed={self.net.seed})")


def _activation(draw: Any, kind: str) -> bp.Layer:
    if kind == "LeakyReLU":
        return bp.LeakyReLU(slope=draw(st.sampled_from([0.01, 0.2])))
    if kind == "ELU":
        return bp.ELU(alpha=draw(st.sampled_from([1.0, 0.5])))
    if kind == "Dropout":
        return bp.Dropout(0.3)
    return getattr(bp, kind)()


def _targets(form: str, loss_kind: str, rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    if form == "real":
        return rng.standard_normal((n, k))
    if form == "labels":  # class indices; for one sigmoid output (BCE, k = 1) labels 0/1
        return rng.integers(0, 2 if loss_kind == "BinaryCrossEntropy" and k == 1 else k, size=n)
    if form == "one_hot":
        return np.eye(k)[rng.integers(0, k, size=n)]
    if form == "soft":
        return rng.dirichlet(np.ones(k), size=n)
    if form == "probabilities":
        return rng.uniform(0.0, 1.0, size=(n, k))
    raise AssertionError(form)


@st.composite
def cases(draw: Any, loss_kind: str, inits: tuple[str, ...] = ALL_INITS) -> Case:
    """A random architecture, batch and targets for ``loss_kind`` (see the module docstring)."""
    depth = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 20), min_size=depth + 1, max_size=depth + 1))
    init = draw(st.sampled_from(inits))
    layers: list[bp.Layer] = []
    for i in range(depth):
        layers.append(bp.Dense(widths[i], widths[i + 1], init=init))
        for kind in draw(st.lists(st.sampled_from(ACTIVATION_KINDS), max_size=2)):
            layers.append(_activation(draw, kind))
    loss = bp.Huber(delta=draw(st.sampled_from([0.5, 1.0, 2.0]))) if loss_kind == "Huber" \
        else getattr(bp, loss_kind)()
    k = widths[-1]
    forms = [f for f in TARGET_FORMS[loss_kind]
             if not (f == "labels" and k == 1 and loss_kind in ("Quadratic", "Huber"))]
    form = draw(st.sampled_from(forms))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # the batch size comes from the seed, uniform on 1..16: Hypothesis's own integers favour
    # their simplest value, and would make nearly half the batches a single sample
    n = int(rng.integers(1, 17))
    x = rng.standard_normal((n, widths[0]))
    y = _targets(form, loss_kind, rng, n, k)
    return Case(bp.Network(layers, seed=seed, dtype="float64"), loss, x, y, form)


def vectorised_gradients(case: Case) -> dict[str, np.ndarray]:
    """Level (c): ``Network.backward`` of ``loss.grad``: every parameter's dC/dθ and dC/dx."""
    net = case.net
    a = net.forward(case.x)
    grad_x = net.backward(case.loss.grad(a, case.y))
    names = [name for name, _ in net.named_parameters()]
    grads = {name: g.copy() for name, g in zip(names, net.gradients(), strict=True)}
    grads["x"] = grad_x
    return grads


def _derivative_scale(layer: bp.Layer, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The size of the terms from which each activation computes f'(z), before any
    cancellation: a saturated tanh's 1 − a² ≈ 1e-10 is exact only to ε_mach·(1 + a²)."""
    if isinstance(layer, bp.Sigmoid):
        return np.abs(a) * (1.0 + np.abs(a))               # φ(1 − φ)
    if isinstance(layer, bp.Tanh):
        return 1.0 + a * a                                   # 1 − a²
    if isinstance(layer, bp.ELU):
        return np.where(z > 0, 1.0, np.abs(a) + layer.alpha)  # a + α
    if isinstance(layer, bp.GELU):
        c, k = GELU_C, 0.044715
        t = np.abs(np.tanh(c * (z + k * z**3)))
        return 0.5 * (1.0 + t) + 0.5 * np.abs(z) * (1.0 + t * t) * c * (1.0 + 3.0 * k * z * z)
    # Identity, ReLU, LeakyReLU (exact 0/1/α), Softplus (the sigmoid, no cancellation)
    return np.abs(layer.derivative(z, a))


GELU_C = float(np.sqrt(2.0 / np.pi))


def rounding_scales(case: Case) -> dict[str, float]:
    """For every parameter and ``"x"``: the norm of the same backward pass with every factor
    replaced by the size of the terms it is computed from (|∂C/∂a| as |a| + |y|, |W|, f'
    before cancellation, and diag(a) + a aᵀ for the softmax's diag(a) − a aᵀ).

    This is the classical running bound on accumulated rounding, |fl(Σ tᵢ) − Σ tᵢ| ≤ γₙ Σ|tᵢ|:
    two correct float64 implementations that round differently can differ by a small
    multiple of ε_mach times it, however small the gradient itself has become through
    cancellation (a saturated softmax's 1 − a₁ ≈ 1e-9, computed from a₁ ≈ 1, is exact only
    to about 1e-16, a relative error of 1e-7)."""
    net, loss = case.net, case.loss
    inputs, h = [], case.x
    for layer in net.layers:
        inputs.append(h)
        h = layer.predict(h)
    t = loss.prepare(case.y, h.shape, h.dtype)
    t = np.abs(one_hot(t, h.shape[1], h.dtype) if t.ndim == 1 else t)
    if isinstance(loss, bp.CrossEntropy):
        g = bp.Softmax.f(h) + t                 # p − y
    elif isinstance(loss, bp.BinaryCrossEntropy):
        g = bp.Sigmoid.f(h) + t                 # φ(a) − y
    else:
        g = np.abs(h) + t                       # a − y (Huber clips it: smaller still)
    g /= h.shape[0]
    scales: dict[str, float] = {}
    for i in range(len(net.layers) - 1, -1, -1):
        layer, h = net.layers[i], inputs[i]
        if isinstance(layer, bp.Dense):
            scales[f"{i}.W"] = float(np.linalg.norm(g.T @ np.abs(h)))
            scales[f"{i}.b"] = float(np.linalg.norm(g.sum(axis=0)))
            g = g @ np.abs(layer.params["W"])
        elif isinstance(layer, bp.Softmax):
            a = layer.f(h)
            g = a * (g + np.sum(g * a, axis=1, keepdims=True))
        elif isinstance(layer, bp.Activation):
            g = g * _derivative_scale(layer, h, layer.f(h))
    scales["x"] = float(np.linalg.norm(g))
    return scales


#: the oracles must agree with the vectorised code to this relative error ...
ORACLE_REL_TOL = 1e-10
#: ... or, where cancellation has left a gradient tiny against the terms it was computed
#: from, to within this multiple of its rounding scale (about 5000 ε_mach; the largest
#: ratio observed over thousands of random draws is 2e-15)
ORACLE_SCALE_TOL = 1e-12
#: pre-activations this close to a ReLU-type kink may round to different signs in two
#: implementations that sum in different orders; such draws are skipped
ORACLE_KINK_MARGIN = 1e-9


def assert_oracle_agreement(errors: dict[str, tuple[float, float]], case: Case) -> None:
    """``errors[name] = (relative error, absolute error norm)`` against an oracle: a relative
    error ≤ ORACLE_REL_TOL, or an absolute error ≤ ORACLE_SCALE_TOL × ``rounding_scales``.
    The second clause only matters for ill-conditioned draws (saturated softmax, sigmoid or
    tanh); any formula error shows up as an absolute error of the size of the gradient."""
    scales = rounding_scales(case)
    for name, (rel, abs_err) in errors.items():
        assert rel <= ORACLE_REL_TOL or abs_err <= ORACLE_SCALE_TOL * scales[name], (
            f"{name}: relative error {rel:.3e}, absolute {abs_err:.3e}, "
            f"rounding scale {scales[name]:.3e}")


def _errors(got: dict[str, np.ndarray],
            want: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    assert got.keys() == want.keys()
    return {name: (relative_error(got[name], want[name]),
                   float(np.linalg.norm(got[name] - want[name]))) for name in got}


def reference_errors(case: Case) -> dict[str, tuple[float, float]]:
    """(relative error, absolute error norm) of level (c) against level (a), per parameter
    and for ``"x"``."""
    got = vectorised_gradients(case)
    return _errors(got, reference.per_parameter_gradients(case.net, case.loss, case.x, case.y))


def per_sample_errors(case: Case) -> dict[str, tuple[float, float]]:
    """(relative error, absolute error norm) of level (c) against the mean of level (b)'s
    per-sample gradients."""
    got = vectorised_gradients(case)
    per_sample = reference.per_sample_gradients(case.net, case.loss, case.x, case.y)
    assert len(per_sample) == case.x.shape[0]
    return _errors(got, reference.mean_of_per_sample(per_sample))


def kink_margin(case: Case, *, skip_exact_zeros: bool = False) -> float:
    """The smallest distance to a kink in the drawn example: of any pre-activation
    entering a ReLU/LeakyReLU/ELU from 0, and, for Huber, of any residual |a − y| from δ.

    ``skip_exact_zeros`` leaves out pre-activations that are exactly 0, as when a dead ReLU
    feeds a dense layer whose bias starts at 0: every implementation computes that 0
    exactly (all its terms are 0), so the oracles agree there; finite differences do not
    (a step in that bias crosses the kink), so they count it."""
    margin = np.inf
    h = case.x
    for layer in case.net.layers:
        if isinstance(layer, KINKED):
            values = np.abs(h[h != 0] if skip_exact_zeros else h)
            if values.size:
                margin = min(margin, float(values.min()))
        h = layer.predict(h)
    if isinstance(case.loss, bp.Huber):
        t = case.loss.prepare(case.y, h.shape, h.dtype)
        margin = min(margin, float(np.abs(np.abs(h - t) - case.loss.delta).min()))
    return margin


#: the finite-difference step: central differences err by ~ε²·|C‴| (truncation) plus
#: ~ε_mach·|C|/ε (rounding of the two costs); ε ≈ cbrt(ε_mach) ≈ 1e-5 balances the two
FD_EPS = 1e-5
#: skip draws with a kink closer than this (100 ε): a difference quotient across a jump in
#: the derivative is the derivative of neither side
KINK_MARGIN = 1e-3
#: below this gradient norm the rounding floor (~1e-11·|C| per entry, times the square
#: root of the number of entries in the norm) is no longer negligible against the norm,
#: and a relative error measures the finite differences, not the backprop maths
TINY_GRADIENT = 1e-2
FD_REL_TOL = 1e-6
FD_ABS_TOL = 1e-9


def finite_difference_errors(case: Case) -> dict[str, tuple[float, float, float]]:
    """Per parameter and for ``"x"``: (relative error, largest absolute error, gradient norm)
    of level (c) against central differences (``bp.gradcheck`` with ε = FD_EPS, every entry)."""
    result = bp.gradcheck(case.net, case.loss, case.x, case.y, eps=FD_EPS)
    norms = {name: float(np.linalg.norm(g)) for name, g in vectorised_gradients(case).items()}
    assert result.rel_errors.keys() == norms.keys()
    return {name: (result.rel_errors[name], result.abs_errors[name], norms[name]) for name in norms}


def assert_matches_finite_differences(case: Case) -> None:
    """Relative error ≤ FD_REL_TOL where the gradient's norm is ≥ TINY_GRADIENT, else every
    entry within FD_ABS_TOL (see test_vectorised_equals_finite_differences)."""
    for name, (rel, abs_err, norm) in finite_difference_errors(case).items():
        if norm >= TINY_GRADIENT:
            assert rel <= FD_REL_TOL, f"{name}: relative error {rel:.3e} (|g| = {norm:.2e})"
        else:
            assert abs_err <= FD_ABS_TOL, f"{name}: absolute error {abs_err:.3e} (|g| = {norm:.2e})"


# ---------------------------------------------------------------------------- properties
# Each property runs once per loss (a pytest parameter), so every loss gets its share of
# the examples: 4 × 60 = 240 against the per-parameter oracle, 4 × 75 = 300 against the
# per-sample δ recursion, 4 × 50 = 200 against finite differences (a few more are drawn
# and skipped by ``assume`` near kinks).
LOSS_KINDS = pytest.mark.parametrize("loss_kind", sorted(TARGET_FORMS))


@LOSS_KINDS
@settings(max_examples=60)
@given(data=st.data())
def test_vectorised_equals_per_parameter_reference(loss_kind: str, data: st.DataObject) -> None:
    """(c) = (a): the batch matrix products give every single-parameter derivative of seeds
    001/002, and seed 000's ∇_x C, to rounding error."""
    case = data.draw(cases(loss_kind), label="case")
    assume(kink_margin(case, skip_exact_zeros=True) > ORACLE_KINK_MARGIN)
    assert_oracle_agreement(reference_errors(case), case)


@LOSS_KINDS
@settings(max_examples=75)
@given(data=st.data())
def test_vectorised_equals_mean_of_per_sample_delta_recursion(loss_kind: str,
                                                              data: st.DataObject) -> None:
    """(c) = mean of (b): the cost is the batch mean of C_x, so its gradient is the mean of
    seed 000's per-sample gradients (and row n of dC/dx is sample n's ∇_x C_x / N)."""
    case = data.draw(cases(loss_kind), label="case")
    assume(kink_margin(case, skip_exact_zeros=True) > ORACLE_KINK_MARGIN)
    assert_oracle_agreement(per_sample_errors(case), case)


@LOSS_KINDS
@settings(max_examples=50)
@given(data=st.data())
def test_vectorised_equals_finite_differences(loss_kind: str, data: st.DataObject) -> None:
    """(c) = central differences of the loss value, for every weight, bias and input entry.

    Honest tolerances. Central differences with ε = 1e-5 carry a truncation error of order
    ε² times a third derivative and a rounding error of order 1e-16·|C|/ε ≈ 1e-11·|C| in
    every entry. Where a gradient's norm is at least 1e-2 we demand a relative error
    ≤ 1e-6 (observed worst ≈ 2e-7). Below that (deep saturated sigmoids, a width-1
    softmax whose gradient is exactly 0, a 1/N-scaled input gradient, ...) the rounding
    floor is no longer negligible and a relative error says nothing about backprop; there
    we demand instead that no entry differs by more than 1e-9 in absolute terms, which
    still exposes any formula error larger than 1e-9 in absolute size.

    Draws where a pre-activation lies within 1e-3 (100 ε) of a ReLU/LeakyReLU/ELU kink,
    or a Huber residual within 1e-3 of δ, are skipped: there the derivative jumps, and a
    difference quotient straddling the jump is the derivative of neither side.
    """
    case = data.draw(cases(loss_kind, inits=SCALED_INITS), label="case")
    assume(kink_margin(case) > KINK_MARGIN)
    assert_matches_finite_differences(case)


# ------------------------------------------------------------ fixed, named architectures
def test_textbook_mnist_shape_network_all_levels_agree() -> None:
    """Nielsen's 784-30-10 sigmoid network with the quadratic cost, shrunk to 12-5-3 so the
    scalar loops stay quick: the three levels and finite differences agree."""
    rng = np.random.default_rng(7)
    net = bp.Network([bp.Dense(12, 5, init="normal"), bp.Sigmoid(),
                      bp.Dense(5, 3, init="normal"), bp.Sigmoid()], seed=3, dtype="float64")
    case = Case(net, bp.Quadratic(), rng.uniform(0, 1, (4, 12)), rng.integers(0, 3, 4), "labels")
    assert max(rel for rel, _ in reference_errors(case).values()) <= 1e-12
    assert max(rel for rel, _ in per_sample_errors(case).values()) <= 1e-12
    for name, (rel, _, norm) in finite_difference_errors(case).items():
        assert norm > TINY_GRADIENT and rel <= 1e-7, name


def test_softmax_layer_then_quadratic_uses_the_full_jacobian() -> None:
    """A Softmax *layer* (not the fused cross-entropy) under a quadratic cost exercises the
    non-diagonal Jacobian diag(a) − a aᵀ at every level."""
    rng = np.random.default_rng(11)
    net = bp.Network([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 5), bp.Softmax()], seed=5,
                     dtype="float64")
    case = Case(net, bp.Quadratic(), rng.standard_normal((3, 4)), np.eye(5)[[0, 3, 4]], "real")
    assert max(rel for rel, _ in reference_errors(case).values()) <= 1e-12
    assert max(rel for rel, _ in per_sample_errors(case).values()) <= 1e-12
    for name, (rel, _, norm) in finite_difference_errors(case).items():
        assert norm > TINY_GRADIENT and rel <= 1e-6, name


@pytest.mark.parametrize("loss_kind", sorted(TARGET_FORMS))
@pytest.mark.parametrize("kind", ACTIVATION_KINDS)
def test_every_activation_meets_every_loss(kind: str, loss_kind: str) -> None:
    """Hypothesis's draws favour some kinds over others; this grid makes sure that every
    activation kind, hidden and at the output, meets every loss and every target form, at
    all three levels and against finite differences."""
    activation = {"LeakyReLU": lambda: bp.LeakyReLU(0.2), "ELU": lambda: bp.ELU(0.5),
                  "Dropout": lambda: bp.Dropout(0.3)}.get(kind, getattr(bp, kind, None))
    loss = bp.Huber(0.5) if loss_kind == "Huber" else getattr(bp, loss_kind)()
    for form in TARGET_FORMS[loss_kind]:
        seed = zlib.crc32(f"{kind}/{loss_kind}/{form}".encode())
        while True:  # the first seed whose draw keeps clear of every kink: deterministic
            rng = np.random.default_rng(seed)
            net = bp.Network([bp.Dense(5, 7), activation(), bp.Dense(7, 4), activation()],
                             seed=seed, dtype="float64")
            case = Case(net, loss, rng.standard_normal((6, 5)),
                        _targets(form, loss_kind, rng, 6, 4), form)
            if kink_margin(case) > KINK_MARGIN:
                break
            seed += 1
        assert_oracle_agreement(reference_errors(case), case)
        assert_oracle_agreement(per_sample_errors(case), case)
        assert_matches_finite_differences(case)


# ------------------------------------------------------------------ the checkers themselves
def test_gradcheck_and_references_catch_a_wrong_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that cannot fail proves nothing: with the sigmoid's derivative wrong by a
    factor (φ(1 − φ) → φ(1 − φ)·1.01, a 1 % error), finite differences and both reference
    levels disagree with backward far beyond their tolerances."""
    rng = np.random.default_rng(13)
    net = bp.Network([bp.Dense(3, 4), bp.Sigmoid(), bp.Dense(4, 2)], seed=1, dtype="float64")
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    case = Case(net, bp.Quadratic(), x, y, "real")
    monkeypatch.setattr(bp.Sigmoid, "df", lambda self, z, a, out=None: np.multiply(a * (1.0 - a), 1.01, out=out))
    fd = finite_difference_errors(case)
    assert fd["0.W"][0] > 1e-3 and fd["x"][0] > 1e-3   # below the sigmoid: wrong
    assert fd["2.W"][0] < 1e-8                          # above it: still right
    assert reference_errors(case)["0.W"][0] > 1e-3
    assert per_sample_errors(case)["x"][0] > 1e-3
    # and the criteria the properties apply reject it
    with pytest.raises(AssertionError, match="0.W"):
        assert_oracle_agreement(reference_errors(case), case)
    with pytest.raises(AssertionError, match="0.W"):
        assert_oracle_agreement(per_sample_errors(case), case)
    with pytest.raises(AssertionError, match="0.W"):
        assert_matches_finite_differences(case)


def test_gradcheck_on_a_float32_network() -> None:
    """gradcheck works on a float64 copy and leaves the float32 network untouched;
    ``max_entries`` bounds the entries checked per array."""
    rng = np.random.default_rng(17)
    net = bp.Network([bp.Dense(6, 5), bp.Tanh(), bp.Dense(5, 3)], seed=2)
    before = [p.copy() for p in net.parameters()]
    x = rng.standard_normal((4, 6)).astype(np.float32)
    labels = np.array([0, 2, 1, 1])
    result = bp.gradcheck(net, bp.CrossEntropy(), x, labels, eps=1e-5, max_entries=7)
    assert result.entries_checked == {"0.W": 7, "0.b": 5, "2.W": 7, "2.b": 3, "x": 7}
    assert result.worst == max(result.rel_errors.values()) < 1e-6
    for p, q in zip(net.parameters(), before, strict=True):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, q)
    assert "worst rel" in repr(result)
