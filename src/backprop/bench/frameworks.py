"""The three frameworks under test, each behind one runner: backprop, PyTorch, scikit-learn.

A runner is built once per configuration (``*_runner(config, data, seed, epochs)``) and then
called once per timed run with a sample count ``n``; it builds a fresh model from the same
initial weights (backprop's, copied bit for bit), times the training epochs (or one
``predict`` pass over ``n`` test images) and returns ``{"seconds": ..., "accuracy": ...}``.

PyTorch and scikit-learn are optional: they are imported inside the functions that use them,
and :func:`peer_status` says why one does not run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .configs import Config, Data

if TYPE_CHECKING:
    from ..network import Network

#: the frameworks, in the order they run within a repeat
FRAMEWORKS = ("backprop", "torch", "sklearn")
NOT_INSTALLED = "not installed"
CANNOT_EXPRESS = "n/a (cannot express)"

#: one timed run of ``n`` samples (or test images): ``{"seconds", ["accuracy"], ["engine"]}``
Runner = Callable[[int], dict[str, Any]]


def import_torch() -> Any:
    """The ``torch`` module, or ``None`` when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def import_sklearn_mlp() -> Any:
    """scikit-learn's ``MLPClassifier``, or ``None`` when scikit-learn is not installed."""
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    return MLPClassifier


def peer_status(name: str, config: Config, enabled: dict[str, bool]) -> str | None:
    """Why framework ``name`` does not run ``config`` (``None``: it runs)."""
    if not enabled.get(name, True):
        return f"disabled (--no-{name})"
    if name == "torch" and import_torch() is None:
        return NOT_INSTALLED
    if name == "sklearn":
        if import_sklearn_mlp() is None:
            return NOT_INSTALLED
        if config.output == "sigmoid":  # MLPClassifier: softmax/log-loss output only
            return CANNOT_EXPRESS
    return None


def epoch_orders(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The sample order of each epoch exactly as :func:`backprop.fit` draws it with
    ``shuffle=True, seed=seed``: one generator, one ``permutation(n)`` per epoch."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def _accuracy(outputs: Any, labels: np.ndarray) -> float:
    """The share of rows of ``outputs`` ``(N, 10)`` whose argmax is the label ``(N,)``."""
    return float(np.mean(np.asarray(outputs).argmax(axis=1) == labels))


# ------------------------------------------------------------------ backprop
def build_network(config: Config, seed: int) -> Network:
    """backprop's network for ``config``; its weights are drawn from ``seed``."""
    from ..activations import ReLU, Sigmoid
    from ..layers import Dense, Layer
    from ..network import Network

    act = {"sigmoid": Sigmoid, "relu": ReLU}[config.hidden]
    layers: list[Layer] = []
    n_dense = len(config.widths) - 1
    for i, (d_in, d_out) in enumerate(zip(config.widths[:-1], config.widths[1:], strict=True)):
        layers.append(Dense(d_in, d_out, init=config.init))
        if i < n_dense - 1:
            layers.append(act())
    if config.output == "sigmoid":
        layers.append(Sigmoid())
    return Network(layers, seed=seed, dtype=config.dtype)


def dense_params(net: Network) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of each Dense layer of ``net``, in order (W of shape ``(d_out, d_in)``)."""
    return [(layer.params["W"], layer.params["b"]) for layer in net.layers if "W" in layer.params]


def backprop_runner(config: Config, data: Data, seed: int, epochs: int, engine: str = "auto") -> Runner:
    """backprop's runner: ``fit(..., engine=engine)``; the engine that ran is recorded."""
    from ..losses import get_loss
    from ..optim import SGD, Adam, Optimizer
    from ..training import fit

    def run(n: int) -> dict[str, Any]:
        net = build_network(config, seed)
        if config.task == "predict":
            start = time.perf_counter()
            net.predict(data.x_test[:n])
            return {"seconds": time.perf_counter() - start, "engine": "numpy"}
        opt: Optimizer = (Adam(lr=config.lr) if config.optimizer == "adam"
                          else SGD(lr=config.lr, momentum=config.momentum))
        start = time.perf_counter()
        history = fit(net, data.x[:n], data.y[:n], loss=get_loss(config.loss), optimizer=opt,
                      epochs=epochs, batch_size=config.batch_size, shuffle=True, seed=seed,
                      verbose=False, engine=engine)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "accuracy": _accuracy(net.predict(data.x_test), data.y_test),
                "engine": history.engine}

    return run


# ------------------------------------------------------------------ PyTorch
def build_torch_model(config: Config, net: Network) -> Any:
    """An ``nn.Sequential`` equal to backprop's ``net``: the same layers and a bit-for-bit copy
    of its initial weights (``nn.Linear.weight`` is ``(d_out, d_in)``, like backprop's ``W``)."""
    torch = import_torch()
    from torch import nn

    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[config.hidden]
    params = dense_params(net)
    modules: list[nn.Module] = []
    for i, (W, b) in enumerate(params):
        linear = nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        if i < len(params) - 1:
            modules.append(act())
    if config.output == "sigmoid":
        modules.append(nn.Sigmoid())
    return nn.Sequential(*modules)


def torch_runner(config: Config, data: Data, seed: int, epochs: int) -> Runner:
    """PyTorch's runner: the batches ``fit`` visits (:func:`epoch_orders`), the same optimizer,
    and per step what ``fit`` does besides (the batch loss as a float, the running accuracy)."""
    torch = import_torch()
    from torch.nn import functional as F

    # converted once, outside the timed region (torch.from_numpy shares the memory)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    x_test = torch.from_numpy(data.x_test)
    onehot = torch.nn.functional.one_hot(y, config.widths[-1]).to(x.dtype)
    targets = onehot if config.loss == "quadratic" else y

    def loss_fn(a: Any, t: Any) -> Any:
        if config.loss == "quadratic":  # mean over the batch of ½‖a − y‖², as bp.Quadratic
            return F.mse_loss(a, t, reduction="sum") * (0.5 / a.shape[0])
        return F.cross_entropy(a, t)

    def run(n: int) -> dict[str, Any]:
        model = build_torch_model(config, build_network(config, seed))
        if config.task == "predict":
            model.eval()
            start = time.perf_counter()
            with torch.inference_mode():
                model(x_test[:n])
            return {"seconds": time.perf_counter() - start}
        if config.optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                  nesterov=False)
        bs = config.batch_size
        model.train()
        start = time.perf_counter()
        for order in epoch_orders(n, epochs, seed):  # the very batches fit visits
            perm = torch.from_numpy(order)
            total_loss, correct = 0.0, 0
            for lo in range(0, n, bs):
                idx = perm[lo:lo + bs]
                xb, tb = x.index_select(0, idx), targets.index_select(0, idx)
                labels = y.index_select(0, idx) if config.loss == "quadratic" else tb
                out = model(xb)
                loss = loss_fn(out, tb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # what fit does per step: the batch loss as a float and the running accuracy
                total_loss += loss.item() * idx.shape[0]
                correct += int((out.argmax(1) == labels).sum())
        seconds = time.perf_counter() - start
        model.eval()
        with torch.inference_mode():
            acc = _accuracy(model(x_test).numpy(), data.y_test)
        return {"seconds": seconds, "accuracy": acc}

    return run


# ------------------------------------------------------------------ scikit-learn
def build_sklearn_model(config: Config, net: Network, data: Data, seed: int, epochs: int) -> Any:
    """An ``MLPClassifier`` holding backprop's initial weights, ready for ``fit(x, y)``.

    scikit-learn has no way to pass initial weights, so: fit once for one epoch on a few
    hundred samples (this creates ``coefs_``), overwrite ``coefs_``/``intercepts_`` with
    backprop's ``Wᵀ``/``b``, and switch on ``warm_start``, under which the next ``fit``
    starts from those weights (with a fresh optimizer state).
    """
    MLPClassifier = import_sklearn_mlp()
    from sklearn.exceptions import ConvergenceWarning

    clf = MLPClassifier(
        hidden_layer_sizes=config.widths[1:-1],
        activation={"sigmoid": "logistic", "relu": "relu"}[config.hidden],
        solver=config.optimizer, alpha=0.0, batch_size=config.batch_size,
        learning_rate="constant", learning_rate_init=config.lr,
        momentum=config.momentum, nesterovs_momentum=False,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8,
        max_iter=1, shuffle=True, random_state=seed,
        tol=0.0, n_iter_no_change=10**9, early_stopping=False,
    )
    m = min(len(data.y), 500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # batch_size > m is clipped, with a warning
        clf.fit(data.x[:m], data.y[:m])
    for coef, intercept, (W, b) in zip(clf.coefs_, clf.intercepts_, dense_params(net), strict=True):
        coef[...] = W.T
        intercept[...] = b
    clf.set_params(warm_start=True, max_iter=epochs)
    return clf


def sklearn_runner(config: Config, data: Data, seed: int, epochs: int) -> Runner:
    """scikit-learn's runner: ``MLPClassifier.fit`` for ``epochs`` from backprop's weights
    (:func:`build_sklearn_model`), or ``predict_proba`` on the test images."""
    from sklearn.exceptions import ConvergenceWarning

    def run(n: int) -> dict[str, Any]:
        clf = build_sklearn_model(config, build_network(config, seed), data, seed, epochs)
        if config.task == "predict":
            start = time.perf_counter()
            clf.predict_proba(data.x_test[:n])
            return {"seconds": time.perf_counter() - start}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: intended
            start = time.perf_counter()
            clf.fit(data.x[:n], data.y[:n])
            seconds = time.perf_counter() - start
        acc = _accuracy(clf.predict_proba(data.x_test), data.y_test)
        return {"seconds": seconds, "accuracy": acc}

    return run
