"""``backprop convert``: a CSV, Parquet or Arrow table turned into ``.npy`` files in one
streaming pass, so that a file parsed once is trained on many times at memory-map speed
(:func:`backprop.datasets.load_npy`).

The features go to one ``.npy`` file and the labels to another, because a memory map
must hold one dtype. Rows are written as they are parsed; memory holds one block of rows
and the labels (8 bytes a row). Both files are written atomically: on an error nothing
is left behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._atomic import write_atomically
from ..errors import ConfigError
from ._common import float_dtype, fspath, labels_from_floats
from .columnar import BATCH_ROWS as _BATCH_ROWS
from .columnar import _pyarrow, arrow_batches, fill, table_labels, table_plan
from .csv_engines import data_offset
from .csv_reference import layout
from .csvfile import csv_engine, read_csv
from .files import ARROW_SUFFIXES, PARQUET_SUFFIXES
from .tabular import label_index

_HEADER_BYTES = 128  # the .npy header written, padded: room for any shape, data aligned


class NpyWriter:
    """A :class:`~backprop.datasets.tabular.Sink` that appends rows to an open ``.npy`` file.

    Args:
        f: the file, written from its start: a header sized for any shape, then the rows.
        features: the number of feature columns ``d``.
        dtype: the features' float dtype; label_dtype: the labels' dtype.

    Attributes:
        n: rows written; labels: the labels so far, a list of ``(m,)`` blocks.
    """

    def __init__(self, f: IO[bytes], features: int, dtype: np.dtype, label_dtype: Any) -> None:
        self.f, self.features, self.dtype = f, features, dtype
        self.label_dtype = np.dtype(label_dtype)
        self.x = np.empty((0, features), dtype)
        self.y = np.empty(0, self.label_dtype)
        self.reset()

    def reserve(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.y) < m:
            self.x, self.y = np.empty((m, self.features), self.dtype), np.empty(m, self.label_dtype)
        return self.x[:m], self.y[:m]

    def commit(self, m: int) -> None:
        self.f.write(self.x[:m].tobytes())
        self.labels.append(self.y[:m].copy())
        self.n += m

    def reset(self) -> None:
        self.f.seek(0)
        self.f.truncate()
        self.f.write(b"\0" * _HEADER_BYTES)
        self.labels: list[np.ndarray] = []
        self.n = 0

    def finish(self) -> np.ndarray:
        """Write the header for the rows written; returns the labels ``(n,)``."""
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.n, self.features)}
        text = repr(header).encode("latin1").ljust(_HEADER_BYTES - 11) + b"\n"
        self.f.seek(0)
        self.f.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text)
        return np.concatenate(self.labels) if self.labels else np.empty(0, self.label_dtype)


def convert_to_npy(source: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                   labels: str | os.PathLike[str] | None = None, label_column: int | str = -1,
                   header: bool | str = "auto", delimiter: str = ",", dtype: Any = "float32",
                   engine: str = "auto") -> tuple[Path, Path, tuple[int, int]]:
    """Write the table ``source`` as features ``dest`` and labels ``labels``, both ``.npy``.

    Args:
        source: a CSV file, or Parquet (``.parquet``, ``.pq``) or Arrow IPC (``.arrow``,
            ``.feather``) with the ``data`` extra; read as :func:`load_csv`,
            :func:`load_parquet` or :func:`load_arrow` read it, with the same errors.
        dest: the features' file, ending in ``.npy``: ``(N, columns - 1)`` of ``dtype``.
        labels: the labels' file; default: ``dest`` with ``.labels.npy`` for ``.npy``.
            ``(N,)``: int64 for class labels, else ``dtype``, as the loaders return them.
        label_column, header, delimiter, engine: as for :func:`load_csv` (``header``,
            ``delimiter`` and ``engine`` apply to CSV only).

    Returns:
        The two paths written and the features' shape ``(N, d)``.
    """
    src, dt = fspath(source, "source"), float_dtype(dtype)
    x_path = Path(fspath(dest, "dest"))
    if x_path.suffix.lower() != ".npy":
        raise ConfigError(f"dest must end in .npy; got {str(x_path)!r}")
    y_path = Path(fspath(labels, "labels")) if labels is not None \
        else x_path.with_suffix(".labels.npy")
    if y_path.resolve() == x_path.resolve():
        raise ConfigError(f"labels and dest name the same file, {str(x_path)!r}")
    shape: list[tuple[int, int]] = []

    def write(tmp: str) -> None:
        with open(tmp, "wb+") as f:
            y, features = _stream(f, src, dt, label_column, header, delimiter, engine)
        write_atomically(y_path, lambda t: np.save(t, y, allow_pickle=False), suffix=".npy")
        shape.append((len(y), features))

    write_atomically(x_path, write, suffix=".npy")  # kept only once the labels are written
    return x_path, y_path, shape[0]


def _stream(f: IO[bytes], src: str, dt: np.dtype, label_column: Any, header: Any,
            delimiter: Any, engine: Any) -> tuple[np.ndarray, int]:
    """Stream the table ``src`` into ``f``; returns the labels ``(N,)`` and the features' width."""
    suffix = Path(src).suffix.lower()
    if suffix in PARQUET_SUFFIXES or suffix in ARROW_SUFFIXES:
        if suffix in PARQUET_SUFFIXES:
            pq = _pyarrow("convert_to_npy", "parquet")
            parquet = pq.ParquetFile(src)
            rows, schema = parquet.metadata.num_rows, parquet.schema_arrow
            batches = parquet.iter_batches(batch_size=_BATCH_ROWS)
        else:
            batches, schema, rows, src = arrow_batches(src)
        plan = table_plan(schema, label_column, rows, src)
        sink = NpyWriter(f, len(plan.features), dt, plan.label_dtype)
        fill(sink, batches, plan, src)
        y = table_labels(sink.finish(), dt, f"{src}: column {plan.names[plan.label]!r}")
        return y, sink.features
    chosen = csv_engine(header, delimiter, engine)
    shape = layout(src, header, delimiter)
    label = label_index(label_column, shape.names, shape.width, src)
    sink = NpyWriter(f, shape.width - 1, dt, np.float64)
    read_csv(sink, src, shape, label, delimiter, chosen, data_offset(src, shape.header_lines))
    return labels_from_floats(sink.finish(), dt, f"{src}: labels"), sink.features
