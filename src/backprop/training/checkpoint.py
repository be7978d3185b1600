"""Training checkpoints: everything ``fit`` needs to resume bit for bit, one file per epoch.

A checkpoint is a safetensors file (no code runs on load) holding the parameters (the
network's one parameter buffer, as one tensor ``params``; format 1 held one tensor per array),
the optimizer's state arrays, and as metadata: the epoch, the optimizer's step
count, the states of the shuffling and dropout random generators, the history so
far, a fingerprint of the run (architecture, data size, batch size, seed, ...)
and the SHA-256 of all tensor bytes, so that a truncated or corrupted file is
detected. Files are written atomically (temporary file, fsync, rename), and the
previous checkpoint is kept, so a kill at any moment leaves at least one good one.

:func:`load` reads one file and checks everything a resumed run relies on (tensor dtypes and
shapes against the fingerprint's architecture, generator states, metadata types) before it
returns; a file that fails any check raises :class:`~backprop.errors.FileFormatError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_atomically
from .._validation import path_arg
from ..errors import ChecksumError, FileFormatError

FORMAT = "backprop.checkpoint"
FORMAT_VERSION = 2  # 2: the parameters as one tensor; 1 (still read): param.<i> per array
_KEEP = 2  # the newest and the one before it


@dataclass
class Checkpoint:
    """A loaded checkpoint (see the module docstring)."""

    epoch: int
    params: list[np.ndarray]
    optimizer: dict[str, Any]
    shuffle_rng: dict[str, Any]
    dropout_rngs: list[dict[str, Any]]
    history: dict[str, Any]
    fingerprint: dict[str, Any]
    path: Path


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(np.ascontiguousarray(tensors[name]).tobytes())
    return h.hexdigest()


def save(directory: str | os.PathLike, *, epoch: int, params: np.ndarray, optimizer: dict[str, Any],
         shuffle_rng: dict[str, Any], dropout_rngs: list[dict[str, Any]], history: dict[str, Any],
         fingerprint: dict[str, Any]) -> Path:
    """Write ``checkpoint-<epoch>.safetensors`` into ``directory`` atomically; keep the previous one.

    ``params`` is the network's parameter buffer ``(n_params,)``."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {"params": np.ascontiguousarray(params)}
    scalars = {}
    for key, value in optimizer.items():
        if isinstance(value, list):
            for i, array in enumerate(value):
                tensors[f"optim.{key}.{i}"] = np.ascontiguousarray(array)
        else:
            scalars[key] = value
    meta = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "epoch": str(epoch),
        "optimizer": json.dumps(scalars), "shuffle_rng": json.dumps(shuffle_rng),
        "dropout_rngs": json.dumps(dropout_rngs), "history": json.dumps(history),
        "fingerprint": json.dumps(fingerprint, sort_keys=True), "sha256": _digest(tensors),
    }
    path = directory / f"checkpoint-{epoch:05d}.safetensors"
    write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    for old in sorted(directory.glob("checkpoint-*.safetensors"))[:-_KEEP]:
        old.unlink(missing_ok=True)
    return path


#: the tensor dtypes a checkpoint may hold (the parameters' and the optimizer's arrays)
_FLOAT_TENSORS = frozenset({"F32", "F64"})
_DECIMAL = re.compile(r"[1-9][0-9]{0,8}|0")
_TENSOR_NAME = re.compile(r"(param|optim\.([A-Za-z_][A-Za-z0-9_]*))\.([1-9][0-9]{0,8}|0)")
_HISTORY_LISTS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def load(path: str | os.PathLike) -> Checkpoint:
    """Read one checkpoint file, checking everything a resumed run will rely on.

    Refused with :class:`~backprop.errors.FileFormatError` (or its subclass
    :class:`~backprop.errors.ChecksumError` when the tensors' SHA-256 differs from the one
    recorded): files that are not backprop checkpoints, newer format versions, truncated or
    malformed files, tensors that are not float32/float64 or whose shapes disagree with the
    architecture in the run's fingerprint, optimizer arrays that do not match the parameters,
    random generator states that are not PCG64 states, and metadata of the wrong types.
    Nothing in the file is executed, and no path is taken from it.
    """
    return _read(Path(path_arg(path, "path")))


def _read(path: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    from ..io import _open

    meta, specs = _open(path, "checkpoint")  # byte ranges checked before anything is read
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path}: not a backprop checkpoint (format {meta.get('format')!r}, "
                              f"expected {FORMAT!r})")
    version = meta.get("format_version", "")
    if not _DECIMAL.fullmatch(version) or int(version) < 1:
        raise FileFormatError(f"{path}: format_version must be a positive integer; "
                              f"got {version[:20]!r}")
    if int(version) > FORMAT_VERSION:
        raise FileFormatError(f"{path}: written by a newer backprop (checkpoint format "
                              f"{version}); upgrade backprop")
    for name, (dtype, _) in specs.items():
        if dtype not in _FLOAT_TENSORS:
            raise FileFormatError(f"{path}: tensor {name!r} is {dtype}; a checkpoint holds only "
                                  f"F32 and F64 tensors")
    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise FileFormatError(f"{path}: unreadable checkpoint ({err})") from None
    if set(tensors) != set(specs):
        raise FileFormatError(f"{path}: the tensors read do not match the file's header")
    if _digest(tensors) != meta.get("sha256"):
        raise ChecksumError(f"{path}: the SHA-256 of its tensors does not match: the file is "
                            f"corrupt")
    for name, value in tensors.items():  # fit never writes such a checkpoint
        if not np.isfinite(value).all():
            raise FileFormatError(f"{path}: tensor {name!r} holds NaN or infinite values")
    epoch, fields = _metadata(meta, path)
    optimizer, history, fingerprint = fields["optimizer"], fields["history"], fields["fingerprint"]
    flat = tensors.pop("params", None)
    lists = _numbered(tensors, path)
    params = lists.pop("param")
    if flat is not None:
        params = _split_buffer(flat, params, fingerprint, path)
    buffers = {prefix.partition(".")[2]: arrays for prefix, arrays in lists.items()}
    _check_shapes(params, buffers, fingerprint, path)
    optimizer.update(buffers)
    return Checkpoint(epoch=epoch, params=params, optimizer=optimizer,
                      shuffle_rng=fields["shuffle_rng"], dropout_rngs=fields["dropout_rngs"],
                      history=history, fingerprint=fingerprint, path=path)


def _metadata(meta: dict[str, str], path: Path) -> tuple[int, dict[str, Any]]:
    """The epoch and the JSON fields of a checkpoint's metadata, each checked to be what fit writes."""
    fields = {key: _json(meta, key, path) for key in
              ("optimizer", "shuffle_rng", "dropout_rngs", "history", "fingerprint")}
    epoch = meta.get("epoch", "")
    if not _DECIMAL.fullmatch(epoch) or int(epoch) < 1:
        raise FileFormatError(f"{path}: epoch must be a positive integer; got {epoch[:20]!r}")
    optimizer, history = fields["optimizer"], fields["history"]
    for key in ("optimizer", "history", "fingerprint"):
        if not isinstance(fields[key], dict):
            raise FileFormatError(f"{path}: {key} must be a JSON object; "
                                  f"got {type(fields[key]).__name__}")
    t = optimizer.get("t")
    if not isinstance(optimizer.get("optimizer"), str) or not isinstance(t, int) \
            or isinstance(t, bool) or t < 0:
        raise FileFormatError(f"{path}: the optimizer state must name the optimizer and give "
                              f"its step count t >= 0")
    if any(isinstance(v, list) for v in optimizer.values()):
        raise FileFormatError(f"{path}: the optimizer's arrays must be tensors, not JSON lists")
    for key in _HISTORY_LISTS:
        if not isinstance(history.get(key, []), list):
            raise FileFormatError(f"{path}: history[{key!r}] must be a list")
    norms = history.get("grad_norms", {})
    if not isinstance(norms, dict) or not all(isinstance(v, list) for v in norms.values()):
        raise FileFormatError(f"{path}: history['grad_norms'] must map layers to lists")
    _check_rng_state(fields["shuffle_rng"], "shuffle_rng", path)
    if not isinstance(fields["dropout_rngs"], list):
        raise FileFormatError(f"{path}: dropout_rngs must be a list of generator states")
    for i, state in enumerate(fields["dropout_rngs"]):
        _check_rng_state(state, f"dropout_rngs[{i}]", path)

    return int(epoch), fields


def _numbered(tensors: dict[str, np.ndarray], path: Path) -> dict[str, list[np.ndarray]]:
    """Tensors named ``param.<i>`` and ``optim.<state>.<i>``, as lists by prefix in order of i."""
    groups: dict[str, dict[int, np.ndarray]] = {"param": {}}
    for name, value in tensors.items():
        match = _TENSOR_NAME.fullmatch(name)
        if match is None or match.group(2) in ("optimizer", "t"):
            raise FileFormatError(f"{path}: unexpected tensor {name!r} (expected param.<i> and "
                                  f"optim.<state>.<i>)")
        groups.setdefault(match.group(1), {})[int(match.group(3))] = value
    lists = {}
    for prefix, found in groups.items():
        if sorted(found) != list(range(len(found))):
            raise FileFormatError(f"{path}: the tensors {prefix}.<i> must be numbered 0 to "
                                  f"{len(found) - 1}; got {sorted(found)[:10]}")
        lists[prefix] = [found[i] for i in range(len(found))]
    return lists


def _split_buffer(flat: np.ndarray, per_array: list[np.ndarray], fingerprint: dict[str, Any],
                  path: Path) -> list[np.ndarray]:
    """The one parameter tensor of format 2 as the arrays of the fingerprint's architecture."""
    from ..io import _expected_shapes

    architecture = fingerprint.get("architecture")
    if per_array or flat.ndim != 1 or not isinstance(architecture, list):
        raise FileFormatError(f"{path}: a checkpoint holds its parameters either as one 1-D tensor "
                              f"'params' with the architecture in its fingerprint, or as param.<i>")
    shapes = list(_expected_shapes(architecture, path).values())
    sizes = [int(np.prod(shape)) for shape in shapes]
    if flat.size != sum(sizes):
        raise FileFormatError(f"{path}: the parameter tensor holds {flat.size} values; the architecture "
                              f"has {sum(sizes)}")
    ends = np.cumsum(sizes)
    return [flat[end - size:end].reshape(shape) for shape, size, end in zip(shapes, sizes, ends, strict=True)]


def _json(meta: dict[str, str], key: str, path: Path) -> Any:
    if key not in meta:
        raise FileFormatError(f"{path}: malformed checkpoint metadata (no {key!r})")
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError) as err:  # RecursionError: brackets nested thousands deep
        raise FileFormatError(f"{path}: malformed checkpoint metadata ({key}: {err})") from None


def _check_rng_state(state: Any, name: str, path: Path) -> None:
    """The state of a PCG64 generator (what ``fit`` saves), checked by loading it into one."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise FileFormatError(f"{path}: {name} must be the state of a PCG64 random generator")
    try:
        np.random.PCG64().state = state  # type: ignore[assignment]  # checked right here
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise FileFormatError(f"{path}: {name} is not a valid PCG64 state ({err})") from None


def _check_shapes(params: list[np.ndarray], buffers: dict[str, list[np.ndarray]],
                  fingerprint: dict[str, Any], path: Path) -> None:
    """Parameters of the fingerprint's dtype and architecture; optimizer arrays like them."""
    dtype = fingerprint.get("dtype")
    if dtype is not None and any(p.dtype.name != dtype for p in params):
        raise FileFormatError(f"{path}: the parameters must be {dtype}, the run's dtype")
    architecture = fingerprint.get("architecture")
    if architecture is not None:
        from ..io import _expected_shapes

        if not isinstance(architecture, list):
            raise FileFormatError(f"{path}: the fingerprint's architecture must be a list of "
                                  f"layers")
        expected = list(_expected_shapes(architecture, path).values())  # W, b of each Dense
        if [p.shape for p in params] != expected:
            raise FileFormatError(f"{path}: the parameters have shapes "
                                  f"{[p.shape for p in params]}; the architecture says {expected}")
    for key, arrays in buffers.items():
        if [(a.shape, a.dtype) for a in arrays] != [(p.shape, p.dtype) for p in params]:
            raise FileFormatError(f"{path}: the optimizer's {key!r} arrays must match the "
                                  f"parameters in number, shapes and dtypes")


def load_latest(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest good checkpoint in ``directory`` (``None`` if there is none).

    A newer file that is truncated or corrupt is reported with a warning and skipped, so the
    previous good checkpoint is used.
    """
    directory = Path(path_arg(directory, "directory"))
    for path in sorted(directory.glob("checkpoint-*.safetensors"), reverse=True):
        try:
            return _read(path)
        except FileFormatError as err:
            warnings.warn(f"skipping a bad checkpoint: {err}", RuntimeWarning, stacklevel=2)
    return None
