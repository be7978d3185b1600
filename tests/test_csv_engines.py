"""The CSV engines of backprop.datasets.load_csv: the fast C parsers (pyarrow, NumPy's loadtxt)
give exactly what the reference parser (Python's csv module and float) gives, arrays or
errors, on crafted files, on the bad-file corpus and on generated ones; the fast path never
calls the reference on a valid file; memory stays near the size of the result."""

from __future__ import annotations

import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop import datasets
from backprop.datasets import csv_engines, csv_ranges, csvfile
from backprop.errors import BackpropError, ConfigError, FileFormatError, InvalidValueError


def _has_pyarrow() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


HAS_PYARROW = _has_pyarrow()
needs_pyarrow = pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed "
                                                           "(pip install 'backprop[data]')")
FAST = ["numpy", pytest.param("pyarrow", marks=needs_pyarrow)]
ENGINES = ["python", *FAST]
BAD_FILES = Path(__file__).parent / "data" / "bad_files"


def outcome(path: Path, engine: str, **kwargs) -> tuple:
    """What load_csv gives: ("ok", arrays as lists and dtypes) or (error type, message)."""
    try:
        x, y = datasets.load_csv(path, engine=engine, **kwargs)
    except BackpropError as err:
        return type(err).__name__, str(err)
    assert x.flags.c_contiguous and x.flags.owndata and x.flags.writeable
    return "ok", x.dtype.name, x.shape, x.tobytes(), y.dtype.name, y.tobytes()


CRAFTED = {
    "header": b"a,b,label\n1,2,0\n3,4,1\n",
    "bom and crlf": b"\xef\xbb\xbfa,b,label\r\n1,2,0\r\n3,4,1\r\n",
    "cr only": b"1,2,0\r3,4,1\r",
    "no final line ending": b"1,2,0\n3,4,1",
    "blank and blank-looking lines": b"\n\na,b,l\n\n1,2,0\n   \n3,4,1\n,,\n",
    "spaces around cells": b"1, 2 ,0\n3,4,1\n",
    "quoted cells": b'"a","b","l"\n"1",2,0\n3,4,1\n',
    "underscores (float accepts them)": b"1_0,2,0\n3,4,1\n",
    "signs and dots": b"+1,-2,3\n.5,5.,1e3\n",
    "non-ASCII digit (float accepts it)": "1,2,\u0661\n".encode(),
    "a bad cell after a NaN": b"1,2,0\n3,nan,1\n5,x,1\n",
    "NaN": b"1,2,0\n3,nan,1\n",
    "-inf": b"0.5,1.0,0\n-inf,2.0,1\n",
    "overflow of float32": b"1,1e39,0\n3,4,1\n",
    "overflow before a bad cell": b"1,1e39,0\n3,4,x\n",
    "label overflow": b"1,2,1e39\n",
    "float labels": b"1,2,0.5\n",
    "header only": b"a,b\n",
    "empty": b"",
    "one column": b"1\n2\n",
    "ragged": b"1,2,3\n4,5\n",
    "empty cell": b"a,b\n1,2\n3,\n",
    "not UTF-8": b"\xff\xfe,1\n",
    "not UTF-8 late": b"1,2,0\n3,4,1\n\xff,1,1\n",
    "NUL": b"1,2,3\n\x00,1,1\n",
    "tab": b"1\t2\t3\n",
}


@pytest.mark.parametrize("engine", FAST)
@pytest.mark.parametrize("name", list(CRAFTED))
def test_fast_engines_agree_with_the_reference(tmp_path, name, engine):
    path = tmp_path / "d.csv"
    path.write_bytes(CRAFTED[name])
    assert outcome(path, engine) == outcome(path, "python")


@pytest.mark.parametrize("engine", ENGINES)
def test_messages_name_line_and_column(tmp_path, engine):
    cases = {
        "a bad cell after a NaN": (FileFormatError, "line 3, column 2: 'x' is not a number"),
        "NaN": (InvalidValueError, "line 2, column 2: 'nan' is not finite"),
        "overflow before a bad cell": (FileFormatError, "line 2, column 3: 'x' is not a number"),
        "overflow of float32": (InvalidValueError, "features holds values beyond the range"),
        "label overflow": (InvalidValueError, "labels holds values beyond the range"),
        "ragged": (FileFormatError, "line 2 has 2 fields; expected 3 like line 1"),
        "empty cell": (FileFormatError, r"line 3, column 2 \('b'\): '' is not a number"),
        "not UTF-8 late": (FileFormatError, "not a readable UTF-8 CSV file"),
    }
    for name, (error, message) in cases.items():
        path = tmp_path / f"{len(name)}.csv"
        path.write_bytes(CRAFTED[name])
        with pytest.raises(error, match=message):
            datasets.load_csv(path, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_valid_but_unusual_files_read_like_the_reference(tmp_path, engine):
    path = tmp_path / "d.csv"
    path.write_bytes(CRAFTED["underscores (float accepts them)"])
    x, y = datasets.load_csv(path, engine=engine)
    assert x.tolist() == [[10.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1]
    path.write_bytes(CRAFTED["bom and crlf"])
    x, y = datasets.load_csv(path, engine=engine, label_column="label")
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1]


CSV_CORPUS = sorted(p.name for p in BAD_FILES.glob("csv_*.csv"))


@pytest.mark.parametrize("engine", FAST)
@pytest.mark.parametrize("name", CSV_CORPUS)
def test_the_bad_csv_corpus_gets_the_same_error_from_every_engine(name, engine):
    result = outcome(BAD_FILES / name, engine)
    assert result == outcome(BAD_FILES / name, "python")
    assert result[0] in ("FileFormatError", "InvalidValueError") and name in result[1]


CELLS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.9g}"),
    st.integers(-10**20, 10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=12).map(str),
    st.sampled_from(["1e39", "-1e400", "1e-400", "nan", "inf", "-Infinity", " 7 ", "\t8",
                     "1_000", '"3"', '"4', "", "x", "0x10", "1.5.5", "+-1", ".", "1e", "-0",
                     "\u0661", " ", "\xa05"]),
)


@st.composite
def csv_files(draw) -> bytes:
    """Mostly numeric CSV text with the occasional blank line, header, ragged row or odd cell."""
    width = draw(st.integers(2, 4))
    lines = []
    if draw(st.booleans()):
        lines.append(",".join(draw(st.sampled_from(["a", "b", "label", '"q"', "1"]))
                              for _ in range(width)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["row"] * 6 + ["blank", "spaces", "commas", "ragged"]))
        if kind == "row":
            lines.append(",".join(draw(st.lists(CELLS, min_size=width, max_size=width))))
        elif kind == "ragged":
            lines.append(",".join(draw(st.lists(CELLS, min_size=1, max_size=width + 2))))
        else:
            lines.append({"blank": "", "spaces": "  ", "commas": "," * (width - 1)}[kind])
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_files(), dtype=st.sampled_from(["float32", "float64"]))
def test_engines_agree_on_generated_files(data, dtype):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.csv"
        path.write_bytes(data)
        expected = outcome(path, "python", dtype=dtype)
        assert outcome(path, "numpy", dtype=dtype) == expected
        if HAS_PYARROW:
            assert outcome(path, "pyarrow", dtype=dtype) == expected


@pytest.mark.parametrize("engine", FAST)
def test_values_are_those_of_float_rounded_once(tmp_path, engine):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(300) * 10.0 ** rng.integers(-30, 30, 300),
                             rng.integers(-2**60, 2**60, 100).astype(np.float64)])
    numbers = values.tolist()
    texts = [repr(v) for v in numbers] + [f"{v:.9g}" for v in numbers] + [f"{v:.3e}" for v in numbers]
    # near float32 midpoints: rounding twice (to float64, then float32) differs from once
    halfway = (float(np.float32(1.5)) + float(np.nextafter(np.float32(1.5), np.float32(2)))) / 2
    texts += [repr(halfway), f"{halfway:.25f}1", "1.00000005960464477539062500000001"]
    rows = [f"{t},0" for t in texts]
    path = tmp_path / "v.csv"
    path.write_text("\n".join(rows) + "\n")
    exact = np.array([float(t) for t in texts])
    for dtype in ("float64", "float32"):
        x, _ = datasets.load_csv(path, engine=engine, dtype=dtype)
        np.testing.assert_array_equal(x[:, 0], exact.astype(dtype))
        assert x[:, 0].tobytes() == exact.astype(dtype).tobytes()  # signs of zero included


@pytest.mark.parametrize("engine", FAST)
def test_a_valid_file_never_reaches_the_reference(tmp_path, monkeypatch, engine):
    def refuse(*args, **kwargs):
        raise AssertionError("the reference parser ran on a valid file")

    monkeypatch.setattr(csvfile, "reference_blocks", refuse)
    monkeypatch.setattr(csv_engines, "BLOCK_BYTES", 4096)  # many blocks
    rng = np.random.default_rng(1)
    data = np.column_stack([rng.standard_normal((2000, 5)), rng.integers(0, 3, 2000)])
    path = tmp_path / "v.csv"
    np.savetxt(path, data, delimiter=",", fmt="%.17g", header="a,b,c,d,e,label", comments="")
    x, y = datasets.load_csv(path, engine=engine, label_column="label", dtype="float64")
    np.testing.assert_array_equal(x, data[:, :5])
    assert y.tolist() == data[:, 5].astype(int).tolist()


@pytest.mark.parametrize("engine", FAST)
def test_a_bad_cell_in_a_late_block_is_found_by_the_reference(tmp_path, monkeypatch, engine):
    monkeypatch.setattr(csv_engines, "BLOCK_BYTES", 4096)
    lines = [f"{i},{i % 3}" for i in range(3000)]
    lines[2500] = "2500,two"
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match="line 2501, column 2: 'two' is not a number"):
        datasets.load_csv(path, engine=engine)


def test_auto_uses_numpy_without_pyarrow(tmp_path, monkeypatch):
    def missing() -> None:
        raise ImportError("no pyarrow")

    monkeypatch.setattr(csvfile, "_import_pyarrow", missing)
    assert csvfile.csv_engine("auto", ",", "auto") == "numpy"
    with pytest.raises(ImportError):
        csvfile.csv_engine("auto", ",", "pyarrow")
    path = tmp_path / "d.csv"
    path.write_bytes(CRAFTED["header"])
    x, y = datasets.load_csv(path)
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and y.tolist() == [0, 1]


def test_engine_choice():
    assert csvfile.csv_engine("auto", ";", "numpy") == "numpy"
    assert csvfile.csv_engine("auto", " ", "numpy") == "python"  # not a fast delimiter
    with pytest.raises(ConfigError, match="engine must be one of auto, pyarrow, numpy, python"):
        csvfile.csv_engine("auto", ",", "fast")


@pytest.mark.parametrize("engine", ["python", "numpy"])
def test_memory_is_the_result_plus_a_block(tmp_path, engine):
    rng = np.random.default_rng(2)
    data = np.column_stack([rng.standard_normal((60_000, 19)), rng.integers(0, 10, 60_000)])
    path = tmp_path / "big.csv"
    np.savetxt(path, data, delimiter=",", fmt="%.7g")
    tracemalloc.start()
    try:
        x, y = datasets.load_csv(path, engine=engine)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = x.nbytes + y.nbytes + 8 * len(y)  # y is parsed as float64, returned as int64
    # the old reader held a Python string per cell: about 25 times the result
    assert peak < result + 24 * 2**20, (peak, result)
    assert x.shape == (60_000, 19) and y.dtype == np.int64


# ------------------------------------------------------------- ranges on several threads
@pytest.fixture
def many_ranges(monkeypatch):
    """pyarrow cuts even a small file into up to 7 ranges, each parsed on a thread."""
    monkeypatch.setattr(csv_ranges, "MIN_RANGE_BYTES", 64)
    monkeypatch.setattr(csv_ranges, "cores", lambda: 7)


def test_ranges_are_whole_lines(tmp_path, many_ranges):
    text = b"a,b\r\n" + b"".join(f"{i},{i % 2}\r\n".encode() for i in range(300)) + b"\r\n9,1"
    path = tmp_path / "r.csv"
    path.write_bytes(text)
    ranges = csv_ranges.split_ranges(str(path), 5, "pyarrow")
    assert len(ranges) == 7 and ranges[0][0] == 5 and ranges[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    assert all(text[b - 2:b] == b"\r\n" for _, b in ranges[:-1])  # each cut after a line end
    assert csv_ranges.split_ranges(str(path), 5, "numpy") == [(5, len(text))]


@needs_pyarrow
def test_ranges_give_the_reference_result(tmp_path, many_ranges, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the reference parser ran on a valid file")

    rng = np.random.default_rng(3)
    rows = [f"{v:.9g},{rng.integers(0, 4)}" for v in rng.standard_normal(500)]
    for i in range(0, 500, 37):
        rows[i] += "\n"  # blank lines leave windows short: the rows are closed up
    path = tmp_path / "r.csv"
    path.write_text("x,label\n" + "\n".join(rows) + "\n")
    expected = outcome(path, "python")
    monkeypatch.setattr(csvfile, "reference_blocks", refuse)
    assert outcome(path, "pyarrow") == expected


@needs_pyarrow
def test_a_bad_cell_in_a_late_range_stops_every_thread(tmp_path, many_ranges):
    lines = [f"{i},{i % 3}" for i in range(2000)]
    lines[1700] = "1700,nan"
    lines[1900] = "1900,three"
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match="line 1901, column 2: 'three' is not a number"):
        datasets.load_csv(path, engine="pyarrow")
    (tmp_path / "nan.csv").write_text("\n".join(lines[:1800]) + "\n")
    with pytest.raises(InvalidValueError, match="line 1701, column 2: 'nan' is not finite"):
        datasets.load_csv(tmp_path / "nan.csv", engine="pyarrow")
