"""Argument types shared by the command-line modules (``cli`` and the command modules it loads)."""

from __future__ import annotations

import argparse
import math


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
