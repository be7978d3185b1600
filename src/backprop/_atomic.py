"""Files written atomically: a reader sees the old file or the whole new one, never half.

The new content goes to a temporary file beside the target, is flushed to disk (fsync),
then renamed over the target, and the directory entry is flushed too; if writing fails
or is interrupted, the temporary file is removed and the target is untouched. A write that
fails for want of room or permission raises :class:`~backprop.errors.WriteError` naming the
target (not the temporary file) and the cause.
"""

from __future__ import annotations

import errno as errnos
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import BackpropError, WriteError

#: the causes of a failed write that are the file system's, not the caller's
WRITE_ERRNOS = frozenset({errnos.ENOSPC, errnos.EDQUOT, errnos.EROFS, errnos.EACCES, errnos.EPERM,
                          errnos.EIO, errnos.ENOENT, errnos.ENOTDIR, errnos.EISDIR, errnos.EFBIG,
                          errnos.ENAMETOOLONG, errnos.EINVAL})
#: how a writer written in Rust (safetensors) reports an operating-system error: "... (os error 28)"
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def write_atomically(path: str | os.PathLike, write: Callable[[str], None], *, suffix: str = ".tmp") -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then move it onto ``path``.

    ``write`` may raise (a failed checksum, say): then nothing is left behind, and ``path``
    keeps what it held before.

    Raises:
        WriteError: the folder of ``path`` cannot be written to, or the disk filled up; the
            message names ``path`` and the cause.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:  # the folder refuses files: the error names the temporary file
        raise write_error(path, err, err.filename) or err from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        failure = write_error(path, err, tmp)
        if failure is None:
            raise
        raise failure from None
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is done regardless
        return path
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return path


def write_error(path: Path, err: BaseException, tmp: str | None = None) -> WriteError | None:
    """``err`` as a :class:`WriteError` naming ``path`` when the file system refused to write it
    (no room, no permission, no such folder), else ``None``: the writer's own errors pass
    unchanged, and so does an error about another file (``tmp`` is the file being written),
    such as an input the writer could not read."""
    if isinstance(err, BackpropError):
        return None
    code: int | None = None
    if isinstance(err, OSError):
        if err.filename is not None and str(err.filename) not in (str(path), tmp):
            return None
        code = err.errno
    else:
        found = _RUST_OS_ERROR.search(str(err))  # safetensors' SafetensorError
        code = int(found.group(1)) if found else None
    if code not in WRITE_ERRNOS:
        return None
    return WriteError(path, code, os.strerror(code))
