"""Data sets: an IDX reader, MNIST (embedded), Fashion-MNIST and KMNIST (read from
a local directory or downloaded, SHA-256 checked), and user data from CSV or NPZ.

Every loader returns arrays in the library's layout, one sample per row::

    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_train.shape, x_train.dtype   # (60000, 784) float32, pixel / 255 in [0, 1]
    y_train.shape, y_train.dtype   # (60000,) int64, class indices 0..9

The rules that every function here follows:

* A header is never trusted with memory. :func:`read_idx` checks the size a
  header claims against the bytes really present before it allocates, and
  :func:`load_npz` does the same for each array it reads.
* A published data set must match the SHA-256 recorded here, whether it is
  embedded, in a local directory or downloaded. A download goes to a temporary
  file in the cache directory, is checked, and only then renamed into place, so
  an interrupted or tampered download never leaves a file that a later call loads.
* Nothing executes code on load (no pickle: ``.npz`` members are parsed here and
  object arrays refused unread), and nothing is
  converted silently: the only conversion is the one the ``dtype`` argument
  asks for, and one that would lose more than float rounding raises.
* Nothing is cached in memory: each call reads and checks its files afresh
  (about half a second for MNIST) and returns writable arrays the caller owns.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import io
import math
import os
import struct
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._atomic import write_atomically
from .._validation import describe, positive_int
from ..errors import (
    BackpropError,
    ChecksumError,
    ConfigError,
    DatasetUnavailableError,
    DTypeError,
    FileFormatError,
    InvalidValueError,
    ShapeError,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "load_csv",
    "load_fashion_mnist",
    "load_kmnist",
    "load_mnist",
    "load_npz",
    "read_idx",
]

Split = tuple[np.ndarray, np.ndarray]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")

_CHUNK = 1 << 16  # bytes read at a time from a gzip stream or a download
_MAX_NDIM = 32  # dimensions of an IDX or .npy array (NumPy's limit is 32 or 64)
_TIMEOUT = 60.0  # seconds a download may wait on the network before giving up

# ---------------------------------------------------------------------------- IDX

# type code -> element dtype; every multi-byte IDX type is big-endian
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
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
    source = _fspath(path, "path")
    max_bytes = positive_int(max_bytes, "max_bytes")
    with open(source, "rb") as f:
        return _parse_idx(f, source, os.fstat(f.fileno()).st_size, max_bytes)


def _parse_idx(f: IO[bytes], source: str, size: int, max_bytes: int) -> np.ndarray:
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


def _parse_idx_stream(stream: IO[bytes], source: str, max_bytes: int,
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
    if ndim > _MAX_NDIM:
        raise FileFormatError(f"{source}: IDX header gives {ndim} dimensions; at most "
                              f"{_MAX_NDIM} are supported")
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
        chunk = stream.read(min(_CHUNK, nbytes - len(data)))
        if not chunk:
            raise FileFormatError(f"{source}: truncated: {claim}, the data ends after {len(data)}")
        data += chunk
    if stream.read(1):
        raise FileFormatError(f"{source}: trailing bytes: {claim}, the file holds more")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_upto(stream: IO[bytes], n: int) -> bytes:
    """Up to ``n`` bytes of ``stream``: fewer only at its end."""
    out = b""
    while len(out) < n and (chunk := stream.read(n - len(out))):
        out += chunk
    return out


# ------------------------------------------------------- MNIST and its look-alikes

_SPLITS = (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
           ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))

# SHA-256 of the embedded files (as published in the project's data/mnist/README.md).
_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz":
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz":
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz":
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}


@dataclass(frozen=True)
class _Remote:
    """A downloadable IDX data set: where it lives and what its files must be."""

    title: str  # for messages
    name: str  # subdirectory of the cache
    mirrors: tuple[str, ...]  # base URLs, tried in order
    files: dict[str, tuple[str, int]]  # file name -> (SHA-256, size in bytes)


# SHA-256 and sizes: tensorflow/datasets, tensorflow_datasets/url_checksums/fashion_mnist.txt
# and kmnist.txt (commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5); the same values appear in
# torchvision-ruby, chainer and other public loaders. The S3 website endpoint serves plain
# HTTP only: the SHA-256 check, not the transport, is what makes a download trustworthy.
_REMOTES = {
    "fashion_mnist": _Remote("Fashion-MNIST", "fashion_mnist", (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ), {
        "train-images-idx3-ubyte.gz":
            ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        "train-labels-idx1-ubyte.gz":
            ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        "t10k-images-idx3-ubyte.gz":
            ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        "t10k-labels-idx1-ubyte.gz":
            ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    }),
    "kmnist": _Remote("KMNIST", "kmnist", (
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ), {
        "train-images-idx3-ubyte.gz":
            ("51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4", 18165135),
        "train-labels-idx1-ubyte.gz":
            ("e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17", 29497),
        "t10k-images-idx3-ubyte.gz":
            ("edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5", 3041136),
        "t10k-labels-idx1-ubyte.gz":
            ("20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c", 5120),
    }),
}


_REINSTALL = "the installed package is damaged; reinstall backprop"


def load_mnist(*, dtype: Any = "float32", flatten: bool = True,
               normalize: bool = True) -> tuple[Split, Split]:
    """MNIST handwritten digits, from the copy embedded in the package.

    Returns ``((x_train, y_train), (x_test, y_test))``:

    * ``x``: ``(60000, 784)`` and ``(10000, 784)`` of ``dtype``, pixel / 255 in
      [0, 1]; ``(N, 28, 28)`` with ``flatten=False``; with ``normalize=False``
      the raw pixel values 0..255 (``dtype="uint8"`` gives the file's bytes).
    * ``y``: ``(N,)`` int64 class indices 0..9.

    Each file's SHA-256 is checked before it is parsed (:class:`ChecksumError`
    if it differs). Nothing is cached: every call returns fresh, writable arrays.
    """
    dt = _image_dtype(dtype, normalize)
    root = files(__package__).joinpath("data").joinpath("mnist")
    blobs = {}
    for name, sha256 in _MNIST_SHA256.items():
        where = root.joinpath(name)
        blobs[name] = (_verified(where.read_bytes(), sha256, str(where), _REINSTALL), str(where))
    return _assemble(blobs, dt, flatten, normalize)


def load_fashion_mnist(*, dtype: Any = "float32", flatten: bool = True, normalize: bool = True,
                       data_dir: str | os.PathLike[str] | None = None,
                       cache_dir: str | os.PathLike[str] | None = None,
                       download: bool = True) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando): 28x28 grey images of clothes in 10 classes.

    Same return convention, shapes and dtypes as :func:`load_mnist` (60,000
    training and 10,000 test images); class names are in ``FASHION_MNIST_CLASSES``.

    Each of the four standard files (``train-images-idx3-ubyte.gz``, ...) is
    looked for in ``data_dir`` (when given), then in ``cache_dir/fashion_mnist``
    (default cache: ``$BACKPROP_DATA``, else ``~/.cache/backprop``), and is
    otherwise downloaded into the cache when ``download`` is true. Every copy
    must have the official SHA-256 (:class:`ChecksumError` otherwise).

    Raises:
        DatasetUnavailableError: a file is in neither directory and cannot be
            downloaded; the message says how to provide it.
    """
    dt = _image_dtype(dtype, normalize)  # before any download
    blobs = _fetch(_REMOTES["fashion_mnist"], data_dir, cache_dir, download)
    return _assemble(blobs, dt, flatten, normalize)


def load_kmnist(*, dtype: Any = "float32", flatten: bool = True, normalize: bool = True,
                data_dir: str | os.PathLike[str] | None = None,
                cache_dir: str | os.PathLike[str] | None = None,
                download: bool = True) -> tuple[Split, Split]:
    """Kuzushiji-MNIST (ROIS-DS CODH): 28x28 images of 10 cursive Japanese characters.

    Same arguments, return convention, shapes and dtypes as
    :func:`load_fashion_mnist` (cache subdirectory ``kmnist``); class names
    (romanised) are in ``KMNIST_CLASSES``.
    """
    dt = _image_dtype(dtype, normalize)  # before any download
    blobs = _fetch(_REMOTES["kmnist"], data_dir, cache_dir, download)
    return _assemble(blobs, dt, flatten, normalize)


def _assemble(blobs: dict[str, tuple[bytes, str]], dt: np.dtype, flatten: bool,
              normalize: bool) -> tuple[Split, Split]:
    """Parse checked file contents into the two ``(x, y)`` splits of images in ``dt``."""
    splits = []
    for images_name, labels_name in _SPLITS:
        (images_data, images_src), (labels_data, labels_src) = (blobs[images_name],
                                                                blobs[labels_name])
        images = _parse_idx(io.BytesIO(images_data), images_src, len(images_data), 2**31)
        labels = _parse_idx(io.BytesIO(labels_data), labels_src, len(labels_data), 2**31)
        if images.dtype != np.uint8 or images.ndim != 3 or labels.dtype != np.uint8 \
                or labels.shape != images.shape[:1]:
            raise FileFormatError(f"{images_src} and {labels_src}: expected uint8 images (N, rows, "
                                  f"cols) and N uint8 labels; got {describe(images)} and "
                                  f"{describe(labels)}")
        x = images.astype(dt, copy=False)
        if normalize:
            x /= 255
        if flatten:
            x = x.reshape(len(x), -1)
        splits.append((x, labels.astype(np.int64)))
    return splits[0], splits[1]


def _image_dtype(dtype: Any, normalize: bool) -> np.dtype:
    dt = _dtype(dtype)
    if normalize and dt.kind != "f":
        raise DTypeError(f"dtype must be a float dtype when normalize=True (pixel / 255 lies in "
                         f"[0, 1]); got {dt}. Pass normalize=False for raw pixel values")
    if not normalize and (dt.kind not in "uif" or not np.can_cast(np.uint8, dt)):
        raise DTypeError(f"dtype must hold the pixel values 0..255 when normalize=False (uint8, "
                         f"a wider integer or a float); got {dt}")
    return dt


def _fetch(remote: _Remote, data_dir: Any, cache_dir: Any,
           download: bool) -> dict[str, tuple[bytes, str]]:
    """The checked contents of ``remote``'s files: name -> (bytes, where they came from)."""
    local = Path(_fspath(data_dir, "data_dir")).expanduser() if data_dir is not None else None
    if cache_dir is None:
        cache_dir = os.environ.get("BACKPROP_DATA") or Path.home() / ".cache" / "backprop"
    cache = Path(_fspath(cache_dir, "cache_dir")).expanduser() / remote.name
    blobs = {}
    for name, (sha256, size) in remote.files.items():
        tried = []
        if local is not None:
            if (local / name).is_file():
                hint = f"it is not the official {remote.title} file; replace it or remove it"
                blobs[name] = (_verified((local / name).read_bytes(), sha256, str(local / name),
                                         hint), str(local / name))
                continue
            tried.append(f"not in data_dir {local}")
        if not (cache / name).is_file():
            tried.append(f"not in the cache {cache}")
            if not download:
                tried.append("download=False")
            for url in (m + name for m in remote.mirrors if download):
                try:
                    _download(url, cache / name, sha256, size)
                    break
                except (OSError, http.client.HTTPException, ValueError) as err:
                    if isinstance(err, ChecksumError):
                        raise
                    tried.append(f"downloading {url} failed ({err})")
            else:
                options = (f"put the files {', '.join(remote.files)} (from {remote.mirrors[0]}) "
                           f"in a directory and pass data_dir=DIR (command line: --data-dir DIR), "
                           f"or allow the download (download=True) on a machine with network "
                           f"access")
                raise DatasetUnavailableError(f"{remote.title} file {name} is not available: "
                                              f"{'; '.join(tried)}. Either {options}")
        hint = "delete it to download it afresh"
        blobs[name] = (_verified((cache / name).read_bytes(), sha256, str(cache / name), hint),
                       str(cache / name))
    return blobs


def _download(url: str, dest: Path, sha256: str, size: int, timeout: float = _TIMEOUT) -> None:
    """Download ``url`` into ``dest`` only if its SHA-256 is ``sha256``.

    The bytes go to a temporary file beside ``dest`` that is renamed onto
    ``dest`` once checked, and deleted otherwise (also on interruption).
    Network failures raise ``OSError``/``http.client.HTTPException``; a
    mismatch or more than ``size`` bytes raises :class:`ChecksumError`.
    Tests replace this function (``monkeypatch.setattr(datasets, "_download", ...)``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)

    def fetch_and_verify(tmp: str) -> None:
        digest, received = hashlib.sha256(), 0
        request = urllib.request.Request(url, headers={"User-Agent": "backprop (urllib)"})
        with open(tmp, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                received += len(chunk)
                if received > size:
                    raise ChecksumError(f"{url}: the download exceeds the {size} bytes that the "
                                        f"official file has; refusing it")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ChecksumError(f"{url}: downloaded file has SHA-256 {digest.hexdigest()}, "
                                f"expected {sha256}; it was corrupted or tampered with and was "
                                f"not kept")

    write_atomically(dest, fetch_and_verify, suffix=".part")  # kept only once verified


def _verified(data: bytes, sha256: str, where: str, hint: str) -> bytes:
    """``data`` if its SHA-256 is ``sha256``, else :class:`ChecksumError` naming ``where``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ChecksumError(f"{where}: SHA-256 is {actual}, expected {sha256}; {hint}")
    return data


# -------------------------------------------------------------------- user data


def load_csv(path: str | os.PathLike[str], *, label_column: int | str = -1,
             header: bool | str = "auto", delimiter: str = ",",
             dtype: Any = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Read a numeric CSV file into features ``x`` and labels ``y``.

    Args:
        label_column: index (negative counts from the end) or header name of the
            column holding the labels; the other columns are the features.
        header: ``True`` (the first row is a header), ``False``, or ``"auto"``:
            a header if some cell of the first row is not a number.
        delimiter: the one-character field separator.
        dtype: float dtype of ``x`` (and of ``y`` when it is not integral).

    Returns:
        ``x`` of shape ``(N, columns - 1)`` and ``dtype``; ``y`` of shape
        ``(N,)``, int64 if every label is a whole number, else ``dtype``.

    Conversion rule: cells are parsed as float64 and rounded once to ``dtype``,
    the precision the caller asked for; a value that would overflow ``dtype``
    raises :class:`InvalidValueError`. Blank lines are skipped.

    Raises:
        FileFormatError: empty file, no data rows, fewer than two columns,
            ragged rows or non-numeric cells (naming the line and column).
        InvalidValueError: NaN or infinite cells (naming the line and column).
        ConfigError: a bad ``label_column``, ``header`` or ``delimiter``.
    """
    source, dt = _fspath(path, "path"), _float_dtype(dtype)
    if header not in ("auto", True, False):
        raise ConfigError(f"header must be 'auto', True or False; got {header!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ConfigError(f"delimiter must be a single character; got {delimiter!r}")
    try:
        with open(source, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise FileFormatError(f"{source}: not a readable UTF-8 CSV file ({err})") from err
    if not rows:
        raise FileFormatError(f"{source}: empty CSV file: no rows")
    names = None
    if header is True or (header == "auto" and not all(_is_number(c) for c in rows[0][1])):
        names, rows = [c.strip() for c in rows[0][1]], rows[1:]
        if not rows:
            raise FileFormatError(f"{source}: the CSV file has a header row but no data rows")
    width = len(names) if names is not None else len(rows[0][1])
    if width < 2:
        raise FileFormatError(f"{source}: needs at least 2 columns (features and a label); "
                              f"the first row has {width}")
    label = _label_index(label_column, names, width, source)
    data = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            first = "the header" if names is not None else f"line {rows[0][0]}"
            raise FileFormatError(f"{source}: line {line} has {len(row)} fields; expected "
                                  f"{width} like {first}")
        try:
            data[i] = list(map(float, row))
        except ValueError:
            col = next(j for j, cell in enumerate(row) if not _is_number(cell))
            raise FileFormatError(f"{source}: line {line}, column {_column(col, names)}: "
                                  f"{row[col].strip()!r} is not a number") from None
    bad = np.argwhere(~np.isfinite(data))
    if len(bad):
        (i, col), line = bad[0], rows[bad[0][0]][0]
        raise InvalidValueError(f"{source}: line {line}, column {_column(col, names)}: "
                                f"{rows[i][1][col].strip()!r} is not finite; remove or fill in "
                                f"missing values first")
    y = data[:, label]
    x = _to_float(np.delete(data, label, axis=1), dt, f"{source}: features")
    if np.all(y == np.round(y)) and np.all(np.abs(y) <= 2**53):
        return x, y.astype(np.int64)
    return x, _to_float(y, dt, f"{source}: labels")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column(index: int, names: list[str] | None) -> str:
    """A 1-based column number for messages, with its header name if there is one."""
    return f"{index + 1} ({names[index]!r})" if names is not None else str(index + 1)


def _label_index(label_column: Any, names: list[str] | None, width: int, source: str) -> int:
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
    source, dt = _fspath(path, "path"), _float_dtype(dtype)
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
    if x.ndim < 2 or len(x) == 0:
        raise ShapeError(f"{where_x} must have shape (N, ...) with N >= 1 and at least 2 "
                         f"dimensions (use x.reshape(-1, 1) for one feature); got shape {x.shape}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ShapeError(f"{where_y} must have shape ({len(x)},) or ({len(x)}, k) to match "
                         f"{x_key!r}; got shape {y.shape}")
    if y.dtype.kind in "biu":
        if y.size and int(y.max()) > np.iinfo(np.int64).max:
            raise DTypeError(f"{where_y} holds integers beyond the int64 range")
        return _to_float(x, dt, where_x), y.astype(np.int64)
    return _to_float(x, dt, where_x), _to_float(y, dt, where_y)


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


def _read_npy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                     max_bytes: int) -> np.ndarray:
    """The array stored in the ``.npy`` member ``info``, read without trusting its header.

    The header must describe a numeric array of at most ``max_bytes`` that fills the
    member exactly; the data are then read in chunks (never allocated from the claim).
    """
    fmt = np.lib.format
    with archive.open(info) as f:
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
        if len(shape) > _MAX_NDIM:
            raise FileFormatError(f"{where}: its header gives {len(shape)} dimensions; at most "
                                  f"{_MAX_NDIM} are supported")
        nbytes = math.prod(shape) * dtype.itemsize
        claim = f"its header claims shape {shape} of {dtype} ({nbytes} bytes)"
        if nbytes > max_bytes or math.prod(d for d in shape if d) * dtype.itemsize > max_bytes:
            raise FileFormatError(f"{where}: {claim}, more than max_bytes={max_bytes}")
        if f.tell() + nbytes != info.file_size:
            raise FileFormatError(f"{where}: {claim}, but the archive holds "
                                  f"{info.file_size - f.tell()} data bytes")
        data = bytearray()
        while len(data) < nbytes:  # grows with the bytes really there, never by the claim
            chunk = f.read(min(_CHUNK, nbytes - len(data)))
            if not chunk:
                raise FileFormatError(f"{where}: truncated: {claim}, the data end after "
                                      f"{len(data)} bytes")
            data += chunk
        if f.read(1):  # also completes the CRC-32 check of the member
            raise FileFormatError(f"{where}: trailing bytes after the {nbytes} data bytes")
    if fortran_order:
        return np.frombuffer(data, dtype=dtype).reshape(shape[::-1]).T
    return np.frombuffer(data, dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------- helpers


def _fspath(path: Any, name: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise DTypeError(f"{name} must be a str or os.PathLike; got {describe(path)}")
    return os.fsdecode(path)


def _dtype(dtype: Any) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError as err:
        raise DTypeError(f"dtype must be a NumPy dtype such as 'float32'; got {dtype!r}") from err


def _float_dtype(dtype: Any) -> np.dtype:
    dt = _dtype(dtype)
    if dt.kind != "f":
        raise DTypeError(f"dtype must be a float dtype such as 'float32' or 'float64'; got {dt}")
    return dt


def _to_float(a: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """``a`` (finite floats, integers or booleans) as ``dtype``, refusing any loss but rounding."""
    if a.dtype.kind in "biu" and a.size:
        limit = 2 ** (np.finfo(dtype).nmant + 1)  # every integer up to this is exact
        if max(-int(a.min()), int(a.max())) > limit:
            raise DTypeError(f"{where} holds integers up to {max(-int(a.min()), int(a.max()))}, "
                             f"which {dtype} cannot hold exactly (limit {limit}); convert it "
                             f"yourself or pass dtype='float64'")
    with np.errstate(over="ignore"):
        out = a.astype(dtype)
    if not np.isfinite(out).all():
        raise InvalidValueError(f"{where} holds values beyond the range of {dtype}")
    return out
