"""Classification accuracy from network outputs and targets."""

from __future__ import annotations

import numpy as np

from ..losses import BinaryCrossEntropy, CrossEntropy, Loss


def class_labels(y: np.ndarray, k: int, loss: Loss) -> np.ndarray | None:
    """The class index of each sample, ``(N,)``, when ``y`` holds class labels (integers ``(N,)``,
    or one-hot rows ``(N, k)`` with k ≥ 2, or 0/1 for a single ``BinaryCrossEntropy`` logit);
    ``None`` for real-valued targets, where accuracy means nothing."""
    if k == 1 and not isinstance(loss, BinaryCrossEntropy):
        return None
    if y.ndim == 1 and y.dtype.kind in "biu":
        return y.astype(np.intp, copy=False)
    if y.ndim == 2 and y.shape[1] == k and np.all((y == 0) | (y == 1)):
        if k == 1:
            return y[:, 0].astype(np.intp)  # a single binary target
        if np.all(y.sum(axis=1) == 1):
            return y.argmax(axis=1)  # one-hot rows
    return None


def predicted_classes(a: np.ndarray, loss: Loss) -> np.ndarray:
    """The predicted class of each row of outputs ``a`` ``(N, k)``: the arg-max, or for a single
    binary logit (``BinaryCrossEntropy`` with k = 1) whether it is positive."""
    if a.shape[1] == 1 and isinstance(loss, BinaryCrossEntropy):
        return (a[:, 0] > 0).astype(np.intp)
    return a.argmax(axis=1)


def accuracy(a: np.ndarray, labels: np.ndarray, loss: Loss) -> float:
    """The fraction of rows of ``a`` whose predicted class equals ``labels``."""
    return float(np.mean(predicted_classes(a, loss) == labels))


def output_probabilities(a: np.ndarray, loss: Loss) -> np.ndarray:
    """Outputs as the loss reads them: softmax of logits for :class:`CrossEntropy`, sigmoid of
    logits for :class:`BinaryCrossEntropy`, the outputs themselves otherwise. ``(N, k)``."""
    from ..activations import Sigmoid, Softmax

    if isinstance(loss, CrossEntropy):
        return Softmax.f(a)
    if isinstance(loss, BinaryCrossEntropy):
        return Sigmoid.f(a)
    return a
