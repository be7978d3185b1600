"""``Group``: the processes of a data-parallel run, and the few collective operations it needs."""

from __future__ import annotations

import os
import sys
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np

from .. import errors
from .._validation import as_array
from ..errors import BackpropError, ConfigError

if TYPE_CHECKING:
    from ..losses import Loss
    from ..network import Network

T = TypeVar("T")

#: seconds a failing process waits between printing its message and MPI_Abort: the launcher
#: ends every process at once and may drop output still on its way (seen with MPICH's Hydra)
_FORWARD_SECONDS = 0.3


class Group:
    """The K processes of one data-parallel run: an MPI communicator and the collective
    operations ``fit`` needs of it (every method that communicates is called by every process).

    Args:
        comm: an mpi4py communicator, normally ``MPI.COMM_WORLD``.

    Attributes:
        rank: this process's number, ``0 <= rank < size``; rank 0 prints and writes files.
        size: the number of processes K.
        reduce_seconds: wall time spent in the gradient all-reduces so far (with the wait for
            the slowest process), for the benchmark.
        reduce_calls: the number of those all-reduces.

    Example:
        >>> group = bp.distributed.init()          # under mpiexec -n 4
        >>> group.rows(10)                          # this process's rows of a 10-row batch
        slice(5, 7, None)                           # on rank 2
    """

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self.comm, self._mpi = comm, MPI
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.reduce_seconds = 0.0
        self.reduce_calls = 0

    def __repr__(self) -> str:
        return f"Group(rank={self.rank}, size={self.size})"

    def describe(self) -> str:
        """``"data-parallel over K processes"``, for summaries and model metadata."""
        return f"data-parallel over {self.size} process{'es' if self.size != 1 else ''}"

    def rows(self, n: int) -> slice:
        """This process's contiguous share of ``n`` rows: ``⌊rn/K⌋ .. ⌊(r+1)n/K⌋ − 1`` (the
        shares differ by at most one row; with ``n < K`` some are empty)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    # ------------------------------------------------------------ collectives
    def sum(self, array: np.ndarray) -> np.ndarray:
        """Replace ``array`` (contiguous) by its element-wise sum over the processes, in place:
        one ``Allreduce(IN_PLACE, array, SUM)`` on the array's memory, no pickling."""
        self.comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        return array

    def max(self, value: float) -> float:
        """The largest ``value`` over the processes."""
        box = np.array([value], np.float64)
        self.comm.Allreduce(self._mpi.IN_PLACE, box, op=self._mpi.MAX)
        return float(box[0])

    def barrier(self) -> None:
        """Wait until every process has come here."""
        self.comm.Barrier()

    def same(self, values: np.ndarray) -> bool:
        """Whether every process holds the same ``values`` (a small int64 array)."""
        mine = np.ascontiguousarray(values, np.int64)
        everyone = np.empty((self.size, mine.size), np.int64)
        self.comm.Allgather(mine, everyone)
        return bool((everyone == everyone[0]).all())

    def same_weights(self, params: np.ndarray) -> bool:
        """Whether every process holds bitwise the same parameter buffer (a CRC-32 each)."""
        return self.same(np.array([zlib.crc32(np.ascontiguousarray(params).data)]))

    def all_or_none(self, work: Callable[[], T]) -> T:
        """``work()`` on every process. If it raises a :class:`~backprop.errors.BackpropError`
        on any, every process raises the error of the lowest-ranked one that failed (same class,
        same message): the same bad input gives the same error everywhere, not a deadlock."""
        try:
            result, failure = work(), None
        except BackpropError as err:
            result, failure = None, (type(err).__name__, str(err))
        failures = self.comm.allgather(failure)  # a few short strings
        first = next((f for f in failures if f is not None), None)
        if first is not None:
            kind = getattr(errors, first[0], BackpropError)
            raise kind(first[1])
        return result  # type: ignore[return-value]

    def evaluate(self, net: Network, x: Any, y: Any, loss: Loss | str, *,
                 batch_size: int = 2048) -> dict[str, float | None]:
        """:func:`backprop.evaluate` shared: each process evaluates its rows (:meth:`rows`), and
        ``[Σ loss, correct, rows]`` is all-reduced. The mean loss equals one process's to
        rounding, the accuracy exactly. ``x`` ``(N, d_0)`` may be memory-mapped: each process
        reads its rows only."""
        from ..training.fit import evaluate

        def share() -> np.ndarray:
            xs, ys = as_array(x, "x"), as_array(y, "y")
            if xs.ndim != 2 or ys.shape[:1] != xs.shape[:1]:
                raise errors.ShapeError(f"x must be a 2-D batch (N, d_0) and y hold one target per row of x; "
                                        f"got shapes {xs.shape} and {ys.shape}")
            part = self.rows(xs.shape[0])
            m = part.stop - part.start
            if m == 0 and xs.shape[0] > 0:  # fewer rows than processes: nothing here
                return np.zeros(3)
            got = evaluate(net, xs[part], ys[part], loss, batch_size=batch_size)
            acc = got["accuracy"]
            correct = np.nan if acc is None else round(acc * m)  # NaN: the targets are not classes
            return np.array([got["loss"] * m, correct, m], np.float64)

        sums = self.sum(self.all_or_none(share))
        n = sums[2]
        return {"loss": float(sums[0] / n), "accuracy": None if np.isnan(sums[1]) else float(sums[1] / n)}

    # ----------------------------------------------------------------- faults
    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print ``message`` (one line, with this process's rank) and end every process of the
        job with exit code ``code`` (``MPI_Abort``)."""
        line = " ".join(message.split())
        print(f"{line} [process {self.rank} of {self.size}; ending the job]", file=sys.stderr, flush=True)
        time.sleep(_FORWARD_SECONDS)  # let the launcher forward the message before it ends the job
        try:
            self.comm.Abort(code)
        finally:  # MPICH's MPI_Abort may return while the launcher ends the job
            os._exit(code)

    def check_resumed(self, epoch: int, params: np.ndarray) -> None:
        """Every process must have resumed from the same checkpoint: the same epoch and bitwise the
        same weights. Raises :class:`ConfigError` on every process otherwise."""
        if not self.same(np.array([epoch, zlib.crc32(np.ascontiguousarray(params).data)])):
            raise ConfigError("the processes resumed from different checkpoints: checkpoint_dir must be "
                              "one directory that every process sees (a shared file system)")

    def threads_per_process(self) -> int:
        """The cores of this machine divided among the job's processes on it (at least 1)."""
        local = self.comm.Split_type(self._mpi.COMM_TYPE_SHARED)
        try:
            processes = local.Get_size()
        finally:
            local.Free()
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores // processes)
