"""Under ``mpiexec -n K``: the fault and resume scenarios of tests/test_distributed.py.

``python faults.py MODE DIR``, where DIR holds x.npy and y.npy (opened memory-mapped) and
receives the results:

* ``full``: train 4 epochs with a checkpoint per epoch; write the weights;
* ``kill``: the same, but process 1 kills itself (SIGKILL) in the middle of epoch 3;
* ``resume``: continue from DIR's newest checkpoint; write the weights;
* ``raise-in-fit``: process 1 raises in the middle of epoch 2 (from a callback);
* ``raise-outside``: process 1 raises after ``distributed.init()``, before any fit;
* ``pause``: with a collective timeout of 2 s, process 1 stops itself (SIGSTOP) in epoch 2;
* ``pause-fit``: the same, the timeout given to ``bp.fit(collective_timeout=2)``;
* ``errors``: bad input that every process sees alike, and a divergence; each process writes
  the errors it got to ``DIR/errors-<rank>.txt``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import backprop as bp
from backprop import distributed
from backprop.errors import BackpropError

mode, where = sys.argv[1], Path(sys.argv[2])


class Trouble(bp.Callback):
    """Makes process 1 fail at batch 2 of epoch ``epoch`` (``how``: "kill" or "raise")."""

    def __init__(self, how: str | None, epoch: int) -> None:
        self.how, self.at, self.epoch = how, epoch, 0

    def on_epoch_begin(self, epoch, net, history):
        self.epoch = epoch

    def on_batch_end(self, batch, logs, net):
        if self.how and self.epoch == self.at and batch == 2 and distributed.rank() == 1:
            print(f"failing at {time.time():.3f}", file=sys.stderr, flush=True)
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.how == "pause":
                os.kill(os.getpid(), signal.SIGSTOP)
            raise RuntimeError("process 1 gave up")


def train(how: str | None, resume: bool, timeout: float | None = None) -> None:
    x, y = np.load(where / "x.npy", mmap_mode="r"), np.load(where / "y.npy")
    net = bp.Network([bp.Dense(x.shape[1], 32), bp.ReLU(), bp.Dropout(0.2), bp.Dense(32, 4)], seed=7,
                     dtype="float64")
    bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.01, clip_norm=2.0), epochs=4, batch_size=25,
           validation_split=0.2, checkpoint_dir=where / "checkpoints", resume=resume, verbose=False, engine="numpy",
           callbacks=[Trouble(how, 3 if how == "kill" else 2)], collective_timeout=timeout)
    if distributed.rank() == 0:
        (where / f"{mode}-{distributed.size()}.json").write_text(
            json.dumps([float(v).hex() for v in net.parameter_buffer]))


def errors() -> None:
    rank = distributed.rank()
    x, y = np.load(where / "x.npy"), np.load(where / "y.npy")
    net = bp.Network([bp.Dense(x.shape[1], 8), bp.ReLU(), bp.Dense(8, 4)], seed=0, dtype="float64")
    bad = x.copy()
    bad[-1, 0] = np.nan  # in the last process's rows only
    attempts = {
        "fit": lambda: bp.fit(net, bad, y, loss="cross_entropy", epochs=1, verbose=False),
        "evaluate": lambda: distributed.evaluate(net, bad, y, "cross_entropy"),
        "numba": lambda: bp.fit(net, x, y, loss="cross_entropy", epochs=1, verbose=False, engine="numba"),
        "diverge": lambda: bp.fit(net, x * 1e200, y, loss="cross_entropy", optimizer=bp.SGD(lr=1e10), epochs=1,
                                  verbose=False),
    }
    lines = []
    for name, attempt in attempts.items():
        try:
            attempt()
            lines.append(f"{name} rank {rank}: no error")
        except BackpropError as err:
            lines.append(f"{name} rank {rank}: {type(err).__name__}: {err}")
    (where / f"errors-{rank}.txt").write_text("\n".join(lines) + "\n")  # mpiexec may interleave stdout lines


if mode in ("full", "kill", "resume"):
    train("kill" if mode == "kill" else None, resume=mode == "resume")
elif mode == "raise-in-fit":
    train("raise", resume=False)
elif mode == "pause":
    distributed.init(timeout=2)
    train("pause", resume=False)
elif mode == "pause-fit":
    train("pause", resume=False, timeout=2)
elif mode == "raise-outside":
    distributed.init()
    if distributed.rank() == 1:
        print(f"failing at {time.time():.3f}", file=sys.stderr, flush=True)
        raise ValueError("process 1 could not read its data")
    time.sleep(60)  # the others would wait for it forever
elif mode == "errors":
    errors()
