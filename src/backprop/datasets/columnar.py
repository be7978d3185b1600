"""Columnar files through pyarrow (the ``data`` extra, ``pip install 'backprop[data]'``):
Parquet (:func:`load_parquet`) and the Arrow IPC file format, also called Feather v2
(:func:`load_arrow`).

Both are read a column at a time (of one Parquet row group, or of an Arrow record batch
of at most :data:`BATCH_ROWS` rows) straight into arrays allocated once from the row count
in the file's metadata: the peak memory is the result plus one column of one row group.
Only numeric columns are accepted (integers, floats, booleans); a column of another type,
or one holding nulls, is refused by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DTypeError, FileFormatError, InvalidValueError, MissingDependencyError
from ._common import float_dtype, fspath, to_float
from .tabular import ArraySink, Sink, label_index

#: rows of an Arrow record batch converted at a time (a longer batch is sliced, no copy)
BATCH_ROWS = 1 << 16

#: a block of rows: its length, and a function from a column's index to its values there
Block = tuple[int, Callable[[int], Any]]
#: an opened table: its blocks, schema, row count and file name
Opened = tuple[Iterator[Block], Any, int, str]


@dataclass(frozen=True)
class Plan:
    """Which columns of a table become what.

    Attributes:
        names: every column's name; label: the label column's index; features: the others'.
        label_dtype: int64 for an integer or boolean label column, else float64.
        rows: the number of rows the file's metadata gives.
    """

    names: list[str]
    label: int
    features: list[int]
    label_dtype: np.dtype
    rows: int


def load_parquet(path: str | os.PathLike[str], *, label_column: int | str = -1,
                 dtype: Any = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Read a Parquet file of numeric columns into features ``x`` and labels ``y``.

    Args:
        label_column: index (negative counts from the end) or name of the label column;
            every other column is a feature.
        dtype: float dtype of ``x`` (and of ``y`` when the label column holds floats).

    Returns:
        ``x`` of shape ``(N, columns - 1)`` and ``dtype``, columns in the file's order;
        ``y`` of shape ``(N,)``: int64 if the label column holds integers or booleans,
        else ``dtype``.

    Conversion rule, as :func:`load_npz`: floats are rounded to ``dtype``; integers must
    convert exactly (up to 2**24 for float32); nothing else is accepted.

    Memory: the result plus one column of one row group (8 MB for the float64 column of
    pyarrow's default row group of 1,048,576 rows).

    Raises:
        ImportError: pyarrow is not installed.
        FileFormatError: not a Parquet file, or one with fewer than 2 columns or with two
            columns of the same name.
        DTypeError: a column that is not numeric (its name and type are given), or
            integers that ``dtype`` cannot hold exactly.
        InvalidValueError: a null, NaN or infinite value, or one beyond the range of
            ``dtype`` (naming the column and the row).
        ConfigError: a bad ``label_column``.
    """
    return _load(open_parquet(path), label_column, dtype)


def load_arrow(path: str | os.PathLike[str], *, label_column: int | str = -1,
               dtype: Any = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Read an Arrow IPC file (``.arrow``, ``.feather`` version 2) of numeric columns.

    The file is memory-mapped and its record batches read without a copy; otherwise the
    same arguments, results, rules and errors as :func:`load_parquet`.
    """
    return _load(open_arrow(path), label_column, dtype)


def open_parquet(path: Any) -> Opened:
    """The Parquet file ``path``: a block per row group, each column read on demand."""
    pq = _pyarrow("load_parquet").parquet
    source = fspath(path, "path")
    try:
        parquet = pq.ParquetFile(source, pre_buffer=False)
    except _arrow_errors() as err:
        raise FileFormatError(f"{source}: not a readable Parquet file ({err})") from None
    names, meta = parquet.schema_arrow.names, parquet.metadata

    def blocks() -> Iterator[Block]:
        for group in range(meta.num_row_groups):
            def column(j: int, group: int = group) -> Any:
                return parquet.read_row_group(group, columns=[names[j]], use_threads=False)[0]
            yield meta.row_group(group).num_rows, column

    return blocks(), parquet.schema_arrow, meta.num_rows, source


def open_arrow(path: Any) -> Opened:
    """The Arrow IPC file ``path``, memory-mapped: a block per :data:`BATCH_ROWS` rows."""
    pa = _pyarrow("load_arrow")
    source = fspath(path, "path")
    try:
        reader = pa.ipc.open_file(pa.memory_map(source))
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    except _arrow_errors() as err:
        raise FileFormatError(f"{source}: not a readable Arrow IPC file ({err})") from None

    def blocks() -> Iterator[Block]:
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                part = batch.slice(start, BATCH_ROWS)
                yield part.num_rows, part.column

    return blocks(), reader.schema, sum(b.num_rows for b in batches), source


def table_plan(schema: Any, label_column: Any, rows: int, source: str) -> Plan:
    """Check the columns of ``schema`` (numeric, at least two, unique names) and choose
    the label."""
    import pyarrow as pa

    names = list(schema.names)
    if len(names) < 2:
        raise FileFormatError(f"{source}: needs at least 2 columns (features and a label); "
                              f"it has {len(names)}")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise FileFormatError(f"{source}: the column names {twice} appear more than once")
    for name, kind in zip(names, schema.types, strict=True):
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind)):
            raise DTypeError(f"{source}: column {name!r} has type {kind}; only numeric columns "
                             f"(integers, floats, booleans) can be read")
    label = label_index(label_column, names, len(names), source)
    kind = schema.types[label]
    label_dtype = np.dtype(np.float64 if pa.types.is_floating(kind) else np.int64)
    if pa.types.is_uint64(kind):
        label_dtype = np.dtype(np.uint64)  # checked against the int64 range at the end
    features = [j for j in range(len(names)) if j != label]
    return Plan(names, label, features, label_dtype, rows)


def _load(opened: Opened, label_column: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    blocks, schema, rows, source = opened
    dt = float_dtype(dtype)
    plan = table_plan(schema, label_column, rows, source)
    sink = ArraySink(plan.rows, len(plan.features), dt, plan.label_dtype)
    fill(sink, blocks, plan, source)
    x, y = sink.arrays()
    return x, table_labels(y, dt, f"{source}: column {plan.names[plan.label]!r}")


def table_labels(y: np.ndarray, dt: np.dtype, where: str) -> np.ndarray:
    """Labels as read: integers as int64 class indices, floats rounded to ``dt``."""
    if y.dtype.kind in "biu":
        if y.size and int(y.max()) > np.iinfo(np.int64).max:
            raise DTypeError(f"{where} holds integers beyond the int64 range")
        return y.astype(np.int64, copy=False)
    return to_float(y, dt, where)


def fill(sink: Sink, blocks: Iterator[Block], plan: Plan, source: str) -> None:
    """Convert each block of rows into ``sink``, a column at a time."""
    done = 0
    try:
        for rows, column in blocks:
            x, y = sink.reserve(rows)
            for k, j in enumerate(plan.features):
                values = _values(column(j), plan.names[j], done, source)
                x[:, k] = to_float(values, sink.dtype, f"{source}: column {plan.names[j]!r}")
            y[:] = _values(column(plan.label), plan.names[plan.label], done, source)
            sink.commit(rows)
            done += rows
    except _arrow_errors() as err:
        raise FileFormatError(f"{source}: a damaged file ({err})") from None


def _values(column: Any, name: str, first_row: int, source: str) -> np.ndarray:
    """A column of a block as a NumPy array, refusing nulls, NaN and infinity by row."""
    if column.null_count:
        row = first_row + int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
        raise InvalidValueError(f"{source}: column {name!r} holds nulls (the first in row "
                                f"{row}); fill them in or drop those rows first")
    values = column.to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        row = first_row + int(np.argmin(np.isfinite(values)))
        raise InvalidValueError(f"{source}: column {name!r}, row {row}: {values[row - first_row]} "
                                f"is not finite; remove or fill in missing values first")
    return values


def _pyarrow(function: str) -> Any:
    """pyarrow with its ``parquet`` and ``ipc`` modules, or an ImportError saying how to
    install it."""
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"backprop.datasets.{function} needs pyarrow: "
                          f"pip install 'backprop[data]'") from None
    return pyarrow


def _arrow_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    return (pa.ArrowException,)
