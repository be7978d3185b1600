"""load_csv through pyarrow: its peak memory stays within 1.5 times the features it returns
(measured in a fresh process, as the operating system counts it), and what it returns is, byte
for byte, what the reference parser (Python's csv module and float) returns, however the file
is cut into blocks and ranges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import datasets
from backprop.datasets import _common, csv_engines, csv_ranges, csvfile

pa = pytest.importorskip("pyarrow")
pacsv = pytest.importorskip("pyarrow.csv")

MB = 1 << 20

#: a fresh interpreter: import, forget the imports' peak, load, report the growth of the peak
CHILD = """
import json, sys
import backprop, pyarrow.csv
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM restarts from VmRSS
except OSError:
    pass
base = status("VmRSS")
x, y = backprop.datasets.load_csv(sys.argv[1])
print(json.dumps({"growth": status("VmHWM") - base, "x": x.nbytes, "y": y.nbytes,
                  "shape": list(x.shape), "sum": float(x.sum(dtype="float64")),
                  "labels": int(y.sum())}))
"""


def write_table(path: Path, rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CSV of float32 features in their shortest form and an integer label, with a header."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols - 1)).astype(np.float32)
    y = rng.integers(0, 10, rows)
    table = pa.table([*x.T, y], names=[f"f{j}" for j in range(cols - 1)] + ["label"])
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))
    return x, y


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc/self/status")
def test_peak_memory_is_within_one_and_a_half_times_the_features(tmp_path):
    """130,000 x 51 (71 MB of text, two ranges on two threads or more): the peak resident set
    grows by at most 1.5 x the 25 MB of float32 features plus 8 MB. Before blocks of text
    were handed to pyarrow in memory, its streaming reader queued 32 MB per thread, and the
    growth was about 5 times the features."""
    path = tmp_path / "t.csv"
    x, y = write_table(path, 130_000, 51)
    assert path.stat().st_size >= 2 * csv_ranges.MIN_RANGE_BYTES  # parsed as two ranges at least
    run = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["shape"] == list(x.shape) and got["x"] == x.nbytes  # the features were read
    assert got["sum"] == pytest.approx(float(x.sum(dtype=np.float64)), rel=1e-12)
    assert got["labels"] == int(y.sum())
    assert got["growth"] <= 1.5 * got["x"] + 8 * MB, (
        f"peak grew by {got['growth'] / MB:.1f} MB for {got['x'] / MB:.1f} MB of features")


# ------------------------------------------------------------ the same numbers as the reference
@pytest.fixture
def small_pieces(monkeypatch):
    """Blocks of 1 KB and up to 5 ranges on threads, so that a small file exercises every cut."""
    monkeypatch.setattr(csv_engines, "BLOCK_BYTES", 1024)
    monkeypatch.setattr(csv_ranges, "MIN_RANGE_BYTES", 512)
    monkeypatch.setattr(csv_ranges, "cores", lambda: 5)


def reference(path: Path, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    return datasets.load_csv(path, engine="python", **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pyarrow_gives_the_references_bytes_for_a_generated_table(tmp_path, small_pieces, monkeypatch, dtype):
    def refuse(*args, **kwargs):
        raise AssertionError("the reference parser ran on a valid file")

    path = tmp_path / "t.csv"
    write_table(path, 3000, 7, seed=1)
    expected = reference(path, dtype=dtype)
    monkeypatch.setattr(csvfile, "reference_blocks", refuse)
    x, y = datasets.load_csv(path, engine="pyarrow", dtype=dtype)
    assert x.dtype == expected[0].dtype and x.tobytes() == expected[0].tobytes()
    assert y.dtype == np.int64 and y.tobytes() == expected[1].tobytes()
    cells = [line.split(",") for line in path.read_text().splitlines()[1:]]
    exact = np.array([[float(c) for c in row] for row in cells])  # float() rounded once
    assert x.tobytes() == exact[:, :-1].astype(dtype).tobytes()


def awkward_lines(rng: np.random.Generator) -> list[str]:
    """Rows of 3 values and a label, some padded out to lines longer than a block (1 KB)."""
    lines = []
    for i in range(400):
        values = [repr(float(v)) for v in rng.standard_normal(3)] + [str(i % 4)]
        if i % 97 == 5:  # a number written with 2,000 digits: one line longer than a block
            values[0] = "0." + "1" * 2000
        lines.append(",".join(values))
    return lines


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("final", [True, False], ids=["final-ending", "no-final-ending"])
def test_pyarrow_gives_the_references_bytes_on_awkward_lines(tmp_path, small_pieces, ending, final):
    """Lines longer than a block, blank lines, each line ending, a last line without one, and
    line endings cut in two (``\\r`` | ``\\n``) at block and range boundaries."""
    lines = awkward_lines(np.random.default_rng(2))
    for i in range(3, 400, 41):
        lines[i] += ending  # a blank line after it
    text = "a,b,c,label" + ending + ending.join(lines) + (ending if final else "")
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode())
    expected = reference(path)
    x, y = datasets.load_csv(path, engine="pyarrow")
    assert x.shape == (400, 3) and x.tobytes() == expected[0].tobytes()
    assert y.tobytes() == expected[1].tobytes()
    nx, ny = datasets.load_csv(path, engine="numpy")  # the same blocks through loadtxt
    assert nx.tobytes() == expected[0].tobytes() and ny.tobytes() == expected[1].tobytes()


@pytest.mark.parametrize("block", [1, 7, 64, 1000, 1 << 20])
def test_line_blocks_cut_whole_lines_and_lose_nothing(tmp_path, monkeypatch, block):
    monkeypatch.setattr(csv_engines, "BLOCK_BYTES", block)
    data = b"1,2\r\n33,4\n\n" + b"5" * 300 + b",6\r7,8\r\n9,10"
    path = tmp_path / "l.csv"
    path.write_bytes(b"skip" + data)
    blocks = [bytes(b) for b in csv_engines.line_blocks(str(path), 4, 4 + len(data))]
    assert b"".join(blocks) == data and all(blocks)
    assert all(b[-1:] in (b"\n", b"\r") for b in blocks[:-1])  # each cut after a line ending
    if block >= len(data):
        assert blocks == [data]


def test_row_bounds_are_exact_without_blank_lines(tmp_path):
    """Each range's bound is its rows, so the threads' windows meet and nothing is moved."""
    path = tmp_path / "b.csv"
    path.write_bytes(b"1,2\n3,4\r\n5,6\r7,8")
    size = path.stat().st_size
    assert csv_engines.count_rows(str(path), 0, size) == 4
    assert csv_engines.count_rows(str(path), 0, 9) == 2  # ends after "3,4\r\n"
    assert csv_engines.count_rows(str(path), 0, 8) == 2  # "...\r" is a line ending, then "\n"
    assert csv_engines.count_rows(str(path), 9, size) == 2


def test_whole_labels_become_int64_in_place_a_block_at_a_time(monkeypatch):
    monkeypatch.setattr(_common, "BLOCK_ELEMENTS", 3)
    y = np.array([0.0, 2.0, 5.0, -1.0, 2.0**53, 7.0, 1.0])
    labels = _common.labels_from_floats(y, np.dtype(np.float32), "labels")
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2, 5, -1, 2**53, 7, 1]
    assert np.shares_memory(labels, y)  # no second array of labels
    y = np.array([0.0, 2.0, 5.0, -1.0, 2.0, 7.0, 1.5])  # a fraction in the last block
    targets = _common.labels_from_floats(y, np.dtype(np.float32), "labels")
    assert targets.dtype == np.float32 and targets.tolist() == [0, 2, 5, -1, 2, 7, 1.5]
    assert y.tolist() == [0, 2, 5, -1, 2, 7, 1.5]  # left as it was
