"""``solver="lbfgs"``: full-batch L-BFGS (``scipy.optimize.minimize(method="L-BFGS-B")``) over
the network's one parameter buffer, fed by backprop's loss and gradient.

The objective is scikit-learn's: for all n rows at once, with total weight ``S = Σ_n w_n``
(``n`` without sample weights),

    J(θ) = Σ_n w_n C_n(θ) / S + (α / 2) Σ_l ‖W^l‖² / S,     ∇J = backprop's gradient + α W^l / S

evaluated by one forward pass, the loss's value and gradient, and one backward pass. θ is
``net.parameter_buffer`` itself, laid out as it is (``W`` row-major, then ``b``, layer by layer),
so the gradient scipy needs is ``net.gradient_buffer``, with no packing or unpacking.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from typing import Any, cast

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..errors import ConfigError
from ..layers import Dense
from ..losses import Loss
from ..network import Network
from ._settings import Settings
from ._stochastic import NON_FINITE, SolverDivergedError, TrainData


class Objective:
    """``J(θ)`` and ``∇J(θ)`` for scipy (see the module docstring).

    Args:
        net: the network; its parameter buffer is set to each θ asked for.
        loss: the loss; data: the rows (all of them form the one batch); alpha: α ≥ 0.

    Attributes:
        data_loss, penalty: the two terms of ``J`` at the last θ evaluated.
    """

    def __init__(self, net: Network, loss: Loss, data: TrainData, alpha: float) -> None:
        self.net, self.loss, self.alpha = net, loss, alpha
        self.X, self.weights = data.X, data.weights
        n, k = data.X.shape[0], cast(int, net.output_width)
        self.t = loss.training_targets(loss.prepare(data.y, (n, k), net.dtype), k, net.dtype)
        self.g = np.empty((n, k), net.dtype)
        self.total = float(n) if data.weights is None else float(data.weights.sum())
        dense = [layer for layer in net.layers if isinstance(layer, Dense)]
        self.pairs = [(layer.params["W"], layer.grads["W"]) for layer in dense]
        self.data_loss = self.penalty = 0.0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(J(θ), ∇J(θ))``, both float64, for θ ``(n_params,)``."""
        net = self.net
        np.copyto(net.parameter_buffer, theta, casting="same_kind")
        a = net.forward_unchecked(self.X, train=True)                              # a^L
        if self.weights is None:
            value = self.loss.value_and_grad_unchecked(a, self.t, self.g)            # C, dC/da^L
        else:
            value = self.loss.weighted_value_and_grad_unchecked(a, self.t, self.weights, self.g)
        net.backward_unchecked(self.g, input_grad=False)                           # ∂C/∂θ
        squares, c = 0.0, self.alpha / self.total
        for w, g in self.pairs:
            squares += float(np.vdot(w, w))
            g += c * w                                                              # + α W / S
        self.data_loss, self.penalty = value, 0.5 * self.alpha * squares / self.total
        return value + self.penalty, net.gradient_buffer.astype(np.float64)


def _scipy_blas_single_threaded() -> Any:
    """A context in which the BLAS that scipy's wheels ship (in ``scipy.libs``) runs one thread.
    L-BFGS-B calls it on vectors of ``n_params`` entries, too short to gain from threads; on a
    busy machine its waiting threads made one check's fits 37 times slower (measured: 29 s
    against 0.8 s on 2 shared cores). NumPy's BLAS, which runs the forward and backward passes,
    keeps its threads; where scipy shares NumPy's BLAS (no ``scipy.libs``) nothing is limited."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    own = [lib.filepath for lib in blas.lib_controllers
           if os.path.basename(os.path.dirname(lib.filepath)) == "scipy.libs"]
    return blas.select(filepath=own).limit(limits=1) if own else contextlib.nullcontext()


def fit_lbfgs(est: Any, s: Settings, data: TrainData) -> None:
    """Minimise ``J`` from the network's current weights; set ``n_iter_``, ``loss_``, ``history_``."""
    import scipy.optimize

    if s.dropout:
        raise ConfigError(f"dropout={s.dropout} needs a stochastic solver: L-BFGS needs a deterministic "
                          "objective; use solver='adam' or 'sgd', or dropout=0")
    net = est.network_
    objective = Objective(net, est._loss, data, s.alpha)

    clock = [time.perf_counter()]

    def record(intermediate_result: Any) -> None:  # scipy >= 1.11 passes an OptimizeResult
        k, now = len(est.history_) + 1, time.perf_counter()
        est.history_.record(k, {"loss": float(intermediate_result.fun), "accuracy": None}, math.nan,
                            now - clock[0], validation=False)
        clock[0] = now
        if s.verbose:
            print(f"Iteration {k}, loss = {float(intermediate_result.fun):.8f}")

    with _scipy_blas_single_threaded():
        result = scipy.optimize.minimize(objective, net.parameter_buffer.astype(np.float64), method="L-BFGS-B",
                                         jac=True, callback=record,
                                         options={"maxfun": s.max_fun, "maxiter": s.max_iter, "gtol": s.tol})
    objective(result.x)  # leave the network (and the two terms) at the solution
    if not np.isfinite(net.parameter_buffer).all() or not np.isfinite(objective.data_loss):
        raise SolverDivergedError(f"{NON_FINITE} (L-BFGS ended at a non-finite loss or weights)")
    est.n_iter_ = min(int(result.nit), s.max_iter)
    est.loss_ = objective.data_loss * est._loss_scale + objective.penalty
    est.history_.engine = "numpy"
    if result.status != 0:
        message = result.message.decode() if isinstance(result.message, bytes) else str(result.message)
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}): "
                      f"{message}. Increase the number of iterations (max_iter) or the number of loss "
                      "function calls (max_fun), or scale the data.", ConvergenceWarning, stacklevel=4)
