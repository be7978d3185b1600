"""Training: ``fit`` (mini-batch gradient descent as the notes describe it), the one training
step, ``History``, callbacks, checkpoints and resume, progress.

| module | job |
|---|---|
| :mod:`~backprop.training.fit` | ``fit``'s epoch loop, divergence handling, ``evaluate`` |
| :mod:`~backprop.training.run` | every argument of ``fit`` checked, into a frozen ``Run`` |
| :mod:`~backprop.training.step` | the one training step: forward, loss, backward, gradient hook, update |
| :mod:`~backprop.training.engine_choice` | which engine runs a call (``fit(engine=...)``), built from the ``Run`` |
| :mod:`~backprop.training.parallel` | what the epoch loop needs of a data-parallel run's processes |
| :mod:`~backprop.training.history` | ``History`` |
| :mod:`~backprop.training.callbacks` | ``Callback``, ``EarlyStopping`` |
| :mod:`~backprop.training.resume`, :mod:`~backprop.training.checkpoint` | what a checkpoint holds; its file format |
| :mod:`~backprop.training.progress` | the progress bar |
| :mod:`~backprop.training.metrics` | accuracy from outputs and targets |
"""

from . import checkpoint
from .callbacks import Callback, EarlyStopping
from .engine_choice import AUTO_COMPILED_MAX_BATCH
from .fit import evaluate, fit
from .history import History
from .run import ENGINES, GradHook
from .step import TrainingStep

__all__ = ["AUTO_COMPILED_MAX_BATCH", "ENGINES", "Callback", "EarlyStopping", "GradHook", "History",
           "TrainingStep", "checkpoint", "evaluate", "fit"]
