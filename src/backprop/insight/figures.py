"""The report's figures, each drawn with matplotlib (Agg) and returned as a PNG data URI.

Every function returns ``"data:image/png;base64,..."``, ready for an ``<img src>``; nothing is
written to disk and matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import base64
import io as _io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..layers import Dense

#: how many first-layer units are drawn as images
N_UNITS = 64

_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(n: int) -> str:
    """``n`` in superscript digits: ``sup(12) == "¹²"``."""
    return str(n).translate(_SUP)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_uri(fig: Any, dpi: int = 80) -> str:
    """The figure as a PNG URI (and the figure closed)."""
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return _uri(buf.getvalue())


def curves_figure(history: dict[str, list]) -> str:
    """Loss (and accuracy, where measured) per epoch, training and validation.

    ``history`` is ``History.as_dict()``: lists ``epoch``, ``loss``, ``val_loss``, ``accuracy``
    and ``val_accuracy`` (``None`` entries where not measured), one entry per epoch.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    epochs = history["epoch"]
    has_acc = any(a is not None for a in history.get("accuracy", []))
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 3.4),
                             squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, history["loss"], "o-", label="training")
    if history.get("val_loss"):
        ax.plot(epochs, history["val_loss"], "s-", label="validation / test")
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    ax.legend()
    if has_acc:
        ax = axes[0][1]
        ax.plot(epochs, [100 * a for a in history["accuracy"]], "o-", label="training")
        val = history.get("val_accuracy") or []
        if val and val[0] is not None:
            ax.plot(epochs, [100 * a for a in val], "s-", label="validation / test")
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
        ax.legend()
    for a in axes[0]:
        a.grid(alpha=0.3)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _figure_uri(fig)


def grad_norms_figure(grad_norms: dict[str, list[float]], epochs: list[int],
                      names: dict[str, str]) -> str:
    """‖δˡ‖ per epoch for each Dense layer, log scale.

    ``grad_norms`` maps the layer's index in ``net.layers`` (a string) to one value per epoch;
    ``names`` maps the same keys to the legend's labels.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for key, values in grad_norms.items():
        ax.plot(epochs[:len(values)], values, "o-", label=names.get(key, f"layer {key}"))
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="RMS of ‖δˡ‖ over the epoch",
           title="error ‖δˡ‖ = ‖∂C/∂zˡ‖ per layer")
    ax.grid(alpha=0.3, which="both")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _figure_uri(fig)


def weight_histograms_figure(dense: list[Dense]) -> str:
    """One histogram of ``Wˡ`` ``(d_l, d_{l-1})`` per Dense layer, the values of ``bˡ``
    ``(d_l,)`` marked as ticks; layer l = position in ``dense`` + 1."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(dense), figsize=(3.3 * len(dense), 2.9), squeeze=False)
    for pos, (layer, ax) in enumerate(zip(dense, axes[0], strict=True), start=1):
        w = np.asarray(layer.params["W"], dtype=np.float64).ravel()
        b = np.asarray(layer.params["b"], dtype=np.float64)
        ax.hist(w, bins=60, color="#4c72b0")
        ax.plot(b, np.zeros_like(b), "|", color="#dd8452", markersize=12)
        ax.set_title(f"W{sup(pos)}  ({layer.d_out}×{layer.d_in}; orange ticks: b{sup(pos)})\n"
                     f"mean {w.mean():+.3f}, std {w.std():.3f}", fontsize=9)
        ax.set_xlabel("weight")
    fig.tight_layout()
    return _figure_uri(fig)


def confusion_figure(m: np.ndarray) -> str:
    """The confusion matrix ``m`` ``(k, k)`` (row: true class, column: predicted) as an
    annotated heat map (counts written in the cells for k <= 20)."""
    plt = pyplot()
    k = m.shape[0]
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    im = ax.imshow(m, cmap="Blues")
    if k <= 20:
        top = m.max() or 1
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > top / 2 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title="confusion matrix (test set)")
    if k <= 20:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _figure_uri(fig)


def image_png(img: np.ndarray, *, cmap: str = "gray_r", vmin: float = 0.0, vmax: float = 1.0,
              scale: int = 3) -> str:
    """One 2-D array ``(h, w)`` (e.g. a 28×28 digit) as a small PNG of ``(scale·h, scale·w)``
    pixels, each value a ``scale``×``scale`` block of colour ``cmap`` over ``[vmin, vmax]`` (no
    axes, no resampling)."""
    plt = pyplot()
    big = np.kron(np.asarray(img, dtype=np.float64), np.ones((scale, scale)))
    buf = _io.BytesIO()
    plt.imsave(buf, big, cmap=cmap, vmin=vmin, vmax=vmax, format="png")
    return _uri(buf.getvalue())


def first_layer_figure(W: np.ndarray, n: int = N_UNITS, cols: int = 8, scale: int = 3) -> str:
    """The first ``n`` rows of ``W`` ``(d_1, 784)`` as a mosaic of 28×28 tiles (row-major,
    ``cols`` per row, unit 0 top left), each on its own symmetric colour scale (red positive,
    blue negative, white zero)."""
    import matplotlib

    plt = pyplot()
    cmap = matplotlib.colormaps["RdBu_r"]
    n = min(n, W.shape[0])
    cols = min(n, cols)
    rows = -(-n // cols)
    gap = 2
    mosaic = np.ones((rows * (28 + gap) - gap, cols * (28 + gap) - gap, 4))  # white, RGBA
    for unit in range(n):
        w = np.asarray(W[unit], dtype=np.float64).reshape(28, 28)
        lim = float(np.abs(w).max()) or 1.0
        r, c = divmod(unit, cols)
        mosaic[r * (28 + gap):r * (28 + gap) + 28, c * (28 + gap):c * (28 + gap) + 28] = \
            cmap(0.5 + 0.5 * w / lim)
    big = np.kron(mosaic, np.ones((scale, scale, 1)))
    buf = _io.BytesIO()
    plt.imsave(buf, big, format="png")
    return _uri(buf.getvalue())
