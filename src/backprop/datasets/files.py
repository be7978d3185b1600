"""One entry point for a user's data file, chosen by its suffix (what ``backprop train
--train-file`` calls)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ._common import fspath

PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")


def load_file(path: str | os.PathLike[str], *, labels: str | os.PathLike[str] | None = None,
              label_column: int | str = -1, dtype: Any = "float32",
              mmap: bool = True, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features ``x`` and labels ``y`` from a file of any supported kind, by its suffix.

    * ``.npy``: :func:`load_npy` (features memory-mapped unless ``mmap=False``); the
      labels are in the second ``.npy`` file ``labels``, which it needs;
    * ``.npz``: :func:`load_npz` (arrays ``x`` and ``y``);
    * ``.parquet``, ``.pq``: :func:`load_parquet`; ``.arrow``, ``.feather``, ``.ipc``:
      :func:`load_arrow` (both need the ``data`` extra);
    * anything else: :func:`load_csv`.

    ``label_column`` applies to CSV, Parquet and Arrow; ``labels`` and ``finite=False`` (leave the
    scan of the features for NaN and infinity to the caller) only to ``.npy``.
    """
    from . import arrays, columnar, csvfile

    source = fspath(path, "path")
    suffix = Path(source).suffix.lower()
    if suffix == ".npy":
        if labels is None:
            raise ConfigError(f"{source} holds only features: give the labels' .npy file too "
                              f"(labels=..., on the command line --train-labels/--test-labels)")
        return arrays.load_npy(source, labels, dtype=dtype, mmap=mmap, finite=finite)
    if labels is not None:
        raise ConfigError(f"labels= names a separate labels file, which only .npy features "
                          f"have; {source} holds its labels (use label_column)")
    if suffix == ".npz":
        return arrays.load_npz(source, dtype=dtype)
    if suffix in PARQUET_SUFFIXES:
        return columnar.load_parquet(source, label_column=label_column, dtype=dtype)
    if suffix in ARROW_SUFFIXES:
        return columnar.load_arrow(source, label_column=label_column, dtype=dtype)
    return csvfile.load_csv(source, label_column=label_column, dtype=dtype)
