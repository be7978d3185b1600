"""Devices: the same layers, activations and losses on every array library, against NumPy float64.

Each check runs on NumPy, array-api-strict on its default device and on ``Device("device1")``
(where any stray ``np.*`` call or hidden host copy raises), and PyTorch CPU tensors; on CuPy
and PyTorch CUDA tensors where a GPU is present (benchmarks/gpu.py runs them there).
"""

from __future__ import annotations

import numpy as np
import pytest

import backprop as bp
from backprop.activations import ACTIVATIONS
from backprop.devices import get_device, to_numpy
from backprop.errors import ConfigError, DeviceError

BACKENDS = ["numpy", "strict", "strict-device1", "torch-cpu", "cupy", "torch-cuda"]


def device_spec(name: str):
    """What ``Network(device=...)`` takes for the backend ``name``; skips when it is missing."""
    if name == "numpy":
        return "cpu"
    if name.startswith("strict"):
        xs = pytest.importorskip("array_api_strict")
        return (xs, xs.Device("device1")) if name.endswith("device1") else xs
    if name.startswith("torch"):
        torch = pytest.importorskip("torch")
        if name == "torch-cuda" and not torch.cuda.is_available():
            pytest.skip("PyTorch finds no CUDA device")
        return (torch, "cuda" if name == "torch-cuda" else "cpu")
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("CuPy finds no CUDA device")
    except Exception:  # CUDARuntimeError: no driver
        pytest.skip("CuPy finds no CUDA device")
    return "cuda"


@pytest.fixture(params=BACKENDS)
def spec(request):
    return device_spec(request.param)


def rel(a, b) -> float:
    """Largest difference relative to the largest entry of the reference ``b``."""
    a, b = to_numpy(a), to_numpy(b)
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _net(act: bp.Layer, spec, dtype="float64", seed=3) -> bp.Network:
    return bp.Network([bp.Dense(6, 5), act, bp.Dropout(0.25), bp.Dense(5, 4)], seed=seed, dtype=dtype,
                      device=spec)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_layer_and_activation_gradients_match_numpy_float64(spec, name) -> None:
    rng = np.random.default_rng(0)
    x, upstream = rng.normal(size=(7, 6)), rng.normal(size=(7, 4))
    ref, net = _net(bp.activations.activation(name), None), _net(bp.activations.activation(name), spec)
    assert rel(net.parameter_buffer, ref.parameter_buffer) == 0.0  # drawn with NumPy, then moved
    a_ref, a = ref.forward(x, train=True), net.forward(x, train=True)  # the same dropout mask
    dx_ref, dx = ref.backward(upstream), net.backward(upstream)
    assert rel(a, a_ref) <= 1e-12
    assert rel(dx, dx_ref) <= 1e-12
    assert rel(net.gradient_buffer, ref.gradient_buffer) <= 1e-12
    act = net.layers[1]
    if name != "softmax":  # f and f' alone, on the device's arrays
        z = net.device.asarray(x)
        assert rel(act.derivative(z, act.predict(z)), ref.layers[1].derivative(x, ref.layers[1].predict(x))) <= 1e-12


def _targets(loss_name: str, rng: np.random.Generator, n: int, k: int):
    if loss_name == "cross_entropy":
        return rng.integers(0, k, size=n)
    if loss_name == "poisson":
        return rng.poisson(2.0, size=(n, k)).astype(np.float64)
    if loss_name == "binary_cross_entropy":
        return (rng.random((n, k)) < 0.5).astype(np.float64)
    return rng.normal(size=(n, k))


@pytest.mark.parametrize("loss_name", sorted(bp.losses.LOSSES))
def test_loss_values_and_gradients_match_numpy_float64(spec, loss_name) -> None:
    rng = np.random.default_rng(1)
    n, k = 9, 4
    a_host, y, w = rng.normal(size=(n, k)) * 3, _targets(loss_name, rng, n, k), rng.random(n) + 0.1
    loss = bp.losses.get_loss(loss_name)
    device = get_device(spec)
    a = device.asarray(a_host)
    assert abs(loss.value(a, y) - loss.value(a_host, y)) <= 1e-12 * abs(loss.value(a_host, y))
    assert rel(loss.grad(a, y), loss.grad(a_host, y)) <= 1e-12
    assert type(loss.grad(a, y)) is type(a)  # computed where a is
    assert rel(loss.per_sample(a, y), loss.per_sample(a_host, y)) <= 1e-12
    # the training path: prepared targets on the device, values left there
    t_host = loss.training_targets(loss.prepare(y, (n, k), np.dtype(np.float64)), k, np.dtype(np.float64))
    t = device.asarray(t_host)
    out_ref, out = np.empty((n, k)), device.empty((n, k), np.dtype(np.float64))
    v_ref = loss.value_and_grad_unchecked(a_host, t_host, out_ref)
    v = loss.value_and_grad_unchecked(a, t, out)
    assert abs(float(to_numpy(v)) - v_ref) <= 1e-12 * abs(v_ref)
    assert rel(out, out_ref) <= 1e-12
    v_ref = loss.weighted_value_and_grad_unchecked(a_host, t_host, w, out_ref)
    v = loss.weighted_value_and_grad_unchecked(a, t, device.asarray(w), out)
    assert abs(float(to_numpy(v)) - v_ref) <= 1e-12 * abs(v_ref)
    assert rel(out, out_ref) <= 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_matches_numpy_in_chunks(spec, dtype) -> None:
    x = np.random.default_rng(2).normal(size=(50, 6)).astype(dtype)
    ref = bp.Network([bp.Dense(6, 8), bp.ReLU(), bp.Dense(8, 8), bp.Tanh(), bp.Dense(8, 3), bp.Softmax()],
                     seed=5, dtype=dtype)
    net = bp.Network.from_config(ref.config(), seed=5, dtype=dtype, device=spec)
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert rel(net.predict(x, batch_size=16), ref.predict(x)) <= tol
    on_device = net.device.asarray(x)  # an input already on the device is used there
    assert rel(net.predict(on_device), ref.predict(x)) <= tol


def test_save_on_a_device_load_anywhere(spec, tmp_path) -> None:
    pytest.importorskip("safetensors")
    x = np.random.default_rng(3).normal(size=(5, 6))
    net = _net(bp.Sigmoid(), spec)
    path = bp.save(net, tmp_path / "m.safetensors")
    on_cpu = bp.load(path)
    assert on_cpu.device.is_numpy
    assert rel(on_cpu.parameter_buffer, net.parameter_buffer) == 0.0
    back = bp.load(path, device=spec)
    assert back.device == net.device
    assert rel(back.predict(x), on_cpu.predict(x)) <= 1e-12  # the same weights; another BLAS


def test_to_moves_parameters_and_back(spec) -> None:
    net = _net(bp.Tanh(), None)
    before = net.parameter_buffer.copy()
    x = np.random.default_rng(4).normal(size=(3, 6))
    expected = net.predict(x)
    net.to(spec)
    assert rel(net.predict(x), expected) <= 1e-12
    assert rel(net.layers[0].params["W"], before[:30].reshape(5, 6)) == 0.0  # views into the buffer
    net.to("cpu")
    assert isinstance(net.parameter_buffer, np.ndarray)
    np.testing.assert_array_equal(net.parameter_buffer, before)


# ----------------------------------------------------------------------------------- bad input
def test_unknown_device_string_lists_the_accepted_forms() -> None:
    with pytest.raises(ConfigError, match=r'"cpu", "cuda", "cuda:N"'):
        bp.Network([bp.Dense(2, 2)], device="gpu0")
    with pytest.raises(ConfigError, match="device must be one of"):
        get_device(42)


def test_cuda_without_cupy_or_gpu_says_which_is_missing() -> None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceError, match=r"needs CuPy, which is not installed: pip install") as err:
            bp.Network([bp.Dense(2, 2)], device="cuda")
        assert "\n" not in str(err.value)
        return
    try:
        import cupy as cp

        count = cp.cuda.runtime.getDeviceCount()
    except Exception:
        count = 0
    if count:
        pytest.skip("a CUDA device is present")
    with pytest.raises(DeviceError, match="needs a CUDA device"):
        bp.Network([bp.Dense(2, 2)], device="cuda")


def test_an_array_on_another_library_or_device_is_refused_naming_the_argument() -> None:
    xs = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    net = bp.Network([bp.Dense(3, 2)], dtype="float64", device=(xs, xs.Device("device1")))
    with pytest.raises(DeviceError, match=r"^x is a torch array on cpu, but the network is on array_api_strict"):
        net.predict(torch.zeros(2, 3, dtype=torch.float64))
    other = xs.asarray(np.zeros((2, 3)), device=xs.Device("device2"))
    with pytest.raises(DeviceError, match="^x is a array_api_strict array"):
        net.forward(other)
    with pytest.raises(DeviceError, match="^grad is"):
        net.forward(np.zeros((2, 3)))
        net.backward(xs.asarray(np.zeros((2, 2)), device=xs.Device("device2")))


def test_numba_engine_refuses_a_device_network_and_says_why() -> None:
    xs = pytest.importorskip("array_api_strict")
    net = bp.Network([bp.Dense(3, 2)], dtype="float64", device=xs)
    x, y = np.zeros((40, 3)), np.zeros(40, dtype=int)
    with pytest.raises(ConfigError, match="compiled engine runs on NumPy arrays only"):
        bp.fit(net, x, y, loss="cross_entropy", engine="numba", epochs=1, verbose=False)


def test_to_torch_and_onnx_export_read_device_parameters_through_host_copies(spec, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from backprop.torch import to_torch

    x = np.random.default_rng(6).normal(size=(4, 6))
    net, ref = _net(bp.GELU(), spec), _net(bp.GELU(), None)
    module = to_torch(net)
    with torch.no_grad():
        out = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref.predict(x), rtol=1e-10, atol=1e-12)
    onnx = pytest.importorskip("onnx")
    from backprop.onnx import export

    path = export(net, tmp_path / "m.onnx")
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    np.testing.assert_array_equal(weights["0_Dense.W"], ref.layers[0].params["W"])


def test_a_network_pickles_with_its_device(spec) -> None:
    import pickle

    net = _net(bp.Softplus(), spec)
    x = np.random.default_rng(7).normal(size=(3, 6))
    back = pickle.loads(pickle.dumps(net))
    assert back.device == net.device
    assert rel(back.predict(x), net.predict(x)) == 0.0
