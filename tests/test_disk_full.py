"""Nothing is lost when the disk is full or a folder refuses files.

* ``train`` checks before training that its output and checkpoint folders take files, and
  that the disk can hold the parameters at all;
* a save that fails is one line with exit code 1 naming the file and the cause, and the
  trained network is written to a fallback folder that the line names;
* a checkpoint that fails leaves the previous one intact, and ``--resume`` continues from it
  to bitwise the weights of an uninterrupted run.

The real failures use a small tmpfs (``mount -t tmpfs``, as root; those tests skip where
mounting is not permitted), filled up while the network trains by a callback slipped into
``fit``. The others make the write fail by replacing the writer.
"""

from __future__ import annotations

import errno
import importlib
import os
import subprocess
import tempfile
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import backprop as bp
from backprop import cli
from backprop._atomic import write_atomically
from backprop.errors import ChecksumError, WriteError

TRAIN = ["--layers", "5,8,3", "--batch-size", "50", "--quiet", "--optimizer", "adam"]


def run(capsys, *argv) -> SimpleNamespace:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return SimpleNamespace(code=code, out=captured.out, err=captured.err)


def error_line(r, code: int) -> str:
    assert r.code == code, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err, r.err
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> list[str]:
    """``--train-file``/``--train-labels`` of 200 samples, 5 features, classes 0..2."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5))
    return ["--train-file", str(d / "x.npy"), "--train-labels", str(d / "y.npy")]


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of the given size (``tmpfs("600k")``) under ``tmp_path``; unmounted after."""
    mounted = []

    def mount(size: str, *options: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        opts = ",".join([f"size={size}", *options])
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its disk is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC


class FillDisk(bp.Callback):
    """Fills ``folder``'s disk at the end of epoch ``epoch`` (before its checkpoint), or when
    training ends (``epoch=None``: before the model file is written)."""

    def __init__(self, folder: Path, epoch: int | None) -> None:
        self.folder, self.epoch = folder, epoch

    def on_epoch_end(self, epoch, logs, net, history) -> None:
        if epoch == self.epoch:
            fill(self.folder)

    def on_train_end(self, net, history) -> None:
        if self.epoch is None:
            fill(self.folder)


@pytest.fixture
def disk_fills_up(monkeypatch):
    """``disk_fills_up(folder, epoch)``: the CLI's ``fit`` gets this :class:`FillDisk` (returned;
    set its ``epoch`` to -1 to disarm it)."""
    fits = importlib.import_module("backprop.distributed.fit")  # the fit `backprop train` calls

    def install(folder: Path, epoch: int | None) -> FillDisk:
        real, filler = fits.fit, FillDisk(folder, epoch)

        def fit(*args, callbacks=(), **kwargs):
            return real(*args, callbacks=[*callbacks, filler], **kwargs)

        monkeypatch.setattr(fits, "fit", fit)
        return filler
    return install


@pytest.fixture
def temp_dir(monkeypatch, tmp_path) -> Path:
    """The system's temporary folder, for this test: a folder of its own."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> bp.Network:
    """The network of 4 epochs trained without any trouble (what every rescue must equal)."""
    out = tmp_path_factory.mktemp("reference") / "m.safetensors"
    assert cli.main([*data, *TRAIN, "--epochs", "4", "--out", str(out)]) == 0
    return bp.load(out)


# ------------------------------------------------------------------ checked before training
def test_an_unwritable_out_or_checkpoint_folder_is_found_before_training(capsys, data, tmp_path):
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "1", "--out", "/proc/bp/m.safetensors")
    line = error_line(r, 1)
    assert line.startswith("backprop train: error: --out: cannot write in the folder '/proc/bp'")
    assert r.out == "" and ".tmp" not in line  # nothing trained; no temporary file named
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "1", "--checkpoint-dir", "/proc/bp",
            "--out", tmp_path / "m.safetensors")
    assert error_line(r, 1).startswith("backprop train: error: --checkpoint-dir: cannot write")
    assert r.out == "" and not (tmp_path / "m.safetensors").exists()


def test_a_read_only_disk_is_found_before_training(capsys, data, tmpfs):
    disk = tmpfs("64k", "ro")
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "1", "--out", disk / "m.safetensors")
    line = error_line(r, 1)
    assert f"--out: cannot write in the folder '{disk}': Read-only file system" in line
    assert r.out == ""


def test_a_disk_too_small_for_the_parameters_is_found_before_training(capsys, data, tmpfs,
                                                                      tmp_path):
    disk = tmpfs("64k")
    wide = [*data, "--layers", "5,4000,3", "--epochs", "1", "--quiet"]  # 36,003 parameters
    r = run(capsys, "train", *wide, "--out", disk / "m.safetensors")
    line = error_line(r, 1)
    assert f"--out: cannot write in the folder '{disk}': only" in line
    assert "the network's parameters alone take 144,012" in line and r.out == ""
    r = run(capsys, "train", *wide, "--checkpoint-dir", disk / "ck", "--out",
            tmp_path / "m.safetensors")
    line = error_line(r, 1)
    assert f"--checkpoint-dir: cannot write in the folder '{disk / 'ck'}': only" in line
    assert r.out == "" and not (tmp_path / "m.safetensors").exists()


# ------------------------------------------------------------------ a failed save
def test_a_full_disk_after_training_keeps_the_network(capsys, data, tmpfs, disk_fills_up,
                                                      temp_dir, reference):
    disk = tmpfs("600k")
    disk_fills_up(disk, None)
    out = disk / "m.safetensors"
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "4", "--out", out)
    line = error_line(r, 1)
    [saved] = temp_dir.glob("m-*.safetensors")
    assert line == (f"backprop train: error: cannot write '{out}': No space left on device; "
                    f"the trained network was saved to '{saved}' instead")
    np.testing.assert_array_equal(bp.load(saved).parameter_buffer, reference.parameter_buffer)
    assert not out.exists() and [p.name for p in disk.iterdir()] == ["filler"]  # no temp left


def test_a_failed_save_goes_to_the_checkpoint_folder(capsys, data, tmp_path, monkeypatch,
                                                     reference):
    """Without a tmpfs: safetensors' writer fails as it does on a full disk."""
    import safetensors.numpy
    from safetensors import SafetensorError

    real = safetensors.numpy.save_file
    full = tmp_path / "full"

    def save_file(tensors, filename, metadata=None):
        if Path(filename).parent == full:
            raise SafetensorError("Error while serializing: I/O error: No space left on device "
                                  "(os error 28)")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)
    checkpoints = tmp_path / "ck"
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "4", "--checkpoint-dir", checkpoints,
            "--out", full / "m.safetensors")
    line = error_line(r, 1)
    [saved] = checkpoints.glob("m-*.safetensors")
    assert line == (f"backprop train: error: cannot write '{full / 'm.safetensors'}': No space "
                    f"left on device; the trained network was saved to '{saved}' instead")
    np.testing.assert_array_equal(bp.load(saved).parameter_buffer, reference.parameter_buffer)
    assert list(full.iterdir()) == []


# ------------------------------------------------------------------ a failed checkpoint
def test_a_failed_checkpoint_keeps_the_previous_one_and_resume_continues(
        capsys, data, tmpfs, disk_fills_up, tmp_path, reference):
    disk = tmpfs("600k")
    filler = disk_fills_up(disk, 3)  # the checkpoint of epoch 3 finds the disk full
    out = tmp_path / "m.safetensors"
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "4", "--checkpoint-dir", disk,
            "--out", out)
    line = error_line(r, 1)
    assert line == (f"backprop train: error: cannot write '{disk / 'checkpoint-00003.safetensors'}'"
                    f": No space left on device; the checkpoint of epoch 2 is intact: make room "
                    f"and rerun with --resume to continue from it")
    assert sorted(p.name for p in disk.glob("checkpoint-*")) == [
        "checkpoint-00001.safetensors", "checkpoint-00002.safetensors"]
    assert bp.training.checkpoint.load(disk / "checkpoint-00002.safetensors").epoch == 2
    assert not out.exists()

    (disk / "filler").unlink()  # room again
    filler.epoch = -1
    r = run(capsys, "train", *data, *TRAIN, "--epochs", "4", "--checkpoint-dir", disk,
            "--resume", "--out", out)
    assert r.code == 0, r.err
    np.testing.assert_array_equal(bp.load(out).parameter_buffer, reference.parameter_buffer)


# ------------------------------------------------------------------ write_atomically
def test_write_atomically_names_the_target_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    def no_room(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError) as info:
        write_atomically(target, no_room)
    assert str(info.value) == f"cannot write '{target}': No space left on device"
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert isinstance(info.value, OSError)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("failure", [
    ChecksumError("the download's SHA-256 differs"),          # the writer's own verdict
    urllib.error.URLError("no network"),                      # an OSError that is no disk's
    ValueError("not JSON-serialisable"),
])
def test_write_atomically_passes_the_writers_own_errors(tmp_path, failure):
    def write(tmp: str) -> None:
        raise failure

    with pytest.raises(type(failure)) as info:
        write_atomically(tmp_path / "f", write)
    assert info.value is failure and list(tmp_path.iterdir()) == []


def test_write_atomically_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "m.bin"
    with pytest.raises(WriteError, match=f"cannot write '{target}': No such file or directory"):
        write_atomically(target, lambda tmp: None)


def test_write_atomically_passes_an_error_about_another_file(tmp_path):
    """A writer that cannot read its input (``backprop convert missing.csv x.npy``) fails with
    that error, not with one that blames the file being written."""
    def write(tmp: str) -> None:
        open(tmp_path / "missing.csv", "rb")

    with pytest.raises(FileNotFoundError) as info:
        write_atomically(tmp_path / "x.npy", write)
    assert not isinstance(info.value, WriteError)
    assert info.value.filename == str(tmp_path / "missing.csv")
