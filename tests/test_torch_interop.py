"""Tests of ``backprop.torch``: conversion both ways, and backprop checked against autograd.

* ``to_torch(net)(x)`` equals ``net.predict(x)``: within 1e-6 in float32, 1e-12 in float64;
* ``from_torch(to_torch(net))`` predicts bitwise as ``net``;
* modules and settings backprop cannot represent are refused with a message naming them;
* micrograd's check, in double precision: for random networks with every activation and
  each loss, ``net.backward``'s ``dW``, ``db`` and ``dC/dx`` equal PyTorch autograd's
  (relative error ≤ 1e-10), with PyTorch's own loss functions set to our reduction: the
  mean over the batch of the per-sample cost.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import backprop as bp  # noqa: E402
from backprop.errors import ConfigError, DTypeError, ShapeError  # noqa: E402
from backprop.torch import from_torch, to_torch  # noqa: E402

nn = torch.nn
F = torch.nn.functional
TOL = {"float32": 1e-6, "float64": 1e-12}

#: one of each activation-like layer kind, with non-default settings
ACTIVATIONS = [bp.Sigmoid, bp.Tanh, bp.ReLU, lambda: bp.LeakyReLU(0.2), lambda: bp.ELU(alpha=0.8),
               bp.Softplus, bp.GELU, bp.Softmax, bp.Identity, lambda: bp.Dropout(0.3)]


def every_layer_net(dtype, seed=0):
    layers = [bp.Dense(4, 6)]
    for make in ACTIVATIONS:
        layers += [make(), bp.Dense(6, 6)]
    return bp.Network(layers + [bp.Dense(6, 3)], seed=seed, dtype=dtype)


def torch_predict(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def max_diff(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    return float(np.max(np.abs(a - b)))


# ------------------------------------------------------------------------ to_torch
def test_to_torch_builds_the_matching_modules():
    net = every_layer_net("float64")
    model = to_torch(net)
    assert isinstance(model, nn.Sequential) and not model.training  # eval mode, as predict
    assert [type(m) for m in model] == [
        nn.Linear, nn.Sigmoid, nn.Linear, nn.Tanh, nn.Linear, nn.ReLU, nn.Linear, nn.LeakyReLU,
        nn.Linear, nn.ELU, nn.Linear, nn.Softplus, nn.Linear, nn.GELU, nn.Linear, nn.Softmax,
        nn.Linear, nn.Identity, nn.Linear, nn.Dropout, nn.Linear, nn.Linear]
    assert model[7].negative_slope == 0.2 and model[9].alpha == 0.8
    assert model[11].beta == 1 and model[11].threshold == 40
    assert model[13].approximate == "tanh" and model[15].dim == 1 and model[19].p == 0.3
    for layer, m in zip(net.layers, model, strict=True):
        if isinstance(layer, bp.Dense):
            assert m.weight.dtype == m.bias.dtype == torch.float64
            assert m.weight.shape == (layer.d_out, layer.d_in)  # the same layout: no transpose
            np.testing.assert_array_equal(m.weight.detach().numpy(), layer.params["W"])
            np.testing.assert_array_equal(m.bias.detach().numpy(), layer.params["b"])
    # no random initial weights are drawn: the caller's torch RNG is left as it was
    state = torch.get_rng_state()
    to_torch(net)
    assert torch.equal(torch.get_rng_state(), state)
    # copies: training one does not move the other
    before = net.layers[0].params["W"].copy()
    with torch.no_grad():
        model[0].weight += 1.0
    np.testing.assert_array_equal(net.layers[0].params["W"], before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_torch_computes_predict(dtype):
    net = every_layer_net(dtype)
    model = to_torch(net)
    x = np.random.default_rng(1).normal(scale=2.0, size=(100, 4)).astype(dtype)
    y = torch_predict(model, x)
    assert y.dtype == np.dtype(dtype)
    assert max_diff(y, net.predict(x)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: type(m()).__name__)
def test_each_activation_on_its_tails(make, dtype):
    net = bp.Network([make()], dtype=dtype)
    x = np.linspace(-60, 60, 6000, dtype=dtype).reshape(-1, 3)  # saturation, eˣ overflow
    x[:, 1] /= 50.0  # and values near 0, all in one Softmax row
    assert max_diff(torch_predict(to_torch(net), x), net.predict(x)) <= TOL[dtype] * 10


class Square(bp.Layer):
    def predict(self, x):
        return x * x


def test_to_torch_refuses_a_layer_it_cannot_convert():
    with pytest.raises(ConfigError, match="cannot convert layer 1, Square, to PyTorch"):
        to_torch(bp.Network([bp.Dense(2, 2), Square()]))
    with pytest.raises(ConfigError, match="net must be a backprop Network"):
        to_torch(nn.Linear(2, 2))


# ---------------------------------------------------------------------- from_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_bitwise(dtype, seed):
    net = every_layer_net(dtype, seed)
    back = from_torch(to_torch(net), seed=seed)
    assert back.dtype == np.dtype(dtype) and back.config() == net.config()
    for p, q in zip(net.parameters(), back.parameters(), strict=True):
        assert p.tobytes() == q.tobytes()
    x = np.random.default_rng(seed).normal(scale=3.0, size=(50, 4)).astype(dtype)
    assert net.predict(x).tobytes() == back.predict(x).tobytes()
    # the rebuilt net trains the same way too: Dropout keeps its rate and, from the seed, its mask
    assert back.forward(x, train=True).tobytes() == net.forward(x, train=True).tobytes()


def test_from_torch_reads_nested_sequentials_and_module_dtype():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Linear(3, 5), nn.LeakyReLU(0.05)),
        nn.Sequential(nn.Linear(5, 4), nn.Sequential(nn.GELU(approximate="tanh"))),
        nn.Linear(4, 2), nn.Softmax(dim=-1),
    ).double()
    net = from_torch(model)
    assert net.dtype == np.float64
    assert [type(layer) for layer in net.layers] == [
        bp.Dense, bp.LeakyReLU, bp.Dense, bp.GELU, bp.Dense, bp.Softmax]
    assert net.layers[1].slope == 0.05
    x = np.random.default_rng(0).normal(size=(20, 3))
    assert max_diff(net.predict(x), torch_predict(model, x)) <= 1e-12
    net32 = from_torch(model, dtype="float32")  # cast on request
    assert net32.dtype == np.float32
    assert max_diff(net32.predict(x.astype(np.float32)),
                    torch_predict(model.float(), x.astype(np.float32))) <= 1e-6


def test_from_torch_linear_without_bias_gets_zero_bias():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2))
    net = from_torch(model)
    assert net.dtype == np.float32
    np.testing.assert_array_equal(net.layers[0].params["b"], np.zeros(4, np.float32))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    assert max_diff(net.predict(x), torch_predict(model, x)) <= 1e-6


def test_from_torch_single_module_and_activation_only_sequential():
    net = from_torch(nn.Linear(3, 2))
    assert [type(layer) for layer in net.layers] == [bp.Dense]
    net = from_torch(nn.Sequential(nn.Softplus(), nn.Sigmoid()))  # no parameters: float32
    assert net.dtype == np.float32 and net.input_width is None


@pytest.mark.parametrize("module, message", [
    (nn.GELU(), r"GELU\(approximate='none'\) is the exact GELU .* tanh approximation"),
    (nn.Softplus(beta=2.0), r"Softplus\(beta=2.0\) .* beta=1 only"),
    (nn.Softplus(threshold=5.0), r"Softplus\(threshold=5.0\) .* threshold >= 20"),
    (nn.Softmax(dim=0), r"Softmax\(dim=0\).* dim=1 or dim=-1 only"),
    (nn.Softmax(), r"Softmax\(dim=None\)"),
    (nn.Dropout(p=1.0), r"Dropout\(p=1.0\).* \[0, 1\)"),
    (nn.Hardtanh(), r"module\[1\] \(Hardtanh\): unsupported module torch.nn.*Hardtanh"),
    (nn.Conv1d(2, 2, 1), r"unsupported module .*Conv1d"),
])
def test_from_torch_refuses_what_backprop_cannot_compute(module, message):
    with pytest.raises(ConfigError, match=message):
        from_torch(nn.Sequential(nn.Linear(2, 2), module))


def test_from_torch_refuses_subclasses_and_non_modules():
    class Doubled(nn.ReLU):  # a subclass may compute something else
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ConfigError, match=r"module\[0\]\[1\] \(Doubled\): unsupported"):
        from_torch(nn.Sequential(nn.Sequential(nn.Linear(2, 2), Doubled())))
    with pytest.raises(ConfigError, match="must be a torch.nn.Sequential"):
        from_torch([nn.Linear(2, 2)])
    with pytest.raises(ConfigError, match="empty nn.Sequential"):
        from_torch(nn.Sequential())
    with pytest.raises(ShapeError, match="takes inputs of width 3"):
        from_torch(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(3, 1)))


def test_from_torch_dtypes():
    with pytest.raises(DTypeError, match="float16.*pass dtype="):
        from_torch(nn.Sequential(nn.Linear(2, 2)).half())
    net = from_torch(nn.Sequential(nn.Linear(2, 2)).to(torch.bfloat16), dtype="float32")
    assert net.dtype == np.float32
    with pytest.raises(DTypeError, match="mixed dtypes"):
        from_torch(nn.Sequential(nn.Linear(2, 2).double(), nn.Linear(2, 2)))
    with pytest.raises(ConfigError, match="dtype must be 'float32' or 'float64'"):
        from_torch(nn.Sequential(nn.Linear(2, 2)), dtype="int8")


def test_importing_backprop_imports_neither_torch_nor_onnx():
    code = ("import sys, backprop, backprop.torch, backprop.onnx; "
            "print(sorted({'torch', 'onnx', 'onnxruntime'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------- gradients checked against autograd
def quadratic(a, y):
    """C = (1/N) Σ_n ½‖a_n − y_n‖²."""
    return 0.5 * F.mse_loss(a, y, reduction="sum") / a.shape[0]


def huber(delta):
    """C = (1/N) Σ_n Σ_i h_δ(a_ni − y_ni)."""
    return lambda a, y: F.huber_loss(a, y, reduction="sum", delta=delta) / a.shape[0]


def binary_cross_entropy(a, y):
    """C = (1/N) Σ_n Σ_i BCE(σ(a_ni), y_ni), on logits."""
    return F.binary_cross_entropy_with_logits(a, y, reduction="sum") / a.shape[0]


def cross_entropy(a, y):
    """C = (1/N) Σ_n −log softmax(a_n)[y_n] (labels) or −Σ_j y_nj log softmax(a_n)_j (rows)."""
    return F.cross_entropy(a, y, reduction="mean")


def targets(loss_name, rng, n, k, seed):
    if loss_name == "cross_entropy":
        if seed % 2 == 0:
            return rng.integers(0, k, size=n)  # class labels
        p = rng.random((n, k))
        return p / p.sum(axis=1, keepdims=True)  # soft labels
    if loss_name == "binary_cross_entropy":
        return rng.random((n, k))
    return rng.normal(scale=2.0, size=(n, k))  # both sides of Huber's delta


LOSSES = {
    "cross_entropy": (bp.CrossEntropy(), cross_entropy),
    "quadratic": (bp.Quadratic(), quadratic),
    "binary_cross_entropy": (bp.BinaryCrossEntropy(), binary_cross_entropy),
    "huber": (bp.Huber(delta=0.7), huber(0.7)),
}


def relative_error(ours, theirs):
    """``max |ours − theirs| / max |theirs|``: the error relative to the array's scale."""
    scale = max(float(np.max(np.abs(theirs))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(ours - theirs))) / scale


@pytest.mark.parametrize("loss_name", list(LOSSES))
@pytest.mark.parametrize("seed", range(4))
def test_gradients_equal_autograd_in_float64(seed, loss_name):
    """dW, db and dC/dx from net.backward equal torch autograd's through the same network."""
    rng = np.random.default_rng(seed)
    # three hidden activations per network; seeds 0-3 cover all ten kinds
    acts = [ACTIVATIONS[(3 * seed + j) % len(ACTIVATIONS)]() for j in range(3)]
    widths = rng.integers(2, 7, size=5)
    layers = []
    for j, act in enumerate(acts):
        layers += [bp.Dense(int(widths[j]), int(widths[j + 1])), act]
    layers.append(bp.Dense(int(widths[3]), int(widths[4])))  # outputs: logits for CE and BCE
    net = bp.Network(layers, seed=seed, dtype="float64")
    ours, theirs = LOSSES[loss_name]
    n, k = 7, int(widths[4])
    x = rng.normal(scale=1.5, size=(n, int(widths[0])))
    y = targets(loss_name, rng, n, k, seed)

    a = net.forward(x)
    if loss_name == "huber":  # both of its pieces are exercised
        assert (np.abs(a - y) < 0.7).any() and (np.abs(a - y) > 0.7).any()
    value = ours.value(a, y)
    dx = net.backward(ours.grad(a, y))

    model = to_torch(net)  # eval mode: Dropout is the identity, as in forward(train=False)
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    assert max_diff(out.detach().numpy(), a) <= 1e-12
    cost = theirs(out, torch.from_numpy(y))
    cost.backward()

    assert abs(value - cost.item()) <= 1e-12 * max(1.0, abs(value))
    assert relative_error(dx, xt.grad.numpy()) <= 1e-10
    for layer, m in zip(net.layers, model, strict=True):
        if isinstance(layer, bp.Dense):
            assert relative_error(layer.grads["W"], m.weight.grad.numpy()) <= 1e-10
            assert relative_error(layer.grads["b"], m.bias.grad.numpy()) <= 1e-10


def test_missing_torch_is_reported_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(ImportError, match=r"pip install 'backprop\[torch\]'"):
        to_torch(bp.Network([bp.Dense(2, 2)]))
