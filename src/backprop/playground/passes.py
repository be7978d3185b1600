"""The backward pass for one sample, as the page shows it: δ, the chain rule, a step, a check.

Every number comes from the library: the layers' own ``forward`` and ``backward`` on the
session's probe network (:meth:`Session.probe`, the current parameters), the loss's own
gradient, the activation's own ``f'``; the update from the library's training step; the check
from :func:`backprop.gradcheck.central_difference` and :mod:`backprop.reference`. The notation
is seed 000's, as ``backprop explain`` prints it:

* forward: ``zˡ = Wˡ aˡ⁻¹ + bˡ``, ``aˡ = f(zˡ)``, ``a⁰ = x``;
* output: ``δᴸ = ∇_{aᴸ}C ⊙ f'(zᴸ)`` (``f'`` = 1 for logits and a linear output);
* hidden: ``δˡⱼ = f'(zˡⱼ) Σₖ wˡ⁺¹ₖⱼ δˡ⁺¹ₖ``;
* gradients: ``∂C/∂wˡⱼₖ = δˡⱼ aˡ⁻¹ₖ``, ``∂C/∂bˡⱼ = δˡⱼ``, ``∇ₓC = (W¹)ᵀ δ¹``.

Arrays are per sample, vectors of one layer: ``(d_l,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import activations as A
from ..gradcheck import central_difference
from ..layers import Dense
from ..losses import CrossEntropy
from ..reference import per_parameter_gradients
from . import data2d
from .protocol import ProtocolError
from .session import Session

#: f'(z) of each activation, written as ``backprop explain`` writes it
DERIVATIVE_TEXT = {"Sigmoid": "σ'(z) = σ(z)(1 − σ(z))", "Tanh": "tanh'(z) = 1 − tanh²(z)",
                   "ReLU": "ReLU'(z) = 1 where z > 0, else 0", "Identity": "f'(z) = 1"}
#: ∇_{aᴸ}C of each loss (for the cross-entropy aᴸ = zᴸ are the logits)
COST_GRADIENT_TEXT = {"Quadratic": "∇_{aᴸ}C = aᴸ − y", "CrossEntropy": "∇_{aᴸ}C = softmax(aᴸ) − y"}


@dataclass
class SamplePass:
    """One sample's forward and backward pass; lists are indexed by layer, ``[0]`` = layer 1
    (``a[0]`` is the input ``a⁰ = x``, the features)."""

    x: np.ndarray              # the features (d_0,)
    t: np.ndarray              # the target (d_L,)
    z: list[np.ndarray]        # zˡ
    a: list[np.ndarray]        # a⁰ .. aᴸ
    fprime: list[np.ndarray]   # f'(zˡ); ones where the layer has no activation
    activation: list[str]      # the activation's class name, "Identity" where none
    cost: float                # C_x
    grad_a: np.ndarray         # ∇_{aᴸ}C
    delta: list[np.ndarray]    # δˡ = ∂C/∂zˡ
    grad_W: list[np.ndarray]   # ∂C/∂Wˡ = δˡ (aˡ⁻¹)ᵀ, (d_l, d_{l-1})
    grad_b: list[np.ndarray]   # ∂C/∂bˡ = δˡ
    grad_x: np.ndarray         # ∇ₓC over the features (d_0,)
    grad_plane: np.ndarray     # ∂C/∂(x1, x2) (2,)


def sample_pass(session: Session, x: np.ndarray, t: np.ndarray, point: np.ndarray) -> SamplePass:
    """Forward and backward for one sample: features ``x`` ``(1, d_0)``, target ``t``
    ``(1, d_L)``, at ``point`` ``(2,)`` of the plane. The cost is the sample's own ``C_x``."""
    net, loss = session.probe(), session.loss
    z: list[np.ndarray] = []
    a: list[np.ndarray] = [x[0].copy()]
    fprime: list[np.ndarray] = []
    names: list[str] = []
    out = x
    for i, layer in enumerate(net.layers):
        out = layer.forward(out)
        if isinstance(layer, Dense):
            z.append(out[0].copy())
            after = net.layers[i + 1] if i + 1 < len(net.layers) else None
            if isinstance(after, A.Activation):
                names.append(type(after).__name__)
            else:                                   # logits or a linear output: a = z
                names.append("Identity")
                a.append(out[0].copy())
                fprime.append(np.ones_like(out[0]))
        else:
            assert isinstance(layer, A.Activation)  # the playground builds Dense and activations only
            a.append(out[0].copy())
            fprime.append(layer.derivative(z[-1][None], a[-1][None])[0])   # f'(zˡ), given zˡ and aˡ
    cost = float(loss.value_unchecked(out, t))
    g = loss.grad_unchecked(out, t)                 # ∇_{aᴸ}C (a batch of one: no 1/m)
    grad_a = g[0].copy()
    grad_x = net.backward_unchecked(g)
    assert grad_x is not None
    dense = [net.layers[i] for i in session.dense]
    delta = [layer.last_delta[0].copy() for layer in dense]  # type: ignore[attr-defined]
    jac = data2d.feature_jacobian(point.reshape(1, 2), session.config["features"])[0]
    return SamplePass(x=x[0].copy(), t=t[0].copy(), z=z, a=a, fprime=fprime, activation=names, cost=cost,
                      grad_a=grad_a, delta=delta, grad_W=[layer.grads["W"].copy() for layer in dense],
                      grad_b=[layer.grads["b"].copy() for layer in dense], grad_x=grad_x[0].copy(),
                      grad_plane=grad_x[0] @ jac)


def selected_pass(session: Session) -> SamplePass | None:
    """The :class:`SamplePass` of the selected sample, or None."""
    if session.selected is None:
        return None
    which, index = session.selected
    x, t = session.sample(which, index)
    points = session.data.x_train if which == "train" else session.data.x_test
    return sample_pass(session, x, t, points[index])


def input_gradients(session: Session) -> np.ndarray:
    """``∂C_x/∂(x1, x2)`` at every training point, each for its own cost ``C_x``: ``(n, 2)``.

    One batch backward through the probe, the loss gradient scaled by n (the loss is the batch
    mean), then seed 000's ``∇ₓC`` over the features turned into the plane's coordinates by
    the features' Jacobian.
    """
    net, loss, x = session.probe(), session.loss, session.x_train
    a = net.forward_unchecked(x)
    g = loss.grad_unchecked(a, session.t_train) * x.shape[0]
    grad_x = net.backward_unchecked(g)
    assert grad_x is not None
    jac = data2d.feature_jacobian(session.data.x_train, session.config["features"])
    return np.einsum("nf,nfc->nc", grad_x, jac)


def chain_rule(session: Session, p: SamplePass, layer: int, index: int) -> dict[str, Any]:
    """The chain rule for neuron ``index`` of layer ``layer`` (1..L) with ``p``'s numbers.

    Output layer: ``δᴸⱼ = (∇_{aᴸ}C)ⱼ · f'(zᴸⱼ)``; hidden: ``δˡⱼ = f'(zˡⱼ) Σₖ wˡ⁺¹ₖⱼ δˡ⁺¹ₖ``,
    its terms listed. Also ``∂C/∂wˡⱼₖ = δˡⱼ aˡ⁻¹ₖ`` for each incoming link, and ``∂C/∂bˡⱼ``.
    """
    n_layers = len(session.dense)
    if not 1 <= layer <= n_layers:
        raise ProtocolError("layer", f"layer must be from 1 to {n_layers}; got {layer}")
    width = p.delta[layer - 1].shape[0]
    if index >= width:
        raise ProtocolError("index", f"index must be below {width}, the width of layer {layer}; got {index}")
    i = layer - 1
    out: dict[str, Any] = {
        "type": "chain", "layer": layer, "index": index, "output": layer == n_layers,
        "z": float(p.z[i][index]), "a": float(p.a[layer][index]), "fprime": float(p.fprime[i][index]),
        "activation": p.activation[i], "derivative": DERIVATIVE_TEXT.get(p.activation[i], "f'(z)"),
        "delta": float(p.delta[i][index]),
        "incoming": [{"from": k, "a": float(p.a[i][k]), "grad": float(p.grad_W[i][index, k])}
                     for k in range(p.a[i].shape[0])],
        "grad_b": float(p.grad_b[i][index]),
    }
    if layer == n_layers:
        name = type(session.loss).__name__
        out.update(cost=p.cost, grad_a=float(p.grad_a[index]), target=float(p.t[index]),
                   loss=name, cost_gradient=COST_GRADIENT_TEXT.get(name, "∇_{aᴸ}C"),
                   logits=isinstance(session.loss, CrossEntropy))
    else:
        w_next = session.probe().layers[session.dense[layer]].params["W"]
        terms = [{"to": k, "w": float(w_next[k, index]), "delta": float(p.delta[layer][k])}
                 for k in range(w_next.shape[0])]
        out.update(terms=terms, sum=float(w_next[:, index] @ p.delta[layer]))
    return out


def step_sample(session: Session, index: int) -> dict[str, Any]:
    """One update from training sample ``index`` alone, through the library's training step,
    with every stage's numbers for the page to walk: forward per layer, the cost, ``δᴸ`` and
    each ``δˡ`` down to ``∇ₓC``, and the update ``Δθ`` that was applied."""
    x, t = session.sample("train", index)
    p = sample_pass(session, x, t, session.data.x_train[index])   # before the update
    before = session.net.parameter_buffer.copy()
    batch_loss = session.train_on(np.array([index]))
    change = session.net.parameter_buffer - before
    stages: list[dict[str, Any]] = [{"stage": "input", "a": p.a[0].tolist()}]
    stages += [{"stage": "forward", "layer": i + 1, "z": p.z[i].tolist(), "a": p.a[i + 1].tolist()}
               for i in range(len(p.z))]
    stages.append({"stage": "cost", "cost": p.cost, "target": p.t.tolist(), "grad_a": p.grad_a.tolist()})
    stages += [{"stage": "delta", "layer": i + 1, "fprime": p.fprime[i].tolist(), "delta": p.delta[i].tolist(),
                "grad_W": p.grad_W[i].tolist(), "grad_b": p.grad_b[i].tolist()}
               for i in range(len(p.z) - 1, -1, -1)]
    stages.append({"stage": "input_gradient", "grad_x": p.grad_x.tolist(), "grad_plane": p.grad_plane.tolist()})
    update = []
    offset = 0
    for i in session.dense:
        layer = session.net.layers[i]
        n_w, n_b = layer.params["W"].size, layer.params["b"].size
        update.append({"dW": change[offset:offset + n_w].reshape(layer.params["W"].shape).tolist(),
                       "db": change[offset + n_w:offset + n_w + n_b].tolist()})
        offset += n_w + n_b
    stages.append({"stage": "update", "learning_rate": session.config["learning_rate"],
                   "optimizer": session.config["optimizer"], "layers": update})
    return {"type": "walk", "sample": {"set": "train", "index": index}, "cost": p.cost,
            "batch_loss": batch_loss, "stages": stages}


def gradcheck_entry(session: Session, layer: int, param: str, row: int, col: int,
                    eps: float = 1e-5, max_samples: int | None = None) -> dict[str, Any]:
    """Three values of ``∂C/∂θ`` for ``θ = Wˡ[row, col]`` (or ``bˡ[row]``), for the selected
    sample or else the last mini-batch (its first ``max_samples``): backprop's, the central
    difference ``(C(θ+ε) − C(θ−ε))/2ε``, and :func:`backprop.reference.per_parameter_gradients`'."""
    array = session.parameter(layer, param)
    session.check_entry(array, param, row, col)
    entry = (row, col) if param == "W" else (row,)
    if session.selected is not None:
        x, t = session.sample(*session.selected)
        over = f"{session.selected[0]} sample {session.selected[1] + 1}"   # counted from 1, as the page does
    else:
        idx = session.last_batch if session.last_batch.size else np.arange(
            min(session.config["batch_size"], session.x_train.shape[0]))
        idx = idx[:max_samples]
        x, t = session.x_train[idx], session.t_train[idx]
        over = f"the last mini-batch ({idx.shape[0]} samples)"
    net, loss = session.probe(), session.loss
    li = session.dense[layer - 1]
    a = net.forward_unchecked(x)
    net.backward_unchecked(loss.grad_unchecked(a, t), input_grad=False)
    backprop = float(net.layers[li].grads[param][entry])
    target = net.layers[li].params[param]
    numeric = central_difference(lambda: float(loss.value_unchecked(net.forward_unchecked(x), t)), target,
                                 entry, eps)
    reference = float(per_parameter_gradients(net, loss, x, t)[f"{li}.{param}"][entry])
    return {"type": "gradcheck", "layer": layer, "param": param, "row": row, "col": col, "over": over,
            "value": float(target[entry]), "backprop": backprop, "central_difference": numeric,
            "reference": reference, "eps": eps}
