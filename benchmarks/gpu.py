"""The GPU check, as one script: the device tests on CuPy and PyTorch CUDA tensors,
then one training epoch of C3, C4 and C5 with backprop on CuPy against PyTorch CUDA (eager).

Needs only what the device machine has: NumPy, CuPy (any CUDA build, imported as ``cupy``),
PyTorch with CUDA and pytest, plus this repository's ``src``. backprop's device code also
needs the pure-Python ``array-api-compat``; when it is not installed the script takes it from
``--vendor DIR`` (a folder holding ``array_api_compat/``, e.g. this checkout's
``.venv/lib/python3.11/site-packages``, carried to the machine).

What it times, per configuration, ``--repeats`` times (the median is reported):

* backprop: ``bp.fit(net, x, y, epochs=1)`` with ``net`` on ``"cuda"`` (CuPy) and the training
  set already on the GPU;
* PyTorch: the same initial weights (copied from backprop's network), the same batches (the
  permutation ``fit`` draws from its seed), ``torch.optim`` with the same settings, the loss
  and accuracy summed on the GPU and read once at the end, as ``fit`` does;
* TF32 is off in both (``CUPY_TF32=0``; ``torch.backends.cuda.matmul.allow_tf32 = False``):
  true float32 products.

It reports seconds per epoch, the ratio (PyTorch seconds / backprop seconds: above 1 means
backprop is faster), TFLOP/s of the executed products (:func:`backprop.bench.configs.
executed_flops`), and their share of the float32 GEMM peak measured in the same run (the best
of CuPy's and PyTorch's 8192² products), and the largest relative weight difference after the
epoch. Writes ``gpu.json`` into ``$OUT`` (or the current folder).

Usage::

    python benchmarks/gpu.py [--vendor DIR] [--repeats 3] [--skip-tests] [--configs C3,C4,C5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("CUPY_TF32", "0")  # before CuPy is imported: no TF32 in its products
ROOT = Path(__file__).resolve().parent.parent


def _paths(vendor: str | None) -> list[str]:
    """The folders to put on sys.path: ``src``, and one holding only ``array_api_compat`` when it
    is not importable (a link, so a vendored site-packages cannot shadow NumPy)."""
    paths = [str(ROOT / "src")]
    try:
        import array_api_compat  # noqa: F401
    except ImportError:
        if vendor is None or not (Path(vendor) / "array_api_compat").is_dir():
            sys.exit("array-api-compat is not installed: pass --vendor DIR, a folder holding array_api_compat/")
        holder = Path(tempfile.mkdtemp(prefix="bp-vendor-"))
        (holder / "array_api_compat").symlink_to(Path(vendor).resolve() / "array_api_compat")
        paths.append(str(holder))
    return paths


def run_tests(paths: list[str]) -> dict[str, Any]:
    """tests/test_devices*.py on the CuPy and PyTorch CUDA backends; returns the summary line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
    files = sorted(str(p) for p in (ROOT / "tests").glob("test_devices*.py"))
    # --noconftest: tests/conftest.py imports hypothesis, which the device tests do not need
    cmd = [sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider", "-k", "cupy or torch-cuda",
           *files]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    print("\n".join(lines[-15:]))
    return {"returncode": done.returncode, "summary": lines[-1] if lines else done.stderr[-500:]}


def gemm_peak(size: int = 8192, repeats: int = 10) -> dict[str, float]:
    """TFLOP/s of float32 ``size``² products, best of ``repeats``, with CuPy and with PyTorch."""
    import cupy
    import torch

    a, b = (cupy.random.standard_normal((size, size), dtype=cupy.float32) for _ in range(2))
    c = cupy.empty_like(a)
    ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
    tc = torch.empty_like(ta)
    products = {"cupy": lambda: cupy.matmul(a, b, out=c), "torch": lambda: torch.matmul(ta, tb, out=tc)}
    out = {}
    for name, product in products.items():
        product()  # warm-up
        cupy.cuda.Device().synchronize()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            cupy.cuda.Device().synchronize()
            best = min(best, time.perf_counter() - start)
        out[name] = 2.0 * size**3 / best / 1e12
    return out


def configs() -> dict[str, Any]:
    from dataclasses import replace

    from backprop.bench.configs import CONFIGS

    c4 = CONFIGS["C4"]
    return {"C3": CONFIGS["C3"], "C4": c4,
            "C5": replace(c4, name="C5", widths=(784, 4096, 4096, 4096, 10), batch_size=1024)}


def time_backprop(config: Any, x: Any, y: Any, seed: int) -> tuple[float, Any]:
    """Seconds of one ``fit`` epoch on CuPy, and the trained network."""
    import cupy

    import backprop as bp
    from backprop.bench.frameworks import build_network

    net = build_network(config, seed).to("cuda")
    opt = (bp.Adam(lr=config.lr) if config.optimizer == "adam"
           else bp.SGD(lr=config.lr, momentum=config.momentum))
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    bp.fit(net, x, y, loss=config.loss, optimizer=opt, epochs=1, batch_size=config.batch_size,
           seed=seed, verbose=False, engine="auto")
    cupy.cuda.Device().synchronize()
    return time.perf_counter() - start, net


def time_torch(config: Any, x: Any, y: Any, seed: int) -> tuple[float, Any]:
    """Seconds of the same epoch in PyTorch eager on CUDA, and the trained model."""
    import numpy as np
    import torch
    from torch.nn import functional as F

    from backprop.bench.frameworks import build_network, build_torch_model

    model = build_torch_model(config, build_network(config, seed)).to("cuda")
    opt = (torch.optim.Adam(model.parameters(), lr=config.lr) if config.optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum))
    n, bs = x.shape[0], config.batch_size
    perm = torch.as_tensor(np.random.default_rng(seed).permutation(n), device="cuda")  # fit's order
    model.train()
    torch.cuda.synchronize()
    start = time.perf_counter()
    total, correct = torch.zeros((), device="cuda"), torch.zeros((), device="cuda", dtype=torch.int64)
    for lo in range(0, n, bs):
        idx = perm[lo:lo + bs]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * idx.shape[0]
        correct += (out.argmax(1) == yb).sum()
    float(total), int(correct)  # the epoch's one read-back, as fit
    torch.cuda.synchronize()
    return time.perf_counter() - start, model


def weight_difference(net: Any, model: Any) -> float:
    """The largest |backprop − PyTorch| over the weights, relative to the largest weight."""
    import numpy as np

    from backprop.devices import to_numpy

    ours = np.concatenate([to_numpy(p).ravel() for p in net.parameters()])
    theirs = np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()])
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def benchmark(names: list[str], repeats: int, seed: int) -> list[dict[str, Any]]:
    import cupy
    import torch

    import backprop as bp
    from backprop.bench.configs import executed_flops

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    (x_host, y_host), _ = bp.datasets.load_mnist()
    peak = gemm_peak()
    best_peak = max(peak.values())
    print(f"float32 GEMM peak (8192², TF32 off): CuPy {peak['cupy']:.1f}, PyTorch {peak['torch']:.1f} TFLOP/s")
    x_cp = cupy.asarray(x_host)  # the training set on the GPU once; labels are checked on the host
    x_t, y_t = torch.as_tensor(x_host, device="cuda"), torch.as_tensor(y_host, device="cuda")
    rows = []
    for name in names:
        config = configs()[name]
        time_backprop(config, x_cp[:4 * config.batch_size], y_host[:4 * config.batch_size], seed)  # warm-up
        time_torch(config, x_t[:4 * config.batch_size], y_t[:4 * config.batch_size], seed)
        ours, theirs = [], []
        for _ in range(repeats):  # interleaved
            t_bp, net = time_backprop(config, x_cp, y_host, seed)
            t_pt, model = time_torch(config, x_t, y_t, seed)
            ours.append(t_bp)
            theirs.append(t_pt)
        t_bp, t_pt = statistics.median(ours), statistics.median(theirs)
        work = executed_flops(config, x_host.shape[0]) / 1e12
        row = {"config": name, "describe": config.describe(), "backprop_s": t_bp, "torch_s": t_pt,
               "ratio": t_pt / t_bp, "backprop_tflops": work / t_bp, "torch_tflops": work / t_pt,
               "backprop_peak_share": work / t_bp / best_peak, "torch_peak_share": work / t_pt / best_peak,
               "weight_rel_diff": weight_difference(net, model), "gemm_peak_tflops": peak}
        rows.append(row)
        print(f"{name}: backprop {t_bp:.3f} s ({row['backprop_tflops']:.1f} TFLOP/s, "
              f"{100 * row['backprop_peak_share']:.0f}% of peak), PyTorch {t_pt:.3f} s "
              f"({row['torch_tflops']:.1f} TFLOP/s), ratio {row['ratio']:.2f}x, "
              f"weights differ by {row['weight_rel_diff']:.1e} (relative)")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", default=None, help="a folder holding array_api_compat/, if it is not installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", default="C3,C4,C5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    paths = _paths(args.vendor)
    sys.path[:0] = paths
    result: dict[str, Any] = {}
    if not args.skip_tests:
        result["tests"] = run_tests(paths)
    result["benchmark"] = benchmark(args.configs.split(","), args.repeats, args.seed)
    out = Path(os.environ.get("OUT", "."))
    (out / "gpu.json").write_text(json.dumps(result, indent=2))
    return 0 if result.get("tests", {"returncode": 0})["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
