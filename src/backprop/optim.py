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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_array, describe, non_negative_float, positive_float
from .errors import ConfigError, DTypeError, InvalidValueError, ShapeError
from .threads import worker_count

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW"]

_multiply = np.multiply
_divide = np.divide
_sqrt = np.sqrt


#: an array is updated in row blocks on several threads (NumPy releases the GIL inside
#: element-wise loops) when its size times the update's passes over it reaches this; below it,
#: handing work to a thread costs more than it saves
PARALLEL_MIN_WORK = 1 << 20


@dataclass
class _Slots:
    """The per-parameter arrays an update walks over, position by position: the optimizer's
    state for every parameter, or views of one block of rows of each large parameter."""

    scratch: list[np.ndarray]
    gbuf: list[np.ndarray | None]
    buffers: dict[str, list[np.ndarray]]
    decay: list[bool]

    def rows(self, i: int, lo: int, hi: int) -> tuple[np.ndarray | None, np.ndarray | None,
                                                      dict[str, np.ndarray], bool]:
        gbuf = self.gbuf[i]
        return (self.scratch[i][lo:hi], None if gbuf is None else gbuf[lo:hi],
                {k: v[i][lo:hi] for k, v in self.buffers.items()}, self.decay[i])


_pool: ThreadPoolExecutor | None = None


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool._max_workers != workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backprop-optim")
    return _pool


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

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
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
        self._update_all(params, grads, lr)
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

    @property
    def _passes(self) -> int:
        """About how many element-wise passes one update makes over a parameter."""
        return 2

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float, slots: _Slots) -> None:
        """Apply the optimizer's equations in place, with learning rate ``lr``, walking over
        ``params``, ``grads`` and the state arrays of ``slots`` position by position."""
        raise NotImplementedError

    def _update_all(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float) -> None:
        """``_update`` over every parameter; large ones split into row blocks across threads.

        The update is element-wise, so each block gives exactly the numbers the whole array
        would: the result is bitwise the same whatever the number of threads.
        """
        slots, workers = self._slots, self._workers
        passes = self._passes
        big = [i for i, p in enumerate(params) if p.size * passes >= PARALLEL_MIN_WORK and p.shape[0] >= workers]
        if workers < 2 or not big:
            self._update(params, grads, lr, slots)
            return
        small = [i for i in range(len(params)) if i not in big]
        jobs = []
        for w in range(workers):
            ps, gs, part = [], [], _Slots([], [], {k: [] for k in slots.buffers}, [])
            for i in big:
                n = params[i].shape[0]
                lo, hi = n * w // workers, n * (w + 1) // workers
                s, gd, bufs, decay = slots.rows(i, lo, hi)
                ps.append(params[i][lo:hi])
                gs.append(grads[i][lo:hi])
                part.scratch.append(s)
                part.gbuf.append(gd)
                part.decay.append(decay)
                for k, v in bufs.items():
                    part.buffers[k].append(v)
            jobs.append((ps, gs, part))
        futures = [_thread_pool(workers).submit(self._update, ps, gs, lr, part) for ps, gs, part in jobs[1:]]
        ps, gs, part = jobs[0]
        self._update(ps, gs, lr, part)  # the first block in this thread
        if small:
            self._update([params[i] for i in small], [grads[i] for i in small], lr,
                         _Slots([slots.scratch[i] for i in small], [slots.gbuf[i] for i in small],
                                {k: [v[i] for i in small] for k, v in slots.buffers.items()},
                                [slots.decay[i] for i in small]))
        for f in futures:
            f.result()

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
        self._slots = _Slots(self._scratch, self._gbuf, self._buffers, self._decay)
        self._workers = min(worker_count(), 8)
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

    @property
    def _passes(self) -> int:
        return 5 if self.momentum > 0 else 2

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float, slots: _Slots) -> None:
        wd, mu = self.weight_decay, self.momentum
        if mu == 0:
            for p, g, s, decay in zip(params, grads, slots.scratch, slots.decay, strict=True):
                if decay:  # s = η (g + wd·w)
                    _multiply(p, wd, out=s)
                    s += g
                    s *= lr
                else:  # s = η g
                    _multiply(g, lr, out=s)
                p -= s  # w ← w − η g
            return
        nesterov, lr_mu = self.nesterov, lr * mu
        for p, g, s, v, decay in zip(
            params, grads, slots.scratch, slots.buffers["velocity"], slots.decay, strict=True
        ):
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

    _passes = 9

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float, slots: _Slots) -> None:
        wd, rho, eps, mu = self.weight_decay, self.rho, self.eps, self.momentum
        one_minus_rho = 1.0 - rho
        velocities = slots.buffers["velocity"] if mu > 0 else [None] * len(params)
        for p, g, s, gd, sq, b in zip(
            params,
            grads,
            slots.scratch,
            slots.gbuf,
            slots.buffers["square_avg"],
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

    _passes = 12

    def _update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float, slots: _Slots) -> None:
        b1, b2, eps, wd = self.beta1, self.beta2, self.eps, self.weight_decay
        one_minus_b1, one_minus_b2 = 1.0 - b1, 1.0 - b2
        k = self.t + 1
        sqrt_bc2 = math.sqrt(1.0 - b2**k)  # √(1 − β₂ᵏ)
        step_size = lr * sqrt_bc2 / (1.0 - b1**k)  # η √(1 − β₂ᵏ) / (1 − β₁ᵏ)
        eps_hat = eps * sqrt_bc2  # ε √(1 − β₂ᵏ)
        decoupled, shrink = self._decoupled, 1.0 - lr * wd
        for p, g, s, gd, m, v, decay in zip(
            params,
            grads,
            slots.scratch,
            slots.gbuf,
            slots.buffers["m"],
            slots.buffers["v"],
            slots.decay,
            strict=True,
        ):
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
