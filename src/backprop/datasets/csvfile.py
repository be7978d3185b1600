"""CSV files: :func:`load_csv`, parsed by C code when it can be, by Python's csv module when
it must.

The first rows are read with Python's csv module (header or not, the width, the label
column); the data rows then go through a fast engine of :mod:`.csv_engines` into arrays
allocated once. If the engine is unsure of anything (a cell it cannot parse, a ragged or
blank-looking row, NaN, infinity, an overflow), the file is read again from the top by the
reference parser of :mod:`.csv_reference`, which names the culprit's line and column or,
for a file that is valid but unusual (``1_000``, odd whitespace), reads it. Valid files
thus pay nothing for the error messages, and every file is read exactly as the reference
reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError, InvalidValueError, MissingDependencyError
from ._common import float_dtype, fspath, labels_from_floats
from .csv_engines import FAST_DELIMITERS, Unsure, arrow_blocks, count_rows, data_offset, numpy_blocks
from .csv_ranges import Ranges, parse_ranges, split_ranges
from .csv_reference import Layout, layout, reference_blocks
from .tabular import ArraySink, label_index, split_label

#: the values of ``load_csv(engine=...)``
CSV_ENGINES = ("auto", "pyarrow", "numpy", "python")


def load_csv(path: str | os.PathLike[str], *, label_column: int | str = -1,
             header: bool | str = "auto", delimiter: str = ",", dtype: Any = "float32",
             engine: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Read a numeric CSV file into features ``x`` and labels ``y``.

    Args:
        label_column: index (negative counts from the end) or header name of the
            column holding the labels; the other columns are the features.
        header: ``True`` (the first row is a header), ``False``, or ``"auto"``:
            a header if some cell of the first row is not a number.
        delimiter: the one-character field separator.
        dtype: float dtype of ``x`` (and of ``y`` when it is not integral).
        engine: the parser of the data rows: ``"pyarrow"`` (Arrow's C++ reader,
            multi-threaded; ``pip install 'backprop[data]'``), ``"numpy"`` (NumPy's C
            ``loadtxt``), ``"python"`` (the csv module: the reference, 5 to 10 times
            slower), or ``"auto"`` (default): pyarrow where it is installed, else numpy.
            pyarrow parses a file of 64 MB or more as ranges of lines, one thread per
            core (and at least 32 MB per range).
            All give the same arrays and errors; the fast ones hand any row they are
            unsure of to the reference.

    Returns:
        ``x`` of shape ``(N, columns - 1)`` and ``dtype``; ``y`` of shape
        ``(N,)``, int64 if every label is a whole number, else ``dtype``.

    Conversion rule: cells are parsed as float64 and rounded once to ``dtype``,
    the precision the caller asked for; a value that would overflow ``dtype``
    raises :class:`InvalidValueError`. Blank lines are skipped; a UTF-8 BOM is allowed.

    Memory: ``x`` and ``y`` are allocated once, for an upper bound on the rows (the
    line count), and filled block by block; the peak is about their size plus a few MB.

    Errors come in this order: the arguments, the first rows (empty file, header without
    data, fewer than two columns, the label column), then the data rows in file order;
    NaN or infinite cells only once every row has parsed, then overflows.

    Raises:
        FileFormatError: empty file, no data rows, fewer than two columns,
            ragged rows, non-numeric cells (naming the line and column) or bytes
            that are not UTF-8.
        InvalidValueError: NaN or infinite cells (naming the line and column).
        ConfigError: a bad ``label_column``, ``header``, ``delimiter`` or ``engine``.
    """
    source, dt = fspath(path, "path"), float_dtype(dtype)
    engine = csv_engine(header, delimiter, engine)
    shape = layout(source, header, delimiter)
    label = label_index(label_column, shape.names, shape.width, source)
    ranges = split_ranges(source, data_offset(source, shape.header_lines), engine)
    bounds = [count_rows(source, start, end) for start, end in ranges]
    sink = ArraySink(sum(bounds), shape.width - 1, dt, np.float64)
    read_csv(sink, source, shape, label, delimiter, engine, ranges, bounds)
    x, y = sink.arrays()
    return x, labels_from_floats(y, dt, f"{source}: labels")


def csv_engine(header: Any, delimiter: Any, engine: Any) -> str:
    """Check the options of :func:`load_csv`; the engine that will parse the data rows."""
    if header not in ("auto", True, False):
        raise ConfigError(f"header must be 'auto', True or False; got {header!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError(f"delimiter must be a single character; got {delimiter!r}")
    if engine not in CSV_ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(CSV_ENGINES)}; got {engine!r}")
    if engine == "pyarrow":
        _import_pyarrow()
    if engine == "auto":
        try:
            _import_pyarrow()
            engine = "pyarrow"
        except ImportError:
            engine = "numpy"
    return engine if delimiter in FAST_DELIMITERS else "python"


def _import_pyarrow() -> None:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        raise MissingDependencyError("engine='pyarrow' needs pyarrow: pip install 'backprop[data]'") from None


def read_csv(sink: ArraySink, source: str, shape: Layout, label: int, delimiter: str,
             engine: str, ranges: Ranges, bounds: list[int]) -> None:
    """Parse the data rows of ``source`` (the byte ``ranges``, of at most ``bounds`` rows
    each) into ``sink``: through the fast ``engine``, or when it is ``"python"`` or unsure,
    through the reference parser."""
    if engine != "python":
        width = shape.width

        def blocks(start: int, end: int) -> Iterator[np.ndarray]:
            if engine == "pyarrow":
                return arrow_blocks(source, start, end, width, delimiter)
            return numpy_blocks(source, start, end, width, delimiter)

        try:
            parse_ranges(sink, ranges, bounds, blocks, label)
            return
        except Unsure:
            sink.reset()  # and the reference reads the file from the top
    overflow = False
    for block in reference_blocks(source, delimiter, shape):
        x, y = sink.reserve(len(block))
        overflow |= not split_label(block, label, x, y)
        sink.commit(len(block))
    if overflow:  # raised once every row has parsed and proved finite
        raise InvalidValueError(f"{source}: features holds values beyond the range of "
                                f"{sink.dtype}")

