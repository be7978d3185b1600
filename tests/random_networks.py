"""Networks of Dense layers, each followed by one activation (or none) named in ACTIVATIONS: what the
compiled engines compute, built the same way by the tests that check them against the NumPy path
(``tests/test_compiled.py``, ``tests/test_engine_split.py``)."""

from __future__ import annotations

import backprop as bp

#: an activation by name, given LeakyReLU's slope; "none": the Dense layer stands alone
ACTIVATIONS = {
    "none": lambda s: None,
    "identity": lambda s: bp.Identity(),
    "sigmoid": lambda s: bp.Sigmoid(),
    "tanh": lambda s: bp.Tanh(),
    "relu": lambda s: bp.ReLU(),
    "leaky_relu": lambda s: bp.LeakyReLU(s),
}


def build(widths, activations, slopes, seed, dtype="float64"):
    """``Dense(widths[i], widths[i + 1])`` then ``ACTIVATIONS[activations[i]](slopes[i])`` for each i."""
    layers = []
    for d_in, d_out, act, slope in zip(widths[:-1], widths[1:], activations, slopes, strict=True):
        layers.append(bp.Dense(d_in, d_out))
        layer = ACTIVATIONS[act](slope)
        if layer is not None:
            layers.append(layer)
    return bp.Network(layers, seed=seed, dtype=dtype)
