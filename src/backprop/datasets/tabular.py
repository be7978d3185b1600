"""What the table readers (CSV, Parquet, Arrow) share: choosing the label column, and the
sinks that receive a table's rows block by block.

A reader asks a sink for room for ``m`` rows (:meth:`Sink.reserve`), writes the features
and labels straight into it, then :meth:`Sink.commit` s them. :class:`ArraySink` fills two
arrays allocated once for the whole table, so loading needs no second copy of the data
(``backprop convert`` gives it a memory map of the ``.npy`` file it writes).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .._validation import describe
from ..errors import ConfigError, DTypeError


class Sink(Protocol):
    """Receives a table block by block: features ``(m, d)`` of :attr:`dtype` and labels ``(m,)``."""

    dtype: np.dtype

    def reserve(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Writable views for the next ``m`` rows: features ``(m, d)`` and labels ``(m,)``."""
        ...

    def commit(self, m: int) -> None:
        """Keep the ``m`` rows just written into the views of :meth:`reserve`."""
        ...

    def reset(self) -> None:
        """Forget every row committed so far (a reader starting again from the top)."""
        ...


class ArraySink:
    """A table's rows gathered into two arrays allocated once.

    Args:
        capacity: an upper bound on the rows (e.g. the file's line count); the arrays
            are shrunk in place to the rows really committed by :meth:`arrays`. Pages
            never written are never touched, so a generous bound costs no memory.
        features: the number of feature columns ``d``.
        dtype: the float dtype of the features.
        label_dtype: the dtype of the labels.
        x: the features' array, ``(capacity, d)`` of ``dtype``, if not a new one (e.g. a
            writable memory map of a file); it is then sliced, not shrunk, by :meth:`arrays`.

    Attributes:
        x: ``(capacity, d)`` of ``dtype``; y: ``(capacity,)`` of ``label_dtype``.
        n: the rows committed so far.
    """

    def __init__(self, capacity: int, features: int, dtype: np.dtype, label_dtype: Any,
                 x: np.ndarray | None = None) -> None:
        self.dtype = dtype
        self.owned = x is None
        self.x = np.empty((capacity, features), dtype) if x is None else x
        self.y = np.empty(capacity, label_dtype)
        self.n = 0

    def reserve(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        if self.n + m > len(self.y):
            raise RuntimeError(f"the table has more rows than the {len(self.y)} counted")
        return self.x[self.n:self.n + m], self.y[self.n:self.n + m]

    def commit(self, m: int) -> None:
        self.n += m

    def reset(self) -> None:
        self.n = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``x`` ``(n, d)`` and ``y`` ``(n,)``: the committed rows, without a copy."""
        if not self.owned:
            return self.x[:self.n], self.y[:self.n]
        for array, shape in ((self.x, (self.n, self.x.shape[1])), (self.y, (self.n,))):
            if array.shape != shape:
                array.resize(shape, refcheck=False)  # shrinks the allocation in place
        return self.x, self.y


def column_name(index: int, names: list[str] | None) -> str:
    """A 1-based column number for messages, with its header name if there is one."""
    return f"{index + 1} ({names[index]!r})" if names is not None else str(index + 1)


def label_index(label_column: Any, names: list[str] | None, width: int, source: str) -> int:
    """The 0-based index of ``label_column`` (an index, negative from the end, or a header
    name) among ``width`` columns named ``names`` (None: the file has no header)."""
    if isinstance(label_column, str):
        if names is None:
            raise ConfigError(f"label_column={label_column!r} is a column name, but {source} has "
                              f"no header row; pass a column index or header=True")
        if names.count(label_column) != 1:
            how = "is not" if label_column not in names else "appears more than once"
            raise ConfigError(f"label_column={label_column!r} {how} in the header of {source}; "
                              f"its columns are {names}")
        return names.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise DTypeError(f"label_column must be a column index or a header name; "
                         f"got {describe(label_column)}")
    if not -width <= label_column < width:
        raise ConfigError(f"label_column={label_column} is out of range for the {width} "
                          f"columns of {source}")
    return int(label_column) % width


def split_label(block: np.ndarray, label: int, x: np.ndarray, y: np.ndarray) -> bool:
    """Copy the rows ``block`` ``(m, width)`` into features ``x`` ``(m, width - 1)`` (every
    column but ``label``, rounded to ``x.dtype``) and labels ``y`` ``(m,)``.

    Returns False when a finite value overflows ``x.dtype`` (it became infinite).
    """
    with np.errstate(over="ignore"):
        x[:, :label] = block[:, :label]
        x[:, label:] = block[:, label + 1:]
    y[:] = block[:, label]
    return x.dtype.itemsize >= block.dtype.itemsize or bool(np.isfinite(x).all())
