"""Data parallelism over MPI: K processes train one model, and it is the model one process trains.

Launch on one machine or on several (a host list)::

    mpiexec -n 4 backprop train --epochs 10                # the command: nothing else to say
    mpiexec -n 8 -hosts a,b python my_script.py            # a script that calls bp.fit

Every process holds the whole network. Each global batch (the batch one process would train
on, from the same seeded permutation on every process) is cut into K contiguous shares, rows
``⌊rB/K⌋ .. ⌊(r+1)B/K⌋ − 1`` on process ``r`` (a share may be empty). Process ``r`` computes
the gradient of the mean loss over its share, ``g_r = (1/w_r) Σ_{n∈r} w_n ∇C_n`` (``w_n = 1``
without sample weights, ``w_r = Σ_{n∈r} w_n``), scales it by ``w_r / W`` (``W`` the batch's
weight, which every process computes from the batch's indices), and one in-place all-reduce
over the network's flat gradient buffer sums the shares::

    Σ_r (w_r / W) g_r = (1/W) Σ_n w_n ∇C_n        the gradient one process computes for the batch

Every process then applies the same optimizer step (clipping on the global norm, weight decay,
the schedule) to the same weights, so the weights stay bitwise identical everywhere. Dropout
draws the global batch's mask, as one process would, and each process keeps its rows.
Validation is shared the same way and reduced; the epoch's sums ride on a second, small
all-reduce per step, so ``History`` is the same on every process and early stopping decides
the same everywhere.

The switch: :func:`backprop.fit` trains over all processes when a launcher started more than one
(``mpiexec`` sets ``PMI_SIZE``, Open MPI ``OMPI_COMM_WORLD_SIZE``, MVAPICH
``MV2_COMM_WORLD_SIZE``), or when given ``distributed=True``; ``distributed=False`` trains one
model per process. A run that was not launched so never imports :mod:`mpi4py`.

Faults: an exception on one process would leave the others waiting in an all-reduce forever,
so :func:`init` installs an exception hook, and fit and the ``backprop`` command catch what
escapes them: the failing process prints a one-line message and calls ``MPI_Abort``, which
ends every process of the job within seconds (exit code 1, 2 for a usage error). Errors every
process meets alike (bad arguments, divergence) are raised alike on every process. A process
that falls silent (a cut link, a stalled host) is found by the collective timeout
(:attr:`Group.timeout`, ``init(timeout=...)``, ``backprop train --collective-timeout``): each
process still running names it in one line and the job ends.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._validation import describe
from ..errors import ConfigError, DTypeError
from .group import DEFAULT_TIMEOUT, Group, check_timeout

if TYPE_CHECKING:
    from ..losses import Loss
    from ..network import Network

__all__ = ["DEFAULT_TIMEOUT", "RANK_VARIABLES", "SIZE_VARIABLES", "Group", "command", "evaluate", "group_for", "init",
           "launched", "rank", "size"]

#: environment variables in which launchers give the number of processes (MPICH and Intel MPI's
#: Hydra, Slurm's PMI, Open MPI, MVAPICH)
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
#: ... and this process's rank, in the same order
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")

_group: Group | None = None


def _environment(names: tuple[str, ...]) -> int | None:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def launched() -> bool:
    """Whether a launcher started this process as one of several (read from the environment;
    imports nothing)."""
    return (_environment(SIZE_VARIABLES) or 1) > 1


_UNSET: Any = object()


def init(timeout: float | None = _UNSET) -> Group:
    """Start MPI (once) and return the group of every process of the job (``COMM_WORLD``).

    With more than one process it also installs an exception hook: an uncaught exception on
    any process prints its traceback and ends the whole job (``MPI_Abort``). Call it first in
    a script run under ``mpiexec`` so that a failure before :func:`backprop.fit` (loading
    data, say) ends the job too; ``fit`` calls it itself.

    Args:
        timeout: seconds a collective operation may wait for the other processes before the
            job ends, naming the processes that stopped answering (:attr:`Group.timeout`);
            ``None`` waits for ever. Default: :data:`DEFAULT_TIMEOUT` (5 minutes) at the first
            call, unchanged at later ones. Give every process the same value.

    Raises:
        ConfigError: mpi4py or an MPI library is missing, or ``timeout`` is not seconds > 0.
    """
    global _group
    if timeout is not _UNSET:
        timeout = check_timeout(timeout)
    if _group is not None and timeout is not _UNSET:
        _group.timeout = timeout
    if _group is None:
        try:
            from mpi4py import MPI
        except ImportError as err:  # mpi4py itself, or the MPI library it links
            raise ConfigError("data parallelism needs mpi4py and an MPI library: pip install "
                              f"'backprop[mpi]' ({err})") from None
        _group = Group(MPI.COMM_WORLD, DEFAULT_TIMEOUT if timeout is _UNSET else timeout)
        if _group.size > 1:
            _install_excepthook(_group)
    return _group


def _install_excepthook(group: Group) -> None:
    previous = sys.excepthook

    def abort_job(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        previous(kind, value, tb)  # the traceback, as Python prints it
        group.abort(f"backprop: {kind.__name__}: {value}", 130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = abort_job


def rank() -> int:
    """This process's rank: 0 in a run that was not launched by ``mpiexec`` (imports nothing)."""
    if _group is not None:
        return _group.rank
    return (_environment(RANK_VARIABLES) or 0) if launched() else 0


def size() -> int:
    """The number of processes of the job: 1 in a run that was not launched (imports nothing)."""
    if _group is not None:
        return _group.size
    return (_environment(SIZE_VARIABLES) or 1) if launched() else 1


def group_for(distributed: Any) -> Group | None:
    """``fit(distributed=...)``: the group to train over, or None to train in this process alone.

    ``None`` (default) trains over all processes when a launcher started several; ``True``
    always (one process too, and it fails when mpi4py is missing); ``False`` never.
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise DTypeError(f"distributed must be True, False or None (detect mpiexec); got {describe(distributed)}")
    if distributed is False or (distributed is None and not launched()):
        return None
    group = init()
    return group if distributed or group.size > 1 else None


def evaluate(net: Network, x: Any, y: Any, loss: Loss | str, *, batch_size: int = 2048) -> dict[str, float | None]:
    """:func:`backprop.evaluate`, shared by the processes of a launched job: each evaluates its
    contiguous share of the rows and the sums are all-reduced, giving one process's numbers (the
    loss to rounding, the accuracy exactly). Every process must call it; without a launcher it
    is :func:`backprop.evaluate`."""
    if _group is None and not launched():
        from ..training import evaluate as evaluate_here

        return evaluate_here(net, x, y, loss, batch_size=batch_size)
    return init().evaluate(net, x, y, loss, batch_size=batch_size)


def command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Make a ``backprop`` command fit for ``mpiexec -n K backprop ...``.

    Without a launcher the command runs as it is (MPI is not imported). Under one: MPI starts,
    with ``--collective-timeout`` when the command has it; processes other than rank 0 print
    nothing to stdout; ``--threads`` unset means the count set in the environment
    (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``) or else the cores divided among the
    processes on the machine, and a warning is printed once per machine when threads ×
    processes exceed its cores; and a failure on any process prints ``backprop <command>:
    error: ...`` with the process's rank and ends the whole job with exit code 2 (usage
    error), 130 (interrupted) or 1.
    """

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        if not launched():
            return run(args)
        group = init(getattr(args, "collective_timeout", DEFAULT_TIMEOUT))
        if hasattr(args, "threads"):
            _plan_threads(args, group)
        if group.rank != 0:
            sys.stdout = open(os.devnull, "w")  # for the life of the process
        try:
            code = run(args)
        except BaseException as err:  # any failure must end every process
            if getattr(args, "debug", False):
                traceback.print_exc()
            code = 2 if isinstance(err, ConfigError) else 130 if isinstance(err, KeyboardInterrupt) else 1
            group.abort(f"backprop {getattr(args, 'command', '')}: error: {err}", code)
        if code:
            group.abort(f"backprop {getattr(args, 'command', '')}: exit code {code}", code)
        return code

    return wrapped


def _plan_threads(args: argparse.Namespace, group: Group) -> None:
    """Set ``args.threads`` for a launched command (see :func:`command`) and warn, from the
    machine's first process, when its processes' threads exceed its cores."""
    from ..threads import get_threads, oversubscription, threads_per_process, usable_cores

    local_rank, processes = group.local()
    cores = usable_cores()
    if args.threads is None or args.threads >= 1:  # a bad --threads is refused by the command
        args.threads = threads_per_process(args.threads, processes, cores, os.environ)
        warning = oversubscription(args.threads or get_threads() or 1, processes, cores)
        if warning and local_rank == 0:
            print(f"backprop {getattr(args, 'command', '')}: warning: {warning}", file=sys.stderr, flush=True)

