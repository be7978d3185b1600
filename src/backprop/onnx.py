"""Export a :class:`~backprop.Network` to ONNX, for inference in ONNX Runtime and elsewhere.

The exported graph has one input ``"x"`` of shape ``(N, d_0)`` and one output ``"y"`` of
shape ``(N, d_L)``, both of the network's dtype, with a dynamic batch dimension ``"N"``;
it computes :meth:`Network.predict <backprop.Network.predict>` (inference: ``Dropout`` is
the identity). Each layer becomes the ONNX operator(s) that compute the same function:

=============  =========================================================================
``Dense``      ``Gemm(x, W, b, transB=1)``: ``W`` is stored ``(d_out, d_in)``, as in backprop
``Sigmoid``    ``Sigmoid``
``Tanh``       ``Tanh``
``ReLU``       ``Relu``
``LeakyReLU``  ``LeakyRelu(alpha=slope)``        (float64: ``Where(x > 0, x, slope·x)``)
``ELU``        ``Elu(alpha)``                    (float64: ``Where(x > 0, x, α(eˣ − 1))``)
``Softplus``   ``Softplus``                      (float64: ``max(x, 0) + log(1 + e^{−|x|})``)
``GELU``       float32 and opset ≥ 20: ``Gelu(approximate="tanh")``; otherwise
               ``½x(1 + tanh(√(2/π)(x + 0.044715x³)))`` written with ``Mul``/``Add``/``Tanh``
``Softmax``    ``Softmax(axis=1)``
``Identity``   ``Identity``
``Dropout``    ``Identity`` (inference)
=============  =========================================================================

ONNX Runtime's CPU provider has no double-precision kernels for ``Elu``, ``Softplus`` and
(from opset 16) ``LeakyRelu``, so a float64 network writes those three with primitive
operators that it does run in double; the values are the same functions. Its double
``Gelu`` kernel runs but is accurate to only about 1e-8, so float64 GELU is composed too.

Layers are matched by exact type: a user subclass of, say, ``Sigmoid`` may compute something
else, so it is refused like any layer kind without an export.

``onnx`` is imported only when :func:`export` runs (``pip install 'backprop[onnx]'``).
"""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import write_atomically
from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .devices import to_numpy
from .errors import ConfigError, MissingDependencyError
from .layers import Dense, Dropout, Layer
from .network import Network

#: the opset written by default: read by every ONNX Runtime from 1.13 on (GELU is composed)
DEFAULT_OPSET = 17
#: the oldest opset written (opset 13 gave ``Softmax`` its per-axis meaning)
MIN_OPSET = 13
#: the first opset with a ``Gelu`` operator (``approximate="tanh"`` included)
GELU_OPSET = 20
#: the constants of the tanh-form GELU, as in :class:`~backprop.GELU`: √(2/π) and 0.044715
_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def _import(name: str) -> Any:
    """The top-level package ``name`` (never this module: the import is absolute)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(f"backprop.onnx.export needs the {name!r} package: "
                          "pip install 'backprop[onnx]'") from None


class _GraphBuilder:
    """Collects the nodes and initializers of one graph, naming tensors uniquely."""

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype) -> None:
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._constants: dict[float, str] = {}

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def tensor(self, name: str, value: np.ndarray) -> str:
        """An initializer holding a copy of ``value`` in the graph's dtype."""
        array = np.ascontiguousarray(value, dtype=self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name=name))
        return name

    def constant(self, value: float) -> str:
        """A scalar initializer (shared by every node that uses the same value)."""
        if value not in self._constants:
            self._constants[value] = self.tensor(f"const_{len(self._constants)}",
                                                 np.array(value, dtype=self.dtype))
        return self._constants[value]


# ------------------------------------------------------------------ one function per layer kind
# Each takes (builder, layer, input name, output name, layer prefix, opset) and adds nodes
# computing the layer's predict from the input tensor into the output tensor.

def _dense(g: _GraphBuilder, layer: Dense, x: str, y: str, p: str, opset: int) -> None:
    W = g.tensor(f"{p}.W", to_numpy(layer.params["W"]))  # (d_out, d_in), a host copy
    b = g.tensor(f"{p}.b", to_numpy(layer.params["b"]))  # (d_out,)
    g.node("Gemm", [x, W, b], y, p, transB=1)  # Z = A Wᵀ + b


def _unary(op: str, **attrs: Callable[[Layer], Any]) -> Callable[..., None]:
    def emit(g: _GraphBuilder, layer: Layer, x: str, y: str, p: str, opset: int) -> None:
        g.node(op, [x], y, p, **{k: get(layer) for k, get in attrs.items()})
    return emit


def _positive(g: _GraphBuilder, x: str, p: str) -> str:
    """The boolean tensor ``x > 0``."""
    return g.node("Greater", [x, g.constant(0.0)], f"{p}/positive", f"{p}/positive")


def _leaky_relu(g: _GraphBuilder, layer: LeakyReLU, x: str, y: str, p: str, opset: int) -> None:
    if g.dtype == np.float32:
        g.node("LeakyRelu", [x], y, p, alpha=layer.slope)
        return
    scaled = g.node("Mul", [x, g.constant(layer.slope)], f"{p}/scaled", f"{p}/scaled")
    g.node("Where", [_positive(g, x, p), x, scaled], y, p)  # x if x > 0 else αx


def _elu(g: _GraphBuilder, layer: ELU, x: str, y: str, p: str, opset: int) -> None:
    if g.dtype == np.float32:
        g.node("Elu", [x], y, p, alpha=layer.alpha)
        return
    neg = g.node("Min", [x, g.constant(0.0)], f"{p}/min0", f"{p}/min0")  # no overflow in eˣ
    exp = g.node("Exp", [neg], f"{p}/exp", f"{p}/exp")
    em1 = g.node("Sub", [exp, g.constant(1.0)], f"{p}/expm1", f"{p}/expm1")
    scaled = g.node("Mul", [em1, g.constant(layer.alpha)], f"{p}/scaled", f"{p}/scaled")
    g.node("Where", [_positive(g, x, p), x, scaled], y, p)  # x if x > 0 else α(eˣ − 1)


def _softplus(g: _GraphBuilder, layer: Softplus, x: str, y: str, p: str, opset: int) -> None:
    if g.dtype == np.float32:
        g.node("Softplus", [x], y, p)
        return
    # log(1 + eˣ) = max(x, 0) + log(1 + e^{−|x|}): never overflows
    relu = g.node("Relu", [x], f"{p}/relu", f"{p}/relu")
    absx = g.node("Abs", [x], f"{p}/abs", f"{p}/abs")
    nabs = g.node("Neg", [absx], f"{p}/neg", f"{p}/neg")
    exp = g.node("Exp", [nabs], f"{p}/exp", f"{p}/exp")
    one_p = g.node("Add", [exp, g.constant(1.0)], f"{p}/1p", f"{p}/1p")
    log = g.node("Log", [one_p], f"{p}/log", f"{p}/log")
    g.node("Add", [relu, log], y, p)


def _gelu(g: _GraphBuilder, layer: GELU, x: str, y: str, p: str, opset: int) -> None:
    if opset >= GELU_OPSET and g.dtype == np.float32:
        g.node("Gelu", [x], y, p, approximate="tanh")
        return
    # ½ x (1 + tanh u),  u = √(2/π)(x + 0.044715 x³)
    x2 = g.node("Mul", [x, x], f"{p}/x2", f"{p}/x2")
    x3 = g.node("Mul", [x2, x], f"{p}/x3", f"{p}/x3")
    kx3 = g.node("Mul", [x3, g.constant(_GELU_K)], f"{p}/kx3", f"{p}/kx3")
    inner = g.node("Add", [x, kx3], f"{p}/inner", f"{p}/inner")
    u = g.node("Mul", [inner, g.constant(_GELU_C)], f"{p}/u", f"{p}/u")
    t = g.node("Tanh", [u], f"{p}/tanh", f"{p}/tanh")
    one_p = g.node("Add", [t, g.constant(1.0)], f"{p}/1p", f"{p}/1p")
    half_x = g.node("Mul", [x, g.constant(0.5)], f"{p}/half_x", f"{p}/half_x")
    g.node("Mul", [half_x, one_p], y, p)


#: layer type -> the function that writes its ONNX nodes
EXPORTERS: dict[type[Layer], Callable[..., None]] = {
    Dense: _dense,
    Sigmoid: _unary("Sigmoid"),
    Tanh: _unary("Tanh"),
    ReLU: _unary("Relu"),
    LeakyReLU: _leaky_relu,
    ELU: _elu,
    Softplus: _softplus,
    GELU: _gelu,
    Softmax: _unary("Softmax", axis=lambda layer: 1),  # over each row of (N, d)
    Identity: _unary("Identity"),
    Dropout: _unary("Identity"),  # inference: dropout is the identity
}


def _check_opset(opset: Any, onnx: Any) -> int:
    newest = int(onnx.defs.onnx_opset_version())
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest this "
                          f"onnx package knows); got {opset!r}")
    return int(opset)


def to_model(net: Network, *, opset: int = DEFAULT_OPSET) -> Any:
    """The ONNX ``ModelProto`` of ``net`` (what :func:`export` writes), checked by
    ``onnx.checker.check_model``. See the module docstring for the operators used.

    Raises:
        ConfigError: a layer kind without an ONNX export (the message names it), or a bad opset.
    """
    if not isinstance(net, Network):
        raise ConfigError(f"net must be a backprop Network; got {type(net).__name__}")
    for i, layer in enumerate(net.layers):  # before importing anything
        if type(layer) not in EXPORTERS:
            raise ConfigError(
                f"cannot export layer {i}, {type(layer).__name__}, to ONNX: it has no ONNX "
                f"export (exportable kinds: {', '.join(k.__name__ for k in EXPORTERS)})")
    onnx = _import("onnx")
    opset = _check_opset(opset, onnx)
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    from ._version import __version__

    g = _GraphBuilder(helper, numpy_helper, net.dtype)
    current = "x"
    for i, layer in enumerate(net.layers):
        out = "y" if i == len(net.layers) - 1 else f"h{i}"
        EXPORTERS[type(layer)](g, layer, current, out, f"{i}_{type(layer).__name__}", opset)
        current = out

    elem = helper.np_dtype_to_tensor_dtype(net.dtype)
    d_in = net.input_width if net.input_width is not None else "d"
    d_out = net.output_width if net.output_width is not None else d_in  # no Dense: shape kept
    graph = helper.make_graph(
        g.nodes, "backprop_network",
        inputs=[helper.make_tensor_value_info("x", elem, ["N", d_in])],
        outputs=[helper.make_tensor_value_info("y", elem, ["N", d_out])],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="backprop", producer_version=__version__,
        doc_string=f"backprop.Network exported by backprop {__version__}: y = net.predict(x)",
        # the oldest IR version that holds this opset: readable by the most runtimes
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    helper.set_model_props(model, {"backprop.architecture": json.dumps(net.config()),
                                   "backprop.dtype": net.dtype.name,
                                   "backprop.seed": str(net.seed)})
    onnx.checker.check_model(model, full_check=True)  # also runs strict shape inference
    return model


def export(net: Network, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``net`` as an ONNX model to ``path`` (conventionally ``*.onnx``), atomically.

    Running the file computes ``net.predict``: input ``"x"`` ``(N, d_0)`` → output ``"y"``
    ``(N, d_L)``, in the network's dtype, any batch size ``N``::

        bp.onnx.export(net, "model.onnx")
        sess = onnxruntime.InferenceSession("model.onnx")
        y = sess.run(["y"], {"x": x.astype(net.dtype)})[0]   # ≈ net.predict(x)

    Args:
        net: the network; every layer must be of a kind in :data:`EXPORTERS`.
        path: the file to write (its directory must exist).
        opset: the ONNX opset, from :data:`MIN_OPSET` to the newest the installed ``onnx``
            knows (default :data:`DEFAULT_OPSET`; from 20, a float32 ``GELU`` is ONNX's own
            ``Gelu``).

    Returns:
        the path written, as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: a layer kind without an ONNX export (the message names it), or a bad opset.
        ImportError: ``onnx`` is not installed.
    """
    model = to_model(net, opset=opset)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot export to {str(path)!r}: directory "
                                f"{str(path.parent)!r} does not exist")
    data = model.SerializeToString()

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    return write_atomically(path, write)
