"""Training from a memory-mapped .npy larger than the process's anonymous memory.

A 256 MB file of features is written once; two fresh processes train the same network on
it for one epoch, one through load_npy's memory map, one from the array read into memory.
Mapped file pages count in the resident set but are not anonymous memory (``RssAnon`` in
/proc/self/status), so the mapped run's anonymous memory must stay far below the file's
size, and its weights must equal the in-memory run's bit for bit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="RssAnon is read from /proc/self/status (Linux)")

ROWS, WIDTH = 65536, 1024  # 256 MB of float32

CHILD = r"""
import json, sys
import numpy as np
import backprop as bp

def rss_anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

mode, x_path, y_path, out = sys.argv[1:]
x, y = bp.datasets.load_npy(x_path, y_path, mmap=(mode == "mmap"))
samples = [rss_anon()]

class Sample(bp.Callback):
    def on_batch_end(self, batch, logs, net):
        if batch % 16 == 0:
            samples.append(rss_anon())

net = bp.Network([bp.Dense(x.shape[1], 16), bp.ReLU(), bp.Dense(16, 4)], seed=0)
bp.fit(net, x, y, loss="cross_entropy", optimizer=bp.SGD(lr=0.01, momentum=0.9), epochs=1,
       batch_size=256, seed=0, verbose=False, engine="numpy", callbacks=[Sample()])
samples.append(rss_anon())
np.savez(out, *net.parameters())
print(json.dumps({"type": type(x).__name__, "peak_anon": max(samples)}))
"""


def train(mode: str, x_path: Path, y_path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(x_path), str(y_path), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_training_from_a_map_larger_than_anonymous_memory(tmp_path):
    x_path, y_path = tmp_path / "x.npy", tmp_path / "y.npy"
    x = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32, shape=(ROWS, WIDTH))
    rng = np.random.default_rng(0)
    for start in range(0, ROWS, 4096):  # written through the map: never all in memory here
        x[start:start + 4096] = rng.standard_normal((4096, WIDTH), dtype=np.float32)
    x.flush()
    del x
    np.save(y_path, rng.integers(0, 4, ROWS))
    size = x_path.stat().st_size

    mapped = train("mmap", x_path, y_path, tmp_path / "mapped.npz")
    in_memory = train("memory", x_path, y_path, tmp_path / "memory.npz")

    print(f"file {size / 2**20:.0f} MB; peak RssAnon: memory-mapped "
          f"{mapped['peak_anon'] / 2**20:.0f} MB, in memory {in_memory['peak_anon'] / 2**20:.0f} MB")
    assert mapped["type"] == "memmap" and in_memory["type"] == "ndarray"
    assert mapped["peak_anon"] < size / 4          # the map is never copied into memory
    assert in_memory["peak_anon"] > size           # (the comparison run does hold it)
    with np.load(tmp_path / "mapped.npz") as a, np.load(tmp_path / "memory.npz") as b:
        assert len(a.files) == 4
        for key in a.files:
            assert a[key].tobytes() == b[key].tobytes()
