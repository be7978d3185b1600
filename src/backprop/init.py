"""Initializers for the weights ``W`` (shape ``(d_out, d_in)``) and biases ``b`` (``(d_out,)``).

Each initializer is a function ``(rng, d_in, d_out, dtype) -> (W, b)`` drawing from
the NumPy ``Generator`` it is given, so the same network seed gives the same
weights. fan_in = d_in, fan_out = d_out.

==================  ===========================================  ===================
name                W                                            b
==================  ===========================================  ===================
``normal``          N(0, 1)  (Nielsen ch. 1, ``network.py``)     N(0, 1)
``normal_fan_in``   N(0, 1/fan_in)  (Nielsen ch. 3, LeCun)       N(0, 1)
``glorot_uniform``  U(±sqrt(6/(fan_in+fan_out)))                 0
``glorot_normal``   N(0, 2/(fan_in+fan_out))                     0
``he_normal``       N(0, 2/fan_in)                               0
``he_uniform``      U(±sqrt(6/fan_in))                           0
``uniform_fan_in``  U(±1/sqrt(fan_in))  (PyTorch ``nn.Linear``)  U(±1/sqrt(fan_in))
==================  ===========================================  ===================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._validation import canonical_name
from .errors import ConfigError

#: ``(W, b)``: shapes ``(d_out, d_in)`` and ``(d_out,)``
WB = tuple[np.ndarray, np.ndarray]
Initializer = Callable[[np.random.Generator, int, int, np.dtype], WB]


def _normal(rng: np.random.Generator, std: float, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(dtype)


def _uniform(rng: np.random.Generator, limit: float, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return rng.uniform(-limit, limit, shape).astype(dtype)


def normal(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """The textbook's standard normal for weights and biases (Nielsen, chapter 1)."""
    return _normal(rng, 1.0, (d_out, d_in), dtype), _normal(rng, 1.0, (d_out,), dtype)


def normal_fan_in(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """W ~ N(0, 1/fan_in), b ~ N(0, 1): Nielsen's chapter-3 ``default_weight_initializer``."""
    return _normal(rng, 1.0 / np.sqrt(d_in), (d_out, d_in), dtype), _normal(rng, 1.0, (d_out,), dtype)


def glorot_uniform(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """Glorot & Bengio (2010): W ~ U(±sqrt(6/(fan_in+fan_out))), b = 0."""
    limit = np.sqrt(6.0 / (d_in + d_out))
    return _uniform(rng, limit, (d_out, d_in), dtype), np.zeros(d_out, dtype)


def glorot_normal(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """Glorot & Bengio (2010): W ~ N(0, 2/(fan_in+fan_out)), b = 0."""
    return _normal(rng, np.sqrt(2.0 / (d_in + d_out)), (d_out, d_in), dtype), np.zeros(d_out, dtype)


def he_normal(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """He et al. (2015), for ReLU layers: W ~ N(0, 2/fan_in), b = 0."""
    return _normal(rng, np.sqrt(2.0 / d_in), (d_out, d_in), dtype), np.zeros(d_out, dtype)


def he_uniform(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """He et al. (2015), uniform form: W ~ U(±sqrt(6/fan_in)), b = 0."""
    return _uniform(rng, np.sqrt(6.0 / d_in), (d_out, d_in), dtype), np.zeros(d_out, dtype)


def uniform_fan_in(rng: np.random.Generator, d_in: int, d_out: int, dtype: np.dtype) -> WB:
    """PyTorch's ``nn.Linear`` default: W, b ~ U(±1/sqrt(fan_in))."""
    limit = 1.0 / np.sqrt(d_in)
    return _uniform(rng, limit, (d_out, d_in), dtype), _uniform(rng, limit, (d_out,), dtype)


INITIALIZERS: dict[str, Initializer] = {
    "normal": normal,
    "normal_fan_in": normal_fan_in,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "uniform_fan_in": uniform_fan_in,
}


def get_initializer(name: str) -> Initializer:
    """The initializer called ``name`` (``"he_uniform"`` or ``"he-uniform"``, see
    :func:`backprop._validation.canonical_name`); :class:`ConfigError` lists the known names otherwise."""
    try:
        return INITIALIZERS[canonical_name(name)]
    except (KeyError, TypeError):
        raise ConfigError(
            f"init must be one of {sorted(INITIALIZERS)}; got {name!r}"
        ) from None
