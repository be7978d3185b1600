"""Every public boundary refuses bad input with a specific error that names the argument, and a
refused call changes nothing; ``predict`` is safe from many threads at once.

One parametrized case per bad input (its id says what it is). Each case runs against a fresh
:class:`Ctx` (a float32 network, data, an optimizer, a recording callback) and then checks
that the error is of the expected class, that its message names the argument (the ``match``
pattern starts with the argument's name), and that nothing was modified: the weights, the
optimizer's state, the input arrays, and the files read; a refused ``fit`` called no callback.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import backprop as bp
from backprop import builders, datasets, io
from backprop.activations import activation
from backprop.errors import (
    BackpropError,
    ConfigError,
    DTypeError,
    FileFormatError,
    InvalidValueError,
    ShapeError,
)
from backprop.losses import get_loss
from backprop.training import checkpoint

N = 12  # training samples: 4 features, 3 classes


class Recorder(bp.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, net, history):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, net, history):
        self.calls.append("epoch_begin")

    def on_batch_end(self, batch, logs, net):
        self.calls.append("batch_end")


class Ctx:
    """What a case may touch, and a record of it to prove that a refused call changed nothing."""

    def __init__(self, tmp_path: Path):
        rng = np.random.default_rng(0)
        self.tmp_path = tmp_path
        self.net = bp.Network([bp.Dense(4, 5), bp.Tanh(), bp.Dropout(0.2), bp.Dense(5, 3)], seed=0)
        self.x = rng.normal(size=(N, 4)).astype(np.float32)
        self.labels = rng.integers(0, 3, N)
        self.targets = rng.normal(size=(N, 3)).astype(np.float32)   # regression targets
        self.x_val = rng.normal(size=(5, 4)).astype(np.float32)
        self.labels_val = rng.integers(0, 3, 5)
        self.a = rng.normal(size=(4, 3)).astype(np.float32)           # network outputs (logits)
        self.opt = bp.SGD(lr=0.1, momentum=0.9)
        self.rec = Recorder()
        self.files: dict[str, bytes] = {}
        self._arrays = {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        self._params = [p.copy() for p in self.net.parameters()]

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp_path / name
        path.write_bytes(content)
        self.files[name] = content
        return path

    def csv(self) -> Path:
        return self.file("data.csv", b"a,b,label\n0.5,1.0,0\n1.5,2.0,1\n")

    def npz(self) -> Path:
        path = self.tmp_path / "data.npz"
        np.savez(path, x=self.x, y=self.labels)
        return self.file("data.npz", path.read_bytes())

    def model(self) -> Path:
        path = bp.save(self.net, self.tmp_path / "model.safetensors")
        return self.file("model.safetensors", path.read_bytes())

    def assert_unchanged(self) -> None:
        for p, before in zip(self.net.parameters(), self._params, strict=True):
            np.testing.assert_array_equal(p, before)
        for name, before in self._arrays.items():
            np.testing.assert_array_equal(getattr(self, name), before)
        assert self.opt.t == 0 and self.opt.state_dict() == {"optimizer": "SGD", "t": 0}
        assert self.opt.base_lr == 0.1
        assert self.rec.calls == []
        for name, content in self.files.items():
            assert (self.tmp_path / name).read_bytes() == content


def fit(c: Ctx, **change):
    kwargs = {"x": c.x, "y": c.labels, "loss": "cross_entropy", "optimizer": c.opt, "epochs": 1,
              "batch_size": 4, "callbacks": [c.rec], "verbose": False, **change}
    return bp.fit(c.net, kwargs.pop("x"), kwargs.pop("y"), **kwargs)


def evaluate(c: Ctx, **change):
    kwargs = {"x": c.x, "y": c.labels, "loss": "cross_entropy", **change}
    return bp.evaluate(c.net, kwargs.pop("x"), kwargs.pop("y"), kwargs.pop("loss"), **kwargs)


def with_value(array: np.ndarray, value, at=(1, 2)) -> np.ndarray:
    out = array.copy()
    out[at] = value
    return out


def regression_fit(c: Ctx, **change):
    return fit(c, y=c.targets, loss="quadratic", **change)


CASES: list = []


def case(id: str, error: type[BackpropError], pattern: str, call, marks=()):
    CASES.append(pytest.param(call, error, pattern, id=id, marks=marks))


# ------------------------------------------------ bad x at every boundary that takes a batch
BAD_X = [  # id, value, error, message after the argument's name
    ("wrong-width", lambda c: np.ones((3, 5), np.float32), ShapeError,
     r" must have 4 columns \(the network's input width\); got shape \(3, 5\)"),
    ("1d", lambda c: np.ones(4, np.float32), ShapeError, r" must be a 2-D batch of shape \(N, 4\)"),
    ("3d", lambda c: np.ones((2, 3, 4), np.float32), ShapeError, r" must be a 2-D batch"),
    ("empty", lambda c: np.ones((0, 4), np.float32), ShapeError,
     r" must hold at least one sample; got shape \(0, 4\)"),
    ("object-array", lambda c: np.array([[1.0, 2.0, 3.0, None]] * 3, dtype=object), DTypeError,
     r" must hold numbers \(bool, integer or float\); got dtype object"),
    ("strings", lambda c: np.array([["a", "b", "c", "d"]] * 3), DTypeError, r" must hold numbers"),
    ("complex", lambda c: np.ones((3, 4), np.complex64), DTypeError, r" must hold numbers"),
    ("nan", lambda c: with_value(c.x, np.nan), InvalidValueError,
     r" must be finite; it holds 1 NaN and 0 infinite values"),
    ("inf", lambda c: with_value(c.x, -np.inf), InvalidValueError,
     r" must be finite; it holds 0 NaN and 1 infinite values"),
    ("int", lambda c: np.ones((3, 4), np.int64), DTypeError,
     r" has dtype int64 but the network computes in float32"),
    ("bool", lambda c: np.ones((3, 4), bool), DTypeError, r" has dtype bool"),
    ("float64-into-float32", lambda c: c.x.astype(np.float64), DTypeError,
     r" has dtype float64 but the network computes in float32; convert it explicitly"),
    ("dict", lambda c: {"x": 1}, DTypeError, r" must be a NumPy array; got dict"),
    ("none", lambda c: None, DTypeError, r" must be a NumPy array; got NoneType"),
    ("ragged-list", lambda c: [[1.0, 2.0, 3.0, 4.0], [1.0]], ShapeError,
     r" must be a rectangular array; got a ragged list"),
]
X_BOUNDARIES = [  # id, argument name, call with the bad value
    ("forward", "x", lambda c, v: c.net.forward(v, train=True)),
    ("predict", "x", lambda c, v: c.net.predict(v)),
    ("fit", "x", lambda c, v: fit(c, x=v)),
    ("evaluate", "x", lambda c, v: evaluate(c, x=v)),
    ("fit-validation", "validation_data[0]",
     lambda c, v: fit(c, validation_data=(v, c.labels_val))),
    ("gradcheck", "x", lambda c, v: bp.gradcheck(c.net, "cross_entropy", v, c.labels[:3])),
]
for where, name, call in X_BOUNDARIES:
    for what, value, error, tail in BAD_X:
        case(f"{where}-x-{what}", error, re.escape(name) + tail,
             lambda c, call=call, value=value: call(c, value(c)))

# ------------------------------------------------------------------------------- Network
case("predict-batch_size-0", InvalidValueError, r"batch_size must be a positive integer; got 0",
     lambda c: c.net.predict(c.x, batch_size=0))
case("predict-batch_size-negative", InvalidValueError, r"batch_size must be a positive integer",
     lambda c: c.net.predict(c.x, batch_size=-2))
case("predict-batch_size-float", DTypeError, r"batch_size must be a positive integer; got float",
     lambda c: c.net.predict(c.x, batch_size=2.0))
case("predict-batch_size-bool", DTypeError, r"batch_size must be a positive integer; got bool",
     lambda c: c.net.predict(c.x, batch_size=True))
case("forward-train-not-bool", DTypeError, r"train must be True or False; got str",
     lambda c: c.net.forward(c.x, train="yes"))
case("backward-grad-nan", InvalidValueError, r"grad must be finite; it holds 1 NaN",
     lambda c: (c.net.forward(c.x),
                c.net.backward(with_value(np.ones((N, 3), np.float32), np.nan))))
case("backward-grad-wrong-width", ShapeError, r"grad must be dC/da\^L of shape \(N, 3\); got shape",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((N, 4), np.float32))))
case("backward-grad-object", DTypeError, r"grad must hold numbers",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((N, 3), object))))
case("backward-grad-empty", ShapeError, r"grad must hold at least one sample",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((0, 3), np.float32))))
case("backward-grad-float64", DTypeError, r"grad has dtype float64 but the network computes",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((N, 3)))))
case("backward-grad-rows-differ-from-forward", ShapeError,
     r"grad must have one row per sample of the last forward \(12\); got shape \(5, 3\)",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((5, 3), np.float32))))
case("backward-before-forward", BackpropError, r"backward needs .*forward",
     lambda c: c.net.backward(np.ones((N, 3), np.float32)))
case("backward-input_grad-not-bool", DTypeError, r"input_grad must be True or False",
     lambda c: (c.net.forward(c.x), c.net.backward(np.ones((N, 3), np.float32), input_grad="no")))

# ----------------------------------------------------------------------------- losses
LOSS_A = [  # bad network outputs a, for every loss and every entry point
    ("object", lambda c: c.a.astype(object), DTypeError, r"a must hold numbers"),
    ("int", lambda c: np.zeros((4, 3), np.int64), DTypeError,
     r"a must be a floating-point array; got dtype int64"),
    ("nan", lambda c: with_value(c.a, np.nan), InvalidValueError,
     r"a must be finite; it holds 1 NaN"),
    ("inf", lambda c: with_value(c.a, np.inf), InvalidValueError, r"a must be finite"),
    ("1d", lambda c: c.a[:, 0], ShapeError, r"a must be the network's outputs, a 2-D array"),
    ("empty", lambda c: c.a[:0], ShapeError, r"a must hold at least one sample"),
]
for loss_name, method in (("cross_entropy", "value"), ("quadratic", "grad"),
                          ("binary_cross_entropy", "per_sample"), ("huber", "value")):
    for what, a, error, pattern in LOSS_A:
        case(f"{loss_name}-{method}-a-{what}", error, pattern,
             lambda c, ln=loss_name, m=method, a=a: getattr(get_loss(ln), m)(a(c), c.labels[:4]))

LABELS4 = np.array([0, 1, 2, 1])
LOSS_Y = [  # loss, method, id, y, error, pattern
    ("cross_entropy", "value", "label-too-big", np.array([0, 1, 3, 1]), InvalidValueError,
     r"labels in y must lie in \[0, 3\) for 3 outputs; got values from 0 to 3"),
    ("cross_entropy", "grad", "label-negative", np.array([0, -1, 2, 1]), InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("cross_entropy", "value", "labels-float", LABELS4.astype(float), DTypeError,
     r"class labels y must be integers; got dtype float64"),
    ("cross_entropy", "value", "labels-bool", np.array([True, False, True, True]), DTypeError,
     r"class labels y must be integers; got dtype bool"),
    ("cross_entropy", "per_sample", "labels-too-few", LABELS4[:3], ShapeError,
     r"integer labels y must have shape \(4,\), one per sample; got \(3,\)"),
    ("cross_entropy", "value", "one-hot-too-wide", np.eye(4, dtype=np.float32), ShapeError,
     r"y must have the shape of the outputs \(4, 3\); got shape \(4, 4\)"),
    ("cross_entropy", "grad", "rows-not-summing-to-1", np.full((4, 3), 0.5, np.float32),
     InvalidValueError, r"each row of y must sum to 1"),
    ("cross_entropy", "value", "probabilities-negative",
     np.tile(np.array([[1.5, -0.5, 0.0]], np.float32), (4, 1)), InvalidValueError,
     r"one-hot or probability targets y must lie in \[0, 1\]"),
    ("cross_entropy", "value", "strings", np.array(["a", "b", "c", "a"]), DTypeError,
     r"y must hold numbers"),
    ("cross_entropy", "value", "object", np.array([0, 1, None, 2], dtype=object), DTypeError,
     r"y must hold numbers"),
    ("cross_entropy", "value", "none", None, DTypeError, r"y must be a NumPy array"),
    ("quadratic", "value", "nan", with_value(np.zeros((4, 3), np.float32), np.nan),
     InvalidValueError, r"y must be finite; it holds 1 NaN"),
    ("quadratic", "grad", "inf", with_value(np.zeros((4, 3), np.float32), np.inf),
     InvalidValueError, r"y must be finite; it holds 0 NaN and 1 infinite"),
    ("quadratic", "value", "float64-for-float32", np.zeros((4, 3)), DTypeError,
     r"y has dtype float64 but the outputs are float32"),
    ("quadratic", "value", "wrong-shape", np.zeros((4, 2), np.float32), ShapeError,
     r"y must have the shape of the outputs \(4, 3\)"),
    ("quadratic", "value", "ragged", [[0.0, 1.0, 2.0], [1.0]], ShapeError,
     r"y must be a rectangular array"),
    ("binary_cross_entropy", "value", "above-1", np.full((4, 3), 1.5, np.float32),
     InvalidValueError, r"binary targets y must lie in \[0, 1\]"),
    ("binary_cross_entropy", "grad", "label-too-big", np.array([0, 1, 3, 0]), InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("huber", "value", "scalar", np.float32(1.0), ShapeError,
     r"y must have the shape of the outputs \(4, 3\); got shape \(\)"),
]
for loss_name, method, what, y, error, pattern in LOSS_Y:
    case(f"{loss_name}-{method}-y-{what}", error, pattern,
         lambda c, ln=loss_name, m=method, y=y: getattr(get_loss(ln), m)(c.a, y))

# ---------------------------------------------------------------------------- fit
FIT = [  # id, change, error, pattern
    ("y-one-short", lambda c: {"y": c.labels[:-1]}, ShapeError,
     r"y must have one target per sample of x \(12\); got shape \(11,\)"),
    ("y-empty", lambda c: {"y": c.labels[:0]}, ShapeError, r"y must have one target per sample"),
    ("y-scalar", lambda c: {"y": 3}, ShapeError, r"y must have one target per sample of x \(12\)"),
    ("y-none", lambda c: {"y": None}, DTypeError, r"y must be a NumPy array; got NoneType"),
    ("y-label-too-big", lambda c: {"y": with_value(c.labels, 3, at=4)}, InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("y-label-negative", lambda c: {"y": with_value(c.labels, -1, at=4)}, InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("y-labels-float", lambda c: {"y": c.labels.astype(np.float32)}, DTypeError,
     r"class labels y must be integers"),
    ("y-labels-bool", lambda c: {"y": c.labels > 0}, DTypeError,
     r"class labels y must be integers"),
    ("y-strings", lambda c: {"y": c.labels.astype(str)}, DTypeError, r"y must hold numbers"),
    ("y-object", lambda c: {"y": c.labels.astype(object)}, DTypeError, r"y must hold numbers"),
    ("y-one-hot-too-wide", lambda c: {"y": np.eye(4, dtype=np.float32)[c.labels]}, ShapeError,
     r"y must have the shape of the outputs \(12, 3\)"),
    ("y-rows-not-summing-to-1", lambda c: {"y": np.full((N, 3), 0.2, np.float32)},
     InvalidValueError, r"each row of y must sum to 1"),
    ("y-regression-nan", lambda c: {"y": with_value(c.targets, np.nan), "loss": "quadratic"},
     InvalidValueError, r"y must be finite; it holds 1 NaN"),
    ("y-regression-inf", lambda c: {"y": with_value(c.targets, np.inf), "loss": "quadratic"},
     InvalidValueError, r"y must be finite; it holds 0 NaN and 1 infinite"),
    ("y-regression-float64", lambda c: {"y": c.targets.astype(float), "loss": "quadratic"},
     DTypeError, r"y has dtype float64 but the outputs are float32"),
    ("validation_data-not-a-pair", lambda c: {"validation_data": (c.x_val,)}, ConfigError,
     r"validation_data must be a pair \(x_val, y_val\)"),
    ("validation_data-dict", lambda c: {"validation_data": {"x": c.x_val}}, ConfigError,
     r"validation_data must be a pair"),
    ("validation_data-y-short", lambda c: {"validation_data": (c.x_val, c.labels_val[:2])},
     ShapeError, r"validation_data\[1\] must have one target per sample of x \(5\)"),
    ("validation_data-y-none", lambda c: {"validation_data": (c.x_val, None)}, DTypeError,
     r"validation_data\[1\] must be a NumPy array"),
    ("validation_data-label-too-big",
     lambda c: {"validation_data": (c.x_val, with_value(c.labels_val, 7, at=0))},
     InvalidValueError, r"validation_data\[1\]: labels in y must lie in \[0, 3\)"),
    ("validation_data-and-split",
     lambda c: {"validation_data": (c.x_val, c.labels_val), "validation_split": 0.25},
     ConfigError, r"give validation_data or validation_split, not both"),
    ("validation_split-str", lambda c: {"validation_split": "abc"}, DTypeError,
     r"validation_split must be a number in \[0, 1\); got str 'abc'"),
    ("validation_split-none", lambda c: {"validation_split": None}, DTypeError,
     r"validation_split must be a number in \[0, 1\); got NoneType"),
    ("validation_split-bool", lambda c: {"validation_split": True}, DTypeError,
     r"validation_split must be a number in \[0, 1\); got bool"),
    ("validation_split-nan", lambda c: {"validation_split": float("nan")}, InvalidValueError,
     r"validation_split must lie in \[0, 1\); got nan"),
    ("validation_split-1", lambda c: {"validation_split": 1.0}, InvalidValueError,
     r"validation_split must lie in \[0, 1\); got 1.0"),
    ("validation_split-negative", lambda c: {"validation_split": -0.1}, InvalidValueError,
     r"validation_split must lie in \[0, 1\)"),
    ("validation_split-leaves-no-training-data",
     lambda c: {"validation_split": 0.99, "batch_size": 1}, InvalidValueError,
     r"validation_split leaves no training data"),
    ("batch_size-0", lambda c: {"batch_size": 0}, InvalidValueError,
     r"batch_size must be a positive integer; got 0"),
    ("batch_size-negative", lambda c: {"batch_size": -4}, InvalidValueError,
     r"batch_size must be a positive integer; got -4"),
    ("batch_size-float", lambda c: {"batch_size": 4.0}, DTypeError,
     r"batch_size must be a positive integer; got float 4.0"),
    ("batch_size-bool", lambda c: {"batch_size": True}, DTypeError,
     r"batch_size must be a positive integer; got bool"),
    ("batch_size-none", lambda c: {"batch_size": None}, DTypeError,
     r"batch_size must be a positive integer; got NoneType"),
    ("batch_size-larger-than-data", lambda c: {"batch_size": N + 1}, InvalidValueError,
     r"batch_size must be at most the number of training samples \(12\); got 13"),
    ("batch_size-larger-than-data-after-split",
     lambda c: {"batch_size": 7, "validation_split": 0.5}, InvalidValueError,
     r"batch_size must be at most the number of training samples \(6\); got 7"),
    ("epochs-0", lambda c: {"epochs": 0}, InvalidValueError,
     r"epochs must be a positive integer; got 0"),
    ("epochs-float", lambda c: {"epochs": 1.5}, DTypeError, r"epochs must be a positive integer"),
    ("epochs-str", lambda c: {"epochs": "2"}, DTypeError,
     r"epochs must be a positive integer; got str"),
    ("seed-str", lambda c: {"seed": "a"}, DTypeError,
     r"seed must be a non-negative integer or None; got str 'a'"),
    ("seed-negative", lambda c: {"seed": -1}, InvalidValueError,
     r"seed must be a non-negative integer or None; got -1"),
    ("seed-float", lambda c: {"seed": 1.5}, DTypeError, r"seed must be a non-negative integer"),
    ("shuffle-str", lambda c: {"shuffle": "no"}, DTypeError,
     r"shuffle must be True or False; got str"),
    ("verbose-int", lambda c: {"verbose": 2}, DTypeError,
     r"verbose must be True or False; got int"),
    ("record_grad_norms-none", lambda c: {"record_grad_norms": None}, DTypeError,
     r"record_grad_norms must be True or False"),
    ("resume-str", lambda c: {"resume": "yes"}, DTypeError, r"resume must be True or False"),
    ("resume-without-checkpoint_dir", lambda c: {"resume": True}, ConfigError,
     r"resume=True needs checkpoint_dir"),
    ("checkpoint_dir-int", lambda c: {"checkpoint_dir": 3}, DTypeError,
     r"checkpoint_dir must be a str, an os.PathLike or None; got int"),
    ("callbacks-not-a-list", lambda c: {"callbacks": c.rec}, DTypeError,
     r"callbacks must be a list of Callback objects; got Recorder"),
    ("callbacks-item-not-a-callback", lambda c: {"callbacks": [c.rec, print]}, DTypeError,
     r"callbacks\[1\] must be a backprop Callback"),
    ("optimizer-name", lambda c: {"optimizer": "sgd"}, ConfigError,
     r"optimizer must be a backprop Optimizer; got str 'sgd'"),
    ("optimizer-class", lambda c: {"optimizer": bp.SGD}, ConfigError,
     r"optimizer must be a backprop Optimizer; got type"),
    ("loss-unknown", lambda c: {"loss": "mse"}, ConfigError,
     r"loss must be one of \['binary_cross_entropy', 'cross_entropy', 'huber', 'quadratic'\]; "
     r"got str 'mse'"),
    ("loss-none", lambda c: {"loss": None}, ConfigError, r"loss must be one of"),
    # a metric fit will not measure: refused before the first epoch, not after it
    ("early_stopping-val_loss-without-validation",
     lambda c: {"callbacks": [c.rec, bp.EarlyStopping("val_loss")]}, ConfigError,
     r"EarlyStopping monitors 'val_loss', which this fit does not measure \(available: "
     r"\['accuracy', 'loss'\]\)"),
    ("early_stopping-val_accuracy-without-validation",
     lambda c: {"callbacks": [bp.EarlyStopping("val_accuracy"), c.rec]}, ConfigError,
     r"EarlyStopping monitors 'val_accuracy'"),
    ("early_stopping-accuracy-for-regression",
     lambda c: {"callbacks": [c.rec, bp.EarlyStopping("accuracy")], "y": c.targets,
                "loss": "quadratic"}, ConfigError,
     r"EarlyStopping monitors 'accuracy', which this fit does not measure "
     r"\(available: \['loss'\]\)"),
    ("early_stopping-val_accuracy-for-regression-with-split",
     lambda c: {"callbacks": [c.rec, bp.EarlyStopping("val_accuracy")], "y": c.targets,
                "loss": "quadratic", "validation_split": 0.25}, ConfigError,
     r"EarlyStopping monitors 'val_accuracy', which this fit does not measure \(available: "
     r"\['loss', 'val_loss'\]\)"),
]
for what, change, error, pattern in FIT:
    case(f"fit-{what}", error, pattern, lambda c, change=change: fit(c, **change(c)))
case("fit-net-not-a-network", DTypeError, r"net must be a backprop Network; got str 'net'",
     lambda c: bp.fit("net", c.x, c.labels, loss="cross_entropy", verbose=False))

# ---------------------------------------------------------------------------- evaluate
EVALUATE = [
    ("y-one-short", lambda c: {"y": c.labels[:-1]}, ShapeError,
     r"y must have one target per sample of x \(12\)"),
    ("y-label-too-big", lambda c: {"y": with_value(c.labels, 5, at=0)}, InvalidValueError,
     r"labels in y must lie in \[0, 3\)"),
    ("y-labels-float", lambda c: {"y": c.labels.astype(float)}, DTypeError,
     r"class labels y must be integers"),
    ("y-nan-regression", lambda c: {"y": with_value(c.targets, np.nan), "loss": "quadratic"},
     InvalidValueError, r"y must be finite"),
    ("batch_size-0", lambda c: {"batch_size": 0}, InvalidValueError,
     r"batch_size must be a positive integer; got 0"),
    ("batch_size-negative", lambda c: {"batch_size": -3}, InvalidValueError,
     r"batch_size must be a positive integer; got -3"),
    ("batch_size-float", lambda c: {"batch_size": 2.5}, DTypeError,
     r"batch_size must be a positive integer; got float 2.5"),
    ("batch_size-str", lambda c: {"batch_size": "8"}, DTypeError,
     r"batch_size must be a positive integer; got str"),
    ("loss-unknown", lambda c: {"loss": "hinge"}, ConfigError, r"loss must be one of"),
]
for what, change, error, pattern in EVALUATE:
    case(f"evaluate-{what}", error, pattern, lambda c, change=change: evaluate(c, **change(c)))
case("evaluate-net-not-a-network", DTypeError, r"net must be a backprop Network; got NoneType",
     lambda c: bp.evaluate(None, c.x, c.labels, "cross_entropy"))


# -------------------------------------------------------------------------- optimizers
def step(c: Ctx, params=None, grads=None):
    c.net.forward(c.x)
    c.net.backward(np.ones((N, 3), np.float32) / N)
    params = c.net.parameters() if params is None else params
    grads = c.net.gradients() if grads is None else grads
    c.opt.step(params, grads)


def read_only_params(c: Ctx):
    params = [p.copy() for p in c.net.parameters()]
    params[0].flags.writeable = False
    return params


OPTIMIZER = [  # id, call, error, pattern
    ("sgd-lr-0", lambda c: bp.SGD(lr=0), InvalidValueError, r"lr must be > 0; got 0"),
    ("sgd-lr-negative", lambda c: bp.SGD(lr=-0.1), InvalidValueError,
     r"lr must be a finite number >= 0; got -0.1"),
    ("sgd-lr-nan", lambda c: bp.SGD(lr=float("nan")), InvalidValueError,
     r"lr must be a finite number >= 0; got nan"),
    ("sgd-lr-inf", lambda c: bp.SGD(lr=float("inf")), InvalidValueError,
     r"lr must be a finite number"),
    ("sgd-lr-str", lambda c: bp.SGD(lr="0.1"), DTypeError, r"lr must be a number; got str '0.1'"),
    ("sgd-lr-none", lambda c: bp.SGD(lr=None), DTypeError, r"lr must be a number; got NoneType"),
    ("sgd-momentum-1", lambda c: bp.SGD(lr=0.1, momentum=1.0), InvalidValueError,
     r"momentum must be in \[0, 1\); got 1.0"),
    ("sgd-momentum-negative", lambda c: bp.SGD(lr=0.1, momentum=-0.5), InvalidValueError,
     r"momentum must be a finite number >= 0"),
    ("sgd-nesterov-without-momentum", lambda c: bp.SGD(lr=0.1, nesterov=True), ConfigError,
     r"nesterov=True needs momentum > 0"),
    ("sgd-nesterov-int", lambda c: bp.SGD(lr=0.1, momentum=0.5, nesterov=1), DTypeError,
     r"nesterov must be True or False; got int"),
    ("sgd-weight_decay-negative", lambda c: bp.SGD(lr=0.1, weight_decay=-1e-4), InvalidValueError,
     r"weight_decay must be a finite number >= 0"),
    ("sgd-clip_norm-0", lambda c: bp.SGD(lr=0.1, clip_norm=0.0), InvalidValueError,
     r"clip_norm must be > 0"),
    ("sgd-max_norm-inf", lambda c: bp.SGD(lr=0.1, max_norm=float("inf")), InvalidValueError,
     r"max_norm must be a finite number"),
    ("sgd-schedule-not-callable", lambda c: bp.SGD(lr=0.1, schedule="cosine"), DTypeError,
     r"schedule must be a Schedule \(a callable"),
    ("adam-beta1-1", lambda c: bp.Adam(beta1=1.0), InvalidValueError, r"beta1 must be in \[0, 1\)"),
    ("adam-beta2-nan", lambda c: bp.Adam(beta2=float("nan")), InvalidValueError,
     r"beta2 must be a finite number"),
    ("adam-eps-0", lambda c: bp.Adam(eps=0.0), InvalidValueError, r"eps must be > 0"),
    ("adamw-weight_decay-str", lambda c: bp.AdamW(weight_decay="0.01"), DTypeError,
     r"weight_decay must be a number"),
    ("rmsprop-rho-negative", lambda c: bp.RMSprop(rho=-0.9), InvalidValueError,
     r"rho must be a finite number >= 0"),
    ("lr-setter-negative", lambda c: setattr(c.opt, "lr", -1.0), InvalidValueError,
     r"lr must be a finite number >= 0; got -1.0"),
    ("unknown-name", lambda c: builders.build_optimizer("adagrad", lr=0.1), ConfigError,
     r"optimizer must be one of \['adam', 'adamw', 'rmsprop', 'sgd'\]; got 'adagrad'"),
    ("step-params-an-array", lambda c: c.opt.step(c.x, c.x), DTypeError,
     r"params must be a list of arrays \(e.g. net.parameters\(\) and net.gradients\(\)\); "
     r"got an array"),
    ("step-params-none", lambda c: c.opt.step(None, None), DTypeError,
     r"params must be a list of arrays"),
    ("step-grads-a-generator", lambda c: step(c, grads=(g for g in c.net.gradients())),
     DTypeError, r"grads must be a list of arrays .*; got generator"),
    ("step-grads-one-short", lambda c: step(c, grads=c.net.gradients()[:-1]), ShapeError,
     r"grads must hold one array per parameter: params has 4 arrays, grads has 3"),
    ("step-grads-wrong-shape", lambda c: step(c, grads=[g.T for g in c.net.gradients()]),
     ShapeError, r"grads\[0\] must have the shape of params\[0\], \(5, 4\); got \(4, 5\)"),
    ("step-grads-int", lambda c: step(c, grads=[g.astype(int) for g in c.net.gradients()]),
     DTypeError, r"grads\[0\] must be a float32 or float64 array; got dtype int64"),
    ("step-grads-float64-for-float32-params",
     lambda c: step(c, grads=[g.astype(np.float64) for g in c.net.gradients()]), DTypeError,
     r"grads\[0\] must have the dtype of params\[0\], float32; got float64"),
    ("step-grads-lists", lambda c: step(c, grads=[g.tolist() for g in c.net.gradients()]),
     DTypeError, r"grads\[0\] must be an array; got list"),
    ("step-params-read-only", lambda c: step(c, params=read_only_params(c)), InvalidValueError,
     r"params\[0\] must be writable"),
    ("load_state_dict-other-optimizer",
     lambda c: c.opt.load_state_dict({"optimizer": "Adam", "t": 0}), ConfigError,
     r"state\['optimizer'\] must be 'SGD' \(this optimizer's class\); got 'Adam'"),
    ("load_state_dict-t-negative",
     lambda c: c.opt.load_state_dict({"optimizer": "SGD", "t": -1}), InvalidValueError,
     r"state\['t'\] must be a non-negative integer; got -1"),
    ("load_state_dict-not-a-dict", lambda c: c.opt.load_state_dict([1, 2]), DTypeError,
     r"state must be a dict"),
]
for what, call, error, pattern in OPTIMIZER:
    case(f"optimizer-{what}", error, pattern, call)

# ---------------------------------------------------- layers, networks and unknown names
CONSTRUCTION = [
    ("leaky_relu-slope-inf", lambda c: bp.LeakyReLU(float("inf")), InvalidValueError,
     r"slope must be a finite number; got inf"),
    ("leaky_relu-slope-nan", lambda c: bp.LeakyReLU(float("nan")), InvalidValueError,
     r"slope must be a finite number; got nan"),
    ("leaky_relu-slope-str", lambda c: bp.LeakyReLU("0.1"), DTypeError,
     r"slope must be a number; got str '0.1'"),
    ("leaky_relu-slope-none", lambda c: bp.LeakyReLU(None), DTypeError,
     r"slope must be a number; got NoneType"),
    ("leaky_relu-slope-bool", lambda c: bp.LeakyReLU(True), DTypeError, r"slope must be a number"),
    ("elu-alpha-inf", lambda c: bp.ELU(alpha=float("inf")), InvalidValueError,
     r"alpha must be a finite number; got inf"),
    ("elu-alpha-nan", lambda c: bp.ELU(alpha=float("-nan")), InvalidValueError,
     r"alpha must be a finite number"),
    ("elu-alpha-str", lambda c: bp.ELU(alpha="1"), DTypeError, r"alpha must be a number; got str"),
    ("dropout-rate-1", lambda c: bp.Dropout(1.0), ConfigError,
     r"rate must be a number in \[0, 1\)"),
    ("dropout-rate-nan", lambda c: bp.Dropout(float("nan")), ConfigError,
     r"rate must be a number in \[0, 1\); got nan"),
    ("dropout-rate-str", lambda c: bp.Dropout("0.5"), ConfigError, r"rate must be a number"),
    ("dropout-rate-bool", lambda c: bp.Dropout(False), ConfigError, r"rate must be a number"),
    ("dense-d_in-0", lambda c: bp.Dense(0, 3), InvalidValueError,
     r"d_in must be a positive integer; got 0"),
    ("dense-d_out-float", lambda c: bp.Dense(2, 3.0), DTypeError,
     r"d_out must be a positive integer; got float 3.0"),
    ("dense-d_in-bool", lambda c: bp.Dense(True, 3), DTypeError,
     r"d_in must be a positive integer"),
    ("dense-init-unknown", lambda c: bp.Dense(2, 3, init="xavier"), ConfigError,
     r"init must be one of \[.*'he_uniform'.*\]; got 'xavier'"),
    ("dense-init-none", lambda c: bp.Dense(2, 3, init=None), ConfigError,
     r"init must be one of .*; got None"),
    ("network-no-layers", lambda c: bp.Network([]), ConfigError,
     r"layers must be a non-empty list of layers"),
    ("network-layer-name", lambda c: bp.Network([bp.Dense(2, 2), "relu"]), ConfigError,
     r"layers\[1\] must be a backprop Layer; got str 'relu'"),
    ("network-widths-do-not-chain", lambda c: bp.Network([bp.Dense(2, 4), bp.Dense(3, 1)]),
     ShapeError, r"Dense\(3, 1\) takes inputs of width 3; the layer before it outputs width 4"),
    ("network-dtype-unknown", lambda c: bp.Network([bp.Dense(2, 2)], dtype="float16"), ConfigError,
     r"dtype must be 'float32' or 'float64'; got 'float16'"),
    ("network-seed-negative", lambda c: bp.Network([bp.Dense(2, 2)], seed=-1), ConfigError,
     r"seed must be a non-negative integer or None"),
    ("from_config-unknown-kind", lambda c: bp.Network.from_config([{"kind": "Conv2D"}]),
     ConfigError, r"config\[0\] names an unknown layer kind 'Conv2D'; known kinds: \["),
    ("from_config-elu-alpha-inf",
     lambda c: bp.Network.from_config([{"kind": "Dense", "d_in": 2, "d_out": 2},
                                       {"kind": "ELU", "alpha": float("inf")}]),
     InvalidValueError, r"alpha must be a finite number; got inf"),
    ("activation-unknown", lambda c: activation("swish"), ConfigError,
     r"activation must be one of \[.*'relu'.*\]; got 'swish'"),
    ("activation-bad-setting", lambda c: activation("relu", slope=0.2), ConfigError,
     r"activation 'relu': .*slope"),
    ("build_network-activation-unknown",
     lambda c: builders.build_network([4, 3], activation_name="swish"), ConfigError,
     r"activation must be one of"),
    ("build_network-output_activation-unknown",
     lambda c: builders.build_network([4, 3], output_activation="softmax2"), ConfigError,
     r"output_activation must be 'none' or one of"),
    ("build_network-init-unknown", lambda c: builders.build_network([4, 3], init="lecun"),
     ConfigError, r"init must be one of"),
    ("build_network-width-0", lambda c: builders.build_network([4, 0, 3]), InvalidValueError,
     r"layers\[1\] must be a positive integer; got 0"),
    ("build_schedule-unknown",
     lambda c: builders.build_schedule("linear", total_steps=10, steps_per_epoch=2), ConfigError,
     r"schedule must be one of \['constant', 'step', 'exponential', 'cosine'\]; got 'linear'"),
    ("loss-unknown", lambda c: get_loss("mse"), ConfigError, r"loss must be one of"),
    ("loss-class-not-instance", lambda c: get_loss(bp.Quadratic), ConfigError,
     r"loss must be one of .*; got type"),
    ("huber-delta-0", lambda c: bp.Huber(0), ConfigError, r"delta must be a number > 0; got 0"),
    ("huber-delta-nan", lambda c: bp.Huber(float("nan")), ConfigError,
     r"delta must be a number > 0; got nan"),
    ("early_stopping-monitor-unknown", lambda c: bp.EarlyStopping(monitor="val_acc"), ConfigError,
     r"monitor must be one of val_loss, val_accuracy, loss, accuracy; got 'val_acc'"),
    ("early_stopping-patience-0", lambda c: bp.EarlyStopping(patience=0), InvalidValueError,
     r"patience must be a positive integer; got 0"),
    ("early_stopping-min_delta-negative", lambda c: bp.EarlyStopping(min_delta=-0.1),
     InvalidValueError, r"min_delta must be a finite number >= 0; got -0.1"),
    ("early_stopping-min_delta-str", lambda c: bp.EarlyStopping(min_delta="0.1"), DTypeError,
     r"min_delta must be a number; got str"),
    ("early_stopping-restore_best-str", lambda c: bp.EarlyStopping(restore_best="yes"),
     DTypeError, r"restore_best must be True or False; got str"),
]
for what, call, error, pattern, *marks in CONSTRUCTION:
    case(what, error, pattern, call, marks=marks[0] if marks else ())

# -------------------------------------------------------------- loaders: their arguments
LOADERS = [
    ("read_idx-path-none", lambda c: datasets.read_idx(None), DTypeError,
     r"path must be a str or os.PathLike; got NoneType"),
    ("read_idx-max_bytes-0", lambda c: datasets.read_idx(c.csv(), max_bytes=0), InvalidValueError,
     r"max_bytes must be a positive integer; got 0"),
    ("load_csv-header-word", lambda c: datasets.load_csv(c.csv(), header="yes"), ConfigError,
     r"header must be 'auto', True or False; got 'yes'"),
    ("load_csv-delimiter-empty", lambda c: datasets.load_csv(c.csv(), delimiter=""), ConfigError,
     r"delimiter must be a single character; got ''"),
    ("load_csv-dtype-int", lambda c: datasets.load_csv(c.csv(), dtype="int32"), DTypeError,
     r"dtype must be a float dtype such as 'float32' or 'float64'; got int32"),
    ("load_csv-dtype-unknown", lambda c: datasets.load_csv(c.csv(), dtype=object()), DTypeError,
     r"dtype must be a NumPy dtype"),
    ("load_csv-label_column-out-of-range", lambda c: datasets.load_csv(c.csv(), label_column=5),
     ConfigError, r"label_column=5 is out of range for the 3 columns"),
    ("load_csv-label_column-float", lambda c: datasets.load_csv(c.csv(), label_column=1.0),
     DTypeError, r"label_column must be a column index or a header name; got float"),
    ("load_csv-label_column-unknown-name", lambda c: datasets.load_csv(c.csv(), label_column="y"),
     ConfigError, r"label_column='y' is not in the header"),
    ("load_npz-x_key-none", lambda c: datasets.load_npz(c.npz(), x_key=None), DTypeError,
     r"x_key must be a str naming an array of the archive; got NoneType"),
    ("load_npz-y_key-missing", lambda c: datasets.load_npz(c.npz(), y_key="labels"),
     FileFormatError,
     r".*data.npz: no array named 'labels' \(y_key\); the file holds \['x', 'y'\]"),
    ("load_npz-max_bytes-0", lambda c: datasets.load_npz(c.npz(), max_bytes=0), InvalidValueError,
     r"max_bytes must be a positive integer; got 0"),
    ("load_npz-max_bytes-too-small", lambda c: datasets.load_npz(c.npz(), max_bytes=100),
     FileFormatError, r".*data.npz: array 'x': its header claims shape \(12, 4\) of float32 "
                      r"\(192 bytes\), more than max_bytes=100"),
    ("load_mnist-dtype-uint8-normalized", lambda c: datasets.load_mnist(dtype="uint8"), DTypeError,
     r"dtype must be a float dtype when normalize=True"),
    ("load_fashion_mnist-data_dir-int",
     lambda c: datasets.load_fashion_mnist(data_dir=3, download=False), DTypeError,
     r"data_dir must be a str or os.PathLike; got int"),
    ("load-path-none", lambda c: bp.load(None), DTypeError,
     r"path must be a str or os.PathLike; got NoneType"),
    ("read_metadata-path-int", lambda c: io.read_metadata(3), DTypeError,
     r"path must be a str or os.PathLike; got int"),
    ("load-a-csv-file", lambda c: bp.load(c.csv()), FileFormatError,
     r".*data.csv is not a safetensors model file"),
    ("save-metadata-not-json", lambda c: bp.save(c.net, c.tmp_path / "m.safetensors",
                                                 metadata={"a": object()}), ConfigError,
     r"metadata must be JSON-serialisable"),
    ("checkpoint-load-path-none", lambda c: checkpoint.load(None), DTypeError,
     r"path must be a str or os.PathLike; got NoneType"),
    ("checkpoint-load-a-model-file", lambda c: checkpoint.load(c.model()), FileFormatError,
     r".*model.safetensors: not a backprop checkpoint \(format 'backprop.network'"),
    ("checkpoint-load_latest-directory-float", lambda c: checkpoint.load_latest(3.5), DTypeError,
     r"directory must be a str or os.PathLike; got float"),
]
for what, call, error, pattern in LOADERS:
    case(what, error, pattern, call)


@pytest.mark.parametrize(("call", "error", "pattern"), CASES)
def test_bad_input_is_refused_naming_the_argument_and_nothing_changes(tmp_path, call, error,
                                                                       pattern):
    ctx = Ctx(tmp_path)
    with pytest.raises(error, match=pattern) as info:
        call(ctx)
    assert isinstance(info.value, BackpropError)
    ctx.assert_unchanged()


def test_the_case_ids_are_unique():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) > 300


def test_a_refused_resume_changes_no_weight(tmp_path):
    """A checkpoint whose optimizer state does not fit the optimizer is refused before any
    weight is copied into the network."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 4)).astype(np.float32), np.arange(8) % 3

    def run(net, **kwargs):
        return bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.SGD(lr=0.1, momentum=0.9),
                      epochs=2, batch_size=4, verbose=False, checkpoint_dir=tmp_path, **kwargs)

    run(bp.Network([bp.Dense(4, 3)], seed=0))
    for path in tmp_path.glob("checkpoint-*.safetensors"):  # drop the momentum buffers
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys() if k == "params"}  # drop the optimizer state
        meta["sha256"] = checkpoint._digest(tensors)  # a consistent file, with a bad state
        save_file(tensors, str(path), metadata=meta)
    net = bp.Network([bp.Dense(4, 3)], seed=0)
    start = [p.copy() for p in net.parameters()]
    with pytest.raises(ConfigError, match=r"state lacks the keys \['velocity'\] although t = 4"):
        run(net, resume=True)
    for p, before in zip(net.parameters(), start, strict=True):
        np.testing.assert_array_equal(p, before)


# ------------------------------------------------------------------------------ threads
def thread_net() -> bp.Network:
    return bp.Network([bp.Dense(16, 32), bp.Tanh(), bp.Dropout(0.3), bp.Dense(32, 32),
                       bp.LeakyReLU(0.1), bp.Dense(32, 32), bp.ELU(0.7), bp.Dense(32, 32),
                       bp.GELU(), bp.Dense(32, 10), bp.Softmax()], seed=3)


def test_predict_from_eight_threads_with_a_training_forward_alongside_is_bitwise_exact():
    """``predict`` keeps no state: 8 threads calling it on one network, on different inputs and
    batch sizes, while a ninth thread runs training forward/backward passes (dropout on) on
    the same network, get bitwise the single-threaded results."""
    net = thread_net()
    rng = np.random.default_rng(0)
    inputs = [rng.normal(scale=2.0, size=(int(rng.integers(1, 40)), 16)).astype(np.float32)
              for _ in range(64)]
    chunks = [None, 1, 7]  # predict's own batch_size: whole, row by row, uneven chunks
    reference = {(i, b): net.predict(x, batch_size=b) for i, x in enumerate(inputs) for b in chunks}
    weights = [p.copy() for p in net.parameters()]
    train_x = rng.normal(size=(32, 16)).astype(np.float32)
    train_grad = np.full((32, 10), 1.0 / 32, np.float32)

    n_threads, rounds = 8, 6
    start = threading.Barrier(n_threads + 1)
    done = threading.Event()
    mismatches: list[str] = []
    errors: list[BaseException] = []
    trained = [0]

    def predictor(t: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                for i in range(t, len(inputs), 2):  # overlapping subsets, different orders
                    j = i if r % 2 == 0 else len(inputs) - 1 - i
                    b = chunks[(t + r + j) % len(chunks)]
                    out = net.predict(inputs[j], batch_size=b)
                    ref = reference[(j, b)]
                    if out.dtype != ref.dtype or out.shape != ref.shape or \
                            out.tobytes() != ref.tobytes():
                        mismatches.append(f"thread {t}, round {r}, input {j}, batch_size {b}")
        except BaseException as err:  # reported below
            errors.append(err)

    def trainer() -> None:
        try:
            start.wait()
            while not done.is_set():
                net.forward(train_x, train=True)
                net.backward(train_grad)
                trained[0] += 1
        except BaseException as err:
            errors.append(err)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: interleave as much as possible
    try:
        threads = [threading.Thread(target=predictor, args=(t,)) for t in range(n_threads)]
        training = threading.Thread(target=trainer)
        for thread in [*threads, training]:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        done.set()
        training.join(timeout=120)
    finally:
        sys.setswitchinterval(old_interval)
    assert errors == []
    assert mismatches == []
    assert trained[0] > 0  # the training thread really ran alongside
    for p, w in zip(net.parameters(), weights, strict=True):  # forward/backward change no weight
        np.testing.assert_array_equal(p, w)
