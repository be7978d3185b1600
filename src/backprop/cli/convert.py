"""The ``backprop convert`` command: user data made ready for memory-mapped training.

* ``backprop convert SOURCE DEST.npy [--labels LABELS.npy] [--label-column C] [--dtype D]
  [--delimiter X] [--header auto|yes|no] [--engine E]``: a CSV, Parquet or Arrow table
  turned into two ``.npy`` files in one streaming pass: the features ``DEST.npy``
  ``(N, columns - 1)`` and the labels (default ``DEST.labels.npy``), ready for
  ``backprop train --train-file DEST.npy --train-labels DEST.labels.npy``, which maps the
  features instead of reading them (:func:`backprop.datasets.convert_to_npy`).

Registered through ``cli.app.COMMAND_MODULES``: :func:`register` adds the parser; the heavy
imports happen inside the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import Subparsers
from .data import check_readable, label_column

HEADERS: dict[str, bool | str] = {"auto": "auto", "yes": True, "no": False}


def cmd_convert(args: argparse.Namespace) -> int:
    from ..datasets import convert_to_npy

    check_readable("source file", args.source)
    try:
        x_path, y_path, (n, d) = convert_to_npy(
            args.source, args.dest, labels=args.labels, label_column=args.label_column,
            header=HEADERS[args.header], delimiter=args.delimiter, dtype=args.dtype,
            engine=args.engine)
    except ImportError as err:  # Parquet or Arrow without pyarrow
        print(f"backprop convert: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {n:,} rows of {d} features ({args.dtype}) to {x_path} and their labels to "
          f"{y_path}")
    print(f"train with: backprop train --train-file {x_path} --train-labels {y_path}")
    return 0


def register(subparsers: Subparsers) -> None:
    """Add the ``convert`` parser to the ``backprop`` subcommands."""
    from ..datasets import CSV_ENGINES

    p = subparsers.add_parser("convert", help="turn a CSV, Parquet or Arrow table into .npy files "
                                       "(features and labels) to train on, memory-mapped",
                       description="Convert a table into .npy files in one streaming pass: the "
                                   "features (N, columns - 1) and the labels (N,), as the "
                                   "loaders return them.")
    p.add_argument("source", type=Path, help="a .csv file, or .parquet / .arrow / .feather "
                                             "(pip install 'backprop[data]')")
    p.add_argument("dest", type=Path, help="the features' .npy file to write")
    p.add_argument("--labels", type=Path, default=None,
                   help="the labels' .npy file to write (default: DEST with .labels.npy)")
    p.add_argument("--label-column", type=label_column, default=-1,
                   help="label column: index or header name (default: -1, the last)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the features (default: float32)")
    p.add_argument("--delimiter", default=",", help="CSV field separator (default: ,)")
    p.add_argument("--header", choices=tuple(HEADERS), default="auto",
                   help="CSV header row: auto (a header if a cell of the first row is not a "
                        "number), yes or no")
    p.add_argument("--engine", choices=CSV_ENGINES, default="auto",
                   help="CSV parser: auto (pyarrow where installed, else numpy), pyarrow, "
                        "numpy, python (the slow reference)")
    p.set_defaults(func=cmd_convert)
