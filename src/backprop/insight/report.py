"""A training report: one self-contained HTML page about a saved model.

``write_report(model_path)`` (the ``backprop report`` command, and ``backprop train
--report``) reads a model file and its training metadata (see :mod:`backprop.io`) and
writes a single HTML file that needs nothing else: every figure is a PNG drawn with
matplotlib (Agg) and embedded as a ``data:image/png;base64,...`` URI, the style sheet
and the small script are inline, and a Content-Security-Policy forbids anything else
(a stray external reference would be blocked and reported as an error in the console).

Sections:

* the network's summary, the training settings and the test loss/accuracy;
* training and validation curves (loss, accuracy) from ``metadata["history"]``;
* the size of the error ‖δˡ‖ = ‖∂C_x/∂zˡ‖ at each Dense layer over training, from
  ``history["grad_norms"]`` (recorded by ``fit(record_grad_norms=True)``, i.e. ``train
  --report``); without it, a note saying so;
* a histogram of each Dense layer's weights ``Wˡ`` (shape ``(d_l, d_{l-1})``);
* the confusion matrix on the test set;
* the most confidently wrong test samples (28×28 thumbnails for 784-wide inputs);
* the first layer's weights, one 28×28 image per hidden unit (784-wide inputs).

The test set is the model's own: the data set named in its settings (``mnist`` by
default, or its ``--test-file``), cut to ``limit`` samples (default: the ``--limit`` it was
trained with). On load the page checks that every ``<img>`` decoded and writes the result
into ``<p id="status">`` (``ok 7 images``), which a headless browser can read back.
"""

from __future__ import annotations

import base64
import html
import io as _io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..network import Network

#: how many confidently wrong samples the report shows
N_WRONG = 24
#: how many first-layer units are drawn as images
N_UNITS = 64


# -------------------------------------------------------------------- data
def model_test_set(settings: dict[str, Any], dtype: str, *, limit: int | None = None,
                   data_dir: str | os.PathLike | None = None
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The test set a model was trained with, from its saved settings.

    Args:
        settings: ``metadata["settings"]`` of the model file (the ``train`` flags); may be empty.
        dtype: dtype of the returned inputs (the network's).
        limit: keep the first ``limit`` samples; ``None``: the ``limit`` in ``settings``, if any.
        data_dir: directory of the data set's IDX files (overrides the saved ``data_dir``).

    Returns:
        ``(x, y)``: ``x`` of shape ``(N, d_0)``, ``y`` of shape ``(N,)``; ``None`` when the model
        was trained on a ``--train-file`` without a ``--test-file``.
    """
    from .. import datasets

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be a positive integer; got {limit}")
    limit = settings.get("limit") if limit is None else limit
    test_file = settings.get("test_file")
    if test_file:
        path = Path(test_file)
        if path.suffix.lower() == ".npz":
            x, y = datasets.load_npz(path, dtype=dtype)
        else:
            x, y = datasets.load_csv(path, label_column=settings.get("label_column", -1),
                                     dtype=dtype)
    elif settings.get("train_file"):
        return None
    else:
        name = settings.get("dataset") or "mnist"
        data_dir = data_dir if data_dir is not None else settings.get("data_dir")
        if name == "mnist":
            _, (x, y) = datasets.load_mnist(dtype=dtype)
        elif name == "fashion-mnist":
            _, (x, y) = datasets.load_fashion_mnist(dtype=dtype, data_dir=data_dir)
        elif name == "kmnist":
            _, (x, y) = datasets.load_kmnist(dtype=dtype, data_dir=data_dir)
        else:
            raise ConfigError(f"the model's data set {name!r} is unknown; "
                              f"known: mnist, fashion-mnist, kmnist")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


# ------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _png(fig, dpi: int = 80) -> str:
    """The figure as a ``data:image/png;base64,`` URI (and the figure closed)."""
    plt = _pyplot()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _dense_layers(net: Network) -> list[tuple[int, Any]]:
    """``(index in net.layers, layer)`` of each Dense layer; the notes' l is position + 1."""
    from ..layers import Dense

    return [(i, layer) for i, layer in enumerate(net.layers) if isinstance(layer, Dense)]


def curves_figure(history: dict[str, list]) -> str:
    """Loss (and accuracy, where measured) per epoch, training and validation: a PNG URI."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
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
    return _png(fig)


def grad_norms_figure(grad_norms: dict[str, list[float]], epochs: list[int],
                      names: dict[str, str]) -> str:
    """‖δˡ‖ per epoch for each Dense layer, log scale: a PNG URI.

    ``grad_norms`` maps the layer's index in ``net.layers`` (a string) to one value per epoch.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
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
    return _png(fig)


def weight_histograms_figure(net: Network) -> str:
    """One histogram of ``Wˡ`` per Dense layer (bias values marked as ticks): a PNG URI."""
    plt = _pyplot()
    dense = _dense_layers(net)
    fig, axes = plt.subplots(1, len(dense), figsize=(3.3 * len(dense), 2.9), squeeze=False)
    for pos, ((_i, layer), ax) in enumerate(zip(dense, axes[0], strict=True), start=1):
        w = np.asarray(layer.params["W"], dtype=np.float64).ravel()
        b = np.asarray(layer.params["b"], dtype=np.float64)
        ax.hist(w, bins=60, color="#4c72b0")
        ax.plot(b, np.zeros_like(b), "|", color="#dd8452", markersize=12)
        ax.set_title(f"W{_sup(pos)}  ({layer.d_out}×{layer.d_in}; orange ticks: b{_sup(pos)})\n"
                     f"mean {w.mean():+.3f}, std {w.std():.3f}", fontsize=9)
        ax.set_xlabel("weight")
    fig.tight_layout()
    return _png(fig)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """``(k, k)`` counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def confusion_figure(m: np.ndarray) -> str:
    """The confusion matrix ``m`` ``(k, k)`` as an annotated heat map: a PNG URI."""
    plt = _pyplot()
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
    return _png(fig)


def image_png(img: np.ndarray, *, cmap: str = "gray_r", vmin: float = 0.0, vmax: float = 1.0,
              scale: int = 3) -> str:
    """One 2-D array (e.g. a 28×28 digit) as a small PNG URI, each value a ``scale``×``scale``
    block of colour ``cmap`` over ``[vmin, vmax]`` (no axes, no resampling)."""
    plt = _pyplot()
    big = np.kron(np.asarray(img, dtype=np.float64), np.ones((scale, scale)))
    buf = _io.BytesIO()
    plt.imsave(buf, big, cmap=cmap, vmin=vmin, vmax=vmax, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def first_layer_figure(W: np.ndarray, n: int = N_UNITS, cols: int = 8, scale: int = 3) -> str:
    """The first ``n`` rows of ``W`` ``(d_1, 784)`` as a mosaic of 28×28 tiles (row-major,
    ``cols`` per row, unit 0 top left), each on its own symmetric colour scale (red positive,
    blue negative, white zero): a PNG URI."""
    import matplotlib

    plt = _pyplot()
    cmap = matplotlib.colormaps["RdBu_r"]
    n = min(n, W.shape[0])
    cols = min(n, cols)
    rows = -(-n // cols)
    gap = 2
    mosaic = np.ones((rows * (28 + gap) - gap, cols * (28 + gap) - gap, 4))  # white
    for unit in range(n):
        w = np.asarray(W[unit], dtype=np.float64).reshape(28, 28)
        lim = float(np.abs(w).max()) or 1.0
        r, c = divmod(unit, cols)
        mosaic[r * (28 + gap):r * (28 + gap) + 28, c * (28 + gap):c * (28 + gap) + 28] = \
            cmap(0.5 + 0.5 * w / lim)
    big = np.kron(mosaic, np.ones((scale, scale, 1)))
    buf = _io.BytesIO()
    plt.imsave(buf, big, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _sup(n: int) -> str:
    return str(n).translate(_SUP)


# ---------------------------------------------------------------------- page
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.2em 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
pre { background: #f6f8fa; padding: 0.7em; overflow-x: auto; font-size: 0.8em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f6f8fa; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.4em; }
.thumbs figure { margin: 0; text-align: center; font-size: 0.75em; width: 96px; }
.thumbs img { margin: 0 auto; image-rendering: pixelated; border: 1px solid #ddd; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
#status { font-size: 0.8em; color: #666; }
#status.ok { color: #2e7d32; }
#status.bad { color: #c62828; font-weight: bold; }
.muted { color: #666; font-size: 0.9em; }
h3 { font-size: 1em; margin-top: 0.3em; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.row > .grow { flex: 1 1 380px; }
"""

# On load: every <img> must have decoded (naturalWidth > 0) and no error event may have fired;
# the verdict goes into #status, where a headless browser's --dump-dom can read it.
_SCRIPT = """
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(e.message || ("failed to load a " + (e.target && e.target.tagName)));
  }, true);
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var bad = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
    var s = document.getElementById("status");
    if (bad.length || errors.length) {
      s.textContent = "FAILED: " + bad.length + " of " + imgs.length + " images did not decode; "
        + errors.join("; ");
      s.className = "bad";
    } else {
      s.textContent = "ok " + imgs.length + " images";
      s.className = "ok";
    }
  });
})();
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'")


def _e(text: Any) -> str:
    return html.escape(str(text))


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows]
    return "".join(out) + "</table>"


def build_report(net: Network, metadata: dict[str, Any], test: tuple[np.ndarray, np.ndarray] | None,
                 *, title: str = "model") -> str:
    """The report page as one HTML string (see the module docstring for its sections).

    Args:
        net: the trained network.
        metadata: the model file's training metadata (``loss``, ``settings``, ``history``,
            ``test``), as written by ``backprop train``; may be empty.
        test: ``(x, y)`` with ``x`` of shape ``(N, d_0)`` and ``y`` ``(N,)`` or ``(N, k)``,
            or ``None`` (the test-set sections then say so).
        title: the name shown in the heading (the model file's name).
    """
    from ..losses import BinaryCrossEntropy, CrossEntropy, get_loss
    from ..training.metrics import class_labels, output_probabilities, predicted_classes

    loss_name = metadata.get("loss", "cross_entropy")
    loss = get_loss(loss_name)
    history = metadata.get("history") or {}
    settings = metadata.get("settings") or {}
    dense = _dense_layers(net)
    parts: list[str] = []
    add = parts.append

    # ---- summary
    add("<h2>Network</h2>")
    add(f"<pre>{_e(net.summary())}</pre>")
    add(f"<p>loss: <b>{_e(loss_name)}</b></p>")
    if settings:
        shown = {k: v for k, v in sorted(settings.items()) if v is not None}
        add('<p class="muted">settings: ' + _e(", ".join(f"{k}={v}" for k, v in shown.items()))
            + "</p>")
    saved = metadata.get("test")
    if saved:
        acc = f", accuracy {saved['accuracy']:.2%}" if saved.get("accuracy") is not None else ""
        add(f"<p>test result saved at training time: loss {saved['loss']:.4f}{_e(acc)}"
            + (f" (in {metadata['seconds']:.1f} s)" if metadata.get("seconds") else "") + "</p>")

    # ---- curves
    add("<h2>Training curves</h2>")
    if history.get("epoch"):
        add(_img(curves_figure(history), "training and validation loss and accuracy per epoch"))
    else:
        add('<p class="note">The model file holds no training history.</p>')

    # ---- gradient norms
    add("<h2>Error at each layer, ‖δˡ‖ = ‖∂C/∂zˡ‖, over training</h2>")
    grad_norms = history.get("grad_norms")
    if grad_norms:
        names = {str(i): f"l = {pos}: Dense({layer.d_in}, {layer.d_out})"
                 for pos, (i, layer) in enumerate(dense, start=1)}
        add('<p class="muted">Per epoch, the root-mean-square over the training samples of the '
            "norm of δˡ, the error at the output of Dense layer l (seed 000: "
            "δˡ⁻¹ = (fˡ⁻¹)′ ∘ (Wˡ)ᵀ δˡ). A first layer far below the last one means vanishing "
            "gradients.</p>")
        add('<div class="row"><div>')
        add(_img(grad_norms_figure(grad_norms, history["epoch"], names),
                 "per-layer norm of delta per epoch"))
        add("</div><div>")
        keys = list(grad_norms)
        rows = [[str(e)] + [f"{grad_norms[k][j]:.3e}" for k in keys]
                for j, e in enumerate(history["epoch"][:min(len(v) for v in grad_norms.values())])]
        add(_table(["epoch"] + [names.get(k, k) for k in keys], rows))
        first, last = grad_norms[keys[0]][-1], grad_norms[keys[-1]][-1]
        if last > 0:
            add(f"<p>last epoch: ‖δ¹‖ / ‖δᴸ‖ = {first / last:.3g}</p>")
        add("</div></div>")
    else:
        add('<p class="note">This model was trained without <code>--report</code> '
            "(<code>fit(record_grad_norms=True)</code>), so the per-layer error ‖δˡ‖ was not "
            "recorded. Train it again with <code>backprop train --report</code> to see it.</p>")

    # ---- weights
    add("<h2>Weights of each Dense layer</h2>")
    if dense:
        add('<div class="row"><div>')
        add(_img(weight_histograms_figure(net), "histograms of each Dense layer's weights"))
        add("</div><div>")
        rows = [[str(pos), f"{layer.d_out}×{layer.d_in}",
                 *(f"{f(np.asarray(layer.params['W'], np.float64)):+.4f}"
                   for f in (np.mean, np.std, np.min, np.max)),
                 f"{np.asarray(layer.params['b'], np.float64).mean():+.4f}"]
                for pos, (_i, layer) in enumerate(dense, start=1)]
        add(_table(["l", "Wˡ shape", "mean", "std", "min", "max", "mean bˡ"], rows))
        add("</div></div>")

    # ---- test set
    add("<h2>Test set</h2>")
    labels = None
    if test is None:
        add('<p class="note">No test set: the model was trained on a --train-file without a '
            "--test-file.</p>")
    else:
        x, y = test
        k = net.output_width
        labels = class_labels(np.asarray(y), k, loss)
        if labels is None:
            add('<p class="note">The targets are not class labels: no confusion matrix or '
                "misclassified samples.</p>")
    if test is not None and labels is not None:
        a = net.predict(x, batch_size=2048)
        predicted = predicted_classes(a, loss)
        probs = output_probabilities(a, loss)
        if probs.shape[1] == 1:  # one binary logit: the probability of each class
            probs = np.hstack([1 - probs, probs])
        n_classes = max(2, k)
        confidence = probs[np.arange(len(predicted)), predicted]
        acc = float(np.mean(predicted == labels))
        add(f"<p>{len(labels):,} test samples: accuracy <b>{acc:.2%}</b> "
            f"({int(np.sum(predicted != labels)):,} wrong)</p>")
        add('<div class="row"><div>')
        add(_img(confusion_figure(confusion_matrix(labels, predicted, n_classes)),
                 "confusion matrix on the test set"))
        add('</div><div class="grow">')
        add("<h3>Most confidently wrong test samples</h3>")
        wrong = np.flatnonzero(predicted != labels)
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:N_WRONG]
        # the outputs went through softmax/sigmoid: probabilities, else raw outputs aᴸ
        is_prob = isinstance(loss, (CrossEntropy, BinaryCrossEntropy))
        what = "probability" if is_prob else "output"
        if wrong.size == 0:
            add("<p>No test sample is misclassified.</p>")
        elif net.input_width == 784:
            add(f'<p class="muted">Caption: test index, true → predicted class, and the '
                f"predicted class's {what}.</p>")
            cells = []
            for i in wrong:
                shown = f"{confidence[i]:.0%}" if is_prob else f"a = {confidence[i]:.2f}"
                uri = image_png(np.asarray(x[i], np.float64).reshape(28, 28))
                cells.append(f'<figure>{_img(uri, f"test image {i}")}<figcaption>#{i}: '
                             f"{labels[i]} → <b>{predicted[i]}</b><br>{shown}</figcaption>"
                             "</figure>")
            add('<div class="thumbs">' + "".join(cells) + "</div>")
        else:
            add(_table(["test index", "true", "predicted", what],
                       [[str(i), str(labels[i]), str(predicted[i]), f"{confidence[i]:.4f}"]
                        for i in wrong]))
        add("</div></div>")

    # ---- first layer
    add("<h2>First layer's weights as images</h2>")
    if dense and dense[0][1].d_in == 784:
        W = dense[0][1].params["W"]
        add(f'<p class="muted">Row i of W¹ (shape {W.shape[0]}×784) is what hidden unit i '
            f"responds to, drawn as 28×28 (red: positive weight, blue: negative, each unit on "
            f"its own scale); units 0 to {min(N_UNITS, W.shape[0]) - 1} of {W.shape[0]}, "
            f"row by row.</p>")
        add(_img(first_layer_figure(W), "first-layer weights drawn as 28 by 28 images"))
    else:
        width = dense[0][1].d_in if dense else None
        add(f'<p class="note">The inputs are {width} wide, not 784 = 28×28 images: '
            "not drawn.</p>")

    body = "\n".join(parts)
    n_images = body.count("<img ")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>backprop report: {_e(title)}</title>
<style>{_STYLE}</style>
<script>{_SCRIPT}</script>
</head>
<body data-images="{n_images}">
<h1>backprop training report: {_e(title)}</h1>
<p id="status">checking images…</p>
{body}
<p class="muted">Written by backprop's <code>report</code> command; self-contained (figures are
embedded PNGs).</p>
<script type="application/json" id="metadata">{_json_for_script(metadata)}</script>
</body>
</html>
"""


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` can close it)."""
    return json.dumps(data, default=str).replace("</", "<\\/")


def write_report(model: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 limit: int | None = None, test_data: tuple[np.ndarray, np.ndarray] | None = None,
                 data_dir: str | os.PathLike | None = None) -> Path:
    """Write the report of the model file ``model`` to ``out`` and return ``out``.

    Args:
        model: a model file written by :func:`backprop.save` (ideally by ``backprop train``,
            whose metadata holds the history and settings).
        out: the HTML file; default ``<model stem>.report.html`` next to the model.
        limit: use the first ``limit`` test samples (default: the ``--limit`` of training).
        test_data: ``(x, y)`` to use as the test set instead of loading the model's own.
        data_dir: where the data set's IDX files are (fashion-mnist, kmnist offline).
    """
    from .. import io

    model = Path(model)
    out = model.with_suffix(".report.html") if out is None else Path(out)
    net = io.load(model)
    metadata = io.read_metadata(model)["metadata"]
    if test_data is None:
        test_data = model_test_set(metadata.get("settings") or {}, net.dtype.name, limit=limit,
                                   data_dir=data_dir)
    elif limit is not None:
        test_data = (test_data[0][:limit], test_data[1][:limit])
    page = build_report(net, metadata, test_data, title=model.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
