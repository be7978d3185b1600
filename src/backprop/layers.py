"""Layers: ``Dense`` and the activation layers, each with its forward and backward side by side.

Shapes follow DESIGN.md: a batch is a matrix of **rows**, ``x`` of shape ``(N, d_in)``.
Every layer has

* ``forward(x, train=False)``: computes the output and keeps what ``backward`` needs;
* ``backward(grad)``: takes dC/d(output), shape ``(N, d_out)``, sets ``self.grads``
  (for layers with parameters) and returns dC/d(input), shape ``(N, d_in)``;
* ``predict(x)``: the same values as ``forward`` but keeps nothing (thread-safe);
* ``predict_into(x, out)``: ``predict(x)`` written into the caller's array ``out``
  (:meth:`Network.predict <backprop.Network.predict>` passes arrays it reuses from chunk to chunk);

``forward`` and ``backward`` are the training hot path: they write into workspace
arrays the layer owns (allocated once per batch shape, see ``_workspace.py``), so
the array they return is valid until the layer's next call with the same batch
size. :class:`~backprop.Network`'s public ``forward``/``backward`` return copies;
``predict`` always returns a fresh array. Inputs are never modified.
* ``config()``: the constructor's keyword arguments, for model files.

Equations cite the notes in ``../shared/seeds``: (000) Thorpe's notes, (001)
"Derivatives of all layers", (002) "Single parameter derivatives"; see docs/math.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import finite_float, positive_int
from ._workspace import Workspace
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

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """(Re)create this layer's arrays; called by :class:`~backprop.Network`. No-op by default."""

    def output_width(self, d_in: int | None) -> int | None:
        """The width of this layer's output given its input width (``None``: unknown)."""
        return d_in

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_into(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``predict(x)`` written into ``out``, an array of the output's shape ``(N, d_out)``
        that does not overlap ``x``, and returned; a layer whose output is its input returns
        ``x`` itself and leaves ``out`` alone. This default copies ``predict``'s result."""
        np.copyto(out, self.predict(x))
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

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        W, b = get_initializer(self.init)(rng, self.d_in, self.d_out, dtype)
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    def output_width(self, d_in: int | None) -> int:
        if d_in is not None and d_in != self.d_in:
            raise ShapeError(f"Dense({self.d_in}, {self.d_out}) takes inputs of width {self.d_in}; "
                             f"the layer before it outputs width {d_in}")
        return self.d_out

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.params["W"].T  # Z = A Wᵀ + b
        z += self.params["b"]
        return z

    def predict_into(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.matmul(x, self.params["W"].T, out=out)  # Z = A Wᵀ + b
        out += self.params["b"]
        return out

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._x = x  # A^{l-1}, kept for dW = Δᵀ A
        z = self._buffer("z", (x.shape[0], self.d_out), x.dtype)
        np.matmul(x, self.params["W"].T, out=z)  # Z = A Wᵀ + b
        z += self.params["b"]
        return z

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Set ``grads`` from ``grad = Δ = dC/dZ`` and return ``dC/dA = Δ W`` (or ``None``
        when ``input_grad`` is false, which skips one matrix product for the first layer)."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        self.last_delta = grad  # Δ, for diagnostics (fit's record_grad_norms)
        np.matmul(grad.T, self._x, out=self.grads["W"])     # dW = Δᵀ A
        np.add.reduce(grad, axis=0, out=self.grads["b"])    # db = Σ_n δ_n
        if not input_grad:
            return None
        dx = self._buffer("dx", self._x.shape, grad.dtype)
        return np.matmul(grad, self.params["W"], out=dx)    # dA = Δ W

    def config(self) -> dict[str, Any]:
        return {"d_in": self.d_in, "d_out": self.d_out, "init": self.init}

    def __repr__(self) -> str:
        return f"Dense({self.d_in}, {self.d_out}, init={self.init!r})"


class Activation(Layer):
    r"""An element-wise activation ``a = f(z)`` with backward ``dC/dz = dC/da ⊙ f'(z)``.

    This is seed 002's "derivatives for activation layers", ``∂C/∂z = ∂C/∂a ⊙ ∂σ(z)/∂z``,
    and the Hadamard product ``(f^l)' ∘`` of seed 000's δ recursion. Subclasses give
    ``f(z, out=None)`` and ``derivative(z, a)``; ``derivative`` receives both ``z`` and
    ``a = f(z)`` so that, e.g., the sigmoid's ``φ(1 − φ)`` reuses the forward value.
    The common activations also override ``backward_into``, the same product written
    into a workspace array without temporaries.

    Shape: input ``(N, d)`` → output ``(N, d)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None

    @staticmethod
    def f(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``f(z)`` element-wise, written into ``out`` when given."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``f'(z)`` element-wise, shape of ``z`` (a new array)."""
        raise NotImplementedError

    def backward_into(self, grad: np.ndarray, z: np.ndarray, a: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = grad ⊙ f'(z)``; ``out`` is a workspace array distinct from the others."""
        return np.multiply(grad, self.derivative(z, a), out=out)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.f(x)

    def predict_into(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        # predict may run in several threads at once: an f that writes into the layer's own
        # workspace (LeakyReLU's) must override this
        return self.f(x, out=out)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._z = x
        self._a = self.f(x, out=self._buffer("a", x.shape, x.dtype))
        return self._a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._a is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        out = self._buffer("dz", grad.shape, grad.dtype)
        return self.backward_into(grad, self._z, self._a, out)  # dC/dz = dC/da ⊙ f'(z)


class Identity(Activation):
    """``f(z) = z``, ``f'(z) = 1``: a linear output (regression)."""

    @staticmethod
    def f(z, out=None):
        if out is None:
            return z.copy()
        np.copyto(out, z)
        return out

    def derivative(self, z, a):
        return np.ones_like(z)

    def backward_into(self, grad, z, a, out):
        np.copyto(out, grad)
        return out


class Sigmoid(Activation):
    r"""The logistic function ``φ(z) = 1/(1 + e^{−z})``, ``φ'(z) = φ(z)(1 − φ(z))`` (seed 000).

    Computed as written: accurate to a few units in the last place in both tails. For
    z ≪ 0, ``e^{−z}`` overflows to infinity and ``1/(1 + ∞)`` is exactly 0, the correct
    value, so that overflow is not reported (no warning at |z| = 1000).
    """

    @staticmethod
    def f(z, out=None):
        a = np.negative(z, out=out)
        with np.errstate(over="ignore"):
            np.exp(a, out=a)  # e^{−z}
        a += 1.0
        return np.divide(1.0, a, out=a)                    # φ = 1/(1 + e^{−z})

    def derivative(self, z, a):
        return a * (1.0 - a)  # φ' = φ (1 − φ)

    def backward_into(self, grad, z, a, out):
        np.subtract(1.0, a, out=out)  # 1 − φ
        out *= a                      # φ (1 − φ)
        out *= grad                   # dC/da ⊙ φ'
        return out


class Tanh(Activation):
    """``f(z) = tanh z``, ``f'(z) = 1 − tanh² z``."""

    @staticmethod
    def f(z, out=None):
        return np.tanh(z, out=out)

    def derivative(self, z, a):
        return 1.0 - a * a

    def backward_into(self, grad, z, a, out):
        np.multiply(a, a, out=out)       # tanh² z
        np.subtract(1.0, out, out=out)   # 1 − tanh² z
        out *= grad
        return out


class ReLU(Activation):
    """``f(z) = max(0, z)``, ``f'(z) = 1 if z > 0 else 0`` (0 at the kink, as PyTorch)."""

    @staticmethod
    def f(z, out=None):
        # against a row of zeros: NumPy's loop with a scalar operand is 1.5-2.5x slower
        return np.maximum(z, np.zeros(z.shape[-1:], z.dtype), out=out)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    def backward_into(self, grad, z, a, out):
        mask = np.greater(z, 0.0, out=self._buffer("mask", z.shape, np.dtype(bool)))
        return np.multiply(grad, mask, out=out)  # dC/da where z > 0, else 0


class LeakyReLU(Activation):
    """``f(z) = z if z > 0 else αz``, ``f'(z) = 1 if z > 0 else α``.

    Args:
        slope: α, the slope for negative inputs (default 0.01); a finite number.
    """

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = finite_float(slope, "slope")  # inf or NaN would poison every output

    def f(self, z, out=None):  # type: ignore[override]
        if out is None:
            return np.where(z > 0, z, z * self.slope)
        np.multiply(z, self.slope, out=out)
        mask = np.greater(z, 0.0, out=self._buffer("mask", z.shape, np.dtype(bool)))
        np.copyto(out, z, where=mask)
        return out

    def predict_into(self, x, out):
        np.multiply(x, self.slope, out=out)
        np.copyto(out, x, where=x > 0)  # a mask of its own: predict may run in several threads
        return out

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def backward_into(self, grad, z, a, out):
        mask = np.greater(z, 0.0, out=self._buffer("mask", z.shape, np.dtype(bool)))
        np.multiply(grad, self.slope, out=out)
        np.copyto(out, grad, where=mask)
        return out

    def config(self):
        return {"slope": self.slope}


class ELU(Activation):
    """``f(z) = z if z > 0 else α(e^z − 1)``, ``f'(z) = 1 if z > 0 else α e^z = f(z) + α``.

    Args:
        alpha: α (default 1.0); a finite number.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = finite_float(alpha, "alpha")

    def f(self, z, out=None):  # type: ignore[override]
        a = np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0.0)))
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype, copy=False)

    def config(self):
        return {"alpha": self.alpha}


class Softplus(Activation):
    """``f(z) = log(1 + e^z)`` (computed stably), ``f'(z) = φ(z)``, the sigmoid."""

    @staticmethod
    def f(z, out=None):
        return np.logaddexp(0.0, z, out=out)

    def derivative(self, z, a):
        return Sigmoid.f(z)


class GELU(Activation):
    r"""GELU in its tanh form (Hendrycks & Gimpel; PyTorch ``approximate="tanh"``).

    ``f(z) = ½ z (1 + tanh u)``, ``u = √(2/π)(z + 0.044715 z³)``;
    ``f'(z) = ½(1 + tanh u) + ½ z (1 − tanh² u) √(2/π)(1 + 3·0.044715 z²)``.
    """

    _C = float(np.sqrt(2.0 / np.pi))
    _K = 0.044715

    @classmethod
    def f(cls, z, out=None):  # type: ignore[override]
        t = np.tanh(cls._C * (z + cls._K * z**3))
        return np.multiply(0.5 * z, 1.0 + t, out=out)

    def derivative(self, z, a):
        t = np.tanh(self._C * (z + self._K * z**3))
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * self._C * (1.0 + 3.0 * self._K * z * z)


class Softmax(Activation):
    r"""``a_i = e^{z_i} / Σ_j e^{z_j}`` over each row, with its full Jacobian-vector product.

    The Jacobian is ``∂a_j/∂z_i = a_j(δ_ij − a_i)``, not diagonal, so backward is
    ``dC/dz_i = Σ_j dC/da_j · a_j(δ_ij − a_i) = a_i (dC/da_i − Σ_j dC/da_j a_j)``.
    Prefer :class:`~backprop.CrossEntropy` on logits for classification: it fuses
    softmax and loss into the gradient ``a − y``.
    """

    @staticmethod
    def f(z, out=None):
        e = np.subtract(z, z.max(axis=1, keepdims=True), out=out)  # shift for stability
        np.exp(e, out=e)
        e /= e.sum(axis=1, keepdims=True)
        return e

    def backward_into(self, grad, z, a, out):
        np.multiply(grad, a, out=out)
        dot = out.sum(axis=1, keepdims=True)    # ⟨g, a⟩ per row
        np.subtract(grad, dot, out=out)
        out *= a                                 # a ⊙ (g − ⟨g, a⟩)
        return out


class Dropout(Layer):
    """Inverted dropout: while training, zero each unit with probability ``rate`` and scale
    the survivors by ``1/(1 − rate)``; at inference the identity.

    Backward multiplies by the same mask: ``dC/dx = dC/da ⊙ m``.

    Args:
        rate: probability of dropping a unit, in [0, 1).

    Shape: input ``(N, d)`` → output ``(N, d)``.
    """

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        number = isinstance(rate, (int, float, np.integer, np.floating))
        if isinstance(rate, (bool, np.bool_)) or not number or not 0.0 <= rate < 1.0:  # NaN too
            raise ConfigError(f"rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        # an independent stream, drawn from the network's seed
        self.rng = np.random.default_rng(rng.integers(2**63))

    def predict(self, x):
        return x

    def predict_into(self, x, out):
        return x  # the identity at inference: nothing to write

    def forward(self, x, train=False):
        if not train or self.rate == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError("Dropout needs a random generator: put it in a Network first")
        keep = 1.0 - self.rate
        mask = self._buffer("mask", x.shape, x.dtype)
        self.rng.random(dtype=x.dtype, out=mask)     # u ~ U[0, 1)
        np.less(mask, keep, out=mask)                 # 1[u < 1 − p]
        mask *= 1.0 / keep                            # m = 1[u < 1 − p] / (1 − p)
        self._mask = mask
        return np.multiply(x, mask, out=self._buffer("a", x.shape, x.dtype))

    def backward(self, grad):
        if self._mask is None:
            return grad
        return np.multiply(grad, self._mask, out=self._buffer("dx", grad.shape, grad.dtype))

    def config(self):
        return {"rate": self.rate}


#: the layer kinds a model file may name, by class name
LAYER_KINDS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, Softmax, Dropout)
}

#: activation layers by the lower-case names used on the command line
ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU,
    "elu": ELU, "softplus": Softplus, "gelu": GELU, "softmax": Softmax,
}


def activation(name: str, **kwargs: Any) -> Activation:
    """The activation layer called ``name`` (one of :data:`ACTIVATIONS`)."""
    try:
        cls = ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}") from None
    try:
        return cls(**kwargs)
    except TypeError as err:  # an argument this activation does not take
        raise ConfigError(f"activation {name!r}: {err}") from None

