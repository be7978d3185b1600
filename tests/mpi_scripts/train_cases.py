"""Under ``mpiexec -n K``: train every case of cases.py in float64 and float32 and write each
process's weights and History to ``OUT/<case>-<dtype>-rank<r>.json`` (weights as hex floats,
so they compare bitwise)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import cases  # noqa: E402

from backprop import distributed  # noqa: E402

out = Path(sys.argv[1])
for name in cases.CASES:
    for dtype in ("float64", "float32"):
        weights, history = cases.train(name, dtype)
        record = {"weights": [float(v).hex() for v in weights], "history": history,
                  "size": distributed.size()}
        (out / f"{name}-{dtype}-rank{distributed.rank()}.json").write_text(json.dumps(record))
