"""End-to-end tests of the ``backprop`` command: train, evaluate, predict, gradcheck, info.

Most tests call :func:`backprop.cli.main` in-process (argparse's usage errors arrive as
``SystemExit(2)``); a few run the real command in a subprocess to prove the exit codes and
the absence of tracebacks. To keep the file fast, in-process runs read MNIST from a cached
prefix of the real embedded data set (the first ``N_CACHED`` training and test samples, as
the real loader returns them); every run uses ``--limit`` <= ``N_CACHED``, so it sees exactly
the samples the real loader would give it. The subprocess tests use the real loader.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import backprop as bp
from backprop import cli
from backprop.activations import Softmax
from backprop.cli.app import build_parser, implicit_train
from backprop.cli.train import check_train_args
from backprop.datasets.images import read_digit_png

N_CACHED = 1000
TINY = ["--layers", "784,16,10", "--quiet"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ helpers and fixtures
@pytest.fixture(scope="session")
def mnist_prefix():
    """The first N_CACHED training and test samples of the real MNIST, per dtype."""
    cache = {}
    for dtype in ("float32", "float64"):
        (x, y), (xt, yt) = bp.datasets.load_mnist(dtype=dtype)
        cache[dtype] = ((x[:N_CACHED].copy(), y[:N_CACHED].copy()),
                        (xt[:N_CACHED].copy(), yt[:N_CACHED].copy()))
    return cache


@pytest.fixture(autouse=True)
def fast_mnist(monkeypatch, mnist_prefix):
    """The CLI's MNIST loader (``load_mnist(dtype=...)``) returns copies of the cached prefix."""
    real = bp.datasets.load_mnist

    def load_mnist(*, dtype="float32", **kwargs):
        if kwargs:  # not how the CLI calls it
            return real(dtype=dtype, **kwargs)
        (x, y), (xt, yt) = mnist_prefix[np.dtype(dtype).name]
        return (x.copy(), y.copy()), (xt.copy(), yt.copy())

    monkeypatch.setattr(bp.datasets, "load_mnist", load_mnist)


def run(capsys, *argv) -> SimpleNamespace:
    """``backprop ARGV`` in-process: exit code, stdout, stderr."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors, --help, --version
        code = exc.code
    captured = capsys.readouterr()
    return SimpleNamespace(code=code, out=captured.out, err=captured.err)


def assert_one_line_error(r, code: int, *fragments: str) -> None:
    assert r.code == code, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train(capsys, out: Path, *flags) -> SimpleNamespace:
    r = run(capsys, "train", *flags, "--out", out)
    assert r.code == 0, r.err
    r.path = out
    r.metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    r.net = bp.load(out)
    r.meta = bp.io.read_metadata(out)["metadata"]
    return r


def read_predictions(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``predict --out``'s CSV: its header, the predicted classes and the outputs."""
    header = path.read_text().splitlines()[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    first = header.index("p0")
    assert header[0] == "class" and header[first:] == [f"p{j}" for j in range(len(header) - first)]
    return header, table[:, 0].astype(int), table[:, first:]


def kinds(net) -> list[str]:
    return [layer["kind"] for layer in net.config()]


def table_rows(out: str) -> list[list[str]]:
    """The rows of the per-epoch summary table printed by ``train`` (header excluded)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "loss"])
    rows = []
    for line in lines[start + 1:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        rows.append(cells)
    return rows


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_prefix):
    """A tiny model trained by the CLI on 1000 samples, well enough to classify easy digits."""
    path = tmp_path_factory.mktemp("trained") / "model.safetensors"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["train", "--limit", "1000", *TINY, "--epochs", "3", "--batch-size", "20",
                         "--lr", "0.01", "--schedule", "cosine", "--seed", "0", "--out", str(path)])
    assert code == 0
    metrics = json.loads(path.with_suffix(".metrics.json").read_text())
    return SimpleNamespace(path=path, out=buf.getvalue(), metrics=metrics, net=bp.load(path))


# ------------------------------------------------------------------ train: outputs
def test_train_writes_model_metrics_and_curves(trained, mnist_prefix):
    m, out = trained.metrics, trained.out
    assert f"saved model to {trained.path}" in out
    assert "training on 1,000 samples; Adam(lr=0.01" in out

    hist = m["history"]
    assert hist["epoch"] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(hist[key]) == 3, key
    # cosine decay over 3 epochs, recorded at the start of each: lr (1 + cos(pi e/3)) / 2
    assert hist["lr"] == pytest.approx([0.01, 0.0075, 0.0025])
    assert hist["loss"][2] < hist["loss"][0]

    test = m["test"]
    assert isinstance(test["accuracy"], float) and 0.0 <= test["accuracy"] <= 1.0
    assert test["accuracy"] > 0.6  # it learned something
    assert f"test: loss {test['loss']:.4f}, accuracy {test['accuracy']:.2%}  (1,000 samples)" in out
    # no validation split: the test set is scored after each epoch, last with the final weights
    assert hist["val_loss"][-1] == pytest.approx(test["loss"], rel=1e-12)

    rows = table_rows(out)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    for r, loss, acc, vloss, vacc in zip(rows, hist["loss"], hist["accuracy"], hist["val_loss"],
                                         hist["val_accuracy"], strict=True):
        assert r[1:5] == [f"{loss:.4f}", f"{acc:.4f}", f"{vloss:.4f}", f"{vacc:.4f}"]

    # the saved weights reproduce the recorded test loss
    (_, _), (xt, yt) = mnist_prefix["float32"]
    again = bp.evaluate(trained.net, xt, yt, "cross_entropy")
    assert again["loss"] == pytest.approx(test["loss"], rel=1e-6)
    assert again["accuracy"] == test["accuracy"]
    assert kinds(trained.net) == ["Dense", "ReLU", "Dense"]
    assert trained.net.n_params == 784 * 16 + 16 + 16 * 10 + 10

    curves = trained.path.with_suffix(".curves.png")
    data = curves.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    from PIL import Image

    with Image.open(curves) as img:
        assert img.size == (1000, 360)  # two panels (loss and accuracy), 10 x 3.6 in at 100 dpi
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5  # drawn, not blank


def test_seed_gives_bitwise_identical_weights(capsys, tmp_path):
    flags = ["--limit", "200", *TINY, "--epochs", "2", "--batch-size", "25", "--dropout", "0.2"]
    a = train(capsys, tmp_path / "a.safetensors", *flags, "--seed", "7")
    b = train(capsys, tmp_path / "b.safetensors", *flags, "--seed", "7")
    c = train(capsys, tmp_path / "c.safetensors", *flags, "--seed", "8")
    pa, pb, pc = (dict(r.net.named_parameters()) for r in (a, b, c))
    assert pa.keys() == pb.keys() == pc.keys()
    diffs = {k: float(np.abs(pa[k] - pb[k]).max()) for k in pa}
    assert all(np.array_equal(pa[k], pb[k]) for k in pa), (diffs, a.metrics, b.metrics)
    assert a.metrics["history"]["loss"] == b.metrics["history"]["loss"]
    assert not np.array_equal(pa["0.W"], pc["0.W"])


# ------------------------------------------------------------------ train: flags
def test_quadratic_loss_textbook_network(capsys, tmp_path):
    r = train(capsys, tmp_path / "q.safetensors", "--limit", "200", "--layers", "784,12,10",
              "--activation", "sigmoid", "--loss", "quadratic", "--optimizer", "sgd", "--lr", "3.0",
              "--batch-size", "10", "--epochs", "2", "--init", "normal", "--schedule", "constant",
              "--quiet")
    # the quadratic cost gets a sigmoid output layer automatically, as in the textbook
    assert kinds(r.net) == ["Dense", "Sigmoid", "Dense", "Sigmoid"]
    assert "init='normal'" in r.out
    assert "SGD(lr=3.0, momentum=0.0, nesterov=False, weight_decay=0.0)" in r.out
    assert r.metrics["loss"] == r.meta["loss"] == "quadratic"
    assert r.metrics["history"]["lr"] == [3.0, 3.0]
    # standard normal weights, moved only a little by 2 epochs on 200 samples
    w = r.net.layers[0].params["W"]
    assert abs(float(w.std()) - 1.0) < 0.05

    x = bp.datasets.load_mnist()[1][0][:4]
    np.save(tmp_path / "x.npy", x)
    p = run(capsys, "predict", r.path, tmp_path / "x.npy", "--out", tmp_path / "p.csv")
    assert p.code == 0
    _, classes, outputs = read_predictions(tmp_path / "p.csv")
    assert outputs.shape == (4, 10)
    assert list(classes) == list(r.net.predict(x).argmax(axis=1))
    assert np.all((outputs > 0) & (outputs < 1))  # sigmoid outputs, not a distribution
    np.testing.assert_allclose(outputs, r.net.predict(x), rtol=1e-5, atol=1e-7)

    g = run(capsys, "gradcheck", "--model", r.path, "--max-entries", "10")
    assert g.code == 0 and "Quadratic" in g.out, g.out + g.err


def test_sgd_momentum_nesterov_weight_decay_step_schedule(capsys, tmp_path):
    r = train(capsys, tmp_path / "s.safetensors", "--limit", "300", *TINY, "--optimizer", "sgd",
              "--lr", "0.1", "--momentum", "0.9", "--nesterov", "--weight-decay", "1e-4",
              "--schedule", "step", "--step-epochs", "1", "--gamma", "0.5", "--epochs", "3",
              "--batch-size", "50")
    assert ("SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0001, "
            "schedule=StepDecay(") in r.out
    assert r.metrics["history"]["lr"] == pytest.approx([0.1, 0.05, 0.025])
    s = r.meta["settings"]
    assert (s["optimizer"], s["lr"], s["momentum"], s["nesterov"], s["weight_decay"]) == \
        ("sgd", 0.1, 0.9, True, 1e-4)
    assert (s["schedule"], s["batch_size"], s["epochs"]) == ("step", 50, 3)
    assert len(table_rows(r.out)) == 3


def test_layers_activation_dropout_init(capsys, tmp_path):
    r = train(capsys, tmp_path / "l.safetensors", "--limit", "200", "--layers", "784,12,8,10",
              "--activation", "tanh", "--dropout", "0.3", "--input-dropout", "0.1",
              "--init", "glorot_uniform", "--epochs", "1", "--batch-size", "50", "--quiet")
    assert kinds(r.net) == ["Dropout", "Dense", "Tanh", "Dropout",
                            "Dense", "Tanh", "Dropout", "Dense"]
    rates = [layer["rate"] for layer in r.net.config() if layer["kind"] == "Dropout"]
    assert rates == [0.1, 0.3, 0.3]
    assert {layer.get("init") for layer in r.net.config() if layer["kind"] == "Dense"} == \
        {"glorot_uniform"}
    assert r.net.n_params == 784 * 12 + 12 + 12 * 8 + 8 + 8 * 10 + 10
    assert f"total parameters: {r.net.n_params:,}" in r.out


def test_validation_split_with_early_stopping_restores_best(capsys, tmp_path, mnist_prefix):
    r = train(capsys, tmp_path / "e.safetensors", "--limit", "200", *TINY,
              "--validation-split", "0.25", "--early-stopping", "1", "--epochs", "10",
              "--lr", "0.05", "--batch-size", "10", "--schedule", "constant")
    assert "training on 150 samples" in r.out
    hist = r.metrics["history"]
    n = len(hist["epoch"])
    assert 2 <= n < 10  # stopped early: 150 samples overfit fast at this rate
    assert len(hist["val_loss"]) == n and len(table_rows(r.out)) == n
    assert "validation loss" in r.out and "test loss" not in r.out
    best = int(np.argmin(hist["val_loss"])) + 1
    assert f"(restored the weights of epoch {best})" in r.out
    # the saved weights are the best epoch's: their loss on the held-out last 50 samples
    (x, y), _ = mnist_prefix["float32"]
    val = bp.evaluate(r.net, x[150:200], y[150:200], "cross_entropy")
    assert val["loss"] == pytest.approx(min(hist["val_loss"]), rel=1e-6)


def test_dtype_float64_and_threads(capsys, tmp_path):
    from backprop.threads import get_threads, set_threads

    try:
        r = train(capsys, tmp_path / "d.safetensors", "--limit", "100", *TINY, "--dtype", "float64",
                  "--threads", "1", "--epochs", "1", "--batch-size", "50")
        if get_threads() is not None:
            assert get_threads() == 1
    finally:
        set_threads(None)
    assert r.net.dtype == np.float64
    assert all(p.dtype == np.float64 for p in r.net.parameters())
    assert "dtype float64" in r.out
    assert r.meta["settings"]["threads"] == 1


def test_no_command_means_train(capsys, tmp_path):
    assert implicit_train([]) == ["train"]
    assert implicit_train(["--debug"]) == ["--debug", "train"]
    assert implicit_train(["--epochs", "3"]) == ["train", "--epochs", "3"]
    assert implicit_train(["--version"]) == ["--version"]
    assert implicit_train(["info", "m"]) == ["info", "m"]
    args = build_parser().parse_args(implicit_train([]))
    assert (args.command, args.layers, args.epochs, args.optimizer, args.schedule, args.dropout) == \
        ("train", None, 20, "adam", "constant", None)  # None: widths from the data
    check_train_args(args)  # resolves the dropout default: 0.2 for the default network
    assert args.dropout == 0.2
    given = build_parser().parse_args(["train", "--layers", "784,30,10"])
    check_train_args(given)
    assert given.dropout == 0.0  # a network given by --layers has no dropout unless asked
    # options without a command are train's options
    out = tmp_path / "implicit.safetensors"
    r = run(capsys, "--limit", "100", *TINY, "--epochs", "1", "--batch-size", "50", "--out", out)
    assert r.code == 0 and out.is_file() and "saved model to" in r.out
    r = run(capsys, "--version")
    assert r.code == 0 and r.out.strip() == f"backprop {bp.__version__}"


# ------------------------------------------------------------------ train: config files
def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_config_file_settings_and_flags_override(capsys, tmp_path):
    cfg = write(tmp_path / "c.toml", """
layers = [784, 8, 10]
activation = "tanh"
"batch-size" = 25
epochs = 3
lr = 0.05
schedule = "constant"
limit = 200
quiet = true
""")
    r = train(capsys, tmp_path / "c.safetensors", "--config", cfg, "--epochs", "1")
    assert r.metrics["history"]["epoch"] == [1]  # the flag wins over the file's 3
    assert r.metrics["history"]["lr"] == [0.05]
    assert kinds(r.net) == ["Dense", "Tanh", "Dense"] and r.net.layers[0].d_out == 8
    s = r.meta["settings"]
    assert (s["batch_size"], s["limit"], s["epochs"], s["layers"]) == (25, 200, 1, [784, 8, 10])

    # a [train] table, layers as a string, underscore keys; --debug before the command
    cfg2 = write(tmp_path / "c2.toml", '[train]\nlayers = "784,6,10"\nbatch_size = 50\n'
                                       'limit = 100\nepochs = 1\nquiet = true\n')
    out = tmp_path / "c2.safetensors"
    r = run(capsys, "--debug", "train", "--config", cfg2, "--out", out)
    assert r.code == 0, r.err
    assert bp.load(out).layers[0].d_out == 6
    # and with no command at all
    out = tmp_path / "c3.safetensors"
    r = run(capsys, "--config", cfg2, "--out", out, "--layers", "784,5,10")
    assert r.code == 0, r.err
    assert bp.load(out).layers[0].d_out == 5


@pytest.mark.parametrize("text, fragment", [
    ("frobnicate = 1\n", "unknown setting 'frobnicate'"),
    ("epochs = \"two\"\n", "epochs"),
    ("epochs = 2.5\n", "epochs"),
    ("lr = \"fast\"\n", "lr"),
    ("quiet = 1\n", "quiet"),
    ("activation = 5\n", "activation"),
    ("out = 3\n", "out"),
    ("layers = [784, \"a\", 10]\n", "layers"),
    ("layers = 784\n", "layers"),
    ("dtype = \"float16\"\n", "dtype"),
    ("batch_size = 10\n\"batch-size\" = 20\n", "batch_size"),
    ("epochs = [\n", "not valid TOML"),
])
def test_config_errors_exit_2(capsys, tmp_path, text, fragment):
    cfg = write(tmp_path / "bad.toml", text)
    r = run(capsys, "train", "--config", cfg, "--out", tmp_path / "never.safetensors")
    assert_one_line_error(r, 2, "backprop train: error: --config", fragment)
    assert not (tmp_path / "never.safetensors").exists()


def test_config_file_missing_exit_2(capsys, tmp_path):
    r = run(capsys, "train", "--config", tmp_path / "nope.toml")
    assert_one_line_error(r, 2, "cannot read", "nope.toml")


# ------------------------------------------------------------------ names: - or _, shown with -
#: every registry name that has a word separator, by the flag that takes it
SEPARATED = {"--loss": ["cross_entropy", "binary_cross_entropy"], "--activation": ["leaky_relu"],
             "--init": ["normal_fan_in", "glorot_uniform", "glorot_normal", "he_normal",
                        "he_uniform", "uniform_fan_in"]}


def test_every_name_resolves_with_hyphens_or_underscores():
    from backprop.builders import build_optimizer, build_schedule
    from backprop.cli.names import NAMES, resolve
    from backprop.init import INITIALIZERS, get_initializer
    from backprop.losses import LOSSES, get_loss

    assert set(NAMES) == {"loss", "activation", "output_activation", "init", "optimizer", "schedule"}
    for dest, keys in NAMES.items():
        for key in keys:
            assert resolve(dest, key, "--x") == key
            assert resolve(dest, key.replace("_", "-"), "--x") == key
    assert {k for ks in SEPARATED.values() for k in ks} == \
        {k for ks in NAMES.values() for k in ks if "_" in k}
    # the library's own lookups, which the Python API and model files go through
    for key in LOSSES:
        assert type(get_loss(key.replace("_", "-"))) is type(get_loss(key))
    for key in INITIALIZERS:
        assert get_initializer(key.replace("_", "-")) is get_initializer(key)
    assert type(bp.activations.activation("leaky-relu")) is bp.LeakyReLU
    for key in NAMES["optimizer"]:
        assert type(build_optimizer(key.replace("_", "-"), lr=0.1)) is type(build_optimizer(key, lr=0.1))
    for key in NAMES["schedule"]:
        a = build_schedule(key.replace("_", "-"), total_steps=10, steps_per_epoch=2)
        assert type(a) is type(build_schedule(key, total_steps=10, steps_per_epoch=2))
    net = bp.builders.build_network([4, 3, 2], activation_name="leaky-relu",
                                    output_activation="leaky-relu", init="glorot-normal")
    assert kinds(net) == ["Dense", "LeakyReLU", "Dense", "LeakyReLU"]
    assert {layer.get("init") for layer in net.config() if layer["kind"] == "Dense"} == {"glorot_normal"}


NAMED_RUNS = [
    {"loss": "binary-cross-entropy", "activation": "leaky-relu", "init": "normal-fan-in",
     "optimizer": "sgd", "schedule": "cosine"},
    {"loss": "cross-entropy", "activation": "relu", "init": "uniform-fan-in",
     "output-activation": "leaky-relu", "optimizer": "adamw", "schedule": "exponential"},
    {"loss": "quadratic", "activation": "tanh", "init": "he-normal", "output-activation": "auto",
     "optimizer": "rmsprop", "schedule": "step"},
]


@pytest.mark.parametrize("names", NAMED_RUNS)
def test_train_names_with_hyphens_underscores_or_a_config_file_agree(capsys, tmp_path, names):
    common = ["--limit", "200", "--layers", "784,12,10", "--epochs", "2", "--batch-size", "50",
              "--lr", "0.05", "--seed", "3", "--quiet"]
    hyphens = [a for k, v in names.items() for a in (f"--{k}", v)]
    underscores = [a for k, v in names.items() for a in (f"--{k}", v.replace("-", "_"))]
    cfg = write(tmp_path / "names.toml", "".join(f'{k.replace("-", "_")} = "{v}"\n'
                                                 for k, v in names.items()))
    runs = [train(capsys, tmp_path / "h.safetensors", *common, *hyphens),
            train(capsys, tmp_path / "u.safetensors", *common, *underscores),
            train(capsys, tmp_path / "c.safetensors", *common, "--config", cfg)]
    params = [dict(r.net.named_parameters()) for r in runs]
    for p in params[1:]:
        assert p.keys() == params[0].keys()
        assert all(np.array_equal(p[k], params[0][k]) for k in p)
    # the model file stores the library's keys, whichever spelling was typed
    for r in runs:
        assert r.meta["loss"] == r.metrics["loss"] == names["loss"].replace("-", "_")
        settings = {k: v for k, v in r.meta["settings"].items() if k not in ("out", "config")}
        assert settings == {k: v for k, v in runs[0].meta["settings"].items()
                            if k not in ("out", "config")}
        for k, v in names.items():
            assert settings[k.replace("-", "_")] == v.replace("-", "_")
        assert {layer.get("init") for layer in r.net.config() if layer["kind"] == "Dense"} == \
            {names["init"].replace("-", "_")}


def test_unknown_names_list_the_hyphenated_spelling(capsys, tmp_path):
    argv = ["train", "--limit", "100", *TINY, "--epochs", "1", "--out", tmp_path / "m.safetensors"]
    errors = []
    r = run(capsys, *argv, "--loss", "cross-entrop")
    assert_one_line_error(r, 2, "backprop train: error: --loss must be one of binary-cross-entropy, "
                                "cross-entropy, huber, quadratic; got 'cross-entrop'")
    errors.append(r.err)
    r = run(capsys, *argv, "--init", "he_unifrom")
    assert_one_line_error(r, 2, "--init must be one of glorot-normal, glorot-uniform, he-normal, "
                                "he-uniform, normal, normal-fan-in, uniform-fan-in; got 'he_unifrom'")
    errors.append(r.err)
    r = run(capsys, *argv, "--output-activation", "leaky")
    assert_one_line_error(r, 2, "--output-activation must be one of auto, none, elu, gelu, identity, "
                                "leaky-relu, relu, sigmoid, softmax, softplus, tanh; got 'leaky'")
    errors.append(r.err)
    cfg = write(tmp_path / "bad.toml", 'activation = "leaky_rlu"\n')
    r = run(capsys, *argv, "--config", cfg)
    assert_one_line_error(r, 2, f"--config: activation in {cfg} must be one of elu, gelu, identity, "
                                "leaky-relu, relu", "got 'leaky_rlu'")
    errors.append(r.err)
    for command in ("gradcheck", "explain"):
        r = run(capsys, command, "--activation", "swish")
        assert_one_line_error(r, 2, f"backprop {command}: error: --activation must be one of",
                              "leaky-relu", "got 'swish'")
        errors.append(r.err)
    assert not (tmp_path / "m.safetensors").exists()
    separated = [k for keys in SEPARATED.values() for k in keys]
    assert not [(k, e) for e in errors for k in separated if k in e]


@pytest.mark.parametrize("command", ["train", "gradcheck", "explain"])
def test_help_spells_every_name_with_hyphens(capsys, command):
    r = run(capsys, command, "--help")
    assert r.code == 0
    text = " ".join(r.out.split())  # as one line: a wrapped name is still whole
    for flag, keys in SEPARATED.items():
        if command != "train" and flag == "--init":
            continue
        for key in keys:
            assert key.replace("_", "-") in text, (flag, key)
            assert key not in text, (flag, key)


def test_gradcheck_explain_and_model_files_take_either_spelling(capsys, tmp_path):
    from backprop.insight.explain import explain

    r = run(capsys, "gradcheck", "--activation", "leaky-relu", "--loss", "binary-cross-entropy")
    assert r.code == 0 and "BinaryCrossEntropy" in r.out and "LeakyReLU" in r.out, r.out + r.err
    r = run(capsys, "explain", "--loss", "cross-entropy", "--activation", "leaky-relu")
    assert r.code == 0, r.err
    assert r.out == explain(loss="cross_entropy", activation="leaky_relu").text
    assert r.out == explain(loss="cross-entropy", activation="leaky-relu").text
    # a model file whose metadata spells its loss with hyphens (written through the Python API)
    net = bp.Network([bp.Dense(5, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0, dtype="float64")
    path = bp.save(net, tmp_path / "bin.safetensors", metadata={"loss": "binary-cross-entropy"})
    r = run(capsys, "gradcheck", "--model", path)
    assert r.code == 0 and "BinaryCrossEntropy" in r.out, r.out + r.err
    np.save(tmp_path / "x.npy", np.zeros((2, 5)))
    r = run(capsys, "predict", path, tmp_path / "x.npy", "--out", tmp_path / "p.csv")
    assert r.code == 0, r.err
    _, classes, outputs = read_predictions(tmp_path / "p.csv")
    logit = net.predict(np.zeros((2, 5)))
    np.testing.assert_allclose(outputs, 1 / (1 + np.exp(-logit)), rtol=1e-5)
    assert list(classes) == list((logit[:, 0] > 0).astype(int))  # one binary logit: its sign


# ------------------------------------------------------------------ exit codes
@pytest.mark.parametrize("argv, fragment", [
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["train", "--layers", "784,abc"], "argument --layers"),
    (["train", "--layers", "784"], "at least two positive widths"),
    (["train", "--epochs", "two"], "argument --epochs"),
    (["train", "--dtype", "float16"], "argument --dtype"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["predict", "model.safetensors"], "the following arguments are required: input"),
])
def test_usage_errors_exit_2(capsys, argv, fragment):
    r = run(capsys, *argv)
    assert_one_line_error(r, 2, fragment, "--help)")
    assert "usage:" not in r.err


@pytest.mark.parametrize("flag, value, known", [
    ("--activation", "swish", "relu"),
    ("--output-activation", "swish", "sigmoid"),
    ("--loss", "hinge", "cross-entropy"),
    ("--optimizer", "adagrad", "adam"),
    ("--init", "zeros", "he-uniform"),
    ("--schedule", "linear", "cosine"),
])
def test_unknown_names_exit_2(capsys, tmp_path, flag, value, known):
    r = run(capsys, "train", "--limit", "100", *TINY, "--epochs", "1", "--batch-size", "50",
            flag, value, "--out", tmp_path / "m.safetensors")
    assert_one_line_error(r, 2, "backprop train: error:", repr(value), known)


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--epochs", "-1"), ("--batch-size", "0"), ("--batch-size", "-5"),
    ("--lr", "-1"), ("--lr", "0"), ("--lr", "nan"), ("--momentum", "-0.5"),
    ("--weight-decay", "-1"), ("--dropout", "1.5"), ("--input-dropout", "1"),
    ("--validation-split", "1"), ("--threads", "0"), ("--gamma", "2"), ("--warmup-epochs", "-1"),
    ("--step-epochs", "0"), ("--clip-norm", "-1"), ("--max-norm", "0"), ("--early-stopping", "-1"),
    ("--limit", "0"),
])
def test_out_of_range_flags_exit_2_naming_the_flag(capsys, tmp_path, flag, value):
    argv = ["train", *TINY, "--epochs", "1", "--batch-size", "50", "--limit", "100"]
    r = run(capsys, *argv, flag, value, "--out", tmp_path / "m.safetensors")
    assert_one_line_error(r, 2, f"backprop train: error: {flag} must be", value)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("flags, fragment", [
    (["--batch-size", "500"], "--batch-size 500 exceeds the 100 training samples"),
    (["--early-stopping", "2"], "--early-stopping needs --validation-split"),
    (["--momentum", "0.9"], "momentum and nesterov apply to sgd and rmsprop, not adam"),
    (["--optimizer", "sgd", "--nesterov"], "nesterov=True needs momentum > 0"),
    (["--optimizer", "rmsprop", "--momentum", "0.5", "--nesterov"], "nesterov applies to sgd only"),
])
def test_inconsistent_flags_exit_2(capsys, tmp_path, flags, fragment):
    r = run(capsys, "train", "--limit", "100", *TINY, "--epochs", "1", "--batch-size", "50", *flags,
            "--out", tmp_path / "m.safetensors")
    assert_one_line_error(r, 2, fragment)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.fixture
def corrupt_model(tmp_path) -> Path:
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes((10**9).to_bytes(8, "little") + b"{not json")
    return path


@pytest.mark.parametrize("command", ["evaluate", "info", "gradcheck"])
def test_missing_and_corrupt_model_exit_1(capsys, tmp_path, corrupt_model, command):
    missing = tmp_path / "missing.safetensors"
    argv = ["gradcheck", "--model"] if command == "gradcheck" else [command]
    r = run(capsys, *argv, missing)
    assert_one_line_error(r, 1, f"backprop {command}: error:", "does not exist",
                          "missing.safetensors")
    r = run(capsys, *argv, corrupt_model)
    assert_one_line_error(r, 1, f"backprop {command}: error:", "corrupt.safetensors",
                          "not a safetensors model file")


def test_debug_shows_the_exception(capsys, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cli.main(["--debug", "evaluate", str(tmp_path / "missing.safetensors")])
    with pytest.raises(bp.errors.ConfigError, match="swish"):
        cli.main(["--debug", "train", "--activation", "swish"])


# ------------------------------------------------------------------ subprocess: the real command
def command(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backprop", *map(str, argv)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_python_m_backprop_exit_codes(tmp_path):
    r = command("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"backprop {bp.__version__}"
    r = command("train", "--layers", "784,abc")
    assert r.returncode == 2 and "argument --layers" in r.stderr
    r = command("evaluate", tmp_path / "missing.safetensors")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"backprop evaluate: error: model file '{tmp_path / 'missing.safetensors'}' does not exist"]
    r = command("--debug", "evaluate", tmp_path / "missing.safetensors")
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "FileNotFoundError" in r.stderr


@pytest.mark.skipif(shutil.which("backprop") is None, reason="console script not on PATH")
def test_console_script_trains_on_real_mnist(tmp_path):
    r = subprocess.run(["backprop", "--limit", "200", *TINY, "--epochs", "1", "--batch-size", "50",
                        "--out", "sub/m.safetensors"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "epoch 1/1" not in r.stderr  # --quiet: no progress bar
    assert "saved model to sub/m.safetensors" in r.stdout
    for name in ("m.safetensors", "m.metrics.json", "m.curves.png"):
        assert (tmp_path / "sub" / name).is_file()
    r = subprocess.run(["backprop", "info", "sub/m.safetensors"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "total parameters: 12,730" in r.stdout


# ------------------------------------------------------------------ evaluate
def test_evaluate_matches_library(capsys, trained, mnist_prefix, tmp_path):
    (_, _), (xt, yt) = mnist_prefix["float32"]
    want = bp.evaluate(trained.net, xt[:500], yt[:500], "cross_entropy")
    r = run(capsys, "evaluate", trained.path, "--limit", "500")
    assert r.code == 0, r.err
    assert r.out.strip() == (f"{trained.path}: 500 samples  loss {want['loss']:.4f}  "
                             f"accuracy {want['accuracy']:.4f}")
    # the same numbers from a user's NPZ test file
    np.savez(tmp_path / "test.npz", x=xt[:500], y=yt[:500])
    r = run(capsys, "evaluate", trained.path, "--test-file", tmp_path / "test.npz")
    assert r.code == 0, r.err
    assert f"loss {want['loss']:.4f}  accuracy {want['accuracy']:.4f}" in r.out


# ------------------------------------------------------------------ predict
LINE = re.compile(r"^(\d+): class (\d+)  \((.*)\)$")


def parse_predictions(out: str) -> list[tuple[int, list[tuple[int, float]]]]:
    rows = []
    for line in out.strip().splitlines():
        m = LINE.match(line)
        assert m, line
        pairs = [(int(c), float(p)) for c, p in (s.split(": ") for s in m.group(3).split("  "))]
        assert pairs[0][0] == int(m.group(2))
        rows.append((int(m.group(1)), pairs))
    return rows


def test_predict_csv_npy_top_and_out(capsys, trained, mnist_prefix, tmp_path):
    (_, _), (xt, _) = mnist_prefix["float32"]
    x = xt[:5]
    probs = Softmax.f(trained.net.predict(x))
    classes = probs.argmax(axis=1)

    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    r = run(capsys, "predict", trained.path, tmp_path / "x.csv")
    assert r.code == 0, r.err
    rows = parse_predictions(r.out)
    assert [i for i, _ in rows] == [0, 1, 2, 3, 4]
    assert [pairs[0][0] for _, pairs in rows] == list(classes)
    for (_, pairs), p in zip(rows, probs, strict=True):
        assert len(pairs) == 1 and f"{pairs[0][1]:.4f}" == f"{p.max():.4f}"

    np.save(tmp_path / "x.npy", x)
    r = run(capsys, "predict", trained.path, tmp_path / "x.npy", "--top", "3")
    assert r.code == 0, r.err
    for (_, pairs), p in zip(parse_predictions(r.out), probs, strict=True):
        assert [c for c, _ in pairs] == list(np.argsort(p)[::-1][:3])
        assert [v for _, v in pairs] == sorted((v for _, v in pairs), reverse=True)
        assert [f"{v:.4f}" for _, v in pairs] == [f"{p[c]:.4f}" for c, _ in pairs]
    r = run(capsys, "predict", trained.path, tmp_path / "x.npy", "--top", "50")
    assert all(len(pairs) == 10 for _, pairs in parse_predictions(r.out))

    np.save(tmp_path / "one.npy", x[2])  # 1-D: one sample
    r = run(capsys, "predict", trained.path, tmp_path / "one.npy")
    assert [(i, pairs[0][0]) for i, pairs in parse_predictions(r.out)] == [(0, classes[2])]

    r = run(capsys, "predict", trained.path, tmp_path / "x.csv", "--out", tmp_path / "preds.csv")
    assert r.code == 0 and f"wrote 5 rows of 10 outputs to {tmp_path / 'preds.csv'}" in r.out
    header, pred_classes, preds = read_predictions(tmp_path / "preds.csv")
    assert header == ["class"] + [f"p{j}" for j in range(10)]
    assert list(pred_classes) == list(classes)
    assert preds.shape == (5, 10)
    np.testing.assert_allclose(preds.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(preds, probs, rtol=1e-5, atol=1e-7)
    assert list(preds.argmax(axis=1)) == list(classes)


def test_predict_png_digits(capsys, trained, tmp_path):
    from PIL import Image

    (_, _), (images, labels) = bp.datasets.load_mnist(dtype="uint8", normalize=False, flatten=False)
    digit, label = images[0], int(labels[0])  # a clear 7
    small, big = tmp_path / "seven28.png", tmp_path / "seven100.png"
    Image.fromarray(digit).save(small)
    # a larger scan: 100 x 100, dark ink on light paper
    scan = np.asarray(Image.fromarray(digit).resize((100, 100), Image.BILINEAR))
    Image.fromarray(255 - scan).save(big)

    x_small, x_big = read_digit_png(small), read_digit_png(big)
    np.testing.assert_allclose(x_small, digit.reshape(-1) / 255.0, atol=1e-6)
    assert np.corrcoef(x_big, x_small)[0, 1] > 0.8  # inverted, cropped, rescaled, centred back
    for path, x in ((small, x_small), (big, x_big)):
        r = run(capsys, "predict", trained.path, path, "--top", "2")
        assert r.code == 0, r.err
        [(_, pairs)] = parse_predictions(r.out)
        assert pairs[0][0] == int(trained.net.predict(x[None]).argmax()) == label


def test_predict_png_drawn_on_transparent_canvas(capsys, trained, tmp_path):
    from PIL import Image, ImageDraw

    def seven(mode, paper, ink):
        img = Image.new(mode, (120, 120), paper)
        ImageDraw.Draw(img).line([(30, 20), (90, 20), (50, 100)], fill=ink, width=8)
        return img

    seven("RGB", "white", "black").save(tmp_path / "paper.png")
    # black ink on a clear canvas (what browser drawing pads export), and white ink on one
    seven("RGBA", (0, 0, 0, 0), (0, 0, 0, 255)).save(tmp_path / "transparent.png")
    seven("RGBA", (255, 255, 255, 0), (255, 255, 255, 255)).save(tmp_path / "white_ink.png")
    x = read_digit_png(tmp_path / "paper.png")
    assert x.max() == 1.0 and 0.05 < x.mean() < 0.4
    np.testing.assert_array_equal(read_digit_png(tmp_path / "transparent.png"), x)
    np.testing.assert_array_equal(read_digit_png(tmp_path / "white_ink.png"), x)
    outs = [run(capsys, "predict", trained.path, tmp_path / name)
            for name in ("transparent.png", "paper.png")]
    assert outs[0].code == outs[1].code == 0 and outs[0].out == outs[1].out
    [(_, pairs)] = parse_predictions(outs[0].out)
    assert pairs[0][0] == int(trained.net.predict(x[None]).argmax())


def test_predict_input_errors(capsys, trained, tmp_path):
    np.savetxt(tmp_path / "narrow.csv", np.zeros((2, 5)), delimiter=",")
    r = run(capsys, "predict", trained.path, tmp_path / "narrow.csv")
    assert_one_line_error(r, 1, "backprop predict: error:", "narrow.csv: x must have 784 columns",
                          "(2, 5)")
    np.save(tmp_path / "narrow.npy", np.zeros(5, np.float32))
    r = run(capsys, "predict", trained.path, tmp_path / "narrow.npy")
    assert_one_line_error(r, 1, "x must have 784 columns", "(1, 5)")

    (tmp_path / "x.txt").write_text("0,0\n")
    r = run(capsys, "predict", trained.path, tmp_path / "x.txt")
    assert_one_line_error(r, 1, "x.txt: x must have 784 columns", "(1, 2)")  # read as CSV, as train does

    r = run(capsys, "predict", trained.path, tmp_path / "missing.csv")
    assert_one_line_error(r, 1, "missing.csv", "does not exist")
    (tmp_path / "words.csv").write_text("a,b\n0,1\nx,y\n")  # a header, then a row of words
    r = run(capsys, "predict", trained.path, tmp_path / "words.csv")
    assert_one_line_error(r, 1, "words.csv", "line 3")
    (tmp_path / "fake.png").write_bytes(b"not an image")
    r = run(capsys, "predict", trained.path, tmp_path / "fake.png")
    assert_one_line_error(r, 1, "not a readable image")


# ------------------------------------------------------------------ gradcheck
WORST = re.compile(r"^worst relative error (\S+) \(within tolerance 1e-06\)$", re.M)


@pytest.mark.parametrize("flags", [
    [],
    ["--activation", "sigmoid", "--loss", "quadratic"],
    ["--activation", "relu", "--loss", "cross_entropy", "--seed", "3"],
    ["--activation", "softplus", "--loss", "huber"],
    ["--activation", "gelu", "--loss", "binary_cross_entropy"],
    ["--activation", "elu", "--loss", "binary_cross_entropy", "--layers", "4,3,1"],
])
def test_gradcheck_passes(capsys, flags):
    r = run(capsys, "gradcheck", *flags)
    assert r.code == 0, r.out + r.err
    m = WORST.search(r.out)
    assert m and float(m.group(1)) < 1e-6
    assert r.out.count(" ok") >= 3 and "FAIL" not in r.out


def test_gradcheck_fails_with_exit_1_below_its_tolerance(capsys):
    r = run(capsys, "gradcheck", "--tolerance", "1e-30")
    assert r.code == 1 and "ABOVE tolerance 1e-30" in r.out and "FAIL" in r.out


def test_gradcheck_saved_model(capsys, trained):
    r = run(capsys, "gradcheck", "--model", trained.path, "--max-entries", "20", "--batch", "3")
    assert r.code == 0, r.out + r.err
    assert "total parameters: 12,730" in r.out and "CrossEntropy" in r.out
    m = WORST.search(r.out)
    assert m and float(m.group(1)) < 1e-6


def test_gradcheck_single_logit_binary_model(capsys, tmp_path):
    # the targets must suit the model's own loss (0/1 labels), not the --loss default
    net = bp.Network([bp.Dense(5, 4), bp.Tanh(), bp.Dense(4, 1)], seed=0, dtype="float64")
    path = bp.save(net, tmp_path / "bin.safetensors", metadata={"loss": "binary_cross_entropy"})
    r = run(capsys, "gradcheck", "--model", path)
    assert r.code == 0, r.out + r.err
    assert "BinaryCrossEntropy" in r.out
    m = WORST.search(r.out)
    assert m and float(m.group(1)) < 1e-6


@pytest.mark.parametrize("flag, value", [("--batch", "-1"), ("--batch", "0"), ("--eps", "0"),
                                         ("--max-entries", "0"), ("--tolerance", "-1")])
def test_gradcheck_bad_flags_exit_2(capsys, flag, value):
    assert_one_line_error(run(capsys, "gradcheck", flag, value), 2, f"{flag} must be", value)


# ------------------------------------------------------------------ info
def test_info(capsys, trained):
    r = run(capsys, "info", trained.path)
    assert r.code == 0, r.err
    out, m = r.out, trained.metrics
    assert out.startswith(f"{trained.path}  (model format version 1)")
    assert trained.net.summary() in out
    assert "total parameters: 12,730  (dtype float32, seed 0)" in out
    assert "loss: cross_entropy" in out
    assert f"test: loss {m['test']['loss']:.4f}, accuracy {m['test']['accuracy']:.4f}" in out
    assert "trained for 3 epochs in" in out
    settings = next(line for line in out.splitlines() if line.startswith("settings: "))
    for item in ("epochs=3", "batch_size=20", "lr=0.01", "layers=[784, 16, 10]", "optimizer=adam",
                 "activation=relu", "seed=0", "limit=1000", "schedule=cosine", "dtype=float32"):
        assert item in settings, item
