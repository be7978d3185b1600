"""The command line never surprises: the default network fits the user's data, every error is
one line (exit code 2 for usage, 1 for data and files) printed before anything else, ``predict``
reads what ``train`` reads, float16/float64 arrays are converted with a note, and no output or
help text uses words that only the project's own history explains.

Runs ``backprop`` in-process on a small table (200 samples, 5 features, classes 0..2) written
as CSV, Parquet and ``.npy``.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import backprop as bp
from backprop import cli
from backprop.cli.app import build_parser

#: the checkout: src/ and benchmarks/ (an installed package has no benchmarks/ beside it)
REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "backprop"
FAST = ["--epochs", "1", "--batch-size", "50", "--quiet"]


def run(capsys, *argv) -> SimpleNamespace:
    """``backprop ARGV`` in-process: exit code, stdout, stderr."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors, --help
        code = exc.code
    captured = capsys.readouterr()
    return SimpleNamespace(code=code, out=captured.out, err=captured.err)


def assert_one_line_error(r, code: int, *fragments: str) -> str:
    """Exit ``code``, nothing on stdout, one line on stderr holding every fragment."""
    assert r.code == code, (r.out, r.err)
    assert r.out == "", r.out  # errors first: nothing was printed before the error
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> SimpleNamespace:
    """200 samples of 5 float32 features and labels 0..2, as CSV (with a header), Parquet
    and .npy files (features in float16, float32 and float64, labels int64)."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    d = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]).assign(label=y)
    frame.to_parquet(d / "data.parquet")
    frame.to_csv(d / "test.csv", index=False, float_format="%.9g")
    frame.drop(columns="label").to_csv(d / "features.csv", index=False, float_format="%.9g")
    for dtype in ("float16", "float32", "float64"):
        np.save(d / f"x_{dtype}.npy", x.astype(dtype))
    np.save(d / "y.npy", y)
    return SimpleNamespace(dir=d, x=x, y=y)


def widths(net: bp.Network) -> list[int]:
    dense = [layer for layer in net.layers if layer.params]
    return [dense[0].params["W"].shape[1]] + [layer.params["W"].shape[0] for layer in dense]


# ------------------------------------------------------------------ the default network
def test_default_network_fits_the_users_data(capsys, table, tmp_path):
    """The README's command: Parquet to train, CSV to test, a named label column."""
    out = tmp_path / "m.safetensors"
    r = run(capsys, "train", "--train-file", table.dir / "data.parquet", "--test-file",
            table.dir / "test.csv", "--label-column", "label", *FAST, "--out", out)
    assert r.code == 0, r.err
    net = bp.load(out)
    assert widths(net) == [5, 256, 256, 3]  # 5 features, the main job's hidden layers, 3 classes
    assert [type(layer).__name__ for layer in net.layers].count("Dropout") == 2  # its dropout
    assert bp.io.read_metadata(out)["metadata"]["settings"]["layers"] == [5, 256, 256, 3]


@pytest.mark.parametrize("limit", ["100", "3"])  # 3: labels 5, 0, 4 only, still 10 classes
def test_default_network_on_mnist_is_the_main_jobs(capsys, tmp_path, limit):
    out = tmp_path / "m.safetensors"
    r = run(capsys, "train", "--limit", limit, "--epochs", "1", "--batch-size", "3", "--quiet",
            "--out", out)
    assert r.code == 0, r.err
    assert widths(bp.load(out)) == [784, 256, 256, 10]


@pytest.mark.parametrize("loss, labels, expected", [
    ("binary-cross-entropy", "binary", 1),  # 0/1 labels: one logit
    ("quadratic", "real", 1),               # a real-valued target column: one output
    ("quadratic", "classes", 3),            # class labels 0..2: one output per class
])
def test_default_output_width_from_the_targets(capsys, table, tmp_path, loss, labels, expected):
    y = {"binary": table.y.clip(0, 1), "real": table.x[:, 0] * 0.5 + 0.25,
         "classes": table.y}[labels]
    np.save(tmp_path / "t.npy", y)
    out = tmp_path / "m.safetensors"
    r = run(capsys, "train", "--train-file", table.dir / "x_float32.npy", "--train-labels",
            tmp_path / "t.npy", "--loss", loss, *FAST, "--out", out)
    assert r.code == 0, r.err
    assert widths(bp.load(out)) == [5, 256, 256, expected]


@pytest.mark.parametrize("layers, fragments", [
    ("784,10", ["--layers 784,10 takes 784 inputs", "--train-file", "data.parquet",
                "5 features per sample"]),
    ("5,8,2", ["--layers 5,8,2 ends in 2 outputs", "labels of --train-file", "data.parquet",
               "go up to 2 (3 classes)"]),
])
def test_layers_that_disagree_with_the_data_name_both(capsys, table, tmp_path, layers, fragments):
    out = tmp_path / "m.safetensors"
    r = run(capsys, "train", "--train-file", table.dir / "data.parquet", "--label-column", "label",
            "--layers", layers, *FAST, "--out", out)
    assert_one_line_error(r, 2, "backprop train: error:", *fragments)
    assert not out.exists()


# ------------------------------------------------------------------ errors first, one line
def test_every_check_runs_before_anything_is_printed(capsys, table, tmp_path):
    data = ["--train-file", table.dir / "data.parquet", "--label-column", "label"]
    out = ["--out", tmp_path / "m.safetensors"]
    # a test set whose labels go beyond the network's outputs
    np.save(tmp_path / "y9.npy", np.full(200, 9))
    r = run(capsys, "train", *data, "--test-file", table.dir / "x_float32.npy", "--test-labels",
            tmp_path / "y9.npy", "--layers", "5,3", *FAST, *out)
    assert_one_line_error(r, 2, "--layers 5,3 ends in 3 outputs", "--test-file", "up to 9")
    r = run(capsys, "train", *data, "--out", "/proc/backprop-test/m.safetensors", *FAST)
    assert_one_line_error(r, 1, "--out: cannot write in the folder '/proc/backprop-test'")
    r = run(capsys, "train", *data, "--checkpoint-dir", "/proc/backprop-test", *FAST, *out)
    assert_one_line_error(r, 1, "--checkpoint-dir: cannot write in the folder")
    r = run(capsys, "train", *data, "--out", tmp_path, *FAST)
    assert_one_line_error(r, 2, f"--out '{tmp_path}' is a folder")


def test_an_engine_that_cannot_train_the_setup_fails_before_the_summary(capsys, table, tmp_path):
    pytest.importorskip("numba")
    r = run(capsys, "train", "--train-file", table.dir / "data.parquet", "--label-column", "label",
            "--engine", "numba", *FAST, "--out", tmp_path / "m.safetensors")  # dropout: no kernel
    assert_one_line_error(r, 2, "--engine numba cannot train this", "Dropout", "--engine numpy")


def _bad_values(action: argparse.Action) -> list[str]:
    """Values that ``action``'s own type or choices refuse (tried here first, so that a value
    the type accepts never starts a run)."""
    if action.nargs == 0 or not action.option_strings:
        return []
    if action.choices is not None:
        return ["bogus-choice"]
    refused = []
    for value in ("abc", "1,x,3"):
        try:
            (action.type or str)(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError):
            refused.append(value)
    return refused


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_value_argparse_refuses_is_one_line_with_exit_code_2(capsys):
    cases = 0
    for name, parser in _commands().items():
        positionals = ["x" for a in parser._actions if not a.option_strings]
        for action in parser._actions:
            for value in _bad_values(action):
                r = run(capsys, name, *positionals, action.option_strings[-1], value)
                line = assert_one_line_error(r, 2, f"backprop {name}: error: argument",
                                             f"(see backprop {name} --help)")
                assert "usage:" not in line
                cases += 1
        # a flag without its value, and a flag the command does not have
        if any(a.option_strings and a.nargs is None for a in parser._actions):
            flag = next(a.option_strings[-1] for a in parser._actions
                        if a.option_strings and a.nargs is None)
            assert_one_line_error(run(capsys, name, *positionals, flag), 2, "expected one argument")
        assert_one_line_error(run(capsys, name, *positionals, "--no-such-flag"), 2,
                              f"backprop {name}: error: unrecognized arguments: --no-such-flag")
    assert cases > 40  # every command's typed flags were tried
    for argv, fragment in ((["train", "--lr", "abc"], "invalid float value: 'abc'"),
                           (["train", "--layers", "784,x,10"], "784,x,10"),
                           (["train", "--dataset", "cifar"], "invalid choice: 'cifar'"),
                           (["frobnicate"], "invalid choice: 'frobnicate'")):
        assert_one_line_error(run(capsys, *argv), 2, fragment, "--help)")


@pytest.mark.parametrize("flag", ["--train-file", "--train-labels", "--test-file", "--test-labels"])
def test_a_missing_file_names_its_flag(capsys, table, tmp_path, flag):
    given = {"--train-file": table.dir / "x_float32.npy", "--train-labels": table.dir / "y.npy",
             "--test-file": table.dir / "x_float32.npy", "--test-labels": table.dir / "y.npy"}
    missing = tmp_path / "missing.csv"
    given[flag] = missing
    argv = [part for item in given.items() for part in item]
    r = run(capsys, "train", *argv, *FAST, "--out", tmp_path / "m.safetensors")
    assert_one_line_error(r, 1, f"backprop train: error: {flag} '{missing}' does not exist")
    if flag.startswith("--test"):
        r = run(capsys, "evaluate", tmp_path / "m.safetensors", *argv[4:])
        assert "Errno" not in r.err and r.code == 1


# ------------------------------------------------------------------ predict reads what train reads
@pytest.fixture(scope="module")
def model(table, tmp_path_factory) -> SimpleNamespace:
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    assert cli.main(["train", "--train-file", str(table.dir / "data.parquet"), "--label-column",
                     "label", "--layers", "5,16,3", "--epochs", "5", "--batch-size", "20",
                     "--lr", "0.01", "--quiet", "--out", str(path)]) == 0
    net = bp.load(path)
    probs = bp.Softmax.f(net.predict(table.x))
    return SimpleNamespace(path=path, net=net, probs=probs, classes=probs.argmax(axis=1))


def _printed_classes(out: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^\d+: class (\d+)", out, re.M)]


@pytest.mark.parametrize("source, flags", [
    ("test.csv", ["--label-column", "label"]),      # a header; labels by name, scored
    ("test.csv", ["--label-column", "-1"]),         # labels by index
    ("data.parquet", ["--label-column", "label"]),  # Parquet
    ("x_float32.npy", ["--labels", "y.npy"]),       # .npy features and labels
    ("features.csv", []),                           # a header, features only
])
def test_predict_reads_what_train_reads(capsys, table, model, source, flags):
    flags = [str(table.dir / f) if f.endswith(".npy") else f for f in flags]
    r = run(capsys, "predict", model.path, table.dir / source, *flags)
    assert r.code == 0, r.err
    assert _printed_classes(r.out) == list(model.classes)
    scored = re.search(r"^scored on the labels: 200 samples  loss (\S+)  accuracy (\S+)$",
                       r.out, re.M)
    if flags:
        accuracy = float(np.mean(model.classes == table.y))
        assert scored and float(scored.group(2)) == pytest.approx(accuracy, abs=5e-5)
        loss = float(np.mean(-np.log(model.probs[np.arange(200), table.y])))
        assert float(scored.group(1)) == pytest.approx(loss, rel=1e-3)
    else:
        assert scored is None


def test_predict_out_has_a_header_and_the_class(capsys, table, model, tmp_path):
    out = tmp_path / "p.csv"
    r = run(capsys, "predict", model.path, table.dir / "test.csv", "--label-column", "label",
            "--out", out)
    assert r.code == 0, r.err
    lines = out.read_text().splitlines()
    assert lines[0] == "class,label,p0,p1,p2"
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert rows.shape == (200, 5)
    np.testing.assert_array_equal(rows[:, 0], model.classes)
    np.testing.assert_array_equal(rows[:, 1], table.y)
    np.testing.assert_allclose(rows[:, 2:], model.probs, rtol=1e-5, atol=1e-7)
    r = run(capsys, "predict", model.path, table.dir / "features.csv", "--out", out)
    assert r.code == 0 and out.read_text().splitlines()[0] == "class,p0,p1,p2"


def test_predict_hints_at_a_label_column(capsys, table, model):
    r = run(capsys, "predict", model.path, table.dir / "test.csv")
    assert_one_line_error(r, 1, "test.csv: x must have 5 columns", "--label-column")


# ------------------------------------------------------------------ other float dtypes
@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_other_float_dtypes_are_converted_with_a_note(capsys, table, tmp_path, dtype):
    def train(x_file: str) -> tuple[SimpleNamespace, bp.Network]:
        out = tmp_path / f"{x_file}.safetensors"
        r = run(capsys, "train", "--train-file", table.dir / x_file, "--train-labels",
                table.dir / "y.npy", "--layers", "5,4,3", *FAST, "--out", out)
        assert r.code == 0, r.err
        return r, bp.load(out)

    r, net = train(f"x_{dtype}.npy")
    notes = [line for line in r.err.splitlines() if line]
    assert len(notes) == 1 and notes[0].startswith("note: --train-file") and dtype in notes[0]
    assert "in memory" in notes[0]
    # the same network as one trained on the array converted by NumPy beforehand
    np.save(tmp_path / "converted.npy", np.load(table.dir / f"x_{dtype}.npy").astype(np.float32))
    r32 = run(capsys, "train", "--train-file", tmp_path / "converted.npy", "--train-labels",
              table.dir / "y.npy", "--layers", "5,4,3", *FAST, "--out", tmp_path / "c.safetensors")
    assert r32.code == 0 and r32.err == ""  # float32 as asked: mapped, no note
    np.testing.assert_array_equal(bp.load(tmp_path / "c.safetensors").parameter_buffer,
                                  net.parameter_buffer)


# ------------------------------------------------------------------ no words from the history
#: words that only the project's own history explains: its issue tracker, its folders outside
#: the repository (the notes are cited by title instead), the people who built it
HISTORY = re.compile(r"\bissues?\b|\.\./shared|shared/seeds|\bthe lead\b", re.IGNORECASE)


def test_help_texts_use_no_words_from_the_projects_history():
    texts = {"backprop": build_parser().format_help()}
    texts.update({f"backprop {name}": p.format_help() for name, p in _commands().items()})
    for where, text in texts.items():
        assert not HISTORY.search(text), (where, HISTORY.search(text))


def test_no_string_in_the_package_uses_words_from_the_projects_history():
    """Every string constant of the package and of ``benchmarks/`` (messages, help, docstrings
    that autodoc publishes). "session" is left out: the playground's session is its subject."""
    files = [*SRC.rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    assert len(files) > 100 and any(f.parent.name == "benchmarks" for f in files)
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and HISTORY.search(node.value):
                found.append(f"{path.name}:{node.lineno}: {HISTORY.search(node.value)[0]!r}")
    assert len(files) > 50 and not found, found


@pytest.mark.parametrize("diff, verdict", [(0.12, "within"), (-0.45, "OUTSIDE")])
def test_bench_names_its_accuracy_tolerance(diff, verdict):
    from backprop.bench.report import format_config

    entry = {"task": "train", "config": {"dtype": "float32"}, "n_samples": 100, "epochs": 1,
             "results": {}, "name": "C1", "description": "a network",
             "accuracy_diff_pp_vs_torch": diff}
    last = format_config(entry).splitlines()[-1]
    assert last == (f"  test accuracy, backprop - torch: {diff:+.2f} percentage points "
                    f"({verdict} the tolerance of 0.3)")


def test_data_loading_benchmark_help_is_whole_sentences():
    import subprocess
    import sys

    script = REPO / "benchmarks" / "data_loading.py"
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    description = " ".join(r.stdout.split("\n\n")[1].split())
    assert description.startswith("Loading user data:") and description.endswith("from memory.")
    assert "``" not in r.stdout
    options = r.stdout.split("options:")[1]
    for flag in ("--rows", "--cols", "--dir", "--skip", "--only", "--repeats", "--fit-epochs",
                 "--fit-repeats", "--json"):
        after = options.split(flag, 1)[1].split("\n  -", 1)[0]  # up to the next option
        assert len(after.split()) > 2, f"{flag} has no help: {after!r}"


def test_a_folder_given_as_a_file_names_its_flag(capsys, table, tmp_path):
    r = run(capsys, "train", "--train-file", tmp_path, *FAST, "--out", tmp_path / "m.safetensors")
    assert_one_line_error(r, 1, f"--train-file '{tmp_path}' is a folder, not a file")


def test_every_command_words_a_missing_file_alike(capsys, model, tmp_path):
    missing = tmp_path / "missing.csv"
    for argv, what in ((["convert", missing, tmp_path / "x.npy"], "source file"),
                       (["predict", model.path, missing], "input file"),
                       (["evaluate", tmp_path / "missing.safetensors"], "model file")):
        r = run(capsys, *argv)
        line = assert_one_line_error(r, 1, f"error: {what} '", "' does not exist")
        assert "Errno" not in line and not (tmp_path / "x.npy").exists()
