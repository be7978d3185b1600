"""Networks, optimizers and schedules built from plain settings (names and numbers).

The command line and config files speak in settings such as
``layers=[784, 100, 10], activation="relu", optimizer="adam"``; these functions
turn them into objects, refusing unknown names with the list of known ones. Every name
is read through :func:`backprop._validation.canonical_name`, so ``"leaky-relu"`` and
``"leaky_relu"``, ``"he-uniform"`` and ``"he_uniform"`` name the same thing; what is built
(and saved in a model file) carries the registries' spelling, with underscores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._validation import canonical_name, describe, positive_int
from .activations import ACTIVATIONS, activation
from .errors import ConfigError
from .layers import Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, CrossEntropy, Huber, Loss
from .network import Network
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop
from .optim import schedules as S

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}
SCHEDULES = ("constant", "step", "exponential", "cosine")


def default_output_activation(loss: Loss) -> str:
    """``"none"`` (logits) for the cross-entropy losses, which take logits; ``"identity"`` for
    Huber (regression); ``"sigmoid"`` for the quadratic cost, as in the textbook."""
    if isinstance(loss, (CrossEntropy, BinaryCrossEntropy)):
        return "none"
    if isinstance(loss, Huber):
        return "identity"
    return "sigmoid"


def build_network(
    widths: Sequence[int],
    *,
    activation_name: str = "relu",
    output_activation: str = "none",
    init: str = "he_uniform",
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    seed: int | None = 0,
    dtype: str = "float32",
) -> Network:
    """``[d_0, d_1, ..., d_L]`` → ``Dense(d_0, d_1), act, [Dropout], ..., Dense(d_{L-1}, d_L), [out act]``.

    ``output_activation="none"`` leaves the last Dense layer's output as it is (logits).
    The Dense layers hold ``W`` ``(d_l, d_{l-1})`` and ``b`` ``(d_l,)``, drawn by ``init``.
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise ConfigError(f"layers must list at least two widths, e.g. [784, 100, 10]; got {describe(widths)}")
    widths = [positive_int(w, f"layers[{i}]") for i, w in enumerate(widths)]
    if canonical_name(output_activation) not in ("none", *ACTIVATIONS):
        raise ConfigError(f"output_activation must be 'none' or one of {sorted(ACTIVATIONS)}; "
                          f"got {output_activation!r}")
    output_activation, init = canonical_name(output_activation), canonical_name(init)
    activation(activation_name)  # validate the name before building anything
    layers: list[Layer] = []
    if input_dropout:
        layers.append(Dropout(input_dropout))
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(Dense(d_in, d_out, init=init))
        if i < len(widths) - 2:
            layers.append(activation(activation_name))
            if dropout:
                layers.append(Dropout(dropout))
    if output_activation != "none":
        layers.append(activation(output_activation))
    return Network(layers, seed=seed, dtype=dtype)


def build_schedule(name: str, *, total_steps: int, steps_per_epoch: int, warmup_epochs: float = 0.0,
                   step_epochs: int = 10, gamma: float = 0.1, min_lr: float = 0.0) -> S.Schedule | None:
    """A learning-rate schedule over ``total_steps`` optimizer steps, with epochs converted to steps.

    ``"step"`` multiplies by ``gamma`` every ``step_epochs`` epochs; ``"exponential"`` by ``gamma``
    every epoch; ``"cosine"`` decays to ``min_lr`` over the run. ``warmup_epochs`` > 0 prepends
    a linear warm-up.
    """
    if canonical_name(name) not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {list(SCHEDULES)}; got {name!r}")
    name = canonical_name(name)
    warmup = int(round(warmup_epochs * steps_per_epoch))
    main: S.Schedule | None
    if name == "constant":
        main = None
    elif name == "step":
        main = S.StepDecay(step_epochs * steps_per_epoch, gamma)
    elif name == "exponential":
        main = S.ExponentialDecay(gamma ** (1.0 / steps_per_epoch))
    else:
        main = S.CosineDecay(max(total_steps - warmup, 1), min_lr=min_lr)
    if warmup > 0:
        return S.LinearWarmup(warmup, after=main)
    return main


def build_optimizer(name: str, *, lr: float, momentum: float = 0.0, nesterov: bool = False,
                    weight_decay: float = 0.0, clip_norm: float | None = None,
                    max_norm: float | None = None, schedule: S.Schedule | None = None) -> Optimizer:
    """An optimizer by name (one of :data:`OPTIMIZERS`)."""
    if canonical_name(name) not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}")
    name = canonical_name(name)
    common: dict[str, Any] = {"weight_decay": weight_decay, "clip_norm": clip_norm,
                              "max_norm": max_norm, "schedule": schedule}
    if name == "sgd":
        return SGD(lr=lr, momentum=momentum, nesterov=nesterov, **common)
    if name == "rmsprop":
        if nesterov:
            raise ConfigError("nesterov applies to sgd only, not rmsprop")
        return RMSprop(lr=lr, momentum=momentum, **common)
    if momentum or nesterov:
        raise ConfigError(f"momentum and nesterov apply to sgd and rmsprop, not {name}")
    return OPTIMIZERS[name](lr=lr, **common)
