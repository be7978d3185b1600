"""The benchmark's configurations (C1..C4, their ``predict`` and float64 variants), their FLOP
counts, the data a run gets, and the sizes of a ``--quick`` run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError

#: --quick: steps per epoch are chosen so that an epoch costs about this many FLOPs ...
QUICK_FLOP_BUDGET = 4e9
#: ... within these bounds; and this many test images
QUICK_STEPS, QUICK_TEST = (4, 30), 1000


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: a network, its loss and optimizer, a batch size, a dtype.

    ``output="sigmoid"`` means a sigmoid output layer under the quadratic cost
    ``mean_n ½‖a_n − y_n‖²`` (one-hot targets); ``output="logits"`` means softmax
    cross-entropy on logits. ``task="predict"`` times inference on the test images.

    Args:
        name: the name the command line and the report use (``"C3-f64"``).
        widths: the Dense layers' widths ``(d_0, d_1, ..., d_L)``; ``d_0 = 784``.
        hidden: the hidden activation, ``"sigmoid"`` or ``"relu"``.
        output: ``"sigmoid"`` (quadratic cost) or ``"logits"`` (softmax cross-entropy).
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: the learning rate η.
        batch_size: samples per step (training) or unused (``predict``).
        momentum: SGD's momentum (0: plain SGD).
        dtype: ``"float32"`` or ``"float64"``.
        init: backprop's weight initialisation, by name.
        task: ``"train"`` or ``"predict"``.

    Example:
        >>> CONFIGS["C1"].loss
        'quadratic'
    """

    name: str
    widths: tuple[int, ...]
    hidden: str             # "sigmoid" | "relu"
    output: str             # "sigmoid" (quadratic cost) | "logits" (softmax cross-entropy)
    optimizer: str          # "sgd" | "adam"
    lr: float
    batch_size: int
    momentum: float = 0.0
    dtype: str = "float32"
    init: str = "he_uniform"
    task: str = "train"     # "train" | "predict"

    @property
    def loss(self) -> str:
        """The loss's name: ``"quadratic"`` under a sigmoid output, else ``"cross_entropy"``."""
        return "quadratic" if self.output == "sigmoid" else "cross_entropy"

    def describe(self) -> str:
        """One line for the report: network, output and cost, optimizer, batch, init, dtype."""
        net = f"[{','.join(map(str, self.widths))}] {self.hidden}"
        if self.task == "predict":
            return f"{net}: predict on the test images, {self.dtype}"
        out = ("sigmoid output, quadratic cost" if self.output == "sigmoid"
               else "softmax cross-entropy")
        opt = (f"Adam lr={self.lr:g}" if self.optimizer == "adam" else
               f"SGD η={self.lr:g}" + (f" momentum {self.momentum:g}" if self.momentum else ""))
        return f"{net}, {out}, {opt}, batch {self.batch_size}, init {self.init}, {self.dtype}"


_C3 = Config("C3", (784, 256, 256, 10), "relu", "logits", "adam", lr=1e-3, batch_size=128)
_C4 = Config("C4", (784, 2048, 2048, 10), "relu", "logits", "sgd", lr=0.01, momentum=0.9,
             batch_size=256)
#: the benchmark configurations, in the order they run
CONFIGS: dict[str, Config] = {c.name: c for c in (
    Config("C1", (784, 30, 10), "sigmoid", "sigmoid", "sgd", 3.0, 10, init="normal"),
    Config("C2", (784, 100, 10), "sigmoid", "logits", "sgd", 0.5, 10, init="normal_fan_in"),
    _C3,
    _C4,
    replace(_C3, name="C3-predict", task="predict"),
    replace(_C4, name="C4-predict", task="predict"),
    replace(_C3, name="C3-f64", dtype="float64"),
    replace(_C4, name="C4-f64", dtype="float64"),
)}


@dataclass
class Data:
    """What every framework trains and tests on in one configuration.

    Attributes:
        x: training inputs, shape ``(N, 784)``, the configuration's dtype.
        y: training labels, shape ``(N,)``, integers 0..9.
        x_test: test inputs, shape ``(N_test, 784)``.
        y_test: test labels, shape ``(N_test,)``.
    """

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def macs(widths: Sequence[int]) -> int:
    """Multiply-adds of one sample's forward pass through the Dense layers: ``Σ d_in·d_out``."""
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def flops(config: Config, n_samples: int, epochs: int = 1) -> int:
    """The nominal FLOPs of a run: ``6·N·Σ d_in·d_out`` per training epoch (forward 2, backward
    4 per multiply-add), ``2·N·Σ d_in·d_out`` for one inference pass over N samples."""
    if config.task == "predict":
        return 2 * n_samples * macs(config.widths)
    return 6 * n_samples * macs(config.widths) * epochs


def executed_flops(config: Config, n_samples: int, epochs: int = 1) -> int:
    """:func:`flops` less the first layer's ``dC/dx = Δ W`` (``2·N·d_0·d_1`` per epoch), which
    neither backprop (``input_grad=False``) nor PyTorch (the input needs no gradient) computes."""
    if config.task == "predict":
        return flops(config, n_samples)
    w = config.widths
    return flops(config, n_samples, epochs) - 2 * n_samples * w[0] * w[1] * epochs


def quick_sizes(config: Config, n_train: int, n_test: int) -> tuple[int, int]:
    """(training samples, test samples) of a --quick run: a few dozen steps at most."""
    if config.task == "predict":
        return n_train, min(n_test, QUICK_TEST)
    per_step = flops(config, config.batch_size)
    steps = int(min(max(QUICK_FLOP_BUDGET // per_step, QUICK_STEPS[0]), QUICK_STEPS[1]))
    return min(n_train, steps * config.batch_size), min(n_test, QUICK_TEST)


def parse_configs(text: str) -> list[Config]:
    """``"C1,C3-f64"`` (case-insensitive; ``"all"``) → the configurations, in the order given."""
    names = {k.lower(): k for k in CONFIGS}
    chosen = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.lower() == "all":
            chosen += list(CONFIGS.values())
        elif part.lower() in names:
            chosen.append(CONFIGS[names[part.lower()]])
        else:
            raise ConfigError(f"--configs: unknown configuration {part!r}; known: "
                              f"{', '.join(CONFIGS)} (or all)")
    if not chosen:
        raise ConfigError("--configs: name at least one configuration")
    return list(dict.fromkeys(chosen))
