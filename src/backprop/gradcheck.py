"""Central finite differences against backprop: the check that the maths is right.

For a scalar ``θ`` among the parameters or the inputs,
``∂C/∂θ ≈ (C(θ + ε) − C(θ − ε)) / 2ε`` with an error of order ε², computed in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import float_input, positive_float, positive_int
from .losses import Loss, get_loss
from .network import Network


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a − b‖₂ / max(‖a‖₂, ‖b‖₂)``, and 0 when both are zero."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - b)) / scale


@dataclass
class GradcheckResult:
    """Per parameter (``"0.W"``, ``"0.b"``, ...) and for the input (``"x"``): the relative
    error ``‖g_bp − g_fd‖ / max(‖g_bp‖, ‖g_fd‖)`` and the largest absolute difference,
    over the entries checked."""

    rel_errors: dict[str, float] = field(default_factory=dict)
    abs_errors: dict[str, float] = field(default_factory=dict)
    entries_checked: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        """The largest relative error of all."""
        return max(self.rel_errors.values(), default=0.0)

    def __repr__(self) -> str:
        rows = [f"  {name:>8}: rel {self.rel_errors[name]:.2e}  abs {self.abs_errors[name]:.2e}"
                f"  ({self.entries_checked[name]} entries)" for name in self.rel_errors]
        return "GradcheckResult(\n" + "\n".join(rows) + f"\n  worst rel {self.worst:.2e}\n)"


def central_difference(cost: Callable[[], float], array: np.ndarray, index: tuple[int, ...],
                       eps: float = 1e-5) -> float:
    """``(C(θ + ε) − C(θ − ε)) / 2ε`` for the entry ``θ = array[index]``: ``cost()`` is evaluated
    with the entry moved by ±ε in place, which is then restored exactly."""
    saved = array[index]
    array[index] = saved + eps
    plus = cost()
    array[index] = saved - eps
    minus = cost()
    array[index] = saved
    return (plus - minus) / (2.0 * eps)


def _entries(shape: tuple[int, ...], max_entries: int | None, rng: np.random.Generator) -> list[tuple[int, ...]]:
    every = list(np.ndindex(*shape))
    if max_entries is None or len(every) <= max_entries:
        return every
    chosen = rng.choice(len(every), size=max_entries, replace=False)
    return [every[i] for i in sorted(chosen)]


def gradcheck(net: Network, loss: Loss | str, x: Any, y: Any, *, eps: float = 1e-5,
              max_entries: int | None = None, seed: int = 0) -> GradcheckResult:
    """Compare backprop's gradients with central differences, in float64.

    Args:
        net: the network (a float64 copy is checked; ``net`` is left untouched).
        loss: a :class:`~backprop.Loss` or its name.
        x: inputs ``(N, d_0)``; y: targets for ``loss``.
        eps: the step ε (1e-5 balances the ε² truncation error against float64 rounding of
            the cost, about 1e-16·|C|/ε per entry).
        max_entries: check at most this many randomly chosen entries of each parameter
            and of ``x`` (``None``: all of them).
        seed: seed of that choice.

    Returns:
        :class:`GradcheckResult`, keyed ``"0.W"``, ``"0.b"``, ..., ``"x"``. Dropout is off
        (inference mode), so the cost is a deterministic function of the parameters.
    """
    loss = get_loss(loss)
    eps = positive_float(eps, "eps")
    if max_entries is not None:
        max_entries = positive_int(max_entries, "max_entries")
    net64 = net.astype("float64")
    x64 = float_input(x, "x", net.dtype, net.input_width).astype(np.float64)
    t = loss.prepare(y, net64.predict(x64).shape, np.dtype(np.float64))  # (N, d_L)

    def cost() -> float:
        return loss.value_unchecked(net64.forward_unchecked(x64), t)

    a = net64.forward_unchecked(x64)
    grad_x = net64.backward_unchecked(loss.grad_unchecked(a, t))
    analytic = {name: g.copy() for (name, _), g in zip(net64.named_parameters(), net64.gradients(), strict=True)}
    analytic["x"] = grad_x
    arrays = dict(net64.named_parameters())
    arrays["x"] = x64

    rng = np.random.default_rng(seed)
    result = GradcheckResult()
    for name, array in arrays.items():
        index = _entries(array.shape, max_entries, rng)
        numeric = np.array([central_difference(cost, array, i, eps) for i in index])
        exact = np.array([analytic[name][i] for i in index])
        result.rel_errors[name] = relative_error(exact, numeric)
        result.abs_errors[name] = float(np.max(np.abs(exact - numeric))) if index else 0.0
        result.entries_checked[name] = len(index)
    return result
