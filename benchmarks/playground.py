"""The playground's speed: frames per second while training, as the server runs them.

    python benchmarks/playground.py [--seconds 10] [--repeats 3] [--json benchmarks/playground.json]

A page with 6 hidden layers of 8 tanh neurons on 500 points (250 train, 250 test), batch 10,
every neuron's heatmap on a 100 × 100 grid, a selected sample (its δ per neuron, ∂C/∂w per
link), ∂C/∂x at every training point, and the ‖δˡ‖ history. Three numbers, each the median of
``--repeats`` runs of ``--seconds``:

1. **training alone**: steps per second of the library's training step (``Session.train``);
2. **a frame alone**: the milliseconds to compute one frame (``Framer.frame`` and
   ``Session.record``) and encode its JSON, and the frame's size;
3. **the server's loop**: what a playing page gets: train for the server's slice
   (``TRAIN_SLICE``), then compute and encode a frame, again and again, on one thread;
   frames per second and training steps per second together.

Targets: ≥ 20 frames/s while training ≥ 500 steps/s. The machine, its
BLAS and its load average are recorded beside the numbers. BLAS runs on one thread, as in
``backprop playground``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from backprop.bench.machine import machine_info  # noqa: E402
from backprop.playground.app import TRAIN_SLICE  # noqa: E402
from backprop.playground.frames import Framer  # noqa: E402
from backprop.playground.session import Session  # noqa: E402
from backprop.threads import set_threads  # noqa: E402

CONFIG = {"dataset": "spiral", "points": 500, "train_share": 50, "hidden": [8] * 6, "activations": ["tanh"] * 6,
          "batch_size": 10, "learning_rate": 0.03, "grid": 100, "features": ["x1", "x2"]}


def page() -> tuple[Session, Framer]:
    session = Session(CONFIG)
    session.select({"set": "train", "index": 0})
    framer = Framer()
    session.train(100)
    framer.frame(session)  # warm: the workspace arrays exist
    return session, framer


def training_alone(seconds: float) -> float:
    session, _ = page()
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        steps += session.train(100)
    return steps / (time.perf_counter() - start)


def frame_alone(seconds: float) -> tuple[float, int]:
    session, framer = page()
    times, size = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        session.train(1)
        t = time.perf_counter()
        session.record()
        message, blob = framer.frame(session)
        text = json.dumps(message)
        times.append(time.perf_counter() - t)
        size = len(text) + len(blob)
    return statistics.median(times) * 1000.0, size


def server_loop(seconds: float) -> tuple[float, float]:
    session, framer = page()
    start, frames, steps = time.perf_counter(), 0, 0
    while time.perf_counter() - start < seconds:
        steps += session.train_for(TRAIN_SLICE)
        session.record()
        message, blob = framer.frame(session)
        json.dumps(message)
        frames += 1
    elapsed = time.perf_counter() - start
    return frames / elapsed, steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path(__file__).with_name("playground.json"))
    args = parser.parse_args(argv)
    set_threads(1)   # as `backprop playground` runs
    load_before = os.getloadavg()
    runs = []
    for _ in range(args.repeats):
        alone = training_alone(args.seconds)
        frame_ms, frame_bytes = frame_alone(args.seconds)
        fps, loop_steps = server_loop(args.seconds)
        runs.append({"training_steps_per_s": alone, "frame_ms": frame_ms, "frame_bytes": frame_bytes,
                     "loop_frames_per_s": fps, "loop_steps_per_s": loop_steps})
        print(f"training alone {alone:8.0f} steps/s | frame {frame_ms:6.2f} ms ({frame_bytes / 1e3:.0f} kB) | "
              f"server loop {fps:5.1f} frames/s with {loop_steps:6.0f} steps/s", flush=True)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result = {"config": CONFIG, "train_slice_s": TRAIN_SLICE, "seconds": args.seconds, "runs": runs,
              "median": median, "machine": machine_info(1), "load_average_before": load_before,
              "load_average_after": os.getloadavg()}
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median: {median['loop_frames_per_s']:.1f} frames/s while training {median['loop_steps_per_s']:.0f} "
          f"steps/s (target >= 20 and >= 500); a frame {median['frame_ms']:.2f} ms; "
          f"training alone {median['training_steps_per_s']:.0f} steps/s")
    print(f"cpu {result['machine']['cpu']}, BLAS {[b['internal_api'] for b in result['machine']['blas']]}, "
          f"load average {load_before[0]:.2f} -> {result['load_average_after'][0]:.2f}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
