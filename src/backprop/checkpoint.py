"""Training checkpoints: everything ``fit`` needs to resume bit for bit, one file per epoch.

A checkpoint is a safetensors file (no code runs on load) holding the parameters,
the optimizer's state arrays, and as metadata: the epoch, the optimizer's step
count, the states of the shuffling and dropout random generators, the history so
far, a fingerprint of the run (architecture, data size, batch size, seed, ...)
and the SHA-256 of all tensor bytes, so that a truncated or corrupted file is
detected. Files are written atomically (temporary file, fsync, rename), and the
previous checkpoint is kept, so a kill at any moment leaves at least one good one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileFormatError

FORMAT = "backprop.checkpoint"
FORMAT_VERSION = 1
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


def save(directory: str | os.PathLike, *, epoch: int, params: list[np.ndarray], optimizer: dict[str, Any],
         shuffle_rng: dict[str, Any], dropout_rngs: list[dict[str, Any]], history: dict[str, Any],
         fingerprint: dict[str, Any]) -> Path:
    """Write ``checkpoint-<epoch>.safetensors`` into ``directory`` atomically; keep the previous one."""
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"param.{i}": np.ascontiguousarray(p) for i, p in enumerate(params)}
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
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in sorted(directory.glob("checkpoint-*.safetensors"))[:-_KEEP]:
        old.unlink(missing_ok=True)
    return path


def _read(path: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise FileFormatError(f"{path}: unreadable checkpoint ({err})") from None
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path}: not a backprop checkpoint")
    if int(meta.get("format_version", "0")) > FORMAT_VERSION:
        raise FileFormatError(f"{path}: written by a newer backprop (checkpoint format "
                              f"{meta['format_version']}); upgrade backprop")
    if _digest(tensors) != meta.get("sha256"):
        raise FileFormatError(f"{path}: the SHA-256 of its tensors does not match: the file is corrupt")
    try:
        optimizer: dict[str, Any] = json.loads(meta["optimizer"])
        buffers: dict[str, dict[int, np.ndarray]] = {}
        params = {}
        for name, value in tensors.items():
            kind, _, rest = name.partition(".")
            if kind == "param":
                params[int(rest)] = value
            else:
                key, _, index = rest.rpartition(".")
                buffers.setdefault(key, {})[int(index)] = value
        for key, arrays in buffers.items():
            optimizer[key] = [arrays[i] for i in range(len(arrays))]
        return Checkpoint(
            epoch=int(meta["epoch"]), params=[params[i] for i in range(len(params))],
            optimizer=optimizer, shuffle_rng=json.loads(meta["shuffle_rng"]),
            dropout_rngs=json.loads(meta["dropout_rngs"]), history=json.loads(meta["history"]),
            fingerprint=json.loads(meta["fingerprint"]), path=path)
    except (KeyError, ValueError, TypeError) as err:
        raise FileFormatError(f"{path}: malformed checkpoint metadata ({err})") from None


def load_latest(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest good checkpoint in ``directory`` (``None`` if there is none).

    A newer file that is truncated or corrupt is reported with a warning and skipped, so the
    previous good checkpoint is used.
    """
    directory = Path(directory)
    for path in sorted(directory.glob("checkpoint-*.safetensors"), reverse=True):
        try:
            return _read(path)
        except FileFormatError as err:
            warnings.warn(f"skipping a bad checkpoint: {err}", RuntimeWarning, stacklevel=2)
    return None
