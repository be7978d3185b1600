"""``bp.fit`` (``backprop.distributed.fit``) and ``backprop.training.fit``: one training loop, two
doors. Outside ``mpiexec`` the public one is the one-process loop itself; it takes every
argument of that loop plus ``distributed``, and shows them all in its signature and docstring."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import backprop as bp
from backprop import training


def test_bp_fit_takes_every_argument_of_training_fit_and_distributed():
    public = inspect.signature(bp.fit).parameters
    inner = inspect.signature(training.fit).parameters
    assert list(public) == [*inner, "distributed", "collective_timeout"]
    for name, parameter in inner.items():
        assert public[name].default == parameter.default
    assert public["distributed"].default is None
    assert public["collective_timeout"].default is None
    for name in inner:
        if name not in ("net", "x", "y"):
            assert f"        {name}:" in bp.fit.__doc__  # every argument documented
    assert "        distributed:" in bp.fit.__doc__
    assert "        collective_timeout:" in bp.fit.__doc__


def _net():
    return bp.Network([bp.Dense(3, 4), bp.Tanh(), bp.Dense(4, 2)], seed=1, dtype="float64")


def test_outside_mpiexec_bp_fit_trains_as_training_fit_bit_for_bit():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    a, b = _net(), _net()
    ha = bp.fit(a, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.01), epochs=3, batch_size=8, verbose=False)
    hb = training.fit(b, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=0.01), epochs=3, batch_size=8,
                      verbose=False)
    assert np.array_equal(a.parameter_buffer, b.parameter_buffer)
    assert ha.loss == hb.loss and ha.engine == hb.engine


@pytest.mark.parametrize("distributed", [None, False])
def test_an_unknown_argument_is_a_type_error_naming_it(distributed):
    with pytest.raises(TypeError, match="epoch"):
        bp.fit(_net(), np.zeros((4, 3)), np.zeros(4, int), loss="cross_entropy", epoch=3, distributed=distributed)


def test_distributed_must_be_a_bool_or_none():
    with pytest.raises(bp.errors.DTypeError, match="distributed must be True, False or None"):
        bp.fit(_net(), np.zeros((4, 3)), np.zeros(4, int), loss="cross_entropy", distributed="yes")


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), "60", True])
def test_collective_timeout_must_be_seconds_and_is_checked_in_any_run(timeout):
    with pytest.raises(bp.errors.ConfigError, match="collective_timeout must be a number of seconds > 0"):
        bp.fit(_net(), np.zeros((4, 3)), np.zeros(4, int), loss="cross_entropy", collective_timeout=timeout)
