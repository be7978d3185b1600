"""``python cluster_train.py OUT ARGS...``: ``backprop train ARGS...`` exactly as the command runs
(under ``mpiexec`` or alone), after which every process writes the weights it ended with to
``OUT/weights-rank<r>.npy``, so that a test can compare every process's, not rank 0's alone.

The network is caught as the command builds it (``Network.__init__`` keeps a reference).
With ``CLUSTER_TRAIN_PAUSE=SECONDS`` in the environment, every step of a data-parallel run
sleeps that long before its all-reduce, so that a job lasts long enough to be interrupted on
a fast machine (the numbers are not changed). Nothing else of the command is touched.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from backprop import distributed
from backprop.cli import main
from backprop.distributed.data_parallel import Reducer
from backprop.network import Network

built: list[Network] = []
_init = Network.__init__


def _keep(self: Network, *args: object, **kwargs: object) -> None:
    _init(self, *args, **kwargs)  # type: ignore[arg-type]
    built.append(self)


Network.__init__ = _keep  # type: ignore[method-assign]

pause = float(os.environ.get("CLUSTER_TRAIN_PAUSE", "0"))
if pause:
    _reduce = Reducer.__call__

    def _slowly(self: Reducer, grads: np.ndarray, stats: np.ndarray) -> None:
        time.sleep(pause)
        _reduce(self, grads, stats)

    Reducer.__call__ = _slowly  # type: ignore[method-assign]

out = Path(sys.argv[1])
code = main(sys.argv[2:])
np.save(out / f"weights-rank{distributed.rank()}.npy", built[0].parameter_buffer)
sys.exit(code)
