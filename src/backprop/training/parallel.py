"""What ``fit``'s epoch loop needs of the processes of a data-parallel run.

``fit`` trains in one process; a data-parallel run (:mod:`backprop.distributed`, which sits
above this package) plugs into it through what ``fit`` already has, the gradient hook and the
engine's shard of each batch, and through a :class:`ProcessGroup` in ``Run.group``, which the
epoch loop asks for the few things every process must agree on. :class:`backprop.distributed.Group`
is the MPI implementation; this package never imports it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class ProcessGroup(Protocol):
    """The processes of one data-parallel run, as ``fit``'s epoch loop sees them (every method
    is a collective operation: every process calls it).

    Attributes:
        rank: this process's number; rank 0 alone writes checkpoints.
    """

    rank: int

    def barrier(self) -> None:
        """Wait until every process has come here."""
        ...

    def max(self, value: float) -> float:
        """The largest ``value`` over the processes."""
        ...

    def evaluate(self, net: Any, x: Any, y: Any, loss: Any) -> dict[str, float | None]:
        """:func:`backprop.training.evaluate`, each process on its share of the rows, reduced."""
        ...

    def check_resumed(self, epoch: int, params: np.ndarray) -> None:
        """Raise on every process unless all resumed at ``epoch`` with bitwise the same
        parameter buffer ``params``."""
        ...
