"""Data sets: an IDX reader, MNIST (embedded), Fashion-MNIST and KMNIST (read from
a local directory or downloaded, SHA-256 checked), and user data from CSV, NPZ,
memory-mapped NPY, Parquet and Arrow files.

Every loader returns arrays in the library's layout, one sample per row::

    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_train.shape, x_train.dtype   # (60000, 784) float32, pixel / 255 in [0, 1]
    y_train.shape, y_train.dtype   # (60000,) int64, class indices 0..9

The rules that every function here follows:

* A header is never trusted with memory. :func:`read_idx` checks the size a
  header claims against the bytes really present before it allocates, and
  :func:`load_npz` and :func:`load_npy` do the same for each array they read.
* A published data set must match the SHA-256 recorded here, whether it is
  embedded, in a local directory or downloaded. A download goes to a temporary
  file in the cache directory, is checked, and only then renamed into place, so
  an interrupted or tampered download never leaves a file that a later call loads.
* Nothing executes code on load (no pickle: ``.npz`` and ``.npy`` headers are parsed
  here and object arrays refused unread), and nothing is
  converted silently: the only conversion is the one the ``dtype`` argument
  asks for, and one that would lose more than float rounding raises.
* Nothing is cached in memory: each call reads and checks its files afresh
  (about half a second for MNIST) and returns writable arrays the caller owns
  (:func:`load_npy` excepted: its features are a read-only map of the file).
* Tables are read in blocks into arrays allocated once, so loading a file needs
  about the memory of its result, and no Python object is made per cell.

Modules: :mod:`.idx` (IDX), :mod:`.mnist` (MNIST and the downloads), :mod:`.csvfile`
with :mod:`.csv_engines`, :mod:`.csv_ranges` and :mod:`.csv_reference` (CSV),
:mod:`.tabular` (what the table readers share), :mod:`.arrays` (NPZ, NPY),
:mod:`.columnar` (Parquet, Arrow), :mod:`.convert` (to ``.npy``), :mod:`.files`
(by file suffix), :mod:`.images` (a PNG digit).
"""

from __future__ import annotations

from .arrays import load_npy, load_npz
from .columnar import load_arrow, load_parquet
from .convert import convert_to_npy
from .csvfile import CSV_ENGINES, load_csv
from .files import load_file
from .idx import read_idx
from .mnist import FASHION_MNIST_CLASSES, KMNIST_CLASSES, Split, load_fashion_mnist, load_kmnist, load_mnist

__all__ = [
    "CSV_ENGINES",
    "FASHION_MNIST_CLASSES",
    "KMNIST_CLASSES",
    "Split",
    "convert_to_npy",
    "load_arrow",
    "load_csv",
    "load_fashion_mnist",
    "load_file",
    "load_kmnist",
    "load_mnist",
    "load_npy",
    "load_npz",
    "load_parquet",
    "read_idx",
]
