"""The one training step (forward → loss → backward → gradient hook → update), the gradient
hook of ``fit``, ``fit(sample_weight=...)``, and the one parameter buffer, as worked examples."""

from __future__ import annotations

import numpy as np
import pytest

import backprop as bp
from backprop.errors import DTypeError, InvalidValueError, ShapeError
from backprop.training import TrainingStep


def _net(dtype="float64", seed=0):
    return bp.Network([bp.Dense(3, 5), bp.Tanh(), bp.Dense(5, 2)], seed=seed, dtype=dtype)


def _data(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 2))


# ------------------------------------------------------------------ parameter buffer
def test_parameters_and_gradients_are_views_into_one_buffer_each():
    net = _net()
    assert net.parameter_buffer.shape == (3 * 5 + 5 + 5 * 2 + 2,) == (net.n_params,)
    offset = 0
    for p, g in zip(net.parameters(), net.gradients(), strict=True):
        assert np.shares_memory(p, net.parameter_buffer) and np.shares_memory(g, net.gradient_buffer)
        np.testing.assert_array_equal(p.ravel(), net.parameter_buffer[offset:offset + p.size])
        offset += p.size
    assert offset == net.n_params
    net.layers[0].params["W"][1, 2] = 7.0  # writable in place, and seen through the buffer
    assert net.parameter_buffer[1 * 3 + 2] == 7.0


def test_backward_writes_the_gradients_into_the_gradient_buffer():
    net, (x, y) = _net(), _data()
    net.backward(bp.Quadratic().grad(net.forward(x), y))
    flat = np.concatenate([g.ravel() for g in net.gradients()])
    np.testing.assert_array_equal(flat, net.gradient_buffer)
    assert np.abs(flat).sum() > 0


def test_the_same_seed_gives_the_same_buffer_and_astype_copies_it():
    a, b = _net(seed=4), _net(seed=4)
    np.testing.assert_array_equal(a.parameter_buffer, b.parameter_buffer)
    c = a.astype("float32")
    assert c.parameter_buffer.dtype == np.float32
    np.testing.assert_array_equal(c.parameter_buffer, a.parameter_buffer.astype(np.float32))


# ------------------------------------------------------------------ the training step
def test_one_step_is_the_textbook_update():
    """SGD(lr=η) on a batch: w ← w − η ∂C/∂w with C the batch mean (seed 001)."""
    net, (x, y) = _net(), _data(n=4)
    reference = _net()
    reference.backward(bp.Quadratic().grad(reference.forward(x, train=True), y))
    expected = reference.parameter_buffer - 0.1 * reference.gradient_buffer
    step = TrainingStep(net, bp.Quadratic(), bp.SGD(lr=0.1), fused=False, grad_hook=None)
    stats = step(1, x, y, np.empty_like(y))
    np.testing.assert_allclose(net.parameter_buffer, expected, rtol=0, atol=1e-15)
    loss = bp.Quadratic().value(reference.forward(x), y)
    np.testing.assert_allclose(stats, [loss * 4, 4.0, 0.0], rtol=1e-15)


def test_the_hook_runs_once_per_step_between_backward_and_the_update():
    net, (x, y) = _net(), _data(n=10)
    calls = []

    def hook(grads, stats):
        assert grads is net.gradient_buffer
        # backward has run: the buffer holds this batch's gradient
        calls.append((grads.copy(), stats.copy(), net.parameter_buffer.copy()))

    opt = bp.SGD(lr=0.05)
    history = bp.fit(net, x, y, loss="quadratic", optimizer=opt, epochs=2, batch_size=4, shuffle=False,
                     verbose=False, grad_hook=hook)
    assert len(calls) == 2 * 3 == opt.t  # batches of 4, 4, 2 in each of 2 epochs
    assert history.engine == "numpy"
    # the update comes after the hook: the weights it saw are those before that step, and the
    # next step's weights are those minus η times the gradient it saw
    for (g, _, before), (_, _, after) in zip(calls, calls[1:], strict=False):
        np.testing.assert_allclose(after, before - 0.05 * g, rtol=0, atol=1e-15)
    assert [c[1][1] for c in calls] == [4.0, 4.0, 2.0] * 2  # Σ weight: the batch's rows


def test_a_hook_that_changes_the_gradients_changes_the_update():
    """The hook's result is what the optimizer applies: zeroing it freezes the network."""
    net, (x, y) = _net(), _data()
    start = net.parameter_buffer.copy()
    bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=0.1), epochs=2, batch_size=4, verbose=False,
           grad_hook=lambda grads, stats: grads.fill(0.0))
    np.testing.assert_array_equal(net.parameter_buffer, start)


def test_a_non_callable_hook_is_refused():
    net, (x, y) = _net(), _data()
    with pytest.raises(DTypeError, match="grad_hook must be a callable"):
        bp.fit(net, x, y, loss="quadratic", grad_hook=3, verbose=False)


def test_an_empty_share_contributes_nothing():
    """A process's empty share of a batch (m = 0) gives zero gradients and zero stats."""
    net, _ = _net(), _data()
    net.gradient_buffer.fill(1.0)
    seen = []
    step = TrainingStep(net, bp.Quadratic(), bp.SGD(lr=0.1), fused=False,
                        grad_hook=lambda g, s: seen.append((g.copy(), s.copy())))
    before = net.parameter_buffer.copy()
    step(1, np.empty((0, 3)), np.empty((0, 2)), np.empty((0, 2)))
    assert not seen[0][0].any() and not seen[0][1].any()
    np.testing.assert_array_equal(net.parameter_buffer, before)  # Σ weight 0: no update


# ------------------------------------------------------------------ sample weights
def test_integer_weights_equal_repeated_samples():
    """Weight 2 on a sample is the same as that sample twice, in one full batch."""
    x, y = _data(n=6)
    w = np.array([1, 2, 1, 3, 1, 1])
    a, b = _net(), _net()
    bp.fit(a, x, y, loss="quadratic", optimizer=bp.SGD(lr=0.1), epochs=3, batch_size=6, verbose=False,
           sample_weight=w)
    rep = np.repeat(np.arange(6), w)
    hist = bp.fit(b, x[rep], y[rep], loss="quadratic", optimizer=bp.SGD(lr=0.1), epochs=3,
                  batch_size=len(rep), verbose=False)
    np.testing.assert_allclose(a.parameter_buffer, b.parameter_buffer, rtol=1e-13, atol=1e-15)
    assert hist.loss  # the unweighted run's loss is its plain mean


def test_weighted_epoch_loss_is_the_weighted_mean():
    x, y = _data(n=8)
    w = np.linspace(0.5, 2.0, 8)
    net = _net()
    history = bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=1e-12), epochs=1, batch_size=8,
                     verbose=False, sample_weight=w)
    per = bp.Quadratic().per_sample(_net().forward(x), y)  # the weights barely moved
    assert history.loss[0] == pytest.approx(float(per @ w / w.sum()), rel=1e-9)


def test_unit_weights_equal_no_weights():
    x, y = _data(n=10)
    a, b = _net(), _net()
    bp.fit(a, x, y, loss="quadratic", epochs=2, batch_size=3, verbose=False, sample_weight=np.ones(10))
    bp.fit(b, x, y, loss="quadratic", epochs=2, batch_size=3, verbose=False)
    np.testing.assert_allclose(a.parameter_buffer, b.parameter_buffer, rtol=1e-12, atol=1e-15)


def test_a_batch_whose_weights_are_all_zero_takes_no_step():
    x, y = _data(n=4)
    net, opt = _net(), bp.SGD(lr=0.1)
    bp.fit(net, x, y, loss="quadratic", optimizer=opt, epochs=1, batch_size=2, shuffle=False,
           verbose=False, sample_weight=np.array([0.0, 0.0, 1.0, 1.0]))
    assert opt.t == 1


@pytest.mark.parametrize(("w", "error", "match"), [
    (np.ones(5), ShapeError, r"sample_weight must have one weight per sample of x, shape \(12,\)"),
    (np.full(12, -1.0), InvalidValueError, "finite and >= 0"),
    (np.r_[np.ones(11), np.nan], InvalidValueError, "finite and >= 0"),
    (np.zeros(12), InvalidValueError, "must not be all zero"),
    (np.array(["a"] * 12), DTypeError, "sample_weight must hold numbers"),
    (np.ones(12) * 1j, DTypeError, "sample_weight must hold numbers"),
])
def test_bad_sample_weights_are_refused_by_name(w, error, match):
    net, (x, y) = _net(), _data()
    start = net.parameter_buffer.copy()
    with pytest.raises(error, match=match):
        bp.fit(net, x, y, loss="quadratic", verbose=False, sample_weight=w)
    np.testing.assert_array_equal(net.parameter_buffer, start)


def test_weighted_classification_counts_weighted_accuracy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 3))
    labels = (x[:, 0] > 0).astype(int)
    net = bp.Network([bp.Dense(3, 2)], seed=0, dtype="float64")
    w = rng.uniform(0.1, 3.0, 20)
    history = bp.fit(net, x, labels, loss="cross_entropy", optimizer=bp.SGD(lr=1e-12), epochs=1,
                     batch_size=20, verbose=False, sample_weight=w)
    hit = net.predict(x).argmax(axis=1) == labels
    assert history.accuracy[0] == pytest.approx(float(w @ hit / w.sum()), rel=1e-12)


def test_grad_norms_skip_a_batch_whose_weights_are_all_zero():
    """A zero-weight batch runs no backward, so its δ must not be counted (the layers still
    hold the previous batch's): the norm is the first batch's alone, over all N samples."""
    x, y = _data(n=4)
    kept = bp.fit(_net(), x[:2], y[:2], loss="quadratic", epochs=1, batch_size=2, shuffle=False,
                  verbose=False, record_grad_norms=True)
    both = bp.fit(_net(), np.r_[x[:2], x[:2]], np.r_[y[:2], y[:2]], loss="quadratic", epochs=1, batch_size=2,
                  shuffle=False, verbose=False, record_grad_norms=True, sample_weight=np.array([1.0, 1.0, 0.0, 0.0]))
    for layer, norms in kept.grad_norms.items():  # Σ‖δ‖² of one batch, over N = 2, then N = 4
        assert both.grad_norms[layer][0] == pytest.approx(norms[0] / np.sqrt(2), rel=1e-12)
