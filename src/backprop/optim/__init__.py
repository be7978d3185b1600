"""Optimizers: turn the gradients of a backward pass into an in-place parameter update.

Every optimizer is used the same way::

    opt = bp.SGD(lr=0.5)                       # the notes' gradient descent
    opt.step(params, grads)                    # params[i] -= ... in place, from grads[i]

``params`` and ``grads`` are equally long sequences of arrays of matching shapes
(a network's ``W`` and ``b`` arrays and their gradients, in a fixed order). The
loss is a mean over the batch, so ``grads`` already carry the ``1/m`` of the
textbook's ``w ← w − η/m Σ_x ∇C_x``.

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
  with ``t`` the number of steps taken; see :mod:`backprop.schedules`.

The hot path allocates nothing after the first step: every update is written
with in-place operators and ``out=`` into state arrays and one scratch buffer per
parameter (RMSprop and Adam add a second one for a weight matrix under L2 decay).
Hyperparameters are Python floats, so float32 parameters stay float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import as_array, describe, non_negative_float, positive_float
from ..errors import ConfigError, DTypeError, InvalidValueError, ShapeError

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW"]

_multiply = np.multiply
_divide = np.divide
_sqrt = np.sqrt


def _fraction(value: Any, name: str) -> float:
    """``value`` as a float in [0, 1)."""
    value = non_negative_float(value, name)
    if value >= 1:
        raise InvalidValueError(f"{name} must be in [0, 1); got {value}")
    return value


def _positive_or_none(value: Any, name: str) -> float | None:
    return None if value is None else positive_float(value, name)


def _check_lists(params: Any, grads: Any) -> None:
    """``params`` and ``grads`` must be lists (or tuples) of arrays, not arrays themselves."""
    for name, value in (("params", params), ("grads", grads)):
        if not isinstance(value, (list, tuple)):
            raise DTypeError(
                f"{name} must be a list of arrays (e.g. net.parameters() and net.gradients()); "
                f"got {describe(value)}"
            )


class Optimizer:
    """Base class: validation, clipping, weight-decay bookkeeping, max-norm, state.

    Subclasses implement :meth:`_update` (the equations), list their state arrays
    in :meth:`_buffer_names` and their extra hyperparameters in ``_repr_fields``.

    Args:
        lr: the base learning rate η (finite, > 0).
        weight_decay: ``wd >= 0`` (see the module docstring for how each optimizer uses it).
        clip_norm: clip the global gradient norm to this value (> 0), or None.
        max_norm: max-norm constraint on the rows of weight matrices (> 0), or None.
        schedule: a :class:`~backprop.schedules.Schedule` (any callable
            ``(step, base_lr) -> lr``), or None for a constant rate.

    Attributes:
        base_lr: the ``lr`` argument (setting :attr:`lr` changes it).
        t: number of steps taken.
        last_grad_norm: the global gradient norm measured before clipping at the
            last step; None unless ``clip_norm`` is set.
    """

    _repr_fields: tuple[str, ...] = ()
    _l2_buffer = False  # True: the L2 term g + wd·w needs its own buffer (it is read twice)
    #: while :func:`~backprop.fit` trains with ``engine="auto"`` and numba is installed: the
    #: module :mod:`backprop.compiled_kernels`, whose one-pass updates :class:`SGD` (with
    #: momentum) and :class:`Adam`/:class:`AdamW` then use for C-contiguous parameters, with
    #: the same equations; None (the default): the NumPy forms written out below
    compiled: Any = None

    def __init__(
        self,
        lr: float,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
    ) -> None:
        self.base_lr = positive_float(lr, "lr")
        self.weight_decay = non_negative_float(weight_decay, "weight_decay")
        self.clip_norm = _positive_or_none(clip_norm, "clip_norm")
        self.max_norm = _positive_or_none(max_norm, "max_norm")
        if schedule is not None and not callable(schedule):
            raise DTypeError(
                "schedule must be a Schedule (a callable (step, base_lr) -> lr) or None; "
                f"got {describe(schedule)}"
            )
        self.schedule = schedule
        self.t = 0
        self.last_grad_norm: float | None = None
        self._buffers: dict[str, list[np.ndarray]] = {}
        self._shapes: tuple[tuple[int, ...], ...] | None = None
        self._ready = False

    # ---------------------------------------------------------------- public API

    @property
    def lr(self) -> float:
        """The learning rate the next step will use: ``schedule(t, base_lr)``."""
        if self.schedule is None:
            return self.base_lr
        return float(self.schedule(self.t, self.base_lr))

    @lr.setter
    def lr(self, value: float) -> None:
        self.base_lr = positive_float(value, "lr")

    fused: bool | None = None  # TEMPORARY until the optim branch lands

    @property
    def has_fused_update(self) -> bool:
        return (type(self).__name__ == "SGD" and self.momentum > 0) or type(self).__name__ in ("Adam", "AdamW")  # type: ignore[attr-defined]

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], *, fused: bool | None = None) -> None:
        if fused:
            from ..engines import numba_kernels
            self.compiled = numba_kernels
        else:
            self.compiled = None
        """Update every ``params[i]`` in place from ``grads[i]`` (same shapes).

        Order: clip the gradients (``clip_norm``), apply the optimizer's update
        (with weight decay), then the max-norm constraint; finally ``t += 1``.

        Raises:
            ShapeError: ``params`` and ``grads`` differ in length or shapes, or the
                list differs from the one the state was built for.
            DTypeError: at the first step, a non-floating or non-array entry.
        """
        if not self._ready:  # checked once: the hot path below trusts the lists
            _check_lists(params, grads)
        n = len(params)
        if len(grads) != n:
            raise ShapeError(
                f"grads must hold one array per parameter: params has {n} arrays, "
                f"grads has {len(grads)}"
            )
        if not self._ready:
            self._setup(params, grads)
        shapes = self._shapes
        if n != len(shapes):
            raise ShapeError(
                f"params must be the list this optimizer was first stepped with: it had "
                f"{len(shapes)} arrays, now {n}; use a fresh optimizer for other parameters"
            )
        for p, g, shape in zip(params, grads, shapes, strict=True):
            if p.shape != shape or g.shape != shape:
                self._raise_shape_error(params, grads)
        lr = self.lr
        if not 0.0 <= lr < math.inf:
            raise InvalidValueError(
                f"schedule must return a finite learning rate >= 0; "
                f"{self.schedule!r} returned {lr} at step {self.t}"
            )
        if self.clip_norm is not None:
            self._clip(grads)
        self._update(params, grads, lr)
        if self.max_norm is not None:
            self._constrain(params)
        self.t += 1

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bitwise-identically, as copies.

        ``{"optimizer": class name, "t": steps taken, name: [array per parameter], ...}``
        with one entry per state buffer (see each class; absent before the first
        step). Hyperparameters are not included: rebuild the optimizer with the
        same arguments (its repr shows them), then :meth:`load_state_dict`.
        """
        state: dict[str, Any] = {"optimizer": type(self).__name__, "t": self.t}
        for name, arrays in self._buffers.items():
            state[name] = [a.copy() for a in arrays]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``t`` and the state buffers from :meth:`state_dict` (copied in).

        Everything is checked before anything changes; the shapes and dtypes are
        also checked against the parameters at the next :meth:`step`.

        Raises:
            ConfigError: wrong optimizer class, missing or unknown keys.
            ShapeError: buffers of inconsistent lengths or shapes.
            DTypeError, InvalidValueError: a bad ``t`` or a non-float buffer.
        """
        cls = type(self).__name__
        if not isinstance(state, dict):
            raise DTypeError(f"state must be a dict from {cls}.state_dict(); got {describe(state)}")
        if state.get("optimizer") != cls:
            raise ConfigError(
                f"state['optimizer'] must be {cls!r} (this optimizer's class); "
                f"got {state.get('optimizer')!r}"
            )
        if "t" not in state:
            raise ConfigError("state must have the key 't' (the number of steps taken)")
        t = state["t"]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise DTypeError(f"state['t'] must be a non-negative integer; got {describe(t)}")
        if t < 0:
            raise InvalidValueError(f"state['t'] must be a non-negative integer; got {t}")
        expected = set(self._buffer_names())
        given = set(state) - {"optimizer", "t"}
        if given - expected:
            raise ConfigError(
                f"state has unknown keys {sorted(given - expected)}; {self!r} keeps "
                f"{sorted(expected) if expected else 'no state arrays'}"
            )
        if given and given != expected:
            raise ConfigError(f"state lacks the keys {sorted(expected - given)}")
        if not given and expected and t > 0:
            raise ConfigError(f"state lacks the keys {sorted(expected)} although t = {t}")
        buffers: dict[str, list[np.ndarray]] = {}
        for key in self._buffer_names():
            if key not in given:
                continue
            arrays = state[key]
            if not isinstance(arrays, (list, tuple)):
                raise DTypeError(f"state[{key!r}] must be a list of arrays; got {describe(arrays)}")
            copies = []
            for i, a in enumerate(arrays):
                array = as_array(a, f"state[{key!r}][{i}]")
                if array.dtype.kind != "f":
                    raise DTypeError(
                        f"state[{key!r}][{i}] must be a float array; got dtype {array.dtype}"
                    )
                copies.append(array.copy())
            buffers[key] = copies
        shapes = None
        for key, arrays in buffers.items():
            these = tuple(a.shape for a in arrays)
            if shapes is None:
                shapes, first = these, key
            elif these != shapes:
                raise ShapeError(
                    f"state[{key!r}] must hold arrays of the shapes in state[{first!r}], "
                    f"{list(shapes)}; got {list(these)}"
                )
        if shapes is not None and self._shapes is not None and shapes != self._shapes:
            raise ShapeError(
                f"state arrays must have the shapes of this optimizer's parameters, "
                f"{list(self._shapes)}; got {list(shapes)}"
            )
        self.t = int(t)
        self._buffers = buffers
        self._ready = False

    def __repr__(self) -> str:
        args = [f"lr={self.base_lr!r}"]
        args += [f"{name}={getattr(self, name)!r}" for name in self._repr_fields]
        for name in ("clip_norm", "max_norm", "schedule"):
            if getattr(self, name) is not None:
                args.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    # ---------------------------------------------------------- for subclasses

    def _buffer_names(self) -> tuple[str, ...]:
        """Names of the per-parameter state arrays (the keys of :meth:`state_dict`)."""
        return ()

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        """Apply the optimizer's equations in place, with learning rate ``lr``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- internals

    def _setup(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Validate the parameter list once and allocate state and scratch buffers."""
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            for name, a in (("params", p), ("grads", g)):
                dtype = getattr(a, "dtype", None)
                if dtype is None or not hasattr(a, "shape"):
                    raise DTypeError(f"{name}[{i}] must be an array; got {describe(a)}")
                if dtype.kind != "f":
                    raise DTypeError(
                        f"{name}[{i}] must be a float32 or float64 array; got dtype {dtype}"
                    )
            if not getattr(getattr(p, "flags", None), "writeable", True):
                raise InvalidValueError(
                    f"params[{i}] must be writable (it is updated in place); got a read-only array"
                )
            if g.shape != p.shape:
                raise ShapeError(
                    f"grads[{i}] must have the shape of params[{i}], {p.shape}; got {g.shape}"
                )
            if g.dtype != p.dtype:  # the update would be rounded silently into p's dtype
                raise DTypeError(
                    f"grads[{i}] must have the dtype of params[{i}], {p.dtype}; got {g.dtype}"
                )
        n = len(params)
        for name, arrays in self._buffers.items():  # state loaded by load_state_dict
            if len(arrays) != n:
                raise ShapeError(
                    f"the loaded state has {len(arrays)} {name!r} arrays but params has {n}"
                )
            for i, (a, p) in enumerate(zip(arrays, params, strict=True)):
                if a.shape != p.shape:
                    raise ShapeError(
                        f"the loaded state[{name!r}][{i}] must have the shape of params[{i}], "
                        f"{p.shape}; got {a.shape}"
                    )
                if a.dtype != p.dtype:
                    raise DTypeError(
                        f"the loaded state[{name!r}][{i}] must have the dtype of params[{i}], "
                        f"{p.dtype}; got {a.dtype}"
                    )
        if not self._buffers:
            self._buffers = {
                name: [np.zeros_like(p) for p in params] for name in self._buffer_names()
            }
        self._shapes = tuple(p.shape for p in params)
        self._scratch = [np.empty_like(p) for p in params]
        self._decay = [self.weight_decay > 0 and p.ndim >= 2 for p in params]
        self._gbuf = [
            np.empty_like(p) if decay and self._l2_buffer else None
            for p, decay in zip(params, self._decay, strict=True)
        ]
        self._nones = [None] * n
        self._rows = [
            np.empty_like(p, shape=(p.shape[0],) + (1,) * (p.ndim - 1))
            if self.max_norm is not None and p.ndim >= 2
            else None
            for p in params
        ]
        self._row_axes = [tuple(range(1, p.ndim)) for p in params]
        self._ready = True

    def _raise_shape_error(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        for i, (p, g, shape) in enumerate(zip(params, grads, self._shapes, strict=True)):
            if p.shape != shape:
                raise ShapeError(
                    f"params[{i}] must keep the shape it had at the first step, {shape}; "
                    f"got {p.shape} (use a fresh optimizer for other parameters)"
                )
            if g.shape != shape:
                raise ShapeError(
                    f"grads[{i}] must have the shape of params[{i}], {shape}; got {g.shape}"
                )

    def _clip(self, grads: Sequence[np.ndarray]) -> None:
        """Global-norm clipping: if ‖g‖ > clip_norm, g_i ← g_i · clip_norm/‖g‖ (in place)."""
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is handled below
            for g in grads:
                flat = g.ravel()
                total += float(flat @ flat)
        if not math.isfinite(total):  # float32 overflow of the squares? recount in float64
            total = sum(float(np.square(g, dtype=np.float64).sum()) for g in grads)
        norm = math.sqrt(total)
        self.last_grad_norm = norm
        if self.clip_norm < norm < math.inf:
            scale = self.clip_norm / norm
            for g in grads:
                g *= scale

    def _constrain(self, params: Sequence[np.ndarray]) -> None:
        """Max-norm: each row w_j of a weight matrix, w_j ← w_j · c / max(‖w_j‖, c)."""
        c = self.max_norm
        for p, s, r, axes in zip(params, self._scratch, self._rows, self._row_axes, strict=True):
            if r is None:
                continue
            _multiply(p, p, out=s)
            s.sum(axis=axes, keepdims=True, out=r)  # r_j = ‖w_j‖²
            _sqrt(r, out=r)
            np.maximum(r, c, out=r)
            _divide(c, r, out=r)  # the factor: exactly 1.0 for rows within the bound
            np.copyto(s, r)  # spread it over the row first: an in-place broadcast
            p *= s  # multiply would allocate NumPy's iterator buffer at every call


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Plain (``momentum=0``), the notes' gradient descent::

        w ← w − η g

    With momentum μ > 0 (PyTorch's convention, the velocity v starts at 0)::

        v ← μ v + g
        w ← w − η v                   (classical)
        w ← w − η (g + μ v)           (nesterov=True, with the new v)

    where, for weight matrices only, ``g = ∇C + wd·w`` (L2 weight decay; biases
    are not decayed).

    Args:
        lr: learning rate η (> 0).
        momentum: μ in [0, 1).
        nesterov: use Nesterov's look-ahead form (needs momentum > 0).
        weight_decay: wd >= 0, the textbook's λ/n.
        clip_norm, max_norm, schedule: see :class:`Optimizer`.

    State: ``"velocity"`` (one array per parameter) when momentum > 0, else none.

    Example:
        >>> import numpy as np
        >>> w, b = np.array([[1.0, -2.0]]), np.array([0.5])
        >>> opt = SGD(lr=0.1, momentum=0.9)
        >>> opt.step([w, b], [np.array([[0.5, 0.5]]), np.array([1.0])])
        >>> w, b
        (array([[ 0.95, -2.05]]), array([0.4]))
    """

    _repr_fields = ("momentum", "nesterov", "weight_decay")

    def __init__(
        self,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
    ) -> None:
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule
        )
        self.momentum = _fraction(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise DTypeError(f"nesterov must be True or False; got {describe(nesterov)}")
        if nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0; got momentum=0.0")
        self.nesterov = bool(nesterov)

    def _buffer_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum > 0 else ()

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        wd, mu = self.weight_decay, self.momentum
        if mu == 0:
            for p, g, s, decay in zip(params, grads, self._scratch, self._decay, strict=True):
                if decay:  # s = η (g + wd·w)
                    _multiply(p, wd, out=s)
                    s += g
                    s *= lr
                else:  # s = η g
                    _multiply(g, lr, out=s)
                p -= s  # w ← w − η g
            return
        nesterov, lr_mu = self.nesterov, lr * mu
        kernels = self.compiled
        for p, g, s, v, decay in zip(
            params, grads, self._scratch, self._buffers["velocity"], self._decay, strict=True
        ):
            if kernels is not None and p.flags.c_contiguous and g.flags.c_contiguous:
                t = p.dtype.type  # float32 parameters: float32 arithmetic
                kernels.momentum_update(p.reshape(-1), g.reshape(-1), v.reshape(-1), t(lr), t(mu), t(wd),
                                        decay, nesterov)
                continue
            if decay:  # g ← g + wd·w
                _multiply(p, wd, out=s)
                s += g
                g = s
            v *= mu
            v += g  # v ← μ v + g
            if nesterov:  # w ← w − η g − η μ v
                _multiply(g, lr, out=s)
                p -= s
                _multiply(v, lr_mu, out=s)
            else:  # w ← w − η v
                _multiply(v, lr, out=s)
            p -= s


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e, PyTorch's non-centred form).

    With the running mean square v starting at 0 (and b, when momentum > 0)::

        v ← ρ v + (1 − ρ) g²
        w ← w − η g / (√v + ε)                    (momentum = 0)
        b ← μ b + g / (√v + ε);   w ← w − η b     (momentum μ > 0)

    where, for weight matrices only, ``g = ∇C + wd·w`` (L2 weight decay).

    Args:
        lr: learning rate η (> 0).
        rho: decay of the mean square, in [0, 1).
        eps: ε > 0, added to √v.
        momentum: μ in [0, 1).
        weight_decay: wd >= 0.
        clip_norm, max_norm, schedule: see :class:`Optimizer`.

    State: ``"square_avg"`` (v), and ``"velocity"`` (b) when momentum > 0.
    """

    _repr_fields = ("rho", "eps", "momentum", "weight_decay")
    _l2_buffer = True

    def __init__(
        self,
        lr: float = 1e-3,
        rho: float = 0.9,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
    ) -> None:
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule
        )
        self.rho = _fraction(rho, "rho")
        self.eps = positive_float(eps, "eps")
        self.momentum = _fraction(momentum, "momentum")

    def _buffer_names(self) -> tuple[str, ...]:
        return ("square_avg", "velocity") if self.momentum > 0 else ("square_avg",)

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        wd, rho, eps, mu = self.weight_decay, self.rho, self.eps, self.momentum
        one_minus_rho = 1.0 - rho
        velocities = self._buffers["velocity"] if mu > 0 else self._nones
        for p, g, s, gd, sq, b in zip(
            params,
            grads,
            self._scratch,
            self._gbuf,
            self._buffers["square_avg"],
            velocities,
            strict=True,
        ):
            if gd is not None:  # g ← g + wd·w
                _multiply(p, wd, out=gd)
                gd += g
                g = gd
            sq *= rho
            _multiply(g, g, out=s)
            s *= one_minus_rho
            sq += s  # v ← ρ v + (1 − ρ) g²
            _sqrt(sq, out=s)
            s += eps
            _divide(g, s, out=s)  # s = g / (√v + ε)
            if b is not None:
                b *= mu
                b += s  # b ← μ b + s
                _multiply(b, lr, out=s)
            else:
                s *= lr
            p -= s  # w ← w − η s   or   w ← w − η b


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient.

    At step number ``k = t + 1`` (1-based), with m and v starting at 0::

        m ← β₁ m + (1 − β₁) g
        v ← β₂ v + (1 − β₂) g²
        w ← w − η · (m / (1 − β₁ᵏ)) / (√v / √(1 − β₂ᵏ) + ε)

    where, for weight matrices only, ``g = ∇C + wd·w`` (PyTorch's ``Adam``; for
    the decoupled form use :class:`AdamW`). The last line is computed, with one
    operation fewer, in the algebraically identical form
    ``w ← w − (η √(1 − β₂ᵏ) / (1 − β₁ᵏ)) · m / (√v + ε √(1 − β₂ᵏ))``.

    Args:
        lr: learning rate η (> 0).
        beta1, beta2: decay rates of the moment estimates, in [0, 1).
        eps: ε > 0.
        weight_decay: wd >= 0.
        clip_norm, max_norm, schedule: see :class:`Optimizer`.

    State: ``"m"`` and ``"v"``, the first and second moment estimates.
    """

    _repr_fields = ("beta1", "beta2", "eps", "weight_decay")
    _l2_buffer = True
    _decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
    ) -> None:
        super().__init__(
            lr, weight_decay=weight_decay, clip_norm=clip_norm, max_norm=max_norm, schedule=schedule
        )
        self.beta1 = _fraction(beta1, "beta1")
        self.beta2 = _fraction(beta2, "beta2")
        self.eps = positive_float(eps, "eps")

    def _buffer_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        b1, b2, eps, wd = self.beta1, self.beta2, self.eps, self.weight_decay
        one_minus_b1, one_minus_b2 = 1.0 - b1, 1.0 - b2
        k = self.t + 1
        sqrt_bc2 = math.sqrt(1.0 - b2**k)  # √(1 − β₂ᵏ)
        step_size = lr * sqrt_bc2 / (1.0 - b1**k)  # η √(1 − β₂ᵏ) / (1 − β₁ᵏ)
        eps_hat = eps * sqrt_bc2  # ε √(1 − β₂ᵏ)
        decoupled, shrink = self._decoupled, 1.0 - lr * wd
        kernels = self.compiled
        for p, g, s, gd, m, v, decay in zip(
            params,
            grads,
            self._scratch,
            self._gbuf,
            self._buffers["m"],
            self._buffers["v"],
            self._decay,
            strict=True,
        ):
            if kernels is not None and p.flags.c_contiguous and g.flags.c_contiguous:
                t = p.dtype.type  # float32 parameters: float32 arithmetic
                kernels.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(b1), t(b2),
                                    t(one_minus_b1), t(one_minus_b2), t(step_size), t(eps_hat), t(wd),
                                    decay, decoupled, t(shrink))
                continue
            if decay:
                if decoupled:  # AdamW: w ← w − η wd w
                    p *= shrink
                else:  # Adam: g ← g + wd·w
                    _multiply(p, wd, out=gd)
                    gd += g
                    g = gd
            m *= b1
            _multiply(g, one_minus_b1, out=s)
            m += s  # m ← β₁ m + (1 − β₁) g
            v *= b2
            _multiply(g, g, out=s)
            s *= one_minus_b2
            v += s  # v ← β₂ v + (1 − β₂) g²
            _sqrt(v, out=s)
            s += eps_hat
            _divide(m, s, out=s)
            s *= step_size
            p -= s  # w ← w − η m̂ / (√v̂ + ε), as the docstring rewrites it


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019; PyTorch's ``AdamW``).

    At each step, first shrink the weight matrices (never the biases)::

        w ← w − η · wd · w

    then apply the :class:`Adam` update with the plain gradient ``g = ∇C`` (no
    L2 term, so the decay is not rescaled by the adaptive denominator). η is the
    scheduled rate of that step.

    Args:
        lr, beta1, beta2, eps: as in :class:`Adam`.
        weight_decay: wd >= 0 (default 1e-2).
        clip_norm, max_norm, schedule: see :class:`Optimizer`.

    State: ``"m"`` and ``"v"``, as in :class:`Adam`.
    """

    _l2_buffer = False
    _decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
    ) -> None:
        super().__init__(
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            clip_norm=clip_norm,
            max_norm=max_norm,
            schedule=schedule,
        )
