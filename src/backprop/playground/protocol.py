"""The messages between the page and the server, checked: type, range and size.

Every message from the page is a JSON object with a ``"type"``; :func:`parse_message` returns it
checked (numbers as Python floats and ints, nothing coerced) or raises :class:`ProtocolError`,
whose ``field`` names the offending entry and whose message says what was expected. The
server answers a bad message with ``{"type": "error", "field": ..., "message": ...}`` and the
session goes on. ``docs/playground.md`` lists the messages; :data:`LIMITS` the bounds.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .data2d import CLASSIFICATION, FEATURES, MAX_CLASSES, MAX_CSV_BYTES, REGRESSION

#: the bounds every setting and message is checked against
LIMITS: dict[str, Any] = {
    "max_message_bytes": 2 * MAX_CSV_BYTES + 4096,  # a CSV upload is the largest message
    "max_hidden_layers": 6,
    "max_neurons": 16,
    "learning_rate": (1e-6, 10.0),
    "batch_size": (1, 500),
    "l2": (0.0, 1.0),
    "momentum": (0.0, 0.999),
    "noise": (0, 50),
    "train_share": (10, 90),
    "points": (20, 2000),
    "classes": (2, MAX_CLASSES),
    "grid": (10, 100),
    "epochs": (0, 100000),
    "seed": (0, 2**31 - 1),
    "steps": (1, 10000),
    "param_value": 100.0,
}

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
LOSSES = ("quadratic", "cross_entropy")
OPTIMIZERS = ("sgd", "momentum", "adam")

#: the settings of a fresh page (``hidden`` and ``activations``: one entry per hidden layer)
DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "circle", "noise": 0, "train_share": 50, "points": 500, "classes": 2, "data_seed": 0,
    "features": ["x1", "x2"], "hidden": [4, 2], "activations": ["tanh", "tanh"],
    "loss": "quadratic", "optimizer": "sgd", "learning_rate": 0.03, "momentum": 0.9,
    "batch_size": 10, "l2": 0.0, "seed": 0, "epochs": 0, "grid": 40,
}

#: the keys whose change needs new data, or a new network (the others change the optimizer)
DATA_KEYS = frozenset({"dataset", "noise", "train_share", "points", "classes", "data_seed"})
NETWORK_KEYS = frozenset({"features", "hidden", "activations", "loss", "seed"})

MESSAGE_TYPES = ("config", "play", "pause", "step", "reset", "regenerate", "select", "neuron",
                 "step_sample", "gradcheck", "set_param", "csv", "export")


class ProtocolError(ValueError):
    """A message broke the protocol: ``field`` names the entry (``"type"``, ``"config.noise"``,
    ...), the message says what was expected and what came."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, str]:
        return {"type": "error", "field": self.field, "message": str(self)}


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(msg: dict[str, Any], key: str, lo: int, hi: int, field: str | None = None) -> int:
    field = field or key
    value = msg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(field, f"{field} must be an integer from {lo} to {hi}; got {_show(value)}")
    return value


def _number(msg: dict[str, Any], key: str, lo: float, hi: float, field: str | None = None,
            *, open_low: bool = False) -> float:
    field = field or key
    value = msg.get(key)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (lo < value if open_low else lo <= value) and value <= hi)
    if not ok:
        span = f"({lo:g}, {hi:g}]" if open_low else f"[{lo:g}, {hi:g}]"
        raise ProtocolError(field, f"{field} must be a number in {span}; got {_show(value)}")
    return float(value)  # type: ignore[arg-type]  # checked above


def _choice(msg: dict[str, Any], key: str, choices: tuple[str, ...], field: str | None = None) -> str:
    field = field or key
    value = msg.get(key)
    if value not in choices:
        raise ProtocolError(field, f"{field} must be one of {', '.join(choices)}; got {_show(value)}")
    return str(value)


def check_config(update: Any, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` with the entries of ``update`` (a partial config object) applied, each
    checked; the result is checked as a whole (one activation per hidden layer, a loss that
    fits the data set). Unknown keys are refused."""
    if not isinstance(update, dict):
        raise ProtocolError("config", f"config must be an object; got {_show(update)}")
    unknown = sorted(set(update) - set(DEFAULT_CONFIG))
    if unknown:
        raise ProtocolError(f"config.{unknown[0]}",
                            f"config.{unknown[0]} is not a setting; settings: {', '.join(DEFAULT_CONFIG)}")
    out = dict(current)
    for key in update:
        out[key] = _checked_setting(update, key)
    if "hidden" in update and "activations" not in update:  # new layers take the last activation
        last = out["activations"][-1] if out["activations"] else "tanh"
        out["activations"] = (out["activations"] + [last] * len(out["hidden"]))[:len(out["hidden"])]
    if len(out["activations"]) != len(out["hidden"]):
        raise ProtocolError("config.activations", "config.activations must name one activation per hidden "
                            f"layer ({len(out['hidden'])}); got {len(out['activations'])}")
    if out["dataset"] in REGRESSION and out["loss"] != "quadratic":
        raise ProtocolError("config.loss", f"config.loss must be quadratic for the regression data set "
                            f"{out['dataset']}; got {out['loss']}")
    return out


def _checked_setting(update: dict[str, Any], key: str) -> Any:
    field = f"config.{key}"
    if key in ("noise", "train_share", "points", "classes", "grid", "epochs", "seed", "batch_size"):
        lo, hi = LIMITS[key]
        return _int(update, key, lo, hi, field)
    if key == "data_seed":
        lo, hi = LIMITS["seed"]
        return _int(update, key, lo, hi, field)
    if key == "learning_rate":
        return _number(update, key, 0.0, LIMITS[key][1], field, open_low=True)
    if key in ("l2", "momentum"):
        low, high = LIMITS[key]
        return _number(update, key, low, high, field)
    if key == "dataset":
        return _choice(update, key, CLASSIFICATION + REGRESSION + ("csv",), field)
    if key == "loss":
        return _choice(update, key, LOSSES, field)
    if key == "optimizer":
        return _choice(update, key, OPTIMIZERS, field)
    if key == "features":
        value = update[key]
        if (not isinstance(value, list) or not value or len(set(value)) != len(value)
                or any(v not in FEATURES for v in value)):
            raise ProtocolError(field, f"{field} must be a non-empty list of distinct names from "
                                f"{', '.join(FEATURES)}; got {_show(value)}")
        return [f for f in FEATURES if f in value]  # the network's input order
    if key == "hidden":
        value = update[key]
        top, most = LIMITS["max_hidden_layers"], LIMITS["max_neurons"]
        if (not isinstance(value, list) or len(value) > top
                or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most for v in value)):
            raise ProtocolError(field, f"{field} must be a list of at most {top} layer widths, each an "
                                f"integer from 1 to {most}; got {_show(value)}")
        return list(value)
    # activations (the only key left)
    value = update[key]
    if not isinstance(value, list) or any(v not in ACTIVATIONS for v in value):
        raise ProtocolError(field, f"{field} must be a list of names from {', '.join(ACTIVATIONS)}; "
                            f"got {_show(value)}")
    return list(value)


def parse_message(raw: str | bytes) -> dict[str, Any]:
    """The page's message ``raw`` (JSON text), checked; see ``docs/playground.md``.

    Raises:
        ProtocolError: too long, not JSON, not an object, an unknown ``type``, or an entry of
            the wrong type or out of range.
    """
    if len(raw) > LIMITS["max_message_bytes"]:
        raise ProtocolError("message", f"a message must be at most {LIMITS['max_message_bytes']} bytes; "
                            f"got {len(raw)}")
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError("message", f"a message must be JSON text; {err}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message", f"a message must be a JSON object; got {_show(msg)}")
    kind = _choice(msg, "type", MESSAGE_TYPES)
    if kind == "config":
        if not isinstance(msg.get("config"), dict):
            raise ProtocolError("config", f"config must be an object; got {_show(msg.get('config'))}")
        return {"type": kind, "config": msg["config"]}  # checked against the current one by check_config
    if kind == "step":
        return {"type": kind, "steps": _int(msg, "steps", *LIMITS["steps"]) if "steps" in msg else 1}
    if kind == "select":
        sample = msg.get("sample")
        if sample is None:
            return {"type": kind, "sample": None}
        if not isinstance(sample, dict):
            raise ProtocolError("sample", f"sample must be an object {{set, index}} or null; got {_show(sample)}")
        return {"type": kind, "sample": {"set": _choice(sample, "set", ("train", "test"), "sample.set"),
                                         "index": _int(sample, "index", 0, LIMITS["points"][1], "sample.index")}}
    if kind == "neuron":
        return {"type": kind, "layer": _int(msg, "layer", 1, LIMITS["max_hidden_layers"] + 1),
                "index": _int(msg, "index", 0, max(LIMITS["max_neurons"], MAX_CLASSES) - 1)}
    if kind in ("gradcheck", "set_param"):
        out = {"type": kind, "layer": _int(msg, "layer", 1, LIMITS["max_hidden_layers"] + 1),
               "param": _choice(msg, "param", ("W", "b")),
               "row": _int(msg, "row", 0, max(LIMITS["max_neurons"], MAX_CLASSES) - 1)}
        out["col"] = _int(msg, "col", 0, max(LIMITS["max_neurons"], len(FEATURES)) - 1) if out["param"] == "W" else 0
        if kind == "set_param":
            bound = LIMITS["param_value"]
            out["value"] = _number(msg, "value", -bound, bound)
        return out
    if kind == "csv":
        text = msg.get("text")
        if not isinstance(text, str):
            raise ProtocolError("text", f"text must be the CSV as a string; got {_show(text)}")
        return {"type": kind, "text": text}  # its size and rows: data2d.parse_csv
    if kind == "export":
        return {"type": kind, "what": _choice(msg, "what", ("model", "csv"))}
    return {"type": kind}
