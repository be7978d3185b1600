"""Untrusted files: every reader either returns a well-formed object or raises a backprop error.

Two kinds of evidence:

* **Fuzzing.** Hypothesis mutates small valid files of each kind (a model file, a checkpoint,
  raw and gzipped IDX, CSV, NPZ): it flips bytes, truncates, inserts and deletes runs of
  bytes, overwrites binary header fields (IDX dimensions, the safetensors header length, zip
  sizes and offsets) with extreme integers, and replaces numbers in text headers (JSON,
  ``.npy`` dicts, CSV cells) with extreme ones. Every outcome must be a well-formed object
  or a :class:`~backprop.errors.BackpropError`: never another exception, never a hang (a
  SIGALRM limit per read), and, for every tenth case, traced with ``tracemalloc``, never a
  large allocation. The examples are derandomized (``tests/conftest.py``'s "ci" profile).
* **A corpus** of crafted bad files, ``tests/data/bad_files/`` (written by ``make_corpus.py``
  there), each refused with the exact error class listed in :data:`CORPUS` and a message
  naming the file, allocating little.

And a static check that nothing in the package unpickles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import re
import signal
import tempfile
import threading
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import backprop as bp
from backprop import datasets, io
from backprop.errors import (
    BackpropError,
    ChecksumError,
    DTypeError,
    FileFormatError,
    InvalidValueError,
    ShapeError,
)
from backprop.training import checkpoint

BAD_FILES = Path(__file__).parent / "data" / "bad_files"


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", BAD_FILES / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_module()  # its builders also give the valid files to mutate

# ----------------------------------------------------------------------- valid files
VALID: dict[str, bytes] = {
    "model": corpus.save_bytes(bp.Network([bp.Dense(2, 3), bp.LeakyReLU(0.2), bp.Dropout(0.1),
                                           bp.Dense(3, 2), bp.ELU(0.5)], seed=0)),
    "checkpoint": corpus.checkpoint_bytes(),
    "idx": corpus.idx(0x0D, [2, 3], np.arange(6, dtype=">f4").tobytes()),
    "idx_gz": corpus.gz(corpus.GOOD_IDX),
    "csv": b"a,b,label\n0.5,1.0,0\n1.5,-2.0,1\n3,4e-3,2\n",
    "npz": corpus.npz(x=corpus.X, y=corpus.Y),
}
VALID["metadata"] = VALID["model"]
VALID["csv_numpy"] = VALID["csv"]  # the same file through load_csv's NumPy engine


# ------------------------------------------------------- readers and what they return
def _check_model(net: bp.Network) -> None:
    assert isinstance(net, bp.Network)
    assert all(np.isfinite(p).all() for p in net.parameters())
    out = net.predict(np.zeros((2, net.input_width), net.dtype))
    assert out.shape == (2, net.output_width) and out.dtype == net.dtype


def _check_metadata(info: dict) -> None:
    assert isinstance(info["format_version"], int)
    assert 1 <= info["format_version"] <= io.FORMAT_VERSION
    assert isinstance(info["architecture"], list) and isinstance(info["tensors"], dict)
    assert isinstance(info["seed"], int)


def _check_checkpoint(saved: checkpoint.Checkpoint) -> None:
    assert isinstance(saved, checkpoint.Checkpoint) and saved.epoch >= 1
    assert all(p.dtype.kind == "f" and np.isfinite(p).all() for p in saved.params)
    assert isinstance(saved.optimizer, dict) and isinstance(saved.history, dict)
    assert isinstance(saved.dropout_rngs, list) and isinstance(saved.fingerprint, dict)


def _check_idx(array: np.ndarray) -> None:
    assert isinstance(array, np.ndarray) and 1 <= array.ndim <= 32
    assert array.dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64)
    assert array.dtype.isnative


def _check_xy(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert x.ndim >= 2 and x.dtype == np.float32 and np.isfinite(x).all() and len(x) >= 1
    assert y.shape[:1] == x.shape[:1] and y.dtype in (np.int64, np.float32)


READERS: dict[str, tuple[Callable[[Path], object], Callable[[object], None]]] = {
    "model": (bp.load, _check_model),
    "metadata": (io.read_metadata, _check_metadata),
    "checkpoint": (checkpoint.load, _check_checkpoint),
    "idx": (datasets.read_idx, _check_idx),
    "idx_gz": (datasets.read_idx, _check_idx),
    "csv": (datasets.load_csv, _check_xy),
    "csv_numpy": (lambda path: datasets.load_csv(path, engine="numpy"), _check_xy),
    "npz": (datasets.load_npz, _check_xy),
}


class Hang(Exception):
    """A reader ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (where SIGALRM exists)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"the reader took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


PEAK_LIMIT = 4_000_000  # bytes: the valid files are under 3 kB; nothing may balloon from them


def read(kind: str, path: Path, *, traced: bool = False) -> str:
    """Read ``path`` with ``kind``'s reader: "loaded" (and checked) or "refused"; any other
    exception, a hang or (when ``traced``) a peak allocation over PEAK_LIMIT fails the test."""
    reader, check = READERS[kind]
    if traced:
        tracemalloc.start()
    try:
        with time_limit(5.0), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow in a mutated weight
            try:
                result = reader(path)
            except BackpropError:
                return "refused"
        check(result)
        return "loaded"
    finally:
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < PEAK_LIMIT, f"{kind}: reading a {path.stat().st_size}-byte file " \
                                      f"allocated {peak} bytes"


# --------------------------------------------------------------------------- mutations
EXTREME_INTS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1,
                2**63 - 1, 2**63, 2**64 - 1)
EXTREME_NUMBERS = (b"0", b"-1", b"-0", b"1e400", b"-1e400", b"4294967295", b"4294967296",
                   b"18446744073709551616", b"9" * 40, b"1.5", b"NaN", b"Infinity", b"[]",
                   b'"x"', b"null", b"")
HEADER_SPAN = 64  # binary header fields live near the start (IDX, safetensors length,
                  # zip local headers) or the end (zip central directory) of a file


@st.composite
def mutated(draw, raw: bytes) -> bytes:
    """``raw`` changed by one to four mutations."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "byte", "truncate", "insert", "delete", "field",
                                   "number")))
        n = len(data)
        if op in ("flip", "byte") and n:
            i = draw(st.integers(0, n - 1))
            data[i] = data[i] ^ (1 << draw(st.integers(0, 7))) if op == "flip" else \
                draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, n)):]
        elif op == "insert":
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del data[i:i + draw(st.integers(1, 16))]
        elif op == "field" and n >= 8:
            width = draw(st.sampled_from((1, 2, 4, 8)))
            starts = [*range(0, min(HEADER_SPAN, n - width + 1)),
                      *range(max(0, n - HEADER_SPAN), n - width + 1)]
            i = draw(st.sampled_from(starts))
            value = draw(st.sampled_from(EXTREME_INTS)) % (1 << (8 * width))
            order = draw(st.sampled_from(("little", "big")))
            data[i:i + width] = value.to_bytes(width, order)
        elif op == "number":
            runs = [m.span() for m in re.finditer(rb"-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?", data)]
            if runs:
                lo, hi = draw(st.sampled_from(runs))
                data[lo:hi] = draw(st.sampled_from(EXTREME_NUMBERS))
    return bytes(data)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


_traced_counter = {kind: itertools.count() for kind in READERS}

#: examples per reader: 8 readers x 600 = 4,800 mutated files per run (about 35 s)
FUZZ_EXAMPLES = 600


@pytest.mark.parametrize("kind", sorted(READERS))
@settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_load_or_are_refused_with_a_backprop_error(workdir, kind, data):
    raw = data.draw(mutated(VALID[kind]), label="file")
    suffix = {"idx_gz": ".gz", "csv": ".csv", "csv_numpy": ".csv", "npz": ".npz"}.get(kind, ".safetensors")
    path = workdir / f"fuzz-{kind}{suffix}"
    path.write_bytes(raw)
    traced = next(_traced_counter[kind]) % 10 == 0
    event(read(kind, path, traced=traced))  # "loaded" or "refused", in --hypothesis-show-statistics


@pytest.mark.parametrize("kind", sorted(READERS))
def test_the_unmutated_files_load(workdir, kind):
    path = workdir / f"valid-{kind}"
    path.write_bytes(VALID[kind])
    assert read(kind, path, traced=True) == "loaded"


# ----------------------------------------------------------------------------- corpus
#: every file of tests/data/bad_files and the exact error its reader must raise
CORPUS: dict[str, type[BackpropError]] = {
    "idx_huge_header.gz": FileFormatError,
    "idx_huge_header_raw": FileFormatError,
    "idx_truncated": FileFormatError,
    "idx_truncated.gz": FileFormatError,
    "idx_trailing_bytes": FileFormatError,
    "idx_bad_magic": FileFormatError,
    "idx_unknown_type": FileFormatError,
    "idx_zero_dims": FileFormatError,
    "idx_too_many_dims": FileFormatError,
    "idx_zero_times_huge": FileFormatError,
    "idx_header_cut": FileFormatError,
    "idx_corrupt.gz": FileFormatError,
    "idx_empty": FileFormatError,
    "model_newer_version.safetensors": FileFormatError,
    "model_unknown_kind.safetensors": FileFormatError,
    "model_code_as_kind.safetensors": FileFormatError,
    "model_shape_mismatch.safetensors": FileFormatError,
    "model_pickle_payload.bin": FileFormatError,
    "model_elu_infinite_alpha.safetensors": FileFormatError,
    "model_leaky_nan_slope.safetensors": FileFormatError,
    "model_header_claims_2_63.safetensors": FileFormatError,
    "model_json_nesting_bomb.safetensors": FileFormatError,
    "model_tensor_beyond_file.safetensors": FileFormatError,
    "model_duplicate_key.safetensors": FileFormatError,
    "model_bf16_tensor.safetensors": FileFormatError,
    "model_float_dimension.safetensors": FileFormatError,
    "model_nan_weight.safetensors": FileFormatError,
    "model_not_backprop.safetensors": FileFormatError,
    "model_truncated.safetensors": FileFormatError,
    "npz_object_array.npz": FileFormatError,
    "npz_string_array.npz": DTypeError,
    "npz_structured_dtype.npz": DTypeError,
    "npz_nan.npz": InvalidValueError,
    "npz_missing_key.npz": FileFormatError,
    "npz_length_mismatch.npz": ShapeError,
    "npz_header_claims_more.npz": FileFormatError,
    "npz_size_lie.npz": FileFormatError,
    "npz_bad_crc.npz": FileFormatError,
    "npz_unsupported_compression.npz": FileFormatError,
    "npz_encrypted.npz": FileFormatError,
    "npz_too_many_dims.npz": FileFormatError,
    "npz_nested_header.npz": FileFormatError,
    "npz_truncated.npz": FileFormatError,
    "npz_not_zip.npz": FileFormatError,
    "csv_ragged.csv": FileFormatError,
    "csv_nan.csv": InvalidValueError,
    "csv_inf.csv": InvalidValueError,
    "csv_not_a_number.csv": FileFormatError,
    "csv_empty.csv": FileFormatError,
    "csv_header_only.csv": FileFormatError,
    "csv_one_column.csv": FileFormatError,
    "csv_not_utf8.csv": FileFormatError,
    "csv_float32_overflow.csv": InvalidValueError,
    "checkpoint_truncated.safetensors": FileFormatError,
    "checkpoint_bad_checksum.safetensors": ChecksumError,
    "checkpoint_newer_version.safetensors": FileFormatError,
    "checkpoint_negative_epoch.safetensors": FileFormatError,
    "checkpoint_bad_rng_state.safetensors": FileFormatError,
    "checkpoint_json_bomb.safetensors": FileFormatError,
    "checkpoint_history_not_lists.safetensors": FileFormatError,
    "checkpoint_bf16_tensor.safetensors": FileFormatError,
    "checkpoint_shape_mismatch.safetensors": FileFormatError,
    "checkpoint_nan_param.safetensors": FileFormatError,
    "checkpoint_stray_tensor.safetensors": FileFormatError,
    "checkpoint_model_file.safetensors": FileFormatError,
}

CORPUS_READERS: dict[str, Callable[[Path], object]] = {
    "idx": datasets.read_idx, "model": bp.load, "npz": datasets.load_npz,
    "csv": datasets.load_csv, "checkpoint": checkpoint.load,
}


def test_the_corpus_table_lists_every_file_the_script_writes():
    on_disk = {p.name for p in BAD_FILES.iterdir() if p.name != "make_corpus.py"}
    on_disk.discard("__pycache__")
    assert set(corpus.FILES) == set(CORPUS) == on_disk


@pytest.mark.parametrize(("name", "error"), sorted(CORPUS.items()), ids=sorted(CORPUS))
def test_every_corpus_file_is_refused_with_its_error(name, error):
    path = BAD_FILES / name
    before = path.read_bytes()
    reader = CORPUS_READERS[name.split("_")[0]]
    tracemalloc.start()
    try:
        with time_limit(10.0), pytest.raises(BackpropError) as info:
            reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(info.value) is error, f"{name}: {type(info.value).__name__}: {info.value}"
    assert name in str(info.value)          # the message names the file
    assert peak < PEAK_LIMIT                # nothing allocated from a header's claims
    assert path.read_bytes() == before      # and the file is left as it was


# ------------------------------------------------------------------------ no pickles
PACKAGE = Path(bp.__file__).parent


def test_nothing_in_the_package_can_unpickle():
    offending = []
    for source in sorted(PACKAGE.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        for pattern in (r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|marshal|shelve|joblib)\b",
                        r"allow_pickle\s*=\s*True", r"torch\.load\(", r"\byaml\.load\(",
                        r"np\.load\((?![^)]*allow_pickle=False)"):
            for match in re.finditer(pattern, text, flags=re.MULTILINE):
                line = text.count("\n", 0, match.start()) + 1
                offending.append(f"{source.relative_to(PACKAGE)}:{line}: {match.group(0).strip()}")
    assert offending == []
