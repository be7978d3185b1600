"""Seed 000's input gradient ∇ₓC put to work: saliency maps and fast-gradient-sign attacks.

``Network.backward`` returns ``dC/dx``, the gradient of the cost with respect to the
input (seed 000: ``∇ₓC = (W¹)ᵀ (f¹)' ∘ ... ∘ (Wᴸ)ᵀ (fᴸ)' ∘ ∇_{aᴸ}C``). Two uses:

* **saliency**: ``|∇ₓC_x|`` for one image (the true label's cost) shows which pixels
  the cost is most sensitive to;
* **fast gradient sign method** (FGSM, Goodfellow et al. 2015): move every pixel by
  ε in the direction that increases the cost, ``x' = clip(x + ε·sign(∇ₓC_x), 0, 1)``.
  Accuracy on such inputs falls quickly with ε, though the images barely change.

Gradients are computed with ``net.forward``/``net.backward`` in inference mode (dropout
off), in batches. Since a loss's value is the mean over the batch, ``net.backward`` gives
row n as ``∇ₓC_{x_n} / N``; :func:`input_gradient` multiplies by N to return each sample's
own gradient. Plots use matplotlib (Agg), imported only when drawing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..losses import Loss, get_loss
from ..network import Network


def input_gradient(net: Network, x: Any, y: Any, loss: Loss | str, *,
                   batch_size: int = 1000) -> np.ndarray:
    """``∇ₓC_x`` for every sample: the gradient of its own cost ``C_x`` (not divided by N).

    Args:
        net: the network (its dropout is off: ``forward(train=False)``).
        x: inputs ``(N, d_0)``.
        y: targets for ``loss``: labels ``(N,)`` or rows ``(N, d_L)``.
        loss: the loss the model was trained with, or its name.
        batch_size: samples per forward/backward.

    Returns:
        ``(N, d_0)`` array of the network's dtype.
    """
    loss = get_loss(loss)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or y.shape[:1] != x.shape[:1]:
        raise ConfigError(f"x must be (N, d_0) with one target per row; "
                          f"got x {x.shape}, y {y.shape}")
    out = np.empty(x.shape, dtype=net.dtype)
    for lo in range(0, x.shape[0], batch_size):
        xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
        a = net.forward(xb)                       # (m, d_L), kept for backward
        g = net.backward(loss.grad(a, yb))        # dC/dx with C the batch mean: ∇ₓC_x / m
        assert g is not None                      # input_grad=True: backward returns dC/dx
        out[lo:lo + len(xb)] = g * len(xb)
    return out


def saliency(net: Network, x: Any, label: Any, loss: Loss | str) -> np.ndarray:
    """``|∇ₓC_x|`` for one input ``x`` ``(d_0,)`` and its true ``label``: shape ``(d_0,)``, ≥ 0."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ConfigError(f"x must be one input of shape (d_0,); got shape {x.shape}")
    g = input_gradient(net, x[None, :], np.asarray([label]), loss)[0]
    return np.abs(g)


def fgsm(x: np.ndarray, grad: np.ndarray, eps: float, *, lo: float = 0.0,
         hi: float = 1.0) -> np.ndarray:
    """The fast-gradient-sign example ``x' = clip(x + ε·sign(∇ₓC), lo, hi)``; same shape as ``x``.

    ``eps = 0`` returns ``x`` itself (clipped: unchanged for pixels in [0, 1]).
    """
    if not np.isfinite(eps) or eps < 0:
        raise ConfigError(f"eps must be a finite number >= 0; got {eps}")
    adv = x + np.asarray(eps, dtype=x.dtype) * np.sign(grad).astype(x.dtype)
    return np.clip(adv, lo, hi, out=adv)


def attack(net: Network, x: Any, labels: Any, loss: Loss | str, eps: Sequence[float], *,
           batch_size: int = 1000) -> dict[str, Any]:
    """Accuracy of ``net`` on FGSM examples of ``(x, labels)`` at each ε.

    The gradient is taken once, at the clean inputs, with the true labels.

    Args:
        x: inputs ``(N, d_0)`` in [0, 1].
        labels: integer class labels ``(N,)``.
        eps: the ε values (0 gives the clean accuracy).

    Returns:
        ``{"eps": [...], "accuracy": [...], "predicted": (len(eps), N) int array,
        "grad": (N, d_0) ∇ₓC_x}``.
    """
    from ..training.metrics import predicted_classes

    loss = get_loss(loss)
    x = np.asarray(x, dtype=net.dtype)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConfigError(f"labels must be integer class labels of shape (N,); got {labels.dtype} "
                          f"{labels.shape}")
    grad = input_gradient(net, x, labels, loss, batch_size=batch_size)
    accuracies, predicted = [], []
    for e in eps:
        adv = fgsm(x, grad, float(e))
        p = predicted_classes(net.predict(adv, batch_size=2048), loss)
        predicted.append(p)
        accuracies.append(float(np.mean(p == labels)))
    return {"eps": [float(e) for e in eps], "accuracy": accuracies,
            "predicted": np.stack(predicted), "grad": grad}


# ------------------------------------------------------------------ figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_saliency(image: np.ndarray, sal: np.ndarray, path: str | os.PathLike, *,
                  title: str = "") -> Path:
    """Draw a square ``image`` (e.g. ``(784,)``, 28×28), its saliency ``sal`` (same shape) and
    the overlay to the PNG ``path``."""
    plt = _pyplot()
    side = int(round(np.sqrt(image.size)))
    if side * side != image.size:
        raise ConfigError(f"saliency maps are drawn for square images; the input has {image.size} "
                          f"values")
    img, s = image.reshape(side, side), sal.reshape(side, side)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(img, cmap="gray_r", vmin=0, vmax=1)
    axes[0].set_title("image")
    im = axes[1].imshow(s, cmap="hot")
    axes[1].set_title("|∇ₓC| (saliency)")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[2].imshow(s, cmap="hot", alpha=0.6)
    axes[2].set_title("overlay")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_attack(x: np.ndarray, labels: np.ndarray, result: dict[str, Any],
                path: str | os.PathLike, *, n_examples: int = 6) -> Path:
    """Accuracy against ε, and example images clean vs adversarial (largest ε) with the
    predictions, to a PNG. ``x`` ``(N, d_0)`` (images drawn when d_0 is a square such as 784),
    ``labels`` ``(N,)``, ``result`` from :func:`attack`."""
    plt = _pyplot()
    eps, acc = result["eps"], result["accuracy"]
    big = int(np.argmax(eps))
    square = int(round(np.sqrt(x.shape[1]))) ** 2 == x.shape[1]
    # examples: clean correct, fooled at the largest ε
    clean = int(np.argmin(eps))
    fooled = np.flatnonzero((result["predicted"][clean] == labels)
                            & (result["predicted"][big] != labels))[:n_examples]
    n = len(fooled) if square else 0
    fig = plt.figure(figsize=(max(6.0, 1.5 * n + 4.5), 4.2))
    grid = fig.add_gridspec(2, max(n, 1) + 3)
    ax = fig.add_subplot(grid[:, :3])
    ax.plot(eps, [100 * a for a in acc], "o-")
    ax.set(xlabel="ε", ylabel="test accuracy (%)", title="accuracy under FGSM", ylim=(0, 100))
    ax.grid(alpha=0.3)
    if n:
        side = int(round(np.sqrt(x.shape[1])))
        adv = fgsm(x[fooled], result["grad"][fooled], eps[big])
        for j, i in enumerate(fooled):
            for row, (img, pred) in enumerate(((x[i], result["predicted"][clean][i]),
                                               (adv[j], result["predicted"][big][i]))):
                a = fig.add_subplot(grid[row, 3 + j])
                a.imshow(img.reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
                a.set_title(("clean" if row == 0 else f"ε={eps[big]:g}") + f": {pred}", fontsize=8)
                a.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
