"""NumPy's own files: ``.npz`` archives (``np.savez``) and ``.npy`` arrays, memory-mapped.

Nothing here trusts a header with memory or executes code: each array's ``.npy`` header is
parsed and checked (a numeric dtype, at most 32 dimensions, exactly the bytes that follow
it) before any data are read, and object arrays are refused without being unpickled.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from typing import IO, Any, Literal

import numpy as np

from .._validation import describe, positive_int
from ..errors import BackpropError, DTypeError, FileFormatError, InvalidValueError, ShapeError
from ._common import CHUNK, MAX_NDIM, first_non_finite_row, float_dtype, fspath, to_float

Header = tuple[tuple[int, ...], bool, np.dtype]  # shape, Fortran order, dtype


def load_npz(path: str | os.PathLike[str], *, x_key: str = "x", y_key: str = "y",
             dtype: Any = "float32", max_bytes: int = 2**31) -> tuple[np.ndarray, np.ndarray]:
    """Read features and labels from a NumPy ``.npz`` archive (``np.savez``).

    Returns:
        ``x`` of shape ``(N, ...)`` (at least 2-D, its stored shape) and
        ``dtype``; ``y`` of shape ``(N,)`` or ``(N, k)``: int64 if stored as
        integers or booleans, else ``dtype``.

    Conversion rule: stored floats are rounded to ``dtype``, the precision the
    caller asked for (float64 data with the default ``dtype="float32"`` is
    rounded to float32); stored integers must convert exactly (values up to
    2**24 for float32, 2**53 for float64) and are not rescaled, so divide
    pixels by 255 yourself. Anything else raises rather than lose information.

    The archive is parsed here, not by ``np.load``: each array's ``.npy`` header
    is read and checked (numeric dtype, at most ``max_bytes`` of data, exactly
    the size of the archive member) before its data are read in bounded chunks,
    so memory only grows with bytes really present, and object arrays are refused
    without being unpickled. The zip's CRC-32 catches corrupted data.

    Raises:
        FileFormatError: not an npz archive, a missing key (the message lists
            the keys present), an object array, a malformed or truncated array,
            or one of more than ``max_bytes``.
        DTypeError, ShapeError, InvalidValueError: non-numeric data, mismatched
            or missing sample axes, NaN or infinite values.
    """
    source, dt = fspath(path, "path"), float_dtype(dtype)
    for arg, key in (("x_key", x_key), ("y_key", y_key)):
        if not isinstance(key, str):
            raise DTypeError(f"{arg} must be a str naming an array of the archive; "
                             f"got {describe(key)}")
    max_bytes = positive_int(max_bytes, "max_bytes")
    where_x, where_y = f"{source}: array {x_key!r}", f"{source}: array {y_key!r}"
    with open(source, "rb") as f:  # a missing file stays a FileNotFoundError
        try:
            with zipfile.ZipFile(f) as archive:
                members = {n[:-4]: archive.getinfo(n) for n in archive.namelist()
                           if n.endswith(".npy")}
                for arg, key in (("x_key", x_key), ("y_key", y_key)):
                    if key not in members:
                        raise FileFormatError(f"{source}: no array named {key!r} ({arg}); the "
                                              f"file holds {sorted(members)}")
                x = _read_npy_member(archive, members[x_key], where_x, max_bytes)
                y = _read_npy_member(archive, members[y_key], where_y, max_bytes)
        except BackpropError:
            raise
        except _ZIP_ERRORS as err:
            detail = str(err) or "the archive ends before the data it describes"
            raise FileFormatError(f"{source}: not an .npz archive, or a damaged one "
                                  f"({type(err).__name__}: {detail})") from err
    for array, where in ((x, where_x), (y, where_y)):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InvalidValueError(f"{where} holds {int(np.isnan(array).sum())} NaN and "
                                    f"{int(np.isinf(array).sum())} infinite values")
    _check_samples(x, y, where_x, where_y, x_key)
    int_labels = _labels(y, dt, where_y) if y.dtype.kind in "biu" else None  # checked first
    features = to_float(x, dt, where_x)
    return features, (int_labels if int_labels is not None else _labels(y, dt, where_y))


def load_npy(path: str | os.PathLike[str], labels: str | os.PathLike[str], *,
             dtype: Any = "float32", mmap: bool = True, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read features from one ``.npy`` file, memory-mapped, and labels from another.

    With ``mmap=True`` (the default) ``x`` is a read-only :class:`numpy.memmap` of the
    file: nothing is copied, and the operating system reads pages when they are touched
    and may drop them again, so :func:`backprop.fit` can train on a file larger than the
    memory (it gathers each batch's rows by index). ``backprop convert`` writes such
    files from a CSV or Parquet file.

    Args:
        path: the features, shape ``(N, ...)`` with at least 2 dimensions.
        labels: the labels or targets, shape ``(N,)`` or ``(N, k)``; always read into memory.
        dtype: the float dtype of ``x``. With ``mmap=True`` the file must already hold
            exactly this dtype (native byte order): a map cannot be converted without
            copying it, so anything else raises :class:`DTypeError` saying how to convert.
            With ``mmap=False`` the file is read into memory and converted by the rule of
            :func:`load_npz`.
        mmap: map the features instead of reading them.
        finite: scan ``x`` for NaN and infinity here (``False``: leave it to the caller, e.g. a
            data-parallel ``fit``, in which each process scans only its share of the rows; the
            labels are scanned either way).

    Returns:
        ``x`` as described; ``y``: int64 if stored as integers or booleans, else ``dtype``.

    Checks: each header (numeric dtype, at most 32 dimensions, exactly the size of the file)
    before any data; NaN and infinity in ``x`` and ``y``, read in blocks of rows (16 MB of
    float32 at a time), so a map is never read whole at once; one label row per sample.

    Raises:
        FileFormatError: not a ``.npy`` file, a malformed header, an object array, or a file
            whose size differs from its header's claim.
        DTypeError, ShapeError, InvalidValueError: as :func:`load_npz`; the message names
            the file (and for NaN or infinity the first row holding one).
    """
    source, label_source, dt = fspath(path, "path"), fspath(labels, "labels"), float_dtype(dtype)
    if not isinstance(mmap, (bool, np.bool_)):
        raise DTypeError(f"mmap must be True or False; got {describe(mmap)}")
    x = _map_npy(source, dt) if mmap else _read_npy_file(source)
    y = _read_npy_file(label_source)
    for array, where in ((x, source), (y, label_source)) if finite else ((y, label_source),):
        row = first_non_finite_row(array)
        if row is not None:
            raise InvalidValueError(f"{where}: row {row} holds NaN or infinite values; remove or "
                                    f"fill in missing values first")
    _check_samples(x, y, source, label_source, "x")
    return (x if mmap else to_float(x, dt, source)), _labels(y, dt, label_source)


def _check_samples(x: np.ndarray, y: np.ndarray, where_x: str, where_y: str, x_name: str) -> None:
    """``x`` is ``(N, ...)`` with N >= 1 and 2+ dimensions; ``y`` is ``(N,)`` or ``(N, k)``."""
    if x.ndim < 2 or len(x) == 0:
        raise ShapeError(f"{where_x} must have shape (N, ...) with N >= 1 and at least 2 "
                         f"dimensions (use x.reshape(-1, 1) for one feature); got shape {x.shape}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ShapeError(f"{where_y} must have shape ({len(x)},) or ({len(x)}, k) to match "
                         f"{x_name!r}; got shape {y.shape}")


def _labels(y: np.ndarray, dt: np.dtype, where: str) -> np.ndarray:
    """Stored labels: integers and booleans as int64 class indices, floats rounded to ``dt``."""
    if y.dtype.kind in "biu":
        if y.size and int(y.max()) > np.iinfo(np.int64).max:
            raise DTypeError(f"{where} holds integers beyond the int64 range")
        return y.astype(np.int64)
    return to_float(y, dt, where)


#: what a damaged zip archive can raise from the standard library: bad structures, seeks
#: to impossible offsets, truncated members, unknown compression methods, encrypted members
#: (RuntimeError), undecodable names, corrupt compressed streams
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, ValueError,
    UnicodeDecodeError, zlib.error, struct.error, KeyError, IndexError, OverflowError,
)
try:
    import lzma

    _ZIP_ERRORS += (lzma.LZMAError,)
except ImportError:  # Python built without lzma: zipfile cannot open such members anyway
    pass


def _read_npy_header(f: IO[bytes], where: str) -> Header:
    """The shape, order and dtype of the ``.npy`` stream ``f``, which is left at the data.

    The header must describe a numeric array (no objects, fields or sub-arrays) of at most
    32 dimensions; nothing is allocated from its claims.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(f)
        else:
            raise FileFormatError(f"{where}: .npy format version {version} is not supported "
                                  f"(numeric arrays are written in 1.0 or 2.0)")
    # the header is a Python literal parsed by NumPy's safe evaluator: a damaged one can
    # fail in any of these ways (MemoryError/RecursionError: absurdly nested brackets)
    except (ValueError, TypeError, SyntaxError, KeyError, OverflowError, RecursionError,
            MemoryError, UnicodeDecodeError) as err:
        if isinstance(err, BackpropError):
            raise
        raise FileFormatError(f"{where} has a malformed .npy header ({err})") from None
    if dtype.hasobject:
        raise FileFormatError(f"{where} holds Python objects (dtype {dtype}); they are refused "
                              f"because unpickling them can run code. Save numeric arrays")
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise DTypeError(f"{where} must hold numbers; got dtype {dtype}")
    if len(shape) > MAX_NDIM:
        raise FileFormatError(f"{where}: its header gives {len(shape)} dimensions; at most "
                              f"{MAX_NDIM} are supported")
    return shape, fortran_order, dtype


def _read_npy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                     max_bytes: int) -> np.ndarray:
    """The array stored in the ``.npy`` member ``info``, read without trusting its header.

    The header must describe a numeric array of at most ``max_bytes`` that fills the
    member exactly; the data are then read in chunks (never allocated from the claim).
    """
    with archive.open(info) as f:
        shape, fortran_order, dtype = _read_npy_header(f, where)
        nbytes = math.prod(shape) * dtype.itemsize
        claim = f"its header claims shape {shape} of {dtype} ({nbytes} bytes)"
        if nbytes > max_bytes or math.prod(d for d in shape if d) * dtype.itemsize > max_bytes:
            raise FileFormatError(f"{where}: {claim}, more than max_bytes={max_bytes}")
        if f.tell() + nbytes != info.file_size:
            raise FileFormatError(f"{where}: {claim}, but the archive holds "
                                  f"{info.file_size - f.tell()} data bytes")
        data = bytearray()
        while len(data) < nbytes:  # grows with the bytes really there, never by the claim
            chunk = f.read(min(CHUNK, nbytes - len(data)))
            if not chunk:
                raise FileFormatError(f"{where}: truncated: {claim}, the data end after "
                                      f"{len(data)} bytes")
            data += chunk
        if f.read(1):  # also completes the CRC-32 check of the member
            raise FileFormatError(f"{where}: trailing bytes after the {nbytes} data bytes")
    return _shaped(np.frombuffer(data, dtype=dtype), shape, fortran_order)


def _shaped(flat: np.ndarray, shape: tuple[int, ...], fortran_order: bool) -> np.ndarray:
    return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)


def _checked_npy(f: IO[bytes], source: str) -> tuple[Header, int]:
    """Header and data offset of the ``.npy`` file ``f``, whose size must match the claim."""
    shape, fortran_order, dtype = _read_npy_header(f, source)
    offset, size = f.tell(), os.fstat(f.fileno()).st_size
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != size:
        problem = "truncated" if offset + nbytes > size else "trailing bytes"
        raise FileFormatError(f"{source}: {problem}: its header claims shape {shape} of {dtype} "
                              f"({nbytes} bytes after a {offset}-byte header), but the file has "
                              f"{size} bytes")
    return (shape, fortran_order, dtype), offset


def _read_npy_file(source: str) -> np.ndarray:
    """The whole array of the ``.npy`` file ``source``, read into memory once its header is
    checked against the file's size."""
    with open(source, "rb") as f:
        (shape, fortran_order, dtype), _ = _checked_npy(f, source)
        flat = np.fromfile(f, dtype=dtype, count=math.prod(shape))
    return _shaped(flat, shape, fortran_order)


def _map_npy(source: str, dt: np.dtype) -> np.ndarray:
    """The array of the ``.npy`` file ``source`` as a read-only memory map of dtype ``dt``."""
    with open(source, "rb") as f:
        (shape, fortran_order, dtype), offset = _checked_npy(f, source)
    if dtype != dt:
        if dtype.kind != "f":
            hint = "scale integer data to floats and save them, e.g. np.save(path, x / 255)"
        elif not dtype.isnative:
            hint = f"save it in native byte order (np.save(path, x.astype({dt.name!r})))"
        else:
            hint = (f"save it as {dt.name} (np.save(path, x.astype({dt.name!r}))), or load it "
                    f"with dtype={dtype.name!r}")
        raise DTypeError(f"{source} holds {dtype.str} data, but dtype={dt.name} was asked for and "
                         f"a memory map cannot be converted without copying it; {hint}, or pass "
                         f"mmap=False to read and convert it in memory")
    if math.prod(shape) == 0:  # nothing to map (mmap refuses empty regions)
        return _shaped(np.empty(0, dtype), shape, fortran_order)
    order: Literal["C", "F"] = "F" if fortran_order else "C"
    return np.memmap(source, dtype=dt, mode="r", offset=offset, shape=shape, order=order)
