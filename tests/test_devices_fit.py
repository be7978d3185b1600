"""Devices: ``fit`` with every optimizer on every array library, against the NumPy float64 run.

The same backends as tests/test_devices.py: NumPy, array-api-strict (default device and
``Device("device1")``, where a stray ``np.*`` call or a hidden host copy raises), PyTorch CPU
tensors, and CuPy / PyTorch CUDA where a GPU is present.
"""

from __future__ import annotations

import numpy as np
import pytest

import backprop as bp
from backprop.devices import to_numpy
from backprop.errors import DivergenceError
from test_devices import BACKENDS, device_spec, rel

OPTIMIZERS = {
    "sgd": lambda: bp.SGD(lr=0.1),
    "momentum": lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3, clip_norm=5.0),
    "rmsprop": lambda: bp.RMSprop(lr=1e-2, momentum=0.5, weight_decay=1e-3, max_norm=2.0),
    "adam": lambda: bp.Adam(lr=1e-2, weight_decay=1e-3),
    "adamw": lambda: bp.AdamW(lr=1e-2, clip_norm=1.0, max_norm=3.0),
}


@pytest.fixture(params=BACKENDS)
def spec(request):
    return device_spec(request.param)


def _data(n: int = 96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1)
    return x, y


def _net(spec) -> bp.Network:
    return bp.Network([bp.Dense(5, 8), bp.Tanh(), bp.Dropout(0.1), bp.Dense(8, 8), bp.ReLU(), bp.Dense(8, 3)],
                      seed=1, dtype="float64", device=spec)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_fit_with_each_optimizer_matches_numpy_float64(spec, opt) -> None:
    x, y = _data()
    w = np.random.default_rng(2).random(x.shape[0]) + 0.5
    ref, net = _net(None), _net(spec)
    kwargs = dict(loss="cross_entropy", epochs=3, batch_size=16, verbose=False, seed=4, engine="numpy",
                  sample_weight=w, validation_data=(x[:20], y[:20]), record_grad_norms=True)
    h_ref = bp.fit(ref, x, y, optimizer=OPTIMIZERS[opt](), **kwargs)
    h = bp.fit(net, x, y, optimizer=OPTIMIZERS[opt](), **kwargs)
    assert rel(net.parameter_buffer, ref.parameter_buffer) <= 1e-10
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(getattr(h, key), getattr(h_ref, key), rtol=1e-10)
    for i in h_ref.grad_norms:
        np.testing.assert_allclose(h.grad_norms[i], h_ref.grad_norms[i], rtol=1e-10)


def test_fit_takes_data_already_on_the_device_and_auto_engine(spec) -> None:
    x, y = _data()
    ref, net = _net(None), _net(spec)
    kwargs = dict(loss="quadratic", optimizer=None, epochs=2, batch_size=32, verbose=False)
    bp.fit(ref, x, y, **kwargs)
    history = bp.fit(net, net.device.asarray(x), y, **kwargs)  # engine="auto"
    assert history.engine == "numpy" or net.device.is_numpy
    assert rel(net.parameter_buffer, ref.parameter_buffer) <= 1e-10
    result, expected = bp.evaluate(net, x, y, "quadratic"), bp.evaluate(ref, x, y, "quadratic")
    assert abs(result["loss"] - expected["loss"]) <= 1e-10 * expected["loss"]


def test_divergence_on_a_device_restores_the_epochs_starting_weights(spec) -> None:
    x, y = _data()
    net = _net(spec)
    bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.SGD(lr=0.01), epochs=1, batch_size=16, verbose=False)
    before = to_numpy(net.parameter_buffer).copy()
    with pytest.raises(DivergenceError, match="epoch 1"):
        bp.fit(net, x * 1e150, y, loss="cross_entropy", optimizer=bp.SGD(lr=1e150), epochs=1, batch_size=16,
               verbose=False)
    np.testing.assert_array_equal(to_numpy(net.parameter_buffer), before)


def test_checkpoints_from_a_device_resume_on_the_cpu(spec, tmp_path) -> None:
    pytest.importorskip("safetensors")
    x, y = _data()
    kwargs = dict(loss="cross_entropy", batch_size=16, verbose=False, checkpoint_dir=tmp_path, engine="numpy")
    straight = _net(None)
    bp.fit(straight, x, y, optimizer=bp.Adam(lr=1e-2), epochs=3, **{**kwargs, "checkpoint_dir": None})
    net = _net(spec)
    bp.fit(net, x, y, optimizer=bp.Adam(lr=1e-2), epochs=2, **kwargs)  # epochs 1-2 on the device
    resumed = _net(None)
    bp.fit(resumed, x, y, optimizer=bp.Adam(lr=1e-2), epochs=3, resume=True, **kwargs)  # epoch 3 on the CPU
    assert rel(resumed.parameter_buffer, straight.parameter_buffer) <= 1e-10


def test_fit_moves_batch_by_batch_when_the_data_do_not_fit(spec, monkeypatch) -> None:
    from backprop.devices import Device

    monkeypatch.setattr(Device, "free_bytes", lambda self: 0)  # nothing fits: gathered on the host
    x, y = _data()
    w = np.random.default_rng(5).random(x.shape[0]) + 0.5
    ref, net = _net(None), _net(spec)
    kwargs = dict(loss="cross_entropy", epochs=2, batch_size=16, verbose=False, sample_weight=w, engine="numpy")
    h_ref = bp.fit(ref, x, y, optimizer=bp.SGD(lr=0.1, momentum=0.5), **kwargs)
    h = bp.fit(net, x, y, optimizer=bp.SGD(lr=0.1, momentum=0.5), **kwargs)
    assert rel(net.parameter_buffer, ref.parameter_buffer) <= 1e-10
    np.testing.assert_allclose(h.accuracy, h_ref.accuracy, rtol=1e-10)


def test_fit_reads_the_device_back_a_few_times_per_epoch_not_per_step(monkeypatch) -> None:
    xs = pytest.importorskip("array_api_strict")
    reads = {"n": 0}
    for name in ("__bool__", "__float__", "__int__", "__index__", "to_device"):
        original = getattr(xs._array_object.Array, name)

        def counted(self, *args, _original=original, **kwargs):
            reads["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(xs._array_object.Array, name, counted)
    x, y = _data()
    counts = []
    for batch_size in (48, 8):  # 2 and 12 steps per epoch
        reads["n"] = 0
        bp.fit(_net((xs, xs.Device("device1"))), x, y, loss="cross_entropy", optimizer=bp.Adam(lr=1e-2), epochs=2,
               batch_size=batch_size, verbose=False)
        counts.append(reads["n"])
    assert counts[0] == counts[1] <= 8, counts  # per epoch: the sums and the finiteness of the weights
