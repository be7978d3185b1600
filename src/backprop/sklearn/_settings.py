"""The estimators' settings, checked when ``fit`` starts (never in ``__init__``), into a frozen
:class:`Settings`; and the rules that turn them into backprop objects (network, optimizer).

Every refused setting raises :class:`~backprop.errors.ConfigError` (a ``ValueError``) naming the
parameter, what it must be and what it is, as scikit-learn's parameter validation does.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..activations import ACTIVATIONS
from ..errors import ConfigError
from ..layers import Dense, Dropout, Layer
from ..network import Network
from ..optim import SGD, Adam, AdamW, Optimizer, RMSprop

#: the solvers: scikit-learn's three, and backprop's RMSprop and AdamW
SOLVERS = ("lbfgs", "sgd", "adam", "rmsprop", "adamw")
STOCHASTIC_SOLVERS = ("sgd", "adam", "rmsprop", "adamw")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn's activation names that backprop spells differently
ACTIVATION_ALIASES = {"logistic": "sigmoid"}
#: hidden activations that get He initialisation; the others get Glorot
RELU_LIKE = ("relu", "leaky_relu", "elu", "gelu")


@dataclass(frozen=True)
class Settings:
    """The checked settings of one ``fit`` / ``partial_fit`` call (names as the parameters)."""

    hidden_layer_sizes: tuple[int, ...]
    activations: tuple[str, ...]
    solver: str
    alpha: float
    batch_size: int | None  # None: "auto"
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    shuffle: bool
    tol: float
    verbose: bool
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: float  # an integer, or math.inf
    max_fun: int
    dropout: float
    dtype: np.dtype | None  # None: follow the input (float32 stays, the rest becomes float64)

    @property
    def stochastic(self) -> bool:
        return self.solver in STOCHASTIC_SOLVERS

    def batch_rows(self, n: int) -> int:
        """Rows per mini-batch for ``n`` training rows: ``"auto"`` is ``min(200, n)``; a larger
        ``batch_size`` is clipped to ``n`` (the caller warns)."""
        return min(200, n) if self.batch_size is None else min(self.batch_size, n)


def _refuse(name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{name} must be {expected}; got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _real(est: Any, name: str, low: float, high: float = math.inf, *, low_open: bool = False,
          high_open: bool = True) -> float:
    """The setting ``name`` of ``est`` as a finite float in the interval given."""
    value = getattr(est, name)
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise _refuse(name, f"a number in {left}{low}, {high}{right}", value)
    return float(value)


def _positive_int(est: Any, name: str) -> int:
    value = getattr(est, name)
    if not (_is_int(value) and value >= 1):
        raise _refuse(name, "a positive integer", value)
    return int(value)


def _flag(est: Any, name: str) -> bool:
    value = getattr(est, name)
    if not isinstance(value, (bool, np.bool_)):
        raise _refuse(name, "True or False", value)
    return bool(value)


def _hidden_layer_sizes(value: Any) -> tuple[int, ...]:
    sizes = (value,) if _is_int(value) else value
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise _refuse("hidden_layer_sizes", "a tuple of positive integers, e.g. (100,)", value) from None
    if not all(_is_int(h) and h >= 1 for h in sizes):
        raise _refuse("hidden_layer_sizes", "a tuple of integers > 0", value)
    return tuple(int(h) for h in sizes)


def _activations(value: Any, n_hidden: int) -> tuple[str, ...]:
    names = [value] * n_hidden if isinstance(value, str) else list(value)
    if len(names) != n_hidden:
        raise ConfigError(f"activation must be one name, or a list of one name per hidden layer "
                          f"({n_hidden}); got {len(names)} names: {value!r}")
    known = sorted(set(ACTIVATIONS) | set(ACTIVATION_ALIASES))
    out = []
    for name in names:
        name = ACTIVATION_ALIASES.get(name, name) if isinstance(name, str) else name
        if name not in ACTIVATIONS:
            raise _refuse("activation", f"one of {known}", name)
        out.append(name)
    return tuple(out)


def _dtype(value: Any) -> np.dtype | None:
    if value is None:
        return None
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in ("float32", "float64"):
        raise _refuse("dtype", "None, 'float32' or 'float64'", value)
    return dtype


def check_settings(est: Any) -> Settings:
    """Check every shared setting of ``est`` (an ``MLPClassifier`` or ``MLPRegressor``)."""
    hidden = _hidden_layer_sizes(est.hidden_layer_sizes)
    for name, allowed in (("solver", SOLVERS), ("learning_rate", LEARNING_RATES)):
        if getattr(est, name) not in allowed:
            raise _refuse(name, f"one of {list(allowed)}", getattr(est, name))
    batch_size = est.batch_size
    if not (batch_size == "auto" or (_is_int(batch_size) and batch_size >= 1)):
        raise _refuse("batch_size", "'auto' or a positive integer", batch_size)
    n_iter_no_change = est.n_iter_no_change
    if not ((_is_int(n_iter_no_change) and n_iter_no_change >= 1) or n_iter_no_change == math.inf):
        raise _refuse("n_iter_no_change", "a positive integer or numpy.inf", n_iter_no_change)
    verbose = est.verbose
    if not (isinstance(verbose, (bool, np.bool_)) or (_is_int(verbose) and verbose >= 0)):
        raise _refuse("verbose", "True, False or an integer >= 0", verbose)
    return Settings(
        hidden_layer_sizes=hidden, activations=_activations(est.activation, len(hidden)),
        solver=est.solver, alpha=_real(est, "alpha", 0.0),
        batch_size=None if batch_size == "auto" else int(batch_size), learning_rate=est.learning_rate,
        learning_rate_init=_real(est, "learning_rate_init", 0.0, low_open=True),
        power_t=_real(est, "power_t", 0.0), max_iter=_positive_int(est, "max_iter"),
        shuffle=_flag(est, "shuffle"), tol=_real(est, "tol", 0.0), verbose=bool(verbose),
        warm_start=_flag(est, "warm_start"),
        # scikit-learn allows momentum = 1; backprop's SGD needs μ < 1 (1 never forgets a gradient)
        momentum=_real(est, "momentum", 0.0, 1.0), nesterovs_momentum=_flag(est, "nesterovs_momentum"),
        early_stopping=_flag(est, "early_stopping"),
        validation_fraction=_real(est, "validation_fraction", 0.0, 1.0),
        beta_1=_real(est, "beta_1", 0.0, 1.0), beta_2=_real(est, "beta_2", 0.0, 1.0),
        epsilon=_real(est, "epsilon", 0.0, low_open=True),
        n_iter_no_change=float(n_iter_no_change), max_fun=_positive_int(est, "max_fun"),
        dropout=_real(est, "dropout", 0.0, 1.0), dtype=_dtype(est.dtype),
    )


def build_network(s: Settings, n_features: int, n_outputs: int, output: Layer | None, seed: int,
                  dtype: np.dtype) -> Network:
    """``[Dense(d_0, h_1), f_1, (Dropout), ..., Dense(h_m, n_outputs), (output)]``: ReLU-like
    hidden layers He-initialised, the others (and the output layer) Glorot-initialised."""
    layers: list[Layer] = []
    d_in = n_features
    for width, name in zip(s.hidden_layer_sizes, s.activations, strict=True):
        init = "he_uniform" if name in RELU_LIKE else "glorot_uniform"
        layers += [Dense(d_in, width, init=init), ACTIVATIONS[name]()]
        if s.dropout:
            layers.append(Dropout(s.dropout))
        d_in = width
    layers.append(Dense(d_in, n_outputs, init="glorot_uniform"))
    if output is not None:
        layers.append(output)
    return Network(layers, seed=seed, dtype=dtype)


class LearningRate:
    """scikit-learn's ``learning_rate`` schedules as backprop's ``schedule=`` (a callable
    ``(t, base_lr) -> lr``): the rate is :attr:`value`, which the epoch loop changes at the end
    of an epoch ("invscaling": ``learning_rate_init / (t_ + 1)^power_t``; "adaptive": divided
    by 5 after ``n_iter_no_change`` epochs without improvement).

    Args:
        value: the starting rate, ``learning_rate_init``.
    """

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, t: int, base_lr: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"LearningRate({self.value!r})"


def scales_gradients(s: Settings) -> bool:
    """Whether the rate must enter through the gradients rather than the optimizer: SGD with
    momentum under a changing rate. scikit-learn's velocity ``v ← μ v − η_t g`` carries each
    step's own rate; backprop's ``v ← μ v + g; w ← w − η v`` would apply a new rate to the old
    velocity. With ``η = 1`` and the gradient scaled by ``η_t`` the two are the same."""
    return s.solver == "sgd" and s.momentum > 0 and s.learning_rate != "constant"


def make_optimizer(s: Settings, rate: LearningRate) -> Optimizer:
    """The backprop optimizer for ``s.solver`` (never "lbfgs"). ``alpha`` is not given to it:
    the gradient hook adds scikit-learn's per-batch ``alpha·W/Σw`` (see ``_hook``)."""
    if s.solver == "sgd":
        nesterov = s.nesterovs_momentum and s.momentum > 0
        if scales_gradients(s):
            return SGD(lr=1.0, momentum=s.momentum, nesterov=nesterov)
        schedule = None if s.learning_rate == "constant" else rate
        return SGD(lr=s.learning_rate_init, momentum=s.momentum, nesterov=nesterov, schedule=schedule)
    if s.solver == "rmsprop":
        return RMSprop(lr=s.learning_rate_init, eps=s.epsilon)
    kind = AdamW if s.solver == "adamw" else Adam
    return kind(lr=s.learning_rate_init, beta1=s.beta_1, beta2=s.beta_2, eps=s.epsilon, weight_decay=0.0)
