"""Layers: ``Dense`` and the activation layers, each with its forward and backward side by side.

Shapes follow DESIGN.md: a batch is a matrix of **rows**, ``x`` of shape ``(N, d_in)``.
Every layer has

* ``forward(x, train=False)``: computes the output and keeps what ``backward`` needs;
* ``backward(grad)``: takes dC/d(output), shape ``(N, d_out)``, sets ``self.grads``
  (for layers with parameters) and returns dC/d(input), shape ``(N, d_in)``;
* ``predict(x)``: the same values as ``forward`` but keeps nothing (thread-safe);
* ``config()``: the constructor's keyword arguments, for model files.

Equations cite the notes in ``../shared/seeds``: (000) Thorpe's notes, (001)
"Derivatives of all layers", (002) "Single parameter derivatives"; see docs/math.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import positive_int
from .errors import ConfigError, ShapeError
from .init import get_initializer


class Layer:
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

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._x = x  # A^{l-1}, kept for dW = Δᵀ A
        return self.predict(x)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Set ``grads`` from ``grad = Δ = dC/dZ`` and return ``dC/dA = Δ W`` (or ``None``
        when ``input_grad`` is false, which skips one matrix product for the first layer)."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        W = self.params["W"]
        np.matmul(grad.T, self._x, out=self.grads["W"])  # dW = Δᵀ A
        np.sum(grad, axis=0, out=self.grads["b"])         # db = Σ_n δ_n
        return grad @ W if input_grad else None             # dA = Δ W

    def config(self) -> dict[str, Any]:
        return {"d_in": self.d_in, "d_out": self.d_out, "init": self.init}

    def __repr__(self) -> str:
        return f"Dense({self.d_in}, {self.d_out}, init={self.init!r})"


class Activation(Layer):
    r"""An element-wise activation ``a = f(z)`` with backward ``dC/dz = dC/da ⊙ f'(z)``.

    This is seed 002's "derivatives for activation layers", ``∂C/∂z = ∂C/∂a ⊙ ∂σ(z)/∂z``,
    and the Hadamard product ``(f^l)' ∘`` of seed 000's δ recursion. Subclasses give
    ``f`` and ``derivative``; ``derivative`` receives both ``z`` and ``a = f(z)`` so
    that, e.g., the sigmoid's ``φ(1 − φ)`` reuses the forward value.

    Shape: input ``(N, d)`` → output ``(N, d)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None

    @staticmethod
    def f(z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``f'(z)`` element-wise, shape of ``z``."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.f(x)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._z = x
        self._a = self.f(x)
        return self._a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._a is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return grad * self.derivative(self._z, self._a)  # dC/dz = dC/da ⊙ f'(z)


class Identity(Activation):
    """``f(z) = z``, ``f'(z) = 1``: a linear output (regression)."""

    @staticmethod
    def f(z):
        return z.copy()

    def derivative(self, z, a):
        return np.ones_like(z)

    def backward(self, grad):
        return grad.copy()


class Sigmoid(Activation):
    r"""The logistic function ``φ(z) = 1/(1 + e^{−z})``, ``φ'(z) = φ(z)(1 − φ(z))`` (seed 000).

    Computed from ``e = e^{−|z|}`` as ``1/(1 + e)`` for z ≥ 0 and ``e/(1 + e)`` for z < 0:
    the same function, accurate to the last bit in both tails, and it never overflows
    (no warning at |z| = 1000).
    """

    @staticmethod
    def f(z):
        e = np.exp(-np.abs(z))        # e^{−|z|} in (0, 1]: cannot overflow
        a = np.where(z >= 0, 1.0, e)  # numerator: 1 for z ≥ 0, e^{z} for z < 0
        a /= 1.0 + e
        return a

    def derivative(self, z, a):
        return a * (1.0 - a)  # φ' = φ (1 − φ)


class Tanh(Activation):
    """``f(z) = tanh z``, ``f'(z) = 1 − tanh² z``."""

    @staticmethod
    def f(z):
        return np.tanh(z)

    def derivative(self, z, a):
        return 1.0 - a * a


class ReLU(Activation):
    """``f(z) = max(0, z)``, ``f'(z) = 1 if z > 0 else 0`` (0 at the kink, as PyTorch)."""

    @staticmethod
    def f(z):
        return np.maximum(z, 0.0)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    def backward(self, grad):
        if self._z is None:
            raise RuntimeError("ReLU.backward called before forward")
        return np.where(self._z > 0, grad, 0.0).astype(grad.dtype, copy=False)


class LeakyReLU(Activation):
    """``f(z) = z if z > 0 else αz``, ``f'(z) = 1 if z > 0 else α``.

    Args:
        slope: α, the slope for negative inputs (default 0.01).
    """

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)

    def f(self, z):  # type: ignore[override]
        return np.where(z > 0, z, z * self.slope)

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def config(self):
        return {"slope": self.slope}


class ELU(Activation):
    """``f(z) = z if z > 0 else α(e^z − 1)``, ``f'(z) = 1 if z > 0 else α e^z = f(z) + α``.

    Args:
        alpha: α (default 1.0).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def f(self, z):  # type: ignore[override]
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0.0)))

    def derivative(self, z, a):
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype, copy=False)

    def config(self):
        return {"alpha": self.alpha}


class Softplus(Activation):
    """``f(z) = log(1 + e^z)`` (computed stably), ``f'(z) = φ(z)``, the sigmoid."""

    @staticmethod
    def f(z):
        return np.logaddexp(0.0, z).astype(z.dtype, copy=False)

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
    def f(cls, z):  # type: ignore[override]
        t = np.tanh(cls._C * (z + cls._K * z**3))
        return 0.5 * z * (1.0 + t)

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
    def f(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))  # shift for stability
        e /= e.sum(axis=1, keepdims=True)
        return e

    def backward(self, grad):
        if self._a is None:
            raise RuntimeError("Softmax.backward called before forward")
        a = self._a
        return a * (grad - np.sum(grad * a, axis=1, keepdims=True))  # a ⊙ (g − ⟨g, a⟩)


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
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ConfigError(f"rate must be a number in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def reset_parameters(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        # an independent stream, drawn from the network's seed
        self.rng = np.random.default_rng(rng.integers(2**63))

    def predict(self, x):
        return x

    def forward(self, x, train=False):
        if not train or self.rate == 0.0:
            self._mask = None
            return x
        if self.rng is None:
            raise RuntimeError("Dropout needs a random generator: put it in a Network first")
        keep = 1.0 - self.rate
        mask = self.rng.random(x.shape, dtype=x.dtype) < keep
        self._mask = mask.astype(x.dtype)
        self._mask /= keep  # m = 1[u < 1 − p] / (1 − p)
        return x * self._mask

    def backward(self, grad):
        return grad if self._mask is None else grad * self._mask

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
    return cls(**kwargs)

