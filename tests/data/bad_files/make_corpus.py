"""Write the corpus of crafted bad files that ``tests/test_fuzz.py`` feeds to every reader.

Run ``python tests/data/bad_files/make_corpus.py`` to (re)write the files next to this
script. Every file is small and built deterministically from a valid one (fixed seeds, zip
timestamps of 1980-01-01), then damaged in one precise way: a header claiming more than
the file holds, a truncation, a newer format version, an unknown layer kind, a Python
pickle where numbers belong, and so on. ``tests/test_fuzz.py`` holds the error class each
file must be refused with; the prefix of a name says which reader it is for:

* ``idx_*``: :func:`backprop.datasets.read_idx`
* ``model_*``: :func:`backprop.load`
* ``npz_*``: :func:`backprop.datasets.load_npz`
* ``csv_*``: :func:`backprop.datasets.load_csv`
* ``checkpoint_*``: :func:`backprop.checkpoint.load`

The pickles inside ``model_pickle_payload.bin`` and ``npz_object_array.npz`` are inert (a
dict and a list of numbers): the point is that the readers refuse them unread.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import safetensors.numpy

import backprop as bp
from backprop.training import checkpoint

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------ IDX
def idx(code: int, dims: list[int], data: bytes = b"", ndim: int | None = None) -> bytes:
    """An IDX file: 00 00, type code, ndim, big-endian uint32 dimensions, data."""
    ndim = len(dims) if ndim is None else ndim
    return b"\0\0" + bytes([code, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + data


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


GOOD_IDX = idx(0x08, [3, 4], bytes(range(12)))


def idx_corrupt_gz() -> bytes:
    raw = bytearray(gz(GOOD_IDX))
    raw[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    return bytes(raw)


# ---------------------------------------------------------------------------- model
def model_net() -> bp.Network:
    return bp.Network([bp.Dense(2, 3), bp.LeakyReLU(0.2), bp.Dense(3, 2), bp.ELU(0.5)], seed=0)


def save_bytes(net: bp.Network) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return canonical(bp.save(net, Path(tmp) / "m.safetensors").read_bytes())


def split(raw: bytes) -> tuple[dict, bytes]:
    """(header dict, data bytes) of a safetensors file."""
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join(header: dict | bytes, data: bytes) -> bytes:
    """A safetensors file from a header (a dict, written with sorted keys and padded to a
    multiple of 8 bytes as safetensors does, or raw bytes, written as they are) and data."""
    if isinstance(header, bytes):
        hb = header
    else:
        hb = json.dumps(header, sort_keys=True).encode()
        hb += b" " * (-len(hb) % 8)
    return len(hb).to_bytes(8, "little") + hb + data


def canonical(raw: bytes) -> bytes:
    """``raw`` with its header's keys sorted: safetensors writes the metadata in the order of
    a hash map, which changes from run to run; the corpus must not."""
    return join(*split(raw))


def model_edit(edit: Callable[[dict], object]) -> bytes:
    header, data = split(save_bytes(model_net()))
    edit(header)
    return join(header, data)


def set_meta(**values: str) -> Callable[[dict], None]:
    return lambda header: header["__metadata__"].update(values)


def set_arch(change: Callable[[list], None]) -> Callable[[dict], None]:
    def edit(header: dict) -> None:
        arch = json.loads(header["__metadata__"]["architecture"])
        change(arch)
        header["__metadata__"]["architecture"] = json.dumps(arch)
    return edit


def model_shape_mismatch() -> bytes:
    def edit(header: dict) -> None:
        header["0.W"]["shape"] = header["0.W"]["shape"][::-1]  # (2, 3) for a (3, 2) weight
    return model_edit(edit)


def model_bf16_tensor() -> bytes:
    def edit(header: dict) -> None:
        spec = header["0.b"]  # 3 float32 = 12 bytes = 6 bfloat16
        spec["dtype"], spec["shape"] = "BF16", [6]
    return model_edit(edit)


def model_duplicate_key() -> bytes:
    header, data = split(save_bytes(model_net()))
    text = json.dumps(header, sort_keys=True)
    spec = json.dumps(header["0.b"], sort_keys=True)
    # the same tensor named twice: Python's json would keep the second description
    bad = text[:-1] + ', "0.b": ' + spec.replace('"shape": [3]', '"shape": [1, 3]') + "}"
    return join(bad.encode(), data)


def model_float_dimension() -> bytes:
    header, data = split(save_bytes(model_net()))
    text = json.dumps(header, sort_keys=True).replace('"shape": [3, 2]', '"shape": [3.0, 2]', 1)
    return join(text.encode(), data)


def model_nan_weight() -> bytes:
    net = model_net()
    net.layers[0].params["W"][0, 0] = np.nan
    return save_bytes(net)


def model_tensor_beyond_file() -> bytes:
    def edit(header: dict) -> None:
        header["0.W"]["data_offsets"] = [0, 4 * 10**10]  # 40 GB
        header["0.W"]["shape"] = [100_000, 100_000]
    return model_edit(edit)


def model_not_backprop() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pt.safetensors"
        safetensors.numpy.save_file({"weight": np.ones((2, 2), np.float32)}, str(path),
                                    metadata={"format": "pt"})
        return canonical(path.read_bytes())


# ------------------------------------------------------------------------------ NPZ
def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def npy_header(header: str, data: bytes = b"") -> bytes:
    """A version 1.0 .npy member with the header dict text ``header``, padded as NumPy does."""
    text = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin-1") + data


def zip_archive(members: list[tuple[str, bytes]], *, method: int = 0, flags: int = 0,
                crc: int | None = None, size: int | None = None) -> bytes:
    """A zip archive written field by field, so that any field can lie: ``method`` (0 stored,
    8 deflated, others unsupported), ``flags`` (1: encrypted), a wrong ``crc``, a ``size``
    claimed for every member instead of the true one. Timestamps are 1980-01-01 00:00."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        raw_name = name.encode()
        if method == 8:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            stored = packer.compress(data) + packer.flush()
        else:
            stored = data
        checksum = zlib.crc32(data) if crc is None else crc
        usize = len(data) if size is None else size
        csize = len(stored) if size is None or method == 8 else size
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, checksum,
                           csize, usize, len(raw_name), 0) + raw_name + stored
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21,
                               checksum, csize, usize, len(raw_name), 0, 0, 0, 0, 0,
                               offset) + raw_name
    n = len(members)
    return bytes(out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central),
                                             len(out), 0))


X = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
Y = np.array([0, 1, 0, 1, 1, 0])


def npz(**arrays: np.ndarray) -> bytes:
    return zip_archive([(f"{k}.npy", npy(v)) for k, v in arrays.items()])


def npz_size_lie() -> bytes:
    # the directory and the .npy header agree on 100 MB of float64; 48 bytes are there
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (12500000, 1), }"
    return zip_archive([("x.npy", npy_header(header, X.astype(np.float64).tobytes())),
                        ("y.npy", npy(Y))], size=100_000_000 + 128)


def npz_header_claims_more() -> bytes:
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    return zip_archive([("x.npy", npy_header(header, X.tobytes())), ("y.npy", npy(Y))])


def npz_bad_crc() -> bytes:
    return zip_archive([("x.npy", npy(X)), ("y.npy", npy(Y))], crc=0x12345678)


def npz_too_many_dims() -> bytes:
    shape = "(" + ", ".join(["1"] * 40) + ")"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
    return zip_archive([("x.npy", npy_header(header, b"\0\0\0\0")), ("y.npy", npy(Y))])


def npz_nested_header() -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 2000 + ")" * 2000 + "}"
    return zip_archive([("x.npy", npy_header(header)), ("y.npy", npy(Y))])


def npz_nan() -> bytes:
    x = X.copy()
    x[2, 1] = np.nan
    return npz(x=x, y=Y)


# ------------------------------------------------------------------------ checkpoint
def checkpoint_bytes(*, params: np.ndarray | None = None, **meta_changes: str) -> bytes:
    """A checkpoint of a Dense(2, 3), ReLU, Dense(3, 2) float32 run after one epoch of Adam;
    ``params``: another parameter buffer than the network's."""
    net = bp.Network([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 2)], seed=0)
    arrays = net.parameters()
    params = net.parameter_buffer if params is None else params
    state = {"optimizer": "Adam", "t": 2, "m": [np.zeros_like(p) for p in arrays],
             "v": [np.zeros_like(p) for p in arrays]}
    fingerprint = {"architecture": net.config(), "dtype": "float32", "samples": 6,
                   "batch_size": 3, "seed": 0, "shuffle": True, "loss": "CrossEntropy()",
                   "optimizer": "Adam(lr=0.001)"}
    history = {"epoch": [1], "loss": [0.75], "accuracy": [0.5], "val_loss": [],
               "val_accuracy": [], "lr": [0.001], "seconds": [0.01]}
    with tempfile.TemporaryDirectory() as tmp:
        path = checkpoint.save(tmp, epoch=1, params=params, optimizer=state,
                               shuffle_rng=np.random.default_rng(0).bit_generator.state,
                               dropout_rngs=[], history=history, fingerprint=fingerprint)
        raw = canonical(path.read_bytes())
    if meta_changes:
        header, data = split(raw)
        header["__metadata__"].update(meta_changes)
        raw = join(header, data)
    return raw


def digest(tensors: dict[str, np.ndarray]) -> str:
    """The checksum a checkpoint records (see ``backprop.checkpoint``)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name]).tobytes())
    return h.hexdigest()


def checkpoint_stray_tensor() -> bytes:
    header, _ = split(checkpoint_bytes())
    meta = header["__metadata__"]
    tensors = {"param.0": np.zeros((3, 2), np.float32), "param.1": np.zeros(3, np.float32),
               "param.2": np.zeros((2, 3), np.float32), "param.3": np.zeros(2, np.float32),
               "../../etc/passwd": np.zeros(1, np.float32)}
    meta["sha256"] = digest(tensors)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.safetensors"
        safetensors.numpy.save_file(tensors, str(path), metadata=meta)
        return canonical(path.read_bytes())


def checkpoint_bf16_tensor() -> bytes:
    header, data = split(checkpoint_bytes())
    header["params"]["dtype"], header["params"]["shape"] = "BF16", [34]  # 17 float32 values as BF16
    return join(header, data)


def checkpoint_bad_checksum() -> bytes:
    raw = bytearray(checkpoint_bytes())
    raw[-3] ^= 0x40  # a bit of the last tensor's bytes
    return bytes(raw)


def checkpoint_shape_mismatch() -> bytes:
    net = bp.Network([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 2)], seed=0)
    return checkpoint_bytes(params=net.parameter_buffer[:-1])  # one value short of the architecture


def checkpoint_nan_param() -> bytes:
    net = bp.Network([bp.Dense(2, 3), bp.ReLU(), bp.Dense(3, 2)], seed=0)
    net.parameters()[2][1, 1] = np.inf
    return checkpoint_bytes(params=net.parameter_buffer)


BAD_RNG = json.dumps({"bit_generator": "PCG64", "state": {"state": -1, "inc": "x"},
                      "has_uint32": 0, "uinteger": 0})

# ------------------------------------------------------------------------ the corpus
FILES: dict[str, Callable[[], bytes]] = {
    # IDX
    "idx_huge_header.gz": lambda: gz(idx(0x08, [65536, 65536])),       # claims 4 GiB
    "idx_huge_header_raw": lambda: idx(0x0E, [2**32 - 1, 2**32 - 1]),
    "idx_truncated": lambda: GOOD_IDX[:-6],
    "idx_truncated.gz": lambda: gz(GOOD_IDX)[:-12],
    "idx_trailing_bytes": lambda: GOOD_IDX + b"\0",
    "idx_bad_magic": lambda: b"\x01\x02" + GOOD_IDX[2:],
    "idx_unknown_type": lambda: idx(0x0A, [3, 4], bytes(12)),
    "idx_zero_dims": lambda: idx(0x08, []),
    "idx_too_many_dims": lambda: idx(0x08, [1] * 100, b"\x07"),
    "idx_zero_times_huge": lambda: idx(0x08, [0, 2**32 - 1, 2**32 - 1, 2**32 - 1]),
    "idx_header_cut": lambda: idx(0x08, [3, 4])[:7],
    "idx_corrupt.gz": idx_corrupt_gz,
    "idx_empty": lambda: b"",
    # model files
    "model_newer_version.safetensors": lambda: model_edit(set_meta(format_version="2")),
    "model_unknown_kind.safetensors":
        lambda: model_edit(set_arch(lambda a: a.__setitem__(1, {"kind": "Lambda", "fn": "x"}))),
    "model_code_as_kind.safetensors": lambda: model_edit(
        set_arch(lambda a: a.__setitem__(1, {"kind": "__import__('os').system('true')"}))),
    "model_shape_mismatch.safetensors": model_shape_mismatch,
    "model_pickle_payload.bin": lambda: pickle.dumps({"0.W": [[1.0, 2.0]]}, protocol=4),
    "model_elu_infinite_alpha.safetensors":
        lambda: model_edit(set_arch(lambda a: a[3].update(alpha=float("inf")))),
    "model_leaky_nan_slope.safetensors":
        lambda: model_edit(set_arch(lambda a: a[1].update(slope=float("nan")))),
    "model_header_claims_2_63.safetensors": lambda: (2**63).to_bytes(8, "little") + b"{}" * 8,
    "model_json_nesting_bomb.safetensors": lambda: join(b"[" * 20_000, b""),
    "model_tensor_beyond_file.safetensors": model_tensor_beyond_file,
    "model_duplicate_key.safetensors": model_duplicate_key,
    "model_bf16_tensor.safetensors": model_bf16_tensor,
    "model_float_dimension.safetensors": model_float_dimension,
    "model_nan_weight.safetensors": model_nan_weight,
    "model_not_backprop.safetensors": model_not_backprop,
    "model_truncated.safetensors": lambda: save_bytes(model_net())[:-10],
    # NPZ
    "npz_object_array.npz": lambda: npz(x=np.array([[1.0, None]] * 6, dtype=object), y=Y),
    "npz_string_array.npz": lambda: npz(x=np.array([["a", "b"]] * 6), y=Y),
    "npz_structured_dtype.npz":
        lambda: npz(x=np.zeros((6, 2), dtype=[("a", "<f4"), ("b", "<i4")]), y=Y),
    "npz_nan.npz": npz_nan,
    "npz_missing_key.npz": lambda: npz(features=X, y=Y),
    "npz_length_mismatch.npz": lambda: npz(x=X, y=Y[:4]),
    "npz_header_claims_more.npz": npz_header_claims_more,
    "npz_size_lie.npz": npz_size_lie,
    "npz_bad_crc.npz": npz_bad_crc,
    "npz_unsupported_compression.npz":
        lambda: zip_archive([("x.npy", npy(X)), ("y.npy", npy(Y))], method=99),
    "npz_encrypted.npz": lambda: zip_archive([("x.npy", npy(X)), ("y.npy", npy(Y))], flags=1),
    "npz_too_many_dims.npz": npz_too_many_dims,
    "npz_nested_header.npz": npz_nested_header,
    "npz_truncated.npz": lambda: npz(x=X, y=Y)[:200],
    "npz_not_zip.npz": lambda: npy(X),
    # CSV
    "csv_ragged.csv": lambda: b"a,b,label\n0.5,1.0,0\n1.5,1\n",
    "csv_nan.csv": lambda: b"a,b,label\n0.5,nan,0\n1.5,2.0,1\n",
    "csv_inf.csv": lambda: b"0.5,1.0,0\n-inf,2.0,1\n",
    "csv_not_a_number.csv": lambda: b"a,b,label\n0.5,1.0,0\n1.5,two,1\n",
    "csv_empty.csv": lambda: b"",
    "csv_header_only.csv": lambda: b"a,b,label\n",
    "csv_one_column.csv": lambda: b"1\n2\n3\n",
    "csv_not_utf8.csv": lambda: b"a,b,label\n0.5,\xff\xfe,0\n",
    "csv_float32_overflow.csv": lambda: b"0.5,1e39,0\n1.5,2.0,1\n",
    # checkpoints
    "checkpoint_truncated.safetensors": lambda: checkpoint_bytes()[:-40],
    "checkpoint_bad_checksum.safetensors": checkpoint_bad_checksum,
    "checkpoint_newer_version.safetensors": lambda: checkpoint_bytes(format_version="99"),
    "checkpoint_negative_epoch.safetensors": lambda: checkpoint_bytes(epoch="-1"),
    "checkpoint_bad_rng_state.safetensors": lambda: checkpoint_bytes(shuffle_rng=BAD_RNG),
    "checkpoint_json_bomb.safetensors": lambda: checkpoint_bytes(optimizer="[" * 20_000),
    "checkpoint_history_not_lists.safetensors":
        lambda: checkpoint_bytes(history=json.dumps({"loss": "abc"})),
    "checkpoint_bf16_tensor.safetensors": checkpoint_bf16_tensor,
    "checkpoint_shape_mismatch.safetensors": checkpoint_shape_mismatch,
    "checkpoint_nan_param.safetensors": checkpoint_nan_param,
    "checkpoint_stray_tensor.safetensors": checkpoint_stray_tensor,
    "checkpoint_model_file.safetensors": lambda: save_bytes(model_net()),
}


def main(directory: Path = HERE) -> None:
    for name, make in FILES.items():
        (directory / name).write_bytes(make())
    print(f"wrote {len(FILES)} files to {directory}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
