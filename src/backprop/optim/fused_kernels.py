"""The optimizers' fused updates: each one compiled loop over flat parameter arrays.

Imported only when an update asks for them (:mod:`backprop.optim._fused`), because it imports
numba, an optional dependency. Each kernel is the update of its optimizer module
(:mod:`~backprop.optim.sgd`, :mod:`~backprop.optim.adam`) with the same equations, written as
one pass over memory instead of NumPy's chain of whole-array operations. They live with the
optimizers, not with the compiled engine, so that the optimizers import nothing above them.
"""

import math

import numba

# the compiled engine's flags (see backprop.engines.numba_kernels): reassociation and contraction
# let the loops use SIMD and FMA; no "nnan"/"ninf", so NaN and infinity propagate as in NumPy
_FLAGS = {"reassoc", "contract", "nsz", "arcp"}
#: an entry point, called from Python (compiled once per signature, cached on disk); inlined
#: where another kernel calls it (the split-batch engine's, backprop.engines.split_kernels), so
#: that the caller holds the one copy of its machine code (see backprop.engines.numba_kernels)
jit = numba.njit(cache=True, fastmath=_FLAGS, nogil=True, error_model="numpy", inline="always")

# The scalars arrive in the parameters' dtype, so float32 stays float32.


@jit
def momentum_update(p, g, v, lr, mu, wd, decay, nesterov):
    """One pass of :class:`~backprop.SGD` with momentum over flat arrays, in place:
    ``g ← g + wd·w`` (weights only), ``v ← μ v + g``, then ``w ← w − η v`` or, Nesterov,
    ``w ← w − η (g + μ v)``. The NumPy form takes four passes over memory for the same."""
    for i in range(p.shape[0]):
        gi = g[i] + wd * p[i] if decay else g[i]
        vi = mu * v[i] + gi
        v[i] = vi
        p[i] -= lr * (gi + mu * vi) if nesterov else lr * vi


@jit
def adam_update(p, g, m, v, b1, b2, one_minus_b1, one_minus_b2, step_size, eps_hat, wd, decay, decoupled, shrink):
    """One pass of :class:`~backprop.Adam` (``decoupled``: :class:`~backprop.AdamW`) over flat
    arrays, in place, in the form ``Adam._update`` computes: ``g ← g + wd·w`` (Adam) or
    ``w ← (1 − η wd) w`` (AdamW) for weights, ``m ← β₁ m + (1 − β₁) g``,
    ``v ← β₂ v + (1 − β₂) g²``, ``w ← w − step_size · m / (√v + ε̂)``. The NumPy form
    takes twelve passes over memory for the same."""
    for i in range(p.shape[0]):
        gi = g[i]
        pi = p[i]
        if decay:
            if decoupled:
                pi *= shrink
            else:
                gi += wd * pi
        mi = b1 * m[i] + one_minus_b1 * gi
        vi = b2 * v[i] + one_minus_b2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = pi - step_size * mi / (math.sqrt(vi) + eps_hat)
