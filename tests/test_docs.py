"""docs/math.md stays true to the code.

The page maps every equation of the notes to the function that implements it and quotes
the line that does it; ``tools/check_math_doc.py`` checks that every such reference still
exists and every quote is still verbatim. The page also claims that the training hot
path's in-place products are the readable ``grad ⊙ f'(z)``: the last test checks that.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop.activations import ACTIVATIONS, activation

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    path = ROOT / "tools" / "check_math_doc.py"
    spec = importlib.util.spec_from_file_location("check_math_doc", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_math_doc"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_math_doc_references_and_quotes_are_current() -> None:
    report = _checker().check()
    stale = "\n".join(report.stale)
    assert not report.stale, f"docs/math.md is stale (see python tools/check_math_doc.py):\n{stale}"
    assert report.n_refs > 100 and report.n_quotes > 100  # the page was read, not skipped


def test_the_checker_reports_what_went_stale(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A checker that cannot fail proves nothing: a missing method, an inherited one, a
    misquote and a missing test are each reported; a correct quote and a shape are not."""
    doc = tmp_path / "math.md"
    doc.write_text(
        "Good: `src/backprop/layers.py:Dense.backward`: `ops.matmul(grad.T, self._x, "
        'out=self.grads["W"])`, shape `(N, d_out)`.\n\n'
        "Gone: `src/backprop/layers.py:Dense.nonexistent`.\n\n"
        "Inherited: `src/backprop/activations.py:Sigmoid.backward`.\n\n"
        "Misquoted: `src/backprop/layers.py:Dense.backward` (`grad @ W`).\n\n"
        "| test | `tests/test_docs.py:no_such_test` |\n",
        encoding="utf-8",
    )
    checker = _checker()
    report = checker.check(doc)
    assert len(report.stale) == 4, report.stale
    assert "Dense.nonexistent" in report.stale[0] and "not defined" in report.stale[0]
    assert "inherited from Activation" in report.stale[1]
    assert "`grad @ W`" in report.stale[2] and "Dense.backward" in report.stale[2]
    assert "no_such_test" in report.stale[3]
    assert checker.main([str(doc)]) == 1
    assert "4 stale" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"softmax"}))  # softmax: no diagonal f'
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_equals_grad_times_derivative(name: str, dtype) -> None:
    """The hot path (``backward``: f'(z) from ``df``, then ⊙ in place) gives exactly the
    readable product dC/dz = dC/da ⊙ f'(z), kinks at z = 0 included."""
    rng = np.random.default_rng(0)
    z = rng.uniform(-4, 4, size=(6, 5)).astype(dtype)
    z[0, :3] = 0.0
    grad = rng.standard_normal(z.shape).astype(dtype)
    layer = activation(name)
    a = layer.forward(z, train=True).copy()
    got = layer.backward(grad)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, grad * layer.derivative(z, a))


def test_performance_table_is_the_one_in_benchmarks_results_json() -> None:
    """The performance page's table is ``tools/bench_table.py``'s rendering of
    benchmarks/results.json."""
    path = ROOT / "tools" / "bench_table.py"
    spec = importlib.util.spec_from_file_location("bench_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import json

    expected = module.table(json.loads((ROOT / "benchmarks" / "results.json").read_text()))
    assert expected in (ROOT / "docs" / "performance.md").read_text(), (
        "docs/performance.md's table is not benchmarks/results.json's: paste the output of "
        "python tools/bench_table.py")


def test_performance_page_tables_are_the_benchmarks_json() -> None:
    """The scikit-learn, MNIST, memory-map and thread tables of docs/performance.md are
    ``tools/perf_tables.py``'s rendering of the JSON files the benchmark scripts wrote."""
    path = ROOT / "tools" / "perf_tables.py"
    spec = importlib.util.spec_from_file_location("perf_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    tables = module.tables()
    assert set(tables) == {"sklearn", "mnist", "mmap", "threads"}
    stale = [name for name, table in tables.items() if table not in page]
    assert not stale, (f"docs/performance.md's {stale} tables are not the benchmarks' JSON files': "
                       "paste the output of python tools/perf_tables.py")
