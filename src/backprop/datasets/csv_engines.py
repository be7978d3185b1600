"""The fast CSV parsers: C code that creates no Python object per cell.

* ``"pyarrow"``: Arrow's CSV reader, given a block of lines at a time (the ``data`` extra:
  ``pip install 'backprop[data]'``);
* ``"numpy"``: NumPy's C ``loadtxt`` over blocks of whole lines (always available).

Each reads the whole lines of a byte range of the file (:mod:`.csv_ranges` gives a large
file's ranges to several threads), yields its rows as float64 blocks ``(m, width)``, and
raises :class:`Unsure` at anything that it cannot parse exactly as the reference of :mod:`.csv_reference` would:
a cell that is not a plain number, a blank-looking row, a ragged row, bytes that are not
ASCII. The caller then lets the reference parser read the file, which either finds the
culprit (naming its line and column) or, for a file that is valid but unusual, reads it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

#: bytes of text parsed per block: about 50,000 cells. NumPy's engine holds the text about
#: six times over while parsing it (bytes, str, loadtxt's UCS-4 copy, the float64 rows),
#: pyarrow about five times per thread (text, its parsed cells and columns, the rows, what
#: the allocator keeps); the line count reads this much at a time. Half of this costs
#: pyarrow a fifth more time, twice this as much memory and no less time
BLOCK_BYTES = 1 << 19
_BOM = b"\xef\xbb\xbf"

#: delimiters the fast engines are used with; any other goes to the reference parser
FAST_DELIMITERS = frozenset(",;|:\t")


class Unsure(Exception):
    """A fast engine met something it cannot parse exactly like the reference parser."""


def data_offset(source: str, header_lines: int) -> int:
    """The byte offset at which the data follow the first ``header_lines`` lines of
    ``source`` (and a UTF-8 BOM). Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as in
    Python's universal newlines."""
    with open(source, "rb") as f:
        bom = 3 if f.read(3) == _BOM else 0
        f.seek(bom)
        return bom + _skip_lines(f, header_lines)


def count_rows(source: str, start: int, end: int) -> int:
    """An upper bound on the rows in bytes ``start:end`` of ``source``: their line endings,
    plus one for a last line without one (a pass over the bytes, a block at a time). Exact
    for a range of rows without blank lines, so that no rows need moving once parsed."""
    ends, previous, left = 0, b"", end - start
    buffer = bytearray(max(1, min(BLOCK_BYTES, left)))  # small files, small buffer
    with open(source, "rb") as f:
        f.seek(start)
        while left > 0 and (n := f.readinto(memoryview(buffer)[:min(len(buffer), left)])):
            left -= n
            view = buffer if n == len(buffer) else buffer[:n]
            ends += int(np.count_nonzero(np.frombuffer(view, np.uint8) == 10))  # \n
            if b"\r" in view:  # rare: then \r alone ends a line too, and \r\n is one ending
                ends += view.count(b"\r") - view.count(b"\r\n")
            if previous == b"\r" and view[:1] == b"\n":
                ends -= 1  # a \r\n split between two reads is one line ending
            previous = bytes(view[n - 1:n])
    return ends + (previous not in (b"\n", b"\r"))


def _skip_lines(f: io.BufferedReader, lines: int) -> int:
    """Bytes taken by the next ``lines`` lines of ``f`` (universal newlines)."""
    data, pos = b"", 0
    for _ in range(lines):
        while (end := line_end(data, pos)) < 0:
            more = f.read(1 << 16)
            if not more:
                return len(data)  # the last line has no line ending
            data += more
        pos = end
    return pos


def line_end(data: bytes, pos: int) -> int:
    """The index just after the first line ending at or after ``pos``, or -1 when ``data``
    holds none yet (or ends with a ``\\r`` that may be the first half of ``\\r\\n``)."""
    n, r = data.find(b"\n", pos), data.find(b"\r", pos)
    if r >= 0 and (n < 0 or r < n):
        if r + 1 == len(data):
            return -1
        return r + 2 if data[r + 1:r + 2] == b"\n" else r + 1
    return n + 1 if n >= 0 else -1


def arrow_blocks(source: str, start: int, end: int, width: int, delimiter: str) -> Iterator[np.ndarray]:
    """The rows in bytes ``start:end`` of ``source`` (whole lines), parsed by pyarrow's CSV
    reader a block of whole lines at a time (:func:`line_blocks`), on the calling thread.

    Memory stays at about three blocks per range (the text, pyarrow's columns, the rows):

    * each block of text is handed to pyarrow in memory; its streaming reader would queue
      32 blocks read ahead of the parser (and read them on a thread of its own, through the
      Python file object);
    * the columns come from jemalloc (else the system's allocator), which keeps the least per
      thread: mimalloc, pyarrow's default pool, commits about 12 MB at its first use and
      keeps what each thread freed;
    * the rows are written into one array, reused for every block (``to_tensor`` would
      allocate a new one each time).

    The array yielded is that reused one: it is valid until the next block is asked for.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{j}" for j in range(width)]
    read = pacsv.ReadOptions(column_names=names, block_size=2 * BLOCK_BYTES, use_threads=False)
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                               escape_char=False, newlines_in_values=False,
                               ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()),
                                   null_values=[], strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    pool = _memory_pool()
    rows = np.empty((0, width))
    for text in line_blocks(source, start, end):
        try:
            table = pacsv.read_csv(pa.py_buffer(text), read_options=read, parse_options=parse,
                                   convert_options=convert, memory_pool=pool)
        except pa.ArrowException as err:  # ArrowInvalid: a cell, a ragged row, bad bytes
            raise Unsure(str(err)) from None
        for batch in table.to_batches():
            m = batch.num_rows
            if m > len(rows):
                rows = np.empty((m, width))
            for j, column in enumerate(batch.columns):
                rows[:m, j] = _values(column)
            if m:
                yield rows[:m]


def _values(column: Any) -> np.ndarray:
    """The values ``(m,)`` of a pyarrow float64 array, a view of its data buffer (NumPy's
    ``asarray`` and pyarrow's ``to_numpy`` would import pandas: 40 MB, once)."""
    if column.null_count:  # none are made: null_values=[] turns an empty cell into an error
        raise Unsure("a missing value")
    return np.frombuffer(column.buffers()[1], np.float64, len(column), column.offset * 8)


def _memory_pool() -> Any:
    """pyarrow's jemalloc pool where pyarrow was built with it, else the system allocator."""
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # not built in (Windows)
        return pa.system_memory_pool()


def numpy_blocks(source: str, start: int, end: int, width: int,
                 delimiter: str) -> Iterator[np.ndarray]:
    """The rows in bytes ``start:end`` of ``source`` (whole lines), parsed by NumPy's C
    ``loadtxt`` a block of whole lines at a time (:func:`line_blocks`)."""
    for text in line_blocks(source, start, end):
        block = _loadtxt(text, delimiter)
        if block.shape[0]:
            if block.shape[1] != width:
                raise Unsure(f"{block.shape[1]} columns, expected {width}")
            yield block


def line_blocks(source: str, start: int, end: int) -> Iterator[memoryview]:
    """The bytes ``start:end`` of ``source`` as blocks of whole lines, about
    :data:`BLOCK_BYTES` each (a longer line is a block of its own); none is empty.

    Every block is read into the same buffer (an unfinished line moves to its front, a line
    longer than the buffer gets a larger one), so each block is a view that is valid only
    until the next one is asked for. ``end`` is a line ending or the end of the file."""
    buffer = bytearray(max(1, min(BLOCK_BYTES, end - start)))  # small files, small buffer
    kept = 0  # bytes of an unfinished line at the front of the buffer
    with open(source, "rb", buffering=0) as f:
        f.seek(start)
        left = end - start
        while left > 0 or kept:
            if kept == len(buffer):  # one line fills the buffer: a larger one (views may
                buffer = buffer + bytes(len(buffer))  # still hold the old)
            with memoryview(buffer) as view:
                n = f.readinto(view[kept:kept + min(len(buffer) - kept, left)]) if left > 0 else 0
            left = left - n if n else 0  # no bytes: the file ends before ``end``
            filled = kept + n
            if left > 0:
                cut = max(buffer.rfind(b"\n", 0, filled), buffer.rfind(b"\r", 0, filled)) + 1
            else:
                cut = filled  # the range's last bytes
            if cut:
                yield memoryview(buffer)[:cut]
            kept = filled - cut
            buffer[:kept] = buffer[cut:filled]


def _loadtxt(text: memoryview, delimiter: str) -> np.ndarray:
    """The float64 rows ``(m, columns)`` of the whole lines ``text`` (``m`` may be 0)."""
    try:
        lines = io.StringIO(str(text, "ascii"), newline=None)
    except UnicodeDecodeError as err:  # numbers are ASCII: let the reference name the cell
        raise Unsure(str(err)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": blank lines
        try:
            return np.loadtxt(lines, delimiter=delimiter, comments=None, quotechar=None,
                              dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise Unsure(str(err)) from None
