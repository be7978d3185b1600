"""How the steps of an epoch are executed.

* :mod:`~backprop.engines.numpy`: the readable reference, one training step per batch (its
  optimizer update optionally fused into one compiled pass);
* :mod:`~backprop.engines.numba`: whole runs of plain-SGD steps in one compiled call, for
  small batches; NumPy arrays only;
* :mod:`~backprop.engines.split`: one compiled call per step that splits the batch's rows
  between threads (each with single-threaded BLAS) and applies the fused update; NumPy arrays
  only; for larger batches on networks of up to a million parameters.

A network on another device (:mod:`backprop.devices`: CuPy, PyTorch tensors, ...) trains on the
NumPy engine's steps, which take the array library from the arrays.

All implement :class:`~backprop.engines.base.Engine`. Which one runs a ``fit`` call is
decided above this package, by :mod:`backprop.training.engine_choice` (``fit(engine=...)``):
the engines receive the training set, the step and the batch callbacks, and import nothing
from :mod:`backprop.training`.
"""

from .base import BatchEnd, Diverged, Engine, EpochSums, Report, Step, TrainingSet

__all__ = ["BatchEnd", "Diverged", "Engine", "EpochSums", "Report", "Step", "TrainingSet"]
