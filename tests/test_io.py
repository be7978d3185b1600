"""Tests of ``backprop.save`` / ``backprop.load`` / ``backprop.io.read_metadata``.

A model file is a safetensors file: 8 bytes of little-endian header length, a JSON
header (tensor dtypes, shapes, byte ranges, and string metadata), then raw tensor
bytes. The tests below write such files by hand (``write_raw``) to check that
everything a hostile or damaged file can say is refused with a
:class:`~backprop.errors.FileFormatError` and a message that says what is wrong,
before anything is allocated from the header's claims, and that nothing in a file
is ever executed.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import backprop as bp
from backprop import io
from backprop.errors import ConfigError, FileFormatError
from backprop.network import LAYER_KINDS


# --------------------------------------------------------------------------- helpers
def every_layer_net(dtype="float32", seed=0):
    """A network holding every layer kind a model file may name, with non-default settings."""
    layers = [
        bp.Dense(4, 6, init="normal"), bp.Sigmoid(),
        bp.Dense(6, 6, init="he_uniform"), bp.Tanh(),
        bp.Dense(6, 6), bp.ReLU(),
        bp.Dense(6, 6), bp.LeakyReLU(0.3),
        bp.Dense(6, 6), bp.ELU(alpha=0.7),
        bp.Dense(6, 6), bp.Softplus(),
        bp.Dense(6, 6), bp.GELU(), bp.Dropout(0.25),
        bp.Dense(6, 6), bp.Identity(),
        bp.Dense(6, 3), bp.Softmax(),
    ]
    net = bp.Network(layers, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    for p in net.parameters():  # not the initial weights: every bit of every tensor matters
        p[...] = rng.normal(scale=0.8, size=p.shape)
    return net


def inputs(dtype="float32", n=32, d=4):
    x = np.random.default_rng(7).normal(scale=3.0, size=(n, d)).astype(dtype)
    x[0] = 0.0
    x[1] = 40.0   # saturate the sigmoid, tanh and softmax tails
    x[2] = -40.0
    return x


def small_net(dtype="float32"):
    return bp.Network([bp.Dense(2, 3), bp.LeakyReLU(0.2), bp.Dense(3, 1)], seed=0, dtype=dtype)


def read_raw(path):
    """(header dict, data bytes) of a safetensors file."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_raw(path, header=None, data=b"", *, header_bytes=None):
    """Write a safetensors file from a header (dict, or raw bytes) and data bytes."""
    hb = header_bytes if header_bytes is not None else json.dumps(header).encode()
    Path(path).write_bytes(len(hb).to_bytes(8, "little") + hb + data)
    return path


@pytest.fixture
def saved(tmp_path):
    """A valid model file of ``small_net``: (path, header, data)."""
    path = bp.save(small_net(), tmp_path / "model.safetensors", metadata={"loss": "quadratic"})
    header, data = read_raw(path)
    return path, header, data


def edit(tmp_path, header, data, *, meta=None, arch=None, tensors=None):
    """A copy of a model file with metadata keys, the architecture or tensor specs changed."""
    header = json.loads(json.dumps(header))
    if meta:
        header["__metadata__"].update(meta)
    if arch is not None:
        header["__metadata__"]["architecture"] = json.dumps(arch)
    for name, spec in (tensors or {}).items():
        if spec is None:
            del header[name]
        else:
            header[name] = spec
    return write_raw(tmp_path / "edited.safetensors", header, data)


SMALL_ARCH = [{"kind": "Dense", "d_in": 2, "d_out": 3, "init": "glorot_uniform"},
              {"kind": "LeakyReLU", "slope": 0.2},
              {"kind": "Dense", "d_in": 3, "d_out": 1, "init": "glorot_uniform"}]


# ------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bitwise_for_every_layer_kind(tmp_path, dtype):
    net = every_layer_net(dtype)
    assert {type(layer).__name__ for layer in net.layers} == set(LAYER_KINDS)
    path = bp.save(net, tmp_path / "net.safetensors")
    assert path == tmp_path / "net.safetensors"
    loaded = bp.load(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.seed == net.seed
    assert loaded.config() == net.config()
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded.layers[7].slope == 0.3
    assert loaded.layers[9].alpha == 0.7
    assert loaded.layers[14].rate == 0.25
    assert [layer.init for layer in loaded.layers if isinstance(layer, bp.Dense)][:3] == [
        "normal", "he_uniform", "glorot_uniform"]
    for (name, p), (name2, q) in zip(net.named_parameters(), loaded.named_parameters(),
                                     strict=True):
        assert name == name2 and p.dtype == q.dtype and p.shape == q.shape
        assert p.tobytes() == q.tobytes()
    x = inputs(dtype)
    a, b = net.predict(x), loaded.predict(x)
    assert a.dtype == b.dtype == np.dtype(dtype)
    assert a.tobytes() == b.tobytes()
    # training mode too: the Dropout layer keeps its rate (and its stream, from the seed)
    fresh = bp.Network.from_config(net.config(), seed=net.seed, dtype=dtype)
    for p, q in zip(fresh.parameters(), net.parameters(), strict=True):
        p[...] = q
    assert_array_equal(loaded.forward(x, train=True), fresh.forward(x, train=True))


@settings(max_examples=20)
@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    acts=st.lists(st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus",
                                   "gelu", "softmax", "identity"]), min_size=3, max_size=3),
    slope=st.floats(0.0, 1.0), dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**32),
)
def test_round_trip_is_bitwise_for_random_networks(widths, acts, slope, dtype, seed):
    layers = []
    for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(bp.Dense(d_in, d_out))
        kwargs = {"slope": slope} if acts[i] == "leaky_relu" else {}
        layers.append(bp.activations.activation(acts[i], **kwargs))
    net = bp.Network(layers, seed=seed, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = bp.load(bp.save(net, Path(tmp) / "m.safetensors"))
    x = np.random.default_rng(seed).normal(size=(5, widths[0])).astype(dtype)
    assert net.predict(x).tobytes() == loaded.predict(x).tobytes()
    assert loaded.config() == net.config() and loaded.seed == seed


def test_metadata_round_trip(tmp_path):
    net = small_net("float64")
    meta = {"loss": "cross_entropy", "history": {"loss": [0.5, 0.25, 0.1 + 0.2]}, "lr": 1e-3,
            "note": "η → ∇C, quotes \" and \\ kept", "nested": [1, [2, {"a": None}]], "ok": True}
    bp.save(net, tmp_path / "m.safetensors", metadata=meta)
    info = io.read_metadata(tmp_path / "m.safetensors")
    assert info == {
        "format_version": io.FORMAT_VERSION,
        "architecture": net.config(),
        "dtype": "float64",
        "seed": 0,
        "metadata": meta,
        "tensors": {"0.W": {"dtype": "F64", "shape": [3, 2]},
                    "0.b": {"dtype": "F64", "shape": [3]},
                    "2.W": {"dtype": "F64", "shape": [1, 3]},
                    "2.b": {"dtype": "F64", "shape": [1]}},
    }
    assert info["metadata"]["history"]["loss"][2] == 0.1 + 0.2  # floats exactly
    bp.save(net, tmp_path / "plain.safetensors")
    assert io.read_metadata(tmp_path / "plain.safetensors")["metadata"] == {}


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(ConfigError, match="metadata must be JSON-serialisable"):
        bp.save(small_net(), tmp_path / "m.safetensors", metadata={"f": print})
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------- saving
def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.safetensors"
    bp.save(small_net(), path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    bp.save(every_layer_net(), path)  # overwrite in place
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert len(bp.load(path).layers) == len(every_layer_net().layers)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_keeps_the_old_file_and_cleans_up(tmp_path, monkeypatch, error):
    path = bp.save(small_net(), tmp_path / "m.safetensors")
    before = path.read_bytes()

    def half_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)  # a partial file, then the failure
        raise error

    monkeypatch.setattr(safetensors.numpy, "save_file", half_write)
    with pytest.raises(type(error)):
        bp.save(every_layer_net(), path)
    assert os.listdir(tmp_path) == ["m.safetensors"]
    assert path.read_bytes() == before


def test_save_into_a_missing_directory_says_so(tmp_path):
    target = tmp_path / "no" / "such" / "m.safetensors"
    pattern = r"cannot save to .*: directory .*such.* does not exist"
    with pytest.raises(FileNotFoundError, match=pattern):
        bp.save(small_net(), target)
    assert os.listdir(tmp_path) == []


def test_load_of_a_missing_file_says_so(tmp_path):
    pattern = r"model file .*absent.safetensors.* does not exist"
    with pytest.raises(FileNotFoundError, match=pattern):
        bp.load(tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.read_metadata(tmp_path / "absent.safetensors")


# --------------------------------------------------------------- not safetensors
@pytest.mark.parametrize("reader", [bp.load, io.read_metadata], ids=["load", "read_metadata"])
@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", r"not a model file: only 0 bytes"),
        (b"\x01\x02\x03\x04", r"not a model file: only 4 bytes"),
        (b"\x00" * 7, r"only 7 bytes"),
        ((1000).to_bytes(8, "little") + b"{}", r"header claims 1000 bytes in a file of 10"),
        ((2**63).to_bytes(8, "little") + b"{}" * 50, r"header claims 9223372036854775808 bytes"),
        ((5).to_bytes(8, "little") + b"hello", r"bad header"),
        ((4).to_bytes(8, "little") + b"\xff\xfe{}", r"bad header"),          # not UTF-8
        ((6).to_bytes(8, "little") + b"[1, 2]", r"header is not a JSON object"),
        (b"PK\x03\x04" + b"\x00" * 60, r"header claims"),                     # a zip (torch.save)
        (pickle.dumps({"W": [1.0, 2.0]}), r"not a (safetensors )?model file"),  # a pickle
    ],
    ids=["empty", "4_bytes", "7_bytes", "header_too_long", "header_2**63", "not_json",
         "not_utf8", "json_list", "zip", "pickle"],
)
def test_files_that_are_not_safetensors_are_refused(tmp_path, reader, content, pattern):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=pattern) as info:
        reader(path)
    assert "bad.safetensors" in str(info.value)


@settings(max_examples=150)
@given(content=st.binary(max_size=300))
def test_random_bytes_are_refused(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.safetensors"
        path.write_bytes(content)
        with pytest.raises(FileFormatError):
            bp.load(path)


def test_a_safetensors_file_without_backprop_metadata_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"0.W": np.ones((3, 2), np.float32)}, str(path))
    with pytest.raises(FileFormatError, match=r"a safetensors file but not a backprop model "
                                              r"\(format None, expected 'backprop.network'\)"):
        bp.load(path)
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(path),
                                metadata={"format": "pt"})
    with pytest.raises(FileFormatError, match=r"not a backprop model \(format 'pt'"):
        io.read_metadata(path)


# ----------------------------------------------------------- backprop metadata
@pytest.mark.parametrize(
    ("meta", "pattern"),
    [
        ({"format_version": str(io.FORMAT_VERSION + 1)},
         rf"format version {io.FORMAT_VERSION + 1} by a newer backprop; this version reads up "
         rf"to {io.FORMAT_VERSION}: upgrade"),
        ({"format_version": "1000"}, r"newer"),
        ({"format_version": "0"}, r"format_version must be >= 1; got 0"),
        ({"format_version": "one"}, r"format_version 'one' is not an integer"),
        ({"format_version": "9" * 5000}, r"format_version .* is not an integer"),
        ({"architecture": "not json"}, r"malformed backprop metadata"),
        ({"architecture": "{\"kind\": \"Dense\"}"}, r"the architecture must be a list of layers"),
        ({"architecture": "[" * 100_000}, r"malformed backprop metadata"),  # nesting bomb
        ({"metadata": "{"}, r"malformed backprop metadata"),
        ({"seed": "zero"}, r"malformed backprop metadata"),
        ({"seed": "-1"}, r"invalid architecture: seed must be a non-negative integer"),
        ({"dtype": "float16"}, r"dtype must be float32 or float64; got 'float16'"),
    ],
    ids=["version_next", "version_1000", "version_0", "version_word", "version_5000_digits",
         "architecture_not_json", "architecture_dict", "architecture_nesting_bomb",
         "metadata_not_json", "seed_word", "seed_negative", "dtype_float16"],
)
def test_bad_backprop_metadata_is_refused(tmp_path, saved, meta, pattern):
    _, header, data = saved
    with pytest.raises(FileFormatError, match=pattern):
        bp.load(edit(tmp_path, header, data, meta=meta))


def test_metadata_values_must_be_strings(tmp_path, saved):
    _, header, data = saved
    header = dict(header, __metadata__={**header["__metadata__"], "seed": 0})
    with pytest.raises(FileFormatError, match="metadata must map strings to strings"):
        bp.load(write_raw(tmp_path / "e.safetensors", header, data))


# ---------------------------------------------------------------- architecture
@pytest.mark.parametrize(
    ("arch", "pattern"),
    [
        ([*SMALL_ARCH[:1], {"kind": "Lambda", "fn": "x"}, *SMALL_ARCH[2:]],
         r"layer 1 is of unknown kind 'Lambda'; known kinds: \['Dense', "),
        ([*SMALL_ARCH[:1], {"kind": "__import__('os').system('true')"}, *SMALL_ARCH[2:]],
         r"layer 1 is of unknown kind"),
        ([*SMALL_ARCH[:1], {"kind": ["LeakyReLU"]}, *SMALL_ARCH[2:]],
         r"layer 1 is of unknown kind \['LeakyReLU'\]"),
        ([*SMALL_ARCH[:1], {"slope": 0.2}, *SMALL_ARCH[2:]], r"layer 1 is of unknown kind None"),
        ([*SMALL_ARCH[:1], "LeakyReLU", *SMALL_ARCH[2:]],
         r"layer 1 is of unknown kind 'LeakyReLU'"),
        ([*SMALL_ARCH[:2], {"kind": "Dense", "d_in": 3, "d_out": 0}],
         r"layer 2 \(Dense\) has invalid widths 3, 0"),
        ([*SMALL_ARCH[:2], {"kind": "Dense", "d_in": 3.0, "d_out": 1}],
         r"layer 2 \(Dense\) has invalid widths 3.0, 1"),
        ([*SMALL_ARCH[:1], {"kind": "LeakyReLU", "slope": "abc"}, *SMALL_ARCH[2:]],
         r"invalid architecture: config\[1\] \(LeakyReLU\): slope must be a number; got str 'abc'"),
        ([*SMALL_ARCH[:1], {"kind": "LeakyReLU", "slope": 0.2, "code": "print()"},
          *SMALL_ARCH[2:]], r"invalid architecture: .*unexpected keyword argument 'code'"),
        ([*SMALL_ARCH[:1], {"kind": "Dropout", "rate": 1.5}, *SMALL_ARCH[2:]],
         r"invalid architecture: rate must be a number in \[0, 1\); got 1.5"),
        ([{**SMALL_ARCH[0], "init": "__import__('os')"}, *SMALL_ARCH[1:]],
         r"invalid architecture: init must be one of"),
        ([*SMALL_ARCH, {"kind": "Dense", "d_in": 5, "d_out": 1}],  # widths 1 → 5 do not chain
         r"tensors \['0.W', '0.b', '2.W', '2.b'\] do not match the architecture's parameters"),
    ],
    ids=["unknown_kind", "code_as_kind", "list_kind", "no_kind", "string_layer", "zero_width",
         "float_width", "bad_slope", "extra_argument", "bad_rate", "code_as_init",
         "widths_mismatch"],
)
def test_bad_architectures_are_refused(tmp_path, saved, arch, pattern):
    _, header, data = saved
    with pytest.raises(FileFormatError, match=pattern):
        bp.load(edit(tmp_path, header, data, arch=arch))


# --------------------------------------------------------------------- tensors
def resave(path, tensors, header):
    """A file with the given tensors and the metadata of ``header``."""
    safetensors.numpy.save_file(tensors, str(path), metadata=header["__metadata__"])
    return path


def test_tensor_shapes_must_agree_with_the_architecture(tmp_path, saved):
    path, header, _ = saved
    tensors = safetensors.numpy.load_file(str(path))
    tensors["0.W"] = np.ascontiguousarray(tensors["0.W"].T)  # (2, 3) instead of (3, 2)
    with pytest.raises(FileFormatError, match=r"tensor 0.W has shape \(2, 3\), the architecture "
                                              r"says \(3, 2\)"):
        bp.load(resave(tmp_path / "t.safetensors", tensors, header))


def test_tensor_dtype_must_be_the_files_dtype(tmp_path, saved):
    path, header, _ = saved
    tensors = safetensors.numpy.load_file(str(path))
    tensors["2.b"] = tensors["2.b"].astype(np.float64)
    with pytest.raises(FileFormatError, match=r"tensor 2.b is F64, the file's dtype is float32"):
        bp.load(resave(tmp_path / "t.safetensors", tensors, header))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"drop": "2.b"}, r"tensors \['0.W', '0.b', '2.W'\] do not match the architecture's "
                          r"parameters \['0.W', '0.b', '2.W', '2.b'\]"),
        ({"add": "1.W"}, r"tensors \['0.W', '0.b', '1.W', '2.W', '2.b'\] do not match"),
        ({"add": "__class__"}, r"do not match"),
    ],
)
def test_missing_or_extra_tensors_are_refused(tmp_path, saved, change, pattern):
    path, header, _ = saved
    tensors = safetensors.numpy.load_file(str(path))
    if "drop" in change:
        del tensors[change["drop"]]
    else:
        tensors[change["add"]] = np.zeros((3, 3), np.float32)
    with pytest.raises(FileFormatError, match=pattern):
        bp.load(resave(tmp_path / "t.safetensors", tensors, header))


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 10**12]},
         r"tensor '0.W' \(F32, shape \[3, 2\]\) does not fit its byte range \[0, 1000000000000\) "
         r"in 52 bytes of data"),
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [40, 64]}, r"does not fit"),
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [24, 0]}, r"does not fit"),
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [-24, 0]}, r"does not fit"),
        ({"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 24]}, r"does not fit"),
        ({"dtype": "F64", "shape": [3, 2], "data_offsets": [0, 24]}, r"does not fit"),
        ({"dtype": "OBJ", "shape": [3, 2], "data_offsets": [0, 24]}, r"does not fit"),
        ({"dtype": "F32", "shape": [3, 2]}, r"tensor '0.W' has a malformed description"),
        ({"dtype": "F32", "shape": [3, "x"], "data_offsets": [0, 24]}, r"malformed description"),
        ({"dtype": "F32", "shape": 6, "data_offsets": [0, 24]}, r"malformed description"),
        ({"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 12, 24]}, r"malformed description"),
        ("a string", r"malformed description"),
    ],
    ids=["far_beyond", "past_the_end", "reversed", "negative", "shape_vs_range",
         "dtype_vs_range", "unknown_dtype", "no_offsets", "string_dim", "scalar_shape",
         "three_offsets", "not_a_dict"],
)
def test_tensor_descriptions_that_disagree_with_the_bytes_are_refused(tmp_path, saved, spec,
                                                                      pattern):
    _, header, data = saved
    assert len(data) == 52  # 6 + 3 + 3 + 1 float32 values
    for reader in (bp.load, io.read_metadata):
        with pytest.raises(FileFormatError, match=pattern):
            reader(edit(tmp_path, header, data, tensors={"0.W": spec}))


def test_a_shape_of_infinity_is_refused(tmp_path, saved):
    _, header, data = saved
    text = json.dumps(header).replace('"shape": [3, 2]', '"shape": [1e400, 2]', 1)
    assert "1e400" in text
    path = write_raw(tmp_path / "inf.safetensors", header_bytes=text.encode(), data=data)
    with pytest.raises(FileFormatError, match=r"tensor '0.W' has a malformed description"):
        bp.load(path)


def test_a_truncated_file_is_refused(tmp_path, saved):
    path, _, _ = saved
    raw = path.read_bytes()
    for cut in (1, 4, 30):
        short = tmp_path / f"short{cut}.safetensors"
        short.write_bytes(raw[:-cut])
        with pytest.raises(FileFormatError, match=r"does not fit its byte range"):
            bp.load(short)


@pytest.mark.parametrize("header_bytes", [b"[" * 100_000, b'{"a": ' + b"9" * 5000 + b"}"],
                         ids=["nesting_bomb", "huge_integer"])
def test_json_bombs_in_the_header_are_refused(tmp_path, header_bytes):
    path = write_raw(tmp_path / "bomb.safetensors", header_bytes=header_bytes)
    with pytest.raises(FileFormatError, match=r"not a safetensors model file: bad header"):
        bp.load(path)


HUGE = [{"kind": "Dense", "d_in": 100_000, "d_out": 100_000, "init": "glorot_uniform"}]


@pytest.mark.parametrize(
    ("tensors", "data", "pattern"),
    [
        # the header claims the 40 GB the architecture needs; the file holds 16 bytes
        ({"0.W": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 4 * 10**10]},
          "0.b": {"dtype": "F32", "shape": [100_000],
                  "data_offsets": [4 * 10**10, 4 * 10**10 + 400_000]}},
         b"\x00" * 16,
         r"tensor '0.W' \(F32, shape \[100000, 100000\]\) does not fit its byte range"),
        # small, honest tensors: they disagree with the architecture
        ({"0.W": {"dtype": "F32", "shape": [2, 1], "data_offsets": [0, 8]},
          "0.b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
         b"\x00" * 16, r"tensor 0.W has shape \(2, 1\), the architecture says \(100000, 100000\)"),
        # no tensors at all
        ({}, b"", r"tensors \[\] do not match the architecture's parameters \['0.W', '0.b'\]"),
    ],
    ids=["claims_40GB", "small_tensors", "no_tensors"],
)
def test_a_huge_architecture_allocates_nothing_before_refusal(tmp_path, tensors, data, pattern):
    meta = {"format": io.FORMAT, "format_version": "1", "architecture": json.dumps(HUGE),
            "dtype": "float32", "seed": "0", "metadata": "{}"}
    path = write_raw(tmp_path / "huge.safetensors", {"__metadata__": meta, **tensors}, data)
    tracemalloc.start()
    try:
        with pytest.raises(FileFormatError, match=pattern):
            bp.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # Dense(100000, 100000) would take 40 GB in float32


# -------------------------------------------------------------------- fuzzing
@settings(max_examples=200)
@given(data=st.data())
def test_damaged_files_load_or_are_refused_never_anything_else(data):
    """Any 1 to 3 bytes of a valid file changed: ``load`` returns a network or raises
    FileFormatError; no other exception escapes."""
    raw = bytearray(VALID_FILE)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.safetensors"
        path.write_bytes(bytes(raw))
        try:
            net = bp.load(path)
        except FileFormatError:
            return
    assert isinstance(net, bp.Network)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@settings(max_examples=60)
@given(key=st.sampled_from(["architecture", "0.W", "__metadata__", "header"]), value=JSON)
def test_arbitrary_json_in_any_header_slot_is_refused(key, value):
    header, data = read_raw_bytes(VALID_FILE)
    if key == "architecture":
        header["__metadata__"]["architecture"] = json.dumps(value)
    elif key == "header":
        header = value
    else:
        header[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = write_raw(Path(tmp) / "fuzz.safetensors", header, data)
        with pytest.raises(FileFormatError):
            bp.load(path)


def read_raw_bytes(raw):
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _valid_file():
    with tempfile.TemporaryDirectory() as tmp:
        path = bp.save(small_net(), Path(tmp) / "m.safetensors", metadata={"epochs": 3})
        return path.read_bytes()


VALID_FILE = _valid_file()


# ------------------------------------------------------------- nothing executes
class _Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_never_executes_code(tmp_path, saved):
    _, header, data = saved
    marker = tmp_path / "EXECUTED"
    _Payload.marker = str(marker)
    payload = pickle.dumps(_Payload())
    text = payload.decode("latin-1")
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    attempts = [
        ({"metadata": text}, r"malformed backprop metadata"),
        ({"architecture": text}, r"malformed backprop metadata"),
        ({"seed": code}, r"malformed backprop metadata"),
        ({"format_version": code}, r"is not an integer"),
        ({"dtype": code}, r"dtype must be float32 or float64"),
        ({"architecture": json.dumps([{"kind": code}])}, r"unknown kind"),
        ({"architecture": json.dumps([{**SMALL_ARCH[0], "init": code}, *SMALL_ARCH[1:]])},
         r"init must be one of"),
    ]
    for meta, pattern in attempts:
        with pytest.raises(FileFormatError, match=pattern):
            bp.load(edit(tmp_path, header, data, meta=meta))
    # a pickle file under a model file's name
    (tmp_path / "pickle.safetensors").write_bytes(payload)
    with pytest.raises(FileFormatError):
        bp.load(tmp_path / "pickle.safetensors")
    # code in the caller's metadata is kept as text, and the file loads
    bp.save(small_net(), tmp_path / "ok.safetensors", metadata={"note": code, "blob": text})
    assert io.read_metadata(tmp_path / "ok.safetensors")["metadata"] == {"note": code, "blob": text}
    assert isinstance(bp.load(tmp_path / "ok.safetensors"), bp.Network)
    assert not marker.exists()
    # the payload does run when unpickled: the test above would have noticed
    pickle.loads(payload).close()
    assert marker.exists()
