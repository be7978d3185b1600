"""The split-batch engine (``fit(engine="numba-split")``, :mod:`backprop.engines.split`) against the
NumPy path, which stays the reference.

What is checked, with numbers:

* float64 training agrees with ``engine="numpy"`` to rounding (1e-10 relative) on random
  architectures, activations, losses, target kinds, batch sizes (dividing N or not, smaller
  than the number of threads), optimizers (Adam, AdamW and SGD with momentum, whose fused
  update runs inside the compiled call; plain SGD, RMSprop and clipped Adam, whose ``step``
  runs after it), weight decay and schedules: the parameters, every History list,
  ``optimizer.t`` and the optimizer's state;
* one thread and two threads give the same numbers to rounding, and a run repeats bit for bit;
* float32 agrees to 1e-4 relative on an MNIST subset (C3's network);
* ``engine="auto"`` picks it at batches above ``AUTO_COMPILED_MAX_BATCH`` with two or more
  threads and at most ``AUTO_SPLIT_MAX_PARAMS`` parameters, for setups it can train, and not in
  a child forked from a process whose OpenMP pool ran it; ``engine="numba-split"`` refuses
  what it cannot train with a ConfigError that names the reason;
* divergence, callbacks' ``on_batch_end``, checkpoint/resume (bitwise) and the CLI's
  ``--engine numba-split`` behave as on the NumPy path.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("scipy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

import backprop as bp  # noqa: E402
from backprop import cli  # noqa: E402
from backprop.engines.split import SplitEngine  # noqa: E402
from backprop.errors import ConfigError, DivergenceError, ShapeError  # noqa: E402
from backprop.optim.schedules import CosineDecay, StepDecay  # noqa: E402
from backprop.threads import set_threads  # noqa: E402
from backprop.training.engine_choice import AUTO_SPLIT_MAX_PARAMS, split_threads  # noqa: E402
from random_networks import ACTIVATIONS, build  # noqa: E402

OPTIMIZERS = {
    "adam": lambda lr, wd, sched: bp.Adam(lr=lr / 10, weight_decay=wd, schedule=sched),
    "adamw": lambda lr, wd, sched: bp.AdamW(lr=lr / 10, weight_decay=wd, schedule=sched),
    "momentum": lambda lr, wd, sched: bp.SGD(lr=lr, momentum=0.9, weight_decay=wd, schedule=sched),
    "nesterov": lambda lr, wd, sched: bp.SGD(lr=lr, momentum=0.5, nesterov=True, weight_decay=wd, schedule=sched),
    "sgd": lambda lr, wd, sched: bp.SGD(lr=lr, weight_decay=wd, schedule=sched),
    "rmsprop": lambda lr, wd, sched: bp.RMSprop(lr=lr / 10, weight_decay=wd, schedule=sched),
    "adam_clipped": lambda lr, wd, sched: bp.Adam(lr=lr / 10, weight_decay=wd, schedule=sched, clip_norm=0.5),
}
SCHEDULES = {"none": None, "step": StepDecay(2, 0.5), "cosine": CosineDecay(10, min_lr=0.01)}
# loss, and how targets are drawn: (n, k, rng) -> y
LOSSES = {
    "quadratic": (2, lambda n, k, rng: rng.normal(size=(n, k))),
    "cross_entropy": (2, lambda n, k, rng: rng.integers(0, k, n)),
    "binary_cross_entropy": (1, lambda n, k, rng: rng.random((n, k))),
}


@pytest.fixture(autouse=True)
def two_threads():
    """Every test here runs with two BLAS threads (so two blocks per batch), then lifts the limit."""
    set_threads(2)
    yield
    set_threads(None)


def assert_close_arrays(actual, desired, rtol):
    """Each array agrees to ``rtol`` relative to its own largest entry."""
    for a, d in zip(actual, desired, strict=True):
        assert a.dtype == d.dtype and a.shape == d.shape and np.all(np.isfinite(a))
        assert_allclose(a, d, rtol=rtol, atol=rtol * max(float(np.max(np.abs(d))), 1e-300))


def train(engine, make_net, make_opt, x, y, **kwargs):
    net, opt = make_net(), make_opt()
    history = bp.fit(net, x, y, optimizer=opt, verbose=False, engine=engine, **kwargs)
    return net, history, opt


def assert_runs_agree(split, reference, rtol=1e-10):
    (net_s, h_s, opt_s), (net_n, h_n, opt_n) = split, reference
    assert h_s.engine == "numba-split" and h_n.engine == "numpy"
    assert h_s.epoch == h_n.epoch and h_s.lr == h_n.lr
    assert_allclose(h_s.loss, h_n.loss, rtol=rtol, atol=1e-13)
    assert h_s.accuracy == h_n.accuracy  # counts of correct predictions: exact
    assert_allclose(h_s.val_loss, h_n.val_loss, rtol=rtol, atol=1e-13)
    assert opt_s.t == opt_n.t
    assert_close_arrays(net_s.parameters(), net_n.parameters(), rtol)
    state_s, state_n = opt_s.state_dict(), opt_n.state_dict()
    assert state_s.keys() == state_n.keys()
    for name in state_s.keys() - {"optimizer", "t"}:
        assert_close_arrays(state_s[name], state_n[name], rtol)


@st.composite
def setups(draw):
    depth = draw(st.integers(1, 4))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    widths = [draw(st.integers(1, 12)) for _ in range(depth)] + [draw(st.integers(LOSSES[loss][0], 9))]
    n = draw(st.integers(2, 40))
    return {
        "widths": widths, "loss": loss, "n": n,
        "activations": [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in range(depth)],
        "slopes": [draw(st.floats(-0.5, 1.0, allow_nan=False)) for _ in range(depth)],
        "batch_size": draw(st.integers(1, n)),
        "optimizer": draw(st.sampled_from(sorted(OPTIMIZERS))),
        "lr": draw(st.floats(0.01, 0.2)),
        "weight_decay": draw(st.sampled_from([0.0, 0.0, 1e-3, 0.05])),
        "schedule": draw(st.sampled_from(sorted(SCHEDULES))),
        "validation": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(max_examples=60, deadline=None)
@given(setups())
def test_agrees_with_numpy_to_rounding(s):
    rng = np.random.default_rng(s["seed"])
    n, k = s["n"], s["widths"][-1]
    y = LOSSES[s["loss"]][1](n, k, rng)
    x = rng.normal(size=(n, s["widths"][0]))
    extra = {"validation_data": (rng.normal(size=(5, s["widths"][0])), LOSSES[s["loss"]][1](5, k, rng))} \
        if s["validation"] else {}

    def make_net():
        return build(s["widths"], s["activations"], s["slopes"], s["seed"])

    def make_opt():
        return OPTIMIZERS[s["optimizer"]](s["lr"], s["weight_decay"], SCHEDULES[s["schedule"]])

    runs = [train(engine, make_net, make_opt, x, y, loss=s["loss"], epochs=3, batch_size=s["batch_size"], seed=1,
                  **extra) for engine in ("numba-split", "numpy")]
    assert_runs_agree(*runs)


def c3_like(dtype, seed=0):
    return bp.Network([bp.Dense(784, 64, init="he_uniform"), bp.ReLU(), bp.Dense(64, 32, init="he_uniform"),
                       bp.ReLU(), bp.Dense(32, 10)], seed=seed, dtype=dtype)


@pytest.fixture(scope="module")
def mnist_subset():
    (x, y), _ = bp.datasets.load_mnist(dtype="float32")
    return x[:3000], y[:3000]


def test_float32_agrees_on_mnist(mnist_subset):
    x, y = mnist_subset
    runs = [train(engine, lambda: c3_like("float32"), lambda: bp.Adam(lr=1e-3), x, y, loss="cross_entropy",
                  epochs=2, batch_size=128, seed=0) for engine in ("numba-split", "numpy")]
    assert runs[1][1].engine == "numpy"
    assert_allclose(runs[0][1].loss, runs[1][1].loss, rtol=1e-4)
    assert_close_arrays(runs[0][0].parameters(), runs[1][0].parameters(), 1e-4)
    assert runs[0][1].accuracy[-1] > 0.75  # it learns (0.82 here: 3,000 MNIST images, the second epoch)


def engine_for(net, loss, opt, x, y, batch_size, threads, fused=True):
    t = loss.training_targets(loss.prepare(y, (len(y), net.output_width), net.dtype), net.output_width, net.dtype)
    return SplitEngine(net, loss, opt, batch_size, x, t, y if loss.__class__ is bp.CrossEntropy else None,
                       threads=threads, fused=fused)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_one_thread_and_two_agree_and_repeat_bit_for_bit(batch_size):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(150, 20)), rng.integers(0, 5, 150)
    loss = bp.CrossEntropy()
    results = []
    for threads in (1, 2, 2):
        net = bp.Network([bp.Dense(20, 16), bp.Tanh(), bp.Dense(16, 5)], seed=4, dtype="float64")
        engine = engine_for(net, loss, bp.Adam(lr=1e-2), x, y, batch_size, threads)
        sums = [engine.run_epoch(np.random.default_rng(e).permutation(150), None) for e in range(2)]
        results.append((net.parameter_buffer.copy(), [s.loss for s in sums], [s.correct for s in sums]))
    (p1, l1, c1), (p2, l2, c2), (p3, l3, c3) = results
    assert_array_equal(p2, p3) and l2 == l3 and c2 == c3  # noqa: B015  same threads: the same bits
    assert_array_equal(p3, p2)
    assert_allclose(p1, p2, rtol=1e-12, atol=1e-14)
    assert_allclose(l1, l2, rtol=1e-12)
    assert c1 == c2


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, 10**6])
def test_a_thread_count_outside_numbas_pool_is_refused(threads):
    net = bp.Network([bp.Dense(3, 2)], seed=0, dtype="float64")
    x, y = np.zeros((4, 3)), np.zeros(4, dtype=np.int64)
    with pytest.raises(ConfigError, match=r"threads must be an integer from 1 to \d+ \(numba's thread pool"):
        engine_for(net, bp.CrossEntropy(), bp.Adam(), x, y, 2, threads)


@pytest.mark.parametrize("order", [np.arange(9), np.arange(10) + 1, -np.arange(10), np.arange(10.0)])
def test_an_order_that_would_read_outside_the_data_is_refused(order):
    rng = np.random.default_rng(0)
    net = bp.Network([bp.Dense(3, 2)], seed=0, dtype="float64")
    engine = engine_for(net, bp.CrossEntropy(), bp.Adam(), rng.normal(size=(10, 3)), rng.integers(0, 2, 10), 4, 2)
    before = net.parameter_buffer.copy()
    with pytest.raises(ShapeError, match="order must"):
        engine.run_epoch(order, None)
    assert_array_equal(net.parameter_buffer, before)


def test_reports_every_step_and_callbacks_see_every_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    seen = []

    class Batches(bp.Callback):
        def on_batch_end(self, batch, logs, net):
            seen.append((batch, logs["batch_size"], logs["loss"]))

    net = bp.Network([bp.Dense(4, 8), bp.ReLU(), bp.Dense(8, 3)], seed=0, dtype="float64")
    history = bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(), epochs=1, batch_size=20, verbose=False,
                     engine="numba-split", callbacks=[Batches()])
    assert history.engine == "numba-split"
    assert [(b, m) for b, m, _ in seen] == [(0, 20), (1, 20), (2, 10)]
    assert np.average([v for _, _, v in seen], weights=[20, 20, 10]) == pytest.approx(history.loss[0], rel=1e-12)


def test_divergence_restores_the_epochs_weights():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)) * 1e3, rng.normal(size=(64, 2)) * 1e3
    net = bp.Network([bp.Dense(3, 8), bp.ReLU(), bp.Dense(8, 2)], seed=0, dtype="float64")
    start = net.parameter_buffer.copy()
    with pytest.raises(DivergenceError, match="the loss became"):
        bp.fit(net, x, y, loss="quadratic", optimizer=bp.SGD(lr=1e6, momentum=0.9), epochs=3, batch_size=16,
               verbose=False, engine="numba-split")
    assert_array_equal(net.parameter_buffer, start)


def test_resume_continues_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(90, 6)), rng.integers(0, 4, 90)

    def run(epochs, resume=False):
        net = bp.Network([bp.Dense(6, 12), bp.Sigmoid(), bp.Dense(12, 4)], seed=2, dtype="float64")
        history = bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=1e-2), epochs=epochs, batch_size=40,
                         verbose=False, engine="numba-split", checkpoint_dir=tmp_path / "ck", resume=resume)
        return net, history

    straight, _ = run(4)
    (tmp_path / "ck").rename(tmp_path / "straight")
    run(2)
    resumed, history = run(4, resume=True)
    assert history.engine == "numba-split"
    assert_array_equal(resumed.parameter_buffer, straight.parameter_buffer)


def auto_engine(net, batch_size, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * batch_size, net.input_width))
    y = rng.integers(0, net.output_width, 2 * batch_size)
    kwargs.setdefault("optimizer", bp.Adam())
    return bp.fit(net, x, y, loss="cross_entropy", epochs=1, batch_size=batch_size, verbose=False, **kwargs).engine


def small():
    return bp.Network([bp.Dense(10, 16), bp.ReLU(), bp.Dense(16, 3)], seed=0, dtype="float64")


def test_auto_picks_it_where_it_wins_and_the_others_elsewhere():
    assert auto_engine(small(), 64) == "numba-split"
    assert auto_engine(small(), 64, optimizer=bp.RMSprop()) == "numba-split"
    assert auto_engine(small(), 16, optimizer=bp.SGD(lr=0.1)) == "numba"  # small batches: the compiled engine
    assert auto_engine(small(), 16) == "numpy+numba-update"  # Adam at small batches: NumPy steps, as before
    assert auto_engine(small(), 64, record_grad_norms=True) == "numpy+numba-update"
    assert auto_engine(small(), 64, sample_weight=np.ones(128)) == "numpy+numba-update"
    big = bp.Network([bp.Dense(10, 1000), bp.ReLU(), bp.Dense(1000, 1000), bp.ReLU(), bp.Dense(1000, 3)], seed=0,
                     dtype="float64")
    assert big.n_params > AUTO_SPLIT_MAX_PARAMS
    assert auto_engine(big, 64) == "numpy+numba-update"
    with_dropout = bp.Network([bp.Dense(10, 16), bp.ReLU(), bp.Dropout(0.2), bp.Dense(16, 3)], seed=0,
                              dtype="float64")
    assert auto_engine(with_dropout, 64) == "numpy+numba-update"
    set_threads(1)  # one thread: nothing to split between
    assert split_threads(64) == 1
    assert auto_engine(small(), 64) == "numpy+numba-update"



def test_the_blas_pools_are_found_once_and_their_thread_counts_read_afresh():
    """The controller the engine limits SciPy's BLAS through is made once per process (a scan of
    the process's libraries per fit cost 2-3 ms); the counts it reports follow set_threads."""
    from backprop.threads import blas_pools, get_threads

    pools = blas_pools(after=("scipy.linalg.cython_blas",))
    assert pools is blas_pools(after=("scipy.linalg.cython_blas",))
    assert pools.lib_controllers  # NumPy's BLAS at least, and SciPy's where it bundles its own
    try:
        set_threads(1)
        assert get_threads() == 1 and all(info["num_threads"] == 1 for info in pools.info())
        with pools.limit(limits=2):
            assert all(info["num_threads"] == 2 for info in pools.info())
        assert get_threads() == 1
    finally:
        set_threads(None)


@pytest.mark.parametrize("engine, threads_while_evaluating", [("numba-split", 1), ("numpy", 2)])
def test_the_evaluation_between_epochs_keeps_blas_single_threaded_under_the_split_engine(
        monkeypatch, engine, threads_while_evaluating):
    """A multi-threaded BLAS call leaves OpenBLAS's worker spinning on a core the split engine's
    threads need; so the validation between its epochs runs with BLAS on one thread (and the
    limit is lifted again for the epochs and after fit). The NumPy steps keep BLAS's threads."""
    import sys

    from backprop.threads import get_threads

    fit_module = sys.modules["backprop.training.fit"]
    seen: list[int | None] = []

    def evaluate(*args, **kwargs):
        seen.append(get_threads())
        return real(*args, **kwargs)

    real = fit_module.evaluate
    monkeypatch.setattr(fit_module, "evaluate", evaluate)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 10)), rng.integers(0, 3, 256)
    history = bp.fit(small(), x, y, loss="cross_entropy", optimizer=bp.Adam(), epochs=3, batch_size=64,
                     validation_data=(x[:64], y[:64]), verbose=False, engine=engine)
    assert history.engine == engine
    assert seen == [threads_while_evaluating] * 3
    assert len(history.val_loss) == 3 and all(np.isfinite(history.val_loss))
    assert get_threads() == 2

FORKED_CHILD = r"""
import multiprocessing as mp, sys
import numpy as np
import backprop as bp
from backprop.threads import set_threads


def fit(engine):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 10)), rng.integers(0, 3, 256)
    net = bp.Network([bp.Dense(10, 16), bp.ReLU(), bp.Dense(16, 3)], seed=0, dtype="float64")
    return bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(), epochs=1, batch_size=64, verbose=False,
                  engine=engine).engine


def child(queue):
    set_threads(2)
    auto = fit("auto")
    try:
        fit("numba-split")
        queue.put((auto, "trained"))
    except bp.errors.ConfigError as error:
        queue.put((auto, str(error)))


if __name__ == "__main__":
    set_threads(2)
    print(fit("auto"))
    from numba import threading_layer
    print(threading_layer())
    context = mp.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    process.join(120)
    print(process.exitcode, *queue.get(timeout=10))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_a_forked_child_of_a_process_that_ran_it_takes_the_numpy_steps(tmp_path):
    """GNU OpenMP's threads do not survive fork(): numba ends a forked child that starts a
    parallel kernel. A child forked after a split-batch fit trains with the NumPy steps under
    "auto", and ``engine="numba-split"`` says why it cannot."""
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    parent, layer, result = done.stdout.strip().splitlines()
    assert parent == "numba-split"
    if layer != "omp":
        pytest.skip(f"numba's threading layer here is {layer}, which a forked child may use")
    assert result.startswith("0 numpy+numba-update ")
    assert "cannot train this: this process was forked from one that ran numba's OpenMP thread pool" in result


@pytest.mark.parametrize("kwargs, reason", [
    ({"net": lambda: bp.Network([bp.Dense(10, 16), bp.Dropout(0.5), bp.Dense(16, 3)], seed=0, dtype="float64")},
     r"layer 1 \(Dropout\) has no compiled form"),
    ({"loss": "huber"}, "the loss Huber has no compiled form"),
    ({"sample_weight": np.ones(128)}, "the split-batch steps take no per-sample weights"),
    ({"record_grad_norms": True}, "record_grad_norms needs every layer's δ of every batch"),
    ({"grad_hook": lambda grads, stats: None}, "a gradient hook needs every step's gradients"),
])
def test_named_engine_refuses_with_the_reason_before_training(kwargs, reason):
    net = kwargs.pop("net", small)()
    before = net.parameter_buffer.copy()
    rng = np.random.default_rng(0)
    loss = kwargs.pop("loss", "cross_entropy")
    y = rng.integers(0, 3, 128) if loss == "cross_entropy" else rng.normal(size=(128, 3))
    with pytest.raises(ConfigError, match=f"engine='numba-split' cannot train this: .*{reason}"):
        bp.fit(net, rng.normal(size=(128, 10)), y, loss=loss, optimizer=bp.Adam(), epochs=1, batch_size=32,
               verbose=False, engine="numba-split", **kwargs)
    assert_array_equal(net.parameter_buffer, before)


def test_cli_names_the_engine_and_its_refusal(tmp_path, capsys):
    code = cli.main(["train", "--engine", "numba-split", "--epochs", "1", "--limit", "256",
                     "--out", str(tmp_path / "m.safetensors")])
    assert code == 2
    assert "--engine numba-split cannot train this: layer 2 (Dropout) has no compiled form; use --engine numpy" \
        in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
