"""The network's widths from the data ``train`` is given.

Without ``--layers``, ``train`` builds the default network around the data: its input width is
the number of features per sample, its hidden layers are :data:`DEFAULT_HIDDEN`, and its output
width is the number of classes (the largest label + 1, over the training and test labels), or
the number of target columns; a single binary logit for 0/1 labels with the binary
cross-entropy loss. On MNIST that is ``784,256,256,10``. A ``--layers`` that disagrees with the
data is refused before anything is built, naming both.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..losses import BinaryCrossEntropy, CrossEntropy, Loss

#: the hidden widths of the network ``train`` builds when ``--layers`` is not given
DEFAULT_HIDDEN = (256, 256)

#: ``(targets, where)``: a split's targets and how an error names them (``"--train-file x.csv"``)
Named = tuple[np.ndarray, str]


def as_targets(y: np.ndarray, loss: Loss) -> np.ndarray:
    """Real-valued targets ``(N,)`` (a CSV's float label column) as one output's targets ``(N, 1)``;
    class labels and cross-entropy's targets unchanged (it wants integer labels, and says so)."""
    if y.ndim == 1 and y.dtype.kind == "f" and not isinstance(loss, CrossEntropy):
        return y.reshape(-1, 1)
    return y


def network_widths(layers: list[int] | None, x: np.ndarray, x_where: str, targets: list[Named],
                   loss: Loss, classes: int | None = None) -> list[int]:
    """The widths to build: ``layers`` checked against the data, or the default network's.

    Args:
        layers: the widths of ``--layers``, or ``None`` for the default network.
        x: the training inputs ``(N, d_0)``; ``x_where`` names them in errors.
        targets: the training (and test) targets ``(N,)`` or ``(N, k)``, each with its name.
        loss: the loss the network trains with.
        classes: the number of classes when the data set defines it (the built-in data sets:
            10), so that a ``--limit`` that leaves out a class does not narrow the network.

    Raises:
        ConfigError: ``layers`` starts at another width than the features, or ends in fewer
            outputs than the labels' classes, or in another number than the target columns.
    """
    if x.ndim != 2:
        raise ShapeError(f"{x_where} must hold one sample per row, shape (N, d); got shape {x.shape}")
    if layers is None:
        width = _output_width(targets, loss)
        return [x.shape[1], *DEFAULT_HIDDEN, width if classes is None else max(width, classes)]
    spec = ",".join(map(str, layers))
    if layers[0] != x.shape[1]:
        raise ConfigError(f"--layers {spec} takes {layers[0]} inputs, but {x_where} has "
                          f"{x.shape[1]} features per sample")
    k = layers[-1]
    for y, where in targets:
        if y.ndim == 2 and y.shape[1] != k:
            raise ConfigError(f"--layers {spec} ends in {k} outputs, but the targets of {where} "
                              f"have {y.shape[1]} columns")
        if y.ndim == 1 and y.dtype.kind in "biu" and y.size:
            top = int(y.max())
            binary = k == 1 and isinstance(loss, BinaryCrossEntropy) and top <= 1
            if top >= k and not binary:
                raise ConfigError(f"--layers {spec} ends in {k} output{'s' * (k != 1)}, but the "
                                  f"labels of {where} go up to {top} ({top + 1} classes)")
    return list(layers)


def _output_width(targets: list[Named], loss: Loss) -> int:
    """The classes (largest label + 1, at least 2), the target columns, or 1 (see the module)."""
    y = targets[0][0]
    if y.ndim == 2:
        return int(y.shape[1])
    if y.dtype.kind not in "biu":
        return 1
    top = max((int(t.max()) for t, _ in targets if t.size and t.ndim == 1), default=0)
    if isinstance(loss, BinaryCrossEntropy) and top <= 1:
        return 1
    return max(top + 1, 2)
