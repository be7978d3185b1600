"""The ``backprop bench`` command and ``benchmarks/run.py``: the command line of the benchmark
suite :mod:`backprop.bench`, which parses no arguments of its own.

* ``backprop bench [--configs C1,C3] [--repeats 3] [--epochs 1] [--threads N] [--quick]
  [--no-torch] [--no-sklearn] [--seed 0] [--gemm-size 2048] [--engine auto] [--json FILE]``;
* ``python benchmarks/run.py [the same options]``: :func:`main`.

Registered through ``cli.COMMAND_MODULES``: :func:`register` adds the parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..bench import CONFIGS, DEFAULT_JSON, QUICK_JSON, parse_configs, run_benchmark, write_json
from ..errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``backprop bench`` and ``benchmarks/run.py``."""
    p.add_argument("--configs", default="all",
                   help=f"comma-separated configurations: {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved repeats per configuration; the median is reported (default 3)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per run (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every framework (default: the usable cores, or the "
                        "smallest of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS "
                        "where set)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: data subsets, a few dozen steps per run (not a measurement)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="skip PyTorch")
    p.add_argument("--no-sklearn", dest="sklearn", action="store_false", help="skip scikit-learn")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the data order")
    p.add_argument("--gemm-size", type=int, default=None,
                   help="side of the GEMM peak's square matrices (default 2048; 1024 with --quick)")
    p.add_argument("--engine", choices=("auto", "numpy", "numba", "numba-split"), default="auto",
                   help="backprop's training engine (fit(engine=...)); auto: where numba is "
                        "installed, compiled steps where able (plain SGD, batch <= 32), else "
                        "split-batch steps where able (2+ threads, <= 1 M parameters), else NumPy "
                        "steps with a compiled optimizer update; numba-split: the batch's rows split "
                        "between the threads (needs numba and SciPy)")
    p.add_argument("--json", type=Path, default=None,
                   help=f"write the results here (default {DEFAULT_JSON}, relative to the current "
                        f"directory; {QUICK_JSON} with --quick)")


def cmd_bench(args: argparse.Namespace) -> int:
    """Check the numbers, run the benchmark, write the JSON report; the exit code (0)."""
    for flag, value in (("--repeats", args.repeats), ("--epochs", args.epochs),
                        ("--threads", args.threads), ("--gemm-size", args.gemm_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be a positive integer; got {value}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer; got {args.seed}")
    configs = parse_configs(args.configs)
    report = run_benchmark(configs, repeats=args.repeats, epochs=args.epochs,
                           threads=args.threads, quick=args.quick, seed=args.seed,
                           torch=args.torch, sklearn=args.sklearn, gemm_size=args.gemm_size,
                           engine=args.engine)
    path = args.json or (QUICK_JSON if args.quick else DEFAULT_JSON)
    write_json(report, path)
    print(f"\nwrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` command to ``backprop``'s sub-commands (see ``cli.COMMAND_MODULES``)."""
    p = subparsers.add_parser(
        "bench", help="benchmark backprop against PyTorch and scikit-learn on MNIST",
        description="Train (and predict with) the same networks in backprop, PyTorch and "
                    "scikit-learn, interleaved in one process, and report samples/s, "
                    "ratios, GFLOP/s against the measured GEMM peak, and test accuracy.")
    add_arguments(p)
    p.set_defaults(func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """``python benchmarks/run.py [options]``: the same as ``backprop bench [options]``."""
    parser = argparse.ArgumentParser(prog="benchmarks/run.py",
                                     description="Same as `backprop bench`.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_bench(args)
    except ConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
