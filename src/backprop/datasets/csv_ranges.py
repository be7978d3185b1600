"""A CSV file's data rows parsed as byte ranges of whole lines, several at once.

The data are cut into about equal ranges at line endings, one per core for pyarrow (which
parses a range on one thread; NumPy's ``loadtxt`` holds the GIL, so it gets one range).
Each range has an upper bound on its rows (its line endings, plus one for a last line
without one), and each thread writes its rows into its own window of the sink's arrays,
which start at the sum of the bounds before it; windows that blank lines left short are
closed up at the end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np

from .csv_engines import Unsure, line_end
from .tabular import ArraySink, split_label

#: the smallest range given a thread of its own: each thread holds a few MB while it parses
#: (text, columns, what its allocator keeps), against the 10 MB or more of features that
#: 32 MB of text holds, so that many cores keep the peak within 1.5 times the features
MIN_RANGE_BYTES = 32 << 20
#: rows moved at a time when windows are closed up (a bounded temporary if they overlap)
_MOVE_ROWS = 1 << 14

Ranges = list[tuple[int, int]]
Blocks = Callable[[int, int], Iterator[np.ndarray]]  # (start, end) -> blocks


def split_ranges(source: str, start: int, engine: str) -> Ranges:
    """Byte ranges ``(start, end)`` of whole lines that cover ``source`` from ``start`` on."""
    size = os.path.getsize(source)
    parts = max(1, min(cores(), (size - start) // MIN_RANGE_BYTES)) if engine == "pyarrow" else 1
    cuts = [start]
    with open(source, "rb") as f:
        for k in range(1, parts):
            guess = max(start + (size - start) * k // parts, cuts[-1])
            f.seek(guess)
            data = b""
            while (end := line_end(data, 0)) < 0 and (more := f.read(1 << 16)):
                data += more
            if end >= 0 and guess + end < size:
                cuts.append(guess + end)
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a] or [(start, size)]


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_ranges(sink: ArraySink, ranges: Ranges, bounds: list[int], blocks: Blocks,
                 label: int) -> None:
    """Parse each range into its window of ``sink`` (column ``label`` into ``sink.y``, the
    others into ``sink.x``), on a thread each when there are several; then close up.

    Raises:
        Unsure: a range held NaN, infinity, a value beyond ``sink.dtype``, or anything its
            engine could not parse; the other threads stop at their next block.
    """
    starts = [sum(bounds[:i]) for i in range(len(bounds))]
    stop = threading.Event()

    def work(i: int) -> int:
        row, end = starts[i], starts[i] + bounds[i]
        for block in blocks(*ranges[i]):
            m = len(block)
            if stop.is_set():
                break
            if row + m > end:
                raise RuntimeError(f"more rows in bytes {ranges[i]} than the {bounds[i]} counted")
            if not np.isfinite(block).all():
                raise Unsure("NaN or infinity")
            if not split_label(block, label, sink.x[row:row + m], sink.y[row:row + m]):
                raise Unsure("a value beyond the features' dtype")
            row += m
        return row - starts[i]

    if len(ranges) == 1:
        counts = [work(0)]
    else:
        with ThreadPoolExecutor(len(ranges)) as pool:
            futures = [pool.submit(work, i) for i in range(len(ranges))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() for f in done):
                stop.set()
            counts = [f.result() for f in futures]  # raises the first failure
    _close_up(sink, starts, counts)


def _close_up(sink: ArraySink, starts: list[int], counts: list[int]) -> None:
    """Move each window's rows down to follow the previous window's; ``sink.n`` = all rows."""
    n = 0
    for start, count in zip(starts, counts, strict=True):
        if start != n:
            for k in range(0, count, _MOVE_ROWS):
                m = min(_MOVE_ROWS, count - k)
                sink.x[n + k:n + k + m] = sink.x[start + k:start + k + m]
                sink.y[n + k:n + k + m] = sink.y[start + k:start + k + m]
        n += count
    sink.n = n
