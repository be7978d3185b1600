"""Layers one at a time: known values of every activation and its derivative, the
backward passes against explicit Jacobians and finite differences, Dropout, Dense.

Reference values were computed with 40-digit mpmath from the textbook formulas.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backprop as bp
from backprop.activations import ACTIVATIONS, activation


def fd_derivative(f, z: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Element-wise central difference of an element-wise f (float64)."""
    return (f(z + eps) - f(z - eps)) / (2 * eps)


def values_and_derivatives(layer: bp.Activation, z) -> tuple[np.ndarray, np.ndarray]:
    """``f(z)`` from forward and ``f'(z)`` from backward of a gradient of ones (a row batch)."""
    z = np.asarray(z, dtype=np.float64)[None, :]
    a = layer.forward(z)
    return a[0], layer.backward(np.ones_like(z))[0]


# ------------------------------------------------------------------ known values of f and f'
# (layer, z, f(z), f'(z))
KNOWN = [
    pytest.param(bp.Identity(), [-2.5, 0.0, 3.0], [-2.5, 0.0, 3.0], [1.0, 1.0, 1.0], id="identity"),
    # seed 000: φ(z) = 1/(1 + e^{−z}), φ' = φ(1 − φ); φ(0) = ½, φ'(0) = ¼
    pytest.param(bp.Sigmoid(), [0.0, 2.0, -3.0],
                 [0.5, 0.88079707797788244, 0.047425873177566781],
                 [0.25, 0.10499358540350652, 0.045176659730912133], id="sigmoid"),
    pytest.param(bp.Tanh(), [0.0, 0.5, -2.0],
                 [0.0, 0.46211715726000976, -0.96402758007581688],
                 [1.0, 0.78644773296592741, 0.070650824853164466], id="tanh"),
    # the kink convention: f'(0) = 0 (as PyTorch)
    pytest.param(bp.ReLU(), [-1.5, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0], id="relu"),
    # f'(0) = α: the derivative is 1 only for z > 0
    pytest.param(bp.LeakyReLU(0.1), [-2.0, 0.0, 3.0], [-0.2, 0.0, 3.0], [0.1, 0.1, 1.0],
                 id="leaky_relu"),
    # α(e^z − 1), α e^z; at 0 the left derivative α
    pytest.param(bp.ELU(), [-1.0, 0.0, 2.0], [-0.63212055882855768, 0.0, 2.0],
                 [0.36787944117144232, 1.0, 1.0], id="elu"),
    pytest.param(bp.ELU(alpha=2.0), [-0.5, 0.0, 1.0], [-0.78693868057473315, 0.0, 1.0],
                 [1.2130613194252668, 2.0, 1.0], id="elu_alpha2"),
    # log(1 + e^z), f' = φ(z); stable at ±1000
    pytest.param(bp.Softplus(), [0.0, 2.0, -3.0, 1000.0, -1000.0],
                 [0.69314718055994531, 2.1269280110429725, 0.048587351573742059, 1000.0, 0.0],
                 [0.5, 0.88079707797788244, 0.047425873177566781, 1.0, 0.0], id="softplus"),
    # tanh form: ½z(1 + tanh(√(2/π)(z + 0.044715 z³)))
    pytest.param(bp.GELU(), [0.0, 1.0, -1.0, 0.5, 3.0],
                 [0.0, 0.8411919906082767, -0.1588080093917233, 0.34571400982514392,
                  2.996362607918227],
                 [0.5, 1.0829640838457826, -0.082964083845782555, 0.86736990353464231,
                  1.0115841666309697], id="gelu"),
]


@pytest.mark.parametrize(("layer", "z", "f", "df"), KNOWN)
def test_activation_known_values(layer, z, f, df) -> None:
    a, da = values_and_derivatives(layer, z)
    np.testing.assert_allclose(a, f, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(da, df, rtol=1e-14, atol=1e-300)
    # predict gives the forward values bit for bit, and derivative() the same f'
    z2 = np.asarray(z, dtype=np.float64)[None, :]
    assert np.array_equal(layer.predict(z2), a[None, :])
    np.testing.assert_allclose(layer.derivative(z2, layer.f(z2))[0], df, rtol=1e-14, atol=1e-300)


def test_relu_backward_at_the_kink_passes_nothing() -> None:
    relu = bp.ReLU()
    relu.forward(np.array([[-1.0, 0.0, 1e-300, 5.0]]))
    assert relu.backward(np.array([[7.0, 7.0, 7.0, 7.0]])).tolist() == [[0.0, 0.0, 7.0, 7.0]]


ELEMENTWISE = [name for name in ACTIVATIONS if name != "softmax"]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_backward_is_grad_times_finite_difference_derivative(name: str) -> None:
    """dC/dz = dC/da ⊙ f'(z) (seed 002's activation layer), with f' from central
    differences of f, away from kinks."""
    rng = np.random.default_rng(1)
    z = rng.uniform(-4, 4, size=(5, 7))
    z[np.abs(z) < 0.01] = 0.5
    layer = activation(name)
    grad = rng.standard_normal(z.shape)
    layer.forward(z)
    got = layer.backward(grad)
    np.testing.assert_allclose(got, grad * fd_derivative(layer.f, z), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_keeps_the_dtype(name: str, dtype) -> None:
    """Nothing is promoted in the hot path: float32 in, float32 out, forward and backward."""
    layer = activation(name)
    z = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    a = layer.forward(z)
    back = layer.backward(np.ones_like(z))
    assert a.dtype == dtype and back.dtype == dtype and layer.predict(z).dtype == dtype
    assert a.shape == back.shape == z.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_at_plus_minus_1000_is_exact_and_silent(dtype) -> None:
    """φ(±1000) is exactly 1 and 0 with no warning: e^{1000} overflows to ∞ and 1/(1 + ∞) is exactly 0.

    The only IEEE flag raised is *underflow* (e^{−1000} rounds to 0, which is the
    intended value), and NumPy ignores underflow by default; overflow, division by zero
    and invalid operations are made errors here, as are all warnings.
    """
    z = np.array([[-1000.0, 1000.0, -50.0, 50.0]], dtype=dtype)
    layer = bp.Sigmoid()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            a = layer.forward(z)
            da = layer.backward(np.ones_like(z))
    assert a.dtype == dtype
    assert a[0, 0] == 0.0 and a[0, 1] == 1.0
    assert da[0, 0] == 0.0 and da[0, 1] == 0.0
    # φ(−50) = e^{−50}/(1 + e^{−50}) is tiny but not 0: the tail is accurate, not clipped
    np.testing.assert_allclose(a[0, 2], 1.9287498479639178e-22, rtol=1e-6)
    assert a[0, 3] == 1.0


# ---------------------------------------------------------------------------------- softmax
def test_softmax_rows_sum_to_one_and_survive_huge_logits() -> None:
    rng = np.random.default_rng(2)
    z = np.vstack([rng.standard_normal((4, 6)) * 10,
                   [[1000.0, -1000.0, 0.0, 999.0, 1000.0, -5.0]]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = bp.Softmax().forward(z)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    assert (a >= 0).all()
    e = 1.0 / (2.0 + np.exp(-1.0))   # the two 1000s share almost all the mass, 999 the rest
    np.testing.assert_allclose(a[-1], [e, 0.0, 0.0, e * np.exp(-1.0), e, 0.0],
                               rtol=1e-15, atol=1e-300)
    # known value: softmax(0, ln 2, ln 3) = (1, 2, 3)/6
    np.testing.assert_allclose(bp.Softmax.f(np.log([[1.0, 2.0, 3.0]])), [[1 / 6, 2 / 6, 3 / 6]],
                               rtol=1e-15)


def test_softmax_backward_is_the_explicit_jacobian_product() -> None:
    """∂a_j/∂z_i = a_j(δ_ij − a_i): backward must equal Jᵀg row by row (J is symmetric)."""
    rng = np.random.default_rng(3)
    z, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    layer = bp.Softmax()
    a = layer.forward(z)
    got = layer.backward(g)
    for n in range(5):
        J = np.diag(a[n]) - np.outer(a[n], a[n])
        np.testing.assert_allclose(got[n], J.T @ g[n], rtol=1e-13, atol=1e-16)
        # and J itself against central differences of softmax, column by column
        J_fd = np.column_stack([
            (bp.Softmax.f((z[n] + 1e-6 * np.eye(4)[i])[None])[0]
             - bp.Softmax.f((z[n] - 1e-6 * np.eye(4)[i])[None])[0]) / 2e-6
            for i in range(4)])
        np.testing.assert_allclose(J, J_fd, atol=1e-9)
    # the gradient of a softmax output sums to zero in each row (the simplex is flat)
    np.testing.assert_allclose(got.sum(axis=1), 0.0, atol=1e-15)


# ---------------------------------------------------------------------------------- dropout
def dropout_in_network(rate: float, width: int, seed: int = 0) -> bp.Network:
    return bp.Network([bp.Dense(width, width), bp.Dropout(rate)], seed=seed, dtype="float64")


def test_dropout_inverted_scaling_preserves_the_mean() -> None:
    layer = dropout_in_network(0.3, 1000).layers[1]
    x = np.ones((1000, 1000))
    out = layer.forward(x, train=True)
    kept = out != 0
    # survivors are scaled by exactly 1/(1 − p); the dropped fraction is p
    np.testing.assert_array_equal(np.unique(out), [0.0, 1.0 / 0.7])
    assert abs(kept.mean() - 0.7) < 5 * np.sqrt(0.7 * 0.3 / x.size)   # 5σ of a binomial
    # so the mean of the output is the mean of the input, within 5σ (σ = √(p/(1−p)/n))
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(0.3 / 0.7 / x.size)


def test_dropout_is_the_identity_at_inference() -> None:
    net = dropout_in_network(0.5, 8)
    layer = net.layers[1]
    x = np.random.default_rng(4).standard_normal((6, 8))
    assert layer.forward(x) is x and layer.forward(x, train=False) is x and layer.predict(x) is x
    np.testing.assert_array_equal(layer.backward(x), x)   # no mask after an inference pass
    assert np.array_equal(net.forward(x), net.predict(x))
    assert np.array_equal(net.forward(x, train=False), net.layers[0].predict(x))


def test_dropout_backward_uses_the_same_mask() -> None:
    layer = dropout_in_network(0.4, 50).layers[1]
    x = np.full((20, 50), 2.0)
    out = layer.forward(x, train=True).copy()  # forward's array is reused by the next call
    mask = out / x
    g = np.random.default_rng(5).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(g), g * mask)    # dC/dx = dC/da ⊙ m
    assert set(np.unique(mask)) == {0.0, 1.0 / 0.6}
    # a second training pass draws a fresh mask
    assert not np.array_equal(layer.forward(x, train=True), out)


def test_dropout_rate_zero_is_the_identity_even_in_training() -> None:
    layer = dropout_in_network(0.0, 5).layers[1]
    x = np.random.default_rng(6).standard_normal((3, 5))
    assert layer.forward(x, train=True) is x
    g = np.ones_like(x)
    assert layer.backward(g) is g


def test_dropout_masks_follow_the_network_seed() -> None:
    x = np.ones((4, 30))
    first = dropout_in_network(0.5, 30, seed=9).forward(x, train=True)
    again = dropout_in_network(0.5, 30, seed=9).forward(x, train=True)
    other = dropout_in_network(0.5, 30, seed=10).layers[1].forward(x, train=True)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first != 0, other != 0)


def test_dropout_outside_a_network_refuses_to_train() -> None:
    with pytest.raises(RuntimeError, match="Network"):
        bp.Dropout(0.5).forward(np.ones((2, 2)), train=True)


# ------------------------------------------------------------------------------------ dense
def dense_in_network(d_in: int, d_out: int, dtype: str = "float64") -> bp.Dense:
    return bp.Network([bp.Dense(d_in, d_out)], seed=0, dtype=dtype).layers[0]


def test_dense_params_and_grads_keys_shapes_dtypes() -> None:
    for dtype in ("float32", "float64"):
        dense = dense_in_network(4, 3, dtype)
        assert sorted(dense.params) == sorted(dense.grads) == ["W", "b"]
        assert dense.params["W"].shape == dense.grads["W"].shape == (3, 4)   # (d_out, d_in)
        assert dense.params["b"].shape == dense.grads["b"].shape == (3,)
        arrays = (*dense.params.values(), *dense.grads.values())
        assert {a.dtype for a in arrays} == {np.dtype(dtype)}
    assert bp.Dense(4, 3).params == {}   # no arrays until the layer joins a network


def test_dense_forward_and_backward_by_hand() -> None:
    """Z = A Wᵀ + b; dW = Δᵀ A, db = Σ_n δ_n, dA = Δ W, with small integers."""
    dense = dense_in_network(2, 3)
    dense.params["W"][...] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    dense.params["b"][...] = [0.5, -1.0, 2.0]
    x = np.array([[1.0, -1.0], [2.0, 0.5]])
    z = dense.forward(x)
    np.testing.assert_array_equal(z, [[-0.5, -2.0, 1.0], [3.5, 7.0, 15.0]])
    delta = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    dx = dense.backward(delta)
    # dW[i, j] = Σ_n δ_ni x_nj
    np.testing.assert_array_equal(dense.grads["W"], [[5.0, 0.0], [2.0, 0.5], [0.0, 1.25]])
    np.testing.assert_array_equal(dense.grads["b"], [3.0, 1.0, -0.5])
    # dA = Δ W: row 0: (1·1 − 1·5, 1·2 − 1·6), row 1: (2 + 3 + 2.5, 4 + 4 + 3)
    np.testing.assert_array_equal(dx, [[-4.0, -4.0], [7.5, 11.0]])


def test_dense_input_grad_false_returns_none_but_sets_grads() -> None:
    rng = np.random.default_rng(7)
    x, delta = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    full = dense_in_network(4, 3)
    full.forward(x)
    dx = full.backward(delta)
    skip = dense_in_network(4, 3)
    skip.forward(x)
    skip.grads["W"][...] = np.nan   # stale values must be overwritten
    skip.grads["b"][...] = np.nan
    assert skip.backward(delta, input_grad=False) is None
    np.testing.assert_array_equal(skip.grads["W"], full.grads["W"])
    np.testing.assert_array_equal(skip.grads["b"], full.grads["b"])
    np.testing.assert_array_equal(dx, delta @ full.params["W"])


def test_dense_grads_are_updated_in_place() -> None:
    """Optimizers may hold on to the grads arrays: backward writes into them."""
    dense = dense_in_network(3, 2)
    gW, gb = dense.grads["W"], dense.grads["b"]
    dense.forward(np.ones((1, 3)))
    dense.backward(np.array([[1.0, 2.0]]))
    assert dense.grads["W"] is gW and dense.grads["b"] is gb
    np.testing.assert_array_equal(gW, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])


def test_backward_before_forward_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        dense_in_network(2, 2).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        bp.Sigmoid().backward(np.ones((1, 2)))


def test_layer_config_and_repr_rebuild_the_layer() -> None:
    for layer in (bp.Dense(3, 4, init="he_normal"), bp.LeakyReLU(0.2), bp.ELU(0.5),
                  bp.Dropout(0.25), bp.Sigmoid(), bp.Softmax()):
        clone = type(layer)(**layer.config())
        assert clone.config() == layer.config()
        assert repr(clone) == repr(layer)
    assert repr(bp.Dense(3, 4)) == "Dense(3, 4, init='glorot_uniform')"
    assert repr(bp.LeakyReLU(0.2)) == "LeakyReLU(slope=0.2)"
