"""Checkpoints of a ``fit`` run: what to save after an epoch and how to continue from it.

The file format is :mod:`backprop.training.checkpoint`; this module decides what a run puts in
it (the parameter buffer, the optimizer's state, the random generators, the history, and a
fingerprint of the settings) and puts it back on ``resume``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..devices import to_numpy
from ..errors import ConfigError
from ..layers import Dropout
from . import checkpoint
from .history import History
from .run import Run


def fingerprint(run: Run, engine: str) -> dict[str, Any]:
    """The settings a resumed run must share with the checkpoint's."""
    return {"architecture": run.net.config(), "dtype": run.net.dtype.name, "samples": run.n,
            "batch_size": run.batch_size, "seed": run.seed, "shuffle": run.shuffle,
            "loss": repr(run.loss), "optimizer": repr(run.optimizer), "engine": engine}


def _dropouts(run: Run) -> list[Dropout]:
    return [layer for layer in run.net.layers if isinstance(layer, Dropout)]


def save(run: Run, epoch: int, rng: np.random.Generator, history: History, engine: str) -> None:
    """Write the checkpoint of ``epoch`` into ``run.checkpoint_dir`` (atomically)."""
    assert run.checkpoint_dir is not None
    state = {k: [to_numpy(a) for a in v] if isinstance(v, list) else v  # host copies
             for k, v in run.optimizer.state_dict().items()}
    checkpoint.save(run.checkpoint_dir, epoch=epoch, params=to_numpy(run.net.parameter_buffer),
                    optimizer=state, shuffle_rng=dict(rng.bit_generator.state),
                    dropout_rngs=[dict(d.rng.bit_generator.state) for d in _dropouts(run) if d.rng is not None],
                    history=history.as_dict(), fingerprint=fingerprint(run, engine))


def restore(run: Run, rng: np.random.Generator, history: History, engine: str) -> int:
    """Load the newest good checkpoint of ``run.checkpoint_dir`` into the run; returns the
    epoch to continue from (1 when there is none)."""
    assert run.checkpoint_dir is not None
    saved = checkpoint.load_latest(run.checkpoint_dir)
    if saved is None:
        return 1
    wanted = fingerprint(run, engine)
    saved_fingerprint = {"engine": "numpy", **saved.fingerprint}  # runs from before fit(engine=...)
    differ = sorted(k for k in wanted if json.dumps(saved_fingerprint.get(k), sort_keys=True)
                    != json.dumps(wanted[k], sort_keys=True))
    if differ:
        raise ConfigError(f"cannot resume from {saved.path}: the run's settings differ in {differ}")
    params, dropouts = run.net.parameters(), _dropouts(run)
    if len(saved.params) != len(params) or len(saved.dropout_rngs) != len(dropouts):
        raise ConfigError(f"cannot resume from {saved.path}: it holds a different network")
    run.optimizer.load_state_dict(saved.optimizer)  # checks everything before it changes anything
    for p, value in zip(params, saved.params, strict=True):
        run.net.device.ops.copyto(p, run.net.device.asarray(value))
    rng.bit_generator.state = saved.shuffle_rng
    for layer, state in zip(dropouts, saved.dropout_rngs, strict=True):
        assert layer.rng is not None
        layer.rng.bit_generator.state = state
    h = saved.history
    for key in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        setattr(history, key, list(h.get(key, [])))
    history.grad_norms = {k: list(v) for k, v in h.get("grad_norms", {}).items()}
    return saved.epoch + 1
