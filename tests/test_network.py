"""Network: predict and forward, seeds, initializers, dtypes, summaries, configs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import backprop as bp
from backprop.errors import DTypeError, ShapeError


def mnist_net(seed: int = 0, dtype: str = "float32") -> bp.Network:
    """The textbook's 784-30-10 sigmoid network."""
    return bp.Network([bp.Dense(784, 30), bp.Sigmoid(), bp.Dense(30, 10), bp.Sigmoid()],
                      seed=seed, dtype=dtype)


def small_net(seed: int = 0, dtype: str = "float64", dropout: float = 0.0) -> bp.Network:
    return bp.Network([bp.Dense(6, 8), bp.Tanh(), bp.Dropout(dropout), bp.Dense(8, 5),
                       bp.Softmax()], seed=seed, dtype=dtype)


# -------------------------------------------------------------------------- predict/forward
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_equals_forward_bitwise(dtype: str) -> None:
    net = small_net(dtype=dtype, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((7, 6)).astype(dtype)
    out = net.forward(x)
    assert out.dtype == dtype and out.shape == (7, 5)
    assert np.array_equal(net.predict(x), out)
    # in chunks: the same values (each row's arithmetic does not depend on its neighbours
    # up to BLAS blocking, hence allclose)
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(net.predict(x, batch_size=3), out, rtol=rtol)
    assert net.predict(x, batch_size=3).shape == (7, 5)


@pytest.mark.parametrize("layers", [lambda: [bp.Dense(6, 8), bp.ReLU(), bp.Dense(8, 3)], lambda: [bp.Tanh()]],
                         ids=["dense", "activation-only"])
def test_predict_without_batch_size_runs_in_chunks_of_predict_rows(layers, monkeypatch) -> None:
    """More rows than PREDICT_ROWS: the chunks are stitched in order, each row as in one piece."""
    net = bp.Network(layers(), seed=0, dtype="float64")
    x = np.random.default_rng(1).standard_normal((23, 6))
    whole = net.predict(x)  # 23 <= 2048 rows: one piece
    monkeypatch.setattr(bp.Network, "PREDICT_ROWS", 5)
    chunked = net.predict(x)
    assert chunked.shape == whole.shape and chunked.dtype == whole.dtype
    np.testing.assert_allclose(chunked, whole, rtol=1e-14)
    np.testing.assert_allclose(net.predict(x, batch_size=23), whole, rtol=0)  # batch_size wins


class _Doubling(bp.layers.Layer):
    """A user's layer that only defines predict: Layer.predict_unchecked's default copies it."""

    def predict(self, x):
        return 2.0 * x


@pytest.mark.parametrize("layers", [
    lambda: [bp.Dense(6, 8), bp.ReLU(), bp.Dropout(0.5), bp.Dense(8, 3), bp.Dropout(0.2)],  # Dropout last
    lambda: [bp.Dropout(0.3)],                                                 # the input passed through
    lambda: [bp.Dropout(0.3), bp.Sigmoid(), bp.Dropout(0.1), bp.LeakyReLU(0.1), bp.Dense(6, 2)],
    lambda: [bp.Dense(6, 9), bp.ELU(), _Doubling(), bp.Dense(9, 4), bp.Softmax()],
    lambda: [bp.Dense(6, 3), bp.Tanh(), bp.Dense(3, 12), bp.GELU(), bp.Dense(12, 2), bp.Softplus()],
], ids=["dropout-last", "dropout-only", "leading-dropouts", "custom-layer", "narrow-then-wide"])
@pytest.mark.parametrize("rows", [1, 4, 11, None])
def test_predict_reuses_two_scratch_arrays_and_matches_each_layers_predict(layers, rows) -> None:
    """The layers write into two arrays shared by the chunks (each layer's output into the one
    that does not hold its input): the result is layer.predict applied in turn, chunk by
    chunk, bit for bit, a fresh array, and x is left as it was."""
    net = bp.Network(layers(), seed=0, dtype="float64")
    x = np.random.default_rng(3).standard_normal((11, 6))
    x_before = x.copy()
    out = net.predict(x, batch_size=rows)
    expected = []
    for lo in range(0, 11, rows or 11):
        a = x[lo:lo + (rows or 11)]
        for layer in net.layers:
            a = layer.predict(a)
        expected.append(a)
    np.testing.assert_array_equal(out, np.concatenate(expected))
    np.testing.assert_array_equal(x, x_before)
    assert out.flags.owndata and not np.shares_memory(out, x)


def test_predict_keeps_no_state() -> None:
    """A predict between forward and backward changes nothing: backward still differentiates
    the forward's batch."""
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((4, 6)), rng.standard_normal((9, 6))
    g = rng.standard_normal((4, 5))
    plain, interrupted = small_net(), small_net()
    plain.forward(x1)
    dx_plain = plain.backward(g)
    interrupted.forward(x1)
    interrupted.predict(x2)
    dx_interrupted = interrupted.backward(g)
    np.testing.assert_array_equal(dx_interrupted, dx_plain)
    for a, b in zip(interrupted.gradients(), plain.gradients(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_predict_from_several_threads() -> None:
    net = mnist_net(dtype="float64")
    batches = [np.random.default_rng(i).uniform(0, 1, (32, 784)) for i in range(8)]
    alone = [net.predict(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(net.predict, batches))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)


def test_backward_input_grad_false() -> None:
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((3, 6)), rng.standard_normal((3, 5))
    net = small_net()
    net.forward(x)
    dx = net.backward(g)
    grads = [gr.copy() for gr in net.gradients()]
    net.forward(x)
    assert net.backward(g, input_grad=False) is None
    for a, b in zip(net.gradients(), grads, strict=True):
        np.testing.assert_array_equal(a, b)
    assert dx.shape == x.shape


def test_parameters_are_named_ordered_and_writable() -> None:
    net = small_net()
    assert [name for name, _ in net.named_parameters()] == ["0.W", "0.b", "3.W", "3.b"]
    assert [p.shape for p in net.parameters()] == [(8, 6), (8,), (5, 8), (5,)]
    assert [g.shape for g in net.gradients()] == [(8, 6), (8,), (5, 8), (5,)]
    x = np.ones((1, 6))
    before = net.predict(x)
    for p in net.parameters():
        p[...] = 0.0   # in place: a zero network outputs the uniform distribution
    np.testing.assert_array_equal(net.predict(x), np.full((1, 5), 0.2))
    assert not np.array_equal(before, net.predict(x))


# ------------------------------------------------------------------------------------ seeds
def test_same_seed_same_weights_different_seed_different_weights() -> None:
    a, b, c = mnist_net(seed=42), mnist_net(seed=42), mnist_net(seed=43)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.layers[0].params["W"], c.layers[0].params["W"])
    assert not np.array_equal(a.layers[2].params["W"], c.layers[2].params["W"])


def test_reset_parameters_and_recorded_seed() -> None:
    net = mnist_net(seed=5)
    original = [p.copy() for p in net.parameters()]
    net.layers[0].params["W"][...] = 1.0
    net.reset_parameters()
    for p, q in zip(net.parameters(), original, strict=True):
        np.testing.assert_array_equal(p, q)
    fresh = bp.Network([bp.Dense(3, 2)])          # seed=None: fresh entropy, recorded
    again = bp.Network([bp.Dense(3, 2)], seed=fresh.seed)
    assert isinstance(fresh.seed, int) and fresh.seed >= 0
    np.testing.assert_array_equal(fresh.layers[0].params["W"], again.layers[0].params["W"])


# ----------------------------------------------------------------------------- initializers
FAN_IN, FAN_OUT = 1000, 500
# name: (distribution of W, its scale: std for normal / limit for uniform, bias)
INIT_SPECS = {
    "normal": ("normal", 1.0, "normal"),
    "normal_fan_in": ("normal", 1 / np.sqrt(FAN_IN), "normal"),
    "glorot_uniform": ("uniform", np.sqrt(6 / (FAN_IN + FAN_OUT)), "zeros"),
    "glorot_normal": ("normal", np.sqrt(2 / (FAN_IN + FAN_OUT)), "zeros"),
    "he_normal": ("normal", np.sqrt(2 / FAN_IN), "zeros"),
    "he_uniform": ("uniform", np.sqrt(6 / FAN_IN), "zeros"),
    "uniform_fan_in": ("uniform", 1 / np.sqrt(FAN_IN), "uniform"),
}


def test_every_initializer_is_specified() -> None:
    assert sorted(INIT_SPECS) == sorted(bp.init.INITIALIZERS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(INIT_SPECS))
def test_initializer_statistics(name: str, dtype: str) -> None:
    """Mean, standard deviation and limits on a 1000 → 500 layer (500,000 weights): the
    tolerances are 5 standard errors of each statistic."""
    dense = bp.Network([bp.Dense(FAN_IN, FAN_OUT, init=name)], seed=0, dtype=dtype).layers[0]
    W, b = dense.params["W"], dense.params["b"]
    assert W.shape == (FAN_OUT, FAN_IN) and b.shape == (FAN_OUT,)
    assert W.dtype == dtype and b.dtype == dtype
    dist, scale, bias = INIT_SPECS[name]
    W = W.astype(np.float64)
    n = W.size
    std = scale if dist == "normal" else scale / np.sqrt(3)   # U(±L) has std L/√3
    assert abs(W.mean()) < 5 * std / np.sqrt(n)
    assert abs(W.std() / std - 1) < 5 * np.sqrt(0.5 / n) * (1 if dist == "normal" else 0.9)
    if dist == "uniform":
        assert W.max() <= scale * (1 + 1e-6) and W.min() >= -scale * (1 + 1e-6)
        assert W.max() > 0.999 * scale and W.min() < -0.999 * scale
    else:   # normal: the tails are there (a uniform of the same std would stop at √3 σ)
        assert np.abs(W).max() > 4 * scale
    if bias == "zeros":
        np.testing.assert_array_equal(b, 0.0)
    elif bias == "normal":
        assert abs(b.mean()) < 5 / np.sqrt(FAN_OUT) and abs(b.std() - 1) < 0.2
    else:
        limit = 1 / np.sqrt(FAN_IN)
        assert np.abs(b).max() <= limit * (1 + 1e-6) and np.abs(b).max() > 0.9 * limit


def test_dense_default_init_is_glorot_uniform() -> None:
    W = bp.Network([bp.Dense(300, 100)], seed=0).layers[0].params["W"]
    limit = np.sqrt(6 / 400)
    assert W.max() <= limit * (1 + 1e-6) and W.max() > 0.99 * limit


# ----------------------------------------------------------------------------------- dtypes
def test_float32_by_default_float64_on_request() -> None:
    assert mnist_net().dtype == np.float32
    assert all(p.dtype == np.float32 for p in mnist_net().parameters())
    assert all(g.dtype == np.float32 for g in mnist_net().gradients())
    net64 = mnist_net(dtype="float64")
    assert net64.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net64.parameters())
    assert bp.Network([bp.Dense(2, 2)], dtype=np.float64).dtype == np.float64


def test_float32_input_into_a_float64_network_is_converted() -> None:
    net = small_net(dtype="float64")
    x32 = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    out = net.forward(x32)
    assert out.dtype == np.float64
    assert np.array_equal(out, net.forward(x32.astype(np.float64)))
    assert net.predict(x32).dtype == np.float64
    assert net.predict(x32.astype(np.float16)).dtype == np.float64


def test_float16_input_into_a_float32_network_is_converted() -> None:
    net = small_net(dtype="float32")
    assert net.forward(np.ones((2, 6), np.float16)).dtype == np.float32


def test_float64_input_into_a_float32_network_raises() -> None:
    net = small_net(dtype="float32")
    with pytest.raises(DTypeError, match="x has dtype float64 but the network computes in float32"):
        net.forward(np.ones((2, 6)))
    with pytest.raises(DTypeError, match=r"x\.astype\('float32'\)"):
        net.predict(np.ones((2, 6)))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_or_bool_input_raises(dtype) -> None:
    net = small_net(dtype="float32")
    with pytest.raises(DTypeError, match=rf"x has dtype {np.dtype(dtype).name} .* x / 255"):
        net.forward(np.ones((2, 6), dtype=dtype))


def test_backward_gradient_follows_the_dtype_rule() -> None:
    net = small_net(dtype="float32")
    net.forward(np.ones((2, 6), np.float32))
    with pytest.raises(DTypeError, match="grad has dtype float64"):
        net.backward(np.ones((2, 5)))
    assert net.backward(np.ones((2, 5), np.float32)).dtype == np.float32


# ------------------------------------------------------------------------- summary and repr
def test_summary_and_repr_count_parameters() -> None:
    net = mnist_net(seed=7)
    assert net.n_params == 784 * 30 + 30 + 30 * 10 + 10 == 23860
    summary = net.summary()
    assert "total parameters: 23,860" in summary
    assert "float32" in summary and "seed 7" in summary
    lines = summary.splitlines()
    dense1 = next(line for line in lines if line.startswith("0 "))
    dense2 = next(line for line in lines if line.startswith("2 "))
    assert "Dense(784, 30" in dense1 and "(N, 30)" in dense1 and dense1.rstrip().endswith("23,550")
    assert "Dense(30, 10" in dense2 and "(N, 10)" in dense2 and dense2.rstrip().endswith("310")
    sig = next(line for line in lines if line.startswith("1 "))
    assert sig.rstrip().endswith(" 0")
    text = repr(net)
    assert "23,860 parameters" in text and "(0): Dense(784, 30, init='glorot_uniform')" in text
    assert "(3): Sigmoid()" in text


# ------------------------------------------------------------------------------- round trips
def test_config_and_from_config_round_trip() -> None:
    net = bp.Network([bp.Dense(4, 6, init="he_normal"), bp.LeakyReLU(0.2), bp.Dropout(0.1),
                      bp.Dense(6, 3, init="normal"), bp.ELU(0.5), bp.Softmax()], seed=11)
    config = net.config()
    assert config[0] == {"kind": "Dense", "d_in": 4, "d_out": 6, "init": "he_normal"}
    assert config[1] == {"kind": "LeakyReLU", "slope": 0.2}
    assert config[2] == {"kind": "Dropout", "rate": 0.1}
    assert config[5] == {"kind": "Softmax"}
    rebuilt = bp.Network.from_config(config, seed=11)
    assert rebuilt.config() == config and repr(rebuilt) == repr(net)
    # the same seed gives the same weights
    for a, b in zip(rebuilt.parameters(), net.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_astype_round_trip() -> None:
    net = mnist_net(seed=3)
    net64 = net.astype("float64")
    assert net64.dtype == np.float64 and net64.config() == net.config()
    for a, b in zip(net64.parameters(), net.parameters(), strict=True):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b.astype(np.float64))   # float32 → float64 is exact
    back = net64.astype("float32")
    for a, b in zip(back.parameters(), net.parameters(), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(4).uniform(0, 1, (5, 784)).astype(np.float32)
    np.testing.assert_allclose(net64.predict(x), net.predict(x), rtol=1e-5)
    # the copy is independent: changing it leaves the original alone
    net64.layers[0].params["W"][...] = 0.0
    assert np.abs(net.layers[0].params["W"]).max() > 0


def test_width_mismatch_raises_at_construction() -> None:
    with pytest.raises(ShapeError, match=r"Dense\(5, 2\) takes inputs of width 5; "
                                         r"the layer before it outputs width 4"):
        bp.Network([bp.Dense(3, 4), bp.Sigmoid(), bp.Dense(5, 2)])
    net = bp.Network([bp.Dense(3, 4), bp.Sigmoid(), bp.Dense(4, 2)])
    assert (net.input_width, net.output_width) == (3, 2)


def test_html_reprs_for_notebooks() -> None:
    net = bp.Network([bp.Dense(3, 4), bp.ReLU(), bp.Dense(4, 2)], seed=0, dtype="float64")
    html = net._repr_html_()
    assert html.count("<tr>") == 4 and "26 parameters" in html and "Dense(3, 4" in html
    x = np.random.default_rng(0).random((20, 3))
    history = bp.fit(net, x, np.arange(20) % 2, loss="cross_entropy", epochs=3, batch_size=5,
                     verbose=False)
    table = history._repr_html_()
    assert table.count("<tr>") == 4 and "<th>loss</th>" in table and "<th>accuracy</th>" in table
    assert f"{history.loss[-1]:.4g}" in table
