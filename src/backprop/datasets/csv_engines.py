"""The fast CSV parsers: C code that creates no Python object per cell.

* ``"pyarrow"``: Arrow's CSV reader, streamed in record batches (the ``data`` extra:
  ``pip install 'backprop[data]'``);
* ``"numpy"``: NumPy's C ``loadtxt`` over blocks of whole lines (always available).

Each reads the whole lines of a byte range of the file (:mod:`.csv_ranges` gives a large
file's ranges to several threads), yields its rows as float64 blocks ``(m, width)``, and
raises :class:`Unsure`
at anything that it cannot parse exactly as the reference of :mod:`.csv_reference` would:
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

#: bytes of text parsed per block: about 100,000 cells. NumPy's engine holds the text about
#: six times over while parsing it (bytes, str, loadtxt's UCS-4 copy, the float64 rows),
#: pyarrow's one block per thread; the line count reads this much at a time
BLOCK_BYTES = 1 << 20
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
    plus one for a last line without one (a pass over the bytes, a block at a time)."""
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
    return ends + 1


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
    """The rows in bytes ``start:end`` of ``source`` (whole lines), parsed by pyarrow's
    streaming CSV reader on the calling thread.

    pyarrow's own threads stay off (``use_threads=False``): its read-ahead thread fills buffers
    through the Python file object, and a reader abandoned mid-file (a bad cell, then the
    reference parser takes over) could leave that thread writing into freed memory, which
    crashed the process in the fuzz tests. Large files still parse in parallel, one range per
    thread (:mod:`~backprop.datasets.csv_ranges`)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{j}" for j in range(width)]
    read = pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, use_threads=False)
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                               escape_char=False, newlines_in_values=False,
                               ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()),
                                   null_values=[], strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    try:
        with open(source, "rb", buffering=0) as f:
            f.seek(start)
            text = pa.PythonFile(_Range(f, end), mode="r")  # read a block at a time
            reader = pacsv.open_csv(text, read_options=read, parse_options=parse,
                                    convert_options=convert)
            for batch in reader:
                if batch.num_rows:
                    yield np.asarray(batch.to_tensor(row_major=True))
    except pa.ArrowException as err:  # ArrowInvalid: a cell, a ragged row, bad bytes
        raise Unsure(str(err)) from None


class _Range(io.RawIOBase):
    """The bytes of the open file ``f`` from where it stands up to offset ``end``."""

    def __init__(self, f: io.FileIO, end: int) -> None:
        super().__init__()
        self.f, self.left = f, end - f.tell()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.f.readinto(memoryview(buffer).cast("B")[:max(0, self.left)])
        self.left -= n or 0
        return n or 0


def numpy_blocks(source: str, start: int, end: int, width: int,
                 delimiter: str) -> Iterator[np.ndarray]:
    """The rows in bytes ``start:end`` of ``source`` (whole lines), parsed by NumPy's C
    ``loadtxt`` a block of whole lines at a time (about :data:`BLOCK_BYTES` each)."""
    with open(source, "rb") as f:
        left = end - start
        f.seek(start)
        rest = b""
        while True:
            chunk = f.read(max(0, min(BLOCK_BYTES, left)))  # no buffer larger than the file
            left -= len(chunk)
            text = rest + chunk
            if chunk:
                cut = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1
                text, rest = text[:cut], text[cut:]
            if text:
                block = _loadtxt(text, delimiter)
                if block.shape[0]:
                    if block.shape[1] != width:
                        raise Unsure(f"{block.shape[1]} columns, expected {width}")
                    yield block
            if not chunk:
                return


def _loadtxt(text: bytes, delimiter: str) -> np.ndarray:
    """The float64 rows ``(m, columns)`` of the whole lines ``text`` (``m`` may be 0)."""
    try:
        lines = io.StringIO(text.decode("ascii"), newline=None)
    except UnicodeDecodeError as err:  # numbers are ASCII: let the reference name the cell
        raise Unsure(str(err)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": blank lines
        try:
            return np.loadtxt(lines, delimiter=delimiter, comments=None, quotechar=None,
                              dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise Unsure(str(err)) from None
