"""Training setups that tests/test_distributed.py trains in one process and, through
train_cases.py, over K processes under ``mpiexec``: the two must give the same model."""

from __future__ import annotations

from typing import Any

import numpy as np

import backprop as bp


def data(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples ``(n, d)`` and labels ``(n,)`` of ``k`` classes that a small network can learn."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.argmax(x[:, :k] + 0.5 * rng.normal(size=(n, k)), axis=1)
    return x, y


def sgd(dtype: str) -> tuple[bp.Network, dict[str, Any]]:
    """SGD with Nesterov momentum, weight decay, global-norm clipping and a cosine schedule; two
    Dropout layers; batch 10 of 103 samples (not divisible by 2 or 3; a ragged last batch of
    3 rows); validation data of 31 rows; the per-layer ‖δ‖ recorded."""
    x, y = data(134, 7, 3, seed=1)
    net = bp.Network([bp.Dense(7, 16), bp.Tanh(), bp.Dropout(0.25), bp.Dense(16, 16), bp.ReLU(),
                      bp.Dropout(0.1), bp.Dense(16, 3)], seed=3, dtype=dtype)
    opt = bp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3, clip_norm=0.5,
                 schedule=bp.schedules.CosineDecay(total_steps=60, min_lr=0.01))
    fit = dict(x=x[:103].astype(dtype), y=y[:103], loss="cross_entropy", optimizer=opt, epochs=5, batch_size=10,
               validation_data=(x[103:].astype(dtype), y[103:]), record_grad_norms=True, seed=11)
    return net, fit


def adam(dtype: str) -> tuple[bp.Network, dict[str, Any]]:
    """Adam with clipping and weight decay, sample weights (a fifth of them zero, so some
    processes' shares weigh nothing), batch 2 (with 3 processes one share of every batch is
    empty; the last batch has 1 row), dropout, a validation split, early stopping that stops
    the run and restores the best epoch, the per-layer ‖δ‖ recorded."""
    x, y = data(54, 5, 3, seed=2)
    w = np.random.default_rng(4).uniform(0.2, 2.0, 54)
    w[::5] = 0.0
    net = bp.Network([bp.Dense(5, 24), bp.ReLU(), bp.Dropout(0.2), bp.Dense(24, 3)], seed=5, dtype=dtype)
    opt = bp.Adam(lr=0.05, weight_decay=1e-4, clip_norm=1.0)
    fit = dict(x=x.astype(dtype), y=y, loss="cross_entropy", optimizer=opt, epochs=30, batch_size=2,
               validation_split=0.25, sample_weight=w, record_grad_norms=True, seed=13,
               callbacks=[bp.EarlyStopping("val_loss", patience=2, restore_best=True)])
    return net, fit


CASES = {"sgd": sgd, "adam": adam}


def train(name: str, dtype: str, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Train case ``name``; return the final parameter buffer and the History as a dict
    (with ``engine`` and ``restored_epoch``)."""
    net, fit = CASES[name](dtype)
    history = bp.fit(net, verbose=False, engine="numpy", **fit, **options)
    record = history.as_dict()
    record["engine"], record["restored_epoch"] = history.engine, history.restored_epoch
    return net.parameter_buffer.copy(), record
