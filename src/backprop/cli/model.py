"""The commands that use a saved model: ``evaluate``, ``predict`` and ``info``.

* ``backprop evaluate MODEL [--dataset ... | --test-file ...]``: loss and accuracy on a test set;
* ``backprop predict MODEL INPUT [--top K] [--out FILE.csv]``: the class of each row of a
  CSV/NPY file ``(N, d_0)``, or of one PNG digit;
* ``backprop info MODEL``: the architecture and the training metadata.

The model's loss is the one its metadata names (``cross_entropy`` for a file without one).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .argtypes import Subparsers
from .data import add_data_options, load_data

if TYPE_CHECKING:
    from ..network import Network

#: the loss of a model file whose metadata names none
DEFAULT_LOSS = "cross_entropy"


def register(subparsers: Subparsers) -> None:
    """Add ``evaluate``, ``predict`` and ``info`` to ``backprop``'s sub-commands."""
    p = subparsers.add_parser("evaluate", help="loss and accuracy of a model on a test set")
    p.add_argument("model", type=Path)
    add_data_options(p, train=False)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("predict",
                              help="predict the class of each row of a CSV/NPY file or of a PNG digit")
    p.add_argument("model", type=Path)
    p.add_argument("input", type=Path,
                   help="CSV or NPY of shape (N, d_0), or a PNG image of a digit")
    p.add_argument("--top", type=int, default=1, help="show the top K classes")
    p.add_argument("--out", type=Path, default=None,
                   help="write the outputs to this CSV instead of printing")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("info", help="architecture and training metadata of a model file")
    p.add_argument("model", type=Path)
    p.set_defaults(func=cmd_info)


def _model_loss(path: Path) -> str:
    from .. import io

    return str(io.read_metadata(path)["metadata"].get("loss", DEFAULT_LOSS))


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print ``MODEL: N samples  loss L  accuracy A``."""
    from .. import io
    from ..training import evaluate

    net = io.load(args.model)
    loss = _model_loss(args.model)
    _, test = load_data(args, net.dtype.name, need_train=False)
    if test is None:
        raise ConfigError("evaluate needs a test set: --dataset or --test-file")
    result = evaluate(net, test[0], test[1], loss)
    acc = f"  accuracy {result['accuracy']:.4f}" if result["accuracy"] is not None else ""
    print(f"{args.model}: {test[0].shape[0]:,} samples  loss {result['loss']:.4f}{acc}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print each row's best ``--top`` classes with their probabilities (or write all outputs)."""
    from .. import io
    from ..losses import get_loss
    from ..training.metrics import output_probabilities

    net = io.load(args.model)
    loss = get_loss(_model_loss(args.model))
    x = read_inputs(args.input, net)
    outputs = output_probabilities(net.predict(x), loss)  # (N, d_L)
    if args.out is not None:
        np.savetxt(args.out, outputs, delimiter=",", fmt="%.6g")
        print(f"wrote {outputs.shape[0]} rows of {outputs.shape[1]} outputs to {args.out}")
        return 0
    top = max(1, min(args.top, outputs.shape[1]))
    for i, row in enumerate(outputs):
        best = np.argsort(row)[::-1][:top]
        shown = "  ".join(f"{c}: {row[c]:.4f}" for c in best)
        print(f"{i}: class {best[0]}  ({shown})")
    return 0


def read_inputs(path: Path, net: Network) -> np.ndarray:
    """The inputs in ``path``: ``(N, d_0)`` from a CSV or NPY file (a 1-D NPY is one row),
    ``(1, 784)`` from a PNG digit; numbers in the model's dtype."""
    from ..datasets.images import read_digit_png
    from ..errors import FileFormatError

    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    if suffix == ".png":
        x = read_digit_png(path).reshape(1, -1)
    elif suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise FileFormatError(f"{path}: not a plain numeric .npy file ({err})") from None
        if x.ndim == 1:
            x = x.reshape(1, -1)
    elif suffix == ".csv":
        try:
            x = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as err:
            raise FileFormatError(f"{path}: not a numeric CSV ({err})") from None
    else:
        raise ConfigError(f"input must be a .csv, .npy or .png file; got {path.name!r}")
    if x.dtype.kind in "fiu" and x.dtype != net.dtype:
        x = x.astype(net.dtype)  # the file's numbers are the user's features, in the model's dtype
    return x


def cmd_info(args: argparse.Namespace) -> int:
    """Print the file's format version, the network's summary and what training recorded."""
    from .. import io

    info = io.read_metadata(args.model)
    net = io.load(args.model)
    meta = info["metadata"]
    print(f"{args.model}  (model format version {info['format_version']})")
    print(net.summary())
    if "loss" in meta:
        print(f"loss: {meta['loss']}")
    if meta.get("test"):
        test = meta["test"]
        acc = f", accuracy {test['accuracy']:.4f}" if test.get("accuracy") is not None else ""
        print(f"test: loss {test['loss']:.4f}{acc}")
    if meta.get("history"):
        print(f"trained for {len(meta['history']['epoch'])} epochs "
              f"in {meta.get('seconds', 0):.1f} s")
    if meta.get("settings"):
        shown = {k: v for k, v in meta["settings"].items() if v is not None}
        print("settings: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    return 0
