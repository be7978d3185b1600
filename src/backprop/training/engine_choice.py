"""Which engine runs a checked ``fit`` call (``fit(engine=...)``), and the engine built for it.

The engines (:mod:`backprop.engines`) know nothing of ``fit``: this module reads the checked
:class:`~backprop.training.run.Run` and hands an engine only what it steps through (the
training set, the training step, the batch callbacks).
"""

from __future__ import annotations

from ..engines import Engine, TrainingSet
from ..engines.numpy import NumpyEngine, Shard
from ..errors import ConfigError
from .callbacks import Callback
from .run import Run
from .step import TrainingStep

#: the largest batch for which ``engine="auto"`` picks the compiled engine: beyond it the
#: NumPy path's multi-threaded BLAS products win
AUTO_COMPILED_MAX_BATCH = 32
#: the most parameters for which ``engine="auto"`` picks the split-batch engine (at batches above
#: AUTO_COMPILED_MAX_BATCH, with two or more threads). Measured on 2 cores against the NumPy steps
#: at batch 128 (benchmarks/README.md, "Which way round"): C3, [784,256,256,10] with Adam (269,322
#: parameters), 0.87x of its products alone against the NumPy steps' 0.70x-0.83x;
#: [784,512,512,10] (670,218) 1.10x the NumPy steps; [784,1024,1024,10] (1,863,690) 0.96x;
#: [784,2048,2048,10] with momentum 0.93x: beyond a million the products on the whole batch with
#: every thread win
AUTO_SPLIT_MAX_PARAMS = 1_000_000


def create_engine(run: Run, shard: Shard | None = None) -> Engine:
    """The engine for ``run``: ``engine="numba"`` insists on the compiled steps and
    ``"numba-split"`` on the split-batch steps (each says why it cannot), ``"numpy"`` takes the
    NumPy steps; ``"auto"`` takes the compiled steps where they can train the run and
    ``batch_size <= AUTO_COMPILED_MAX_BATCH``, else the split-batch steps where they can, with
    two or more threads and at most :data:`AUTO_SPLIT_MAX_PARAMS` parameters, else NumPy steps
    with the fused optimizer update where numba and the optimizer have one.

    Args:
        run: the checked ``fit`` call.
        shard: this process's rows of each global batch (a data-parallel run), or None.
    """
    reason = numba_refusal(run, shard)
    if run.engine == "numba" and reason is not None:
        raise ConfigError(f"engine='numba' cannot train this: {reason}; use engine='numpy'")
    if shard is not None and not run.net.device.is_numpy:
        raise ConfigError(f"a distributed run trains NumPy networks; this one is on {run.net.device.name}")
    if run.engine == "numba" or (run.engine == "auto" and reason is None
                                 and run.batch_size <= AUTO_COMPILED_MAX_BATCH):
        from ..engines.numba import NumbaEngine

        return NumbaEngine(run.net, run.loss, run.optimizer, run.batch_size, run.x, run.t, run.labels)
    split = split_refusal(run, shard) if run.engine in ("numba-split", "auto") else "not asked for"
    if run.engine == "numba-split" and split is not None:
        raise ConfigError(f"engine='numba-split' cannot train this: {split}; use engine='numpy'")
    threads = split_threads(run.batch_size) if split is None else 0
    if run.engine == "numba-split" or (split is None and run.batch_size > AUTO_COMPILED_MAX_BATCH
                                       and run.net.n_params <= AUTO_SPLIT_MAX_PARAMS and threads >= 2):
        from ..engines.split import SplitEngine

        # the fused update unless the optimizer says fused=False (numba is there: the engine needs it)
        fused = run.optimizer.fused if run.optimizer.fused is not None else run.optimizer.has_fused_update
        return SplitEngine(run.net, run.loss, run.optimizer, run.batch_size, run.x, run.t, run.labels,
                           threads=threads, fused=fused,
                           on_batch_end=[cb.on_batch_end for cb in run.callbacks if _overrides_on_batch_end(cb)])
    step = TrainingStep(run.net, run.loss, run.optimizer, fused=_fused_update(run), grad_hook=run.grad_hook)
    return NumpyEngine(step, TrainingSet(run.x, run.t, run.labels, run.weights), run.batch_size,
                       record_grad_norms=run.record_grad_norms,
                       on_batch_end=[cb.on_batch_end for cb in run.callbacks if _overrides_on_batch_end(cb)],
                       shard=shard)


def numba_refusal(run: Run, shard: Shard | None = None) -> str | None:
    """Why the compiled steps cannot train ``run`` (None: they can)."""
    if shard is not None or run.group is not None:
        return ("a data-parallel run sums every step's gradients over the processes between backward "
                "and the update, and the compiled steps fuse the two")
    from ..engines import numba

    if not run.net.device.is_numpy:
        return (f"the network is on {run.net.device.name}, and the compiled engine runs on NumPy arrays "
                "only (the array-namespace steps of engine='auto' run there)")
    reason = numba.unsupported_reason(run.net, run.loss, run.optimizer)
    if reason is not None:
        return reason
    if any(_overrides_on_batch_end(cb) for cb in run.callbacks):
        return "a callback has on_batch_end, and the compiled engine runs many batches per call"
    return _fused_steps_refusal(run, "the compiled steps")


def split_refusal(run: Run, shard: Shard | None = None) -> str | None:
    """Why the split-batch steps (:mod:`backprop.engines.split`) cannot train ``run`` (None: they can)."""
    if shard is not None or run.group is not None:
        return ("a data-parallel run sums every step's gradients over the processes between backward "
                "and the update, and the split-batch steps fuse the two")
    from ..engines import split

    reason = split.unsupported_reason(run.net, run.loss)
    if reason is not None:
        return reason
    if not run.x.flags.c_contiguous:
        return "the split-batch engine reads the rows of a C-contiguous x"
    return _fused_steps_refusal(run, "the split-batch steps")


def _fused_steps_refusal(run: Run, steps: str) -> str | None:
    """What ``steps`` (compiled steps that run forward, backward and the update in one call)
    cannot do, because it needs what a NumPy step keeps or does in between (None: nothing)."""
    if run.record_grad_norms:
        return f"record_grad_norms needs every layer's δ of every batch, which {steps} do not keep"
    if run.weights is not None:
        return f"{steps} take no per-sample weights"
    if run.grad_hook is not None:
        return f"a gradient hook needs every step's gradients between backward and the update, and {steps} fuse them"
    return None


def split_threads(batch_size: int) -> int:
    """The threads a split-batch step uses: the BLAS threads in effect (``set_threads``,
    ``--threads``, the environment, else the cores), at most numba's and the batch's size."""
    import numba

    from ..threads import get_threads, usable_cores

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]  # set at numba's import
    return max(1, min(get_threads() or usable_cores(), most, batch_size))


def _overrides_on_batch_end(cb: Callback) -> bool:
    return type(cb).on_batch_end is not Callback.on_batch_end


def _fused_update(run: Run) -> bool:
    """Whether the NumPy steps use the optimizer's fused update: its own ``fused`` when set,
    else with ``engine="auto"`` where numba is installed and the optimizer has one."""
    if not run.net.device.is_numpy:  # the fused updates are compiled for NumPy arrays
        return False
    if run.optimizer.fused is not None:
        return run.optimizer.fused
    if run.engine != "auto" or not run.optimizer.has_fused_update:
        return False
    from ..engines import numba

    return numba.available()
