"""One page's playground: its data, its network, its optimizer and the library's training step.

A :class:`Session` holds everything a page shows, in float64, and changes only through its
methods (one message of the page at a time; it is not thread-safe). Training runs the
library's own :class:`~backprop.training.TrainingStep` (forward → loss → backward → update) on
mini-batches drawn in a seeded order, so :meth:`Session.reset` replays the same run. What the
backward pass shows for one sample (δ, the chain rule, a gradient check) is in
:mod:`backprop.playground.passes`; what the page draws in :mod:`backprop.playground.frames`.

Layers are numbered as in the notes: ``l = 1 .. L`` for the Dense layers (``wˡⱼₖ`` connects
neuron k of layer l−1 to neuron j of layer l; layer 0 is the input features).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import activations as A
from ..engines import Diverged
from ..layers import Dense, Layer
from ..losses import CrossEntropy, Loss, Quadratic
from ..network import Network
from ..optim import SGD, Adam, Optimizer
from ..training import TrainingStep
from . import data2d
from .protocol import DATA_KEYS, DEFAULT_CONFIG, NETWORK_KEYS, ProtocolError, check_config

_ACTIVATIONS: dict[str, type[A.Activation]] = {"tanh": A.Tanh, "relu": A.ReLU, "sigmoid": A.Sigmoid,
                                               "linear": A.Identity}
#: history points kept (older ones are thinned out to every other one)
MAX_HISTORY = 1000


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the step was not applied and training stopped."""


class Session:
    """The state of one page.

    Args:
        config: settings over :data:`~backprop.playground.protocol.DEFAULT_CONFIG` (checked).

    Attributes:
        config: the current settings.
        data: the :class:`~backprop.playground.data2d.Dataset`.
        net: the float64 :class:`~backprop.Network` being trained.
        loss: its loss; ``optimizer``: its optimizer.
        dense: indices in ``net.layers`` of the Dense layers, ``dense[l-1]`` for layer l.
        steps: updates applied since the last reset; ``epoch``: passes over the training set.
        selected: ``("train" | "test", index)`` of the sample the learner clicked, or None.
        last_batch: indices into the training set of the last mini-batch trained on.
        history: one dict per recorded point (step, epoch, losses, ‖δˡ‖).
        playing: whether the page asked to train continuously.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = check_config(config or {}, DEFAULT_CONFIG)
        self.custom: tuple[np.ndarray, np.ndarray, int] | None = None  # a learner's CSV: x, y, classes
        self.playing = False
        self.selected: tuple[str, int] | None = None
        self.history_version = 0
        self._build_data()

    # ------------------------------------------------------------ building
    def update_config(self, update: Any) -> None:
        """Apply a partial config (checked; nothing changes when it is refused): new data and a
        new network where their settings changed, else the optimizer's settings only."""
        new = check_config(update, self.config)
        if new["dataset"] == "csv" and self.custom is None:
            raise ProtocolError("config.dataset", "config.dataset csv needs a CSV upload first (message csv)")
        classes = self.custom[2] if new["dataset"] == "csv" and self.custom else new["classes"]
        if classes == 0 and new["loss"] != "quadratic":
            raise ProtocolError("config.loss", "config.loss must be quadratic for regression data; got "
                                f"{new['loss']}")
        changed = {k for k in new if new[k] != self.config[k]}
        self.config = new
        if changed & DATA_KEYS:
            self._build_data()
        elif changed & NETWORK_KEYS:
            self.reset()
        elif changed & {"optimizer", "momentum"}:
            self.optimizer = self._build_optimizer()
        else:
            self.optimizer.lr = new["learning_rate"]
            self.optimizer.weight_decay = new["l2"]

    def load_csv(self, text: str) -> None:
        """Use a learner's CSV (see :func:`~backprop.playground.data2d.parse_csv`) as the data."""
        x, y, k = data2d.parse_csv(text)
        if k == 0 and self.config["loss"] != "quadratic":
            raise ProtocolError("text", "this CSV holds regression targets; set loss to quadratic first")
        self.custom = (x, y, k)
        self.config = {**self.config, "dataset": "csv"}
        self._build_data()

    def regenerate(self) -> None:
        """New data from the next data seed (same settings)."""
        self.config = {**self.config, "data_seed": (self.config["data_seed"] + 1) % 2**31}
        self._build_data()

    def _build_data(self) -> None:
        c = self.config
        if c["dataset"] == "csv" and self.custom is not None:
            x, y, k = self.custom
            self.data = data2d.split(x, y, k, c["train_share"], np.random.default_rng(c["data_seed"]))
        else:
            self.data = data2d.generate(c["dataset"], n=c["points"], noise=c["noise"],
                                        train_share=c["train_share"], classes=c["classes"], seed=c["data_seed"])
        self.selected = None
        self.reset()

    def output_width(self) -> int:
        """1 for regression and for two classes under the quadratic cost (a sigmoid's
        probability of class 1), else one logit or sigmoid per class."""
        k = self.data.classes
        return 1 if k == 0 or (k == 2 and self.config["loss"] == "quadratic") else k

    def _build_network(self) -> Network:
        c = self.config
        layers: list[Layer] = []
        width = len(c["features"])
        for h, name in zip(c["hidden"], c["activations"], strict=True):
            layers += [Dense(width, h), _ACTIVATIONS[name]()]
            width = h
        layers.append(Dense(width, self.output_width()))
        if not self.data.regression and c["loss"] == "quadratic":
            layers.append(A.Sigmoid())   # the notes' C = ½‖σ(zᴸ) − y‖²
        return Network(layers, seed=c["seed"], dtype="float64")

    def _build_optimizer(self) -> Optimizer:
        c = self.config
        if c["optimizer"] == "adam":
            return Adam(lr=c["learning_rate"], weight_decay=c["l2"])
        momentum = c["momentum"] if c["optimizer"] == "momentum" else 0.0
        return SGD(lr=c["learning_rate"], momentum=momentum, weight_decay=c["l2"])

    def reset(self) -> None:
        """A fresh network, optimizer and batch order from the seed: the same run again."""
        c = self.config
        self.net = self._build_network()
        self.loss: Loss = CrossEntropy() if c["loss"] == "cross_entropy" else Quadratic()
        self.dense = [i for i, layer in enumerate(self.net.layers) if isinstance(layer, Dense)]
        self.optimizer = self._build_optimizer()
        self.x_train = data2d.features(self.data.x_train, c["features"])
        self.x_test = data2d.features(self.data.x_test, c["features"])
        self.t_train = self.targets(self.data.y_train)
        self.t_test = self.targets(self.data.y_test)
        self._step = TrainingStep(self.net, self.loss, self.optimizer, fused=False, grad_hook=None)
        self._probe: Network | None = None
        self._order_rng = np.random.default_rng(c["seed"])
        self._order = self._order_rng.permutation(self.x_train.shape[0])
        self._position = 0
        self.steps, self.epoch = 0, 0
        self.last_batch = np.zeros(0, np.intp)
        self.history: list[dict[str, Any]] = []
        self.history_version += 1
        self.playing = False

    def probe(self) -> Network:
        """A second network holding a copy of the current parameters, for the readouts: its
        forward and backward never touch what the training step keeps (its δ, its gradients)."""
        if self._probe is None:
            self._probe = Network.from_config(self.net.config(), seed=self.config["seed"], dtype="float64")
        self._probe.parameter_buffer[...] = self.net.parameter_buffer
        return self._probe

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Training targets ``(n, d_L)`` float64 for labels or values ``y`` ``(n,)``: the
        value, the 0/1 label, or one-hot rows."""
        k = self.output_width()
        if k == 1:
            return np.asarray(y, dtype=np.float64).reshape(-1, 1)
        t = self.loss.prepare(y, (y.shape[0], k), np.dtype(np.float64))
        return self.loss.training_targets(t, k, np.dtype(np.float64))

    # ------------------------------------------------------------ training
    @property
    def optimizer(self) -> Optimizer:
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value: Optimizer) -> None:
        self._optimizer = value
        if hasattr(self, "_step"):
            self._step.optimizer = value

    def finished(self) -> bool:
        """Whether the fixed number of epochs (``config["epochs"]`` > 0) has been trained."""
        return 0 < self.config["epochs"] <= self.epoch

    def next_batch(self) -> np.ndarray:
        """The indices of the next mini-batch in the seeded order; a new order each epoch."""
        n, size = self.x_train.shape[0], self.config["batch_size"]
        idx = self._order[self._position:self._position + size]
        self._position += idx.shape[0]
        if self._position >= n:
            self._order = self._order_rng.permutation(n)
            self._position = 0
            self.epoch += 1
        return idx

    def train_on(self, idx: np.ndarray) -> float:
        """One update from the training points ``idx`` through the library's training step;
        returns the batch's loss before the update.

        Raises:
            TrainingDiverged: the batch's loss is NaN or infinite (nothing is updated).
        """
        xb, tb = self.x_train[idx], self.t_train[idx]
        try:
            self._step(self.steps + 1, xb, tb, np.empty_like(tb))
        except Diverged as err:
            self.playing = False
            raise TrainingDiverged(f"training diverged: {err.what} at step {self.steps + 1} (that update was not "
                                   "applied); lower the learning rate and reset") from None
        self.steps += 1
        self.last_batch = idx
        return float(self._step.last_value)  # type: ignore[arg-type]  # a float on NumPy

    def train(self, steps: int) -> int:
        """Up to ``steps`` mini-batch updates (fewer when the fixed epochs end); the count done."""
        done = 0
        while done < steps and not self.finished():
            self.train_on(self.next_batch())
            done += 1
        return done

    def train_for(self, seconds: float, max_steps: int = 100000) -> int:
        """Train for about ``seconds`` of this thread's time; the number of steps done."""
        start, done = time.perf_counter(), 0
        while done < max_steps and not self.finished():
            done += self.train(8)
            if time.perf_counter() - start >= seconds:
                break
        return done

    # ------------------------------------------------------------ readouts
    def sample(self, which: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The features ``(1, d_0)`` and target ``(1, d_L)`` of sample ``index`` of ``which``
        (``"train"`` or ``"test"``)."""
        x, t = (self.x_train, self.t_train) if which == "train" else (self.x_test, self.t_test)
        if not 0 <= index < x.shape[0]:
            raise ProtocolError("sample.index", f"sample.index must be below {x.shape[0]}, the number of "
                                f"{which} points; got {index}")
        return x[index:index + 1], t[index:index + 1]

    def select(self, sample: dict[str, Any] | None) -> None:
        """Select the sample ``{"set", "index"}`` whose backward pass the page shows, or none."""
        if sample is None:
            self.selected = None
            return
        self.sample(sample["set"], sample["index"])  # checks the index
        self.selected = (sample["set"], sample["index"])

    def metrics(self) -> dict[str, float | None]:
        """Train and test loss (the mean cost) and, for classes, accuracy."""
        out: dict[str, float | None] = {}
        for part, x, t, y in (("train", self.x_train, self.t_train, self.data.y_train),
                              ("test", self.x_test, self.t_test, self.data.y_test)):
            a = self.net.predict(x)
            out[f"{part}_loss"] = float(self.loss.value_unchecked(a, t))
            out[f"{part}_accuracy"] = None if self.data.regression else float(np.mean(self.predicted_class(a) == y))
        return out

    def predicted_class(self, a: np.ndarray) -> np.ndarray:
        """Class per row of outputs ``a`` ``(n, d_L)``: σ > ½ for one output, else arg-max."""
        return (a[:, 0] > 0.5).astype(np.int64) if a.shape[1] == 1 else np.argmax(a, axis=1)

    def delta_norms(self) -> list[float]:
        """``‖δˡ‖`` per layer l = 1..L for the last step: the root mean square over its samples
        of the per-sample ``‖δˡ_x‖`` (a layer's Δ holds ``δ_x / m`` in each row)."""
        norms = []
        for i in self.dense:
            delta = getattr(self.net.layers[i], "last_delta", None)
            m = delta.shape[0] if delta is not None else 0
            norms.append(float(np.sqrt(m) * np.linalg.norm(delta)) if delta is not None and m else 0.0)
        return norms

    def record(self) -> dict[str, Any]:
        """Append the current losses and ‖δˡ‖ to :attr:`history` and return the point."""
        point = {"step": self.steps, "epoch": self.epoch, **self.metrics(), "delta_norms": self.delta_norms()}
        if self.history and self.history[-1]["step"] == self.steps:
            self.history[-1] = point
        else:
            self.history.append(point)
        if len(self.history) > MAX_HISTORY:
            self.history = self.history[::2]
            self.history_version += 1
        return point

    def set_param(self, layer: int, param: str, row: int, col: int, value: float) -> None:
        """Set ``wˡ[row, col]`` (or ``bˡ[row]``) to ``value``: the learner's edit."""
        array = self.parameter(layer, param)
        self.check_entry(array, param, row, col)
        array[(row, col) if param == "W" else (row,)] = value

    def parameter(self, layer: int, param: str) -> np.ndarray:
        """The array ``Wˡ`` or ``bˡ`` of layer l (1..L)."""
        if not 1 <= layer <= len(self.dense):
            raise ProtocolError("layer", f"layer must be from 1 to {len(self.dense)}; got {layer}")
        return self.net.layers[self.dense[layer - 1]].params[param]

    @staticmethod
    def check_entry(array: np.ndarray, param: str, row: int, col: int) -> None:
        """Refuse ``row`` (and for ``W`` ``col``) outside ``array``, naming which."""
        if row >= array.shape[0]:
            raise ProtocolError("row", f"row must be below {array.shape[0]}; got {row}")
        if param == "W" and col >= array.shape[1]:
            raise ProtocolError("col", f"col must be below {array.shape[1]}; got {col}")
