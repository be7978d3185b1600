"""The :class:`Optimizer` base: checks, then clip → update → constrain; state; state_dict.

A subclass is just its equations (:meth:`Optimizer._update_array`, on one array, and optionally the
fused form beside it); everything the optimizers share lives here, once: argument checks at the
boundary, the per-parameter state, global-norm clipping, the max-norm constraint, the schedule,
the choice between the readable and the fused update, and the flat-buffer path (one update over
a network's whole parameter buffer, see :mod:`backprop.optim._layout`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from .._validation import describe, non_negative_float, positive_float
from ..devices import ops_of
from ..errors import ConfigError, DTypeError, InvalidValueError, ShapeError
from . import _checks, _fused
from ._buffers import State, Work, allocate
from ._decay import decay_each
from ._layout import FlatSpans
from ._norms import clip_global_norm, max_norm_rows

__all__ = ["Optimizer", "State"]


class FusedForm(NamedTuple):
    """An optimizer's fused update as an engine applies it (:meth:`Optimizer.fused_form`)."""

    kind: str  #: ``"adam"`` (Adam, AdamW) or ``"momentum"`` (SGD with momentum)
    state: tuple[np.ndarray, ...]  #: the flat state buffers, in the order of the update's arguments
    decay: tuple[bool, ...]  #: per parameter array: whether weight decay applies to it


class Optimizer:
    r"""Base class of the optimizers: checks, clipping, weight decay, max-norm, state.

    A step clips the gradients, applies the update (with weight decay), then max-norm::

        ‖g‖ = sqrt(Σ_i Σ g_i²);  if ‖g‖ > clip_norm:  g_i ← g_i · clip_norm / ‖g‖     (in place)
        w_i ← update(w_i, g_i, state_i, η = schedule(t, lr))                     (each i)
        for each row w_j of each weight matrix:  w_j ← w_j · c / max(‖w_j‖, c)   (c = max_norm)
        t ← t + 1

    A subclass implements :meth:`_update_array` (the equations, on one array), lists its
    state arrays in :meth:`_buffer_names`, its per-step scalars in :meth:`_constants` and
    its hyperparameters in ``_repr_fields``; a fused form overrides :attr:`has_fused_update`.

    Args:
        lr: the base learning rate η (finite, > 0).
        weight_decay: ``wd >= 0``, for weight matrices only (arrays with ``ndim >= 2``):
            an L2 term ``g ← g + wd·w`` (SGD, RMSprop, Adam) or a decoupled shrink (AdamW).
        clip_norm: clip the global gradient norm to this value (> 0), or None.
        max_norm: max-norm constraint on the rows of weight matrices (> 0), or None.
        schedule: a :class:`~backprop.optim.schedules.Schedule` (any callable
            ``(step, base_lr) -> lr``), or None for a constant rate.
        fused: ``True``: always the one-pass compiled update (numba; only where
            :attr:`has_fused_update`); ``False``: always the readable NumPy update;
            ``None`` (default): as each :meth:`step` call asks, readable when it does not.

    Shape:
        ``params[i]`` and ``grads[i]``: any shape, the same for both and at every step;
        each state array has the shape and dtype of its parameter.

    Attributes:
        base_lr: the ``lr`` argument (setting :attr:`lr` changes it).
        t: number of steps taken.
        last_grad_norm: the global gradient norm measured before clipping at the last
            step; None unless ``clip_norm`` is set.
        fused: the ``fused`` argument.

    Example:
        >>> class SignSGD(Optimizer):        # w ← w − η sign(g)
        ...     def _update_array(self, p, g, s, gd, state, decay, c, kernels):
        ...         if decay:                  # g ← g + wd·w (weight matrices only)
        ...             g = l2_gradient(p, g, self.weight_decay, out=s)
        ...         np.sign(g, out=s)
        ...         s *= c[0]                  # c = self._constants(lr) = (lr,)
        ...         p -= s
        >>> w = np.array([[0.5, -1.0]])
        >>> SignSGD(lr=0.1).step([w], [np.array([[2.0, -3.0]])])
        >>> w
        array([[ 0.4, -0.9]])
    """

    _repr_fields: tuple[str, ...] = ()
    #: coupled weight decay needs its own buffer for ``g + wd·w`` (the update reads g after
    #: it has overwritten the scratch array); SGD writes it into the scratch array
    _l2_buffer = False
    #: the fused update's name in FusedForm.kind
    _fused_kind = ""
    #: weight decay is the shrink ``w ← (1 − η wd) w`` before the update (AdamW), not an L2 term
    _decoupled = False

    def __init__(
        self,
        lr: float,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        max_norm: float | None = None,
        schedule: Callable[[int, float], float] | None = None,
        fused: bool | None = None,
    ) -> None:
        self.base_lr = positive_float(lr, "lr")
        self.weight_decay = non_negative_float(weight_decay, "weight_decay")
        self.clip_norm = _checks.positive_or_none(clip_norm, "clip_norm")
        self.max_norm = _checks.positive_or_none(max_norm, "max_norm")
        if schedule is not None and not callable(schedule):
            raise DTypeError(
                f"schedule must be a Schedule (a callable (step, base_lr) -> lr) or None; got {describe(schedule)}"
            )
        self.schedule = schedule
        self.fused: bool | None = None
        fused = _checks.flag_or_none(fused, "fused")
        if fused:
            self._check_fused_form()
            _fused.require_numba(self)
        self.fused = fused
        self.t = 0
        self.last_grad_norm: float | None = None
        self._buffers: dict[str, list[np.ndarray]] = {}
        self._shapes: tuple[tuple[int, ...], ...] | None = None
        self._ready = False
        self._work: Work | None = None  # the arrays of the first step, after it
        self._spans = FlatSpans()

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

    @property
    def has_fused_update(self) -> bool:
        """Whether this optimizer, with these settings, has a fused (compiled) update."""
        return False

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], *, fused: bool | None = None) -> None:
        """Update every ``params[i]`` in place from ``grads[i]`` (same shapes).

        Order: clip the gradients (``clip_norm``), apply the optimizer's update (with
        weight decay), then the max-norm constraint; finally ``t += 1``.

        Args:
            params, grads: equally long lists of arrays; pass the same list, in the same
                order, at every call. When they tile one flat buffer each (a network's),
                the update runs once over the buffers (the same numbers bit for bit).
            fused: this step's choice when the constructor's ``fused`` is None: True
                for the fused update, False or None for the readable one. The fused
                update is used for C-contiguous arrays; others get the readable one.

        Raises:
            ShapeError: ``params`` and ``grads`` differ in length or shapes, or the
                list differs from the one the state was built for.
            DTypeError: at the first step, a non-floating or non-array entry.
            ConfigError: a fused update asked for where there is none, or without numba.
        """
        work = self._check_step(params, grads)
        lr = self._next_lr()
        kernels = self._kernels(fused)
        if kernels is not None and not isinstance(params[0], np.ndarray):
            raise ConfigError("fused=True: the fused updates are compiled for NumPy arrays; these parameters are "
                              f"{type(params[0]).__module__} arrays (use fused=False or None)")
        spans = self._flat_spans(params, grads, work)
        if self.clip_norm is not None:
            self.last_grad_norm = clip_global_norm(grads, self.clip_norm, None if spans is None else spans[1])
        if spans is not None and (kernels is None or work.uniform_decay):
            self._update_flat(params, grads, spans, work, lr, kernels)
        else:
            self._update_each(params, grads, work, lr, kernels)
        if self.max_norm is not None:
            max_norm_rows(params, work.scratch, work.rows, work.row_axes, self.max_norm)
        self.t += 1

    def fused_form(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> FusedForm | None:
        """What an engine needs to apply this optimizer's fused update inside a compiled step of
        its own, or None where :meth:`step` must do it: no fused update (or ``fused=False`` at
        construction), ``clip_norm`` or ``max_norm`` set, or parameters and gradients that do not
        each tile one flat buffer (a :class:`~backprop.Network`'s do).

        The state is allocated here at the first call, as :meth:`step` would. Per step the
        engine takes :meth:`fused_constants`, applies the update of :attr:`FusedForm.kind`
        (:mod:`backprop.optim.fused_kernels`) to every array, and then adds 1 to ``t``.
        """
        if not self.has_fused_update or self.fused is False or self.clip_norm is not None \
                or self.max_norm is not None or not isinstance(params[0], np.ndarray):
            return None
        work = self._check_step(params, grads)
        if work.flat is None or self._flat_spans(params, grads, work) is None:
            return None
        return FusedForm(self._fused_kind, work.flat.slot, tuple(work.decay))

    def fused_constants(self) -> tuple[Any, ...]:
        """The scalars of the next step's fused update, from the rate ``schedule(t, lr)``: for
        ``"adam"`` ``(β₁, β₂, step_size, eps_hat, wd, decoupled, shrink)`` (see :class:`~backprop.Adam`),
        for ``"momentum"`` ``(η, μ, wd, nesterov)``.

        Raises:
            InvalidValueError: the schedule returned a rate that is not finite and >= 0.
        """
        return self._constants(self._next_lr())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bitwise-identically, as copies.

        ``{"optimizer": class name, "t": steps taken, name: [array per parameter], ...}``
        with one entry per state buffer (see each class; absent before the first
        step). Hyperparameters are not included: rebuild the optimizer with the
        same arguments (its repr shows them), then :meth:`load_state_dict`.
        """
        state: dict[str, Any] = {"optimizer": type(self).__name__, "t": self.t}
        for name, arrays in self._buffers.items():
            state[name] = [ops_of(a).copy(a) for a in arrays]  # on the parameters' device
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
        t = _checks.steps_taken(state, type(self).__name__)
        buffers = _checks.state_buffers(state, self._buffer_names(), repr(self))
        shapes = next((tuple(a.shape for a in arrays) for arrays in buffers.values()), None)
        if shapes is not None and self._shapes is not None and shapes != self._shapes:
            raise ShapeError(
                f"state arrays must have the shapes of this optimizer's parameters, "
                f"{list(self._shapes)}; got {list(shapes)}"
            )
        self.t = t
        self._buffers = buffers
        self._ready = False

    def __repr__(self) -> str:
        args = [f"lr={self.base_lr!r}"]
        args += [f"{name}={getattr(self, name)!r}" for name in self._repr_fields]
        for name in ("clip_norm", "max_norm", "schedule", "fused"):
            if getattr(self, name) is not None:
                args.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    # ---------------------------------------------------------- for subclasses

    def _buffer_names(self) -> tuple[str, ...]:
        """Names of the per-parameter state arrays (the keys of :meth:`state_dict`)."""
        return ()

    def _constants(self, lr: float) -> tuple[Any, ...]:
        """The scalars of one step's update, computed once per step (for all arrays)."""
        return (lr,)

    def _update_array(
        self,
        p: np.ndarray,
        g: np.ndarray,
        s: np.ndarray,
        gd: np.ndarray | None,
        state: State,
        decay: bool,
        c: tuple[Any, ...],
        kernels: ModuleType | None,
    ) -> None:
        """Apply the update to one array ``p`` in place (or to the whole flat buffer).

        ``g`` is its gradient; ``s`` a scratch array of its shape; ``gd`` one more for
        ``g + wd·w`` when ``_l2_buffer`` and ``decay``; ``state`` its state arrays;
        ``decay`` whether weight decay applies to it; ``c`` = :meth:`_constants`;
        ``kernels`` the fused kernels' module (None: the readable update). In a flat
        update ``g`` already holds ``g + wd·w`` where due and ``decay`` is False; ``g``
        may then be ``s`` itself, so read ``g`` before writing ``s``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement _update_array")

    # ---------------------------------------------------------------- internals

    def _check_fused_form(self) -> None:
        if not self.has_fused_update:
            raise ConfigError(
                "fused=True needs an optimizer with a fused update (SGD with momentum > 0, "
                f"Adam, AdamW); {self!r} has none"
            )

    def _kernels(self, fused: bool | None) -> ModuleType | None:
        """The fused kernels if this step uses them (the constructor's choice first), else None."""
        use = self.fused
        if use is None:
            if fused is None:  # the common case first: nobody asks
                return None
            use = _checks.flag_or_none(fused, "fused")
        if not use:
            return None
        self._check_fused_form()
        return _fused.kernels(self)

    def _check_step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> Work:
        """Lengths and shapes at every step; types, dtypes and set-up at the first. Returns the work arrays."""
        if not self._ready:  # checked once: the hot path below trusts the lists
            _checks.check_lists(params, grads)
        n = len(params)
        if len(grads) != n:
            raise ShapeError(
                f"grads must hold one array per parameter: params has {n} arrays, grads has {len(grads)}"
            )
        if not self._ready:
            self._setup(params, grads)
        shapes, work = self._shapes, self._work
        assert shapes is not None and work is not None  # set by _setup
        if n != len(shapes):
            _checks.check_shapes(params, grads, shapes)  # raises, naming the mismatch
        for p, g, shape in zip(params, grads, shapes, strict=True):
            if p.shape != shape or g.shape != shape:
                _checks.check_shapes(params, grads, shapes)
        return work

    def _next_lr(self) -> float:
        lr = self.lr
        if not 0.0 <= lr < math.inf:
            raise InvalidValueError(
                f"schedule must return a finite learning rate >= 0; "
                f"{self.schedule!r} returned {lr} at step {self.t}"
            )
        return lr

    def _setup(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Check the lists once; allocate state and work arrays (flat when the parameters are)."""
        _checks.check_arrays(params, grads)
        _checks.check_loaded(self._buffers, params)  # state from load_state_dict, if any
        decay = [self.weight_decay > 0 and p.ndim >= 2 for p in params]
        l2 = None if self._decoupled else "own" if self._l2_buffer else "scratch"
        self._buffers, self._work = allocate(
            params, self._buffer_names(), self._buffers, decay=decay, l2=l2, max_norm=self.max_norm is not None
        )
        self._shapes = tuple(p.shape for p in params)
        self._spans = FlatSpans()
        self._ready = True

    def _flat_spans(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], work: Work
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The flat spans of ``params`` and ``grads`` if both tile one (and the state is flat)."""
        return None if work.flat is None else self._spans(params, grads)

    def _update_each(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], work: Work, lr: float,
        kernels: ModuleType | None,
    ) -> None:
        """The update array by array; the fused one for C-contiguous arrays when asked."""
        c = self._constants(lr)
        for p, g, s, gd, state, decay in zip(
            params, grads, work.scratch, work.gbuf, work.slots, work.decay, strict=True
        ):
            fuse = kernels is not None and p.flags.c_contiguous and g.flags.c_contiguous
            self._update_array(p, g, s, gd, state, decay, c, kernels if fuse else None)

    def _update_flat(
        self,
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        spans: tuple[np.ndarray, np.ndarray],
        work: Work,
        lr: float,
        kernels: ModuleType | None,
    ) -> None:
        """The update once over the flat buffers, element by element what :meth:`_update_each` does.

        The readable update applies weight decay array by array first (it concerns the
        weight matrices only), then runs undecayed over the buffers. The fused update
        comes here only when every array or none is decayed, and decays in its loop.
        """
        flat = work.flat
        assert flat is not None  # spans are only looked for with flat state
        w, g = spans
        decay = work.decay[0] if kernels is not None else False
        if kernels is None and work.any_decay:
            shrink = 1.0 - lr * self.weight_decay if self._decoupled else None
            g = decay_each(params, grads, g, wd=self.weight_decay, shrink=shrink, decay=work.decay, flat=flat)
        self._update_array(w, g, flat.scratch, None, flat.slot, decay, self._constants(lr), kernels)
