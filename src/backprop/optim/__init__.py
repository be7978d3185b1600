"""Optimizers: turn the gradients of a backward pass into an in-place parameter update.

Every optimizer is used the same way::

    opt = bp.SGD(lr=0.5)                       # the notes' gradient descent
    opt.step(params, grads)                    # params[i] -= ... in place, from grads[i]

``params`` and ``grads`` are equally long sequences of arrays of matching shapes
(a network's ``W`` and ``b`` arrays and their gradients, in a fixed order). The
loss is a mean over the batch, so ``grads`` already carry the ``1/m`` of the
textbook's ``w ← w − η/m Σ_x ∇C_x``.

Modules: :mod:`~backprop.optim.base` (the :class:`Optimizer` base class),
:mod:`~backprop.optim.sgd`, :mod:`~backprop.optim.rmsprop`, :mod:`~backprop.optim.adam`
(one per optimizer: its equations, readable and, where there is one, fused) and
:mod:`~backprop.optim.schedules`.

Rules shared by every optimizer (the :class:`Optimizer` base implements them):

* **Per-parameter state** (velocities, moments) is keyed by position in the list,
  allocated at the first :meth:`~Optimizer.step`, in each parameter's dtype. Pass
  the same list, in the same order, at every call.
* **Weight decay** ``wd`` applies to weight matrices only (arrays with ``ndim >= 2``),
  never to biases (``ndim == 1``), as in Nielsen's regularised cost
  ``C = C_0 + λ/(2n) Σ_w w²`` whose sum runs over weights alone; ``wd = λ/n``.
  For :class:`SGD`, :class:`RMSprop` and :class:`Adam` it is an L2 term added to
  the gradient, ``g ← g + wd·w``; :class:`AdamW` decouples it.
* **Gradient clipping** (``clip_norm``): the global L2 norm over *all* gradients,
  ``‖g‖ = sqrt(Σ_i Σ g_i²)``, is measured (``last_grad_norm``); if it exceeds
  ``clip_norm`` every gradient is scaled by ``clip_norm / ‖g‖`` **in place**, so
  after ``step`` the caller's ``grads`` hold the clipped values. A NaN or infinite
  norm is recorded but nothing is scaled, so the divergence stays visible.
* **Max-norm** (``max_norm``, Srivastava et al. 2014): after the update, every row
  of every weight matrix (the incoming weights of one unit, ``W`` being
  ``(d_out, d_in)``) whose L2 norm exceeds ``max_norm`` is rescaled to norm ``max_norm``.
* **Schedules**: the rate of the next step is ``schedule(t, lr)`` (:attr:`Optimizer.lr`),
  with ``t`` the number of steps taken; see :mod:`backprop.optim.schedules`.
* **Fused updates** (PyTorch's ``fused=``): :class:`SGD` with momentum, :class:`Adam`
  and :class:`AdamW` also have their update as one compiled loop (numba), the same
  equations in one pass over memory, equal to the readable NumPy update to rounding.
  ``fused=True`` on the optimizer always uses it, ``fused=False`` never; with the
  default ``None``, each ``step(params, grads, fused=...)`` call chooses.
* **Flat buffers**: when ``params`` (and ``grads``) are consecutive views of one
  contiguous buffer, as a network's are, the update runs once over the whole buffer
  instead of once per array, with the same numbers bit for bit; the state then
  lives in flat buffers too (``state_dict`` keeps its one-array-per-parameter form).

The hot path allocates nothing after the first step: every update is written
with in-place operators and ``out=`` into state arrays and one scratch buffer per
parameter (RMSprop and Adam add a second one for a weight matrix under L2 decay).
Hyperparameters are Python floats, so float32 parameters stay float32.
"""

from __future__ import annotations

from . import schedules
from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "schedules"]
