"""Argument types and range checks shared by the command modules.

The types run inside argparse (a bad value is a usage error, exit 2); the checks run in a
command before it loads or builds anything and raise :class:`~backprop.errors.ConfigError`
naming the flag (also exit 2).
"""

from __future__ import annotations

import argparse
import math
from typing import Any, TypeAlias

from ..errors import ConfigError

#: what each command module's ``register(subparsers)`` receives: ``parser.add_subparsers()``
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def widths(text: str) -> list[int]:
    """``"784,100,10"`` → ``[784, 100, 10]``: at least two positive layer widths."""
    try:
        values = [int(w) for w in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 784,100,10; got {text!r}") from None
    if len(values) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive widths like 784,100,10; got {text!r}")
    return values


def non_negative_floats(text: str) -> list[float]:
    """``"0.05,0.1,0.2"`` → ``[0.05, 0.1, 0.2]``: finite numbers >= 0."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.05,0.1,0.2; got {text!r}") from None
    if not values or any(not (v >= 0 and math.isfinite(v)) for v in values):
        raise argparse.ArgumentTypeError(
            f"expected finite numbers >= 0 like 0.05,0.1,0.2; got {text!r}")
    return values


def seconds(text: str) -> float:
    """``"300"`` → ``300.0``: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds like 300; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0; got {text!r}")
    return value


def require(ok: bool, flag: str, what: str, value: Any) -> None:
    """Raise ``ConfigError("{flag} must be {what}; got {value}")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{flag} must be {what}; got {value}")


def finite(value: float) -> bool:
    """``value`` is neither NaN nor infinite."""
    return math.isfinite(value)


def positive_or_none(flag: str, value: int | None) -> None:
    """An optional count (``--limit``, ``--threads``): ``None`` or an integer >= 1."""
    require(value is None or value >= 1, flag, "a positive integer", value)
