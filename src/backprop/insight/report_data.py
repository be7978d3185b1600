"""What the training report shows, gathered from a model and its test set (no HTML here).

* :func:`model_test_set`: the test set a model was trained with, from its saved settings;
* :func:`dense_layers`: the network's Dense layers, numbered as the notes number them;
* :func:`score_test_set`: the predicted class, its confidence and the misclassified samples;
* :func:`confusion_matrix`: counts of (true, predicted) class pairs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..layers import Dense
from ..losses import BinaryCrossEntropy, CrossEntropy, Loss
from ..network import Network

#: ``(x, y)``: inputs ``(N, d_0)`` and targets ``(N,)`` or ``(N, k)``
Split = tuple[np.ndarray, np.ndarray]


def model_test_set(settings: dict[str, Any], dtype: str, *, limit: int | None = None,
                   data_dir: str | os.PathLike | None = None) -> Split | None:
    """The test set a model was trained with, from its saved settings.

    Args:
        settings: ``metadata["settings"]`` of the model file (the ``train`` flags); may be empty.
        dtype: dtype of the returned inputs (the network's).
        limit: keep the first ``limit`` samples; ``None``: the ``limit`` in ``settings``, if any.
        data_dir: directory of the data set's IDX files (overrides the saved ``data_dir``).

    Returns:
        ``(x, y)``: ``x`` of shape ``(N, d_0)``, ``y`` of shape ``(N,)``; ``None`` when the model
        was trained on a ``--train-file`` without a ``--test-file``.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be a positive integer; got {limit}")
    limit = settings.get("limit") if limit is None else limit
    if settings.get("test_file"):
        x, y = _user_file(Path(settings["test_file"]), settings.get("test_labels"),
                          settings.get("label_column", -1), dtype)
    elif settings.get("train_file"):
        return None
    else:
        data_dir = data_dir if data_dir is not None else settings.get("data_dir")
        x, y = _builtin_test_set(settings.get("dataset") or "mnist", dtype, data_dir)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def _user_file(path: Path, labels: str | None, label_column: int | str, dtype: str) -> Split:
    from .. import datasets

    return datasets.load_file(path, labels=labels, label_column=label_column, dtype=dtype)


def _builtin_test_set(name: str, dtype: str, data_dir: str | os.PathLike | None) -> Split:
    from .. import datasets

    if name == "mnist":
        return datasets.load_mnist(dtype=dtype)[1]
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(dtype=dtype, data_dir=data_dir)[1]
    if name == "kmnist":
        return datasets.load_kmnist(dtype=dtype, data_dir=data_dir)[1]
    raise ConfigError(f"the model's data set {name!r} is unknown; known: mnist, fashion-mnist, kmnist")


def dense_layers(net: Network) -> list[tuple[int, Dense]]:
    """``(index in net.layers, layer)`` of each Dense layer; the notes' l is position + 1."""
    return [(i, layer) for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """``(k, k)`` counts: row = true class, column = predicted class.

    ``labels`` and ``predicted`` are class indices of shape ``(N,)``, each in ``[0, k)``.
    """
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


@dataclass(frozen=True)
class ClassifierScores:
    """A classifier's verdict on a test set of N samples.

    Attributes:
        labels: true classes ``(N,)``.
        predicted: predicted classes ``(N,)``.
        confidence: the predicted class's probability (the cross-entropy losses) or output
            ``aᴸ`` (the others), ``(N,)``.
        n_classes: k, at least 2 (a single binary logit has two classes).
        is_probability: whether ``confidence`` is a probability.
    """

    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    n_classes: int
    is_probability: bool

    @property
    def accuracy(self) -> float:
        """The fraction of samples classified right."""
        return float(np.mean(self.predicted == self.labels))

    @property
    def n_wrong(self) -> int:
        """How many samples are misclassified."""
        return int(np.sum(self.predicted != self.labels))

    def most_confidently_wrong(self, n: int) -> np.ndarray:
        """Indices of up to ``n`` misclassified samples, most confident first (ties: lower index)."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")][:n]


def score_test_set(net: Network, x: np.ndarray, y: np.ndarray, loss: Loss) -> ClassifierScores | None:
    """Classify ``x`` ``(N, d_0)`` against ``y`` (labels ``(N,)`` or one-hot ``(N, k)``);
    ``None`` when ``y`` holds no class labels (regression targets)."""
    from ..training.metrics import class_labels, output_probabilities, predicted_classes

    a = net.predict(x, batch_size=2048)  # (N, k)
    k = a.shape[1]
    labels = class_labels(np.asarray(y), k, loss)
    if labels is None:
        return None
    predicted = predicted_classes(a, loss)
    probs = output_probabilities(a, loss)
    if probs.shape[1] == 1:  # one binary logit: the probability of each class
        probs = np.hstack([1 - probs, probs])
    return ClassifierScores(labels=labels, predicted=predicted,
                      confidence=probs[np.arange(len(predicted)), predicted],
                      n_classes=max(2, k),
                      is_probability=isinstance(loss, (CrossEntropy, BinaryCrossEntropy)))
