"""The core's boundaries refuse bad input with a specific error whose message names the
argument: ``ShapeError``, ``DTypeError``, ``InvalidValueError``, ``ConfigError``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backprop as bp
from backprop.activations import activation
from backprop.errors import (
    BackpropError,
    ConfigError,
    DTypeError,
    InvalidValueError,
    ShapeError,
)
from backprop.losses import get_loss


@pytest.fixture
def net() -> bp.Network:
    return bp.Network([bp.Dense(4, 3), bp.Sigmoid()], seed=0)   # float32


def x32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def test_errors_are_also_builtin_exceptions() -> None:
    assert issubclass(ShapeError, ValueError) and issubclass(ShapeError, BackpropError)
    assert issubclass(DTypeError, TypeError) and issubclass(DTypeError, BackpropError)
    assert issubclass(InvalidValueError, ValueError) and issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------------ inputs x
@pytest.mark.parametrize("method", ["forward", "predict"])
def test_x_wrong_width(net: bp.Network, method: str) -> None:
    with pytest.raises(ShapeError, match=r"x must have 4 columns \(the network's input width\); "
                                         r"got shape \(2, 5\)"):
        getattr(net, method)(x32(2, 5))


@pytest.mark.parametrize("shape", [(4,), (1, 2, 4), ()])
def test_x_wrong_ndim(net: bp.Network, shape) -> None:
    with pytest.raises(ShapeError, match=r"x must be a 2-D batch of shape \(N, 4\); got shape"):
        net.forward(np.ones(shape, np.float32))


def test_x_empty_batch(net: bp.Network) -> None:
    with pytest.raises(ShapeError, match=r"x must hold at least one sample; got shape \(0, 4\)"):
        net.forward(x32(0, 4))


@pytest.mark.parametrize(("value", "counts"), [(np.nan, "1 NaN and 0 infinite"),
                                               (np.inf, "0 NaN and 1 infinite"),
                                               (-np.inf, "0 NaN and 1 infinite")])
def test_x_not_finite(net: bp.Network, value: float, counts: str) -> None:
    x = x32(3, 4)
    x[1, 2] = value
    with pytest.raises(InvalidValueError, match=f"x must be finite; it holds {counts} values"):
        net.forward(x)
    with pytest.raises(InvalidValueError, match="x must be finite"):
        net.predict(x)


@pytest.mark.parametrize("layout", ["C", "F", "rows strided", "columns strided"])
def test_x_not_finite_in_any_layout_and_any_slice_of_the_scan(layout: str) -> None:
    """The check scans in slices of 65,536 values: a NaN past the first slice, in the last
    value, or in an array without a flat view is found all the same."""
    wide = bp.Network([bp.Dense(300, 2)], seed=0)
    for row, col in [(0, 0), (250, 100), (599, 299)]:  # the first slice, a later one, the last value
        x = np.ones((600, 300), np.float32)
        x[row, col] = np.nan
        if layout == "F":
            x = np.asfortranarray(x)
        elif layout == "rows strided":  # every row of x, inside a larger buffer
            big = np.ones((600, 2, 300), np.float32)
            big[:, 0] = x
            x = big[:, 0]
        elif layout == "columns strided":
            big = np.ones((600, 600), np.float32)
            big[:, ::2] = x
            x = big[:, ::2]
        with pytest.raises(InvalidValueError, match="x must be finite; it holds 1 NaN and 0 infinite values"):
            wide.predict(x)
    assert wide.predict(np.ones((600, 300), np.float32)).shape == (600, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finiteness_check_neither_misses_infinities_nor_refuses_huge_finite_values(dtype) -> None:
    """The check first sums the squares: +inf and −inf (whose squares cannot cancel) and NaN are
    caught by it; finite values whose squares overflow make the sum infinite, and the exact
    scan then lets them pass."""
    net = bp.Network([bp.Dense(300, 2)], seed=0, dtype=np.dtype(dtype).name)
    huge = np.finfo(dtype).max / 4
    for values, n_nan, n_inf in [([np.inf], 0, 1), ([-np.inf], 0, 1), ([np.inf, -np.inf], 0, 2),
                                 ([np.nan, np.inf], 1, 1)]:
        x = np.ones((500, 300), dtype)
        x.flat[[7, 123_456][:len(values)]] = values
        with pytest.raises(InvalidValueError, match=f"it holds {n_nan} NaN and {n_inf} infinite values"):
            net.predict(x)
    x = np.full((500, 300), huge, dtype)
    x[::2] = -huge
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.dot(x.ravel(), x.ravel()))  # the quick check cannot decide ...
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and says nothing about its overflow
        assert net.predict(x).shape == (500, 2)  # ... and the exact one passes the data


@pytest.mark.parametrize("x", [np.array([["a", "b", "c", "d"]]),
                               np.array([[1.0, 2.0, 3.0, None]], dtype=object),
                               "abcd",
                               np.array([[1 + 2j, 0, 0, 0]])])
def test_x_not_numbers(net: bp.Network, x) -> None:
    with pytest.raises(DTypeError,
                       match=r"x must hold numbers \(bool, integer or float\); got dtype"):
        net.forward(x)


def test_x_not_an_array(net: bp.Network) -> None:
    with pytest.raises(DTypeError, match="x must be a NumPy array; got dict"):
        net.forward({"x": 1})
    with pytest.raises(ShapeError, match="x must be a rectangular array; got a ragged list"):
        net.forward([[1.0, 2.0, 3.0, 4.0], [1.0]])


def test_x_wrong_dtype(net: bp.Network) -> None:
    with pytest.raises(DTypeError, match="x has dtype float64 but the network computes in float32"):
        net.forward(np.ones((2, 4)))
    with pytest.raises(DTypeError, match="x has dtype int64"):
        net.forward(np.ones((2, 4), np.int64))


# ------------------------------------------------------------------------- backward's grad
def test_backward_grad_wrong_shape(net: bp.Network) -> None:
    net.forward(x32(2, 4))
    with pytest.raises(ShapeError,
                       match=r"grad must be dC/da\^L of shape \(N, 3\); got shape \(2, 4\)"):
        net.backward(x32(2, 4))
    with pytest.raises(ShapeError,
                       match=r"grad must be dC/da\^L of shape \(N, 3\); got shape \(3,\)"):
        net.backward(x32(3))


def test_backward_grad_not_finite(net: bp.Network) -> None:
    net.forward(x32(2, 4))
    g = x32(2, 3)
    g[0, 0] = np.nan
    with pytest.raises(InvalidValueError, match="grad must be finite"):
        net.backward(g)


# -------------------------------------------------------------------- loss outputs and labels
def test_loss_outputs_checked() -> None:
    loss = bp.Quadratic()
    with pytest.raises(ShapeError, match=r"a must be the network's outputs, a 2-D array"):
        loss.value(np.zeros(4), np.zeros(4))
    with pytest.raises(DTypeError, match="a must be a floating-point array; got dtype int64"):
        loss.value(np.zeros((2, 4), np.int64), np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="a must hold at least one sample"):
        loss.grad(np.zeros((0, 4)), np.zeros((0, 4)))
    with pytest.raises(InvalidValueError, match="a must be finite; it holds 1 NaN"):
        loss.grad(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))


@pytest.mark.parametrize("loss", [bp.Quadratic(), bp.Huber(), bp.BinaryCrossEntropy(),
                                  bp.CrossEntropy()], ids=repr)
def test_wrong_label_shape(loss: bp.Loss) -> None:
    a = np.zeros((3, 4))
    with pytest.raises(ShapeError, match=r"y must have the shape of the outputs \(3, 4\); "
                                         r"got shape \(3, 5\)"):
        loss.value(a, np.zeros((3, 5)))
    with pytest.raises(ShapeError,
                       match=r"integer labels y must have shape \(3,\), one per sample; "
                             r"got \(2,\)"):
        loss.value(a, np.array([0, 1]))


def test_single_output_regression_hints_at_reshape() -> None:
    with pytest.raises(ShapeError, match=r"got shape \(3,\) \(use y.reshape\(-1, 1\)"):
        bp.Quadratic().value(np.zeros((3, 1)), np.zeros(3))


@pytest.mark.parametrize("loss", [bp.CrossEntropy(), bp.BinaryCrossEntropy(), bp.Quadratic()],
                         ids=repr)
@pytest.mark.parametrize("labels", [[0, 1, 4], [0, -1, 2]])
def test_labels_out_of_range(loss: bp.Loss, labels) -> None:
    with pytest.raises(InvalidValueError, match=r"labels in y must lie in \[0, 4\) for 4 outputs; "
                                                r"got values from"):
        loss.value(np.zeros((3, 4)), np.array(labels))


def test_binary_labels_for_one_output_out_of_range() -> None:
    with pytest.raises(InvalidValueError, match=r"labels in y must lie in \[0, 2\)"):
        bp.BinaryCrossEntropy().value(np.zeros((2, 1)), np.array([0, 2]))


def test_float_labels_for_cross_entropy() -> None:
    with pytest.raises(DTypeError, match=r"class labels y must be integers; got dtype float64 "
                                         r"\(use y.astype\(int\)"):
        bp.CrossEntropy().value(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]))


def test_probability_targets_checked() -> None:
    with pytest.raises(InvalidValueError, match="each row of y must sum to 1.*row 1 sums to 0.5"):
        bp.CrossEntropy().value(np.zeros((2, 2)), np.array([[0.0, 1.0], [0.25, 0.25]]))
    with pytest.raises(InvalidValueError,
                       match=r"one-hot or probability targets y must lie in \[0, 1\]"):
        bp.CrossEntropy().value(np.zeros((1, 2)), np.array([[2.0, -1.0]]))
    with pytest.raises(InvalidValueError, match=r"binary targets y must lie in \[0, 1\]"):
        bp.BinaryCrossEntropy().value(np.zeros((1, 2)), np.array([[0.5, 1.5]]))


def test_targets_not_finite_or_not_numbers() -> None:
    with pytest.raises(InvalidValueError, match="y must be finite; it holds 1 NaN"):
        bp.Quadratic().value(np.zeros((1, 2)), np.array([[np.nan, 0.0]]))
    with pytest.raises(DTypeError, match=r"y must hold numbers"):
        bp.CrossEntropy().value(np.zeros((2, 2)), np.array(["cat", "dog"]))
    with pytest.raises(DTypeError, match=r"y must hold numbers"):
        bp.Quadratic().value(np.zeros((1, 2)), np.array([[0.0, None]], dtype=object))


def test_float64_targets_for_float32_outputs() -> None:
    with pytest.raises(DTypeError, match=r"y has dtype float64 but the outputs are float32; "
                                         r"convert it explicitly \(y.astype\('float32'\)\)"):
        bp.Quadratic().value(np.zeros((1, 2), np.float32), np.zeros((1, 2)))


# --------------------------------------------------------------------- construction settings
def test_network_settings() -> None:
    with pytest.raises(ConfigError, match="layers must be a non-empty list of layers"):
        bp.Network([])
    with pytest.raises(ConfigError, match="layers must be a non-empty list of layers"):
        bp.Network(bp.Dense(2, 2))
    with pytest.raises(ConfigError,
                       match=r"layers\[1\] must be a backprop Layer; got str 'sigmoid'"):
        bp.Network([bp.Dense(2, 2), "sigmoid"])
    sig = bp.Sigmoid()
    with pytest.raises(ConfigError, match="layers must be distinct objects"):
        bp.Network([bp.Dense(2, 2), sig, bp.Dense(2, 2), sig])
    with pytest.raises(ConfigError, match=r"dtype must be 'float32' or 'float64'; got 'float16'"):
        bp.Network([bp.Dense(2, 2)], dtype="float16")
    for seed in (-1, 1.5, True, "0"):
        with pytest.raises(ConfigError, match="seed must be a non-negative integer or None"):
            bp.Network([bp.Dense(2, 2)], seed=seed)


def test_from_config_refuses_unknown_or_broken_layers() -> None:
    with pytest.raises(ConfigError, match=r"config\[0\] names an unknown layer kind 'Conv2D'"):
        bp.Network.from_config([{"kind": "Conv2D"}])
    with pytest.raises(ConfigError, match=r"config\[1\] \(Dense\):"):
        bp.Network.from_config([{"kind": "Sigmoid"}, {"kind": "Dense", "d_in": 2}])
    with pytest.raises(ConfigError, match=r"config\[0\] must be a dict with a 'kind'"):
        bp.Network.from_config([["Dense", 2, 2]])


def test_layer_and_loss_settings() -> None:
    with pytest.raises(InvalidValueError, match="d_in must be a positive integer; got 0"):
        bp.Dense(0, 3)
    with pytest.raises(DTypeError, match="d_out must be a positive integer; got float 3.0"):
        bp.Dense(2, 3.0)
    with pytest.raises(ConfigError,
                       match=r"init must be one of \[.*'glorot_uniform'.*\]; got 'xavier'"):
        bp.Dense(2, 3, init="xavier")
    for rate in (1.0, -0.1, "0.5", True):
        with pytest.raises(ConfigError, match=r"rate must be a number in \[0, 1\)"):
            bp.Dropout(rate)
    with pytest.raises(ConfigError, match="delta must be a number > 0; got 0"):
        bp.Huber(0)
    with pytest.raises(ConfigError, match=r"activation must be one of \[.*\]; got 'swish'"):
        activation("swish")
    with pytest.raises(ConfigError, match=r"loss must be one of \[.*\]; got str 'mse'"):
        get_loss("mse")


def test_gradcheck_settings(net: bp.Network) -> None:
    x, y = x32(2, 4), np.zeros((2, 3), np.float32)
    with pytest.raises(InvalidValueError, match="eps must be a finite number >= 0"):
        bp.gradcheck(net, "quadratic", x, y, eps=-1e-6)
    with pytest.raises(InvalidValueError, match="eps must be > 0"):
        bp.gradcheck(net, "quadratic", x, y, eps=0.0)
    with pytest.raises(InvalidValueError, match="max_entries must be a positive integer; got 0"):
        bp.gradcheck(net, "quadratic", x, y, max_entries=0)
    with pytest.raises(ShapeError, match="x must have 4 columns"):
        bp.gradcheck(net, "quadratic", x32(2, 3), y)
