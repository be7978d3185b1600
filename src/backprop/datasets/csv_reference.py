"""CSV read with Python's :mod:`csv` module: the first rows of every file, and the reference
parser that decides whenever the fast parsers of :mod:`.csv_engines` are unsure.

The reference is the definition of what :func:`backprop.datasets.load_csv` accepts: cells
are split by :func:`csv.reader` (quotes as Excel writes them), rows whose cells are all
blank are skipped, and each cell is parsed by :class:`float`. It is slow (a Python object
per cell) but streams: memory holds one block of rows, not the file.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import FileFormatError, InvalidValueError
from .tabular import column_name

Row = tuple[int, list[str]]  # (line number of the row's last line, cells)

#: cells parsed into one block before it is handed on (a block has at least one row)
BLOCK_CELLS = 1 << 16


@dataclass(frozen=True)
class Layout:
    """The shape of a CSV file, from its first rows.

    Attributes:
        names: the header's cells (stripped), or None when the file has no header row.
        width: the number of columns.
        header_lines: physical lines up to the end of the header row (0 without a header);
            the data rows follow them.
        first_data_line: the line number of the first data row (named in messages).
    """

    names: list[str] | None
    width: int
    header_lines: int
    first_data_line: int


def is_number(cell: str) -> bool:
    """Whether :class:`float` parses ``cell`` (the header test of ``header="auto"``)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def rows(source: str, delimiter: str) -> Generator[Row, None, None]:
    """The rows of ``source`` that hold something, with their line numbers.

    Raises:
        FileFormatError: the file is not UTF-8 (a BOM is allowed) or not readable as CSV.
    """
    with open(source, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            for row in reader:
                if any(c.strip() for c in row):
                    yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as err:
            raise FileFormatError(f"{source}: not a readable UTF-8 CSV file ({err})") from err


def layout(source: str, header: bool | str, delimiter: str) -> Layout:
    """Read the first rows of ``source``: header or not (``header="auto"``: a header if some
    cell of the first row is not a number), the width, where the data start.

    Raises:
        FileFormatError: an empty file, a header without data rows, fewer than 2 columns.
    """
    with contextlib.closing(rows(source, delimiter)) as it:
        first = next(it, None)
        if first is None:
            raise FileFormatError(f"{source}: empty CSV file: no rows")
        names: list[str] | None = None
        header_lines, first_data_line = 0, first[0]
        if header is True or (header == "auto" and not all(is_number(c) for c in first[1])):
            names, header_lines = [c.strip() for c in first[1]], first[0]
            second = next(it, None)
            if second is None:
                raise FileFormatError(f"{source}: the CSV file has a header row but no data rows")
            first_data_line = second[0]
    width = len(names) if names is not None else len(first[1])
    if width < 2:
        raise FileFormatError(f"{source}: needs at least 2 columns (features and a label); "
                              f"the first row has {width}")
    return Layout(names, width, header_lines, first_data_line)


def reference_blocks(source: str, delimiter: str, shape: Layout) -> Iterator[np.ndarray]:
    """The data rows of ``source`` as float64 blocks ``(m, width)``, parsed by :class:`float`.

    Row errors are raised at the first row that has one, in file order; a NaN or infinite
    cell is raised only after every row has parsed (naming the first such cell), so a
    malformed row anywhere takes precedence, as it always has.

    Raises:
        FileFormatError: a row with the wrong number of fields, or a cell that is not a
            number (naming its line and column).
        InvalidValueError: a NaN or infinite cell (naming its line and column).
    """
    names, width = shape.names, shape.width
    like = "the header" if names is not None else f"line {shape.first_data_line}"
    block_rows = max(1, BLOCK_CELLS // width)
    block, i, bad = np.empty((block_rows, width)), 0, None
    with contextlib.closing(rows(source, delimiter)) as it:
        if names is not None:
            next(it)
        for line, row in it:
            if len(row) != width:
                raise FileFormatError(f"{source}: line {line} has {len(row)} fields; expected "
                                      f"{width} like {like}")
            try:
                block[i] = list(map(float, row))
            except ValueError:
                col = next(j for j, cell in enumerate(row) if not is_number(cell))
                raise FileFormatError(f"{source}: line {line}, column {column_name(col, names)}: "
                                      f"{row[col].strip()!r} is not a number") from None
            if bad is None and not np.isfinite(block[i]).all():
                col = int(np.argmin(np.isfinite(block[i])))
                bad = (line, col, row[col].strip())
            i += 1
            if i == block_rows:
                yield block
                i = 0
    if i:
        yield block[:i]
    if bad is not None:
        raise InvalidValueError(f"{source}: line {bad[0]}, column {column_name(bad[1], names)}: "
                                f"{bad[2]!r} is not finite; remove or fill in missing values first")
