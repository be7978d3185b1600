"""Names that flags and config files take, as people type them.

Losses, activations, optimizers, initializers and schedules are keyed in the library with
underscores (``cross_entropy``, ``leaky_relu``, ``he_uniform``); command lines spell words
with hyphens (``--dataset fashion-mnist``). The command line accepts both spellings
(:func:`backprop._validation.canonical_name` reads ``-`` as ``_``) and shows one: hyphens, in
``--help`` and in every error message that lists the known names. What a command passes on to
the library, and what a model file stores, is the library's key.
"""

from __future__ import annotations

import argparse

from .._validation import canonical_name
from ..activations import ACTIVATIONS
from ..builders import OPTIMIZERS, SCHEDULES
from ..errors import ConfigError
from ..init import INITIALIZERS
from ..losses import LOSSES

#: the names each setting takes, by its argparse destination (train, gradcheck and explain
#: share ``loss`` and ``activation``); library keys, listed in the order shown
NAMES: dict[str, tuple[str, ...]] = {
    "loss": tuple(sorted(LOSSES)),
    "activation": tuple(sorted(ACTIVATIONS)),
    "output_activation": ("auto", "none", *sorted(ACTIVATIONS)),
    "init": tuple(sorted(INITIALIZERS)),
    "optimizer": tuple(sorted(OPTIMIZERS)),
    "schedule": tuple(SCHEDULES),
}


def spelled(key: str) -> str:
    """A library key as the command line shows it: ``"cross_entropy"`` → ``"cross-entropy"``."""
    return key.replace("_", "-")


def listing(dest: str) -> str:
    """``"binary-cross-entropy, cross-entropy, huber, quadratic"``: the names ``dest`` takes."""
    return ", ".join(spelled(k) for k in NAMES[dest])


def resolve(dest: str, value: object, where: str) -> str:
    """The library key that ``value`` names, for the setting ``dest``.

    Args:
        dest: a key of :data:`NAMES` (``"loss"``, ``"init"``, ...).
        value: what was typed: ``"cross-entropy"`` or ``"cross_entropy"``.
        where: how the error names the setting: ``"--loss"``, or ``"--config: loss in f.toml"``.

    Raises:
        ConfigError: ``value`` is not a string or names nothing; the message lists the known
        names with hyphens.
    """
    key = canonical_name(value)
    if not isinstance(key, str) or key not in NAMES[dest]:
        raise ConfigError(f"{where} must be one of {listing(dest)}; got {value!r}")
    return key


def resolve_args(args: argparse.Namespace, *dests: str) -> None:
    """Replace each name setting ``dests`` of ``args`` by its library key (see :func:`resolve`)."""
    for dest in dests:
        flag = "--" + dest.replace("_", "-")
        setattr(args, dest, resolve(dest, getattr(args, dest), flag))
