"""``backprop convert``: a CSV, Parquet or Arrow table turned into ``.npy`` files in one
streaming pass, so that a file parsed once is trained on many times at memory-map speed
(:func:`backprop.datasets.load_npy`).

The features go to one ``.npy`` file and the labels to another, because a memory map
must hold one dtype. The features are parsed straight into a writable memory map of the
new file, made large enough for an upper bound on the rows (a sparse file: the bound
costs neither disk nor memory) and cut to the rows read at the end; memory holds one
block of rows and the labels (8 bytes a row). Both files are written atomically: on an
error nothing is left behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._atomic import write_atomically
from ..errors import ConfigError
from ._common import float_dtype, fspath, labels_from_floats
from .columnar import fill, open_arrow, open_parquet, table_labels, table_plan
from .csv_engines import data_offset
from .csv_ranges import split_ranges
from .csv_reference import layout
from .csvfile import csv_engine, read_csv
from .files import ARROW_SUFFIXES, PARQUET_SUFFIXES
from .tabular import ArraySink, label_index

_HEADER_BYTES = 128  # the .npy header written, padded: room for any shape, data aligned


def convert_to_npy(source: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                   labels: str | os.PathLike[str] | None = None, label_column: int | str = -1,
                   header: bool | str = "auto", delimiter: str = ",", dtype: Any = "float32",
                   engine: str = "auto") -> tuple[Path, Path, tuple[int, int]]:
    """Write the table ``source`` as features ``dest`` and labels ``labels``, both ``.npy``.

    Args:
        source: a CSV file, or Parquet (``.parquet``, ``.pq``) or Arrow IPC (``.arrow``,
            ``.feather``, ``.ipc``) with the ``data`` extra; read as :func:`load_csv`,
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
    if y_path.resolve() == x_path.resolve() or Path(src).resolve() in (x_path.resolve(),
                                                                        y_path.resolve()):
        raise ConfigError(f"source, dest and labels must be three different files; got "
                          f"{src!r}, {str(x_path)!r} and {str(y_path)!r}")
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
    """Parse the table ``src`` into the ``.npy`` file ``f``; returns the labels ``(N,)``
    and the number of features."""
    suffix = Path(src).suffix.lower()
    if suffix in PARQUET_SUFFIXES or suffix in ARROW_SUFFIXES:
        blocks, schema, rows, src = (open_parquet if suffix in PARQUET_SUFFIXES
                                     else open_arrow)(src)
        plan = table_plan(schema, label_column, rows, src)
        sink = _npy_sink(f, rows, len(plan.features), dt, plan.label_dtype)
        fill(sink, blocks, plan, src)
        y = table_labels(_finish(f, sink), dt, f"{src}: column {plan.names[plan.label]!r}")
        return y, len(plan.features)
    chosen = csv_engine(header, delimiter, engine)
    shape = layout(src, header, delimiter)
    label = label_index(label_column, shape.names, shape.width, src)
    ranges = split_ranges(src, data_offset(src, shape.header_lines), chosen)
    # each row takes at least a byte per field and a line ending: a bound without a pass
    bounds = [(end - start) // (2 * shape.width) + 1 for start, end in ranges]
    sink = _npy_sink(f, sum(bounds), shape.width - 1, dt, np.float64)
    read_csv(sink, src, shape, label, delimiter, chosen, ranges, bounds)
    return labels_from_floats(_finish(f, sink), dt, f"{src}: labels"), shape.width - 1


def _npy_sink(f: IO[bytes], capacity: int, features: int, dt: np.dtype,
              label_dtype: Any) -> ArraySink:
    """A sink whose features are a writable memory map of ``f`` after a ``.npy`` header."""
    capacity = max(1, capacity)  # a map cannot be empty
    f.truncate(_HEADER_BYTES + capacity * features * dt.itemsize)  # sparse: no disk used yet
    x = np.memmap(f, dtype=dt, mode="r+", offset=_HEADER_BYTES, shape=(capacity, features))
    return ArraySink(capacity, features, dt, label_dtype, x=x)


def _finish(f: IO[bytes], sink: ArraySink) -> np.ndarray:
    """Flush the map, cut ``f`` to the rows read, write its header; returns the labels."""
    x, y = sink.arrays()
    n, features = x.shape
    assert isinstance(sink.x, np.memmap)
    sink.x.flush()
    del x, sink.x
    header = {"descr": np.lib.format.dtype_to_descr(sink.dtype), "fortran_order": False,
              "shape": (n, features)}
    text = repr(header).encode("latin1").ljust(_HEADER_BYTES - 11) + b"\n"
    f.seek(0)
    f.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text)
    f.truncate(_HEADER_BYTES + n * features * sink.dtype.itemsize)
    return y.copy()
