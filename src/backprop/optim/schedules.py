"""Learning-rate schedules: the learning rate as a function of the step count.

A schedule is a pure function ``schedule(step, base_lr) -> lr``, where ``step``
is the number of optimizer updates done so far (0 for the first update) and
``base_lr`` is the optimizer's ``lr`` argument. It holds no state, so an
optimizer resumes a schedule exactly from its step count ``t`` alone::

    S = bp.schedules
    opt = bp.SGD(lr=0.5, schedule=S.LinearWarmup(100, after=S.CosineDecay(9_900)))
    opt.lr          # the rate the next step will use: schedule(opt.t, 0.5)

Any callable with that signature can serve as a schedule; subclass
:class:`Schedule` to get argument checks in one place and a readable repr.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import describe, non_negative_float, positive_float, positive_int
from ..errors import DTypeError, InvalidValueError

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "LinearWarmup",
]


def _check_step(step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise DTypeError(f"step must be a non-negative integer; got {describe(step)}")
    if step < 0:
        raise InvalidValueError(f"step must be a non-negative integer; got {step}")


def _decay_factor(value: Any, name: str) -> float:
    """``value`` as a float in (0, 1]."""
    value = positive_float(value, name)
    if value > 1:
        raise InvalidValueError(f"{name} must be in (0, 1] (a decay factor); got {value}")
    return value


class Schedule:
    """Base class: maps ``(step, base_lr)`` to the learning rate of that step.

    ``lr = schedule(step, base_lr)``, a pure function of the update number ``step``
    (0 for the first update) and the optimizer's ``lr`` argument. Subclasses implement
    :meth:`__call__` and list their constructor arguments in ``_fields`` (used by the
    repr, equality and hashing).

    Args:
        none here; each subclass takes its own.

    Attributes:
        _fields: the names of the constructor arguments, kept as attributes of the same name.

    Example:
        >>> class Halving(Schedule):          # lr = base_lr / 2^step
        ...     def __call__(self, step, base_lr):
        ...         return base_lr / 2**step
        >>> [Halving()(k, 1.0) for k in range(3)]
        [1.0, 0.5, 0.25]
    """

    _fields: tuple[str, ...] = ()

    def __call__(self, step: int, base_lr: float) -> float:
        """The learning rate for update number ``step`` (0-based) given ``base_lr``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, f) for f in self._fields)))


class Constant(Schedule):
    """``lr = base_lr`` at every step (the same as passing no schedule).

    Args:
        none.

    Attributes:
        none.

    Example:
        >>> [Constant()(k, 0.1) for k in (0, 1, 100)]
        [0.1, 0.1, 0.1]
    """

    def __call__(self, step: int, base_lr: float) -> float:
        _check_step(step)
        return base_lr


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` updates.

    ``lr = base_lr · gamma ** (step // step_size)``

    Args:
        step_size: number of updates between two decays (>= 1).
        gamma: decay factor in (0, 1].

    Attributes:
        step_size, gamma: the arguments.

    Example:
        >>> [StepDecay(3, gamma=0.5)(k, 1.0) for k in range(7)]
        [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
    """

    _fields = ("step_size", "gamma")

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = _decay_factor(gamma, "gamma")

    def __call__(self, step: int, base_lr: float) -> float:
        _check_step(step)
        return base_lr * self.gamma ** (step // self.step_size)


class ExponentialDecay(Schedule):
    """Multiply the rate by ``gamma`` at every update.

    ``lr = base_lr · gamma ** step``

    Args:
        gamma: decay factor in (0, 1].

    Attributes:
        gamma: the argument.

    Example:
        >>> [ExponentialDecay(0.5)(k, 2.0) for k in range(3)]
        [2.0, 1.0, 0.5]
    """

    _fields = ("gamma",)

    def __init__(self, gamma: float) -> None:
        self.gamma = _decay_factor(gamma, "gamma")

    def __call__(self, step: int, base_lr: float) -> float:
        _check_step(step)
        return base_lr * self.gamma**step


class CosineDecay(Schedule):
    """Half a cosine from ``base_lr`` down to ``min_lr`` over ``total_steps`` updates.

    ``lr = min_lr + (base_lr − min_lr) · (1 + cos(π · step / total_steps)) / 2``
    for ``step < total_steps``, and ``lr = min_lr`` from then on
    (Loshchilov & Hutter 2017, without restarts). ``min_lr`` should not exceed
    the optimizer's ``lr``; if it does the curve rises instead of falling.

    Args:
        total_steps: length of the decay in updates (>= 1).
        min_lr: the final learning rate (>= 0).

    Attributes:
        total_steps, min_lr: the arguments.

    Example:
        >>> [round(CosineDecay(4, min_lr=0.2)(k, 1.0), 6) for k in range(6)]
        [1.0, 0.882843, 0.6, 0.317157, 0.2, 0.2]
    """

    _fields = ("total_steps", "min_lr")

    def __init__(self, total_steps: int, min_lr: float = 0.0) -> None:
        self.total_steps = positive_int(total_steps, "total_steps")
        self.min_lr = non_negative_float(min_lr, "min_lr")

    def __call__(self, step: int, base_lr: float) -> float:
        _check_step(step)
        if step >= self.total_steps:
            return self.min_lr
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.total_steps))
        return self.min_lr + (base_lr - self.min_lr) * cosine


class LinearWarmup(Schedule):
    """Ramp the rate up linearly over ``warmup_steps`` updates, then hand over to ``after``.

    ``lr = base_lr · (step + 1) / warmup_steps`` for ``step < warmup_steps``
    (so the first update uses ``base_lr / warmup_steps`` and update number
    ``warmup_steps − 1`` uses the full ``base_lr``); from then on
    ``lr = after(step − warmup_steps, base_lr)``, i.e. ``after`` sees its step
    counted from the end of the warm-up, or ``lr = base_lr`` if ``after`` is None.

    Args:
        warmup_steps: length of the ramp in updates (>= 1).
        after: the schedule that follows the warm-up (a :class:`Schedule` or any
            callable ``(step, base_lr) -> lr``), or None for a constant rate.

    Attributes:
        warmup_steps, after: the arguments.

    Example:
        >>> [LinearWarmup(4)(k, 1.0) for k in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
        >>> [LinearWarmup(2, after=StepDecay(1, 0.5))(k, 1.0) for k in range(5)]
        [0.5, 1.0, 1.0, 0.5, 0.25]
    """

    _fields = ("warmup_steps", "after")

    def __init__(self, warmup_steps: int, after: Schedule | None = None) -> None:
        self.warmup_steps = positive_int(warmup_steps, "warmup_steps")
        if after is not None and not callable(after):
            raise DTypeError(
                "after must be a Schedule (a callable (step, base_lr) -> lr) or None; "
                f"got {describe(after)}"
            )
        self.after = after

    def __call__(self, step: int, base_lr: float) -> float:
        _check_step(step)
        if step < self.warmup_steps:
            return base_lr * (step + 1) / self.warmup_steps
        if self.after is None:
            return base_lr
        return self.after(step - self.warmup_steps, base_lr)
