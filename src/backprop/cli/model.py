"""The commands that use a saved model: ``evaluate``, ``predict`` and ``info``.

* ``backprop evaluate MODEL [--dataset ... | --test-file ...]``: loss and accuracy on a test set;
* ``backprop predict MODEL INPUT [--label-column C | --labels Y.npy] [--top K] [--out FILE.csv]``:
  the class of each row of a file ``train`` reads (CSV with or without a header, Parquet,
  Arrow, NPZ, NPY), or of one PNG digit; with labels, also the loss and accuracy on them;
* ``backprop info MODEL``: the architecture and the training metadata.

The model's loss is the one its metadata names (``cross_entropy`` for a file without one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, ShapeError
from .argtypes import Subparsers, require
from .data import add_data_options, label_column, load_data

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
                              help="predict the class of each row of a data file or of a PNG digit")
    p.add_argument("model", type=Path)
    p.add_argument("input", type=Path,
                   help="the rows to classify: CSV (a header is detected), Parquet, Arrow, NPZ "
                        "(x, y) or NPY, as train reads them; or a PNG image of a digit")
    p.add_argument("--label-column", type=label_column, default=None,
                   help="the input's label column (index or header name): left out of the "
                        "features and scored (default: every column is a feature)")
    p.add_argument("--labels", type=Path, default=None,
                   help="the labels' .npy file of an .npy input, scored")
    p.add_argument("--top", type=int, default=1, help="show the top K classes")
    p.add_argument("--out", type=Path, default=None,
                   help="write a CSV instead of printing: a header, then per row the predicted "
                        "class, [the label,] and the outputs p0, p1, ...")
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
    notes: list[str] = []
    _, test = load_data(args, net.dtype.name, need_train=False, notes=notes)
    if test is None:
        raise ConfigError("evaluate needs a test set: --dataset or --test-file")
    result = evaluate(net, test[0], test[1], loss)
    _print_notes(notes)
    acc = f"  accuracy {result['accuracy']:.4f}" if result["accuracy"] is not None else ""
    print(f"{args.model}: {test[0].shape[0]:,} samples  loss {result['loss']:.4f}{acc}")
    return 0


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print each row's best ``--top`` classes with their probabilities, or write every output to
    ``--out``; with labels, then the loss and accuracy on them."""
    from .. import io
    from ..losses import get_loss
    from ..training import evaluate
    from ..training.metrics import output_probabilities, predicted_classes
    from .outputs import check_out
    from .widths import as_targets

    require(args.top >= 1, "--top", "a positive integer", args.top)
    if args.out is not None:
        check_out("--out", args.out)
    net = io.load(args.model)
    loss = get_loss(_model_loss(args.model))
    notes: list[str] = []
    x, y = read_inputs(args, net, notes)
    y = None if y is None else as_targets(y, loss)
    try:
        a = net.predict(x)  # (N, d_L)
    except ShapeError as err:
        one_more = (x.ndim == 2 and net.input_width is not None and args.label_column is None
                    and x.shape[1] == net.input_width + 1)
        raise ShapeError(f"{args.input}: {err}" + ("; if one column holds labels, name it with "
                                                   "--label-column" if one_more else "")) from None
    outputs, classes = output_probabilities(a, loss), predicted_classes(a, loss)
    result = evaluate(net, x, y, loss) if y is not None else None  # checks the labels too
    _print_notes(notes)
    if args.out is not None:
        _write_predictions(args.out, classes, y, outputs)
        print(f"wrote {outputs.shape[0]} rows of {outputs.shape[1]} outputs to {args.out}")
    else:
        top = min(args.top, outputs.shape[1])
        for i, row in enumerate(outputs):
            best = np.argsort(row)[::-1][:top]
            shown = "  ".join(f"{c}: {row[c]:.4f}" for c in best)
            print(f"{i}: class {classes[i]}  ({shown})")
    if result is not None:
        acc = f"  accuracy {result['accuracy']:.4f}" if result["accuracy"] is not None else ""
        print(f"scored on the labels: {x.shape[0]:,} samples  loss {result['loss']:.4f}{acc}")
    return 0


def _write_predictions(path: Path, classes: np.ndarray, y: np.ndarray | None,
                       outputs: np.ndarray) -> None:
    """A CSV with a header: ``class,[label,]p0,p1,...``, one row per input row."""
    from .._atomic import write_atomically

    labels = y if y is not None and y.ndim == 1 else None  # one-hot or real targets: not shown
    columns = ["class"] + (["label"] if labels is not None else [])
    columns += [f"p{j}" for j in range(outputs.shape[1])]
    table = [classes.reshape(-1, 1)] + ([labels.reshape(-1, 1)] if labels is not None else [])
    fmt = ["%d"] + (["%d" if labels.dtype.kind in "biu" else "%.6g"]
                    if labels is not None else []) + ["%.6g"] * outputs.shape[1]
    rows = np.hstack([np.asarray(c, np.float64) for c in [*table, outputs]])
    write_atomically(path, lambda tmp: np.savetxt(tmp, rows, delimiter=",", fmt=fmt,
                                                  header=",".join(columns), comments=""),
                     suffix=".csv")


def read_inputs(args: argparse.Namespace, net: Network,
                notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows of ``args.input`` ``(N, d_0)`` in the model's dtype, and their labels or ``None``.

    A PNG digit is one row ``(1, 784)``; a 1-D ``.npy`` is one row. Tables (CSV, Parquet, Arrow)
    are read as ``train`` reads them; without ``--label-column`` every column is a feature.
    """
    from ..datasets.images import read_digit_png
    from .data import check_readable, load_file

    path, dtype, suffix = args.input, net.dtype.name, args.input.suffix.lower()
    check_readable("input file", path)
    if args.labels is not None and suffix != ".npy":
        raise ConfigError(f"--labels names the labels of an .npy input; {path.name} holds its "
                          f"own (use --label-column)")
    if args.label_column is not None and suffix in (".npy", ".npz", ".png"):
        raise ConfigError(f"--label-column names a column of a table (CSV, Parquet, Arrow); "
                          f"{path.name} has none")
    if suffix == ".png":
        return read_digit_png(path).reshape(1, -1).astype(dtype), None
    flags = ("input file", "--labels")
    if suffix == ".npy" and args.labels is None:
        return _npy_rows(path, dtype), None
    if suffix in (".npy", ".npz") or args.label_column is not None:
        return load_file(path, args.labels, args.label_column if args.label_column is not None
                         else -1, dtype, flags=flags, notes=notes)
    # a table of features only: the readers split off one label column, so column 0 is read as
    # the "labels" and put back in front of the other columns, exactly as read (a float column,
    # or whole numbers, which convert to dtype exactly as the other cells do)
    others, column0 = load_file(path, None, 0, dtype, flags=flags, notes=notes)
    x = np.empty((others.shape[0], others.shape[1] + 1), dtype=dtype)
    x[:, 0], x[:, 1:] = column0, others
    return x, None


def _npy_rows(path: Path, dtype: str) -> np.ndarray:
    """The numbers of an ``.npy`` file ``(N, d)`` (a 1-D file is one row) in ``dtype``."""
    from ..errors import FileFormatError

    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise FileFormatError(f"{path}: not a plain numeric .npy file ({err})") from None
    if x.dtype.kind not in "fiub":
        raise FileFormatError(f"{path}: must hold numbers; got dtype {x.dtype}")
    return (x.reshape(1, -1) if x.ndim == 1 else x).astype(dtype, copy=False)


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
