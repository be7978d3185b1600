"""``backprop.fit``: :func:`backprop.training.fit` in this process, or over every process that
``mpiexec`` started, as one data-parallel run.

``fit`` itself (:mod:`backprop.training`) trains in one process and knows nothing of MPI. The
data-parallel run plugs into it from here, above it: the gradient hook all-reduces each step's
gradients, the NumPy engine takes this process's share of each batch, and the run's
:class:`~backprop.training.parallel.ProcessGroup` (a :class:`~backprop.distributed.Group`)
shares the evaluation and the checkpoints (:mod:`backprop.distributed.data_parallel`).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..training import History
from ..training import fit as fit_here
from ..training.run import check_run
from . import group_for
from .data_parallel import train
from .group import check_timeout


def fit(net: Any, x: Any, y: Any, *, distributed: bool | None = None, collective_timeout: float | None = None,
        **options: Any) -> History:
    timeout = None if collective_timeout is None else check_timeout(collective_timeout, "collective_timeout")
    group = group_for(distributed)  # None: this process alone
    if group is None:
        return fit_here(net, x, y, **options)
    arguments = _FIT_SIGNATURE.bind(net, x, y, **options)  # a TypeError for an unknown argument, as in a call
    arguments.apply_defaults()
    run = check_run(**arguments.arguments, check_finite=False)
    before = group.timeout
    if timeout is not None:
        group.timeout = timeout
    try:
        return train(run, group)
    finally:
        group.timeout = before


_FIT_SIGNATURE = inspect.signature(fit_here)
fit.__signature__ = _FIT_SIGNATURE.replace(  # type: ignore[attr-defined]
    parameters=[*_FIT_SIGNATURE.parameters.values(),
                inspect.Parameter("distributed", inspect.Parameter.KEYWORD_ONLY, default=None,
                                  annotation="bool | None"),
                inspect.Parameter("collective_timeout", inspect.Parameter.KEYWORD_ONLY, default=None,
                                  annotation="float | None")])
# the docstring: training.fit's, with `distributed` among the arguments
_DISTRIBUTED_DOC = """\
        distributed: train one model over the processes of an MPI job, data-parallel (see
            :mod:`backprop.distributed`): ``None`` (default) when ``mpiexec`` started more than
            one process, ``True`` always, ``False`` never (each process trains alone). Every
            process calls ``fit`` alike and ends with the same weights and ``History``, those
            one process would train (to rounding); only rank 0 shows progress. Runs on the
            NumPy engine (``engine="numba"`` refuses). A run without ``mpiexec`` never imports MPI.
        collective_timeout: in a data-parallel run, the seconds a collective operation (each
            step's all-reduce) may wait for the other processes before the job ends with one line
            naming the processes that stopped answering (a cut link, a stalled host). ``None``
            (default): the group's, 300 s unless :func:`backprop.distributed.init` was given
            another (``init(timeout=None)`` waits for ever); :attr:`backprop.distributed.Group.timeout`
            says why 300 s.
"""
_HERE_DOC = fit_here.__doc__ or ""
_ARGS = _HERE_DOC[_HERE_DOC.index("    Args:"):]
fit.__doc__ = ("Train ``net`` on ``(x, y)`` by mini-batch gradient descent; under ``mpiexec``, over every\n"
               "    process, data-parallel (:func:`backprop.training.fit` is the one-process loop).\n\n"
               + _ARGS.replace("    Returns:", _DISTRIBUTED_DOC + "\n    Returns:", 1))
