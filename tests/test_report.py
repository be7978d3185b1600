"""The training report: one self-contained HTML page, checked in a real headless Chromium.

A tiny model is trained once by ``backprop train --report`` on the first 600 MNIST samples.
The page must embed every figure as a PNG data URI and reference nothing outside itself;
in Chromium it must load without console errors, and its own on-load check (every
``<img>`` decoded, written into ``#status``) must say ``ok N images``. The browser tests
skip, saying why, only where no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import backprop as bp
from backprop import cli
from backprop.insight.report import build_report, model_test_set, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("Training curves", "Error at each layer", "Weights of each Dense layer",
            "confusion matrix", "Most confidently wrong test samples",
            "First layer's weights as images")


def _chromium() -> str | None:
    for name in (os.environ.get("BACKPROP_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium); the report "
                             "page's headless-browser test needs it")


def run_chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Load ``page`` in headless Chromium with console logging on stderr."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    """Chromium logs every console message (errors, uncaught exceptions) as ``CONSOLE``; the
    report page itself logs nothing, so any such line is a failure."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``backprop train --report`` on 600 samples: the model and its report."""
    path = tmp_path_factory.mktemp("report") / "tiny.safetensors"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["train", "--limit", "600", "--layers", "784,16,10", "--epochs", "3",
                         "--batch-size", "30", "--quiet", "--report", "--seed", "0",
                         "--out", str(path)])
    assert code == 0
    return path, buf.getvalue()


def images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def test_train_report_writes_a_self_contained_page(trained):
    path, out = trained
    report = path.with_name("tiny.report.html")
    assert f"report: {report}" in out
    page = report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in page, section
    srcs = images(page)
    # five figures (curves, ‖δˡ‖, weight histograms, confusion matrix, W¹ mosaic) and a
    # thumbnail per confidently wrong test image
    n_wrong = page.count('alt="test image ')
    assert 1 <= n_wrong <= 24
    assert len(srcs) == page.count("<img ") == 5 + n_wrong
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    # nothing outside the page: no links, no external sources, a policy that forbids them
    assert "<link" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page
    # the gradient norms recorded by --report, one row per epoch, for both Dense layers
    assert "l = 1: Dense(784, 16)" in page and "l = 2: Dense(16, 10)" in page
    assert "trained without" not in page
    assert f'data-images="{len(srcs)}"' in page


def test_metadata_grad_norms_from_train_report(trained):
    path, _ = trained
    meta = bp.io.read_metadata(path)["metadata"]
    norms = meta["history"]["grad_norms"]
    assert sorted(norms) == ["0", "2"] and all(len(v) == 3 for v in norms.values())
    assert all(v > 0 for values in norms.values() for v in values)


def test_report_command_without_grad_norms_notes_it(tmp_path, capsys):
    (x, y), (xt, yt) = bp.datasets.load_mnist()
    net = bp.Network([bp.Dense(784, 12), bp.ReLU(), bp.Dense(12, 10)], seed=1)
    history = bp.fit(net, x[:400], y[:400], loss="cross_entropy", optimizer=bp.Adam(1e-2),
                     epochs=2, batch_size=40, validation_data=(xt[:200], yt[:200]), verbose=False)
    model = tmp_path / "plain.safetensors"
    bp.save(net, model, metadata={"loss": "cross_entropy", "history": history.as_dict(),
                                  "settings": {"dataset": "mnist", "limit": 400}})
    code = cli.main(["report", str(model), "--limit", "250", "--out", str(tmp_path / "r.html")])
    assert code == 0
    assert f"to {tmp_path / 'r.html'}" in capsys.readouterr().out
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "was trained without <code>--report</code>" in page
    assert "250 test samples" in page  # --limit wins over the limit of training
    assert len(images(page)) == 4 + page.count('alt="test image ')  # no ‖δˡ‖ figure
    # the default path: <model stem>.report.html next to the model, with the training limit
    assert write_report(model) == tmp_path / "plain.report.html"
    assert "400 test samples" in (tmp_path / "plain.report.html").read_text(encoding="utf-8")


def test_confusion_matrix_and_wrong_samples_agree_with_predictions(trained):
    path, _ = trained
    net = bp.load(path)
    x, y = model_test_set({"limit": 600}, "float32")
    assert x.shape == (600, 784)
    from backprop.insight.report import confusion_matrix

    pred = net.predict(x).argmax(axis=1)
    m = confusion_matrix(y, pred, 10)
    assert m.sum() == 600 and np.trace(m) == np.sum(pred == y)
    page = path.with_name("tiny.report.html").read_text(encoding="utf-8")
    assert f"({int(np.sum(pred != y)):,} wrong)" in page


def test_non_image_inputs_and_regression_targets():
    net = bp.Network([bp.Dense(4, 5), bp.Tanh(), bp.Dense(5, 3)], seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    page = build_report(net, {"loss": "cross_entropy"}, (x, rng.integers(0, 3, 50)), title="t")
    assert "<table><tr><th>test index</th>" in page  # a table instead of thumbnails
    assert "not 784 = 28×28 images" in page
    assert "holds no training history" in page
    page = build_report(net, {"loss": "quadratic"}, (x, rng.random((50, 3))), title="t")
    assert "not class labels" in page
    page = build_report(net, {}, None, title="t")
    assert "No test set" in page


def test_report_bad_limit_exit_2(trained, capsys):
    path, _ = trained
    assert cli.main(["report", str(path), "--limit", "0"]) == 2
    assert "--limit must be a positive integer" in capsys.readouterr().err


@needs_chromium
def test_page_loads_in_chromium_with_every_image_decoded(trained, tmp_path):
    path, _ = trained
    report = path.with_name("tiny.report.html")
    n = report.read_text(encoding="utf-8").count("<img ")
    r = run_chromium(report, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f'<p id="status" class="ok">ok {n} images</p>' in r.stdout, r.stdout[:500]
    assert console_messages(r.stderr) == []

    shot = tmp_path / "report.png"
    r = run_chromium(report, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_messages(r.stderr) == []
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1280, 2400)
        grey = np.asarray(img.convert("L"), dtype=np.float64)
    assert grey.std() > 10  # figures and text, not a blank page


@needs_chromium
def test_the_page_check_catches_a_broken_image(trained, tmp_path):
    """The page's own check is not a rubber stamp: a corrupt PNG turns #status into FAILED."""
    path, _ = trained
    page = path.with_name("tiny.report.html").read_text(encoding="utf-8")
    first = images(page)[0]
    broken = tmp_path / "broken.html"
    broken.write_text(page.replace(first, "data:image/png;base64,iVBORw0KGgoAAAAA"),
                      encoding="utf-8")
    r = run_chromium(broken, tmp_path, "--dump-dom")
    n = page.count("<img ")
    assert f'class="bad">FAILED: 1 of {n} images did not decode' in r.stdout, r.stdout[:500]
