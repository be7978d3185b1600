"""Activation layers: ``a = f(z)`` element-wise, backward ``dC/dz = dC/da ⊙ f'(z)``.

Each activation writes its two equations once: ``f(z, out)`` and ``df(z, a, out)`` (the
derivative ``f'(z)``, which may reuse ``a = f(z)``, e.g. the sigmoid's ``φ(1 − φ)``). The
training path (``forward``/``backward``), ``predict`` and :meth:`Activation.derivative` all
call those two; nothing restates them. :class:`Softmax` is the exception the maths makes: its
Jacobian is not diagonal, so it gives its Jacobian-vector product instead of ``df``.

``f`` and ``df`` take the array library from ``z`` (:func:`~backprop.devices.ops_of`), so the
same two lines run on NumPy (with ``out=``), CuPy, PyTorch tensors and array-api-strict.

Equations cite the three notes the library implements by number, as ``docs/math.md`` does:
(000) Ashby Thorpe, *Notes on Neural Networks*; (001) *Derivatives of all layers*;
(002) *Single parameter derivatives*.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import canonical_name, finite_float
from .devices import empty_on, ops_of
from .errors import ConfigError
from .layers import Layer


class Activation(Layer):
    r"""An element-wise activation ``a = f(z)`` with backward ``dC/dz = dC/da ⊙ f'(z)``.

    This is seed 002's "derivatives for activation layers", ``∂C/∂z = ∂C/∂a ⊙ ∂σ(z)/∂z``,
    and the Hadamard product ``(f^l)' ∘`` of seed 000's δ recursion. Subclasses give
    ``f(z, out)`` and ``df(z, a, out)``, each writing into ``out`` (a new array when ``out``
    is None).

    Shape:
        input ``(N, d)`` → output ``(N, d)``.

    Attributes:
        params, grads: empty (an activation has no parameters).

    Example:
        >>> act = bp.Tanh()
        >>> a = act.forward(np.array([[0.0, 1.0]]))             # tanh z
        >>> act.backward(np.ones((1, 2)))                       # 1 − tanh² z
        array([[1.        , 0.41997434]])
    """

    def __init__(self) -> None:
        super().__init__()
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None

    def f(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``f(z)`` element-wise, written into ``out`` when given (it may be ``z`` itself only
        where a subclass says so)."""
        raise NotImplementedError

    def df(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``f'(z)`` element-wise, given ``z`` and ``a = f(z)``, written into ``out`` (an array
        distinct from ``z`` and ``a``) when given."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``f'(z)``, shape of ``z`` (a new array)."""
        return self.df(z, a)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.f(x)

    def predict_unchecked(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return self.f(x, out=out)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        self._z = x
        self._a = self.f(x, out=self._buffer("a", x.shape, x.dtype, x))
        return self._a

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._a is None or self._z is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        out = self.df(self._z, self._a, out=self._buffer("dz", grad.shape, grad.dtype, grad))  # f'(z)
        out *= grad  # dC/dz = dC/da ⊙ f'(z)
        return out


def _new(z: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``out``, or a new array like ``z`` (its library, device, dtype and shape)."""
    if out is not None:
        return out
    return np.empty_like(z) if isinstance(z, np.ndarray) else empty_on(z, z.shape, z.dtype)


class Identity(Activation):
    """``f(z) = z``, ``f'(z) = 1``: a linear output (regression).

    Example:
        >>> bp.Identity().predict(np.array([[-1.0, 2.0]]))
        array([[-1.,  2.]])
    """

    @staticmethod
    def f(z, out=None):
        out = _new(z, out)
        ops_of(z).copyto(out, z)
        return out

    def df(self, z, a, out=None):
        out = _new(z, out)
        ops_of(z).copyto(out, 1.0)
        return out


class Sigmoid(Activation):
    r"""The logistic function ``φ(z) = 1/(1 + e^{−z})``, ``φ'(z) = φ(z)(1 − φ(z))`` (seed 000).

    Computed as written: accurate to a few units in the last place in both tails. For
    z ≪ 0, ``e^{−z}`` overflows to infinity and ``1/(1 + ∞)`` is exactly 0, the correct
    value, so that overflow is not reported (no warning at |z| = 1000).

    Example:
        >>> bp.Sigmoid().predict(np.array([[0.0]]))
        array([[0.5]])
    """

    @staticmethod
    def f(z, out=None):
        ops = ops_of(z)
        a = ops.negative(z, out=out)
        with np.errstate(over="ignore"):
            ops.exp(a, out=a)                              # e^{−z}
        a += 1.0
        return ops.divide(1.0, a, out=a)                   # φ = 1/(1 + e^{−z})

    def df(self, z, a, out=None):
        out = ops_of(a).subtract(1.0, a, out=out)  # 1 − φ
        out *= a                            # φ' = φ (1 − φ)
        return out


class Tanh(Activation):
    """``f(z) = tanh z``, ``f'(z) = 1 − tanh² z``.

    Example:
        >>> bp.Tanh().predict(np.array([[0.0]]))
        array([[0.]])
    """

    @staticmethod
    def f(z, out=None):
        return ops_of(z).tanh(z, out=out)

    def df(self, z, a, out=None):
        ops = ops_of(a)
        out = ops.multiply(a, a, out=out)      # tanh² z
        return ops.subtract(1.0, out, out=out)  # 1 − tanh² z


class ReLU(Activation):
    """``f(z) = max(0, z)``, ``f'(z) = 1 if z > 0 else 0`` (0 at the kink, as PyTorch).

    Example:
        >>> bp.ReLU().predict(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """

    def f(self, z, out=None):
        # against a row of zeros: NumPy's loop with a scalar operand is 1.5-2.5x slower
        ops = ops_of(z)
        zero = self._buffer("zero", (z.shape[-1],), z.dtype, z)
        ops.copyto(zero, 0.0)
        return ops.maximum(z, zero, out=out)

    def df(self, z, a, out=None):
        return ops_of(z).greater(z, 0.0, out=_new(z, out))  # 1 where z > 0, else 0


class LeakyReLU(Activation):
    """``f(z) = z if z > 0 else αz``, ``f'(z) = 1 if z > 0 else α``.

    Args:
        slope: α, the slope for negative inputs (default 0.01); a finite number.

    Example:
        >>> bp.LeakyReLU(0.1).predict(np.array([[-1.0, 2.0]]))
        array([[-0.1,  2. ]])
    """

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = finite_float(slope, "slope")  # inf or NaN would poison every output

    def f(self, z, out=None):
        # z where z > 0, else αz: the larger of z and αz when α ≤ 1, the smaller when α > 1
        # (no mask, so several threads may predict at once and nothing is allocated)
        ops = ops_of(z)
        out = ops.multiply(z, self.slope, out=out)  # αz
        pick = ops.maximum if self.slope <= 1.0 else ops.minimum
        return pick(z, out, out=out)

    def df(self, z, a, out=None):
        ops = ops_of(z)
        out = ops.less_equal(z, 0.0, out=_new(z, out))              # 1[z ≤ 0]
        out *= self.slope                                           # α 1[z ≤ 0]
        out += ops.greater(z, 0.0, out=self._buffer("mask", z.shape, z.dtype, z))  # + 1[z > 0]: exact
        return out

    def config(self):
        return {"slope": self.slope}


class ELU(Activation):
    """``f(z) = z if z > 0 else α(e^z − 1)``, ``f'(z) = 1 if z > 0 else α e^z = f(z) + α``.

    Args:
        alpha: α (default 1.0); a finite number.

    Example:
        >>> bp.ELU().predict(np.array([[0.0, 2.0]]))
        array([[0., 2.]])
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = finite_float(alpha, "alpha")

    def f(self, z, out=None):
        ops = ops_of(z)
        xp, out = ops.xp, _new(z, out)
        ops.copyto(out, xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0.0))))
        return out

    def df(self, z, a, out=None):
        ops = ops_of(z)
        out = _new(z, out)
        ops.copyto(out, ops.xp.where(z > 0, 1.0, a + self.alpha))  # α e^z = f(z) + α for z ≤ 0
        return out

    def config(self):
        return {"alpha": self.alpha}


class Softplus(Activation):
    """``f(z) = log(1 + e^z)`` (computed stably), ``f'(z) = φ(z)``, the sigmoid.

    Example:
        >>> bp.Softplus().predict(np.array([[0.0]]))
        array([[0.69314718]])
    """

    @staticmethod
    def f(z, out=None):
        return ops_of(z).logaddexp(0.0, z, out=out)

    def df(self, z, a, out=None):
        return Sigmoid.f(z, out=out)  # φ(z): the sigmoid's f, not restated


class GELU(Activation):
    r"""GELU in its tanh form (Hendrycks & Gimpel; PyTorch ``approximate="tanh"``).

    ``f(z) = ½ z (1 + tanh u)``, ``u = √(2/π)(z + 0.044715 z³)``;
    ``f'(z) = ½(1 + tanh u) + ½ z (1 − tanh² u) √(2/π)(1 + 3·0.044715 z²)``.

    Example:
        >>> bp.GELU().predict(np.array([[0.0]]))
        array([[0.]])
    """

    _C = float(np.sqrt(2.0 / np.pi))
    _K = 0.044715

    @classmethod
    def _tanh_u(cls, z: np.ndarray) -> np.ndarray:
        return ops_of(z).xp.tanh(cls._C * (z + cls._K * z**3))  # tanh u

    @classmethod
    def f(cls, z, out=None):
        return ops_of(z).multiply(0.5 * z, 1.0 + cls._tanh_u(z), out=out)

    def df(self, z, a, out=None):
        t = self._tanh_u(z)
        d = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * self._C * (1.0 + 3.0 * self._K * z * z)
        out = _new(z, out)
        ops_of(z).copyto(out, d)
        return out


class Softmax(Activation):
    r"""``a_i = e^{z_i} / Σ_j e^{z_j}`` over each row, with its full Jacobian-vector product.

    The Jacobian is ``∂a_j/∂z_i = a_j(δ_ij − a_i)``, not diagonal, so backward is
    ``dC/dz_i = Σ_j dC/da_j · a_j(δ_ij − a_i) = a_i (dC/da_i − Σ_j dC/da_j a_j)``.
    Prefer :class:`~backprop.CrossEntropy` on logits for classification: it fuses
    softmax and loss into the gradient ``a − y``.

    Example:
        >>> bp.Softmax().predict(np.array([[0.0, 0.0]]))
        array([[0.5, 0.5]])
    """

    @staticmethod
    def f(z, out=None):
        ops = ops_of(z)
        e = ops.subtract(z, ops.xp.max(z, axis=1, keepdims=True), out=out)  # shift for stability
        ops.exp(e, out=e)
        e /= ops.xp.sum(e, axis=1, keepdims=True)
        return e

    def df(self, z, a, out=None):
        raise NotImplementedError("Softmax's derivative is a full Jacobian, not element-wise; "
                                  "use backward (its Jacobian-vector product)")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._a is None:
            raise RuntimeError("Softmax.backward called before forward")
        a, ops = self._a, ops_of(grad)
        out = ops.multiply(grad, a, out=self._buffer("dz", grad.shape, grad.dtype, grad))
        dot = ops.xp.sum(out, axis=1, keepdims=True)    # ⟨g, a⟩ per row
        ops.subtract(grad, dot, out=out)
        out *= a                                 # a ⊙ (g − ⟨g, a⟩)
        return out


#: activation layers by the names used on the command line and in configs
ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU,
    "elu": ELU, "softplus": Softplus, "gelu": GELU, "softmax": Softmax,
}


def activation(name: str, **kwargs: Any) -> Activation:
    """The activation layer called ``name`` (one of :data:`ACTIVATIONS`; ``-`` and ``_`` alike)."""
    try:
        cls = ACTIVATIONS[canonical_name(name)]
    except (KeyError, TypeError):
        raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}") from None
    try:
        return cls(**kwargs)
    except TypeError as err:  # an argument this activation does not take
        raise ConfigError(f"activation {name!r}: {err}") from None
