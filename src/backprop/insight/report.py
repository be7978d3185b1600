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

This module renders HTML; :mod:`.report_data` gathers what it shows and :mod:`.figures`
draws the figures.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..layers import Dense
from ..losses import get_loss
from ..network import Network
from .figures import (
    N_UNITS,
    confusion_figure,
    curves_figure,
    first_layer_figure,
    grad_norms_figure,
    image_png,
    weight_histograms_figure,
)
from .report_data import ClassifierScores, Split, confusion_matrix, dense_layers, model_test_set, score_test_set

__all__ = ["build_report", "confusion_matrix", "model_test_set", "write_report"]

#: how many confidently wrong samples the report shows
N_WRONG = 24


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


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _row(*cells: str, grow_last: bool = False) -> str:
    """Side-by-side blocks (a figure and its table)."""
    inner = [f"<div>{c}</div>" for c in cells]
    if grow_last:
        inner[-1] = f'<div class="grow">{cells[-1]}</div>'
    return '<div class="row">' + "".join(inner) + "</div>"


# ------------------------------------------------------------------ sections
def _network_section(net: Network, metadata: dict[str, Any], loss_name: str) -> list[str]:
    parts = ["<h2>Network</h2>", f"<pre>{_e(net.summary())}</pre>",
             f"<p>loss: <b>{_e(loss_name)}</b></p>"]
    settings = metadata.get("settings") or {}
    if settings:
        shown = {k: v for k, v in sorted(settings.items()) if v is not None}
        parts.append('<p class="muted">settings: '
                     + _e(", ".join(f"{k}={v}" for k, v in shown.items())) + "</p>")
    saved = metadata.get("test")
    if saved:
        acc = f", accuracy {saved['accuracy']:.2%}" if saved.get("accuracy") is not None else ""
        parts.append(f"<p>test result saved at training time: loss {saved['loss']:.4f}{_e(acc)}"
                     + (f" (in {metadata['seconds']:.1f} s)" if metadata.get("seconds") else "")
                     + "</p>")
    return parts


def _curves_section(history: dict[str, Any]) -> list[str]:
    if not history.get("epoch"):
        return ["<h2>Training curves</h2>", _note("The model file holds no training history.")]
    return ["<h2>Training curves</h2>",
            _img(curves_figure(history), "training and validation loss and accuracy per epoch")]


def _grad_norms_section(history: dict[str, Any], dense: list[tuple[int, Dense]]) -> list[str]:
    """‖δˡ‖ per epoch and layer: figure, table and the ratio ‖δ¹‖ / ‖δᴸ‖ of the last epoch."""
    parts = ["<h2>Error at each layer, ‖δˡ‖ = ‖∂C/∂zˡ‖, over training</h2>"]
    grad_norms: dict[str, list[float]] | None = history.get("grad_norms")
    if not grad_norms:
        parts.append(_note("This model was trained without <code>--report</code> "
                           "(<code>fit(record_grad_norms=True)</code>), so the per-layer error "
                           "‖δˡ‖ was not recorded. Train it again with <code>backprop train "
                           "--report</code> to see it."))
        return parts
    names = {str(i): f"l = {pos}: Dense({layer.d_in}, {layer.d_out})"
             for pos, (i, layer) in enumerate(dense, start=1)}
    parts.append('<p class="muted">Per epoch, the root-mean-square over the training samples of '
                 "the norm of δˡ, the error at the output of Dense layer l (seed 000: "
                 "δˡ⁻¹ = (fˡ⁻¹)′ ∘ (Wˡ)ᵀ δˡ). A first layer far below the last one means "
                 "vanishing gradients.</p>")
    keys = list(grad_norms)
    n_epochs = min(len(v) for v in grad_norms.values())
    rows = [[str(e)] + [f"{grad_norms[k][j]:.3e}" for k in keys]
            for j, e in enumerate(history["epoch"][:n_epochs])]
    table = _table(["epoch"] + [names.get(k, k) for k in keys], rows)
    first, last = grad_norms[keys[0]][-1], grad_norms[keys[-1]][-1]
    if last > 0:
        table += f"<p>last epoch: ‖δ¹‖ / ‖δᴸ‖ = {first / last:.3g}</p>"
    figure = _img(grad_norms_figure(grad_norms, history["epoch"], names),
                  "per-layer norm of delta per epoch")
    parts.append(_row(figure, table))
    return parts


def _weights_section(dense: list[tuple[int, Dense]]) -> list[str]:
    """A histogram of each ``Wˡ`` and a table of its statistics (and the mean of ``bˡ``)."""
    parts = ["<h2>Weights of each Dense layer</h2>"]
    if not dense:
        return parts
    rows = [[str(pos), f"{layer.d_out}×{layer.d_in}",
             *(f"{f(np.asarray(layer.params['W'], np.float64)):+.4f}"
               for f in (np.mean, np.std, np.min, np.max)),
             f"{np.asarray(layer.params['b'], np.float64).mean():+.4f}"]
            for pos, (_i, layer) in enumerate(dense, start=1)]
    figure = _img(weight_histograms_figure([layer for _i, layer in dense]),
                  "histograms of each Dense layer's weights")
    parts.append(_row(figure, _table(["l", "Wˡ shape", "mean", "std", "min", "max", "mean bˡ"], rows)))
    return parts


def _test_section(net: Network, test: Split | None, loss_name: str) -> list[str]:
    """Accuracy, confusion matrix and the most confidently wrong samples."""
    parts = ["<h2>Test set</h2>"]
    if test is None:
        parts.append(_note("No test set: the model was trained on a --train-file without a "
                           "--test-file."))
        return parts
    x, y = test
    scores = score_test_set(net, x, y, get_loss(loss_name))
    if scores is None:
        parts.append(_note("The targets are not class labels: no confusion matrix or "
                           "misclassified samples."))
        return parts
    parts.append(f"<p>{len(scores.labels):,} test samples: accuracy <b>{scores.accuracy:.2%}</b> "
                 f"({scores.n_wrong:,} wrong)</p>")
    m = confusion_matrix(scores.labels, scores.predicted, scores.n_classes)
    parts.append(_row(_img(confusion_figure(m), "confusion matrix on the test set"),
                      "<h3>Most confidently wrong test samples</h3>" + _wrong_samples(x, scores),
                      grow_last=True))
    return parts


def _wrong_samples(x: np.ndarray, scores: ClassifierScores) -> str:
    """Thumbnails (784-wide inputs) or a table of the most confidently wrong samples."""
    wrong = scores.most_confidently_wrong(N_WRONG)
    what = "probability" if scores.is_probability else "output"  # softmax/sigmoid, else aᴸ
    labels, predicted, confidence = scores.labels, scores.predicted, scores.confidence
    if wrong.size == 0:
        return "<p>No test sample is misclassified.</p>"
    if x.shape[1] != 784:
        return _table(["test index", "true", "predicted", what],
                      [[str(i), str(labels[i]), str(predicted[i]), f"{confidence[i]:.4f}"]
                       for i in wrong])
    cells = []
    for i in wrong:
        shown = f"{confidence[i]:.0%}" if scores.is_probability else f"a = {confidence[i]:.2f}"
        uri = image_png(np.asarray(x[i], np.float64).reshape(28, 28))
        cells.append(f'<figure>{_img(uri, f"test image {i}")}<figcaption>#{i}: '
                     f"{labels[i]} → <b>{predicted[i]}</b><br>{shown}</figcaption></figure>")
    return (f'<p class="muted">Caption: test index, true → predicted class, and the '
            f"predicted class's {what}.</p>" + '<div class="thumbs">' + "".join(cells) + "</div>")


def _first_layer_section(dense: list[tuple[int, Dense]]) -> list[str]:
    parts = ["<h2>First layer's weights as images</h2>"]
    if not (dense and dense[0][1].d_in == 784):
        width = dense[0][1].d_in if dense else None
        parts.append(_note(f"The inputs are {width} wide, not 784 = 28×28 images: not drawn."))
        return parts
    W = dense[0][1].params["W"]  # (d_1, 784)
    parts.append(f'<p class="muted">Row i of W¹ (shape {W.shape[0]}×784) is what hidden unit i '
                 f"responds to, drawn as 28×28 (red: positive weight, blue: negative, each unit "
                 f"on its own scale); units 0 to {min(N_UNITS, W.shape[0]) - 1} of {W.shape[0]}, "
                 f"row by row.</p>")
    parts.append(_img(first_layer_figure(W), "first-layer weights drawn as 28 by 28 images"))
    return parts


# ---------------------------------------------------------------------- the report
def build_report(net: Network, metadata: dict[str, Any], test: Split | None,
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
    loss_name = metadata.get("loss", "cross_entropy")
    history = metadata.get("history") or {}
    dense = dense_layers(net)
    parts = [*_network_section(net, metadata, loss_name), *_curves_section(history),
             *_grad_norms_section(history, dense), *_weights_section(dense),
             *_test_section(net, test, loss_name), *_first_layer_section(dense)]
    body = "\n".join(parts)
    return _PAGE.format(csp=_CSP, title=_e(title), style=_STYLE, script=_SCRIPT,
                        n_images=body.count("<img "), body=body,
                        metadata=_json_for_script(metadata))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>backprop report: {title}</title>
<style>{style}</style>
<script>{script}</script>
</head>
<body data-images="{n_images}">
<h1>backprop training report: {title}</h1>
<p id="status">checking images…</p>
{body}
<p class="muted">Written by backprop's <code>report</code> command; self-contained (figures are
embedded PNGs).</p>
<script type="application/json" id="metadata">{metadata}</script>
</body>
</html>
"""


def _json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` can close it)."""
    return json.dumps(data, default=str).replace("</", "<\\/")


def write_report(model: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 limit: int | None = None, test_data: Split | None = None,
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
    path = model.with_suffix(".report.html") if out is None else Path(out)
    net = io.load(model)
    metadata = io.read_metadata(model)["metadata"]
    if test_data is None:
        test_data = model_test_set(metadata.get("settings") or {}, net.dtype.name, limit=limit,
                                   data_dir=data_dir)
    elif limit is not None:
        test_data = (test_data[0][:limit], test_data[1][:limit])
    page = build_report(net, metadata, test_data, title=model.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
