"""Cost functions: the value (mean over the batch) and its gradient dC/da^L.

A loss's value is the **mean over the batch** of the per-sample cost ``C_x``, so
its gradient carries a factor ``1/N``: ``grad(a, y)[n] = ∇_{a_n} C_{x_n} / N``.
With that, ``SGD(lr=η)`` is the textbook update ``w ← w − η/m Σ_x ∇C_x``.

Every loss has

* ``value(a, y) -> float`` and ``grad(a, y) -> (N, k)``: validated, for users;
* ``prepare(y, a_shape, dtype)``: validated targets in the loss's own form (done once
  per data set by :func:`~backprop.fit`);
* ``value_unchecked`` / ``grad_unchecked`` / ``value_and_grad_unchecked``: the trusted hot
  path on prepared targets (the one convention for trusted fast paths: ``*_unchecked``);
* ``per_sample(a, y) -> (N,)``: the cost ``C_x`` of each sample;
* ``weighted_value_and_grad_unchecked``: with per-sample weights ``w``, the weighted mean
  ``Σ_n w_n C_n / Σ_n w_n`` and its gradient (scikit-learn's ``sample_weight``).

Classification losses (:class:`CrossEntropy`, :class:`BinaryCrossEntropy`) take
their outputs as **logits** (no softmax/sigmoid layer before them) and targets as
integer class indices ``(N,)`` or one-hot/probability rows ``(N, k)``; both give
the same numbers.

The maths takes the array library from ``a`` (:func:`~backprop.devices.ops_of`): NumPy,
CuPy, PyTorch tensors or array-api-strict. Targets are validated on the host (``prepare``)
and moved to ``a``'s device once. On NumPy a value is a Python ``float``; on another
library the ``*_unchecked`` values are 0-d arrays left on the device (no synchronisation),
and the validated ``value`` reads it back as a float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._targets import _check_device_outputs, _check_outputs, _class_labels, _float_targets, _one_hot_like, one_hot
from ._validation import as_array, canonical_name, check_finite, describe
from ._workspace import Workspace
from .activations import Sigmoid
from .devices import from_host, numpy_dtype, on_device, ops_of, scalar, to_numpy
from .errors import ConfigError, DTypeError, InvalidValueError


class Loss:
    """Base class of the costs: subclasses define ``prepare``, ``value_unchecked``,
    ``grad_unchecked`` and ``per_sample_unchecked`` (and may fuse the first two in
    ``value_and_grad_unchecked``).

    Shape:
        outputs ``a`` ``(N, k)`` and targets ``y`` (``(N, k)`` rows, or ``(N,)`` labels where the
        loss takes them) → ``value`` a float (the mean over the batch), ``grad`` ``(N, k)``,
        ``per_sample`` ``(N,)``.

    Example:
        >>> loss = bp.Quadratic()
        >>> loss.value(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))   # ½(1² + 2²)
        2.5
    """

    def prepare(self, y: Any, a_shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        """Validate ``y`` against outputs of ``a_shape`` and return it in this loss's form."""
        raise NotImplementedError

    def value_unchecked(self, a: np.ndarray, t: np.ndarray) -> float:
        raise NotImplementedError

    def grad_unchecked(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def per_sample_unchecked(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def training_targets(self, t: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
        """Prepared targets in the form :meth:`value_and_grad_unchecked` is fastest with (by default
        as they are; :class:`CrossEntropy` turns class indices into one-hot rows)."""
        return t

    def value_and_grad_unchecked(self, a: np.ndarray, t: np.ndarray, out: np.ndarray) -> float:
        """The training hot path: return the value and write ``dC/da`` into ``out`` (same shape
        as ``a``, not aliasing it). Subclasses override it to avoid temporaries."""
        ops_of(a).copyto(out, self.grad_unchecked(a, t))
        return self.value_unchecked(a, t)

    def weighted_value_and_grad_unchecked(self, a: np.ndarray, t: np.ndarray, w: np.ndarray,
                                          out: np.ndarray) -> float:
        """With per-sample weights ``w`` ``(N,)`` (≥ 0, ``Σ w > 0``): return the weighted mean
        ``Σ_n w_n C_n / Σ_n w_n`` and write its gradient into ``out`` ``(N, k)``: row ``n`` is
        ``∇_a C_n · w_n / Σ w``, i.e. the unweighted row ``∇_a C_n / N`` times ``w_n N / Σ w``."""
        ops = ops_of(a)
        xp = ops.xp
        n, total = a.shape[0], scalar(xp.sum(w))
        value = scalar(self.per_sample_unchecked(a, t) @ w) / total
        ops.copyto(out, self.grad_unchecked(a, t))                           # ∇_a C_n / N
        out *= xp.reshape(ops.astype(w * (n / total), out.dtype), (-1, 1))    # · w_n N / Σ w
        return value

    def _checked(self, a: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        if on_device(a):  # targets: checked on the host, moved to a's device once
            a = _check_device_outputs(a)
            y = to_numpy(y) if on_device(y) else y
            return a, from_host(self.prepare(y, tuple(a.shape), numpy_dtype(a.dtype)), a)
        a = _check_outputs(a)
        check_finite(a, "a")
        return a, self.prepare(y, a.shape, a.dtype)

    def value(self, a: Any, y: Any) -> float:
        """The cost: mean over the batch of the per-sample cost ``C_x``."""
        value = self.value_unchecked(*self._checked(a, y))
        return value if isinstance(value, float) else float(to_numpy(value))

    def grad(self, a: Any, y: Any) -> np.ndarray:
        """``dC/da``, shape ``(N, k)``: the per-sample gradient ``∇_a C_x`` divided by ``N``."""
        return self.grad_unchecked(*self._checked(a, y))

    def per_sample(self, a: Any, y: Any) -> np.ndarray:
        """The cost ``C_x`` of each sample, shape ``(N,)``."""
        return self.per_sample_unchecked(*self._checked(a, y))

    def config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class _RegressionTargets(Loss):
    """Targets are real vectors of the outputs' shape; integer class labels ``(N,)`` are
    accepted when there are k ≥ 2 outputs and become one-hot rows (the textbook's MNIST setup)."""

    def prepare(self, y, a_shape, dtype):
        y = as_array(y, "y")
        n, k = a_shape
        if y.ndim == 1 and y.dtype.kind in "iu" and k >= 2:
            return one_hot(_class_labels(y, n, k), k, dtype)
        return _float_targets(y, a_shape, dtype)


class Quadratic(_RegressionTargets):
    r"""The notes' quadratic cost ``C_x = ½‖a − y‖²``; its gradient ``∇_a C_x = a − y`` (seed 000).

    ``value = (1/N) Σ_n ½‖a_n − y_n‖²``; ``grad = (a − y)/N``.

    Shape:
        ``a`` ``(N, k)``; ``y`` ``(N, k)``, or integer labels ``(N,)`` for k ≥ 2 (one-hot rows).

    Example:
        >>> bp.Quadratic().grad(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))   # (a − y)/N
        array([[1., 2.]])
    """

    def per_sample_unchecked(self, a, t):
        r = a - t
        return 0.5 * ops_of(r).rowdot(r, r)

    def value_unchecked(self, a, t):
        r = a - t
        return scalar(0.5 * ops_of(r).dot_all(r, r) / a.shape[0])

    def grad_unchecked(self, a, t):
        g = a - t           # ∇_a C = a − y
        g *= 1.0 / a.shape[0]
        return g

    def value_and_grad_unchecked(self, a, t, out):
        ops = ops_of(a)
        ops.subtract(a, t, out=out)                     # a − y
        value = 0.5 * scalar(ops.dot_all(out, out)) / a.shape[0]
        out *= 1.0 / a.shape[0]                         # ∇_a C / N
        return value


class Huber(_RegressionTargets):
    r"""Huber cost, per output ``h(r) = ½r²`` for ``|r| ≤ δ`` else ``δ(|r| − ½δ)``, with ``r = a − y``.

    ``C_x = Σ_i h(r_i)``; ``∂C_x/∂a_i = clip(r_i, −δ, δ)``.

    Args:
        delta: δ > 0, where the cost turns from quadratic to linear (default 1.0).

    Shape:
        ``a`` ``(N, k)``; ``y`` ``(N, k)``, or integer labels ``(N,)`` for k ≥ 2.

    Attributes:
        delta: δ.

    Example:
        >>> bp.Huber(delta=1.0).value(np.array([[3.0]]), np.array([[0.0]]))   # δ(|r| − ½δ)
        2.5
    """

    def __init__(self, delta: float = 1.0) -> None:
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ConfigError(f"delta must be a number > 0; got {delta!r}")
        self.delta = float(delta)

    def per_sample_unchecked(self, a, t):
        xp = ops_of(a).xp
        r = xp.abs(a - t)
        d = self.delta
        return xp.sum(xp.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d)), axis=1)

    def value_unchecked(self, a, t):
        return scalar(ops_of(a).xp.sum(self.per_sample_unchecked(a, t)) / a.shape[0])

    def grad_unchecked(self, a, t):
        g = ops_of(a).xp.clip(a - t, -self.delta, self.delta)
        g *= 1.0 / a.shape[0]
        return g

    def config(self):
        return {"delta": self.delta}


class CrossEntropy(Workspace, Loss):
    r"""Softmax cross-entropy on logits: ``C_x = −Σ_j y_j log softmax(a)_j``.

    With ``p = softmax(a)``: ``C_x = logsumexp(a) − Σ_j y_j a_j`` (stable for any logits),
    and the fused gradient ``∇_a C_x = p − y`` (the softmax Jacobian and ``−y/p`` cancel).

    Shape:
        logits ``a`` ``(N, k)``; targets: integer labels ``(N,)`` in ``[0, k)`` or rows
        ``(N, k)`` of probabilities (one-hot or soft labels, each row summing to 1).

    Example:
        >>> bp.CrossEntropy().value(np.array([[0.0, 0.0]]), np.array([1]))   # log 2
        0.6931471805599453
    """

    def prepare(self, y, a_shape, dtype):
        y = as_array(y, "y")
        n, k = a_shape
        if y.ndim == 1:
            if y.dtype.kind not in "iu":
                raise DTypeError(
                    f"class labels y must be integers; got dtype {y.dtype} "
                    "(use y.astype(int) if they are whole numbers)"
                )
            return _class_labels(y, n, k)
        t = _float_targets(y, a_shape, dtype)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise InvalidValueError("one-hot or probability targets y must lie in [0, 1]")
        sums = t.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > 1e-4)
        if bad.size:
            raise InvalidValueError(
                f"each row of y must sum to 1 (one-hot or probabilities); row {bad[0]} sums to {sums[bad[0]]}"
            )
        return t

    def per_sample_unchecked(self, a, t):
        # C_x = log Σ_j e^{a_j − m} − Σ_j y_j (a_j − m), m = max_j a_j: both terms are formed
        # from shifted logits, so no large value is ever subtracted from another
        ops = ops_of(a)
        xp = ops.xp
        s = a - xp.max(a, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(s), axis=1))
        if t.ndim == 1:
            return lse - xp.take_along_axis(s, xp.reshape(t, (-1, 1)), axis=1)[:, 0]
        return lse - ops.rowdot(t, s)  # Σ_j y_j = 1 for every row

    def value_unchecked(self, a, t):
        return scalar(ops_of(a).xp.sum(self.per_sample_unchecked(a, t)) / a.shape[0])

    def grad_unchecked(self, a, t):
        xp = ops_of(a).xp
        p = xp.exp(a - xp.max(a, axis=1, keepdims=True))
        p /= xp.sum(p, axis=1, keepdims=True)  # p = softmax(a)
        p -= _one_hot_like(t, a.shape[1], p) if t.ndim == 1 else t   # p − y
        p *= 1.0 / a.shape[0]
        return p

    def training_targets(self, t, k, dtype):
        return one_hot(t, k, dtype) if t.ndim == 1 else t

    def value_and_grad_unchecked(self, a, t, out):
        if t.ndim == 1:
            return super().value_and_grad_unchecked(a, t, out)
        n, ops = a.shape[0], ops_of(a)
        m = self._buffer("m", (n,), a.dtype, a)
        se = self._buffer("se", (n,), a.dtype, a)
        ops.max(a, axis=1, out=m)
        ops.subtract(a, m[:, None], out=out)         # s = a − max_j a_j
        ys = scalar(ops.dot_all(t, out))              # Σ_n Σ_j y_nj s_nj
        ops.exp(out, out=out)
        ops.sum(out, axis=1, out=se)                  # Σ_j e^{s_j}
        out /= se[:, None]                            # p = softmax(a)
        out -= t                                      # ∇_a C_x = p − y
        out *= 1.0 / n
        ops.log(se, out=se)
        return (scalar(ops.xp.sum(se)) - ys) / n      # mean of log Σ e^{s} − Σ_j y_j s_j


class BinaryCrossEntropy(Loss):
    r"""Sigmoid cross-entropy on logits, summed over the k outputs:
    ``C_x = Σ_i −[y_i log φ(a_i) + (1 − y_i) log(1 − φ(a_i))]``.

    Computed stably as ``max(a, 0) − a y + log(1 + e^{−|a|})``; gradient ``φ(a) − y``.

    Shape:
        logits ``a`` ``(N, k)``; targets ``(N, k)`` in [0, 1], or integer labels ``(N,)``: 0/1
        for a single output, class indices (one-hot) for k ≥ 2.

    Example:
        >>> bp.BinaryCrossEntropy().value(np.array([[0.0]]), np.array([1]))   # log 2
        0.6931471805599453
    """

    def prepare(self, y, a_shape, dtype):
        y = as_array(y, "y")
        n, k = a_shape
        if y.ndim == 1 and y.dtype.kind in "biu":
            labels = _class_labels(y.astype(np.intp), n, max(k, 2))
            if k == 1:
                return labels.astype(dtype).reshape(n, 1)
            return one_hot(labels, k, dtype)
        t = _float_targets(y, a_shape, dtype)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise InvalidValueError(
                f"binary targets y must lie in [0, 1]; got values from {t.min()} to {t.max()}"
            )
        return t

    def per_sample_unchecked(self, a, t):
        xp = ops_of(a).xp
        return xp.sum(xp.maximum(a, 0.0) - a * t + xp.log1p(xp.exp(-xp.abs(a))), axis=1)

    def value_unchecked(self, a, t):
        return scalar(ops_of(a).xp.sum(self.per_sample_unchecked(a, t)) / a.shape[0])

    def grad_unchecked(self, a, t):
        g = Sigmoid.f(a)   # φ(a)
        g -= t             # φ(a) − y
        g *= 1.0 / a.shape[0]
        return g


#: losses by the lower-case names used on the command line and in model files
LOSSES: dict[str, type[Loss]] = {
    "quadratic": Quadratic,
    "cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "huber": Huber,
}


def get_loss(name: str | Loss) -> Loss:
    """A loss by name (one of :data:`LOSSES`; ``-`` and ``_`` alike), or the loss itself."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[canonical_name(name)]()
    except (KeyError, TypeError):
        raise ConfigError(f"loss must be one of {sorted(LOSSES)}; got {describe(name)}") from None


class Poisson(Loss):
    r"""Half the Poisson deviance on log-mean outputs (scikit-learn's ``loss="poisson"``).

    The network's output ``a`` is the logarithm of the predicted mean, ``μ = e^a`` (a log link,
    as :class:`CrossEntropy` takes logits), and per sample::

        C_x = Σ_i ( e^{a_i} − y_i a_i + y_i log y_i − y_i )     (0 log 0 = 0)
        ∂C_x/∂a_i = e^{a_i} − y_i

    The term ``y log y − y`` does not depend on the outputs; it makes ``C_x ≥ 0`` with
    ``C_x = 0`` exactly where ``μ = y``, and it is the term scikit-learn's MLP includes.

    Shape:
        a: ``(N, k)`` log-means; y: ``(N, k)`` counts or rates, finite and ``≥ 0``.

    Example:
        >>> import numpy as np
        >>> loss = Poisson()
        >>> a, y = np.log(np.array([[2.0]])), np.array([[2.0]])
        >>> loss.value(a, y), loss.grad(a, y)
        (0.0, array([[0.]]))
    """

    def prepare(self, y, a_shape, dtype):
        t = _float_targets(as_array(y, "y"), a_shape, dtype)
        if t.size and t.min() < 0:
            raise InvalidValueError(f"Poisson targets y must be >= 0 (counts or rates); got a minimum of {t.min()}")
        return t

    def per_sample_unchecked(self, a, t):
        # y log y with 0 log 0 = 0: log of 1 where y = 0
        xp = ops_of(a).xp
        ylogy = t * xp.log(xp.where(t > 0, t, 1.0))
        return xp.sum(xp.exp(a) - t * a + ylogy - t, axis=1)

    def value_unchecked(self, a, t):
        return scalar(ops_of(a).xp.sum(self.per_sample_unchecked(a, t)) / a.shape[0])

    def grad_unchecked(self, a, t):
        g = ops_of(a).xp.exp(a)  # μ = e^a
        g -= t              # μ − y
        g *= 1.0 / a.shape[0]
        return g
