"""The training hot path allocates nothing proportional to the batch after its first step.

Layers, losses and ``fit``'s batch gathering write into workspace arrays allocated
once per batch shape (``backprop/_workspace.py``); the optimizers update in place.
tracemalloc counts every NumPy allocation, so a step that allocated a new
activation, delta or gradient array would show up as kilobytes per step here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import backprop as bp
from backprop.engines.numpy import BatchBuffers


def _step(net, loss, opt, buffers, x, t, idx, k):
    xb, tb, g, _, _ = buffers.take(x, t, idx)
    a = net.forward_unchecked(xb, train=True)
    loss.value_and_grad_unchecked(a, tb, g)
    net.backward_unchecked(g, input_grad=False)
    opt.step(net.parameters(), net.gradients())


NETS = {
    "sigmoid-quadratic-sgd": (lambda: [bp.Dense(64, 32), bp.Sigmoid(), bp.Dense(32, 10), bp.Sigmoid()],
                              bp.Quadratic, lambda: bp.SGD(lr=0.5)),
    "relu-dropout-ce-adam": (lambda: [bp.Dense(64, 48), bp.ReLU(), bp.Dropout(0.3), bp.Dense(48, 48),
                                      bp.Tanh(), bp.Dense(48, 10)],
                             bp.CrossEntropy, lambda: bp.Adam(lr=1e-3)),
    "leaky-momentum": (lambda: [bp.Dense(64, 40), bp.LeakyReLU(0.1), bp.Dense(40, 10), bp.Identity()],
                       bp.Quadratic, lambda: bp.SGD(lr=0.1, momentum=0.9, nesterov=True)),
}


def _peak_bytes_of_steps(name: str, dtype: str, batch: int, steps: int = 5) -> int:
    layers, loss_cls, make_opt = NETS[name]
    rng = np.random.default_rng(0)
    n, k = batch * (steps + 1), 10
    x = rng.random((n, 64)).astype(dtype)
    labels = rng.integers(0, k, n)
    net, loss, opt = bp.Network(layers(), seed=0, dtype=dtype), loss_cls(), make_opt()
    t = loss.training_targets(loss.prepare(labels, (n, k), net.dtype), k, net.dtype)
    buffers = BatchBuffers()
    order = rng.permutation(n)
    _step(net, loss, opt, buffers, x, t, order[:batch], k)  # warm-up: workspaces and optimizer state
    tracemalloc.start()
    try:
        for i in range(1, steps + 1):
            _step(net, loss, opt, buffers, x, t, order[i * batch:(i + 1) * batch], k)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_training_step_allocates_nothing_proportional_to_the_batch(name, dtype):
    small = _peak_bytes_of_steps(name, dtype, batch=1024)
    large = _peak_bytes_of_steps(name, dtype, batch=8192)
    narrowest = 8192 * 10 * np.dtype(dtype).itemsize  # the smallest (batch, width) array: 320 KiB
    # What remains is constant: NumPy's fixed-size (8192-element) ufunc buffers, used when a
    # broadcast such as "z += b" meets a large array, and small Python objects; eight times
    # the batch changes nothing.
    assert large <= small + 4096, (small, large)
    assert large < narrowest / 2, large


def test_fit_still_matches_the_plain_step():
    """The fused, in-place step computes the same numbers as the readable public API."""
    rng = np.random.default_rng(1)
    x = rng.random((64, 20))
    y = rng.integers(0, 5, 64)
    layers = lambda: [bp.Dense(20, 16), bp.Sigmoid(), bp.Dense(16, 5)]  # noqa: E731
    fast = bp.Network(layers(), seed=3, dtype="float64")
    slow = bp.Network(layers(), seed=3, dtype="float64")
    bp.fit(fast, x, y, loss=bp.CrossEntropy(), optimizer=bp.SGD(lr=0.5), epochs=1, batch_size=64,
           shuffle=False, verbose=False)
    loss = bp.CrossEntropy()
    slow.backward(loss.grad(slow.forward(x), y))
    bp.SGD(lr=0.5).step(slow.parameters(), slow.gradients())
    for p_fast, p_slow in zip(fast.parameters(), slow.parameters(), strict=True):
        np.testing.assert_allclose(p_fast, p_slow, rtol=1e-13, atol=1e-15)


def test_public_forward_and_backward_return_arrays_the_caller_owns():
    net = bp.Network([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 2)], seed=0, dtype="float64")
    x1, x2 = np.ones((5, 3)), np.full((5, 3), -2.0)
    a1 = net.forward(x1)
    kept = a1.copy()
    net.forward(x2)  # same batch size: the layers' workspaces are reused
    np.testing.assert_array_equal(a1, kept)
    g1 = net.backward(np.ones((5, 2)))
    kept = g1.copy()
    net.backward(np.full((5, 2), 3.0))
    np.testing.assert_array_equal(g1, kept)


@pytest.mark.parametrize("loss", [bp.Quadratic(), bp.CrossEntropy()])
def test_fused_value_and_grad_equals_value_and_grad(loss):
    rng = np.random.default_rng(2)
    a = rng.normal(size=(7, 4)) * 5
    labels = rng.integers(0, 4, 7)
    t = loss.training_targets(loss.prepare(labels, a.shape, a.dtype), 4, a.dtype)
    out = np.empty_like(a)
    value = loss.value_and_grad_unchecked(a, t, out)
    assert value == pytest.approx(loss.value(a, labels), rel=1e-14)
    np.testing.assert_allclose(out, loss.grad(a, labels), rtol=1e-13, atol=1e-17)
