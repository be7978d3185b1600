"""User data beyond CSV: memory-mapped .npy (load_npy), Parquet and Arrow (load_parquet,
load_arrow), convert_to_npy and ``backprop convert``, load_file, and fit on a memory map."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest

import backprop as bp
from backprop import _validation, cli, datasets
from backprop._validation import check_finite, float_input
from backprop.datasets import _common, columnar
from backprop.errors import (
    ConfigError,
    DTypeError,
    FileFormatError,
    InvalidValueError,
    ShapeError,
)


def _has_pyarrow() -> bool:
    try:
        import pyarrow.feather  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


needs_pyarrow = pytest.mark.skipif(not _has_pyarrow(),
                                   reason="pyarrow is not installed (pip install 'backprop[data]')")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((50, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 50)


def save_xy(tmp_path, x=X, y=Y):
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "x.npy", tmp_path / "y.npy"


# ------------------------------------------------------------------------------ .npy
def test_load_npy_maps_the_file(tmp_path):
    x, y = datasets.load_npy(*save_xy(tmp_path))
    assert isinstance(x, np.memmap) and not x.flags.writeable
    assert x.dtype == np.float32 and x.shape == (50, 4)
    np.testing.assert_array_equal(x, X)
    assert y.dtype == np.int64 and y.tolist() == Y.tolist() and not isinstance(y, np.memmap)


def test_load_npy_targets_and_fortran_order(tmp_path):
    targets = RNG.standard_normal((50, 2))
    x, y = datasets.load_npy(*save_xy(tmp_path, x=np.asfortranarray(X), y=targets))
    np.testing.assert_array_equal(x, X)
    assert y.dtype == np.float32 and y.shape == (50, 2)


def test_load_npy_dtype_rule(tmp_path):
    xp, yp = save_xy(tmp_path, x=X.astype(np.float64))
    with pytest.raises(DTypeError, match=r"<f8 data, but dtype=float32.*mmap=False"):
        datasets.load_npy(xp, yp)
    x, _ = datasets.load_npy(xp, yp, dtype="float64")
    assert isinstance(x, np.memmap) and x.dtype == np.float64
    x, _ = datasets.load_npy(xp, yp, mmap=False)
    assert not isinstance(x, np.memmap) and x.dtype == np.float32
    np.testing.assert_array_equal(x, X)
    xp, yp = save_xy(tmp_path, x=np.arange(8, dtype=np.uint8).reshape(4, 2), y=np.arange(4))
    with pytest.raises(DTypeError, match="scale integer data"):
        datasets.load_npy(xp, yp)
    x, _ = datasets.load_npy(xp, yp, mmap=False)
    assert x.dtype == np.float32 and x.max() == 7.0  # exact, not rescaled


def test_load_npy_refuses_bad_files(tmp_path):
    xp, yp = save_xy(tmp_path)
    raw = xp.read_bytes()
    cases = {
        "truncated": (raw[:-3], FileFormatError, "truncated"),
        "trailing": (raw + b"\0", FileFormatError, "trailing bytes"),
        "not npy": (b"hello, world", FileFormatError, "malformed .npy header"),
    }
    for name, (data, error, message) in cases.items():
        bad = tmp_path / f"{name}.npy"
        bad.write_bytes(data)
        with pytest.raises(error, match=message) as info:
            datasets.load_npy(bad, yp)
        assert str(bad) in str(info.value)
    np.save(tmp_path / "obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="Python objects"):
        datasets.load_npy(tmp_path / "obj.npy", yp)
    np.save(tmp_path / "short.npy", Y[:10])
    with pytest.raises(ShapeError, match=r"\(50,\) or \(50, k\)"):
        datasets.load_npy(xp, tmp_path / "short.npy")
    np.save(tmp_path / "flat.npy", X[:, 0])
    with pytest.raises(ShapeError, match="at least 2"):
        datasets.load_npy(tmp_path / "flat.npy", yp)
    with pytest.raises(DTypeError, match="mmap must be True or False"):
        datasets.load_npy(xp, yp, mmap=1)


def test_load_npy_finds_nan_past_the_first_block(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "BLOCK_ELEMENTS", 8)  # two rows of four per block
    x = X.copy()
    x[37, 2] = np.nan
    xp, yp = save_xy(tmp_path, x=x)
    with pytest.raises(InvalidValueError, match="x.npy: row 37 holds NaN or infinite"):
        datasets.load_npy(xp, yp)


# ------------------------------------------------------------- fit on a memory map
def test_float_input_passes_a_map_without_copying(tmp_path):
    x, _ = datasets.load_npy(*save_xy(tmp_path))
    assert float_input(x, "x", np.dtype(np.float32), 4) is x


def test_fit_from_a_map_equals_fit_from_memory(tmp_path):
    x, y = datasets.load_npy(*save_xy(tmp_path))
    weights = []
    for data in (x, np.array(x)):
        net = bp.Network([bp.Dense(4, 8), bp.Tanh(), bp.Dense(8, 3)], seed=3)
        bp.fit(net, data, y, loss="cross_entropy", optimizer=bp.SGD(lr=0.1, momentum=0.9),
               epochs=3, batch_size=8, seed=5, verbose=False, engine="numpy")
        weights.append([p.copy() for p in net.parameters()])
    for a, b in zip(*weights, strict=True):
        assert a.tobytes() == b.tobytes()


def test_check_finite_reads_a_strided_view_in_blocks(monkeypatch):
    monkeypatch.setattr(_validation, "_FINITE_BLOCK", 1 << 16)
    big = np.zeros((2048, 1024), np.float32)
    big[2000, 6] = np.inf
    view = big[:, ::2]  # not contiguous: checked once with a full-size mask (1M booleans)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidValueError, match="0 NaN and 1 infinite"):
            check_finite(view, "x")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024  # a block of rows' mask (64K booleans) and little else


# ------------------------------------------------------------------ Parquet, Arrow
def write_table(path, columns: dict, kind: str = "parquet", row_group_size=None):
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if kind == "parquet":
        pq.write_table(table, path, row_group_size=row_group_size)
    else:
        feather.write_feather(table, path, chunksize=row_group_size)
    return path


TABLE = {"a": X[:, 0].astype(np.float64), "b": X[:, 1], "n": np.arange(50, dtype=np.int32),
         "label": Y}


@needs_pyarrow
@pytest.mark.parametrize("kind", ["parquet", "arrow"])
def test_load_table(tmp_path, kind, monkeypatch):
    monkeypatch.setattr(columnar, "BATCH_ROWS", 16)
    path = write_table(tmp_path / f"t.{kind}", TABLE, kind, row_group_size=20)
    load = datasets.load_parquet if kind == "parquet" else datasets.load_arrow
    x, y = load(path)
    assert x.dtype == np.float32 and x.shape == (50, 3) and x.flags.c_contiguous
    np.testing.assert_array_equal(x, np.column_stack([X[:, 0], X[:, 1], np.arange(50)]))
    assert y.dtype == np.int64 and y.tolist() == Y.tolist()
    x, y = load(path, label_column="a", dtype="float64")
    assert y.dtype == np.float64 and y.tolist() == X[:, 0].astype(np.float64).tolist()
    assert x.shape == (50, 3) and x.dtype == np.float64
    x2, y2 = datasets.load_file(path, label_column="a", dtype="float64")
    np.testing.assert_array_equal(x2, x)


@needs_pyarrow
@pytest.mark.parametrize("columns, error, message", [
    ({"a": ["x"] * 3, "label": [0, 1, 2]}, DTypeError, "column 'a' has type string"),
    ({"a": [1.0, None, 3.0], "label": [0, 1, 2]}, InvalidValueError,
     "column 'a' holds nulls .the first in row 1"),
    ({"a": [1.0, 2.0, float("nan")], "label": [0, 1, 2]}, InvalidValueError,
     "column 'a', row 2: nan is not finite"),
    ({"a": [1.0, 1e300, 3.0], "label": [0, 1, 2]}, InvalidValueError, "beyond the range of float32"),
    ({"a": [2**24 + 1, 0, 0], "label": [0, 1, 2]}, DTypeError, "cannot hold exactly"),
    ({"a": [1.0, 2.0, 3.0], "label": np.array([2**63, 1, 2], np.uint64)}, DTypeError, "int64"),
    ({"label": [0, 1, 2]}, FileFormatError, "at least 2 columns"),
])
def test_load_parquet_refuses(tmp_path, columns, error, message):
    path = write_table(tmp_path / "bad.parquet", columns)
    with pytest.raises(error, match=message) as info:
        datasets.load_parquet(path)
    assert str(path) in str(info.value)


@needs_pyarrow
def test_load_parquet_refuses_files_that_are_not_parquet(tmp_path):
    (tmp_path / "n.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        datasets.load_parquet(tmp_path / "n.parquet")
    with pytest.raises(FileFormatError, match="not a readable Arrow IPC file"):
        datasets.load_arrow(tmp_path / "n.parquet")
    with pytest.raises(FileNotFoundError):
        datasets.load_parquet(tmp_path / "missing.parquet")
    with pytest.raises(ConfigError, match="label_column='c' is not in the header"):
        datasets.load_parquet(write_table(tmp_path / "t.parquet", TABLE), label_column="c")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'backprop\[data\]'"):
        datasets.load_parquet(tmp_path / "t.parquet")


def test_train_on_parquet_without_pyarrow_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    code = cli.main(["train", "--train-file", str(tmp_path / "t.parquet"), "--layers", "4,3",
                     "--epochs", "1", "--out", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("backprop train: error: ") and "pip install 'backprop[data]'" in err[-1]


# -------------------------------------------------------------------------- convert
def write_csv(path, x=X, y=Y):
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", fmt="%.9g",
               header="a,b,c,d,label", comments="")
    return path


@pytest.mark.parametrize("engine", ["numpy", "python"])
def test_convert_csv_to_npy(tmp_path, engine):
    src = write_csv(tmp_path / "d.csv")
    x_path, y_path, shape = datasets.convert_to_npy(src, tmp_path / "d.npy", engine=engine)
    assert shape == (50, 4) and y_path == tmp_path / "d.labels.npy"
    x, y = datasets.load_npy(x_path, y_path)
    ex, ey = datasets.load_csv(src)
    assert x.tobytes() == ex.tobytes() and y.dtype == ey.dtype and y.tolist() == ey.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "d.labels.npy", "d.npy"]


def test_convert_restarts_cleanly_when_the_reference_takes_over(tmp_path, monkeypatch):
    from backprop.datasets import csv_engines

    monkeypatch.setattr(csv_engines, "BLOCK_BYTES", 512)
    lines = ["a,label"] + [f"{i}.5,{i % 2}" for i in range(400)]
    lines[300] = "1_000,1"  # float() reads it; the C parsers do not
    src = tmp_path / "u.csv"
    src.write_text("\n".join(lines) + "\n")
    x_path, y_path, shape = datasets.convert_to_npy(src, tmp_path / "u.npy", engine="numpy")
    x, y = datasets.load_npy(x_path, y_path)
    assert shape == (400, 1) and x[299, 0] == 1000.0 and x[0, 0] == 0.5 and x[-1, 0] == 399.5


def test_convert_leaves_nothing_behind_on_an_error(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(FileFormatError, match="line 3, column 2"):
        datasets.convert_to_npy(src, tmp_path / "out.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    with pytest.raises(ConfigError, match="must end in .npy"):
        datasets.convert_to_npy(src, tmp_path / "out.bin")
    with pytest.raises(ConfigError, match="three different files"):
        datasets.convert_to_npy(src, tmp_path / "out.npy", labels=tmp_path / "out.npy")


@needs_pyarrow
def test_convert_parquet_to_npy(tmp_path):
    src = write_table(tmp_path / "t.parquet", TABLE, row_group_size=7)
    x_path, y_path, shape = datasets.convert_to_npy(src, tmp_path / "t.npy",
                                                    labels=tmp_path / "labels.npy")
    x, y = datasets.load_npy(x_path, y_path)
    ex, ey = datasets.load_parquet(src)
    assert shape == (50, 3) and x.tobytes() == ex.tobytes() and y.tolist() == ey.tolist()


# ------------------------------------------------------------------ load_file, CLI
def test_load_file_dispatches_on_the_suffix(tmp_path):
    xp, yp = save_xy(tmp_path)
    x, y = datasets.load_file(xp, labels=yp)
    assert isinstance(x, np.memmap)
    with pytest.raises(ConfigError, match="--train-labels"):
        datasets.load_file(xp)
    csv = write_csv(tmp_path / "d.csv")
    with pytest.raises(ConfigError, match="only .npy"):
        datasets.load_file(csv, labels=yp)
    x, y = datasets.load_file(csv, label_column="label")
    assert x.shape == (50, 4)
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    x, y = datasets.load_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(x, X)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_convert_then_train_from_the_map(tmp_path, capsys):
    src = write_csv(tmp_path / "d.csv")
    code, out, err = run(capsys, "convert", src, tmp_path / "d.npy")
    assert code == 0, err
    assert "wrote 50 rows of 4 features (float32)" in out
    assert f"--train-file {tmp_path / 'd.npy'} --train-labels {tmp_path / 'd.labels.npy'}" in out
    code, out, err = run(capsys, "train", "--train-file", tmp_path / "d.npy",
                         "--train-labels", tmp_path / "d.labels.npy", "--test-file", src,
                         "--layers", "4,8,3", "--epochs", "2", "--batch-size", "10", "--quiet",
                         "--out", tmp_path / "m.safetensors")
    assert code == 0, err
    assert "training on 50 samples" in out
    code, out, err = run(capsys, "train", "--train-file", tmp_path / "d.npy", "--layers", "4,3",
                         "--quiet", "--out", tmp_path / "m2.safetensors")
    assert code == 2 and "--train-labels" in err
    code, out, err = run(capsys, "convert", tmp_path / "missing.csv", tmp_path / "m.npy")
    assert code == 1 and "missing.csv" in err
