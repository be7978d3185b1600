"""Tests of the benchmark harness (``backprop bench``, ``benchmarks/run.py``): its pieces, and one
tiny end-to-end run. Nothing here measures or asserts a speed: only counts, weights, orders,
keys and statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backprop as bp
from backprop import bench, cli
from backprop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def tiny_data(n: int = 60, n_test: int = 20, d: int = 784, dtype: str = "float32") -> bench.Data:
    """Random inputs with every one of the 10 classes present."""
    rng = np.random.default_rng(0)
    return bench.Data(rng.random((n, d)).astype(dtype), np.arange(n) % 10,
                      rng.random((n_test, d)).astype(dtype), np.arange(n_test) % 10)


# ------------------------------------------------------------------ counts and configs
def test_flop_count_is_six_n_sum_din_dout_per_epoch() -> None:
    c1 = bench.CONFIGS["C1"]
    assert bench.macs(c1.widths) == 784 * 30 + 30 * 10 == 23_820
    assert bench.flops(c1, 60_000) == 8_575_200_000           # 6 · 60,000 · 23,820
    assert bench.flops(c1, 60_000, epochs=3) == 3 * 8_575_200_000
    # without the first layer's dC/dx, which nobody computes: 6·N·Σ − 2·N·784·30
    assert bench.executed_flops(c1, 60_000) == 8_575_200_000 - 2 * 60_000 * 784 * 30
    c4p = bench.CONFIGS["C4-predict"]                             # inference: 2·N·Σ d_in·d_out
    assert bench.flops(c4p, 10_000) == 2 * 10_000 * (784 * 2048 + 2048 * 2048 + 2048 * 10)


def test_configs_are_the_issues() -> None:
    c = bench.CONFIGS
    assert (c["C1"].widths, c["C1"].hidden, c["C1"].loss, c["C1"].lr, c["C1"].batch_size) == (
        (784, 30, 10), "sigmoid", "quadratic", 3.0, 10)
    assert (c["C2"].widths, c["C2"].loss, c["C2"].lr, c["C2"].batch_size) == (
        (784, 100, 10), "cross_entropy", 0.5, 10)
    assert (c["C3"].optimizer, c["C3"].lr, c["C3"].batch_size) == ("adam", 1e-3, 128)
    assert (c["C4"].widths, c["C4"].momentum, c["C4"].batch_size) == (
        (784, 2048, 2048, 10), 0.9, 256)
    assert c["C3-f64"].dtype == c["C4-f64"].dtype == "float64"
    assert c["C3-predict"].task == c["C4-predict"].task == "predict"


@pytest.mark.parametrize("name", list(bench.CONFIGS))
@pytest.mark.parametrize("rows", [1, 7, 256])
def test_matrix_products_are_the_products_of_a_step(name: str, rows: int) -> None:
    """Forward Z = A Wᵀ per layer; for training, from the last layer back, dW = Δᵀ A and dA = Δ W
    except for the first layer: the FLOPs of executed_flops, with W laid out as Dense holds it."""
    config = bench.CONFIGS[name]
    products = bench.matrix_products(config, rows, np.random.default_rng(0))
    n_layers = len(config.widths) - 1
    assert len(products) == (n_layers if config.task == "predict" else 3 * n_layers - 1)
    assert sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in products) == bench.executed_flops(
        config, rows)
    forward, backward = products[:n_layers], products[n_layers:]
    for (a, b, out), d_in, d_out in zip(forward, config.widths[:-1], config.widths[1:], strict=True):
        assert a.shape == (rows, d_in) and out.shape == (rows, d_out)
        assert b.shape == (d_in, d_out) and b.T.flags.c_contiguous  # Wᵀ of a (d_out, d_in) W
    if config.task == "train":
        shapes = [(a.shape, b.shape) for a, b, _ in backward]
        w = config.widths
        expected = []
        for layer in reversed(range(n_layers)):
            expected.append(((w[layer + 1], rows), (rows, w[layer])))      # dW = Δᵀ A
            if layer > 0:
                expected.append(((rows, w[layer + 1]), (w[layer + 1], w[layer])))  # dA = Δ W
        assert shapes == expected
    for a, b, out in products:
        assert a.dtype == b.dtype == out.dtype == np.dtype(config.dtype)


@pytest.mark.parametrize("name, n, chunks", [("C3-predict", 5000, [2048, 2048, 904]),
                                             ("C3-predict", 2048, [2048]), ("C3", 5000, [128])])
def test_products_alone_times_one_batch_or_every_chunk_of_predict(monkeypatch, name, n, chunks) -> None:
    """One call covers a batch (training) or the n images in Network.PREDICT_ROWS chunks; the
    rate is samples per call over the time taken, here on a clock that ticks 0.5 s per read."""
    config = bench.CONFIGS[name]
    rows_seen: list[int] = []
    matmul = np.matmul

    def counting(a, b, out):
        if b.shape[1] == config.widths[1] and a.shape[1] == config.widths[0]:  # the first layer's Z
            rows_seen.append(a.shape[0])
        return matmul(a, b, out=out)

    ticks = iter(np.arange(0.0, 100.0, 0.5))
    monkeypatch.setattr(bench.gemm.np, "matmul", counting)
    monkeypatch.setattr(bench.gemm.time, "perf_counter", lambda: next(ticks))
    rate = bench.products_alone(config, n, seconds=1.0)
    assert rows_seen == chunks * 3  # warm-up, then calls until 1 s has passed: two
    per_call = n if config.task == "predict" else config.batch_size
    assert rate == 2 * per_call / 1.0


def test_summary_of_the_products_alone() -> None:
    """The best sample counts; GFLOP/s are nominal, as backprop's; reports without it give None."""
    config = bench.CONFIGS["C4"]
    ok = {"status": "ok", "seconds": [6.0, 5.0, 7.0], "accuracy": [0.9, 0.9, 0.9]}
    raw = {"n_samples": 60_000, "results": {"backprop": ok, "torch": {"status": "disabled"},
                                            "sklearn": {"status": "disabled"}},
           "products_alone_samples_per_s": [9_000.0, 12_000.0, 11_000.0]}
    entry = bench.summarise(config, raw, epochs=1, peaks={"float32": 500.0})
    alone = entry["products_alone"]
    assert alone["samples_per_s"] == 12_000.0
    nominal = 6 * 12_000 * (784 * 2048 + 2048 * 2048 + 2048 * 10) / 1e9
    assert alone["gflops"] == pytest.approx(nominal)
    assert alone["gflops_executed"] == pytest.approx(nominal - 2 * 12_000 * 784 * 2048 / 1e9)
    assert alone["pct_of_peak"] == pytest.approx(100 * nominal / 500.0)
    assert alone["backprop_over_products_alone"] == pytest.approx(60_000 / 6.0 / 12_000)
    assert "backprop runs at 0.83x that rate" in bench.format_config(entry)
    # repeat by repeat, each run over the products timed in its own repeat: 10,000/9,000,
    # 12,000/12,000 and 8,571/11,000
    paired = alone["backprop_over_products_alone_per_repeat"]
    assert paired["median"] == pytest.approx(1.0)
    assert paired["min"] == pytest.approx(60_000 / 7.0 / 11_000)
    assert paired["max"] == pytest.approx(60_000 / 6.0 / 9_000)
    assert "in the same repeat: median 1.00x (0.78x-1.11x)" in bench.format_config(entry)
    del raw["products_alone_samples_per_s"]
    assert bench.summarise(config, raw, epochs=1, peaks={"float32": 500.0})["products_alone"] is None


def test_parse_configs() -> None:
    assert [c.name for c in bench.parse_configs("c1, C3-F64")] == ["C1", "C3-f64"]
    assert len(bench.parse_configs("all")) == len(bench.CONFIGS)
    with pytest.raises(ConfigError, match="unknown configuration 'C9'"):
        bench.parse_configs("C1,C9")


def test_unknown_config_is_a_usage_error(capsys) -> None:
    assert cli.main(["bench", "--configs", "C9"]) == 2
    assert "unknown configuration" in capsys.readouterr().err


def test_default_threads_honours_the_environment(monkeypatch) -> None:
    for var in bench.THREAD_ENV:
        monkeypatch.delenv(var, raising=False)
    assert bench.default_threads()[1] == "the usable cores"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert bench.default_threads() == (1, "from OPENBLAS_NUM_THREADS")


# ------------------------------------------------------------------ fairness: order and weights
def test_epoch_orders_are_the_batches_fit_visits() -> None:
    seen = []

    class Spy(bp.Identity):
        def forward(self, x, train=False):
            if train:
                seen.append(x[:, 0].astype(int).tolist())
            return super().forward(x, train)

    n, bs, epochs, seed = 103, 10, 3, 7
    x = np.arange(n, dtype=np.float32).reshape(-1, 1)  # x[i] = i: a batch shows its indices
    net = bp.Network([Spy(), bp.Dense(1, 2)], seed=0)
    bp.fit(net, x, np.arange(n) % 2, loss=bp.CrossEntropy(), optimizer=bp.SGD(lr=0.01),
           epochs=epochs, batch_size=bs, shuffle=True, seed=seed, verbose=False)
    expected = [order[lo:lo + bs].tolist() for order in bench.epoch_orders(n, epochs, seed)
                for lo in range(0, n, bs)]
    assert seen == expected


@pytest.mark.parametrize("name", ["C1", "C3", "C3-f64"])
def test_torch_model_starts_from_backprops_weights_bit_for_bit(name: str) -> None:
    torch = pytest.importorskip("torch")
    config = bench.CONFIGS[name]
    net = bench.build_network(config, seed=3)
    model = bench.build_torch_model(config, net)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    params = bench.dense_params(net)
    assert len(linears) == len(params) == len(config.widths) - 1
    dtype = {"float32": torch.float32, "float64": torch.float64}[config.dtype]
    for linear, (W, b) in zip(linears, params, strict=True):
        assert linear.weight.dtype == dtype
        np.testing.assert_array_equal(linear.weight.detach().numpy(), W)
        np.testing.assert_array_equal(linear.bias.detach().numpy(), b)
    x = tiny_data(5, 1, dtype=config.dtype).x  # the same layers: the same outputs
    with torch.inference_mode():
        out = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, net.predict(x), rtol=1e-5, atol=1e-6)


def test_sklearn_model_starts_from_backprops_weights() -> None:
    pytest.importorskip("sklearn")
    config = bench.CONFIGS["C2"]
    net = bench.build_network(config, seed=3)
    clf = bench.build_sklearn_model(config, net, tiny_data(), seed=0, epochs=1)
    assert clf.warm_start and clf.max_iter == 1
    for coef, intercept, (W, b) in zip(clf.coefs_, clf.intercepts_, bench.dense_params(net),
                                       strict=True):
        np.testing.assert_array_equal(coef, W.T)
        np.testing.assert_array_equal(intercept, b)


# ------------------------------------------------------------------ missing peers
def test_a_missing_peer_is_reported_not_installed(monkeypatch) -> None:
    for module in ("torch", "sklearn", "sklearn.neural_network"):
        monkeypatch.setitem(sys.modules, module, None)  # `import torch` now raises ImportError
    assert bench.import_torch() is None and bench.import_sklearn_mlp() is None
    config = bench.CONFIGS["C2"]
    raw = bench.run_config(config, tiny_data(), repeats=1, epochs=1, seed=0, enabled={},
                           log=lambda line: None, products_seconds=0.01)
    assert raw["results"]["torch"] == {"status": bench.NOT_INSTALLED}
    assert raw["results"]["sklearn"] == {"status": bench.NOT_INSTALLED}
    entry = bench.summarise(config, raw, epochs=1, peaks={"float32": 1.0})
    table = bench.format_config(entry)
    assert table.count(bench.NOT_INSTALLED) == 2
    assert bench.machine_info(1)["torch"] is None


def test_a_failing_peer_is_reported_not_fatal(monkeypatch) -> None:
    def broken_runner(config, data, seed, epochs):
        def run(n):
            raise RuntimeError("boom")
        return run

    monkeypatch.setattr(bench.frameworks, "import_torch", lambda: object())  # "installed"
    monkeypatch.setattr(bench.frameworks, "torch_runner", broken_runner)
    raw = bench.run_config(bench.CONFIGS["C2"], tiny_data(), repeats=2, epochs=1, seed=0,
                           enabled={"sklearn": False}, log=lambda line: None, products_seconds=0.01)
    assert raw["results"]["torch"] == {"status": "error: RuntimeError: boom"}
    assert len(raw["products_alone_samples_per_s"]) == 2
    assert raw["results"]["sklearn"]["status"] == "disabled (--no-sklearn)"
    assert len(raw["results"]["backprop"]["seconds"]) == 2


def test_sklearn_cannot_express_the_quadratic_cost() -> None:
    pytest.importorskip("sklearn")
    status = bench.peer_status("sklearn", bench.CONFIGS["C1"], {})
    assert status == bench.CANNOT_EXPRESS
    assert bench.peer_status("sklearn", bench.CONFIGS["C2"], {"sklearn": False}).startswith(
        "disabled")


# ------------------------------------------------------------------ end to end
def test_quick_run_of_c1_writes_the_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results.json"
    code = cli.main(["bench", "--quick", "--configs", "C1", "--threads", "1",
                     "--gemm-size", "256", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "QUICK SMOKE TEST" in printed and "C1:" in printed
    report = json.loads(out.read_text())
    assert {"benchmark", "created", "settings", "machine", "gemm_peak", "configs"} <= set(report)
    assert report["settings"]["quick"] is True and report["settings"]["threads"] == 1
    assert report["gemm_peak"]["gflops"]["float32"] > 0
    assert {"cpu", "cores", "numpy", "blas", "torch", "sklearn"} <= set(report["machine"])
    (entry,) = report["configs"]
    assert entry["name"] == "C1" and entry["n_samples"] > 0
    assert entry["flops_per_run"] == bench.flops(bench.CONFIGS["C1"], entry["n_samples"])
    bp_result = entry["results"]["backprop"]
    assert bp_result["status"] == "ok" and len(bp_result["seconds"]) == 3
    assert bp_result["samples_per_s"]["median"] > 0 and bp_result["gflops"] > 0
    assert bp_result["pct_of_peak"] > 0 and 0 <= bp_result["accuracy"] <= 1
    assert entry["results"]["sklearn"]["status"] in (bench.CANNOT_EXPRESS, bench.NOT_INSTALLED)
    assert len(report["configs"][0]["products_alone"]) == 6
    assert entry["products_alone"]["samples_per_s"] > 0 and entry["products_alone"]["pct_of_peak"] > 0
    torch_result = entry["results"]["torch"]
    if torch_result["status"] == "ok":
        assert torch_result["ratio_backprop_over_peer"] > 0
        assert entry["accuracy_diff_pp_vs_torch"] is not None
    else:
        assert torch_result["status"] == bench.NOT_INSTALLED


def test_run_py_is_the_same_command() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--quick" in result.stdout and "--no-torch" in result.stdout


def test_the_suite_parses_no_arguments() -> None:
    """The command line lives in backprop.cli.bench: no module of backprop.bench imports argparse."""
    import ast

    modules = sorted(Path(bench.__file__).parent.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "configs.py", "harness.py", "report.py"}
    for module in modules:
        imported = set()
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert "argparse" not in imported, module.name
