"""The benchmark's report: the text tables printed while it runs, and the JSON file.

:func:`format_header` (the machine and the settings), :func:`format_config` (one
configuration: every framework's rate, ratio, GFLOP/s and accuracy), :func:`format_summary`
(one line per configuration) all read the report dictionary that :func:`write_json` stores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .frameworks import NOT_INSTALLED
from .machine import numpy_blas

#: where the report is written unless told otherwise (relative to the current directory) ...
DEFAULT_JSON = Path("benchmarks/results.json")
#: ... and where a --quick run's goes, so that a smoke test never overwrites a measurement
QUICK_JSON = Path("benchmarks/results-quick.json")
#: how far (in percentage points) backprop's test accuracy may lie from PyTorch's, same settings
ACCURACY_TOLERANCE_PP = 0.3


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` to ``path`` as indented JSON, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _fmt_rate(x: float) -> str:
    """A rate with thousands separators: no decimals from 100 up, one below."""
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_header(report: dict[str, Any]) -> str:
    """The lines before the first configuration: versions, the machine and its BLAS, threads,
    the GEMM peak at the start, the settings, and notes on what weakens the measurement."""
    m, s, p = report["machine"], report["settings"], report["gemm_peak"]
    blas = numpy_blas(m)
    lines = []
    if s["quick"]:
        lines.append("*** QUICK SMOKE TEST: data subsets, a few dozen steps; NOT a measurement ***")
    lines += [
        f"backprop bench: backprop {m['backprop']} vs torch {m['torch'] or NOT_INSTALLED}, "
        f"scikit-learn {m['sklearn'] or NOT_INSTALLED} (numpy {m['numpy']}, "
        f"numba {m.get('numba') or NOT_INSTALLED + ': no compiled engine'}, Python {m['python']})",
        f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable); numpy BLAS "
        f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')})",
        f"threads: {s['threads']} ({s['threads_from']}); numpy's BLAS uses "
        f"{blas.get('num_threads')}"
        + (f", torch {m['torch_threads']}" if m.get("torch_threads") is not None else ""),
        "GEMM peak (numpy matmul {0}x{0}, best of {1}; sampled again before each configuration "
        "and at the end, the best sample counting): ".format(p["size"], p["repeats"])
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in p["gflops"].items()) + " at the start",
        f"{s['epochs']} epoch(s) per training run; median of {s['repeats']} interleaved repeats; "
        f"seed {s['seed']}",
    ]
    if s["repeats"] < 3:
        lines.append("note: fewer than 3 repeats; the medians are not a measurement")
    if m.get("openblas_env"):
        forced = ", ".join(f"{k}={v}" for k, v in m["openblas_env"].items())
        lines.append(f"note: {forced} is set, forcing numpy's OpenBLAS onto those kernels; unset it "
                     "(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE backprop bench) to let OpenBLAS "
                     "pick the CPU's own")
    return "\n".join(lines)


def format_summary(report: dict[str, Any]) -> str:
    """Every configuration on one line: backprop's rate and engine, the ratios, GFLOP/s against
    the run's best GEMM-peak sample, and the accuracy difference to PyTorch."""
    p = report["gemm_peak"]
    lines = ["summary (GEMM peak = best of all samples in the run: " + ", ".join(
        f"{dt} {v:.1f} GFLOP/s (samples {min(p['samples'][dt]):.1f}-{max(p['samples'][dt]):.1f})"
        for dt, v in p["gflops"].items()) + ")"]
    head = ["config", "backprop/s", "engine", "vs torch", "vs sklearn", "GFLOP/s", "% peak",
            "products alone % peak", "acc - torch"]
    rows = []
    for e in report["configs"]:
        res = e["results"]
        bp = res["backprop"]
        ratio = {k: (f"{res[k]['ratio_backprop_over_peer']:.2f}x" if "ratio_backprop_over_peer" in res[k]
                     else "n/a") for k in ("torch", "sklearn")}
        pct = bp.get("pct_of_peak")
        alone = (e.get("products_alone") or {}).get("pct_of_peak")
        diff = e["accuracy_diff_pp_vs_torch"]
        rows.append([e["name"], _fmt_rate(bp["samples_per_s"]["median"]), bp.get("engine", "-"),
                     ratio["torch"], ratio["sklearn"], f"{bp['gflops']:.1f}",
                     "-" if pct is None else f"{pct:.1f}%", "-" if alone is None else f"{alone:.1f}%",
                     "-" if diff is None else f"{diff:+.2f} pp"])
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    for r in [head, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(lines)


def format_config(entry: dict[str, Any]) -> str:
    """One configuration's table (an entry of the report's ``"configs"``): per framework the
    median rate and its range, the ratio, GFLOP/s, % of peak and test accuracy; then the matrix
    products alone and the accuracy difference to PyTorch."""
    predict = entry["task"] == "predict"
    unit = "images/s" if predict else "samples/s"
    dtype = entry["config"]["dtype"]
    what = (f"{entry['n_samples']:,} test images" if predict else
            f"{entry['epochs']} epoch(s) x {entry['n_samples']:,} samples")
    head = ["framework", f"{unit} (median)", "min-max", "backprop/peer", "GFLOP/s",
            f"% {dtype} peak"] + ([] if predict else ["test acc"])
    rows = []
    for name, res in entry["results"].items():
        if res["status"] != "ok":
            rows.append([name, res["status"]])
            continue
        r = res["samples_per_s"]
        ratio = res.get("ratio_backprop_over_peer")
        pct = res["pct_of_peak"]
        shown = f"{name} ({res['engine']})" if "engine" in res else name
        row = [shown, _fmt_rate(r["median"]), f"{_fmt_rate(r['min'])}-{_fmt_rate(r['max'])}",
               "-" if name == "backprop" else f"{ratio:.2f}x", f"{res['gflops']:.2f}",
               "-" if pct is None else f"{pct:.1f}%"]
        if not predict:
            row.append("-" if res["accuracy"] is None else f"{100 * res['accuracy']:.2f}%")
        rows.append(row)
    widths = [max(len(r[c]) for r in [head, *rows] if len(r) > c and len(r) == len(head))
              for c in range(len(head))]
    lines = [f"{entry['name']}: {entry['description']}; {what}"]
    for r in [head, *rows]:
        if len(r) == len(head):
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        else:  # a framework that did not run: its name and why
            lines.append("  " + r[0].ljust(widths[0]) + "  " + r[1])
    alone = entry.get("products_alone")
    if alone is not None:
        pct = "" if alone["pct_of_peak"] is None else f" ({alone['pct_of_peak']:.1f}% of peak)"
        share = alone["backprop_over_products_alone"]
        lines.append(f"  the matrix products alone (numpy matmul, random data of these shapes, best of the "
                     f"repeats): {_fmt_rate(alone['samples_per_s'])} {unit}, {alone['gflops']:.2f} GFLOP/s"
                     f"{pct}" + ("" if share is None else f"; backprop runs at {share:.2f}x that rate"))
        paired = alone.get("backprop_over_products_alone_per_repeat")
        if paired is not None:
            lines.append(f"  backprop over the products timed in the same repeat: median {paired['median']:.2f}x "
                         f"({paired['min']:.2f}x-{paired['max']:.2f}x)")
    diff = entry["accuracy_diff_pp_vs_torch"]
    if diff is not None:
        verdict = "within" if abs(diff) <= ACCURACY_TOLERANCE_PP else "OUTSIDE"
        lines.append(f"  test accuracy, backprop - torch: {diff:+.2f} percentage points "
                     f"({verdict} the tolerance of {ACCURACY_TOLERANCE_PP:g})")
    return "\n".join(lines)


