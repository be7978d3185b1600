"""How the steps of an epoch are executed, chosen explicitly by ``fit(engine=...)``.

* :mod:`~backprop.engines.numpy`: the readable reference, one NumPy training step per batch
  (its optimizer update optionally fused into one compiled pass);
* :mod:`~backprop.engines.numba`: whole runs of plain-SGD steps in one compiled call, for
  small batches; NumPy arrays only.

A network on another device (:mod:`backprop.devices`: CuPy, PyTorch tensors, ...) trains on the
NumPy engine's steps, which take the array library from the arrays: ``engine="auto"`` and
``"numpy"`` choose them, and ``engine="numba"`` is refused with the reason.

Both implement :class:`~backprop.engines.base.Engine`. :func:`create` picks one for a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Diverged, Engine, EpochSums

if TYPE_CHECKING:
    from ..training.run import Run
    from .numpy import Shard

__all__ = ["AUTO_COMPILED_MAX_BATCH", "Diverged", "Engine", "EpochSums", "create", "numba_refusal"]

#: the largest batch for which ``engine="auto"`` picks the compiled engine: beyond it the
#: NumPy path's multi-threaded BLAS products win
AUTO_COMPILED_MAX_BATCH = 32


def create(run: Run, shard: Shard | None = None) -> Engine:
    """The engine for ``run``: ``engine="numba"`` insists on the compiled steps (and says why
    it cannot), ``"numpy"`` takes the NumPy steps, ``"auto"`` the compiled steps where they
    can train the run and ``batch_size <= AUTO_COMPILED_MAX_BATCH``, else NumPy steps with
    the fused optimizer update where numba and the optimizer have one."""
    reason = numba_refusal(run, shard)
    if run.engine == "numba" and reason is not None:
        raise ConfigError(f"engine='numba' cannot train this: {reason}; use engine='numpy'")
    if shard is not None and not run.net.device.is_numpy:
        raise ConfigError(f"a distributed run trains NumPy networks; this one is on {run.net.device.name}")
    if run.engine == "numba" or (run.engine == "auto" and reason is None
                                 and run.batch_size <= AUTO_COMPILED_MAX_BATCH):
        from .numba import NumbaEngine

        return NumbaEngine(run.net, run.loss, run.optimizer, run.batch_size, run.x, run.t, run.labels)
    from ..training.step import TrainingStep
    from .numpy import NumpyEngine

    step = TrainingStep(run.net, run.loss, run.optimizer, fused=_fused_update(run), grad_hook=run.grad_hook)
    return NumpyEngine(run, step, shard)


def numba_refusal(run: Run, shard: Shard | None = None) -> str | None:
    """Why the compiled steps cannot train ``run`` (None: they can)."""
    if shard is not None or run.group is not None:
        return ("a data-parallel run sums every step's gradients over the processes between backward "
                "and the update, and the compiled steps fuse the two")
    from . import numba

    if not run.net.device.is_numpy:
        return (f"the network is on {run.net.device.name}, and the compiled engine runs on NumPy arrays "
                "only (the array-namespace steps of engine='auto' run there)")

    reason = numba.unsupported_reason(run.net, run.loss, run.optimizer)
    if reason is not None:
        return reason
    from ..training.callbacks import Callback

    if any(type(cb).on_batch_end is not Callback.on_batch_end for cb in run.callbacks):
        return "a callback has on_batch_end, and the compiled engine runs many batches per call"
    if run.record_grad_norms:
        return "record_grad_norms needs every batch's δ, which the compiled engine does not keep"
    if run.weights is not None:
        return "the compiled engine has no per-sample weights"
    if run.grad_hook is not None:
        return ("a gradient hook needs every step's gradients between backward and the update, and "
                "the compiled steps fuse them")
    return None


def _fused_update(run: Run) -> bool:
    """Whether the NumPy steps use the optimizer's fused update: its own ``fused`` when set,
    else with ``engine="auto"`` where numba is installed and the optimizer has one."""
    if not run.net.device.is_numpy:  # the fused updates are compiled for NumPy arrays
        return False
    if run.optimizer.fused is not None:
        return run.optimizer.fused
    if run.engine != "auto" or not run.optimizer.has_fused_update:
        return False
    from . import numba

    return numba.available()
