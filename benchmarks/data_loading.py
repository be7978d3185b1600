"""Loading user data: backprop's CSV and Parquet readers against pandas, pyarrow and NumPy,
and ``fit`` from a memory-mapped ``.npy`` against ``fit`` from memory.

    python benchmarks/data_loading.py [--rows 1000000] [--cols 100] [--dir DIR] [--json PATH]
    python benchmarks/data_loading.py --rows 200000,400000,800000 --cols 51 \
        --only "auto: pyarrow,pandas.read_csv" --repeats 3 --fit-repeats 0    # memory by size

1. Writes, for each size in ``--rows``, a numeric CSV of rows x ``--cols`` (``--cols - 1``
   float32 features printed in their shortest form, then an integer label 0..9, with a
   header row) and its Parquet twin (float64 features, int64 label, pyarrow's default row
   groups and compression) into ``--dir`` (kept between runs; default: a
   ``backprop-data-bench`` folder in the temporary directory).
2. Runs each reader ``--repeats`` times, each time in a fresh process, the readers taking
   turns; reports the median wall-clock seconds, the median CPU seconds of all its threads,
   and the largest peak memory: the growth of the process's peak resident set (``VmHWM`` of
   ``/proc/self/status``) over its size after the imports. The peak is reset after the
   imports (``/proc/self/clear_refs``), so that an import's transient is not counted.
   ``ru_maxrss`` is not used: after ``exec`` it carries the parent's peak (this script's,
   which wrote the files).
3. Saves MNIST's 60,000 x 784 training images as ``.npy`` and trains the same network for
   ``--fit-epochs`` epochs from the array in memory and from ``load_npy``'s memory map,
   alternating, ``--fit-repeats`` times each (0: not at all), and reports the median
   samples/s.

pandas and pyarrow are optional: a reader whose package is missing is reported as such.
The CSV is written with pyarrow when it is installed (else ``np.savetxt``, much slower).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import backprop as bp
except ImportError:  # not installed: use the source tree next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import backprop as bp

MB = 1 << 20

# ----------------------------------------------------------------------- the readers
# each runs in a child process: name -> (packages to import first, call on the path)
READERS = {
    "backprop load_csv (auto: pyarrow)": ("csv", "bp.datasets.load_csv(path)"),
    "backprop load_csv (engine=numpy)": ("csv", "bp.datasets.load_csv(path, engine='numpy')"),
    "backprop load_csv (engine=python)": ("csv", "bp.datasets.load_csv(path, engine='python')"),
    "pandas.read_csv": ("csv", "pandas.read_csv(path)"),
    "pyarrow.csv.read_csv": ("csv", "pyarrow.csv.read_csv(path)"),
    "np.loadtxt (float32)": ("csv", "np.loadtxt(path, delimiter=',', skiprows=1, "
                                    "dtype=np.float32)"),
    "backprop load_parquet": ("parquet", "bp.datasets.load_parquet(path)"),
    "pyarrow.parquet.read_table": ("parquet", "pyarrow.parquet.read_table(path)"),
    "pandas.read_parquet": ("parquet", "pandas.read_parquet(path)"),
}

CHILD = """
import sys, time, json
import numpy as np
import backprop as bp
for name in ("pandas", "pyarrow", "pyarrow.csv", "pyarrow.parquet"):
    try:
        __import__(name)
    except ImportError:
        pass
import pandas, pyarrow  # noqa: E401  (a missing one fails the child: 'not installed')
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
path = sys.argv[1]
try:  # the peak so far (the imports') is forgotten: VmHWM restarts from VmRSS
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:  # kernels before 4.0: the imports' peak may then hide a smaller one
    pass
base = status("VmRSS")
start, cpu = time.perf_counter(), time.process_time()
result = {call}
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({{"seconds": seconds, "cpu": cpu, "peak": status("VmHWM") - base}}))
"""


def run_reader(call: str, path: Path) -> dict:
    """Run ``call`` on ``path`` in a fresh interpreter: seconds and peak memory growth."""
    code = CHILD.format(call=call)
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": "not installed" if "ModuleNotFoundError" in last else last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ the files
def make_files(folder: Path, rows: int, cols: int) -> tuple[Path, Path]:
    """The CSV and its Parquet twin (written once, reused while their size is unchanged)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, parquet = folder / f"table_{rows}x{cols}.csv", folder / f"table_{rows}x{cols}.parquet"
    if csv.exists() and parquet.exists():
        return csv, parquet
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(cols - 1)] + ["label"]
    chunk = 100_000
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq
    except ImportError:
        pa = None
    csv_writer = parquet_writer = None
    with open(csv, "wb") as out:
        if pa is None:
            out.write((",".join(names) + "\n").encode())
        for start in range(0, rows, chunk):
            m = min(chunk, rows - start)
            x = rng.standard_normal((m, cols - 1)).astype(np.float32)
            y = rng.integers(0, 10, m)
            if pa is None:
                np.savetxt(out, np.column_stack([x, y]), delimiter=",",
                           fmt=["%.9g"] * (cols - 1) + ["%d"])
                continue
            table = pa.table([*x.T, y], names=names)  # float32 features, int64 label
            if csv_writer is None:
                csv_writer = pacsv.CSVWriter(out, table.schema, write_options=pacsv.WriteOptions(
                    quoting_style="none"))
            csv_writer.write_table(table)
            twin = pa.table([*x.T.astype(np.float64), y], names=names)
            if parquet_writer is None:
                parquet_writer = pq.ParquetWriter(parquet, twin.schema)
            parquet_writer.write_table(twin, row_group_size=1 << 20)
    if csv_writer is not None:
        csv_writer.close()
    if parquet_writer is not None:
        parquet_writer.close()
    return csv, parquet


# -------------------------------------------------------------------------- fit rates
def fit_rates(folder: Path, epochs: int, repeats: int) -> dict:
    """Median samples/s of fit from memory and from a memory map of the same MNIST rows, per
    wall-clock second and per CPU second (all threads: what a busy machine cannot inflate)."""
    (x, y), _ = bp.datasets.load_mnist()
    x_path, y_path = folder / "mnist_x.npy", folder / "mnist_y.npy"
    np.save(x_path, x)
    np.save(y_path, y)
    mapped, labels = bp.datasets.load_npy(x_path, y_path)
    runs: dict[str, list[tuple[float, float]]] = {"in memory": [], "memory-mapped .npy": []}
    for rep in range(repeats + 1):  # the first round is not timed: first calls, page cache
        for name, data in (("in memory", x), ("memory-mapped .npy", mapped)):
            net = bp.Network([bp.Dense(784, 128), bp.ReLU(), bp.Dense(128, 10)], seed=0)
            start, cpu = time.perf_counter(), time.process_time()
            bp.fit(net, data, labels, loss="cross_entropy", optimizer=bp.Adam(1e-3),
                   epochs=epochs, batch_size=128, seed=0, verbose=False, engine="numpy")
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            if rep:
                runs[name].append((epochs * len(x) / wall, epochs * len(x) / cpu))
    return {name: {"samples_per_s": statistics.median(r[0] for r in rs),
                   "samples_per_cpu_s": statistics.median(r[1] for r in rs)}
            for name, rs in runs.items()}


# --------------------------------------------------------------------------- machine
def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = f"{info[0]['internal_api']} {info[0]['version']}, kernel " \
                   f"{info[0].get('architecture')}, {info[0]['num_threads']} threads"
    except ImportError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("pandas", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None  # other jobs on the machine
    return {"cpu": cpu, "cores": os.cpu_count(), "blas": blas, "versions": versions, "load": load}


def run_size(rows: int, args: argparse.Namespace) -> dict:
    """Every chosen reader on the files of ``rows`` x ``args.cols``: a table printed, a dict."""
    csv, parquet = make_files(args.dir, rows, args.cols)
    result_mb = rows * (args.cols - 1) * 4 / MB
    print(f"\n{rows:,} x {args.cols}: CSV {csv.stat().st_size / MB:,.0f} MB, Parquet "
          f"{parquet.stat().st_size / MB:,.0f} MB; the float32 features: {result_mb:,.0f} MB")
    skip = [t for t in args.skip.split(",") if t]
    only = [t for t in args.only.split(",") if t]
    chosen = {name: spec for name, spec in READERS.items()
              if not any(t in name for t in skip) and (not only or any(t in name for t in only))}
    runs: dict[str, list[dict]] = {name: [] for name in chosen}
    for _ in range(args.repeats):  # the readers take turns: a busy spell hits them alike
        for name, (kind, call) in chosen.items():
            runs[name].append(run_reader(call, csv if kind == "csv" else parquet))
    print(f"| reader | file | seconds (median of {args.repeats}) | CPU seconds | peak memory (MB) | "
          f"peak / float32 result |\n|---|---|---|---|---|---|")
    readers = []
    for name, results in runs.items():
        kind = chosen[name][0]
        failed = [r["error"] for r in results if "error" in r]
        if failed:
            readers.append({"reader": name, "file": kind, "error": failed[0]})
            print(f"| {name} | {kind} | {failed[0]} | | | |", flush=True)
            continue
        row = {"reader": name, "file": kind,
               "seconds": statistics.median(r["seconds"] for r in results),
               "cpu": statistics.median(r["cpu"] for r in results),
               "peak": max(r["peak"] for r in results), "runs": results}
        readers.append(row)
        print(f"| {name} | {kind} | {row['seconds']:.2f} | {row['cpu']:.2f} | "
              f"{row['peak'] / MB:,.0f} | {row['peak'] / MB / result_mb:.2f} |", flush=True)
    return {"rows": rows, "csv_bytes": csv.stat().st_size, "parquet_bytes": parquet.stat().st_size,
            "result_bytes": int(result_mb * MB), "readers": readers}


def main() -> int:
    # the docstring's first paragraph: what the script compares (its Usage line is argparse's)
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].replace("``", "").split()))
    parser.add_argument("--rows", default="1000000",
                        help="rows of the files: one size, or several separated by commas")
    parser.add_argument("--cols", type=int, default=100,
                        help="columns of the data file: the features and one label")
    parser.add_argument("--dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "backprop-data-bench",
                        help="where the data files are written and kept between runs (default: "
                             "a backprop-data-bench folder in the temporary folder)")
    parser.add_argument("--skip", default="engine=python",
                        help="comma-separated fragments of reader names to leave out (default: "
                             "the slow reference parser; pass '' to run everything)")
    parser.add_argument("--only", default="",
                        help="comma-separated fragments of reader names: run only these")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per reader and size")
    parser.add_argument("--fit-epochs", type=int, default=1,
                        help="epochs of each fit, from memory and from the memory map")
    parser.add_argument("--fit-repeats", type=int, default=5,
                        help="fits of each kind, alternating; the median is reported")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/data_loading.json"),
                        help="where the results are written as JSON")
    args = parser.parse_args()

    about = machine()
    load = ", ".join(f"{v:.1f}" for v in about["load"]) if about["load"] else "unknown"
    print(f"CPU: {about['cpu']} ({about['cores']} cores); BLAS: {about['blas']}; "
          f"load average {load} (other jobs on the machine)")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in about["versions"].items()))
    sizes = [run_size(int(rows), args) for rows in args.rows.split(",")]
    rates = fit_rates(args.dir, args.fit_epochs, args.fit_repeats) if args.fit_repeats else {}
    if rates:
        print(f"\nfit, MNIST 60,000 x 784 float32, [784, 128, 10] Adam, batch 128, engine numpy, "
              f"median of {args.fit_repeats}:")
    for unit, key in (("second", "samples_per_s"), ("CPU second", "samples_per_cpu_s")):
        if rates:
            memory, mapped = rates["in memory"][key], rates["memory-mapped .npy"][key]
            print(f"  samples per {unit}: in memory {memory:,.0f}, memory-mapped {mapped:,.0f} "
                  f"({mapped / memory:.0%})")
    about["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": about, "cols": args.cols, "repeats": args.repeats,
                                     "sizes": sizes, "fit_samples_per_s": rates}, indent=2) + "\n")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
