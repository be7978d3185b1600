"""Benchmark backprop against PyTorch and scikit-learn on MNIST: the same as ``backprop bench``.

    python benchmarks/run.py [--configs C1,C3] [--repeats 3] [--epochs 1] [--threads N] [--quick]

See benchmarks/README.md; the harness is ``backprop.bench``, its command line ``backprop.cli.bench``.
"""

import sys
from pathlib import Path

try:
    from backprop.cli.bench import main
except ImportError:  # not installed: use the source tree next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from backprop.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
