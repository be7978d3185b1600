"""The optimizers' boundary checks: hyperparameters, parameter lists, loaded state.

Each check raises a :mod:`backprop.errors` class whose message names the argument,
what was expected and what was given. Nothing here changes an optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import as_array, describe, non_negative_float, positive_float
from ..devices import dtype_kind, numpy_dtype
from ..errors import ConfigError, DTypeError, InvalidValueError, ShapeError


def fraction(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1) (a decay rate or a momentum)."""
    value = non_negative_float(value, name)
    if value >= 1:
        raise InvalidValueError(f"{name} must be in [0, 1); got {value}")
    return value


def positive_or_none(value: Any, name: str) -> float | None:
    """``value`` as a float > 0, or None."""
    return None if value is None else positive_float(value, name)


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool (Python's or NumPy's), refusing anything else."""
    if not isinstance(value, (bool, np.bool_)):
        raise DTypeError(f"{name} must be True or False; got {describe(value)}")
    return bool(value)


def flag_or_none(value: Any, name: str) -> bool | None:
    """``value`` as a bool, or None."""
    if value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise DTypeError(f"{name} must be True, False or None; got {describe(value)}")
    return bool(value)


def check_lists(params: Any, grads: Any) -> None:
    """``params`` and ``grads`` must be lists (or tuples) of arrays, not arrays themselves."""
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, (list, tuple)):
            raise DTypeError(
                f"{name} must be a list of arrays (e.g. net.parameters() and net.gradients()); "
                f"got {describe(value)}"
            )


def check_arrays(params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
    """At the first step: float arrays, writable parameters, matching shapes and dtypes."""
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        for name, a in (("params", p), ("grads", g)):
            dtype = getattr(a, "dtype", None)
            if dtype is None or not hasattr(a, "shape"):
                raise DTypeError(f"{name}[{i}] must be an array; got {describe(a)}")
            if dtype_kind(dtype) != "f":
                raise DTypeError(f"{name}[{i}] must be a float32 or float64 array; got dtype {dtype}")
        if not getattr(getattr(p, "flags", None), "writeable", True):
            raise InvalidValueError(
                f"params[{i}] must be writable (it is updated in place); got a read-only array"
            )
        if g.shape != p.shape:
            raise ShapeError(f"grads[{i}] must have the shape of params[{i}], {p.shape}; got {g.shape}")
        if g.dtype != p.dtype:  # the update would be rounded silently into p's dtype
            raise DTypeError(f"grads[{i}] must have the dtype of params[{i}], {p.dtype}; got {g.dtype}")


def check_shapes(
    params: Sequence[np.ndarray], grads: Sequence[np.ndarray], shapes: tuple[tuple[int, ...], ...]
) -> None:
    """At every step: the lists must have the length and shapes of the first step's."""
    if len(params) != len(shapes):
        raise ShapeError(
            f"params must be the list this optimizer was first stepped with: it had "
            f"{len(shapes)} arrays, now {len(params)}; use a fresh optimizer for other parameters"
        )
    for i, (p, g, shape) in enumerate(zip(params, grads, shapes, strict=True)):
        if p.shape != shape:
            raise ShapeError(
                f"params[{i}] must keep the shape it had at the first step, {shape}; "
                f"got {p.shape} (use a fresh optimizer for other parameters)"
            )
        if g.shape != shape:
            raise ShapeError(f"grads[{i}] must have the shape of params[{i}], {shape}; got {g.shape}")


def check_loaded(buffers: dict[str, list[np.ndarray]], params: Sequence[np.ndarray]) -> None:
    """State from ``load_state_dict`` must fit the parameters of the first step after it."""
    n = len(params)
    for name, arrays in buffers.items():
        if len(arrays) != n:
            raise ShapeError(f"the loaded state has {len(arrays)} {name!r} arrays but params has {n}")
        for i, (a, p) in enumerate(zip(arrays, params, strict=True)):
            if a.shape != p.shape:
                raise ShapeError(
                    f"the loaded state[{name!r}][{i}] must have the shape of params[{i}], "
                    f"{p.shape}; got {a.shape}"
                )
            if numpy_dtype(a.dtype) != numpy_dtype(p.dtype):  # loaded on the host, p maybe on a device
                raise DTypeError(
                    f"the loaded state[{name!r}][{i}] must have the dtype of params[{i}], "
                    f"{p.dtype}; got {a.dtype}"
                )


def steps_taken(state: Any, cls: str) -> int:
    """``state["t"]`` of a state dict made by ``cls.state_dict()``, checked."""
    if not isinstance(state, dict):
        raise DTypeError(f"state must be a dict from {cls}.state_dict(); got {describe(state)}")
    if state.get("optimizer") != cls:
        raise ConfigError(
            f"state['optimizer'] must be {cls!r} (this optimizer's class); got {state.get('optimizer')!r}"
        )
    if "t" not in state:
        raise ConfigError("state must have the key 't' (the number of steps taken)")
    t = state["t"]
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise DTypeError(f"state['t'] must be a non-negative integer; got {describe(t)}")
    if t < 0:
        raise InvalidValueError(f"state['t'] must be a non-negative integer; got {t}")
    return int(t)


def state_buffers(state: dict[str, Any], names: tuple[str, ...], owner: str) -> dict[str, list[np.ndarray]]:
    """Copies of the state arrays ``state[name]`` for ``name`` in ``names``, checked.

    Either every name is present or none is (a state saved before the first step);
    ``owner`` is the optimizer's repr, for the messages.
    """
    expected, given = set(names), set(state) - {"optimizer", "t"}
    if given - expected:
        raise ConfigError(
            f"state has unknown keys {sorted(given - expected)}; {owner} keeps "
            f"{sorted(expected) if expected else 'no state arrays'}"
        )
    if given and given != expected:
        raise ConfigError(f"state lacks the keys {sorted(expected - given)}")
    if not given and expected and state["t"] > 0:
        raise ConfigError(f"state lacks the keys {sorted(expected)} although t = {state['t']}")
    buffers: dict[str, list[np.ndarray]] = {}
    for key in names:
        if key not in given:
            continue
        arrays = state[key]
        if not isinstance(arrays, (list, tuple)):
            raise DTypeError(f"state[{key!r}] must be a list of arrays; got {describe(arrays)}")
        copies = []
        for i, a in enumerate(arrays):
            array = as_array(a, f"state[{key!r}][{i}]")
            if array.dtype.kind != "f":
                raise DTypeError(f"state[{key!r}][{i}] must be a float array; got dtype {array.dtype}")
            copies.append(array.copy())
        buffers[key] = copies
    _check_same_shapes(buffers)
    return buffers


def _check_same_shapes(buffers: dict[str, list[np.ndarray]]) -> None:
    """Every state list must hold arrays of the same shapes, in the same order."""
    shapes, first = None, ""
    for key, arrays in buffers.items():
        these = tuple(a.shape for a in arrays)
        if shapes is None:
            shapes, first = these, key
        elif these != shapes:
            raise ShapeError(
                f"state[{key!r}] must hold arrays of the shapes in state[{first!r}], "
                f"{list(shapes)}; got {list(these)}"
            )
