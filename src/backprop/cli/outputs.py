"""Where ``train`` writes, checked before it trains, and a trained network never lost.

Before training, :func:`check_folder` makes each output folder (``--out``'s, and
``--checkpoint-dir``) and writes and removes a probe file in it, and :func:`check_room` refuses
a disk that cannot hold even the parameters: a folder under ``/proc`` or on a read-only disk
fails in one line before the first epoch, not after the last. A disk can still fill up while
the network trains; then :func:`save_model` writes the network to a fallback folder instead
(the checkpoint folder, else the system's temporary folder) and the error names both paths.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, WriteError

if TYPE_CHECKING:
    from ..network import Network


class SavedElsewhere(WriteError):
    """The model file could not be written where asked, but the network was saved at
    :attr:`fallback`: the message says where."""

    def __init__(self, failure: WriteError, fallback: Path) -> None:
        super().__init__(failure.filename, failure.errno, str(failure.strerror))
        self.fallback = fallback

    def __str__(self) -> str:
        return (f"{super().__str__()}; the trained network was saved to "
                f"{str(self.fallback)!r} instead")


class FolderNotWritable(WriteError):
    """An output folder that refuses files, found before training; the message names the flag."""

    def __init__(self, flag: str, folder: Path, errno: int | None, cause: str) -> None:
        super().__init__(folder, errno, cause)
        self.flag = flag

    def __str__(self) -> str:
        return f"{self.flag}: cannot write in the folder {self.filename!r}: {self.strerror}"


def check_folder(flag: str, folder: Path) -> None:
    """Make ``folder`` (and its parents) and prove that a file can be written in it.

    Raises:
        WriteError: naming ``flag``, the folder and the cause (no permission, a read-only or
            full disk, a path through a file, ``/proc``).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise FolderNotWritable(flag, folder, err.errno, err.strerror or str(err)) from None


def check_out(flag: str, path: Path) -> None:
    """``path`` names a file (not a folder) in a folder that can be written to."""
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a folder; name the file to write, e.g. "
                          f"{str(path / 'model.safetensors')!r}")
    check_folder(flag, path.parent)


def check_room(flag: str, folder: Path, nbytes: int) -> None:
    """Refuse a disk with less than ``nbytes`` free: a file of that size can never be written
    there (a lower bound: a disk that passes can still fill up while training)."""
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise FolderNotWritable(flag, folder, None,
                         f"only {free:,} bytes free on its disk, and the network's parameters "
                         f"alone take {nbytes:,}")


def save_model(net: Network, path: Path, metadata: dict[str, Any],
               fallbacks: list[Path | None]) -> Path:
    """Save ``net`` to ``path``; if the file system refuses, to the first fallback folder that
    takes it (``None`` entries are skipped; the system's temporary folder is tried last).

    Raises:
        SavedElsewhere: ``path`` could not be written, the network is at ``fallback``.
        WriteError: no folder could take it (the error of ``path``).
    """
    from .. import io

    try:
        return io.save(net, path, metadata=metadata)
    except WriteError as failure:
        for folder in [*fallbacks, Path(tempfile.gettempdir())]:
            if folder is None or folder.resolve() == path.parent.resolve():
                continue
            try:
                fd, name = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=path.suffix or
                                            ".safetensors", dir=folder)
                os.close(fd)
            except OSError:
                continue
            try:
                saved = io.save(net, name, metadata=metadata)
            except WriteError:
                Path(name).unlink(missing_ok=True)
                continue
            raise SavedElsewhere(failure, saved) from None
        raise
