#!/usr/bin/env python3
"""Run scikit-learn's own MLP tests against backprop's estimators.

scikit-learn ships its test files in the wheel. This script copies the installed
``sklearn/neural_network/tests/test_mlp.py`` into a temporary folder, changes its one import of
``MLPClassifier`` and ``MLPRegressor`` to ``backprop.sklearn``'s, and runs it with pytest and
scikit-learn's own ``conftest`` (its ``global_random_seed`` fixture, seed 42 unless
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` says otherwise). The installed file is never modified.

    python tools/sklearn_mlp_tests.py                 # the whole file; exit status: pytest's
    python tools/sklearn_mlp_tests.py -k stratified   # more arguments go to pytest

Run it with backprop importable (``PYTHONPATH=src`` from a checkout, or installed). Tests
that read scikit-learn's private attributes (``_forward_pass``, ``_optimizer.learning_rate``,
...) fail by design: backprop's estimators have their own internals.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: the line of scikit-learn's test file that imports its estimators, and what replaces it
SKLEARN_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
BACKPROP_IMPORT = "from backprop.sklearn import MLPClassifier, MLPRegressor"


def installed_test_file() -> Path:
    """The path of ``test_mlp.py`` in the installed scikit-learn."""
    import sklearn.neural_network

    path = Path(sklearn.neural_network.__file__).parent / "tests" / "test_mlp.py"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: this scikit-learn was installed without its tests")
    return path


def swapped(source: str) -> str:
    """``source`` with its import of scikit-learn's estimators replaced by backprop's."""
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == SKLEARN_IMPORT]
    if len(hits) != 1:
        raise SystemExit(f"expected the line {SKLEARN_IMPORT!r} once in scikit-learn's test_mlp.py; found "
                         f"it {len(hits)} times (a scikit-learn release that imports them differently)")
    lines[hits[0]] = BACKPROP_IMPORT + "\n"
    return "".join(lines)


def main(argv: list[str]) -> int:
    import backprop.sklearn  # noqa: F401  (fail here, clearly, when backprop is not importable)

    source = installed_test_file()
    with tempfile.TemporaryDirectory(prefix="backprop-sklearn-tests-") as folder:
        copy = Path(folder) / "test_mlp.py"
        copy.write_text(swapped(source.read_text(encoding="utf-8")), encoding="utf-8")
        shutil.copymode(source, copy)
        plugins = ["-p", "sklearn.conftest"] if importlib.util.find_spec("sklearn.conftest") else []
        if not plugins:
            print("sklearn/conftest.py is not installed: tests that use its fixtures will error")
        command = [sys.executable, "-m", "pytest", *plugins, "-p", "no:cacheprovider",
                   "--rootdir", folder, str(copy), *argv]
        return subprocess.run(command, cwd=folder, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
