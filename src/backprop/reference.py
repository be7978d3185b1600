"""The notes' backpropagation, written the slow and obvious way: the oracle for the tests.

Two levels, each independent of the vectorised code in :mod:`backprop.layers`:

* :func:`per_parameter_gradients`, seed 001's "derivatives with respect to individual
  parameters" and seed 002's "single parameter derivatives": plain Python loops over
  scalars, one formula per weight, bias and input, with the activations' derivatives
  written out again with :mod:`math`;
* :func:`per_sample_gradients`, seed 000's δ recursion for one sample at a time,
  ``δ^{l-1} = (f^{l-1})' ∘ (W^l)ᵀ δ^l``, ``∇_W C = δ (a^{l-1})ᵀ``, ``∇_b C = δ``, with
  explicit Jacobian matrices (the diagonal ``diag(f'(z))``, the full softmax Jacobian).

The network's own ``backward`` is the third level, seed 001's mini-batch matrix form.
All three return the gradient of the batch cost (the mean of the per-sample costs),
and dC/dx. Dropout layers count as the identity (inference mode).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import activations as A
from . import layers as L
from .errors import ShapeError
from .losses import BinaryCrossEntropy, CrossEntropy, Huber, Loss, Quadratic, one_hot
from .network import Network


# --------------------------------------------------------------------- scalars
def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def scalar_activation(layer: L.Layer, z: float) -> float:
    """``f(z)`` for one scalar."""
    if isinstance(layer, (A.Identity, L.Dropout)):
        return z
    if isinstance(layer, A.Sigmoid):
        return _sigmoid(z)
    if isinstance(layer, A.Tanh):
        return math.tanh(z)
    if isinstance(layer, A.ReLU):
        return z if z > 0 else 0.0
    if isinstance(layer, A.LeakyReLU):
        return z if z > 0 else layer.slope * z
    if isinstance(layer, A.ELU):
        return z if z > 0 else layer.alpha * math.expm1(z)
    if isinstance(layer, A.Softplus):
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    if isinstance(layer, A.GELU):
        return 0.5 * z * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
    raise TypeError(f"no scalar form for {layer!r}")


def scalar_derivative(layer: L.Layer, z: float) -> float:
    """``f'(z)`` for one scalar, from the textbook formula of each activation."""
    if isinstance(layer, (A.Identity, L.Dropout)):
        return 1.0
    if isinstance(layer, A.Sigmoid):
        s = _sigmoid(z)
        return s * (1.0 - s)  # dφ/dz = φ(z)(1 − φ(z)), seed 000
    if isinstance(layer, A.Tanh):
        return 1.0 - math.tanh(z) ** 2
    if isinstance(layer, A.ReLU):
        return 1.0 if z > 0 else 0.0
    if isinstance(layer, A.LeakyReLU):
        return 1.0 if z > 0 else layer.slope
    if isinstance(layer, A.ELU):
        return 1.0 if z > 0 else layer.alpha * math.exp(z)
    if isinstance(layer, A.Softplus):
        return _sigmoid(z)
    if isinstance(layer, A.GELU):
        c, k = math.sqrt(2.0 / math.pi), 0.044715
        t = math.tanh(c * (z + k * z**3))
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * k * z * z)
    raise TypeError(f"no scalar derivative for {layer!r}")


def _softmax(z: list[float]) -> list[float]:
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def scalar_cost_gradient(loss: Loss, a: list[float], y: list[float]) -> list[float]:
    """``∂C_x/∂a_i`` for one sample, component by component."""
    if isinstance(loss, Quadratic):
        return [ai - yi for ai, yi in zip(a, y, strict=True)]  # ∂C/∂a_i = a_i − y_i, seed 000
    if isinstance(loss, Huber):
        return [min(max(ai - yi, -loss.delta), loss.delta) for ai, yi in zip(a, y, strict=True)]
    if isinstance(loss, CrossEntropy):
        p = _softmax(a)
        return [pi - yi for pi, yi in zip(p, y, strict=True)]  # softmax Jacobian times −y/p: p_i − y_i
    if isinstance(loss, BinaryCrossEntropy):
        return [_sigmoid(ai) - yi for ai, yi in zip(a, y, strict=True)]
    raise TypeError(f"no scalar gradient for {loss!r}")


def _dense_targets(loss: Loss, y: Any, shape: tuple[int, int]) -> np.ndarray:
    t = loss.prepare(y, shape, np.dtype(np.float64))
    return one_hot(t, shape[1], np.float64) if t.ndim == 1 else t


# ------------------------------------------------------- level (a): scalars
def per_parameter_gradients(net: Network, loss: Loss, x: np.ndarray, y: Any) -> dict[str, np.ndarray]:
    """dC/dθ for every parameter θ (keys ``"0.W"``, ``"0.b"``, ...) and ``"x"``, by scalar loops.

    For each sample, forward stores every layer's input; backward walks the layers down,
    one scalar at a time:

    * activation: ``∂C/∂z_i = ∂C/∂a_i · f'(z_i)`` (seed 002, activation layers);
      softmax: ``∂C/∂z_i = Σ_j ∂C/∂a_j · a_j(δ_ij − a_i)``;
    * dense: ``∂C/∂w_ik = ∂C/∂z_i · a_k``, ``∂C/∂b_i = ∂C/∂z_i``,
      ``∂C/∂a_k = Σ_j ∂C/∂z_j · w_jk`` (seed 002; seed 001's ``a_i e_j`` with W transposed).

    The batch gradient is the mean over the samples.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    targets = _dense_targets(loss, y, (n, _output_width(net))).tolist()
    weights = [layer.params["W"].astype(np.float64).tolist() if isinstance(layer, L.Dense) else None
               for layer in net.layers]
    biases = [layer.params["b"].astype(np.float64).tolist() if isinstance(layer, L.Dense) else None
              for layer in net.layers]
    grads = {name: np.zeros(p.shape) for name, p in net.named_parameters()}
    grad_x = np.zeros_like(x)

    for s in range(n):
        inputs = []  # the input of each layer, a list of floats
        a = x[s].tolist()
        for li, layer in enumerate(net.layers):
            inputs.append(a)
            if isinstance(layer, L.Dense):
                W, b = weights[li], biases[li]
                assert W is not None and b is not None  # a Dense layer's
                a = [sum(W[i][k] * a[k] for k in range(len(a))) + b[i] for i in range(len(b))]
            elif isinstance(layer, A.Softmax):
                a = _softmax(a)
            else:
                a = [scalar_activation(layer, z) for z in a]

        g = [gi / n for gi in scalar_cost_gradient(loss, a, targets[s])]  # dC/da^L, C = mean
        for li in range(len(net.layers) - 1, -1, -1):
            layer, a_in = net.layers[li], inputs[li]
            if isinstance(layer, L.Dense):
                W, gW, gb = weights[li], grads[f"{li}.W"], grads[f"{li}.b"]
                assert W is not None
                for i in range(len(g)):
                    gb[i] += g[i]                         # ∂C/∂b_i = ∂C/∂z_i
                    for k in range(len(a_in)):
                        gW[i, k] += g[i] * a_in[k]        # ∂C/∂w_ik = ∂C/∂z_i · a_k
                g = [sum(g[j] * W[j][k] for j in range(len(g))) for k in range(len(a_in))]
            elif isinstance(layer, A.Softmax):
                p = _softmax(a_in)
                g = [sum(g[j] * p[j] * ((1.0 if i == j else 0.0) - p[i]) for j in range(len(p)))
                     for i in range(len(p))]
            else:
                g = [g[i] * scalar_derivative(layer, a_in[i]) for i in range(len(g))]
        grad_x[s] = g
    grads["x"] = grad_x
    return grads


# --------------------------------------------------- level (b): one sample
def _jacobian(layer: L.Layer, z: np.ndarray) -> np.ndarray:
    """``da/dz`` of an activation layer for one sample: ``diag(f'(z))``, or the softmax's
    ``diag(a) − a aᵀ``."""
    if isinstance(layer, A.Softmax):
        a = np.exp(z - z.max())
        a /= a.sum()
        return np.diag(a) - np.outer(a, a)
    return np.diag([scalar_derivative(layer, float(v)) for v in z])


def per_sample_gradients(net: Network, loss: Loss, x: np.ndarray, y: Any) -> list[dict[str, np.ndarray]]:
    """For each sample alone, ∇C_x of every parameter and ``"x"``, by seed 000's recursion.

    ``δ`` runs down the layers as a vector: a Dense layer gives ``∇_W C = δ (a^{l-1})ᵀ``,
    ``∇_b C = δ`` and passes on ``(W^l)ᵀ δ``; an activation layer passes on
    ``(da/dz)ᵀ δ``, which for element-wise ``f`` is ``f'(z) ∘ δ``. The cost is the sample's
    own ``C_x`` (not divided by N): the batch gradient is the mean of these.
    """
    x = np.asarray(x, dtype=np.float64)
    targets = _dense_targets(loss, y, (x.shape[0], _output_width(net)))
    result = []
    for s in range(x.shape[0]):
        inputs, a = [], x[s]
        for layer in net.layers:
            inputs.append(a)
            if isinstance(layer, L.Dense):
                a = layer.params["W"].astype(np.float64) @ a + layer.params["b"]  # z = W a + b
            elif isinstance(layer, L.Dropout):
                a = a.copy()
            else:
                a = _jacobian_free_forward(layer, a)
        delta = np.asarray(scalar_cost_gradient(loss, a.tolist(), targets[s].tolist()))  # ∇_a C
        grads: dict[str, np.ndarray] = {}
        for li in range(len(net.layers) - 1, -1, -1):
            layer, a_in = net.layers[li], inputs[li]
            if isinstance(layer, L.Dense):
                grads[f"{li}.W"] = np.outer(delta, a_in)  # ∇_W C = δ (a^{l-1})ᵀ
                grads[f"{li}.b"] = delta.copy()          # ∇_b C = δ
                delta = layer.params["W"].astype(np.float64).T @ delta  # (W^l)ᵀ δ
            elif not isinstance(layer, L.Dropout):
                delta = _jacobian(layer, a_in).T @ delta  # (f')ᵀ ∘ δ
        grads["x"] = delta
        result.append(grads)
    return result


def _output_width(net: Any) -> int:
    if net.output_width is None:
        raise ShapeError("the network has no Dense layer, so its output width is unknown")
    return int(net.output_width)


def _jacobian_free_forward(layer: L.Layer, z: np.ndarray) -> np.ndarray:
    if isinstance(layer, A.Softmax):
        return np.asarray(_softmax(z.tolist()))
    return np.asarray([scalar_activation(layer, float(v)) for v in z])


def mean_of_per_sample(grads: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The batch gradient from per-sample ones: the mean for parameters; for ``"x"``, each
    sample's row divided by N (the batch cost is the mean, so sample n's input counts 1/N)."""
    n = len(grads)
    out = {k: np.asarray(sum(g[k] for g in grads)) / n for k in grads[0] if k != "x"}
    out["x"] = np.stack([g["x"] for g in grads]) / n
    return out
