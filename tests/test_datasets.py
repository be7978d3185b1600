"""Tests of backprop.datasets: IDX, MNIST, downloads, CSV and NPZ."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import tempfile
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backprop import datasets
from backprop.datasets import mnist as mnist_sets
from backprop.errors import (
    ChecksumError,
    ConfigError,
    DatasetUnavailableError,
    DTypeError,
    FileFormatError,
    InvalidValueError,
    ShapeError,
)

TYPE_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C,
              "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, written by hand, independently of the reader."""
    code = TYPE_CODES[array.dtype.name]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    values = np.arange(int(np.prod(shape))) * 37 % 251 - (0 if dtype == "uint8" else 100)
    if dtype.startswith("float"):
        values = values / 7.0
    return values.astype(dtype).reshape(shape)


# ---------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 2), (0, 3)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, shape, gz):
    array = sample(dtype, shape)
    out = datasets.read_idx(write_idx(tmp_path / "a.idx", array, gz))
    assert out.shape == shape
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_known_bytes(tmp_path):
    # int16 [[1, -2, 258]]: header 00 00 0B 02, dims 1 and 3, then big-endian values
    raw = bytes.fromhex("00000B02" "00000001" "00000003" "0001" "FFFE" "0102")
    (tmp_path / "k").write_bytes(raw)
    out = datasets.read_idx(tmp_path / "k")
    assert out.tolist() == [[1, -2, 258]] and out.dtype == np.int16


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(st.sampled_from([np.dtype(n) for n in TYPE_CODES]),
                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
                  elements={"allow_nan": False}),
       st.booleans())
def test_read_idx_round_trip_property(array, gz):
    with tempfile.TemporaryDirectory() as tmp:
        out = datasets.read_idx(str(write_idx(Path(tmp) / "p", array, gz)))
    assert out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_gzip_detected_by_content_not_name(tmp_path):
    array = sample("int32", (4, 2))
    np.testing.assert_array_equal(datasets.read_idx(write_idx(tmp_path / "raw.gz", array)), array)
    np.testing.assert_array_equal(
        datasets.read_idx(write_idx(tmp_path / "zipped.idx", array, gz=True)), array)


def test_read_idx_writable_and_owned(tmp_path):
    out = datasets.read_idx(write_idx(tmp_path / "a", sample("uint8", (3, 3))))
    out[0, 0] = 7
    assert out[0, 0] == 7


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize("raw, message", [
    (b"", "starts with nothing"),
    (b"\x00\x00", "starts with 00 00"),
    (b"\x01\x00" + GOOD[2:], "not an IDX file"),
    (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0A"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (GOOD[:6], "truncated IDX header"),
    (GOOD[:-1], "truncated"),
    (GOOD + b"\x00", "trailing bytes"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_malformed(tmp_path, raw, message, gz):
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(FileFormatError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(GOOD))
    data[12:16] = b"\xff\xff\xff\xff"  # inside the deflate stream
    (tmp_path / "c.gz").write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="c.gz"):
        datasets.read_idx(tmp_path / "c.gz")
    (tmp_path / "t.gz").write_bytes(gzip.compress(GOOD)[:-12])  # stream cut short
    with pytest.raises(FileFormatError, match="t.gz"):
        datasets.read_idx(tmp_path / "t.gz")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [(2**31,), (2**15, 2**16), (2**32 - 1, 2**32 - 1, 7)])
def test_huge_header_fails_fast_without_allocating(tmp_path, gz, dims):
    raw = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(80)
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(FileFormatError, match="truncated|max_bytes"):
            datasets.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert time.perf_counter() - start < 1.0


def test_read_idx_max_bytes(tmp_path):
    path = write_idx(tmp_path / "a", np.zeros((10, 10), np.float64))  # 800 data bytes
    assert datasets.read_idx(path, max_bytes=800).shape == (10, 10)
    with pytest.raises(FileFormatError, match="more than max_bytes=799"):
        datasets.read_idx(path, max_bytes=799)


def test_read_idx_argument_errors(tmp_path):
    with pytest.raises(DTypeError, match="path must be a str or os.PathLike"):
        datasets.read_idx(3)
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "missing.idx")


# -------------------------------------------------------------------------- MNIST

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return datasets.load_mnist()


def test_load_mnist_default(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.shape == (60000,) and y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_load_mnist_raw_pixels(mnist):
    (x_train, _), (x_test, _) = mnist
    (raw_train, _), (raw_test, _) = datasets.load_mnist(dtype="uint8", flatten=False,
                                                        normalize=False)
    assert raw_train.shape == (60000, 28, 28) and raw_train.dtype == np.uint8
    assert raw_test.shape == (10000, 28, 28)
    np.testing.assert_array_equal(raw_test.reshape(10000, 784) / np.float32(255), x_test)
    # every image has some ink and all of its pixels are bytes
    assert (raw_train.reshape(60000, -1).max(axis=1) > 0).all()
    assert int(raw_train[0].sum()) == int(round(float(x_train[0].astype(np.float64).sum()) * 255))


def test_load_mnist_float64_unflattened(mnist):
    (_, _), (x_test, _) = datasets.load_mnist(dtype="float64", flatten=False)
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.float64
    np.testing.assert_allclose(x_test.reshape(10000, 784), mnist[1][0], rtol=1e-6)


def test_load_mnist_returns_fresh_arrays(mnist):
    (x1, y1), _ = datasets.load_mnist()
    x1[0, 0] = 5.0
    y1[0] = 9
    (x2, y2), _ = datasets.load_mnist()
    assert x2[0, 0] == 0.0 and y2[0] == 5


@pytest.mark.parametrize("kwargs", [{"dtype": "uint8"}, {"dtype": "int8", "normalize": False},
                                    {"dtype": "nonsense"}])
def test_load_mnist_bad_dtype(kwargs):
    with pytest.raises(DTypeError, match="dtype"):
        datasets.load_mnist(**kwargs)


def test_load_mnist_checksum_mismatch(monkeypatch):
    monkeypatch.setitem(mnist_sets._MNIST_SHA256, "t10k-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz.*expected 0{64}"):
        datasets.load_mnist()


def test_remote_tables_are_well_formed():
    for remote in mnist_sets._REMOTES.values():
        assert set(remote.files) == {name for pair in mnist_sets._SPLITS for name in pair}
        for sha, size in remote.files.values():
            assert len(sha) == 64 and int(sha, 16) >= 0 and size > 1000
    fashion = mnist_sets._REMOTES["fashion_mnist"]
    assert fashion.mirrors[0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert fashion.files["train-images-idx3-ubyte.gz"][0].startswith("3aede38d")
    assert mnist_sets._REMOTES["kmnist"].files["t10k-labels-idx1-ubyte.gz"][0].startswith("20bb9a0e")


# ---------------------------------------------------------------- downloads, data_dir

RNG = np.random.default_rng(0)
FAKE = {  # a tiny look-alike of the four files
    "train-images-idx3-ubyte.gz": RNG.integers(0, 256, (6, 28, 28), dtype=np.uint8),
    "train-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8),
    "t10k-images-idx3-ubyte.gz": RNG.integers(0, 256, (2, 28, 28), dtype=np.uint8),
    "t10k-labels-idx1-ubyte.gz": np.array([2, 7], dtype=np.uint8),
}
FAKE_GZ = {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in FAKE.items()}


def fake_remote(base_url: str, **overrides: tuple[str, int]) -> mnist_sets._Remote:
    table = {name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in FAKE_GZ.items()}
    table.update(overrides)
    return mnist_sets._Remote("Fake-MNIST", "fake", (base_url,), table)


def write_fakes(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in FAKE_GZ.items():
        (directory / name).write_bytes(data)
    return directory


def check_fake(result) -> None:
    (x_train, y_train), (x_test, y_test) = result
    assert x_train.shape == (6, 784) and x_train.dtype == np.float32
    np.testing.assert_array_equal(x_train * np.float32(255),
                                  FAKE["train-images-idx3-ubyte.gz"].reshape(6, 784))
    assert y_train.tolist() == [3, 1, 4, 1, 5, 9] and y_train.dtype == np.int64
    assert x_test.shape == (2, 784) and y_test.tolist() == [2, 7]


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a fresh directory; yields (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_lands_in_cache(server, tmp_path, monkeypatch):
    root, url = server
    write_fakes(root)
    monkeypatch.setitem(mnist_sets._REMOTES, "fashion_mnist", fake_remote(url))
    cache = tmp_path / "cache"
    check_fake(datasets.load_fashion_mnist(cache_dir=cache))
    assert sorted(os.listdir(cache / "fake")) == sorted(FAKE_GZ)  # no temporary files left
    for name, data in FAKE_GZ.items():
        assert (cache / "fake" / name).read_bytes() == data
    for name in FAKE_GZ:  # the server is no longer needed: the cache is used
        (root / name).unlink()
    check_fake(datasets.load_fashion_mnist(cache_dir=cache, download=False))


def test_tampered_download_raises_and_keeps_nothing(server, tmp_path, monkeypatch):
    root, url = server
    write_fakes(root)
    tampered = bytearray(FAKE_GZ["train-labels-idx1-ubyte.gz"])
    tampered[-9] ^= 1
    (root / "train-labels-idx1-ubyte.gz").write_bytes(bytes(tampered))
    monkeypatch.setitem(mnist_sets._REMOTES, "kmnist", fake_remote(url))
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte.gz.*not kept"):
        datasets.load_kmnist(cache_dir=cache)
    assert "train-labels-idx1-ubyte.gz" not in os.listdir(cache / "fake")
    assert not [n for n in os.listdir(cache / "fake") if n.endswith(".part")]


def test_oversized_download_refused(server, tmp_path, monkeypatch):
    root, url = server
    write_fakes(root)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(3 << 20))
    monkeypatch.setitem(mnist_sets._REMOTES, "kmnist", fake_remote(url))
    with pytest.raises(ChecksumError, match="exceeds"):
        datasets.load_kmnist(cache_dir=tmp_path / "cache")
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(tmp_path / "cache" / "fake")


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    def broken(url, timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist_sets.urllib.request, "urlopen", broken)
    dest = tmp_path / "cache" / "f.gz"
    with pytest.raises(KeyboardInterrupt):
        mnist_sets._download("http://example.invalid/f.gz", dest, "0" * 64, 10)
    assert os.listdir(tmp_path / "cache") == []


def test_unreachable_url_gives_unavailable(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(mnist_sets._REMOTES, "fashion_mnist",
                        fake_remote(f"http://127.0.0.1:{port}/"))
    with pytest.raises(DatasetUnavailableError) as info:
        datasets.load_fashion_mnist(cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "data_dir=" in message and "--data-dir" in message and "downloading" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_file_on_server_gives_unavailable(server, tmp_path, monkeypatch):
    _, url = server  # serves an empty directory: 404
    monkeypatch.setitem(mnist_sets._REMOTES, "fashion_mnist", fake_remote(url))
    with pytest.raises(DatasetUnavailableError, match="404"):
        datasets.load_fashion_mnist(cache_dir=tmp_path / "cache")


def test_no_download_gives_unavailable(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(mnist_sets, "_download", never)
    with pytest.raises(DatasetUnavailableError, match="download=False.*--data-dir"):
        datasets.load_kmnist(cache_dir=tmp_path, download=False, data_dir=tmp_path / "nothing")


def test_bad_dtype_checked_before_any_download(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(mnist_sets, "_download", never)
    with pytest.raises(DTypeError, match="normalize=True"):
        datasets.load_fashion_mnist(dtype="uint8", cache_dir=tmp_path)


def test_data_dir_used_first(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(mnist_sets, "_download", never)
    monkeypatch.setitem(mnist_sets._REMOTES, "kmnist", fake_remote("http://unused/"))
    local = write_fakes(tmp_path / "local")
    check_fake(datasets.load_kmnist(data_dir=str(local), cache_dir=tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_data_dir_checksum_mismatch(tmp_path, monkeypatch):
    local = write_fakes(tmp_path / "local")
    monkeypatch.setitem(mnist_sets._REMOTES, "kmnist", fake_remote(
        "http://unused/", **{"t10k-images-idx3-ubyte.gz": ("f" * 64, 100)}))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz.*expected f{64}"):
        datasets.load_kmnist(data_dir=local, cache_dir=tmp_path / "cache", download=False)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    write_fakes(tmp_path / "env" / "fake")
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "env"))
    monkeypatch.setitem(mnist_sets._REMOTES, "fashion_mnist", fake_remote("http://unused/"))
    check_fake(datasets.load_fashion_mnist(download=False))


def test_corrupt_cache_file_is_reported(tmp_path, monkeypatch):
    cache = write_fakes(tmp_path / "fake")
    (cache / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    monkeypatch.setitem(mnist_sets._REMOTES, "fashion_mnist", fake_remote("http://unused/"))
    with pytest.raises(ChecksumError, match="delete it"):
        datasets.load_fashion_mnist(cache_dir=tmp_path, download=False)


# ---------------------------------------------------------------------------- CSV


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_header_by_name(tmp_path):
    path = write(tmp_path, "a,label,b\n1.5,0,2\n-3,2,4e1\n\n")
    x, y = datasets.load_csv(path, label_column="label")
    assert x.dtype == np.float32 and x.tolist() == [[1.5, 2.0], [-3.0, 40.0]]
    assert y.dtype == np.int64 and y.tolist() == [0, 2]


def test_csv_without_header_and_options(tmp_path):
    path = write(tmp_path, "1;2;3\n4;5;6\n")
    x, y = datasets.load_csv(path, delimiter=";", label_column=0, dtype="float64")
    assert x.dtype == np.float64 and x.tolist() == [[2, 3], [5, 6]] and y.tolist() == [1, 4]
    x, y = datasets.load_csv(path, delimiter=";", header=True)
    assert x.tolist() == [[4, 5]] and y.tolist() == [6]


def test_csv_float_labels_stay_float(tmp_path):
    x, y = datasets.load_csv(write(tmp_path, "1,0.25\n2,1\n"), header=False)
    assert y.dtype == np.float32 and y.tolist() == [0.25, 1.0] and x.tolist() == [[1], [2]]


@pytest.mark.parametrize("text, kwargs, error, message", [
    ("", {}, FileFormatError, "empty"),
    ("\n\n", {}, FileFormatError, "empty"),
    ("a,b\n", {}, FileFormatError, "no data rows"),
    ("1\n2\n", {}, FileFormatError, "at least 2 columns"),
    ("1,2,3\n4,5\n", {}, FileFormatError, "line 2 has 2 fields; expected 3"),
    ("a,b\n1,2\n3,x\n", {}, FileFormatError, r"line 3, column 2 \('b'\): 'x' is not a number"),
    ("1,2\n3,\n", {}, FileFormatError, "line 2, column 2: '' is not a number"),
    ("1,2\n3,4\nnan,1\n", {}, InvalidValueError, "line 3, column 1: 'nan' is not finite"),
    ("1,2\n3,-inf\n", {}, InvalidValueError, "line 2, column 2"),
    ("1,1e39\n", {}, InvalidValueError, "beyond the range of float32"),
    ("a,b\n1,2\n", {"label_column": "c"}, ConfigError, r"is not in the header.*\['a', 'b'\]"),
    ("1,2\n", {"label_column": "c"}, ConfigError, "no header row"),
    ("1,2\n", {"label_column": 2}, ConfigError, "out of range"),
    ("1,2\n", {"label_column": 1.0}, DTypeError, "label_column"),
    ("1,2\n", {"header": "yes"}, ConfigError, "header"),
    ("1,2\n", {"delimiter": ",,"}, ConfigError, "delimiter"),
    ("1,2\n", {"dtype": "int32"}, DTypeError, "float dtype"),
])
def test_csv_rejects(tmp_path, text, kwargs, error, message):
    path = write(tmp_path, text)
    with pytest.raises(error, match=message) as info:
        datasets.load_csv(path, **kwargs)
    if error is not DTypeError and "header" not in kwargs and "delimiter" not in kwargs:
        assert str(path) in str(info.value)


def test_csv_not_text(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xff\xfe\x00\x81,1\n")
    with pytest.raises(FileFormatError, match="UTF-8"):
        datasets.load_csv(path)


# ---------------------------------------------------------------------------- NPZ


def test_npz_good(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3) / 4
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 1, 0], dtype=np.uint8))
    xo, yo = datasets.load_npz(tmp_path / "d.npz")
    assert xo.dtype == np.float32 and yo.dtype == np.int64
    np.testing.assert_array_equal(xo, x.astype(np.float32))
    assert yo.tolist() == [0, 1, 1, 0]


def test_npz_keys_ints_and_float_targets(tmp_path):
    images = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2)
    np.savez_compressed(tmp_path / "d.npz", images=images, target=np.array([[0.5], [1.5]]))
    x, y = datasets.load_npz(tmp_path / "d.npz", x_key="images", y_key="target", dtype="float64")
    assert x.shape == (2, 2, 2) and x.dtype == np.float64 and x.max() == 7.0  # not rescaled
    assert y.dtype == np.float64 and y.tolist() == [[0.5], [1.5]]


@pytest.mark.parametrize("arrays, kwargs, error, message", [
    ({"x": np.ones((2, 2))}, {}, FileFormatError, r"no array named 'y' \(y_key\).*\['x'\]"),
    ({"a": np.ones((2, 2)), "y": np.ones(2)}, {}, FileFormatError, r"'x'.*\['a', 'y'\]"),
    ({"x": np.ones((2, 2)), "y": np.array([1, "a"], dtype=object)}, {}, FileFormatError,
     "Python objects"),
    ({"x": np.ones((2, 2)), "y": np.ones(3)}, {}, ShapeError, r"shape \(2,\)"),
    ({"x": np.ones(2), "y": np.ones(2)}, {}, ShapeError, "at least 2"),
    ({"x": np.zeros((0, 2)), "y": np.ones(0)}, {}, ShapeError, "N >= 1"),
    ({"x": np.array([["a", "b"]]), "y": np.ones(1)}, {}, DTypeError, "must hold numbers"),
    ({"x": np.array([[1.0, np.nan]]), "y": np.ones(1)}, {}, InvalidValueError, "1 NaN"),
    ({"x": np.array([[2**24 + 1, 0]]), "y": np.ones(1)}, {}, DTypeError, "exactly"),
    ({"x": np.array([[1e300, 0]]), "y": np.ones(1)}, {}, InvalidValueError, "range of float32"),
    ({"x": np.ones((1, 2)), "y": np.array([2**63], dtype=np.uint64)}, {}, DTypeError, "int64"),
])
def test_npz_rejects(tmp_path, arrays, kwargs, error, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(error, match=message) as info:
        datasets.load_npz(path, **kwargs)
    assert str(path) in str(info.value)


def test_npz_large_ints_fine_in_float64(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([[2**24 + 1, 0]]), y=np.array([1]))
    x, _ = datasets.load_npz(tmp_path / "d.npz", dtype="float64")
    assert x[0, 0] == 2**24 + 1


def test_npz_not_an_archive(tmp_path):
    np.save(tmp_path / "d.npy", np.ones((2, 2)))
    with pytest.raises(FileFormatError, match="not an .npz archive"):
        datasets.load_npz(tmp_path / "d.npy")


def test_npz_header_claiming_more_than_stored(tmp_path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += b" " * (117 - len(header)) + b"\n"
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive:
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header + bytes(16)
        archive.writestr("x.npy", npy)
        archive.writestr("y.npy", b"")
    tracemalloc.start()
    try:
        with pytest.raises(FileFormatError, match=r"claims shape \(100000, 100000\)"):
            datasets.load_npz(tmp_path / "d.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
