#!/usr/bin/env python3
"""Print the tables of docs/performance.md that come from the benchmarks' JSON files.

    python tools/perf_tables.py                 # all three, from benchmarks/*.json

* ``sklearn``: ``benchmarks/sklearn_digits.json`` (``python benchmarks/sklearn_digits.py``);
* ``mnist``: ``benchmarks/mnist_runs.json`` (``python benchmarks/mnist_runs.py``);
* ``mmap``: the ``fit_samples_per_s`` of ``benchmarks/data_loading.json``
  (``python benchmarks/data_loading.py --fit-only``);
* ``threads``: that run beside the runs in ``benchmarks/data_loading_fit_runs/`` (the same
  command with other ``--threads`` at other loads).

The page holds this script's output verbatim; ``tests/test_docs.py`` checks that, so a table
cannot drift from the measurement it cites. (The throughput table is ``tools/bench_table.py``'s.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

#: the settings of benchmarks/sklearn_digits.py, as the page names them
SKLEARN_ROWS = {
    "adam": "Adam, the defaults",
    "sgd": "SGD, the defaults (momentum 0.9, Nesterov, batch 200)",
    "sgd-plain-b16": "plain SGD, batch 16 (`alpha=1e-4`, the default L2 penalty)",
    "sgd-plain-b16-alpha0": "plain SGD, batch 16, `alpha=0`",
    "sgd-plain-b200": "plain SGD, batch 200",
}
ENGINES = {"numpy": "NumPy steps", "numpy+numba-update": "NumPy steps, compiled update",
           "numba": "compiled steps (numba)"}
MNIST_ROWS = {"main": "main job", "nielsen1": "Nielsen ch. 1 (book: 95.42%)",
              "nielsen3": "Nielsen ch. 3 (book: 98.04%)", "best": "best plain MLP"}


def sklearn_table(data: dict) -> str:
    rows = ["| setting | scikit-learn / backprop, wall time | ... CPU time | backprop's engine |",
            "|---|---|---|---|"]
    for name, r in data["results"].items():
        rows.append(f"| {SKLEARN_ROWS.get(name, name)} | {r['ratio']:.2f}x | {r['ratio_cpu']:.2f}x | "
                    f"{ENGINES.get(r['backprop_engine'], r['backprop_engine'])} |")
    return "\n".join(rows)


def mnist_table(data: dict) -> str:
    by_run: dict[str, dict[str, dict]] = {}
    for r in data["results"]:
        engine = r["command"].split("--engine ")[1].split()[0]
        by_run.setdefault(r["run"], {})[engine] = r
    rows = ["| run | command | test accuracy, NumPy / compiled | CPU time, NumPy / compiled | "
            "wall time on the busy machine | peak memory |", "|---|---|---|---|---|---|"]
    for run, engines in by_run.items():
        n, c = engines["numpy"], engines["auto"]
        command = c["command"].split(" --engine")[0]
        rows.append(f"| {MNIST_ROWS.get(run, run)} | `{command}` | **{n['test_accuracy']:.2%}** / "
                    f"**{c['test_accuracy']:.2%}** | {n['cpu_s']:.1f} s / {c['cpu_s']:.1f} s | "
                    f"{n['wall_s']:.1f} s / {c['wall_s']:.1f} s | {n['peak_mb']:,.0f} MB / "
                    f"{c['peak_mb']:,.0f} MB |")
    return "\n".join(rows)


def mmap_table(data: dict) -> str:
    rates = data["fit_samples_per_s"]
    rows = ["| | in memory | memory-mapped | mapped / in memory |", "|---|---|---|---|"]
    for label, key in (("samples per second", "samples_per_s"),
                       ("samples per CPU second", "samples_per_cpu_s")):
        memory, mapped = rates["in memory"][key], rates["memory-mapped .npy"][key]
        rows.append(f"| {label} | {memory:,.0f} | {mapped:,.0f} | {mapped / memory:.0%} |")
    return "\n".join(rows)


def threads_table(runs: list[dict]) -> str:
    rows = ["| BLAS threads | load average, before → after | samples/s, in memory / mapped | "
            "per CPU second, in memory / mapped |", "|---|---|---|---|"]
    for data in runs:
        run, rates = data["fit_run"], data["fit_samples_per_s"]
        threads = run["machine"]["blas"].rsplit(", ", 1)[1].split()[0]
        before, after = (run["load_average"][k].split()[0] for k in ("before", "after"))
        memory, mapped = rates["in memory"], rates["memory-mapped .npy"]
        rows.append(f"| {threads} | {before} → {after} | {memory['samples_per_s']:,.0f} / "
                    f"{mapped['samples_per_s']:,.0f} | {memory['samples_per_cpu_s']:,.0f} / "
                    f"{mapped['samples_per_cpu_s']:,.0f} |")
    return "\n".join(rows)


def tables() -> dict[str, str]:
    """The three tables, by name, from the JSON files in benchmarks/."""
    def load(name: str) -> dict:
        return json.loads((BENCH / name).read_text(encoding="utf-8"))

    others = sorted((BENCH / "data_loading_fit_runs").glob("*.json"))
    return {"sklearn": sklearn_table(load("sklearn_digits.json")),
            "mnist": mnist_table(load("mnist_runs.json")),
            "mmap": mmap_table(load("data_loading.json")),
            "threads": threads_table([load("data_loading.json")]
                                     + [load(f"data_loading_fit_runs/{p.name}") for p in others])}


def main() -> int:
    for name, table in tables().items():
        print(f"<!-- {name} -->\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
