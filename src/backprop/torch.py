"""Convert between a :class:`~backprop.Network` and a PyTorch ``nn.Sequential``.

Both libraries store a fully connected layer the same way: ``W`` of shape
``(d_out, d_in)`` and ``b`` of shape ``(d_out,)``, computing ``Z = A Wᵀ + b`` on a batch of
rows ``A`` of shape ``(N, d_in)``; so a network converts layer for layer, with copied weights:

==========================  ============================================================
backprop                    PyTorch
==========================  ============================================================
``Dense(d_in, d_out)``      ``nn.Linear(d_in, d_out)`` (``bias=False`` is read as ``b = 0``)
``Sigmoid()``               ``nn.Sigmoid()``
``Tanh()``                  ``nn.Tanh()``
``ReLU()``                  ``nn.ReLU()``
``LeakyReLU(slope)``        ``nn.LeakyReLU(negative_slope=slope)``
``ELU(alpha)``              ``nn.ELU(alpha)``
``Softplus()``              ``nn.Softplus(beta=1, threshold=40)``: see below
``GELU()``                  ``nn.GELU(approximate="tanh")`` (not the exact, erf form)
``Softmax()``               ``nn.Softmax(dim=1)`` (``dim=-1`` is read too)
``Identity()``              ``nn.Identity()``
``Dropout(rate)``           ``nn.Dropout(p=rate)``
==========================  ============================================================

``nn.Softplus`` returns ``x`` itself above ``threshold``, off by at most ``e^{−threshold}``
from ``log(1 + eˣ)``; at 40 that is below the rounding of ``x`` in float64, so
:func:`to_torch` writes ``threshold=40`` and the two agree. :func:`from_torch` accepts any
``threshold ≥ 20`` (PyTorch's default).

PyTorch is imported only inside the functions (``pip install 'backprop[torch]'``): importing
``backprop`` or this module never imports it. (This module is ``backprop.torch``; it reaches
PyTorch by an absolute import of the top-level ``torch`` package.)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .devices import to_numpy
from .errors import ConfigError, DTypeError, MissingDependencyError
from .layers import Dense, Dropout, Layer
from .network import Network

if TYPE_CHECKING:  # for annotations only; at run time torch is imported by _torch()
    import torch

#: the ``threshold`` that :func:`to_torch` gives ``nn.Softplus`` (see the module docstring)
SOFTPLUS_THRESHOLD = 40.0
#: the smallest ``nn.Softplus`` threshold that :func:`from_torch` accepts
MIN_SOFTPLUS_THRESHOLD = 20.0

_TORCH_DTYPES = {"float32": "float32", "float64": "float64"}


def _torch() -> Any:
    """The top-level ``torch`` package, imported on first use."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise MissingDependencyError("backprop.torch needs PyTorch: pip install 'backprop[torch]'") from None


# ---------------------------------------------------------------------------- to PyTorch
def to_torch(net: Network) -> torch.nn.Sequential:
    """``net`` as a ``torch.nn.Sequential`` of the same dtype, with copies of its weights.

    ``model(x)`` for a tensor ``x`` of shape ``(N, d_0)`` equals ``net.predict(x)``, shape
    ``(N, d_L)``. The model is returned in evaluation mode, as ``predict`` (dropout off);
    call ``model.train()`` to train it with dropout. Its parameters are independent of
    ``net``'s: changing one changes nothing in the other.

    Example:
        >>> model = bp.torch.to_torch(net)   # Sequential(Linear, Sigmoid, ...)
        >>> y = model(torch.from_numpy(x)).detach().numpy()   # == net.predict(x)

    Raises:
        ConfigError: ``net`` holds a layer kind with no PyTorch equivalent (named in the message).
    """
    if not isinstance(net, Network):
        raise ConfigError(f"net must be a backprop Network; got {type(net).__name__}")
    for i, layer in enumerate(net.layers):
        if type(layer) not in _TO_TORCH:  # exact type: a subclass may compute something else
            raise ConfigError(
                f"cannot convert layer {i}, {type(layer).__name__}, to PyTorch: it has no PyTorch "
                f"equivalent (convertible kinds: {', '.join(k.__name__ for k in _TO_TORCH)})")
    torch = _torch()
    dtype = getattr(torch, _TORCH_DTYPES[net.dtype.name])
    modules = [_TO_TORCH[type(layer)](torch.nn, layer, dtype) for layer in net.layers]
    return torch.nn.Sequential(*modules).eval()


def _linear(nn: Any, layer: Dense, dtype: Any) -> Any:
    torch = _torch()
    # skip_init: no random initial weights drawn (and the caller's torch RNG left alone)
    linear = torch.nn.utils.skip_init(nn.Linear, layer.d_in, layer.d_out, bias=True, dtype=dtype)
    W, b = (np.ascontiguousarray(to_numpy(layer.params[k])) for k in ("W", "b"))  # host copies: (d_out, d_in), (d_out,)
    with torch.no_grad():  # copies: the module owns its parameters
        linear.weight.copy_(torch.from_numpy(W))
        linear.bias.copy_(torch.from_numpy(b))
    return linear


_TO_TORCH: dict[type[Layer], Any] = {
    Dense: _linear,
    Sigmoid: lambda nn, layer, dtype: nn.Sigmoid(),
    Tanh: lambda nn, layer, dtype: nn.Tanh(),
    ReLU: lambda nn, layer, dtype: nn.ReLU(),
    LeakyReLU: lambda nn, layer, dtype: nn.LeakyReLU(negative_slope=layer.slope),
    ELU: lambda nn, layer, dtype: nn.ELU(alpha=layer.alpha),
    Softplus: lambda nn, layer, dtype: nn.Softplus(beta=1.0, threshold=SOFTPLUS_THRESHOLD),
    GELU: lambda nn, layer, dtype: nn.GELU(approximate="tanh"),
    Softmax: lambda nn, layer, dtype: nn.Softmax(dim=1),
    Identity: lambda nn, layer, dtype: nn.Identity(),
    Dropout: lambda nn, layer, dtype: nn.Dropout(p=layer.rate),
}


# -------------------------------------------------------------------------- from PyTorch
def _flatten(module: Any, nn: Any, where: str) -> Iterator[tuple[str, Any]]:
    """``(path, module)`` for every module of nested ``nn.Sequential``, in order."""
    for name, child in module.named_children():
        path = f"{where}[{name}]"
        if isinstance(child, nn.Sequential):
            yield from _flatten(child, nn, path)
        else:
            yield path, child


def _layer(module: Any, nn: Any, where: str) -> Layer:
    """The backprop layer computing what ``module`` computes (weights copied later)."""
    kind = type(module)
    name = f"{where} ({kind.__name__})"
    if kind is nn.Linear:
        return Dense(module.in_features, module.out_features)
    if kind in (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Identity):
        return {nn.Sigmoid: Sigmoid, nn.Tanh: Tanh, nn.ReLU: ReLU, nn.Identity: Identity}[kind]()
    if kind is nn.LeakyReLU:
        return LeakyReLU(module.negative_slope)
    if kind is nn.ELU:
        return ELU(module.alpha)
    if kind is nn.Softplus:
        if module.beta != 1:
            raise ConfigError(f"{name}: nn.Softplus(beta={module.beta}) computes "
                              "log(1 + e^(βx))/β; backprop's Softplus is log(1 + eˣ), beta=1 only")
        if module.threshold < MIN_SOFTPLUS_THRESHOLD:
            raise ConfigError(f"{name}: nn.Softplus(threshold={module.threshold}) returns x for "
                              f"x > {module.threshold}, visibly not log(1 + eˣ); backprop's "
                              f"Softplus needs threshold >= {MIN_SOFTPLUS_THRESHOLD:g}")
        return Softplus()
    if kind is nn.GELU:
        if module.approximate != "tanh":
            raise ConfigError(f"{name}: nn.GELU(approximate={module.approximate!r}) is the exact "
                              "GELU x·Φ(x) (with erf); backprop's GELU is the tanh approximation: "
                              "use nn.GELU(approximate='tanh')")
        return GELU()
    if kind is nn.Softmax:
        if module.dim not in (1, -1):
            raise ConfigError(f"{name}: nn.Softmax(dim={module.dim}); backprop's Softmax "
                              "normalises each row of (N, d): dim=1 or dim=-1 only")
        return Softmax()
    if kind is nn.Dropout:
        if not 0.0 <= module.p < 1.0:
            raise ConfigError(f"{name}: nn.Dropout(p={module.p}); backprop's Dropout takes a rate "
                              "in [0, 1)")
        return Dropout(module.p)
    raise ConfigError(
        f"{name}: unsupported module {kind.__module__}.{kind.__qualname__}; from_torch reads "
        "nn.Sequential of nn.Linear, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, "
        "nn.Softplus(beta=1), nn.GELU(approximate='tanh'), nn.Softmax(dim=1), nn.Identity, "
        "nn.Dropout (exactly those classes: a subclass may compute something else)")


def from_torch(module: torch.nn.Module, *, dtype: Any = None, seed: int | None = None) -> Network:
    """A :class:`~backprop.Network` computing what ``module`` computes, with copied weights.

    ``net.predict(x)`` for ``x`` of shape ``(N, d_0)`` equals ``module.eval()(x)``, shape
    ``(N, d_L)``; and ``from_torch(to_torch(net))`` predicts bitwise as ``net`` does.

    Args:
        module: an ``nn.Sequential`` of the modules in the module docstring's table (nested
            ``nn.Sequential`` are flattened), or one such module alone. An ``nn.Linear``
            without bias becomes a ``Dense`` whose ``b`` is zero (the same function).
        dtype: ``"float32"`` or ``"float64"``; ``None`` (default): the dtype of the module's
            parameters (float32 when it has none). Parameters are cast to it.
        seed: the network's seed (its Dropout stream); ``None``: fresh entropy.

    Raises:
        ConfigError: an unsupported module or setting, named with its place in ``module``
            (e.g. ``nn.GELU(approximate="none")``, ``nn.Softplus(beta=2)``).
        DTypeError: ``dtype=None`` and the parameters are neither float32 nor float64, or
            of mixed dtypes.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise ConfigError(f"module must be a torch.nn.Sequential; got {type(module).__name__}")
    if isinstance(module, nn.Sequential):
        modules = list(_flatten(module, nn, "module"))
    else:
        modules = [("module", module)]
    if not modules:
        raise ConfigError("module is an empty nn.Sequential: a network needs at least one layer")
    layers = [_layer(m, nn, where) for where, m in modules]

    params = [p for _, m in modules for p in m.parameters(recurse=False)]
    if dtype is None:
        found = sorted({str(p.dtype).removeprefix("torch.") for p in params})
        if len(found) > 1:
            raise DTypeError(f"the module's parameters have mixed dtypes {found}; pass dtype=")
        if found and found[0] not in _TORCH_DTYPES:
            raise DTypeError(f"the module's parameters are {found[0]}; backprop computes in "
                             "float32 or float64: pass dtype='float32' or 'float64' to cast them")
        dtype = found[0] if found else "float32"
    net = Network(layers, seed=seed, dtype=dtype)  # checks dtype and the widths
    torch_dtype = getattr(torch, _TORCH_DTYPES[net.dtype.name])

    def array(t: Any) -> np.ndarray:
        return t.detach().to(device="cpu", dtype=torch_dtype).numpy()

    for (_, m), layer in zip(modules, net.layers, strict=True):
        if isinstance(layer, Dense):
            layer.params["W"][...] = array(m.weight)  # (d_out, d_in), as nn.Linear.weight
            layer.params["b"][...] = 0.0 if m.bias is None else array(m.bias)  # (d_out,)
    return net
