"""The data options of ``train`` and ``evaluate``, and the data they name.

Inputs come back as ``x`` of shape ``(N, d_0)`` in the requested dtype and labels ``y`` of
shape ``(N,)`` (or the rows a CSV/NPZ file holds), as :mod:`backprop.datasets` loads them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import distributed
from ..errors import BackpropError, ConfigError

#: the built-in data sets (``--dataset``), each of 10 classes
DATASETS = ("mnist", "fashion-mnist", "kmnist")
DATASET_CLASSES = 10

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


def load_data(args: argparse.Namespace, dtype: str, need_train: bool,
              notes: list[str] | None = None) -> tuple[Split | None, Split | None]:
    """``(train, test)`` named by the data options, each cut to ``--limit`` samples.

    A user's files (``--train-file``/``--test-file``) win over ``--dataset``; ``train`` is
    ``None`` when not ``need_train``, ``test`` is ``None`` without a test file. A note on what
    loading cost (an ``.npy`` file converted in memory) is appended to ``notes``, for the command
    to print once every check has passed.
    """
    train: Split | None = None
    test: Split | None = None
    notes = [] if notes is None else notes
    if uses_files(args):
        if need_train:
            if args.train_file is None:
                raise ConfigError("--test-file needs --train-file for training")
            # under mpiexec each process scans only its share of the rows for NaN, in fit
            train = load_file(args.train_file, args.train_labels, args.label_column, dtype,
                              flags=("--train-file", "--train-labels"), notes=notes,
                              finite=not distributed.launched())
        if args.test_file is not None:
            test = load_file(args.test_file, args.test_labels, args.label_column, dtype,
                             flags=("--test-file", "--test-labels"), notes=notes)
    else:
        train, test = _builtin(args.dataset, dtype, args.data_dir)
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be a positive integer; got {args.limit}")
        train = None if train is None else (train[0][:args.limit], train[1][:args.limit])
        test = None if test is None else (test[0][:args.limit], test[1][:args.limit])
    return train, test


def uses_files(args: argparse.Namespace) -> bool:
    """The data come from the user's files (``--train-file``/``--test-file``), not ``--dataset``."""
    return getattr(args, "train_file", None) is not None or args.test_file is not None


def _builtin(name: str, dtype: str, data_dir: Path | None) -> tuple[Split, Split]:
    from .. import datasets

    if name == "mnist":
        return datasets.load_mnist(dtype=dtype)
    if name == "fashion-mnist":
        return datasets.load_fashion_mnist(dtype=dtype, data_dir=data_dir)
    return datasets.load_kmnist(dtype=dtype, data_dir=data_dir)


def check_readable(flag: str, path: Path) -> None:
    """Raise ``FileNotFoundError("--flag 'path' does not exist")`` (or ``is a folder``), the
    wording of every missing file on the command line."""
    if not path.exists():
        raise FileNotFoundError(f"{flag} {str(path)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {str(path)!r} is a folder, not a file")


def load_file(path: Path, labels: Path | None, label_column: int | str, dtype: str, *,
              flags: tuple[str, str] = ("--train-file", "--train-labels"),
              notes: list[str] | None = None, finite: bool = True) -> Split:
    """``(x, y)`` from a user's file, by its suffix (:func:`backprop.datasets.load_file`):
    CSV or Parquet (one label column), NPZ (arrays ``x`` and ``y``), or NPY features
    (memory-mapped) with their ``labels`` file.

    ``flags`` name the file and its labels' file in errors. An ``.npy`` file of another float
    dtype than ``dtype`` (float16, float64) is read into memory and converted, since a memory
    map cannot be; the note saying so, with the memory it takes, is appended to ``notes``.
    ``finite=False`` leaves the scan of an ``.npy`` file's features for NaN and infinity to the
    caller (a data-parallel ``fit``, in which each process scans its share of the rows).
    """
    from .. import datasets

    check_readable(flags[0], path)
    if labels is not None:
        check_readable(flags[1], labels)
    mmap = True
    stored = npy_dtype(path) if path.suffix.lower() == ".npy" else None
    if stored is not None and stored.kind == "f" and stored != np.dtype(dtype):
        mmap = False
        if notes is not None:
            notes.append(f"{flags[0]} {path} holds {stored.name} numbers: converted to {dtype} "
                         f"in memory ({_megabytes(path, stored, dtype)}) instead of mapping the file")
    try:
        return datasets.load_file(path, labels=labels, label_column=label_column, dtype=dtype,
                                  mmap=mmap, finite=finite)
    except OSError as err:
        if isinstance(err, BackpropError) or err.strerror is None:
            raise
        where = flags[1] if labels is not None and err.filename == str(labels) else flags[0]
        raise OSError(f"{where} {err.filename!r}: cannot read it: {err.strerror}") from None


def npy_dtype(path: Path) -> np.dtype | None:
    """The dtype in the header of the ``.npy`` file ``path``; ``None`` if it has no readable
    header (the loader then says what is wrong). Reads the header only."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_2_0 if version == (2, 0) else fmt.read_array_header_1_0
            dtype: np.dtype = read(f)[2]
            return dtype
    except (OSError, ValueError, TypeError, SyntaxError):
        return None


def _megabytes(path: Path, stored: np.dtype, dtype: str) -> str:
    """The memory an ``.npy`` file of ``stored`` numbers takes in ``dtype``: ``"12.3 MB"``."""
    size = path.stat().st_size * np.dtype(dtype).itemsize / stored.itemsize
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
