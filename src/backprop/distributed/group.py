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
from .._validation import as_array, describe, first_non_finite_row
from ..errors import BackpropError, ConfigError, InvalidValueError

if TYPE_CHECKING:
    from ..losses import Loss
    from ..network import Network

T = TypeVar("T")

#: seconds a failing process waits between printing its message and MPI_Abort: the launcher
#: ends every process at once and may drop output still on its way (seen with MPICH's Hydra)
_FORWARD_SECONDS = 0.3

#: the default for :attr:`Group.timeout`: how long a collective operation may wait for the other
#: processes before the job is ended (5 minutes; see the attribute)
DEFAULT_TIMEOUT = 300.0
#: a waiting process polls its request in a tight loop for this long (a blocking MPI call spins
#: the same way), then yields the core between polls until :data:`_YIELD_SECONDS`, then sleeps
#: :data:`_NAP_SECONDS` between polls (see :meth:`Group._wait`)
_SPIN_SECONDS = 0.001
_YIELD_SECONDS = 1.0
_NAP_SECONDS = 0.001
#: give the core to another runnable thread (Unix; elsewhere the shortest sleep)
_yield_core: Callable[[], None] = getattr(os, "sched_yield", lambda: time.sleep(0))
#: after a timeout, how long a process waits for the others' answers to its probe
_PROBE_SECONDS = 10.0
#: the message tags of the probe and of "my line is printed", on a communicator of their own
_PROBE_TAG, _PRINTED_TAG = 7, 8


class Group:
    """The K processes of one data-parallel run: an MPI communicator and the collective
    operations ``fit`` needs of it (every method that communicates is called by every process).

    Args:
        comm: an mpi4py communicator, normally ``MPI.COMM_WORLD``.
        timeout: see the attribute.

    Attributes:
        rank: this process's number, ``0 <= rank < size``; rank 0 prints and writes files.
        size: the number of processes K.
        timeout: seconds a collective operation may wait for the other processes (``None``: for
            ever). A process that waits longer asks every other process for a sign of life
            (:meth:`silent_ranks`), prints one line naming those that gave none, and ends the
            job (:meth:`abort`): a cut link or a stalled host ends the job instead of holding
            every other host. A link that comes back within the timeout costs nothing. Default
            :data:`DEFAULT_TIMEOUT`, 5 minutes: a step's all-reduce takes milliseconds, and the
            longest legitimate wait is the skew between the processes (one loading its data
            slower, rank 0 writing a checkpoint); PyTorch waits 30 minutes by default (10 with
            NCCL), sized for ranks that may spend minutes compiling or loading alone.
        reduce_seconds: wall time spent in the gradient all-reduces so far (with the wait for
            the slowest process), for the benchmark.
        reduce_calls: the number of those all-reduces.

    Example:
        >>> group = bp.distributed.init()          # under mpiexec -n 4
        >>> group.rows(10)                          # this process's rows of a 10-row batch
        slice(5, 7, None)                           # on rank 2
    """

    def __init__(self, comm: Any, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        from mpi4py import MPI

        self.comm, self._mpi = comm, MPI
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.timeout = check_timeout(timeout)
        self.reduce_seconds = 0.0
        self.reduce_calls = 0
        self._probe = comm.Dup() if self.size > 1 else comm  # the probe's messages never meet a collective's

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
    # Every collective is started nonblocking and waited for by :meth:`_wait`, which bounds
    # the wait by the timeout: a blocking MPI call could not be left.
    def sum(self, array: np.ndarray) -> np.ndarray:
        """Replace ``array`` (contiguous) by its element-wise sum over the processes, in place:
        one ``Iallreduce(IN_PLACE, array, SUM)`` on the array's memory, no pickling."""
        self._wait(lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM), "summing")
        return array

    def max(self, value: float) -> float:
        """The largest ``value`` over the processes."""
        box = np.array([value], np.float64)
        self._wait(lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, box, op=self._mpi.MAX), "comparing")
        return float(box[0])

    def barrier(self) -> None:
        """Wait until every process has come here."""
        self._wait(self.comm.Ibarrier, "waiting at a barrier")

    def same(self, values: np.ndarray) -> bool:
        """Whether every process holds the same ``values`` (a small int64 array)."""
        everyone = self._gather(np.ascontiguousarray(values, np.int64))
        return bool((everyone == everyone[0]).all())

    def check_finite(self, array: np.ndarray, name: str) -> None:
        """Raise :class:`InvalidValueError` on every process when a row of ``array`` ``(N, ...)``
        holds NaN or infinity, naming the first such row (the same on every process). Each
        process reads only its share of the rows (:meth:`rows`), so a memory-mapped file is read
        once in all, not once per process."""
        n = len(array)
        mine = first_non_finite_row(array, self.rows(n))
        first = np.array([n if mine is None else mine], np.int64)
        self._wait(lambda: self.comm.Iallreduce(self._mpi.IN_PLACE, first, op=self._mpi.MIN), "checking the data")
        if first[0] < n:
            raise InvalidValueError(f"{name} must be finite; row {int(first[0])} holds NaN or infinite values")

    def _gather(self, mine: np.ndarray) -> np.ndarray:
        """Every process's ``mine`` (1-D, the same size everywhere), as rows ``(K, size)``."""
        everyone = np.empty((self.size, mine.size), mine.dtype)
        self._wait(lambda: self.comm.Iallgather(mine, everyone), "gathering")
        return everyone

    def _wait(self, start: Callable[[], Any], what: str) -> None:
        """Start a nonblocking collective (``start()`` returns its request) and wait for it,
        for at most :attr:`timeout` seconds; past that, or when the MPI library reports a
        failure, name the silent processes and end the job.

        ``Test`` is what moves MPICH's progress on, so the wait polls it: in a tight loop for
        the first millisecond (an all-reduce of a few MB over a fast link is done by then),
        then yielding the core between polls (a transfer paced by a slower link: measured on a
        1 Gbit/s link, a tight loop took 30 % longer than MPI's own ``Wait``, as it starves the
        kernel's network work on the same core; yielding matches ``Wait``), and after a second,
        which no healthy all-reduce of this library takes, sleeping 1 ms between polls."""
        mpi = self._mpi
        try:
            request = start()
            if self.timeout is None:
                request.Wait()
                return
            began = time.monotonic()
            deadline, spin_until, yield_until = began + self.timeout, began + _SPIN_SECONDS, began + _YIELD_SECONDS
            while not request.Test():
                now = time.monotonic()
                if now < spin_until:
                    continue
                if now < yield_until:
                    _yield_core()
                elif now < deadline:
                    time.sleep(_NAP_SECONDS)
                else:
                    self._stopped_answering(f"no answer for {self.timeout:g} s while {what}")
        except mpi.Exception as err:
            self._stopped_answering(f"the MPI library failed while {what}: {err.Get_error_string()}")

    def _stopped_answering(self, why: str) -> NoReturn:
        """Probe the others, print one line naming those that gave no sign of life, wait until
        the others that answered have printed theirs (so that no line is lost when the first
        of them ends the job), and end the job."""
        seconds = min(_PROBE_SECONDS, self.timeout or _PROBE_SECONDS)
        silent = self.silent_ranks(seconds)
        answered = [r for r in range(self.size) if r != self.rank and r not in silent]
        if silent:
            who = f"process{'es' if len(silent) > 1 else ''} {', '.join(map(str, silent))} stopped answering"
        else:
            who = "every process answered a probe, yet the collective operation did not finish"
        self._say(f"backprop: {who} ({why}; collective timeout {self.timeout:g} s)")
        self._hear_from(answered, _PRINTED_TAG, seconds)
        self._end(1)

    def silent_ranks(self, seconds: float = _PROBE_SECONDS) -> list[int]:
        """The processes that send no sign of life within ``seconds``: this process sends its
        rank to every other and waits for theirs (point to point, on a communicator of its own).
        Called by processes whose collective timed out; the others time out too, within about
        a step of each other, and answer then."""
        others = [r for r in range(self.size) if r != self.rank]
        answered = self._hear_from(others, _PROBE_TAG, seconds)
        return [r for r in others if r not in answered]

    def _hear_from(self, ranks: list[int], tag: int, seconds: float) -> list[int]:
        """Send this process's rank to each of ``ranks`` and return those whose message
        arrives within ``seconds`` (a request that fails counts as silence)."""
        token = np.array([self.rank], np.int64)
        inbox = np.empty((len(ranks), 1), np.int64)
        receives = {r: self._probe.Irecv(inbox[i], source=r, tag=tag) for i, r in enumerate(ranks)}
        for r in ranks:
            self._probe.Isend(token, dest=r, tag=tag)
        heard: list[int] = []
        deadline = time.monotonic() + seconds
        while receives and time.monotonic() < deadline:
            for r, request in list(receives.items()):
                try:
                    if request.Test():
                        heard.append(r)
                        del receives[r]
                except self._mpi.Exception:
                    del receives[r]
            time.sleep(_NAP_SECONDS)
        return sorted(heard)

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
        failed = self._gather(np.array([failure is not None], np.int64))[:, 0]
        if failed.any():  # the lowest failed rank's error: its class name and message, as bytes
            first = int(np.flatnonzero(failed)[0])
            text = np.frombuffer("\0".join(failure or ("", "")).encode(), np.uint8)
            length = int(self._gather(np.array([text.size], np.int64))[first, 0])
            box = np.zeros(length, np.uint8)
            if self.rank == first:
                box[:] = text
            self._wait(lambda: self.comm.Ibcast(box, root=first), "sharing an error")
            name, message = box.tobytes().decode().split("\0", 1)
            raise getattr(errors, name, BackpropError)(message)
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
        self._say(message)
        self._end(code)

    def _say(self, message: str) -> None:
        line = " ".join(message.split())
        # one write, newline included: the launcher forwards each write as it comes, and a line
        # written in two parts could be split by another process's line
        sys.stderr.write(f"{line} [process {self.rank} of {self.size}; ending the job]\n")
        sys.stderr.flush()

    def _end(self, code: int) -> NoReturn:
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

    def local(self) -> tuple[int, int]:
        """This process's rank among the job's processes on this machine (those that share its
        memory), and their number."""
        local = self.comm.Split_type(self._mpi.COMM_TYPE_SHARED)
        try:
            return int(local.Get_rank()), int(local.Get_size())
        finally:
            local.Free()


def check_timeout(timeout: Any, name: str = "timeout") -> float | None:
    """``timeout`` as seconds > 0 (a finite number), or None (no timeout); an error names ``name``."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)) \
            or not np.isfinite(timeout) or timeout <= 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, or None (wait for ever); "
                          f"got {describe(timeout)}")
    return float(timeout)
