"""Tests of ``backprop.fit`` and ``backprop.evaluate``, written as worked examples.

What the notes promise about training, checked with numbers:

* small problems converge (XOR with sigmoid units; linear regression recovers its weights);
* one step on a mini-batch ``B`` of m samples is ``w ← w − η/m Σ_{x∈B} ∇C_x`` (seed 001),
  so ``batch_size=N`` is one full-batch step and ``batch_size=1`` is per-sample SGD;
* each epoch visits the samples in a fresh, seeded permutation, by indexing, never by
  copying the data set;
* validation, History, callbacks, early stopping, dropout, max-norm, divergence and bad
  input behave as their docstrings say.

Everything runs in float64 on a few dozen samples unless a test says otherwise.
"""

from __future__ import annotations

import math
import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import backprop as bp
from backprop.errors import ConfigError, DivergenceError, DTypeError, InvalidValueError, ShapeError
from backprop.optim.schedules import LinearWarmup, StepDecay

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


# --------------------------------------------------------------------------- helpers
def regression_data(n=40, d=3, k=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, k))


def blobs(n=60, d=4, k=3, seed=0):
    """k well-separated Gaussian clusters: x (n, d) float64, integer labels (n,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = 3.0 * rng.normal(size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)), labels


def mlp(d=3, h=5, k=1, seed=0, out=None, dropout=None):
    layers = [bp.Dense(d, h), bp.Tanh()]
    if dropout is not None:
        layers.append(bp.Dropout(dropout))
    layers.append(bp.Dense(h, k))
    if out is not None:
        layers.append(out)
    return bp.Network(layers, seed=seed, dtype="float64")


def snapshot(net):
    return [p.copy() for p in net.parameters()]


def assert_params_equal(net, expected, atol=0.0):
    got = net.parameters()
    assert len(got) == len(expected)
    for p, e in zip(got, expected, strict=True):
        if atol:
            assert_allclose(p, e, rtol=0, atol=atol)
        else:
            assert_array_equal(p, e)


class Recorder(bp.Callback):
    """Records every hook call with its arguments (weights copied at epoch boundaries)."""

    def __init__(self):
        self.calls = []
        self.batches = []             # (batch index, batch loss, batch size)
        self.begin_weights = {}       # epoch -> weights at on_epoch_begin
        self.end_weights = {}         # epoch -> weights at on_epoch_end
        self.logs = {}                # epoch -> copy of the epoch's logs
        self.history_len = {}         # epoch -> len(history) seen at on_epoch_end

    def on_train_begin(self, net, history):
        self.calls.append("train_begin")
        self.net, self.history = net, history

    def on_epoch_begin(self, epoch, net, history):
        self.calls.append(("epoch_begin", epoch))
        assert net is self.net and history is self.history
        self.begin_weights[epoch] = snapshot(net)

    def on_batch_end(self, batch, logs, net):
        assert net is self.net
        self.batches.append((batch, logs["loss"], logs["batch_size"]))

    def on_epoch_end(self, epoch, logs, net, history):
        self.calls.append(("epoch_end", epoch))
        assert net is self.net and history is self.history
        self.end_weights[epoch] = snapshot(net)
        self.logs[epoch] = dict(logs)
        self.history_len[epoch] = len(history)

    def on_train_end(self, net, history):
        self.calls.append("train_end")
        assert net is self.net and history is self.history


class TargetSpy(bp.Quadratic):
    """Quadratic cost that records the targets of every training batch (``value_and_grad_unchecked``
    is only called by training steps, never by evaluation): with ``y[i] = i`` it shows
    which samples each step used, and in what order."""

    def __init__(self):
        self.batches = []

    def value_and_grad_unchecked(self, a, t, out):  # the training step's entry point
        self.batches.append(t[:, 0].astype(int).tolist())
        return super().value_and_grad_unchecked(a, t, out)


def manual_step(net, x, y, loss, lr):
    """One textbook SGD step on the batch (x, y): w ← w − η · (1/m) Σ_x ∇C_x, where each
    ∇C_x comes from its own single-sample forward/backward (the mean taken here, by hand)."""
    m = x.shape[0]
    total = [np.zeros_like(p) for p in net.parameters()]
    for i in range(m):
        a = net.forward(x[i:i + 1])
        net.backward(loss.grad(a, y[i:i + 1]))  # batch of one: the gradient of C_x itself
        for s, g in zip(total, net.gradients(), strict=True):
            s += g
    for p, s in zip(net.parameters(), total, strict=True):
        p -= lr * (s / m)


# ------------------------------------------------------------------ convergence
@pytest.mark.parametrize("hidden", [3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_with_sigmoid_units_converges(hidden, seed):
    net = bp.Network([bp.Dense(2, hidden, init="normal"), bp.Sigmoid(),
                      bp.Dense(hidden, 1, init="normal"), bp.Sigmoid()], seed=seed, dtype="float64")
    history = bp.fit(net, XOR_X, XOR_Y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=5.0),
                     epochs=1500, batch_size=4, verbose=False)
    result = bp.evaluate(net, XOR_X, XOR_Y, bp.Quadratic())
    assert result["loss"] < 0.01
    assert history.loss[-1] < 0.01
    assert result["accuracy"] is None  # a single real output: no class labels
    out = net.predict(XOR_X)
    assert_array_equal(out > 0.5, XOR_Y > 0.5)
    assert np.all(np.abs(out - XOR_Y) < 0.15)  # ½(a − y)² < 0.01 ⇔ |a − y| < 0.141
    assert history.loss[-1] < history.loss[0] / 10


def test_linear_regression_recovers_known_weights_and_bias():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    w_true, b_true = np.array([[2.0, -3.0, 0.5]]), np.array([0.7])
    y = x @ w_true.T + b_true  # noiseless: the minimiser is (w_true, b_true) exactly
    net = bp.Network([bp.Dense(3, 1), bp.Identity()], seed=0, dtype="float64")
    history = bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.5),
                     epochs=300, batch_size=64, shuffle=False, verbose=False)
    dense = net.layers[0]
    assert_allclose(dense.params["W"], w_true, rtol=0, atol=1e-3)
    assert_allclose(dense.params["b"], b_true, rtol=0, atol=1e-3)
    assert history.loss[-1] < 1e-8
    assert all(a is None for a in history.accuracy)


def test_small_mnist_subset_learns():
    (x, y), _ = bp.datasets.load_mnist()
    x_train, y_train, x_val, y_val = x[:600], y[:600], x[600:900], y[600:900]
    net = bp.Network([bp.Dense(784, 30), bp.Sigmoid(), bp.Dense(30, 10)], seed=0)
    history = bp.fit(net, x_train, y_train, loss=bp.CrossEntropy(), optimizer=bp.SGD(lr=0.5),
                     epochs=5, batch_size=10, validation_data=(x_val, y_val), verbose=False)
    assert history.accuracy[-1] > 0.85
    assert history.val_accuracy[-1] > 0.75
    assert history.val_loss[-1] < history.val_loss[0]
    assert net.layers[0].params["W"].dtype == np.float32  # float32 data, float32 network


# ------------------------------------------------------------ mini-batch semantics
def test_full_batch_epoch_is_one_textbook_step():
    x, y = regression_data(n=12)
    net, ref = mlp(seed=3, out=bp.Sigmoid()), mlp(seed=3, out=bp.Sigmoid())
    bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.7), epochs=1,
           batch_size=12, shuffle=False, verbose=False)
    manual_step(ref, x, y, bp.Quadratic(), lr=0.7)
    assert_params_equal(net, snapshot(ref), atol=1e-12)
    start = snapshot(mlp(seed=3, out=bp.Sigmoid()))
    assert any(np.any(p != q) for p, q in zip(net.parameters(), start, strict=True))


def test_full_batch_step_does_not_depend_on_the_shuffle():
    x, y = regression_data(n=12)
    a, b = mlp(seed=1), mlp(seed=1)
    for net, shuffle in ((a, False), (b, True)):
        bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=0.3), epochs=3, batch_size=12,
               shuffle=shuffle, seed=5, verbose=False)
    assert_params_equal(a, snapshot(b), atol=1e-12)


def test_batch_size_one_is_sequential_per_sample_sgd():
    x, y = regression_data(n=9)
    net, ref = mlp(seed=2), mlp(seed=2)
    bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.1), epochs=2, batch_size=1,
           shuffle=False, verbose=False)
    for _ in range(2):
        for i in range(9):
            manual_step(ref, x[i:i + 1], y[i:i + 1], bp.Quadratic(), lr=0.1)
    assert_params_equal(net, snapshot(ref), atol=1e-12)


@settings(max_examples=25)
@given(n=st.integers(1, 13), batch_size=st.integers(1, 13), seed=st.integers(0, 2**16))
def test_unshuffled_batches_are_consecutive_slices(n, batch_size, seed):
    """For any N and batch size: the steps use rows [0, m), [m, 2m), ...; the last batch
    holds the N mod m leftovers; each step is the textbook mean-gradient step."""
    batch_size = min(batch_size, n)
    x, y = regression_data(n=n, seed=seed)
    net, ref = mlp(seed=seed), mlp(seed=seed)
    rec = Recorder()
    bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.2), epochs=1,
           batch_size=batch_size, shuffle=False, callbacks=[rec], verbose=False)
    sizes = [size for _, _, size in rec.batches]
    assert sizes == [min(batch_size, n - lo) for lo in range(0, n, batch_size)]
    assert [b for b, _, _ in rec.batches] == list(range(len(sizes)))
    for lo in range(0, n, batch_size):
        manual_step(ref, x[lo:lo + batch_size], y[lo:lo + batch_size], bp.Quadratic(), lr=0.2)
    assert_params_equal(net, snapshot(ref), atol=1e-12)


def test_each_epoch_visits_every_sample_once_in_a_fresh_seeded_order():
    n = 20
    x = np.random.default_rng(0).normal(size=(n, 3))
    y = np.arange(n, dtype=float).reshape(n, 1)  # the target of sample i is i

    def orders(seed, shuffle=True):
        spy = TargetSpy()
        bp.fit(mlp(), x, y, loss=spy, optimizer=bp.SGD(lr=1e-6), epochs=3, batch_size=5,
               shuffle=shuffle, seed=seed, verbose=False)
        flat = [i for batch in spy.batches for i in batch]
        return [flat[e * n:(e + 1) * n] for e in range(3)]

    epochs = orders(seed=7)
    for order in epochs:
        assert sorted(order) == list(range(n))  # a permutation: every sample exactly once
    assert epochs[0] != epochs[1] != epochs[2]  # a fresh permutation each epoch
    assert epochs[0] != list(range(n))
    assert orders(seed=7) == epochs             # the same seed: the same orders
    assert orders(seed=8) != epochs             # another seed: other orders
    assert orders(seed=7, shuffle=False) == [list(range(n))] * 3


def test_same_seed_gives_bitwise_identical_training_with_dropout():
    x, labels = blobs(n=50)

    def train(fit_seed):
        net = bp.Network([bp.Dense(4, 16), bp.ReLU(), bp.Dropout(0.5), bp.Dense(16, 3)],
                         seed=11, dtype="float64")
        history = bp.fit(net, x, labels, loss=bp.CrossEntropy(),
                         optimizer=bp.SGD(lr=0.1, momentum=0.9), epochs=4, batch_size=8,
                         seed=fit_seed, verbose=False)
        return snapshot(net), history.loss

    w1, loss1 = train(3)
    w2, loss2 = train(3)
    w3, loss3 = train(4)
    for a, b in zip(w1, w2, strict=True):
        assert a.tobytes() == b.tobytes()
    assert loss1 == loss2
    assert any(not np.array_equal(a, c) for a, c in zip(w1, w3, strict=True))
    assert loss1 != loss3


# ------------------------------------------------------------ no copies of the data
def test_the_data_set_is_indexed_not_copied_per_epoch():
    n, d = 8000, 128
    x = np.random.default_rng(0).normal(size=(n, d))  # 8 MB
    y = np.random.default_rng(1).normal(size=(n, 1))
    x.flags.writeable = False  # fit must not write into the caller's data
    y.flags.writeable = False
    before = x.copy()
    net = bp.Network([bp.Dense(d, 2), bp.Tanh(), bp.Dense(2, 1)], seed=0, dtype="float64")

    class PeakPerEpoch(bp.Callback):
        peaks = []

        def on_epoch_begin(self, epoch, net, history):
            self.start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()

        def on_epoch_end(self, epoch, logs, net, history):
            self.peaks.append(tracemalloc.get_traced_memory()[1] - self.start)

    spy = PeakPerEpoch()
    tracemalloc.start()
    try:
        bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.01), epochs=2,
               batch_size=100, callbacks=[spy], verbose=False)
    finally:
        tracemalloc.stop()
    assert len(spy.peaks) == 2
    # the permutation (64 kB) and a batch or two (100 rows: 100 kB each) vs x.nbytes = 8 MB
    assert max(spy.peaks) < x.nbytes / 16, spy.peaks
    assert_array_equal(x, before)


# ------------------------------------------------------------------- validation
def test_validation_split_holds_out_the_last_rows():
    n = 50
    x = np.random.default_rng(0).normal(size=(n, 3))
    y = np.arange(n, dtype=float).reshape(n, 1)  # the target of sample i is i
    spy, rec = TargetSpy(), Recorder()
    net = mlp()
    history = bp.fit(net, x, y, loss=spy, optimizer=bp.SGD(lr=1e-6), epochs=2, batch_size=8,
                     validation_split=0.2, callbacks=[rec], verbose=False)
    seen = [i for batch in spy.batches for i in batch]
    assert sorted(seen[:40]) == list(range(40)) and sorted(seen[40:]) == list(range(40))
    assert sum(size for _, _, size in rec.batches) == 2 * 40  # 40 training rows per epoch
    assert len(history.val_loss) == 2
    held_out = bp.evaluate(net, x[40:], y[40:], bp.Quadratic())
    assert history.val_loss[-1] == held_out["loss"]
    assert history.val_accuracy == [None, None]


def test_validation_split_zero_and_tiny_mean_no_validation():
    x, y = regression_data(n=10)
    history = bp.fit(mlp(), x, y, loss="quadratic", epochs=1, batch_size=10,
                     validation_split=0.01, verbose=False)  # round(0.1) = 0 rows held out
    assert history.val_loss == [] and history.val_accuracy == []


def test_validation_data_is_evaluated_after_each_epoch():
    x, labels = blobs(n=40)
    xv, lv = blobs(n=15, seed=1)
    rec = Recorder()
    net = bp.Network([bp.Dense(4, 8), bp.Tanh(), bp.Dense(8, 3)], seed=0, dtype="float64")
    history = bp.fit(net, x, labels, loss=bp.CrossEntropy(), optimizer=bp.SGD(lr=0.2), epochs=3,
                     batch_size=10, validation_data=(xv, lv), callbacks=[rec], verbose=False)
    assert sum(size for _, _, size in rec.batches) == 3 * 40  # all of x trains
    for epoch in (1, 2, 3):
        ref = mlp(d=4, h=8, k=3)
        for p, w in zip(ref.parameters(), rec.end_weights[epoch], strict=True):
            p[...] = w
        expected = bp.evaluate(ref, xv, lv, bp.CrossEntropy())
        assert history.val_loss[epoch - 1] == expected["loss"]
        assert history.val_accuracy[epoch - 1] == expected["accuracy"]
        assert rec.logs[epoch]["val_loss"] == expected["loss"]


# -------------------------------------------------------------------- History
def test_history_has_one_entry_per_epoch():
    x, labels = blobs(n=30)
    net = bp.Network([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 3)], seed=0, dtype="float64")
    history = bp.fit(net, x, labels, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=4,
                     batch_size=7, validation_data=blobs(n=9, seed=2), verbose=False)
    assert len(history) == 4
    assert history.epoch == [1, 2, 3, 4]
    d = history.as_dict()
    assert set(d) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert all(len(v) == 4 for v in d.values())
    assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in history.accuracy)
    assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in history.val_accuracy)
    assert all(s > 0 for s in history.seconds)
    assert history.lr == [0.1] * 4
    assert history.stop_training is False and history.restored_epoch is None
    assert "4 epochs" in repr(history)


def test_history_without_validation_or_class_labels():
    x, y = regression_data(n=20, k=2)
    history = bp.fit(mlp(k=2), x, y, loss="quadratic", epochs=3, batch_size=5, verbose=False)
    assert len(history.loss) == 3 and len(history.accuracy) == 3
    assert history.accuracy == [None, None, None]  # real-valued targets: no accuracy
    assert history.val_loss == [] and history.val_accuracy == []


def test_history_loss_is_the_sample_weighted_mean_of_batch_losses():
    x, y = regression_data(n=23)
    rec = Recorder()
    history = bp.fit(mlp(), x, y, loss="quadratic", optimizer=bp.SGD(lr=0.05), epochs=2,
                     batch_size=5, callbacks=[rec], verbose=False)
    per_epoch = len(rec.batches) // 2
    assert per_epoch == 5  # 5 + 5 + 5 + 5 + 3
    for e in range(2):
        batches = rec.batches[e * per_epoch:(e + 1) * per_epoch]
        expected = sum(loss * size for _, loss, size in batches) / 23
        assert history.loss[e] == pytest.approx(expected, rel=1e-12)


def test_history_accuracy_is_measured_on_the_training_batches():
    """With a learning rate of 1e-12 the weights do not move measurably, so the epoch's
    training loss and accuracy equal those of the initial network on all of x."""
    x, labels = blobs(n=40, seed=3)
    net = bp.Network([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 3)], seed=4, dtype="float64")
    before = bp.evaluate(net, x, labels, bp.CrossEntropy())
    assert 0.0 < before["accuracy"] < 1.0
    history = bp.fit(net, x, labels, loss=bp.CrossEntropy(), optimizer=bp.SGD(lr=1e-12),
                     epochs=1, batch_size=6, verbose=False)
    assert history.accuracy[0] == before["accuracy"]
    assert history.loss[0] == pytest.approx(before["loss"], rel=1e-9)


def test_history_lr_follows_the_schedule_per_epoch():
    x, y = regression_data(n=20)
    # 4 batches per epoch; halve the rate every 4 steps: one halving per epoch
    opt = bp.SGD(lr=0.8, schedule=StepDecay(4, gamma=0.5))
    history = bp.fit(mlp(), x, y, loss="quadratic", optimizer=opt, epochs=4, batch_size=5,
                     verbose=False)
    assert history.lr == [0.8, 0.4, 0.2, 0.1]
    assert opt.t == 16 and opt.lr == 0.05
    # warm-up over 10 steps, 4 steps per epoch: epochs start at steps 0, 4, 8, 12
    opt = bp.SGD(lr=1.0, schedule=LinearWarmup(10))
    history = bp.fit(mlp(), x, y, loss="quadratic", optimizer=opt, epochs=4, batch_size=5,
                     verbose=False)
    assert history.lr == pytest.approx([0.1, 0.5, 0.9, 1.0], rel=1e-15)


# ------------------------------------------------------------------- callbacks
def test_callback_hooks_are_called_in_order_with_their_arguments():
    x, labels = blobs(n=10)
    rec = Recorder()
    net = bp.Network([bp.Dense(4, 5), bp.Tanh(), bp.Dense(5, 3)], seed=0, dtype="float64")
    history = bp.fit(net, x, labels, loss="cross_entropy", epochs=3, batch_size=4,
                     validation_data=blobs(n=6, seed=1), callbacks=[rec], verbose=False)
    assert rec.net is net and rec.history is history
    assert rec.calls == ["train_begin",
                         ("epoch_begin", 1), ("epoch_end", 1),
                         ("epoch_begin", 2), ("epoch_end", 2),
                         ("epoch_begin", 3), ("epoch_end", 3),
                         "train_end"]
    # 10 samples in batches of 4: sizes 4, 4, 2; batch indices count from 0 in each epoch
    assert [(b, size) for b, _, size in rec.batches] == [(0, 4), (1, 4), (2, 2)] * 3
    assert all(math.isfinite(loss) for _, loss, _ in rec.batches)
    for epoch in (1, 2, 3):
        assert set(rec.logs[epoch]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert rec.logs[epoch]["loss"] == history.loss[epoch - 1]
        assert rec.logs[epoch]["accuracy"] == history.accuracy[epoch - 1]
        assert rec.logs[epoch]["val_accuracy"] == history.val_accuracy[epoch - 1]
        assert rec.history_len[epoch] == epoch  # the epoch is in History before on_epoch_end
    # the weights at the end of an epoch are those at the start of the next
    for a, b in zip(rec.end_weights[1], rec.begin_weights[2], strict=True):
        assert_array_equal(a, b)
    assert_params_equal(net, rec.end_weights[3])


def test_a_callback_can_stop_training():
    class StopAt2(bp.Callback):
        def on_epoch_end(self, epoch, logs, net, history):
            if epoch == 2:
                history.stop_training = True

    rec = Recorder()
    x, y = regression_data(n=8)
    history = bp.fit(mlp(), x, y, loss="quadratic", epochs=10, batch_size=4,
                     callbacks=[StopAt2(), rec], verbose=False)
    assert history.epoch == [1, 2]
    assert rec.calls[-2:] == [("epoch_end", 2), "train_end"]


# -------------------------------------------------------------- early stopping
class Scripted(bp.Callback):
    """Replaces ``logs[key]`` by a scripted value per epoch (placed before EarlyStopping)."""

    def __init__(self, key, values):
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs, net, history):
        logs[self.key] = self.values[epoch - 1]


@pytest.mark.parametrize(
    ("monitor", "script", "patience", "min_delta", "best", "stopped"),
    [
        # best at 3; epochs 4, 5, 6 do not improve: patience 3 stops after epoch 6
        ("val_loss", [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 1.0, 1.0], 3, 0.0, 3, 6),
        # improvements smaller than min_delta do not count: 2.95 and 2.91 are not < 3 − 0.1
        ("val_loss", [5.0, 4.0, 3.0, 2.95, 2.91, 0.5, 0.1, 0.1], 2, 0.1, 3, 5),
        # accuracy: higher is better; a tie (0.7 again) is no improvement
        ("val_accuracy", [0.5, 0.7, 0.7, 0.6, 0.9, 0.9], 2, 0.0, 2, 4),
        ("loss", [3.0, 2.0, 1.0, 0.5, 0.25, 0.125], 1, 0.0, 6, None),  # never stops
    ],
)
def test_early_stopping_stops_after_patience_and_restores_the_best(
        monitor, script, patience, min_delta, best, stopped):
    x, labels = blobs(n=12)
    net = bp.Network([bp.Dense(4, 5), bp.Tanh(), bp.Dense(5, 3)], seed=0, dtype="float64")
    rec = Recorder()
    stop = bp.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta)
    history = bp.fit(net, x, labels, loss="cross_entropy", optimizer=bp.SGD(lr=0.5),
                     epochs=len(script), batch_size=4, validation_data=blobs(n=5, seed=1),
                     callbacks=[Scripted(monitor, script), stop, rec], verbose=False)
    assert len(history) == (stopped if stopped is not None else len(script))
    assert history.stop_training is (stopped is not None)
    assert stop.best_epoch == best and history.restored_epoch == best
    assert_params_equal(net, rec.end_weights[best])  # the weights of the best epoch
    if best != len(history):
        last, kept = rec.end_weights[len(history)], rec.end_weights[best]
        assert any(not np.array_equal(a, b) for a, b in zip(last, kept, strict=True))


def test_early_stopping_on_a_real_validation_curve():
    """Memorise 12 noisy points with a wide network: the validation loss turns up."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(12, 1))
    y = np.sin(3 * x) + 0.5 * rng.normal(size=x.shape)
    xv = np.linspace(-1, 1, 50).reshape(-1, 1)
    net = bp.Network([bp.Dense(1, 64), bp.Tanh(), bp.Dense(64, 1)], seed=0, dtype="float64")
    rec = Recorder()
    stop = bp.EarlyStopping(patience=5)
    history = bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=0.2, momentum=0.9),
                     epochs=400, batch_size=12, validation_data=(xv, np.sin(3 * xv)),
                     callbacks=[stop, rec], verbose=False)
    best = int(np.argmin(history.val_loss)) + 1
    assert history.stop_training and len(history) == best + 5 < 400
    assert history.restored_epoch == best == stop.best_epoch
    assert_params_equal(net, rec.end_weights[best])
    assert bp.evaluate(net, xv, np.sin(3 * xv), "quadratic")["loss"] == min(history.val_loss)


@pytest.mark.parametrize(
    ("monitor", "kwargs"),
    [("val_loss", {}), ("val_accuracy", {}), ("accuracy", {}),
     ("val_accuracy", {"validation_split": 0.25})],  # regression: accuracy is never measured
)
def test_early_stopping_on_a_metric_not_measured_raises(monitor, kwargs):
    x, y = regression_data(n=8)
    with pytest.raises(ConfigError, match=f"EarlyStopping monitors '{monitor}'"):
        bp.fit(mlp(), x, y, loss="quadratic", epochs=3, batch_size=4,
               callbacks=[bp.EarlyStopping(monitor=monitor)], verbose=False, **kwargs)


def test_early_stopping_refuses_unknown_monitors_and_bad_patience():
    with pytest.raises(ConfigError, match="monitor must be one of"):
        bp.EarlyStopping(monitor="val_acc")
    with pytest.raises(InvalidValueError, match="patience"):
        bp.EarlyStopping(patience=0)


# ----------------------------------------------------------------------- dropout
def test_dropout_is_inverted_and_only_active_in_training():
    rate = 0.25
    net = bp.Network([bp.Dense(50, 400), bp.Dropout(rate)], seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(100, 50))
    clean = net.predict(x)
    a = net.forward(x, train=True)
    dropped = a == 0
    assert abs(dropped.mean() - rate) < 0.01  # 40 000 units: ±0.01 is > 4 standard deviations
    assert_allclose(a[~dropped], clean[~dropped] / (1 - rate), rtol=1e-15)  # 1/(1 − p) scaling
    assert not np.array_equal(net.forward(x, train=True), a)  # a fresh mask each call
    assert_array_equal(net.forward(x), clean)  # train=False: the identity
    assert_array_equal(net.predict(x), clean)


def test_fit_trains_with_dropout_and_evaluates_without():
    x, y = regression_data(n=16, d=3, k=2)
    # one full-batch step, repeated by hand with forward(train=True) on a twin network: the
    # twin's dropout stream (drawn from the same network seed) gives the same masks
    net, twin = mlp(k=2, h=32, seed=5, dropout=0.5), mlp(k=2, h=32, seed=5, dropout=0.5)
    bp.fit(net, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.3), epochs=1, batch_size=16,
           shuffle=False, verbose=False)
    a = twin.forward(x, train=True)
    twin.backward(bp.Quadratic().grad(a, y))
    for p, g in zip(twin.parameters(), twin.gradients(), strict=True):
        p -= 0.3 * g
    assert_params_equal(net, snapshot(twin), atol=1e-15)
    # without dropout the same step gives other weights: dropout was active in fit
    plain = mlp(k=2, h=32, seed=5, dropout=0.0)
    bp.fit(plain, x, y, loss=bp.Quadratic(), optimizer=bp.SGD(lr=0.3), epochs=1, batch_size=16,
           shuffle=False, verbose=False)
    assert not np.array_equal(plain.layers[0].params["W"], net.layers[0].params["W"])
    # evaluate and predict: deterministic, and equal to the network without the Dropout layer
    bare = bp.Network([bp.Dense(3, 32), bp.Tanh(), bp.Dense(32, 2)], seed=0, dtype="float64")
    for p, q in zip(bare.parameters(), net.parameters(), strict=True):
        p[...] = q
    assert_array_equal(net.predict(x), bare.predict(x))
    first, second = bp.evaluate(net, x, y, "quadratic"), bp.evaluate(net, x, y, "quadratic")
    assert first == second == bp.evaluate(bare, x, y, "quadratic")
    assert not np.array_equal(net.forward(x, train=True), net.predict(x))


def test_max_norm_holds_after_fit():
    x, labels = blobs(n=60)
    c = 0.5

    def train(max_norm):
        net = bp.Network([bp.Dense(4, 16), bp.ReLU(), bp.Dropout(0.2), bp.Dense(16, 3)],
                         seed=0, dtype="float64")
        bp.fit(net, x, labels, loss="cross_entropy",
               optimizer=bp.SGD(lr=1.0, momentum=0.9, max_norm=max_norm), epochs=5,
               batch_size=6, verbose=False)
        return [np.linalg.norm(layer.params["W"], axis=1) for layer in net.layers
                if isinstance(layer, bp.Dense)]

    unconstrained = train(None)
    assert max(norms.max() for norms in unconstrained) > 2 * c  # the constraint has work to do
    for norms in train(c):
        assert np.all(norms <= c + 1e-6)


# -------------------------------------------------------------------- divergence
DIVERGED = re.compile(r"at epoch (\d+), batch (\d+)(?: \(the last of the epoch\))?; "
                      r"the last finite loss was (\S+);")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [4, 16])
def test_divergence_names_epoch_batch_and_last_loss_and_restores_the_epoch_start(
        dtype, batch_size):
    x, y = regression_data(n=16, d=3)
    x, y = x.astype(dtype), y.astype(dtype)
    net = bp.Network([bp.Dense(3, 8), bp.ReLU(), bp.Dense(8, 1)], seed=0, dtype=dtype)
    rec = Recorder()
    with pytest.raises(DivergenceError) as info:
        bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=1e6), epochs=100,
               batch_size=batch_size, callbacks=[rec], verbose=False)
    message = str(info.value)
    match = DIVERGED.search(message)
    assert match, message
    epoch, batch, last = int(match[1]), int(match[2]), float(match[3])
    assert re.search(r"the loss became (nan|inf)", message)
    batches_per_epoch = 16 // batch_size
    steps_done = len(rec.batches)
    assert steps_done == (epoch - 1) * batches_per_epoch + batch - 1
    assert last == rec.batches[-1][1]  # the loss of the last step taken
    assert math.isfinite(last)
    assert epoch == max(rec.begin_weights)
    assert all(np.all(np.isfinite(p)) for p in net.parameters())
    assert_params_equal(net, rec.begin_weights[epoch])  # bitwise the start of that epoch
    assert f"from the start of epoch {epoch}" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("epochs", [1, 2])
def test_divergence_in_the_last_step_of_an_epoch_is_caught(epochs):
    """A finite loss can still overflow the weights in one step (here lr·∇C ≈ 1e310):
    the epoch must not end, nor the next one start, with infinite weights."""
    x, y = np.ones((4, 2)), np.full((4, 1), 1e10)
    net = bp.Network([bp.Dense(2, 1), bp.Identity()], seed=0, dtype="float64")
    start = snapshot(net)
    with pytest.raises(DivergenceError, match=r"epoch 1, batch 1 .*last finite loss was 5\.0"):
        bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=1e300), epochs=epochs,
               batch_size=4, verbose=False)
    assert_params_equal(net, start)


# --------------------------------------------------------------------- bad input
N = 12
X, LABELS = blobs(n=N)
X_VAL, L_VAL = blobs(n=5, seed=1)
NAN_X = X.copy()
NAN_X[3, 1] = np.nan

BAD_INPUT = [
    ("batch_size_0", {"batch_size": 0}, InvalidValueError,
     r"batch_size must be a positive integer; got 0"),
    ("batch_size_over_n", {"batch_size": N + 1}, InvalidValueError,
     rf"batch_size must be at most .*\({N}\); got {N + 1}"),
    ("batch_size_float", {"batch_size": 4.0}, DTypeError, r"batch_size must be a positive integer"),
    ("epochs_0", {"epochs": 0}, InvalidValueError, r"epochs must be a positive integer; got 0"),
    ("y_too_short", {"y": LABELS[:-1]}, ShapeError,
     rf"y must have one target per sample of x \({N}\)"),
    ("nan_in_x", {"x": NAN_X}, InvalidValueError, r"x must be finite; it holds 1 NaN"),
    ("x_too_narrow", {"x": X[:, :3]}, ShapeError, r"x must have 4 columns"),
    ("label_too_big", {"y": np.where(LABELS == 0, 3, LABELS)}, InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("label_negative", {"y": LABELS - 1}, InvalidValueError, r"labels in y must lie in \[0, 3\)"),
    ("val_x_too_narrow", {"validation_data": (X_VAL[:, :2], L_VAL)}, ShapeError,
     r"validation_data\[0\] must have 4 columns"),
    ("val_y_too_short", {"validation_data": (X_VAL, L_VAL[:3])}, ShapeError,
     r"validation_data\[1\] must have one target"),
    ("val_label_too_big", {"validation_data": (X_VAL, L_VAL + 3)}, InvalidValueError,
     r"validation_data\[1\]: labels in y must lie in \[0, 3\)"),
    ("val_not_a_pair", {"validation_data": (X_VAL,)}, ConfigError,
     r"validation_data must be a pair"),
    ("val_data_and_split", {"validation_data": (X_VAL, L_VAL), "validation_split": 0.2},
     ConfigError, r"validation_data or validation_split, not both"),
    ("split_1", {"validation_split": 1.0}, InvalidValueError,
     r"validation_split must lie in \[0, 1\)"),
    ("split_negative", {"validation_split": -0.1}, InvalidValueError,
     r"validation_split must lie in \[0, 1\)"),
    ("batch_over_split_n", {"validation_split": 0.5, "batch_size": 7}, InvalidValueError,
     r"batch_size must be at most .*\(6\)"),
    ("optimizer_name", {"optimizer": "sgd"}, ConfigError,
     r"optimizer must be a backprop Optimizer"),
    ("loss_name", {"loss": "nope"}, ConfigError, r"loss must be one of"),
]


@pytest.mark.parametrize(("change", "error", "pattern"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT])
def test_bad_input_to_fit_raises_the_specific_error_naming_the_argument(change, error, pattern):
    kwargs = {"x": X, "y": LABELS, "epochs": 1, "batch_size": 4, "loss": "cross_entropy", **change}
    net = bp.Network([bp.Dense(4, 5), bp.Tanh(), bp.Dense(5, 3)], seed=0, dtype="float64")
    start = snapshot(net)
    rec = Recorder()
    with pytest.raises(error, match=pattern):
        bp.fit(net, kwargs.pop("x"), kwargs.pop("y"), callbacks=[rec], verbose=False, **kwargs)
    assert rec.calls == []            # refused before training starts
    assert_params_equal(net, start)   # and the network is untouched


# ---------------------------------------------------------------------- evaluate
def test_evaluate_cross_entropy_matches_a_manual_computation():
    x, labels = blobs(n=30, seed=5)
    net = bp.Network([bp.Dense(4, 6), bp.Tanh(), bp.Dense(6, 3)], seed=1, dtype="float64")
    a = net.predict(x)
    shifted = a - a.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    manual_loss = -log_p[np.arange(30), labels].mean()
    manual_acc = np.mean(a.argmax(axis=1) == labels)
    result = bp.evaluate(net, x, labels, bp.CrossEntropy())
    assert result["loss"] == pytest.approx(manual_loss, rel=1e-12)
    assert result["accuracy"] == manual_acc
    one_hot = np.eye(3)[labels]
    again = bp.evaluate(net, x, one_hot, "cross_entropy")
    assert again["loss"] == pytest.approx(manual_loss, rel=1e-12)
    assert again["accuracy"] == manual_acc
    chunked = bp.evaluate(net, x, labels, "cross_entropy", batch_size=7)
    assert chunked["loss"] == pytest.approx(manual_loss, rel=1e-12)
    assert chunked["accuracy"] == manual_acc


def test_evaluate_quadratic_and_binary_cross_entropy():
    x, y = regression_data(n=10, k=2)
    net = mlp(k=2)
    a = net.predict(x)
    result = bp.evaluate(net, x, y, bp.Quadratic())
    assert result["loss"] == pytest.approx(0.5 * np.sum((a - y) ** 2) / 10, rel=1e-12)
    assert result["accuracy"] is None
    # one logit, 0/1 targets: accuracy is whether the logit's sign matches
    bits = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    net = mlp(k=1, seed=3)
    z = net.predict(x)[:, 0]
    manual = np.mean(np.logaddexp(0.0, z) - bits * z)
    result = bp.evaluate(net, x, bits, bp.BinaryCrossEntropy())
    assert result["loss"] == pytest.approx(manual, rel=1e-12)
    assert result["accuracy"] == np.mean((z > 0) == bits)


def test_evaluate_rejects_bad_input():
    x, labels = blobs(n=10)
    net = bp.Network([bp.Dense(4, 3)], seed=0, dtype="float64")
    with pytest.raises(ShapeError, match=r"y must have one target per sample of x \(10\)"):
        bp.evaluate(net, x, labels[:5], "cross_entropy")
    with pytest.raises(InvalidValueError, match=r"labels in y must lie in \[0, 3\)"):
        bp.evaluate(net, x, labels + 1, "cross_entropy")
