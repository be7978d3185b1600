"""What the page draws, computed with NumPy from the library: one frame = a JSON object and the
heatmaps as bytes.

Heatmaps are the values of every neuron over a ``r × r`` grid of the plane (rows from the top,
:func:`~backprop.playground.data2d.grid_points`), through the layers' own ``predict``; each
value ``v`` is clipped to [-1, 1] and quantised to one byte, ``round((v + 1) · 127.5)``. The
binary message holds, in order: every input feature (scaled to [-1, 1]), every hidden neuron,
every output neuron (a probability ``p`` as ``2p − 1``), each ``r²`` bytes; then the output over
a finer grid of :data:`OUTPUT_RESOLUTION`² bytes, and for more than two classes a second grid of
as many bytes: the winning class's index (first grid: its probability as ``2p − 1``).
``docs/playground.md`` describes the JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import Activation, Sigmoid
from ..losses import CrossEntropy
from . import data2d
from .passes import input_gradients, selected_pass
from .session import Session

#: the output heatmap's grid (the neurons' is ``config["grid"]``)
OUTPUT_RESOLUTION = 100
#: each feature divided by its largest magnitude over the plane, so that its heatmap fills [-1, 1]
_FEATURE_SCALE = {"x1": 6.0, "x2": 6.0, "x1sq": 36.0, "x2sq": 36.0, "x1x2": 36.0, "sinx1": 1.0, "sinx2": 1.0}


def quantise(values: np.ndarray) -> bytes:
    """Values in [-1, 1] (clipped; NaN as 0) as bytes 0..255: ``round((v + 1) · 127.5)``."""
    return np.rint((np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).tobytes()


def output_values(session: Session, a: np.ndarray) -> np.ndarray:
    """The network's outputs ``a`` ``(n, d_L)`` as the page colours them, in [-1, 1]: a
    regression value as it is, a probability ``p`` (sigmoid or softmax) as ``2p − 1``."""
    if session.data.regression:
        return a
    if isinstance(session.loss, CrossEntropy):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return 2.0 * e / e.sum(axis=1, keepdims=True) - 1.0
    return 2.0 * a - 1.0


def neuron_grids(session: Session, resolution: int) -> list[np.ndarray]:
    """Every neuron over the grid: per layer (features, hidden layers, output) an array
    ``(r², d_l)`` in [-1, 1] (the output as :func:`output_values`)."""
    names = session.config["features"]
    x = data2d.features(data2d.grid_points(resolution), names)
    layers = [x / np.array([_FEATURE_SCALE[n] for n in names])]
    a = x
    net = session.net
    for i, layer in enumerate(net.layers):
        a = layer.predict(a)                   # keeps nothing: training's state is untouched
        after = net.layers[i + 1] if i + 1 < len(net.layers) else None
        if not isinstance(after, Activation):  # aˡ: after the activation, or z when there is none
            layers.append(a)
    layers[-1] = output_values(session, a)
    return layers


class Framer:
    """Builds one page's frames; remembers which history points that page has been sent."""

    def __init__(self) -> None:
        self._version = -1
        self._sent = 0

    def data_message(self, session: Session) -> dict[str, Any]:
        """The points and what they are (sent when the data or the network changes)."""
        d = session.data
        return {"type": "data", "config": session.config, "classes": d.classes, "regression": d.regression,
                "extent": data2d.EXTENT, "features": session.config["features"],
                "widths": [len(session.config["features"])] + [session.net.layers[i].d_out  # type: ignore[attr-defined]
                                                              for i in session.dense],
                "train": {"x": d.x_train.tolist(), "y": d.y_train.tolist()},
                "test": {"x": d.x_test.tolist(), "y": d.y_test.tolist()},
                "output_sigmoid": isinstance(session.net.layers[-1], Sigmoid)}

    def frame(self, session: Session) -> tuple[dict[str, Any], bytes]:
        """The frame's JSON object and its bytes (see the module's docstring)."""
        resolution = session.config["grid"]
        layers = neuron_grids(session, resolution)
        chunks = [quantise(grid.T) for grid in layers]                  # neuron by neuron
        out = layers[-1] if resolution == OUTPUT_RESOLUTION else neuron_grids(session, OUTPUT_RESOLUTION)[-1]
        kind = "value" if session.data.regression else ("classes" if out.shape[1] > 2 else "probability")
        if kind == "classes":
            chunks += [quantise(out.max(axis=1)), np.argmax(out, axis=1).astype(np.uint8).tobytes()]
        else:
            chunks.append(quantise(out[:, -1]))                        # p(class 1), or the value
        message: dict[str, Any] = {
            "type": "frame", "step": session.steps, "epoch": session.epoch, "playing": session.playing,
            "finished": session.finished(), **session.metrics(),
            "layers": self._layers(session), "history": self._history(session),
            "input_gradients": input_gradients(session).round(6).tolist(),
            "sample": self._sample(session),
            "grid": {"resolution": resolution, "output_resolution": OUTPUT_RESOLUTION,
                     "widths": [g.shape[1] for g in layers], "output": kind},
        }
        return message, b"".join(chunks)

    @staticmethod
    def _layers(session: Session) -> list[dict[str, Any]]:
        """Per layer l = 1..L: ``W``, ``b``, the last step's ``∂C/∂W`` and ``∂C/∂b`` (= the
        mini-batch's δˡ, the mean of the per-sample δ), and ``‖δˡ‖``."""
        norms = session.delta_norms()
        out = []
        for n, i in enumerate(session.dense):
            layer = session.net.layers[i]
            out.append({"W": layer.params["W"].tolist(), "b": layer.params["b"].tolist(),
                        "dW": layer.grads["W"].tolist(), "db": layer.grads["b"].tolist(),
                        "delta_norm": norms[n]})
        return out

    def _history(self, session: Session) -> dict[str, Any]:
        """The history points the page has not had yet (all of them after a reset)."""
        if self._version != session.history_version or self._sent > len(session.history):
            self._version, self._sent = session.history_version, 0
            start = 0
        else:
            start = self._sent
        points = session.history[start:]
        self._sent = len(session.history)
        return {"version": self._version, "start": start, "points": points}

    @staticmethod
    def _sample(session: Session) -> dict[str, Any] | None:
        p = selected_pass(session)
        if p is None or session.selected is None:
            return None
        return {"set": session.selected[0], "index": session.selected[1], "cost": p.cost,
                "output": p.a[-1].tolist(), "target": p.t.tolist(),
                "delta": [d.tolist() for d in p.delta], "grad_W": [g.tolist() for g in p.grad_W],
                "grad_plane": p.grad_plane.tolist()}
