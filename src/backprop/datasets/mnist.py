"""MNIST (embedded in the package) and its downloadable look-alikes, Fashion-MNIST and
KMNIST: four IDX files each, every copy checked against its published SHA-256.

A download goes to a temporary file in the cache directory, is checked, and only then
renamed into place, so an interrupted or tampered download never leaves a file that a
later call loads. Nothing is cached in memory: each call reads and checks its files afresh
(about half a second for MNIST) and returns writable arrays the caller owns.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import urllib.request
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomically
from .._validation import describe
from ..errors import ChecksumError, DatasetUnavailableError, DTypeError, FileFormatError
from ._common import CHUNK, as_dtype, fspath
from .idx import parse_idx

Split = tuple[np.ndarray, np.ndarray]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")

_TIMEOUT = 60.0  # seconds a download may wait on the network before giving up

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
    root = files(__package__ or "backprop.datasets").joinpath("data").joinpath("mnist")
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
        images = parse_idx(io.BytesIO(images_data), images_src, len(images_data), 2**31)
        labels = parse_idx(io.BytesIO(labels_data), labels_src, len(labels_data), 2**31)
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
    dt = as_dtype(dtype)
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
    local = Path(fspath(data_dir, "data_dir")).expanduser() if data_dir is not None else None
    if cache_dir is None:
        cache_dir = os.environ.get("BACKPROP_DATA") or Path.home() / ".cache" / "backprop"
    cache = Path(fspath(cache_dir, "cache_dir")).expanduser() / remote.name
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
            while chunk := resp.read(CHUNK):
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

