"""Model files: weights, architecture and training metadata in one safetensors file.

A safetensors file is a JSON header (string metadata and each tensor's dtype, shape
and byte range) followed by raw little-endian tensor bytes: loading it parses
JSON and copies numbers, and cannot execute code (unlike pickle). backprop's
metadata keys:

==================  =====================================================
``format``          ``"backprop.network"``
``format_version``  an integer as text; files newer than :data:`FORMAT_VERSION` are refused
``architecture``    JSON of :meth:`Network.config` (layer kinds and settings)
``dtype``           ``"float32"`` or ``"float64"``
``seed``            the network's seed
``metadata``        JSON of the caller's training metadata (loss, history, ...)
==================  =====================================================

Tensors are named ``"<layer index>.<parameter>"`` (``"0.W"``, ``"0.b"``, ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import write_atomically
from ._validation import path_arg
from .devices import to_numpy
from .errors import BackpropError, ConfigError, FileFormatError
from .network import LAYER_KINDS, Network

FORMAT = "backprop.network"
#: the newest model-file format this version reads and the one it writes
FORMAT_VERSION = 1

_ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "I16": 2, "U16": 2,
             "I32": 4, "U32": 4, "I64": 8, "U64": 8, "BOOL": 1}


def save(net: Network, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``net`` to ``path`` (conventionally ``*.safetensors``), atomically.

    ``metadata`` is any JSON-serialisable dict (training settings, history, ...) kept in the
    file and returned by :func:`read_metadata`. Returns the path written.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    try:
        extra = json.dumps(metadata or {})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"metadata must be JSON-serialisable: {err}") from None
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": json.dumps(net.config()),
        "dtype": net.dtype.name,
        "seed": str(net.seed),
        "metadata": extra,
    }
    # to_numpy: a network on a GPU is copied to the host here, parameter by parameter
    tensors = {name: np.ascontiguousarray(to_numpy(p)) for name, p in net.named_parameters()}
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {str(path)!r}: directory {str(path.parent)!r} does not exist")
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice (readers could disagree on
    which one counts: Python's json keeps the last, another parser may keep the first)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _int_list(value: Any) -> list[int]:
    """A JSON list of integers (not floats, bools or strings), else TypeError."""
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              for v in value):
        raise TypeError("expected a list of integers")
    return value


def _open(path: Path, what: str = "model file"
          ) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """The string metadata and each tensor's (dtype, shape), from the header alone.

    Every tensor's byte range must lie in the file and match its dtype and shape, so no
    later step allocates memory on the strength of the header alone.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FileFormatError(f"{path} is not a {what}: only {len(head)} bytes")
        n = int.from_bytes(head, "little")
        size = path.stat().st_size
        if n > size - 8 or n > 100_000_000:
            raise FileFormatError(f"{path} is not a safetensors {what}: its header claims "
                                  f"{n} bytes in a file of {size}")
        try:
            header = json.loads(f.read(n), object_pairs_hook=_unique_keys)
        # ValueError: also bad UTF-8, bad JSON, integers of too many digits and repeated keys;
        # RecursionError: arrays nested thousands deep
        except (ValueError, RecursionError) as err:
            raise FileFormatError(f"{path} is not a safetensors {what}: bad header ({err})"
                                  ) from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{path}: the safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FileFormatError(f"{path}: the safetensors metadata must map strings to strings")
    tensors = {}
    data_size = size - 8 - n
    for name, spec in header.items():
        try:
            dtype, shape = spec["dtype"], tuple(_int_list(spec["shape"]))
            begin, end = _int_list(spec["data_offsets"])
            if not isinstance(dtype, str) or any(d < 0 for d in shape):
                raise TypeError("a dtype name and non-negative dimensions")
        except (TypeError, KeyError, ValueError):  # e.g. 1e400, "3", -1 or 3.0 as a dimension
            raise FileFormatError(f"{path}: tensor {name!r} has a malformed description") from None
        itemsize = _ITEMSIZE.get(dtype, 0)
        # the bytes a tensor claims must be in the file: no allocation sized by a bare header
        if not 0 <= begin <= end <= data_size or end - begin != itemsize * int(np.prod(shape, dtype=object)):
            raise FileFormatError(f"{path}: tensor {name!r} ({dtype}, shape {list(shape)}) does not fit "
                                  f"its byte range [{begin}, {end}) in {data_size} bytes of data")
        tensors[name] = (dtype, shape)
    return meta, tensors


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """What a model file says about itself, without loading weights.

    Returns ``{"format_version", "architecture", "dtype", "seed", "metadata", "tensors"}``.
    """
    path = Path(path_arg(path, "path"))
    meta, tensors = _open(path)
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is a safetensors file but not a backprop model "
                              f"(format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise FileFormatError(f"{path}: format_version {meta.get('format_version')!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{path} was written in model format version {version} by a newer "
                              f"backprop; this version reads up to {FORMAT_VERSION}: upgrade backprop")
    if version < 1:
        raise FileFormatError(f"{path}: format_version must be >= 1; got {version}")
    try:
        architecture = json.loads(meta["architecture"])
        extra = json.loads(meta.get("metadata", "{}"))
        seed = int(meta.get("seed", "0"))
    except (KeyError, ValueError, TypeError, RecursionError) as err:
        raise FileFormatError(f"{path}: malformed backprop metadata ({err})") from None
    if not isinstance(architecture, list):
        raise FileFormatError(f"{path}: the architecture must be a list of layers")
    return {"format_version": version, "architecture": architecture, "dtype": meta.get("dtype"),
            "seed": seed, "metadata": extra,
            "tensors": {k: {"dtype": d, "shape": list(s)} for k, (d, s) in tensors.items()}}


def _expected_shapes(architecture: list[Any], path: Path) -> dict[str, tuple[int, ...]]:
    """Parameter shapes implied by the architecture, computed without allocating anything."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, spec in enumerate(architecture):
        kind = spec.get("kind") if isinstance(spec, dict) else spec
        # (checked as a str first: a list kind is unhashable)
        if not isinstance(spec, dict) or not isinstance(kind, str) or kind not in LAYER_KINDS:
            raise FileFormatError(f"{path}: layer {i} is of unknown kind {kind!r}; "
                                  f"known kinds: {sorted(LAYER_KINDS)}")
        if spec["kind"] == "Dense":
            d_in, d_out = spec.get("d_in"), spec.get("d_out")
            if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (d_in, d_out)):
                raise FileFormatError(f"{path}: layer {i} (Dense) has invalid widths {d_in!r}, {d_out!r}")
            shapes[f"{i}.W"] = (int(d_out), int(d_in))  # type: ignore[arg-type]  # checked above
            shapes[f"{i}.b"] = (int(d_out),)  # type: ignore[arg-type]
    return shapes


_SAFETENSORS_DTYPE = {"float32": "F32", "float64": "F64"}


def load(path: str | os.PathLike, *, device: Any = None) -> Network:
    """Read a network written by :func:`save`; its predictions are bitwise those of the saved one.

    The file does not record a device: the network is built on ``device`` (default ``"cpu"``;
    any form :class:`~backprop.Network` takes), so a model trained on a GPU loads on a CPU and
    the reverse.

    Refuses, with :class:`~backprop.errors.FileFormatError`: files that are not backprop model
    files, newer format versions, unknown layer kinds, invalid layer settings (e.g. an infinite
    ``ELU`` alpha), headers that repeat a key, tensors whose names, shapes or dtypes disagree
    with the architecture, and NaN or infinite weights. Nothing in the file is executed, and
    nothing is allocated before the header's claims are checked against the file's size.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path_arg(path, "path"))
    info = read_metadata(path)
    dtype = info["dtype"]
    if dtype not in _SAFETENSORS_DTYPE:
        raise FileFormatError(f"{path}: dtype must be float32 or float64; got {dtype!r}")
    expected = _expected_shapes(info["architecture"], path)
    found = {k: tuple(v["shape"]) for k, v in info["tensors"].items()}
    if set(found) != set(expected):
        raise FileFormatError(f"{path}: the file's tensors {sorted(found)} do not match the "
                              f"architecture's parameters {sorted(expected)}")
    for name, shape in expected.items():
        if found[name] != shape:
            raise FileFormatError(f"{path}: tensor {name} has shape {found[name]}, the architecture "
                                  f"says {shape}")
        if info["tensors"][name]["dtype"] != _SAFETENSORS_DTYPE[dtype]:
            raise FileFormatError(f"{path}: tensor {name} is {info['tensors'][name]['dtype']}, "
                                  f"the file's dtype is {dtype}")
    try:
        net = Network.from_config(info["architecture"], seed=info["seed"], dtype=dtype)
    except (BackpropError, TypeError, ValueError, OverflowError) as err:  # LeakyReLU(slope="x")
        raise FileFormatError(f"{path}: invalid architecture: {err}") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise FileFormatError(f"{path}: cannot read the tensors: {err}") from None
    params = dict(net.named_parameters())
    for name, p in params.items():  # what safetensors read must be what the header said
        value = tensors.get(name)
        if value is None or (value.shape, value.dtype) != (p.shape, p.dtype) \
                or len(tensors) != len(params):
            raise FileFormatError(f"{path}: the tensors read do not match the file's header")
        if not np.isfinite(value).all():  # fit never saves such weights: the file is damaged
            raise FileFormatError(f"{path}: tensor {name} holds {int(np.isnan(value).sum())} NaN "
                                  f"and {int(np.isinf(value).sum())} infinite values")
        p[...] = value
    return net.to(device)
