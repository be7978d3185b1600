"""Checkpoints: a run killed with SIGKILL in the middle of an epoch resumes to bitwise the
weights of a run that was never interrupted; a corrupt newest checkpoint is detected and the
previous good one is used."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import backprop as bp
from backprop.errors import ConfigError
from backprop.training import checkpoint

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    import backprop as bp

    out, ckpt, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    x = rng.random((3000, 30)).astype(np.float32)
    y = rng.integers(0, 4, 3000)
    net = bp.Network([bp.Dense(30, 24), bp.ReLU(), bp.Dropout(0.25), bp.Dense(24, 4)], seed=5)
    opt = bp.SGD(lr=0.05, momentum=0.9, schedule=bp.schedules.CosineDecay(1500))

    class StallInEpoch3(bp.Callback):  # stands for a machine that dies mid-epoch
        def on_epoch_begin(self, epoch, net, history):
            self.epoch = epoch
        def on_batch_end(self, batch, logs, net):
            if self.epoch == 3 and batch == 40:
                (out.parent / "in-epoch-3").write_text("")
                time.sleep(60)

    callbacks = [StallInEpoch3()] if mode == "stall" else []
    bp.fit(net, x, y, loss="cross_entropy", optimizer=opt, epochs=5, batch_size=10, seed=7,
           verbose=False, callbacks=callbacks,
           checkpoint_dir=None if mode == "plain" else ckpt, resume=(mode == "resume"))
    np.savez(out, *net.parameters())
""")


def _run(tmp_path: Path, mode: str, out: str, ckpt: Path) -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / out), str(ckpt), mode])


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    ckpt = tmp_path / "ckpt"
    assert _run(tmp_path, "plain", "plain.npz", ckpt).wait(timeout=120) == 0

    victim = _run(tmp_path, "stall", "never.npz", ckpt)
    deadline = time.monotonic() + 120
    while not (tmp_path / "in-epoch-3").exists():
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # in the middle of epoch 3
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert sorted(p.name for p in ckpt.glob("checkpoint-*")) == [
        "checkpoint-00001.safetensors", "checkpoint-00002.safetensors"]
    assert not list(ckpt.glob("*.tmp"))

    assert _run(tmp_path, "resume", "resumed.npz", ckpt).wait(timeout=120) == 0
    for resumed, plain in zip(_weights(tmp_path / "resumed.npz"), _weights(tmp_path / "plain.npz"),
                              strict=True):
        np.testing.assert_array_equal(resumed, plain)


def _data():
    rng = np.random.default_rng(1)
    return rng.random((200, 8)).astype(np.float32), rng.integers(0, 3, 200)


def _net():
    return bp.Network([bp.Dense(8, 12), bp.Tanh(), bp.Dropout(0.2), bp.Dense(12, 3)], seed=2)


def _fit(net, epochs, **kwargs):
    x, y = _data()
    return bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.Adam(lr=1e-2), epochs=epochs,
                  batch_size=16, verbose=False, **kwargs)


def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path):
    plain = _net()
    _fit(plain, 4)
    _fit(_net(), 3, checkpoint_dir=tmp_path)
    newest = tmp_path / "checkpoint-00003.safetensors"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    resumed = _net()
    with pytest.warns(RuntimeWarning, match="checkpoint-00003.*"):
        history = _fit(resumed, 4, checkpoint_dir=tmp_path, resume=True)
    assert history.epoch == [1, 2, 3, 4]
    for a, b in zip(resumed.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path):
    _fit(_net(), 1, checkpoint_dir=tmp_path)
    path = tmp_path / "checkpoint-00001.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="SHA-256"):
        assert checkpoint.load_latest(tmp_path) is None


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    _fit(_net(), 1, checkpoint_dir=tmp_path)
    x, y = _data()
    with pytest.raises(ConfigError, match="batch_size"):
        bp.fit(_net(), x, y, loss="cross_entropy", optimizer=bp.Adam(lr=1e-2), epochs=2,
               batch_size=8, verbose=False, checkpoint_dir=tmp_path, resume=True)


def test_resume_without_checkpoints_starts_from_scratch(tmp_path):
    a, b = _net(), _net()
    _fit(a, 2)
    _fit(b, 2, checkpoint_dir=tmp_path / "empty", resume=True)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_only_the_two_newest_checkpoints_are_kept(tmp_path):
    history = _fit(_net(), 4, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-00003.safetensors", "checkpoint-00004.safetensors"]
    saved = checkpoint.load_latest(tmp_path)
    assert saved.epoch == 4 and saved.history["loss"] == history.loss


def test_cli_checkpoint_dir_and_resume(tmp_path, capsys):
    from backprop import cli

    common = ["train", "--limit", "300", "--layers", "784,16,10", "--batch-size", "50", "--quiet",
              "--checkpoint-dir", str(tmp_path / "ck")]
    assert cli.main([*common, "--epochs", "4", "--out", str(tmp_path / "plain.safetensors")]) == 0
    assert cli.main([*common, "--epochs", "2", "--out", str(tmp_path / "half.safetensors")]) == 0
    assert cli.main([*common, "--epochs", "4", "--resume", "--out", str(tmp_path / "resumed.safetensors")]) == 0
    plain, resumed = bp.load(tmp_path / "plain.safetensors"), bp.load(tmp_path / "resumed.safetensors")
    for a, b in zip(plain.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--quiet"]) == 2
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
