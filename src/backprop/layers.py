"""Layers: the ``Layer`` protocol, ``Dense`` and ``Dropout``, each with its forward and backward side by side.

The activation layers are in :mod:`backprop.activations`.

Shapes follow DESIGN.md: a batch is a matrix of **rows**, ``x`` of shape ``(N, d_in)``.
Every layer has

* ``forward(x, train=False)``: computes the output and keeps what ``backward`` needs;
* ``backward(grad)``: takes dC/d(output), shape ``(N, d_out)``, sets ``self.grads``
  (for layers with parameters) and returns dC/d(input), shape ``(N, d_in)``;
* ``predict(x)``: the same values as ``forward`` but keeps nothing (thread-safe);
* ``predict_unchecked(x, out)``: ``predict(x)`` written into the caller's array ``out``
  (:meth:`Network.predict <backprop.Network.predict>` passes arrays it reuses from chunk to chunk);
* ``parameter_shapes()``: the shapes of its parameters; a :class:`~backprop.Network` lays
  them out in its one parameter buffer and binds ``params``/``grads`` to views into it.

``forward`` and ``backward`` are the training hot path: they write into workspace
arrays the layer owns (allocated once per batch shape, see ``_workspace.py``), so
the array they return is valid until the layer's next call with the same batch
size. :class:`~backprop.Network`'s public ``forward``/``backward`` return copies;
``predict`` always returns a fresh array. Inputs are never modified.
* ``config()``: the constructor's keyword arguments, for model files.

Every array function is called through :func:`~backprop.devices.ops_of` (the library of the
arrays given: NumPy, CuPy, PyTorch, array-api-strict), and work arrays are made with
``_buffer(..., like=x)``: in ``x``'s library, on ``x``'s device.

Equations cite the three notes the library implements by number, as ``docs/math.md`` does:
(000) Ashby Thorpe, *Notes on Neural Networks*; (001) *Derivatives of all layers*;
(002) *Single parameter derivatives*.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import positive_int
from ._workspace import Workspace
from .devices import from_host, numpy_dtype, ops_of
from .errors import ConfigError, ShapeError
from .init import get_initializer


class Layer(Workspace):
    """Base class of all layers. Subclasses override ``predict``, ``forward`` and ``backward``."""

    #: parameters by name (``"W"``, ``"b"``); empty for layers without parameters
    params: dict[str, np.ndarray]
    #: dC/d(parameter) from the last ``backward``, same shapes as ``params``
    grads: dict[str, np.ndarray]

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter by name, in order (``{}``: none). A
        :class:`~backprop.Network` binds ``params`` and ``grads`` to views of these shapes
        into its buffers before it calls :meth:`reset_parameters`."""
        return {}

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Draw this layer's parameters (into the bound ``params``) and random state; called by
        :class:`~backprop.Network`. No-op by default."""

    def output_width(self, d_in: int | None) -> int | None:
        """The width of this layer's output given its input width (``None``: unknown)."""
        return d_in

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_unchecked(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``predict(x)`` written into ``out``, an array of the output's shape ``(N, d_out)``
        that does not overlap ``x``, and returned; a layer whose output is its input returns
        ``x`` itself and leaves ``out`` alone. This default copies ``predict``'s result."""
        ops_of(x).copyto(out, self.predict(x))
        return out

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this layer: ``type(layer)(**layer.config())``."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    r"""A fully connected layer: ``Z = A Wᵀ + b``.

    Per sample this is seed 000's ``z^l = W^l a^{l-1} + b^l``; over a batch of rows
    it is the transpose of seed 001's column form ``Z = Wᵀ A`` (seed 001 stores the
    transposed matrix, of shape ``(d_in, d_out)``).

    Backward, with ``Δ = dC/dZ`` of shape ``(N, d_out)``:

    * ``dW = Δᵀ A``      (seed 000 ``∇_W C = δ (a^{l-1})ᵀ``, summed over the batch; seed 001
      ``∂J/∂W = A (E)ᵀ`` in its transposed layout; seed 002 ``∂C/∂w = ∂C/∂z · (a^{L-1})ᵀ``)
    * ``db = Σ_n δ_n``    (seed 001 ``∂J/∂b = Σ_n e_n``)
    * ``dA = Δ W``        (seed 002's "cost for previous layer" ``(w^L)ᵀ · ∂C/∂a^L`` per sample;
      seed 000's ``(W^l)ᵀ δ^l``)

    Args:
        d_in: input width (``in_features``).
        d_out: output width (``out_features``).
        init: name of the initializer in :mod:`backprop.init` (default ``"glorot_uniform"``).

    Shape:
        input ``(N, d_in)`` → output ``(N, d_out)``.

    Attributes:
        params["W"]: ``(d_out, d_in)``; params["b"]: ``(d_out,)``, drawn by ``init`` when the
        layer joins a :class:`~backprop.Network` (until then ``params`` is empty).

    Example:
        >>> net = bp.Network([bp.Dense(3, 2)], seed=0)
        >>> net.layers[0].params["W"].shape
        (2, 3)
    """

    def __init__(self, d_in: int, d_out: int, *, init: str = "glorot_uniform") -> None:
        super().__init__()
        self.d_in = positive_int(d_in, "d_in")
        self.d_out = positive_int(d_out, "d_out")
        get_initializer(init)  # fail now, not when the network is built
        self.init = init
        self._x: np.ndarray | None = None
        #: Δ = dC/dZ from the last backward, shape (N, d_out)
        self.last_delta: np.ndarray | None = None

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.d_out, self.d_in), "b": (self.d_out,)}

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        W, b = get_initializer(self.init)(rng, self.d_in, self.d_out, dtype)
        if "W" not in self.params:  # not bound into a Network's buffers: arrays of its own
            self.params = {"W": np.empty_like(W), "b": np.empty_like(b)}
            self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self.params["W"][...] = W
        self.params["b"][...] = b

    def output_width(self, d_in: int | None) -> int:
        if d_in is not None and d_in != self.d_in:
            raise ShapeError(f"Dense({self.d_in}, {self.d_out}) takes inputs of width {self.d_in}; "
                             f"the layer before it outputs width {d_in}")
        return self.d_out

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.params["W"].T  # Z = A Wᵀ + b
        z += self.params["b"]
        return z

    def predict_unchecked(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        ops_of(x).matmul(x, self.params["W"].T, out=out)  # Z = A Wᵀ + b
        out += self.params["b"]
        return out

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._x = x  # A^{l-1}, kept for dW = Δᵀ A
        z = self._buffer("z", (x.shape[0], self.d_out), x.dtype, x)
        ops_of(x).matmul(x, self.params["W"].T, out=z)  # Z = A Wᵀ + b
        z += self.params["b"]
        return z

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> np.ndarray | None:  # type: ignore[override]
        """Set ``grads`` from ``grad = Δ = dC/dZ`` and return ``dC/dA = Δ W`` (or ``None``
        when ``input_grad`` is false, which skips one matrix product for the first layer)."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        self.last_delta = grad  # Δ, for diagnostics (fit's record_grad_norms)
        ops = ops_of(grad)
        ops.matmul(grad.T, self._x, out=self.grads["W"])     # dW = Δᵀ A
        ops.sum(grad, axis=0, out=self.grads["b"])           # db = Σ_n δ_n
        if not input_grad:
            return None
        dx = self._buffer("dx", self._x.shape, grad.dtype, grad)
        return ops.matmul(grad, self.params["W"], out=dx)    # dA = Δ W

    def config(self) -> dict[str, Any]:
        return {"d_in": self.d_in, "d_out": self.d_out, "init": self.init}

    def __repr__(self) -> str:
        return f"Dense({self.d_in}, {self.d_out}, init={self.init!r})"


class Dropout(Layer):
    """Inverted dropout: while training, zero each unit with probability ``rate`` and scale
    the survivors by ``1/(1 − rate)``; at inference the identity.

    Backward multiplies by the same mask: ``dC/dx = dC/da ⊙ m``.

    Args:
        rate: probability of dropping a unit, in [0, 1).

    Shape: input ``(N, d)`` → output ``(N, d)``.

    In a data-parallel run (:mod:`backprop.distributed`) each process holds a share of the
    global batch; :meth:`share` makes it draw the mask of the whole global batch, as one
    process would, and keep its own rows.
    """

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        number = isinstance(rate, (int, float, np.integer, np.floating))
        if isinstance(rate, (bool, np.bool_)) or not number or not 0.0 <= rate < 1.0:  # NaN too
            raise ConfigError(f"rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None
        self._share: tuple[int, int] | None = None  # (rows of the global batch, first row of ours)

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        # an independent stream, drawn from the network's seed
        self.rng = np.random.default_rng(rng.integers(2**63))

    def predict(self, x):
        return x

    def predict_unchecked(self, x, out):
        return x  # the identity at inference: nothing to write

    def forward(self, x, train=False):
        if not train or self.rate == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError("Dropout needs a random generator: put it in a Network first")
        keep = 1.0 - self.rate
        rows, start = (x.shape[0], 0) if self._share is None else self._share
        dtype = numpy_dtype(x.dtype)  # drawn on the host: the same mask on every device
        draws = self._buffer("mask", (rows, x.shape[1]), dtype)
        self.rng.random(dtype=dtype, out=draws)      # u ~ U[0, 1), for every row of the batch
        mask = draws[start:start + x.shape[0]]        # the rows of this input
        np.less(mask, keep, out=mask)                 # 1[u < 1 − p]
        mask *= 1.0 / keep                            # m = 1[u < 1 − p] / (1 − p)
        self._mask = from_host(mask, x)               # NumPy: the same array; else one copy to x's device
        return ops_of(x).multiply(x, self._mask, out=self._buffer("a", x.shape, x.dtype, x))

    def share(self, rows: int | None, start: int = 0) -> None:
        """Draw the next masks for a global batch of ``rows`` rows, of which the input holds
        rows ``start:start + N`` (``rows=None``: the input is the whole batch, the default).

        Every process of a data-parallel run draws the same ``(rows, d)`` uniforms from the
        same generator, so each keeps exactly the mask rows one process would give its samples.
        """
        self._share = None if rows is None else (int(rows), int(start))

    def backward(self, grad):
        if self._mask is None:
            return grad
        return ops_of(grad).multiply(grad, self._mask, out=self._buffer("dx", grad.shape, grad.dtype, grad))

    def config(self):
        return {"rate": self.rate}
