"""The IDX format (MNIST's): a few header bytes giving the element type and the shape,
then the elements in C order, big-endian; raw or gzipped."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from typing import IO, Protocol

import numpy as np

from .._validation import positive_int
from ..errors import FileFormatError
from ._common import CHUNK, MAX_NDIM, fspath

# type code -> element dtype; every multi-byte IDX type is big-endian
_IDX_TYPES: dict[int, np.dtype] = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike[str], *, max_bytes: int = 2**31) -> np.ndarray:
    """Read an IDX file (the format of MNIST), raw or gzipped, into an array.

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), a byte ``ndim``, ``ndim``
    big-endian uint32 dimensions, then the elements in C order, big-endian.
    Gzip is recognised by its magic bytes (1f 8b), whatever the file's name.

    The header is checked (magic, type code, ``ndim >= 1``, a data size of at
    most ``max_bytes``, and for a raw file its size) before any buffer is
    allocated; a gzip stream is read in bounded chunks, so memory only grows
    with data that is really there.

    Returns:
        An array of the header's shape and type, in native byte order.

    Raises:
        FileFormatError: the file is not IDX, is truncated, has trailing bytes
            or claims more than ``max_bytes`` of data. The message names the file.
    """
    source = fspath(path, "path")
    max_bytes = positive_int(max_bytes, "max_bytes")
    with open(source, "rb") as f:
        return parse_idx(f, source, os.fstat(f.fileno()).st_size, max_bytes)


def parse_idx(f: IO[bytes], source: str, size: int, max_bytes: int) -> np.ndarray:
    """Parse the seekable IDX stream ``f`` of ``size`` bytes, raw or gzipped."""
    gzipped = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    if not gzipped:
        return _parse_idx_stream(f, source, max_bytes, raw_size=size)
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            return _parse_idx_stream(stream, source, max_bytes, raw_size=None)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise FileFormatError(f"{source}: corrupt gzip stream ({err})") from err


class _Stream(Protocol):
    """What the parser reads from: a raw file or a gzip stream."""

    def read(self, size: int = -1, /) -> bytes: ...


def _parse_idx_stream(stream: _Stream, source: str, max_bytes: int,
                      raw_size: int | None) -> np.ndarray:
    head = _read_upto(stream, 4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise FileFormatError(f"{source}: not an IDX file: it must start with bytes 00 00, "
                              f"a type code and ndim; it starts with {head.hex(' ') or 'nothing'}")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_TYPES.items())
        raise FileFormatError(f"{source}: unknown IDX type code 0x{code:02X}; "
                              f"expected one of {known}")
    if ndim < 1:
        raise FileFormatError(f"{source}: IDX header gives 0 dimensions; expected at least 1")
    if ndim > MAX_NDIM:
        raise FileFormatError(f"{source}: IDX header gives {ndim} dimensions; at most "
                              f"{MAX_NDIM} are supported")
    dims = _read_upto(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise FileFormatError(f"{source}: truncated IDX header: {ndim} dimensions need "
                              f"{4 * ndim} bytes, the file has {len(dims)}")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = _IDX_TYPES[code]
    nbytes = math.prod(shape) * dtype.itemsize
    claim = f"its header claims shape {shape} of {dtype.name}, {nbytes} data bytes"
    if nbytes > max_bytes:
        raise FileFormatError(f"{source}: {claim}, more than max_bytes={max_bytes}")
    if math.prod(d for d in shape if d) * dtype.itemsize > max_bytes:  # (0, 2**32-1, 2**32-1)
        raise FileFormatError(f"{source}: {claim}, but its other dimensions describe more than "
                              f"max_bytes={max_bytes}: not a real data set")
    if raw_size is not None and raw_size != 4 + 4 * ndim + nbytes:
        problem = "truncated" if raw_size < 4 + 4 * ndim + nbytes else "trailing bytes"
        raise FileFormatError(f"{source}: {problem}: {claim} ({4 + 4 * ndim + nbytes} bytes "
                              f"with the header), but the file has {raw_size} bytes")
    data = bytearray()
    while len(data) < nbytes:  # grows with the bytes actually read, never by the claim
        chunk = stream.read(min(CHUNK, nbytes - len(data)))
        if not chunk:
            raise FileFormatError(f"{source}: truncated: {claim}, the data ends after {len(data)}")
        data += chunk
    if stream.read(1):
        raise FileFormatError(f"{source}: trailing bytes: {claim}, the file holds more")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_upto(stream: _Stream, n: int) -> bytes:
    """Up to ``n`` bytes of ``stream``: fewer only at its end."""
    out = b""
    while len(out) < n and (chunk := stream.read(n - len(out))):
        out += chunk
    return out


