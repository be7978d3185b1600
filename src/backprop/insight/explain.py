"""One forward and one backward pass of a tiny network, step by step, in the notes' notation.

``explain()`` (the ``backprop explain`` command) builds a small network (by default
2-3-2 with sigmoid activations and the quadratic cost ``C = ½‖aᴸ − y‖²``, in float64),
runs one sample through it with the library's own layers, and writes out every
intermediate quantity with its numbers, in the notation of seed 000:

* forward, for l = 1..L: ``zˡ = Wˡ aˡ⁻¹ + bˡ`` and ``aˡ = f(zˡ)``, with ``a⁰ = x``;
* the cost ``C`` and its gradient ``∇_{aᴸ}C``;
* backward, for l = L..1: ``δˡ = ∂C/∂zˡ = ∇_{aˡ}C ⊙ f'(zˡ)``, ``∂C/∂wˡᵢⱼ = δˡᵢ aˡ⁻¹ⱼ``,
  ``∂C/∂bˡⱼ = δˡⱼ`` and ``∇_{aˡ⁻¹}C = (Wˡ)ᵀ δˡ``, down to ``∇ₓC = (W¹)ᵀ δ¹``.

Every gradient (δˡ, which equals ∂C/∂bˡ, ∂C/∂Wˡ, ∂C/∂bˡ and ∇ₓC) is checked against
:func:`backprop.reference.per_parameter_gradients`, seed 001/002's scalar formulas in
plain Python loops, independent of the vectorised layers; the output ``aᴸ`` is checked
against ``Network.predict``. Vectors are columns, as in the notes; ``Wˡ`` has shape
``(d_l, d_{l-1})``, so ``wˡᵢⱼ`` connects neuron j of layer l−1 to neuron i of layer l.

``fmt="markdown"`` writes it with LaTeX (``$...$``, ``$$...$$``) for notes of one's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import canonical_name
from ..errors import ConfigError

#: widths above this make the printout unreadable
MAX_WIDTH = 10
#: a gradient matches the reference when ``max |diff| ≤ TOLERANCE · max(1, max |reference|)``
TOLERANCE = 1e-9

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")

# f'(z) of the activations whose derivative has a textbook form, written for z = {z}:
# (text, LaTeX); the others print as f'(z)
_DERIVATIVE = {
    "Sigmoid": ("σ'({z}) = σ({z})(1 − σ({z}))", r"\sigma'({z}) = \sigma({z})(1-\sigma({z}))"),
    "Tanh": ("tanh'({z}) = 1 − tanh²({z})", r"\tanh'({z}) = 1-\tanh^2({z})"),
    "ReLU": ("ReLU'({z}) = 1 where {z} > 0, else 0", r"\mathrm{{ReLU}}'({z}) = [{z} > 0]"),
    "Identity": ("f'({z}) = 1", "f'({z}) = 1"),
}
_NAME = {"Sigmoid": ("σ", r"\sigma"), "Tanh": ("tanh", r"\tanh"),
         "ReLU": ("ReLU", r"\mathrm{ReLU}")}

# C and ∇_{aᴸ}C of each loss: (text C, LaTeX C, text ∇, LaTeX ∇)
_LOSS = {
    "Quadratic": ("½‖aᴸ − y‖²", r"\tfrac12\|a^L - y\|^2", "aᴸ − y", r"a^L - y"),
    "CrossEntropy": ("−Σⱼ yⱼ log softmax(aᴸ)ⱼ   (aᴸ = zᴸ: logits)",
                     r"-\sum_j y_j \log \mathrm{softmax}(a^L)_j",
                     "softmax(aᴸ) − y", r"\mathrm{softmax}(a^L) - y"),
    "BinaryCrossEntropy": ("−Σⱼ [yⱼ log σ(aᴸⱼ) + (1 − yⱼ) log(1 − σ(aᴸⱼ))]   (aᴸ = zᴸ: logits)",
                           r"-\sum_j [y_j \log\sigma(a^L_j) + (1-y_j)\log(1-\sigma(a^L_j))]",
                           "σ(aᴸ) − y", r"\sigma(a^L) - y"),
    "Huber": ("Σⱼ h(aᴸⱼ − yⱼ)", r"\sum_j h(a^L_j - y_j)",
              "clip(aᴸ − y, −δ, δ)", r"\mathrm{clip}(a^L - y, -\delta, \delta)"),
}


def _sup(n: int | str) -> str:
    return str(n).translate(_SUP)


@dataclass
class Check:
    """One comparison with the reference: the quantity's name, ``max |diff|`` and the verdict."""

    quantity: str
    max_diff: float
    ok: bool


@dataclass
class Explanation:
    """The walk-through (``text``) and the checks it made; ``str(e)`` is the text."""

    text: str
    checks: list[Check] = field(default_factory=list)
    #: the network walked through (float64), its input ``x`` ``(1, d_0)`` and target ``y``
    #: ``(1, d_L)``
    network: Any = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    def __str__(self) -> str:
        return self.text


class _Writer:
    """Lines of the walk-through, in plain text (Unicode) or Markdown with LaTeX."""

    def __init__(self, markdown: bool) -> None:
        self.md = markdown
        self.lines: list[str] = []
        self.checks: list[Check] = []

    def heading(self, level: int, text: str) -> None:
        if self.md:
            self.lines += ["", "#" * level + " " + text, ""]
        elif level == 1:
            self.lines += [text, "=" * len(text)]
        else:
            self.lines += ["", text, "-" * len(text)]

    def para(self, text: str, tex: str | None = None) -> None:
        self.lines.append((tex if tex is not None else text) if self.md else text)
        if self.md:
            self.lines.append("")

    def value(self, text: str, tex: str, v: np.ndarray | float) -> None:
        """An equation ending in numbers: ``text = v`` (or ``$$tex = v$$``)."""
        if self.md:
            self.lines += [f"$$ {tex} = {_tex_value(v)} $$", ""]
            return
        prefix = f"  {text} = "
        rows = _text_value(v)
        self.lines.append(prefix + rows[0])
        self.lines += [" " * len(prefix) + r for r in rows[1:]]

    def check(self, quantity: str, mine: np.ndarray, ref: np.ndarray, against: str,
              note: str = "") -> None:
        diff = float(np.max(np.abs(np.asarray(mine) - np.asarray(ref)))) if np.size(ref) else 0.0
        ok = bool(np.isfinite(diff)) and diff <= TOLERANCE * max(1.0, float(np.max(np.abs(ref))))
        self.checks.append(Check(quantity, diff, ok))
        mark = "✓ matches" if ok else "✗ DIFFERS from"
        line = f"{mark} {against} (max |diff| = {diff:.1e}){note}"
        self.lines.append(f"> {line}" if self.md else f"      {line}")
        if self.md:
            self.lines.append("")


def _fmt(v: float) -> str:
    return f"{v:.6f}"


def _text_value(v: np.ndarray | float) -> list[str]:
    """Numbers as text: a scalar, a column vector written ``(v₁, v₂, ...)``, or matrix rows."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return [_fmt(float(a))]
    if a.ndim == 1:
        return ["(" + ", ".join(_fmt(x) for x in a) + ")"]
    cells = [[_fmt(x) for x in row] for row in a]
    width = max(len(c) for row in cells for c in row)
    return ["[ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]


def _tex_value(v: np.ndarray | float) -> str:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return _fmt(float(a))
    if a.ndim == 1:
        a = a.reshape(-1, 1)  # vectors are columns
    rows = r" \\ ".join(" & ".join(_fmt(x) for x in row) for row in a)
    return r"\begin{pmatrix} " + rows + r" \end{pmatrix}"


@dataclass
class _Pass:
    """The library's own forward and backward pass of one sample, layer by layer.

    ``outputs[i]`` is layer i's output ``(1, d)``; ``grad_out[i]`` = dC/d(output of layer i) and
    ``grad_in[i]`` = dC/d(input of layer i), both ``(1, d)``; ``ref`` holds the per-parameter
    reference's gradients (``"{i}.W"``, ``"{i}.b"``, ``"x"``). ``groups`` pairs each Dense
    layer's index with the index of the activation after it (``None`` if none): the notes'
    layer l is ``groups[l - 1]``.
    """

    net: Any
    cost: Any
    x: np.ndarray
    y: np.ndarray
    outputs: list[np.ndarray]
    c: float
    grad_out: dict[int, np.ndarray]
    grad_in: dict[int, np.ndarray]
    ref: dict[str, np.ndarray]
    groups: list[tuple[int, int | None]]


def _check_settings(layers: Sequence[int], loss: str, seed: int, fmt: str) -> tuple[list[int], Any]:
    """The widths and the loss object, or :class:`ConfigError` naming the bad setting."""
    from ..losses import get_loss

    if fmt not in ("text", "markdown"):
        raise ConfigError(f"format must be 'text' or 'markdown'; got {fmt!r}")
    widths = [int(w) for w in layers]
    if len(widths) < 2 or min(widths) < 1:
        raise ConfigError(f"layers must be at least two positive widths like 2,3,2; got {widths}")
    if max(widths) > MAX_WIDTH:
        raise ConfigError(f"explain prints every number: use widths of at most {MAX_WIDTH}; "
                          f"got {widths}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    cost = get_loss(loss)
    if type(cost).__name__ not in _LOSS:
        raise ConfigError(f"loss must be one of quadratic, cross_entropy, binary_cross_entropy, "
                          f"huber; got {loss!r}")
    if type(cost).__name__ == "CrossEntropy" and widths[-1] < 2:
        raise ConfigError("cross_entropy needs at least two outputs")
    return widths, cost


def _groups(layers: Sequence[Any]) -> list[tuple[int, int | None]]:
    """Group the layers as the notes do: layer l = a Dense layer and the activation after it."""
    from ..activations import Activation
    from ..layers import Dense

    groups: list[tuple[int, int | None]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            groups.append((i, None))
        elif isinstance(layer, Activation) and groups and groups[-1][1] is None:
            groups[-1] = (groups[-1][0], i)
    return groups


def _run(widths: list[int], activation: str, cost: Any, seed: int) -> _Pass:
    """Build the float64 network (standard normal weights), draw ``x`` ``(1, d_0)`` and a one-hot
    ``y`` ``(1, d_L)``, and run the library's pass and the reference on them."""
    from ..builders import build_network, default_output_activation
    from ..reference import per_parameter_gradients

    net = build_network(widths, activation_name=activation,
                        output_activation=default_output_activation(cost), init="normal",
                        seed=int(seed), dtype="float64")
    rng = np.random.default_rng(seed)
    x = rng.random((1, widths[0]))
    k = widths[-1]
    y = np.zeros((1, k))
    y[0, rng.integers(k) if k > 1 else 0] = 1.0
    outputs = []  # copies: layers reuse their arrays
    a = x
    for layer in net.layers:
        a = layer.forward(a).copy()
        outputs.append(a)
    c = cost.value(outputs[-1], y)
    grad_out: dict[int, np.ndarray] = {}
    grad_in: dict[int, np.ndarray] = {}
    g = cost.grad(outputs[-1], y)
    for i in range(len(net.layers) - 1, -1, -1):
        grad_out[i] = g
        g = net.layers[i].backward(g).copy()
        grad_in[i] = g
    return _Pass(net, cost, x, y, outputs, c, grad_out, grad_in,
                 per_parameter_gradients(net, cost, x, y), _groups(net.layers))


def _write_intro(w: _Writer, p: _Pass, widths: list[int], activation: str, loss: str,
                 seed: int) -> None:
    shape = "-".join(str(d) for d in widths)
    w.heading(1, f"One forward and one backward pass of a {shape} network")
    hidden = f"{activation} hidden activations" if len(widths) > 2 else "no hidden layer"
    w.para(f"{hidden}, {loss} cost, one sample, float64, seed {seed}.")
    w.para("Notation (seed 000): zˡ = Wˡ aˡ⁻¹ + bˡ, aˡ = f(zˡ), a⁰ = x, "
           "δˡ = ∂C/∂zˡ; vectors are columns; wˡᵢⱼ connects neuron j of layer l−1 "
           "to neuron i of layer l.",
           r"Notation (seed 000): $z^l = W^l a^{l-1} + b^l$, $a^l = f(z^l)$, $a^0 = x$, "
           r"$\delta^l = \partial C/\partial z^l$; vectors are columns; $w^l_{ij}$ connects "
           r"neuron $j$ of layer $l-1$ to neuron $i$ of layer $l$.")
    w.heading(2, "Parameters, input and target")
    for pos, (d, _) in enumerate(p.groups, start=1):
        W, b = p.net.layers[d].params["W"], p.net.layers[d].params["b"]
        w.value(f"W{_sup(pos)}", f"W^{{{pos}}}", W)
        w.value(f"b{_sup(pos)}", f"b^{{{pos}}}", b)
    w.value("x = a⁰", "x = a^{0}", p.x[0])
    w.value("y", "y", p.y[0])


def _write_forward(w: _Writer, p: _Pass) -> None:
    """zˡ = Wˡ aˡ⁻¹ + bˡ and aˡ = f(zˡ) for l = 1..L, then aᴸ checked and the cost C."""
    w.heading(2, "Forward pass")
    for pos, (d, act) in enumerate(p.groups, start=1):
        s, q = _sup(pos), _sup(pos - 1)  # superscripts l and l−1
        w.para(f"Layer {pos}:" if not w.md else f"**Layer {pos}**")
        w.value(f"z{s} = W{s} a{q} + b{s}",
                f"z^{{{pos}}} = W^{{{pos}}} a^{{{pos - 1}}} + b^{{{pos}}}", p.outputs[d][0])
        if act is not None:
            kind = type(p.net.layers[act]).__name__
            name, tex = _NAME.get(kind, (kind.lower(), r"\mathrm{" + kind.lower() + "}"))
            w.value(f"a{s} = {name}(z{s})", f"a^{{{pos}}} = {tex}(z^{{{pos}}})", p.outputs[act][0])
        else:
            w.value(f"a{s} = z{s}", f"a^{{{pos}}} = z^{{{pos}}}", p.outputs[d][0])
    w.check("aᴸ", p.outputs[-1], p.net.predict(p.x), "Network.predict(x)")
    L = len(p.groups)
    c_text, c_tex, _, _ = (t.replace("ᴸ", _sup(L)).replace("a^L", f"a^{{{L}}}")
                           for t in _LOSS[type(p.cost).__name__])
    w.value(f"C = {c_text}", f"C = {c_tex}", p.c)


def _write_delta(w: _Writer, p: _Pass, pos: int) -> None:
    """δˡ = ∇_{aˡ}C ⊙ f'(zˡ) (the softmax Jacobian's product, or ∇_{aˡ}C without activation),
    checked against the reference's ∂C/∂bˡ."""
    from ..activations import Softmax

    d, act = p.groups[pos - 1]
    s = _sup(pos)
    delta = p.grad_out[d][0]
    if act is None:
        w.value(f"δ{s} = ∇_{{a{s}}}C   (a{s} = z{s})",
                rf"\delta^{{{pos}}} = \nabla_{{a^{{{pos}}}}} C \quad (a^{{{pos}}} = z^{{{pos}}})",
                delta)
    elif isinstance(p.net.layers[act], Softmax):
        w.value(f"δ{s} = (∂a{s}/∂z{s})ᵀ ∇_{{a{s}}}C   (softmax Jacobian diag(a) − a aᵀ)",
                rf"\delta^{{{pos}}} = (\partial a^{{{pos}}}/\partial z^{{{pos}}})^T "
                rf"\nabla_{{a^{{{pos}}}}} C", delta)
    else:
        layer = p.net.layers[act]
        fresh = type(layer)(**layer.config())  # the library's f', on a spare layer
        fresh.forward(p.outputs[d])
        fprime = fresh.backward(np.ones_like(p.outputs[d])).copy()[0]
        form, form_tex = _DERIVATIVE.get(type(layer).__name__, ("f'({z})", "f'({z})"))
        w.value(form.format(z=f"z{s}"), form_tex.format(z=f"z^{{{pos}}}"), fprime)
        prime, prime_tex = (form.split("(")[0], form_tex.split("(")[0])
        w.value(f"δ{s} = ∇_{{a{s}}}C ⊙ {prime}(z{s})",
                rf"\delta^{{{pos}}} = \nabla_{{a^{{{pos}}}}} C \odot {prime_tex}(z^{{{pos}}})",
                delta)
    w.check(f"δ{s}", delta, p.ref[f"{d}.b"], "the per-parameter reference",
            f", whose ∂C/∂b{s} is δ{s}" if not w.md else
            rf", whose $\partial C/\partial b^{{{pos}}}$ is $\delta^{{{pos}}}$")


def _write_parameter_grads(w: _Writer, p: _Pass, pos: int) -> None:
    """∂C/∂Wˡ = δˡ (aˡ⁻¹)ᵀ, ∂C/∂bˡ = δˡ and ∇_{aˡ⁻¹}C = (Wˡ)ᵀ δˡ (∇ₓC for l = 1), checked."""
    d, _ = p.groups[pos - 1]
    s, q = _sup(pos), _sup(pos - 1)
    dense = p.net.layers[d]
    w.value(f"∂C/∂w{s}ᵢⱼ = δ{s}ᵢ a{q}ⱼ   (∂C/∂W{s} = δ{s} (a{q})ᵀ)",
            rf"\frac{{\partial C}}{{\partial w^{{{pos}}}_{{ij}}}} = \delta^{{{pos}}}_i "
            rf"a^{{{pos - 1}}}_j", dense.grads["W"])
    w.check(f"∂C/∂W{s}", dense.grads["W"], p.ref[f"{d}.W"], "the per-parameter reference")
    w.value(f"∂C/∂b{s}ⱼ = δ{s}ⱼ", rf"\frac{{\partial C}}{{\partial b^{{{pos}}}_j}} = "
            rf"\delta^{{{pos}}}_j", dense.grads["b"])
    w.check(f"∂C/∂b{s}", dense.grads["b"], p.ref[f"{d}.b"], "the per-parameter reference")
    if pos > 1:
        w.value(f"∇_{{a{q}}}C = (W{s})ᵀ δ{s}",
                rf"\nabla_{{a^{{{pos - 1}}}}} C = (W^{{{pos}}})^T \delta^{{{pos}}}",
                p.grad_in[d][0])
    else:
        w.value(f"∇ₓC = (W{s})ᵀ δ{s}", rf"\nabla_x C = (W^{{{pos}}})^T \delta^{{{pos}}}",
                p.grad_in[d][0])
        w.check("∇ₓC", p.grad_in[d][0], p.ref["x"][0], "the per-parameter reference")


def _write_backward(w: _Writer, p: _Pass) -> None:
    """∇_{aᴸ}C, then for l = L..1 the error δˡ and the gradients of layer l."""
    L = len(p.groups)
    _, _, g_text, g_tex = (t.replace("ᴸ", _sup(L)).replace("a^L", f"a^{{{L}}}")
                           for t in _LOSS[type(p.cost).__name__])
    w.heading(2, "Backward pass")
    w.value(f"∇_{{a{_sup(L)}}}C = {g_text}", rf"\nabla_{{a^{{{L}}}}} C = {g_tex}",
            p.grad_out[len(p.net.layers) - 1][0])
    for pos in range(L, 0, -1):
        w.para(f"Layer {pos}:" if not w.md else f"**Layer {pos}**")
        _write_delta(w, p, pos)
        _write_parameter_grads(w, p, pos)


def explain(layers: Sequence[int] = (2, 3, 2), activation: str = "sigmoid",
            loss: str = "quadratic", seed: int = 0, fmt: str = "text") -> Explanation:
    """Walk one sample forward and backward through a tiny network, every number checked.

    Args:
        layers: widths ``[d_0, d_1, ..., d_L]``, each at most :data:`MAX_WIDTH`.
        activation: hidden activation (``sigmoid``, ``tanh``, ``relu``, ...). The output
            activation is the one ``backprop train`` would use with ``loss`` (sigmoid for the
            quadratic cost, none, i.e. logits, for the cross-entropies).
        loss: ``quadratic``, ``cross_entropy``, ``binary_cross_entropy`` or ``huber`` (names
            may be written with ``-`` for ``_``).
        seed: seed of the weights (standard normal, as in the textbook), of ``x`` (uniform
            in [0, 1), shape ``(1, d_0)``) and of the target class (``y`` one-hot, ``(1, d_L)``).
        fmt: ``"text"`` (Unicode) or ``"markdown"`` (LaTeX in ``$...$``).

    Returns:
        :class:`Explanation`: ``.text``, ``.checks`` and ``.ok`` (all checks passed).
    """
    widths, cost = _check_settings(layers, loss, seed, fmt)
    activation, loss = canonical_name(activation), canonical_name(loss)  # as the text names them
    p = _run(widths, activation, cost, seed)
    w = _Writer(fmt == "markdown")
    _write_intro(w, p, widths, activation, loss, seed)
    _write_forward(w, p)
    _write_backward(w, p)
    passed = sum(ch.ok for ch in w.checks)
    verdict = (f"all {passed} checks passed" if passed == len(w.checks)
               else f"{len(w.checks) - passed} of {len(w.checks)} checks FAILED")
    w.heading(2, "Result")
    w.para(verdict + "  (reference: backprop.reference.per_parameter_gradients, scalar loops)")
    text = "\n".join(w.lines).strip("\n") + "\n"
    return Explanation(text=text, checks=w.checks, network=p.net, x=p.x, y=p.y)
