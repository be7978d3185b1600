"""The optional compiled engine (``fit(engine="numba")``, :mod:`backprop.engines.numba`) against the
NumPy path, which stays the reference.

What is checked, with numbers:

* float64 training agrees with ``engine="numpy"`` to rounding (1e-10 relative) on random
  architectures, activations, losses, target kinds, batch sizes (dividing N or not, below and
  above the kernels' blocks of 5 samples and 4 units), weight decay and schedules: the
  parameters, every History list, ``optimizer.t``;
* float32 agrees to 1e-4 relative on an MNIST subset (Nielsen's two textbook networks);
* ``engine="auto"`` picks numba only where it can train the setup and the batch is at most
  ``AUTO_COMPILED_MAX_BATCH``; ``engine="numba"`` refuses everything else with a ConfigError that
  names the reason, before anything is trained;
* divergence, schedules returning bad rates, checkpoint/resume, the progress bar's chunked runs
  and the CLI behave as on the NumPy path;
* under "auto", SGD with momentum, Adam and AdamW keep the NumPy steps with numba's one-pass
  optimizer updates (``History.engine == UPDATE_ENGINE``), agreeing with the NumPy updates to
  rounding and resuming bitwise;
* the same bits in every process: a process that compiles the kernels and one that loads them
  from numba's disk cache end with the same weights' SHA-256;
* ``NumbaEngine.run_epoch`` itself: its sums, its reports, its check of the order; without numba
  ``"auto"`` is the NumPy engine bit for bit, and ``pyproject.toml`` asks for numba exactly where
  it has wheels.

The kernels are compiled once per network depth and dtype (a few seconds each, then loaded from
numba's on-disk cache).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

import backprop as bp  # noqa: E402
from backprop import cli  # noqa: E402
from backprop.engines import numba as compiled  # noqa: E402
from backprop.errors import ConfigError, DivergenceError, InvalidValueError, ShapeError  # noqa: E402
from backprop.optim.schedules import CosineDecay, ExponentialDecay, LinearWarmup, StepDecay  # noqa: E402
from backprop.threads import set_threads, usable_cores  # noqa: E402
from backprop.training import AUTO_COMPILED_MAX_BATCH  # noqa: E402
from random_networks import ACTIVATIONS, build  # noqa: E402

#: History.engine of a NumPy-path run whose optimizer updates ran in numba (engine="auto" with
#: SGD with momentum, Adam or AdamW)
UPDATE_ENGINE = "numpy+numba-update"
#: History.engine of an "auto" run at a batch above AUTO_COMPILED_MAX_BATCH with every core: the
#: split-batch steps where two threads are possible (tests/test_engine_split.py), else NumPy's
SPLIT_OR_NUMPY = "numba-split" if min(usable_cores(), numba.config.NUMBA_NUM_THREADS) >= 2 else "numpy"


# --------------------------------------------------------------------------- helpers
def params_of(net):
    return [p.copy() for p in net.parameters()]


def assert_params_close(actual, desired, rtol):
    """Each array agrees to ``rtol`` relative to its own largest entry (entries near 0 carry
    the absolute rounding of the larger ones they were computed from)."""
    assert len(actual) == len(desired)
    for a, d in zip(actual, desired, strict=True):
        assert a.dtype == d.dtype and a.shape == d.shape
        assert np.all(np.isfinite(a))
        scale = max(float(np.max(np.abs(d))), 1e-300)
        assert_allclose(a, d, rtol=rtol, atol=rtol * scale)


def assert_params_equal(actual, desired):
    for a, d in zip(actual, desired, strict=True):
        assert_array_equal(a, d)


def assert_histories_agree(h_numba, h_numpy, rtol=1e-10):
    assert h_numba.engine == "numba"
    assert h_numpy.engine == "numpy"
    assert h_numba.epoch == h_numpy.epoch
    assert h_numba.lr == h_numpy.lr  # both the schedule's rate at the epoch's first step
    assert_allclose(h_numba.loss, h_numpy.loss, rtol=rtol, atol=1e-13)
    assert h_numba.accuracy == h_numpy.accuracy  # counts of correct predictions: exact
    assert_allclose(h_numba.val_loss, h_numpy.val_loss, rtol=rtol, atol=1e-13)
    assert h_numba.val_accuracy == h_numpy.val_accuracy


def train_both(make_net, x, y, *, optimizer, **kwargs):
    """Train two identical networks, one per engine; returns ``{engine: (net, history, opt)}``."""
    out = {}
    for engine in ("numpy", "numba"):
        net, opt = make_net(), optimizer()
        history = bp.fit(net, x, y, optimizer=opt, verbose=False, engine=engine, **kwargs)
        out[engine] = (net, history, opt)
    return out



SCHEDULES = {
    "none": None,
    "step": StepDecay(3, 0.5),
    "exponential": ExponentialDecay(0.9),
    "cosine": CosineDecay(10, min_lr=0.01),
    "warmup_cosine": LinearWarmup(3, after=CosineDecay(8)),
}


def targets(kind, n, k, rng):
    """Targets for the loss-and-target kind ``kind``: (loss name, y)."""
    if kind == "quadratic_real":
        return "quadratic", rng.normal(size=(n, k))
    if kind == "quadratic_labels":  # one-hot rows, accuracy measured
        return "quadratic", rng.integers(0, k, n)
    if kind == "ce_labels":
        return "cross_entropy", rng.integers(0, k, n)
    if kind == "ce_soft":  # probability rows: no accuracy
        p = rng.random((n, k)) + 0.1
        return "cross_entropy", p / p.sum(axis=1, keepdims=True)
    if kind == "bce_single":  # one logit, 0/1 labels
        return "binary_cross_entropy", rng.integers(0, 2, n)
    if kind == "bce_real":
        return "binary_cross_entropy", rng.random((n, k))
    if kind == "bce_labels":  # class indices, one-hot
        return "binary_cross_entropy", rng.integers(0, k, n)
    raise AssertionError(kind)


# output widths each target kind accepts
KIND_WIDTHS = {"quadratic_real": (1, 12), "quadratic_labels": (2, 12), "ce_labels": (2, 12),
               "ce_soft": (2, 12), "bce_single": (1, 1), "bce_real": (1, 12), "bce_labels": (2, 12)}


@st.composite
def setups(draw):
    depth = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(sorted(KIND_WIDTHS)))
    lo, hi = KIND_WIDTHS[kind]
    widths = [draw(st.integers(1, 12)) for _ in range(depth)] + [draw(st.integers(lo, hi))]
    activations = [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in range(depth)]
    slopes = [draw(st.floats(-0.5, 1.0, allow_nan=False)) for _ in range(depth)]
    n = draw(st.integers(4, 30))
    return {
        "widths": widths, "activations": activations, "slopes": slopes, "kind": kind, "n": n,
        "batch_size": draw(st.integers(1, n)),
        "lr": draw(st.floats(0.01, 0.3)),
        "weight_decay": draw(st.sampled_from([0.0, 0.0, 1e-3, 0.05])),
        "schedule": draw(st.sampled_from(sorted(SCHEDULES))),
        "shuffle": draw(st.booleans()),
        "validation": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
        "sparse_input": draw(st.booleans()),
    }


def check_agreement(s):
    """Train the setup ``s`` on both engines; with ``s["sparse_input"]`` about 70% of the inputs
    are 0 and the compiled engine is made to use its sparse-input first layer."""
    rng = np.random.default_rng(s["seed"])
    n, k = s["n"], s["widths"][-1]
    loss, y = targets(s["kind"], n, k, rng)
    x = rng.normal(size=(n, s["widths"][0]))
    sparse = s.get("sparse_input", False)
    if sparse:
        x *= rng.random(x.shape) < 0.3
    forced = (lambda net, data: compiled.to_sparse_rows(data)) if sparse else (lambda net, data: None)
    with mock.patch.object(compiled, "sparse_rows", forced):
        _check_agreement(s, rng, n, k, loss, y, x)


def _check_agreement(s, rng, n, k, loss, y, x):
    extra = {}
    if s["validation"]:
        extra["validation_data"] = (rng.normal(size=(5, s["widths"][0])), targets(s["kind"], 5, k, rng)[1])
    runs = train_both(lambda: build(s["widths"], s["activations"], s["slopes"], s["seed"]), x, y,
                      optimizer=lambda: bp.SGD(lr=s["lr"], weight_decay=s["weight_decay"],
                                               schedule=SCHEDULES[s["schedule"]]),
                      loss=loss, epochs=2, batch_size=s["batch_size"], shuffle=s["shuffle"],
                      seed=s["seed"], **extra)
    (net_np, h_np, opt_np), (net_nb, h_nb, opt_nb) = runs["numpy"], runs["numba"]
    assert opt_nb.t == opt_np.t == 2 * math.ceil(n / s["batch_size"])
    assert_params_close(params_of(net_nb), params_of(net_np), rtol=1e-10)
    assert_histories_agree(h_nb, h_np)
    if y.ndim == 1:
        assert all(a is not None for a in h_nb.accuracy)


# ----------------------------------------------------------- 1. float64 agreement
@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(setups())
def test_float64_random_setups_agree_with_numpy(s):
    check_agreement(s)


@pytest.mark.parametrize("batch_size", [1, 2, 4, 5, 6, 7, 9, 10, 11, 13, 16, 23, 25, 30])
@pytest.mark.parametrize("kind", ["quadratic_real", "ce_labels", "bce_single", "bce_real"])
def test_float64_every_batch_size_against_the_blocking(kind, batch_size):
    """N = 30: batch sizes that divide it and that leave a short last batch, below, at and above
    the kernels' blocks of 10 and 5 samples (16 = 10 + 5 + 1, 25 = 10 + 10 + 5); layer widths 5
    (one block of 4 units and one left over), 4 (exactly one) and 3 or 1 (none) for the
    input-gradient loop's blocks; dense and sparse input."""
    widest = KIND_WIDTHS[kind][1]
    for sparse in (False, True):
        check_agreement({"widths": [6, 9, 5, 4, min(widest, 3)], "activations": ["tanh", "relu", "leaky_relu", "none"],
                         "slopes": [0.0, 0.0, 0.2, 0.0], "kind": kind, "n": 30, "batch_size": batch_size,
                         "lr": 0.2, "weight_decay": 0.01, "schedule": "warmup_cosine", "shuffle": True,
                         "validation": True, "seed": batch_size, "sparse_input": sparse})


@pytest.mark.parametrize("density, width, expected", [(0.19, 100, True), (0.19, 64, True), (0.19, 63, False),
                                                      (0.30, 100, True), (0.3002, 100, False),
                                                      (0.31, 100, False), (0.0, 100, True)])
def test_sparse_input_is_used_for_mostly_zero_inputs_and_a_wide_first_layer(density, width, expected):
    rng = np.random.default_rng(0)
    x = np.zeros((100, 50))
    spots = rng.permutation(x.size)[: int(round(density * x.size))]
    x.flat[spots] = rng.uniform(-2.0, 2.0, size=len(spots))
    net = bp.Network([bp.Dense(50, width), bp.Sigmoid(), bp.Dense(width, 3)], seed=0, dtype="float64")
    rows = compiled.sparse_rows(net, x)
    assert (rows is not None) is expected
    if rows is not None:  # the right entries, row by row
        for r in range(len(x)):
            lo, hi = rows.ptr[r], rows.ptr[r + 1]
            assert np.array_equal(rows.idx[lo:hi], np.flatnonzero(x[r]))
        assert rows.idx.dtype == np.uint16


def test_sparse_rows_of_wide_inputs_hold_int32_columns():
    x = np.zeros((3, 70_000), dtype=np.float32)
    x[0, [0, 65_535, 65_536, 69_999]] = 1.0
    x[2, 70_000 - 2] = -0.0  # negative zero is zero
    x[2, 123] = np.float32(1e-40)  # a subnormal is not
    rows = compiled.to_sparse_rows(x)
    assert rows.idx.dtype == np.int32
    assert rows.ptr.tolist() == [0, 4, 4, 5]
    assert rows.idx[:5].tolist() == [0, 65_535, 65_536, 69_999, 123]


def test_the_engine_decides_sparse_input_from_the_data_it_is_given():
    """The engine lists x's non-zero entries itself (so they always describe the data it runs
    on): the sparse-input first layer for mostly-zero x and a wide first layer, else dense."""
    x = np.zeros((20, 8))
    x[:, 0] = 1.0
    t = np.zeros((20, 2))
    for width, sparse in ((64, True), (63, False)):
        net = bp.Network([bp.Dense(8, width), bp.Sigmoid(), bp.Dense(width, 2)], seed=0, dtype="float64")
        engine = compiled.NumbaEngine(net, bp.Quadratic(), bp.SGD(lr=0.1), 5, x, t, None)
        assert engine.name == "numba" and engine.sparse is sparse
    with pytest.raises(ConfigError, match=r"the compiled engine cannot train this: .*Adam has no compiled form"):
        compiled.NumbaEngine(net, bp.Quadratic(), bp.Adam(), 5, x, t, None)


@pytest.mark.parametrize("order, message", [
    (np.arange(19), r"an integer array of shape \(20,\); got int64 of shape \(19,\)"),
    (np.arange(20.0), r"got float64 of shape \(20,\)"),
    (list(range(20)), r"got list of shape None"),
    (np.arange(1, 21), r"indices in \[0, 20\); got values from 1 to 20"),
    (np.arange(20) - 1, r"indices in \[0, 20\); got values from -1 to 18"),
])
def test_run_epoch_refuses_an_order_that_does_not_index_the_data(order, message):
    """The kernels index the data unchecked, so the engine checks the order and trains nothing
    on a bad one."""
    x = np.random.default_rng(0).normal(size=(20, 3))
    net = bp.Network([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 2)], seed=0, dtype="float64")
    opt = bp.SGD(lr=0.1)
    engine = compiled.NumbaEngine(net, bp.Quadratic(), opt, 5, x, np.zeros((20, 2)), None)
    start = params_of(net)
    with pytest.raises(ShapeError, match=r"order must .*" + message):
        engine.run_epoch(order, None)
    assert opt.t == 0
    assert_params_equal(params_of(net), start)


def test_run_epoch_returns_the_sums_and_reports_between_runs_of_batches():
    """EpochSums: Σ batch loss × rows, the rows, the correct predictions, the last finite batch
    loss; with a report, one compiled call and one report per REPORT_ROWS rows."""
    rng = np.random.default_rng(0)
    n, batch = 2 * compiled.REPORT_ROWS + 5, 4   # 4097 batches of 4, then one of 1
    x, y = rng.normal(size=(n, 3)), rng.integers(0, 2, n)
    loss = bp.CrossEntropy()

    def engine_for(rows):
        net = bp.Network([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 2)], seed=0, dtype="float64")
        t = loss.training_targets(loss.prepare(y[:rows], (rows, 2), net.dtype), 2, net.dtype)
        return net, compiled.NumbaEngine(net, loss, bp.SGD(lr=0.1), batch, x[:rows], t, y[:rows])

    runs, reports = {}, []
    for report in (None, lambda *args: reports.append(args)):
        net, engine = engine_for(n)
        runs[report is None] = (params_of(net), engine.run_epoch(np.arange(n), report))
    (quiet, q_sums), (loud, l_sums) = runs[True], runs[False]
    assert_params_equal(loud, quiet)  # the runs change no step
    assert [r[0] for r in reports] == [compiled.REPORT_ROWS, 2 * compiled.REPORT_ROWS, n]
    assert reports[-1][1:] == (l_sums.loss, l_sums.correct)
    assert q_sums.weight == l_sums.weight == n
    assert q_sums.correct == l_sums.correct and 0 < q_sums.correct < n
    assert_allclose(l_sums.loss, q_sums.loss, rtol=1e-13)
    # the last finite loss is that of the last batch (the last row alone), from the weights
    # that the batches before it left: those of an epoch on all rows but the last
    before, engine = engine_for(n - 1)
    engine.run_epoch(np.arange(n - 1), None)
    expected = loss.value(before.forward(x[-1:]), y[-1:])
    assert q_sums.last_finite == l_sums.last_finite
    assert_allclose(q_sums.last_finite, expected, rtol=1e-12)


def test_sigmoid_and_identity_after_dense_and_no_activation_at_all():
    for activations in (["sigmoid", "identity"], ["none", "none"], ["identity", "sigmoid"]):
        check_agreement({"widths": [3, 7, 2], "activations": activations, "slopes": [0.0, 0.0],
                         "kind": "quadratic_labels", "n": 17, "batch_size": 6, "lr": 0.5,
                         "weight_decay": 0.0, "schedule": "none", "shuffle": True, "validation": False,
                         "seed": 1})


# --------------------------------------------------- 2. float32 on an MNIST subset
@pytest.fixture(scope="module")
def mnist_2000():
    """The first 2000 training and test samples of the embedded MNIST, float32."""
    (x, y), (xt, yt) = bp.datasets.load_mnist(dtype="float32")
    return (x[:2000].copy(), y[:2000].copy()), (xt[:2000].copy(), yt[:2000].copy())


@pytest.mark.parametrize("hidden, loss, lr", [(30, "quadratic", 3.0), (100, "cross_entropy", 0.5)])
def test_float32_mnist_subset_agrees_with_numpy(mnist_2000, hidden, loss, lr):
    (x, y), (xt, yt) = mnist_2000

    def make_net():
        layers = [bp.Dense(784, hidden), bp.Sigmoid(), bp.Dense(hidden, 10)]
        if loss == "quadratic":
            layers.append(bp.Sigmoid())
        return bp.Network(layers, seed=0, dtype="float32")

    runs = train_both(make_net, x, y, optimizer=lambda: bp.SGD(lr=lr), loss=loss, epochs=1, batch_size=10)
    (net_np, h_np, opt_np), (net_nb, h_nb, opt_nb) = runs["numpy"], runs["numba"]
    assert opt_nb.t == opt_np.t == 200
    assert_params_close(params_of(net_nb), params_of(net_np), rtol=1e-4)
    assert h_nb.engine == "numba" and h_np.engine == "numpy"
    assert_allclose(h_nb.loss, h_np.loss, rtol=1e-5)
    assert abs(h_nb.accuracy[0] - h_np.accuracy[0]) <= 0.005
    test_np, test_nb = bp.evaluate(net_np, xt, yt, loss), bp.evaluate(net_nb, xt, yt, loss)
    assert test_np["accuracy"] > 0.7  # it learned something: the comparison means something
    assert abs(test_nb["accuracy"] - test_np["accuracy"]) <= 0.005
    assert_allclose(test_nb["loss"], test_np["loss"], rtol=1e-4)


# ------------------------------------------------------------- 3. engine selection
X_SEL = np.random.default_rng(0).normal(size=(80, 4))
Y_SEL = np.random.default_rng(1).integers(0, 3, 80)


def _plain_net(*extra):
    return bp.Network([bp.Dense(4, 6), bp.Tanh(), *extra, bp.Dense(6, 3)], seed=0, dtype="float64")


class BatchWatcher(bp.Callback):
    def __init__(self):
        self.batches = 0

    def on_batch_end(self, batch, logs, net):
        self.batches += 1


class EpochWatcher(bp.Callback):  # overrides epoch hooks only: the compiled engine may run
    def __init__(self):
        self.begin_weights = {}

    def on_epoch_begin(self, epoch, net, history):
        self.begin_weights[epoch] = params_of(net)


# name: (network factory, fit keyword arguments, the reason engine="numba" must name)
UNSUPPORTED = {
    "adam": (_plain_net, {"optimizer": lambda: bp.Adam(lr=1e-3)}, r"optimizer Adam has no compiled form"),
    "momentum": (_plain_net, {"optimizer": lambda: bp.SGD(lr=0.1, momentum=0.9)}, r"momentum"),
    "nesterov": (_plain_net, {"optimizer": lambda: bp.SGD(lr=0.1, momentum=0.5, nesterov=True)}, r"momentum"),
    "clip_norm": (_plain_net, {"optimizer": lambda: bp.SGD(lr=0.1, clip_norm=1.0)}, r"clip_norm"),
    "max_norm": (_plain_net, {"optimizer": lambda: bp.SGD(lr=0.1, max_norm=2.0)}, r"max_norm"),
    "dropout": (lambda: _plain_net(bp.Dropout(0.2)), {}, r"layer 2 \(Dropout\) has no compiled form"),
    "elu": (lambda: bp.Network([bp.Dense(4, 6), bp.ELU(), bp.Dense(6, 3)], seed=0, dtype="float64"), {},
            r"layer 1 \(ELU\) has no compiled form"),
    "two_activations": (lambda: _plain_net(bp.Sigmoid()), {},
                        r"layer 2 \(Sigmoid\) must directly follow a Dense layer"),
    "identity_then_activation": (
        lambda: bp.Network([bp.Dense(4, 6), bp.Identity(), bp.ReLU(), bp.Dense(6, 3)], seed=0, dtype="float64"),
        {}, r"layer 2 \(ReLU\) must directly follow a Dense layer"),
    "activation_first": (
        lambda: bp.Network([bp.Tanh(), bp.Dense(4, 3)], seed=0, dtype="float64"),
        {}, r"layer 0 \(Tanh\) must directly follow a Dense layer"),
    "huber": (_plain_net, {"loss": "huber", "y": np.random.default_rng(2).normal(size=(80, 3))},
              r"the loss Huber has no compiled form"),
    "on_batch_end": (_plain_net, {"callbacks": lambda: [BatchWatcher()]}, r"a callback has on_batch_end"),
    "record_grad_norms": (_plain_net, {"record_grad_norms": True}, r"record_grad_norms"),
}


def _fit_case(case, engine, batch_size=8):
    make_net, kwargs, _ = UNSUPPORTED[case]
    kwargs = dict(kwargs)
    y = kwargs.pop("y", Y_SEL)
    loss = kwargs.pop("loss", "cross_entropy")
    optimizer = kwargs.pop("optimizer", lambda: bp.SGD(lr=0.1))()
    if "callbacks" in kwargs:
        kwargs["callbacks"] = kwargs["callbacks"]()
    net = make_net()
    start = params_of(net)
    try:
        history = bp.fit(net, X_SEL, y, loss=loss, optimizer=optimizer, epochs=1, batch_size=batch_size,
                         verbose=False, engine=engine, **kwargs)
    except ConfigError:
        assert_params_equal(params_of(net), start)  # a refused fit trains nothing
        assert optimizer.t == 0
        raise
    return net, history


@pytest.mark.parametrize("batch_size", [1, 10, AUTO_COMPILED_MAX_BATCH])
def test_auto_picks_numba_for_plain_sgd_at_small_batches(batch_size):
    runs = {}
    for engine in ("auto", "numba", "numpy"):
        net = _plain_net()
        history = bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1, weight_decay=1e-3),
                         epochs=1, batch_size=batch_size, verbose=False, engine=engine,
                         callbacks=[EpochWatcher()])
        runs[engine] = (params_of(net), history)
    assert runs["auto"][1].engine == "numba"
    assert_params_equal(runs["auto"][0], runs["numba"][0])  # the same engine: bitwise
    assert_params_close(runs["auto"][0], runs["numpy"][0], rtol=1e-10)


@pytest.mark.parametrize("batch_size", [AUTO_COMPILED_MAX_BATCH + 1, 64])
def test_auto_picks_numpy_or_the_split_steps_for_large_batches(batch_size):
    """Beyond AUTO_COMPILED_MAX_BATCH "auto" leaves the compiled engine: with one thread for the
    NumPy steps, with two for the split-batch steps (tests/test_engine_split.py)."""
    assert AUTO_COMPILED_MAX_BATCH == 32
    a, b, s = _plain_net(), _plain_net(), _plain_net()
    set_threads(1)
    try:
        h_auto = bp.fit(a, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1,
                        batch_size=batch_size, verbose=False, engine="auto")
        set_threads(2)
        h_split = bp.fit(s, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1,
                         batch_size=batch_size, verbose=False, engine="auto")
    finally:
        set_threads(None)
    h_numpy = bp.fit(b, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1,
                     batch_size=batch_size, verbose=False, engine="numpy")
    assert h_auto.engine == h_numpy.engine == "numpy"
    assert_params_equal(params_of(a), params_of(b))  # the NumPy path itself: bitwise
    assert h_split.engine == SPLIT_OR_NUMPY
    assert_params_close(params_of(s), params_of(b), rtol=1e-10)
    # numba can still be asked for explicitly at any batch size
    c = _plain_net()
    h_numba = bp.fit(c, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1,
                     batch_size=batch_size, verbose=False, engine="numba")
    assert h_numba.engine == "numba"
    assert_params_close(params_of(c), params_of(b), rtol=1e-10)
    assert_allclose(h_numba.loss, h_numpy.loss, rtol=1e-12)


#: SGD with momentum and Adam run on the NumPy path under "auto", with numba's one-pass updates
UPDATE_KERNEL_CASES = ("adam", "momentum", "nesterov")


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_setups_run_on_numpy_under_auto_and_are_refused_by_numba(case):
    net_auto, h_auto = _fit_case(case, "auto")
    net_numpy, h_numpy = _fit_case(case, "numpy")
    assert h_numpy.engine == "numpy"
    if case in UPDATE_KERNEL_CASES:
        assert h_auto.engine == UPDATE_ENGINE
        assert_params_close(params_of(net_auto), params_of(net_numpy), rtol=1e-10)
        assert_allclose(h_auto.loss, h_numpy.loss, rtol=1e-12)
    else:
        assert h_auto.engine == "numpy"
        assert_params_equal(params_of(net_auto), params_of(net_numpy))  # the same path: bitwise
        assert h_auto.loss == h_numpy.loss
    with pytest.raises(ConfigError, match=r"engine='numba' cannot train this: .*" + UNSUPPORTED[case][2]):
        _fit_case(case, "numba")


def test_unsupported_reason_is_none_exactly_for_the_supported_setups():
    sgd = bp.SGD(lr=0.1, weight_decay=0.1, schedule=StepDecay(2))
    for act in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "none"):
        net = build([3, 4, 2], [act, act], [0.3, 0.3], 0)
        for loss in (bp.losses.Quadratic(), bp.losses.CrossEntropy(), bp.losses.BinaryCrossEntropy()):
            assert compiled.unsupported_reason(net, loss, sgd) is None
    assert "has no compiled form" in compiled.unsupported_reason(_plain_net(), bp.losses.Huber(), sgd)


def test_without_numba_auto_falls_back_and_numba_says_to_install_it(monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda: False)
    net = _plain_net()
    h = bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1, batch_size=8,
               verbose=False, engine="auto")
    assert h.engine == "numpy"
    with pytest.raises(ConfigError, match=r"numba is not installed \(pip install 'backprop\[fast\]'\)"):
        bp.fit(_plain_net(), X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1), epochs=1,
               batch_size=8, verbose=False, engine="numba")


@pytest.mark.parametrize("optimizer", [lambda: bp.SGD(lr=0.1), lambda: bp.Adam(lr=1e-2)], ids=["sgd", "adam"])
def test_without_numba_auto_is_the_numpy_engine_bit_for_bit(monkeypatch, optimizer):
    """Where numba is absent (a platform without its wheels), engine="auto" is the NumPy engine,
    compiled steps and fused updates alike: the same history and the same bits."""
    monkeypatch.setattr(compiled, "available", lambda: False)
    runs = {}
    for engine in ("auto", "numpy"):
        net = _plain_net()
        h = bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=optimizer(), epochs=2, batch_size=8,
                   verbose=False, engine=engine)
        runs[engine] = (params_of(net), h)
    assert runs["auto"][1].engine == runs["numpy"][1].engine == "numpy"
    assert runs["auto"][1].loss == runs["numpy"][1].loss
    assert_params_equal(runs["auto"][0], runs["numpy"][0])


#: where numba 0.68.1 publishes wheels (its files on PyPI): (sys_platform, platform_machine) ->
#: the CPython minor versions
NUMBA_WHEELS = {("linux", "x86_64"): range(10, 16), ("linux", "aarch64"): range(10, 16),
                ("darwin", "arm64"): range(10, 16), ("win32", "AMD64"): range(10, 16),
                ("win32", "ARM64"): range(12, 15)}


def _marker_env(sys_platform, machine, minor, implementation="CPython"):
    return {"sys_platform": sys_platform, "platform_machine": machine, "python_version": f"3.{minor}",
            "python_full_version": f"3.{minor}.0", "platform_python_implementation": implementation,
            "implementation_name": implementation.lower(), "os_name": "nt" if sys_platform == "win32" else "posix",
            "platform_system": "", "platform_release": "", "platform_version": "", "extra": ""}


def test_numba_is_a_dependency_exactly_where_it_has_wheels():
    """``pip install .`` brings numba where a wheel exists and asks for nothing elsewhere (no
    attempt to build it from source); ``.[fast]`` asks for it anywhere."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    (numba_req,) = [Requirement(r) for r in project["dependencies"] if r.startswith("numba")]
    assert numba_req.marker is not None
    platforms = [*NUMBA_WHEELS, ("darwin", "x86_64"), ("linux", "i686"), ("linux", "ppc64le"),
                 ("linux", "s390x"), ("win32", "x86"), ("freebsd14", "amd64")]
    for sys_platform, machine in platforms:
        for minor in range(10, 18):
            wheel = minor in NUMBA_WHEELS.get((sys_platform, machine), ())
            assert numba_req.marker.evaluate(_marker_env(sys_platform, machine, minor)) is wheel, \
                (sys_platform, machine, minor)
    assert not numba_req.marker.evaluate(_marker_env("linux", "x86_64", 11, "PyPy"))
    assert [Requirement(r).name for r in project["optional-dependencies"]["fast"]] == ["numba", "scipy"]
    assert all(Requirement(r).marker is None for r in project["optional-dependencies"]["fast"])
    # SciPy (the split-batch engine's BLAS calls) comes with numba, on the same platforms
    (scipy_req,) = [Requirement(r) for r in project["dependencies"] if r.startswith("scipy")]
    assert str(scipy_req.marker) == str(numba_req.marker)


def test_the_kernels_name_every_code_the_engine_uses():
    """The engine's activations and losses map one to one onto the kernels' enums."""
    from backprop.engines.numba_kernels import Activation, LossKind

    assert sorted(Activation[name] for name in compiled._ACTIVATIONS.values()) == list(Activation)
    assert sorted(LossKind[name] for name in compiled._LOSSES.values()) == list(LossKind)


@pytest.mark.parametrize("engine", ["torch", "NUMBA", "", None, 1])
def test_unknown_engine_is_a_config_error_naming_engine(engine):
    net = _plain_net()
    start = params_of(net)
    with pytest.raises(ConfigError, match=r"engine must be one of auto, numpy, numba, numba-split; got"):
        bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", epochs=1, batch_size=8, verbose=False, engine=engine)
    assert_params_equal(params_of(net), start)


# ------------------ momentum SGD and Adam under "auto": NumPy steps, numba's one-pass updates
OPTIMIZERS_WITH_UPDATE_KERNELS = {
    "momentum": lambda: bp.SGD(lr=0.05, momentum=0.9, weight_decay=0.01, schedule=StepDecay(5, 0.5)),
    "nesterov": lambda: bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: bp.Adam(lr=0.01, weight_decay=0.01),
    "adamw": lambda: bp.AdamW(lr=0.01, weight_decay=0.1, schedule=ExponentialDecay(0.95)),
}


def _state_arrays(opt):
    return [a for key, arrays in sorted(opt.state_dict().items()) if key not in ("optimizer", "t")
            for a in arrays]


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS_WITH_UPDATE_KERNELS))
def test_auto_update_kernels_agree_with_numpy(dtype, rtol, name):
    x, y = X_SEL.astype(dtype), Y_SEL
    runs = {}
    for engine in ("auto", "numpy"):
        net, opt = bp.Network([bp.Dense(4, 6), bp.ReLU(), bp.Dense(6, 3)], seed=0, dtype=dtype), \
            OPTIMIZERS_WITH_UPDATE_KERNELS[name]()
        h = bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=8, verbose=False,
                   engine=engine)
        assert opt.fused is None  # fit chooses per step and sets nothing on the optimizer
        runs[engine] = (params_of(net), h, opt)
    (p_auto, h_auto, opt_auto), (p_np, h_np, opt_np) = runs["auto"], runs["numpy"]
    assert (h_auto.engine, h_np.engine) == (UPDATE_ENGINE, "numpy")
    assert opt_auto.t == opt_np.t == 30
    assert_params_close(p_auto, p_np, rtol=rtol)
    assert_params_close(_state_arrays(opt_auto), _state_arrays(opt_np), rtol=rtol)
    assert len(_state_arrays(opt_auto)) >= 4
    assert_allclose(h_auto.loss, h_np.loss, rtol=rtol)
    assert h_auto.accuracy == h_np.accuracy


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_auto_momentum_divergence_restores_with_the_fused_update():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    net = bp.Network([bp.Dense(3, 8), bp.ReLU(), bp.Dense(8, 1)], seed=0, dtype="float64")
    opt, watcher = bp.SGD(lr=1e3, momentum=0.9), EpochWatcher()
    fused, step = [], opt.step

    def spy(params, grads, **kwargs):
        fused.append(kwargs.get("fused"))
        return step(params, grads, **kwargs)

    opt.step = spy  # type: ignore[method-assign]
    with pytest.raises(DivergenceError, match=r"the loss became (nan|inf)"):
        bp.fit(net, x, y, loss="quadratic", optimizer=opt, epochs=50, batch_size=4, verbose=False,
               engine="auto", callbacks=[watcher])
    assert fused and all(fused)  # every step asked for the fused update, explicitly
    assert opt.fused is None  # and nothing was set on the optimizer
    assert_params_equal(params_of(net), watcher.begin_weights[max(watcher.begin_weights)])


@pytest.mark.parametrize("name", ["momentum", "adamw"])
def test_auto_update_kernels_resume_is_bitwise_an_uninterrupted_run(tmp_path, name):
    def run(epochs, **kwargs):
        net, opt = _plain_net(), OPTIMIZERS_WITH_UPDATE_KERNELS[name]()
        h = bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=7,
                   verbose=False, engine="auto", **kwargs)
        return params_of(net), h, opt

    plain, h_plain, opt_plain = run(3)
    run(1, checkpoint_dir=tmp_path)
    resumed, h_resumed, opt_resumed = run(3, checkpoint_dir=tmp_path, resume=True)
    assert h_resumed.engine == UPDATE_ENGINE
    assert h_resumed.loss == h_plain.loss
    assert opt_resumed.t == opt_plain.t
    assert_params_equal(resumed, plain)
    assert_params_equal(_state_arrays(opt_resumed), _state_arrays(opt_plain))


# ------------------------------------------------------------------- 4. divergence
DIVERGED = re.compile(r"at epoch (\d+), batch (\d+)(?: \(the last of the epoch\))?; "
                      r"the last finite loss was (\S+);")


def _diverge(engine, dtype, batch_size, lr, **kwargs):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 3)).astype(dtype), rng.normal(size=(16, 1)).astype(dtype)
    net = bp.Network([bp.Dense(3, 8), bp.ReLU(), bp.Dense(8, 1)], seed=0, dtype=dtype)
    watcher, opt = EpochWatcher(), bp.SGD(lr=lr)
    with pytest.raises(DivergenceError) as info:
        bp.fit(net, x, y, loss="quadratic", optimizer=opt, epochs=100, batch_size=batch_size,
               callbacks=[watcher], verbose=False, engine=engine, **kwargs)
    message = str(info.value)
    match = DIVERGED.search(message)
    assert match, message
    epoch, batch, last = int(match[1]), int(match[2]), float(match[3])
    assert epoch == max(watcher.begin_weights)
    assert math.isfinite(last)
    assert all(np.all(np.isfinite(p)) for p in net.parameters())
    assert_params_equal(params_of(net), watcher.begin_weights[epoch])  # bitwise the epoch's start
    assert f"from the start of epoch {epoch}" in message
    return epoch, batch, last, opt.t, params_of(net)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("batch_size, lr", [(4, 1e6), (16, 1e6), (3, 1e6), (4, 30.0), (3, 3.0)])
def test_divergence_float64_matches_numpy_and_restores_the_epoch_start(batch_size, lr):
    epoch, batch, last, t, weights = _diverge("numba", "float64", batch_size, lr)
    epoch_np, batch_np, last_np, t_np, weights_np = _diverge("numpy", "float64", batch_size, lr)
    assert (epoch, batch, t) == (epoch_np, batch_np, t_np)
    assert t == (epoch - 1) * math.ceil(16 / batch_size) + batch - 1  # the steps taken before it
    assert_allclose(last, last_np, rtol=1e-9)
    assert_params_close(weights, weights_np, rtol=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("batch_size", [3, 16])
def test_divergence_float32_matches_numpy_and_restores_the_epoch_start(batch_size):
    """A float32 mean loss beyond float32's range counts as divergence, as it does on NumPy."""
    epoch, batch, _, t, _ = _diverge("numba", "float32", batch_size, 1e6)
    epoch_np, batch_np, _, t_np, _ = _diverge("numpy", "float32", batch_size, 1e6)
    assert (epoch, batch, t) == (epoch_np, batch_np, t_np)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("epochs", [1, 2])
def test_divergence_in_the_last_step_of_an_epoch_is_caught(epochs):
    """The loss is finite but the step overflows the weights: caught at the end of the epoch."""
    net = bp.Network([bp.Dense(2, 1), bp.Identity()], seed=0, dtype="float64")
    start = params_of(net)
    opt = bp.SGD(lr=1e300)
    with pytest.raises(DivergenceError, match=r"parameters became NaN or infinite at epoch 1, batch 1 "
                                              r"\(the last of the epoch\); the last finite loss was 5\.0"):
        bp.fit(net, np.ones((4, 2)), np.full((4, 1), 1e10), loss="quadratic", optimizer=opt, epochs=epochs,
               batch_size=4, verbose=False, engine="numba")
    assert_params_equal(params_of(net), start)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("verbose", [False, True])
def test_divergence_in_a_later_run_of_batches_names_the_batch_of_the_epoch(verbose, capsys):
    """One huge input row makes batch 4251 of 4500 overflow; with verbose the engine runs in
    chunks of 4096 batches, so the failing batch lies in the second chunk."""
    x = np.random.default_rng(0).normal(size=(9000, 4))
    x[8501, 2] = 1e200
    y = np.random.default_rng(1).normal(size=(9000, 1))
    found = {}
    for engine in ("numpy", "numba"):
        net = bp.Network([bp.Dense(4, 3), bp.Identity(), bp.Dense(3, 1)], seed=0, dtype="float64")
        start = params_of(net)
        with pytest.raises(DivergenceError) as info:
            bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=0.01), epochs=1, batch_size=2,
                   shuffle=False, verbose=verbose, engine=engine)
        match = DIVERGED.search(str(info.value))
        found[engine] = (int(match[1]), int(match[2]), float(match[3]))
        assert_params_equal(params_of(net), start)
    assert found["numba"][:2] == found["numpy"][:2] == (1, 4251)
    assert_allclose(found["numba"][2], found["numpy"][2], rtol=1e-9)
    capsys.readouterr()


# -------------------------------------------------------------------- 5. schedules
class BadAfter:
    """A schedule (any callable) that returns ``value`` from step ``at`` on."""

    def __init__(self, at, value):
        self.at, self.value = at, value

    def __call__(self, step, base_lr):
        return self.value if step >= self.at else base_lr

    def __repr__(self):
        return f"BadAfter({self.at}, {self.value})"


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5])
def test_a_schedule_returning_a_bad_rate_is_an_invalid_value_error(value):
    """Both engines take the three good steps, then refuse the bad rate with the same message."""
    weights = {}
    for engine in ("numpy", "numba"):
        net, opt = _plain_net(), bp.SGD(lr=0.1, schedule=BadAfter(3, value))
        with pytest.raises(InvalidValueError, match=rf"schedule must return a finite learning rate >= 0; "
                                                    rf"BadAfter\(3, {value}\) returned {value} at step 3"):
            bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=8,
                   verbose=False, engine=engine)
        assert opt.t == 3
        weights[engine] = params_of(net)
    assert_params_close(weights["numba"], weights["numpy"], rtol=1e-10)


def test_a_schedule_rate_of_zero_freezes_the_weights():
    net = _plain_net()
    start = params_of(net)
    h = bp.fit(net, X_SEL, Y_SEL, loss="cross_entropy", optimizer=bp.SGD(lr=0.1, schedule=BadAfter(0, 0.0)),
               epochs=2, batch_size=8, verbose=False, engine="numba")
    assert h.engine == "numba" and h.lr == [0.0, 0.0]
    assert_params_equal(params_of(net), start)
    assert h.loss[0] == pytest.approx(h.loss[1], rel=1e-12)


# ------------------------------------------------------------ 6. checkpoint/resume
def _ckpt_fit(net, epochs, engine="numba", **kwargs):
    x = np.random.default_rng(5).normal(size=(50, 4))
    y = np.random.default_rng(6).integers(0, 3, 50)
    opt = bp.SGD(lr=0.2, weight_decay=1e-3, schedule=ExponentialDecay(0.98))  # the rate depends on t
    history = bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=7,
                     verbose=False, engine=engine, **kwargs)
    return history, opt


def test_numba_resume_is_bitwise_an_uninterrupted_numba_run(tmp_path):
    plain = _plain_net()
    h_plain, opt_plain = _ckpt_fit(plain, 4)
    _ckpt_fit(_plain_net(), 2, checkpoint_dir=tmp_path)
    resumed = _plain_net()
    h_resumed, opt_resumed = _ckpt_fit(resumed, 4, checkpoint_dir=tmp_path, resume=True)
    assert h_resumed.engine == "numba"
    assert h_resumed.epoch == [1, 2, 3, 4]
    assert h_resumed.loss == h_plain.loss
    assert h_resumed.accuracy == h_plain.accuracy
    assert opt_resumed.t == opt_plain.t == 4 * 8
    assert_params_equal(params_of(resumed), params_of(plain))
    # engine="auto" resolves to numba here, so it may resume the numba run's checkpoint too
    h_auto, _ = _ckpt_fit(_plain_net(), 5, engine="auto", checkpoint_dir=tmp_path, resume=True)
    assert h_auto.engine == "numba" and h_auto.epoch == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("written, resumed", [("numpy", "numba"), ("numba", "numpy")])
def test_resume_refuses_a_checkpoint_of_the_other_engine(tmp_path, written, resumed):
    _ckpt_fit(_plain_net(), 1, engine=written, checkpoint_dir=tmp_path)
    net = _plain_net()
    start = params_of(net)
    with pytest.raises(ConfigError, match=r"cannot resume from .*: the run's settings differ in \['engine'\]"):
        _ckpt_fit(net, 2, engine=resumed, checkpoint_dir=tmp_path, resume=True)
    assert_params_equal(params_of(net), start)


# ------------------------------------ 6b. the same bits whether compiled or loaded from cache
#: trains the setups of the cross-process test in a fresh process and prints, as JSON, the
#: SHA-256 of each run's parameter buffer and whether numba compiled or loaded its kernels
CROSS_PROCESS_CHILD = r"""
import hashlib, json
import backprop as bp
from backprop.engines import numba_kernels, split_kernels
from backprop.optim import fused_kernels

(x_all, y_all), _ = bp.datasets.load_mnist(dtype="float64")
out = {}
for dtype in ("float64", "float32"):
    x, y = x_all[:1000].astype(dtype), y_all[:1000]
    for hidden in (30, 100):  # 100 units: the sparse-input first layer
        for batch in (16, 25):
            for name, opt in (("sgd", bp.SGD(lr=0.5)), ("momentum", bp.SGD(lr=0.1, momentum=0.9)),
                              ("adam", bp.Adam(lr=1e-3))):
                if name != "sgd" and hidden == 100:
                    continue
                for engine in ("auto", "numba-split") if name != "sgd" else ("auto",):
                    net = bp.Network([bp.Dense(784, hidden), bp.Sigmoid(), bp.Dense(hidden, 10)], seed=0,
                                     dtype=dtype)
                    h = bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=batch,
                               verbose=False, engine=engine, seed=0)
                    key = f"{dtype}/{hidden}/{batch}/{name}/{h.engine}"
                    out[key] = [hashlib.sha256(net.parameter_buffer.tobytes()).hexdigest(), h.loss]
stats = {k: f.stats for module in (numba_kernels, fused_kernels, split_kernels) for k, f in vars(module).items()
         if hasattr(f, "stats")}
out["compiled"] = sum(sum(s.cache_misses.values()) for s in stats.values())
out["loaded"] = sum(sum(s.cache_hits.values()) for s in stats.values())
print(json.dumps(out))
"""


def test_compiled_and_cache_loaded_kernels_train_the_same_bits(tmp_path):
    """Two fresh processes share one empty numba cache: the first compiles the kernels (and
    writes them to the cache), the second loads them. Both train the same setups (float64 and
    float32; batch 16 and 25, whose blocks of 10, 5 and leftover rows once added in different
    orders in the two cases; dense and sparse input; the compiled steps and, under "auto", the
    NumPy steps with fused momentum and Adam updates; the split-batch steps with those updates
    inside them) and must end with the same weights, bit for bit, and the same per-epoch losses."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", CROSS_PROCESS_CHILD], env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    first, second = runs
    assert first.pop("compiled") > 0 and first.pop("loaded") == 0       # the first compiled...
    assert second.pop("compiled") == 0 and second.pop("loaded") > 0     # ...the second loaded
    assert len(first) == 24
    assert {key.rsplit("/", 1)[1] for key in first} == {"numba", UPDATE_ENGINE, "numba-split"}
    assert first == second


# ----------------------------------------------------------- 7. verbose (chunked runs)
def test_verbose_runs_in_chunks_with_the_same_result(monkeypatch, capsys):
    x = np.random.default_rng(0).normal(size=(9001, 4))
    y = np.random.default_rng(1).integers(0, 3, 9001)
    calls = []
    real_run = compiled.NumbaEngine._run

    def run(self, order, first, stop):
        calls.append((first, stop))
        return real_run(self, order, first, stop)

    monkeypatch.setattr(compiled.NumbaEngine, "_run", run)
    results = {}
    for engine, verbose in (("numba", False), ("numba", True), ("numpy", False)):
        calls.clear()
        net, opt = _plain_net(), bp.SGD(lr=0.05, schedule=StepDecay(1000, 0.5))
        h = bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=2,
                   verbose=verbose, engine=engine)
        results[engine, verbose] = (params_of(net), h, opt.t, list(calls))
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "9.00k/9.00k" in err  # the bar reached the end
    quiet, loud, ref = results["numba", False], results["numba", True], results["numpy", False]
    assert quiet[3] == [(0, 4501)]                      # one run without a bar
    assert loud[3] == [(0, 4096), (4096, 4501)]         # chunks of 8192 // batch_size batches
    assert ref[3] == []
    assert quiet[2] == loud[2] == ref[2] == 4501
    assert_params_equal(loud[0], quiet[0])  # the chunks change no step
    assert loud[1].accuracy == quiet[1].accuracy
    assert_allclose(loud[1].loss, quiet[1].loss, rtol=1e-13)  # the loss sums are split, though
    assert_params_close(loud[0], ref[0], rtol=1e-10)
    assert_histories_agree(loud[1], ref[1])


# --------------------------------------------------------------------------- 8. CLI
@pytest.fixture
def fast_mnist(monkeypatch, mnist_2000):
    """The CLI's MNIST loader returns copies of the first 2000 training and test samples
    (every run here uses --limit 2000, so it sees what the real loader would give it)."""
    def load_mnist(*, dtype="float32"):
        (x, y), (xt, yt) = mnist_2000
        return (x.astype(dtype), y.copy()), (xt.astype(dtype), yt.copy())

    monkeypatch.setattr(bp.datasets, "load_mnist", load_mnist)


TEXTBOOK = ["train", "--layers", "784,30,10", "--activation", "sigmoid", "--loss", "quadratic",
            "--optimizer", "sgd", "--lr", "3.0", "--epochs", "1", "--limit", "2000", "--quiet"]


def _cli_train(capsys, tmp_path, name, *flags):
    out = tmp_path / f"{name}.safetensors"
    assert cli.main([*TEXTBOOK, *flags, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    return stdout, metrics


def test_cli_train_engine_numba(fast_mnist, capsys, tmp_path):
    out_nb, m_nb = _cli_train(capsys, tmp_path, "m", "--batch-size", "10", "--engine", "numba")
    assert "engine: numba" in out_nb.splitlines()
    assert m_nb["engine"] == "numba"
    assert m_nb["settings"]["engine"] == "numba"
    out_np, m_np = _cli_train(capsys, tmp_path, "ref", "--batch-size", "10", "--engine", "numpy")
    assert "engine: numpy" in out_np.splitlines()
    assert m_np["engine"] == "numpy"
    assert m_np["test"]["accuracy"] > 0.7
    assert abs(m_nb["test"]["accuracy"] - m_np["test"]["accuracy"]) <= 0.005
    assert_allclose(m_nb["history"]["loss"], m_np["history"]["loss"], rtol=1e-5)
    saved_nb, saved_np = bp.load(tmp_path / "m.safetensors"), bp.load(tmp_path / "ref.safetensors")
    assert_params_close(params_of(saved_nb), params_of(saved_np), rtol=1e-4)


@pytest.mark.parametrize("batch_size, engine", [("10", "numba"), ("64", SPLIT_OR_NUMPY)])
def test_cli_train_engine_auto(fast_mnist, capsys, tmp_path, batch_size, engine):
    stdout, metrics = _cli_train(capsys, tmp_path, "auto", "--batch-size", batch_size)
    assert metrics["settings"]["engine"] == "auto"
    assert f"engine: {engine}" in stdout.splitlines()
    assert metrics["engine"] == engine


def test_cli_engine_numba_refuses_adam_with_exit_2(fast_mnist, capsys, tmp_path):
    argv = [*TEXTBOOK, "--batch-size", "10", "--engine", "numba", "--optimizer", "adam", "--lr", "0.001",
            "--out", str(tmp_path / "x.safetensors")]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert "--engine numba cannot train this: the optimizer Adam has no compiled form" in err
    assert "use --engine numpy" in err and out == ""  # the flags' words, before any output
    assert not (tmp_path / "x.safetensors").exists()
