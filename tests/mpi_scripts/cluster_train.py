"""``python cluster_train.py OUT ARGS...``: ``backprop train ARGS...`` exactly as the command runs
(under ``mpiexec`` or alone), after which every process writes the weights it ended with to
``OUT/weights-rank<r>.npy``, so that a test can compare every process's, not rank 0's alone.

The network is caught as the command builds it (``Network.__init__`` keeps a reference);
nothing else of the command is touched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from backprop import distributed
from backprop.cli import main
from backprop.network import Network

built: list[Network] = []
_init = Network.__init__


def _keep(self: Network, *args: object, **kwargs: object) -> None:
    _init(self, *args, **kwargs)  # type: ignore[arg-type]
    built.append(self)


Network.__init__ = _keep  # type: ignore[method-assign]

out = Path(sys.argv[1])
code = main(sys.argv[2:])
np.save(out / f"weights-rank{distributed.rank()}.npy", built[0].parameter_buffer)
sys.exit(code)
