"""The benchmark suite behind ``backprop bench``: backprop against PyTorch and scikit-learn on
MNIST, in one process.

For each configuration (:data:`CONFIGS`) and each repeat, the frameworks run one after the
other (repeat r: backprop, torch, sklearn; repeat r+1: ...), so that a change in the machine's
speed during the run touches all of them alike. Every framework gets the same thread count,
the same initial weights (copied from backprop's network; scikit-learn's through a warm start),
the same data and, for backprop and PyTorch, the same mini-batches in the same order. Reported
per configuration: samples (or images) per second, median and range over the repeats; the
ratio backprop/peer; the achieved GFLOP/s against the GEMM peak measured in the same run; the
rate the configuration's matrix products alone allow (:func:`products_alone`); and the test
accuracy after the same epochs. See ``benchmarks/README.md``.

The modules, one job each:

* :mod:`.configs`: the configurations, their FLOP counts, the data of a run, ``--quick`` sizes;
* :mod:`.gemm`: the GEMM peak and the matrix products of a configuration timed alone;
* :mod:`.frameworks`: one runner per framework (backprop, PyTorch, scikit-learn);
* :mod:`.harness`: interleaved repeats, medians, the whole run (:func:`run_benchmark`);
* :mod:`.machine`: the CPU, the BLAS libraries and the thread counts, for the record;
* :mod:`.report`: the printed tables and the JSON file.

The command line (``backprop bench``, ``benchmarks/run.py``) is :mod:`backprop.cli.bench`;
this package parses no arguments. PyTorch and scikit-learn are optional: a framework that is
not installed is reported as such. They are imported inside the functions that use them.
"""

from __future__ import annotations

from .configs import (
    CONFIGS,
    QUICK_FLOP_BUDGET,
    QUICK_STEPS,
    QUICK_TEST,
    Config,
    Data,
    executed_flops,
    flops,
    macs,
    parse_configs,
    quick_sizes,
)
from .frameworks import (
    CANNOT_EXPRESS,
    FRAMEWORKS,
    NOT_INSTALLED,
    backprop_runner,
    build_network,
    build_sklearn_model,
    build_torch_model,
    dense_params,
    epoch_orders,
    import_sklearn_mlp,
    import_torch,
    peer_status,
    sklearn_runner,
    torch_runner,
)
from .gemm import PRODUCTS_S, gemm_peak, matrix_products, products_alone
from .harness import PAUSE_S, run_benchmark, run_config, summarise
from .machine import THREAD_ENV, default_threads, machine_info
from .report import DEFAULT_JSON, QUICK_JSON, format_config, format_header, format_summary, write_json

__all__ = [
    "CANNOT_EXPRESS", "CONFIGS", "DEFAULT_JSON", "FRAMEWORKS", "NOT_INSTALLED", "PAUSE_S",
    "PRODUCTS_S", "QUICK_FLOP_BUDGET", "QUICK_JSON", "QUICK_STEPS", "QUICK_TEST", "THREAD_ENV",
    "Config", "Data", "backprop_runner", "build_network", "build_sklearn_model",
    "build_torch_model", "default_threads", "dense_params", "epoch_orders", "executed_flops",
    "flops", "format_config", "format_header", "format_summary", "gemm_peak",
    "import_sklearn_mlp", "import_torch", "machine_info", "macs", "matrix_products",
    "parse_configs", "peer_status", "products_alone", "quick_sizes", "run_benchmark",
    "run_config", "sklearn_runner", "summarise", "torch_runner", "write_json",
]
