"""The data options of ``train`` and ``evaluate``, and the data they name.

Inputs come back as ``x`` of shape ``(N, d_0)`` in the requested dtype and labels ``y`` of
shape ``(N,)`` (or the rows a CSV/NPZ file holds), as :mod:`backprop.datasets` loads them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import distributed
from ..errors import ConfigError

#: the built-in data sets (``--dataset``)
DATASETS = ("mnist", "fashion-mnist", "kmnist")

#: ``(x, y)``: inputs ``(N, d_0)`` and targets ``(N,)`` or ``(N, k)``
Split = tuple[np.ndarray, np.ndarray]


def label_column(text: str) -> int | str:
    """``--label-column``: a column index (``-1``) or a header name (``label``)."""
    try:
        return int(text)
    except ValueError:
        return text


def add_data_options(p: argparse.ArgumentParser, train: bool) -> None:
    """The ``data`` group: ``--dataset``, ``--data-dir``, [``--train-file``], ``--test-file``, ..."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="built-in data set (default: mnist, embedded in the package)")
    g.add_argument("--data-dir", type=Path, default=None,
                   help="directory holding the data set's four IDX .gz files "
                        "(for fashion-mnist/kmnist offline)")
    if train:
        g.add_argument("--train-file", type=Path, default=None,
                       help="training data: CSV or Parquet (with a label column), NPZ (x, y), "
                            "or NPY features (memory-mapped) with --train-labels")
        g.add_argument("--train-labels", type=Path, default=None,
                       help="the labels' .npy file of an .npy --train-file")
    g.add_argument("--test-file", type=Path, default=None,
                   help="test data: CSV, Parquet, NPZ or NPY, like --train-file")
    g.add_argument("--test-labels", type=Path, default=None,
                   help="the labels' .npy file of an .npy --test-file")
    g.add_argument("--label-column", type=label_column, default=-1,
                   help="CSV label column: index or header name (default: -1, the last)")
    g.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and test samples (quick runs)")


def load_data(args: argparse.Namespace, dtype: str, need_train: bool) -> tuple[Split | None, Split | None]:
    """``(train, test)`` named by the data options, each cut to ``--limit`` samples.

    A user's files (``--train-file``/``--test-file``) win over ``--dataset``; ``train`` is
    ``None`` when not ``need_train``, ``test`` is ``None`` without a test file.
    """
    train: Split | None = None
    test: Split | None = None
    if getattr(args, "train_file", None) is not None or args.test_file is not None:
        if need_train:
            if args.train_file is None:
                raise ConfigError("--test-file needs --train-file for training")
            # under mpiexec each process scans only its share of the rows, in fit
            train = load_file(args.train_file, args.train_labels, args.label_column, dtype,
                              finite=not distributed.launched())
        if args.test_file is not None:
            test = load_file(args.test_file, args.test_labels, args.label_column, dtype)
    else:
        train, test = _builtin(args.dataset, dtype, args.data_dir)
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be a positive integer; got {args.limit}")
        train = None if train is None else (train[0][:args.limit], train[1][:args.limit])
        test = None if test is None else (test[0][:args.limit], test[1][:args.limit])
    return train, test


def _builtin(name: str, dtype: str, data_dir: Path | None) -> tuple[Split, Split]:
    from .. import datasets

    if name == "mnist":
        return datasets.load_mnist(dtype=dtype)
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(dtype=dtype, data_dir=data_dir)
    return datasets.load_kmnist(dtype=dtype, data_dir=data_dir)


def load_file(path: Path, labels: Path | None, label_column: int | str, dtype: str, *,
              finite: bool = True) -> Split:
    """``(x, y)`` from a user's file, by its suffix (:func:`backprop.datasets.load_file`):
    CSV or Parquet (one label column), NPZ (arrays ``x`` and ``y``), or NPY features
    (memory-mapped) with their ``labels`` file."""
    from .. import datasets

    return datasets.load_file(path, labels=labels, label_column=label_column, dtype=dtype, finite=finite)
