"""The playground's 2-D data sets, their input features, and a learner's own CSV.

Every point lies in the square ``[-6, 6]²`` (:data:`EXTENT`). Classification sets carry integer
labels ``0 .. k-1``; regression sets carry real targets in ``[-1, 1]``.

| name | kind | shape of the data |
|---|---|---|
| ``circle`` | 2 classes | a disc of one class inside a ring of the other |
| ``xor`` | 2 classes | the four quadrants, labelled by the sign of ``x1·x2`` |
| ``gauss`` | k classes | k Gaussian clouds on a circle (2: two opposite corners) |
| ``spiral`` | k classes | k interleaved spiral arms |
| ``plane`` | regression | ``y = (x1 + x2) / 12`` |
| ``multigauss`` | regression | a sum of signed Gaussian bumps |

``noise`` (0-50, percent) jitters the points; ``train_share`` (10-90, percent) splits them.
The features the network sees are chosen from :data:`FEATURES`; :func:`feature_jacobian`
turns ``∂C/∂(features)`` into ``∂C/∂(x1, x2)``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: the half-width of the plane: points and grids lie in [-EXTENT, EXTENT]²
EXTENT = 6.0
#: classification and regression data sets, by name
CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("plane", "multigauss")
#: the input features, in the order the network's inputs take them
FEATURES = ("x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2")
#: a learner's CSV: at most this many bytes and rows, at most this many classes
MAX_CSV_BYTES = 65536
MAX_CSV_ROWS = 2000
MAX_CLASSES = 5


@dataclass(frozen=True)
class Dataset:
    """Points ``x`` ``(n, 2)`` with targets ``y``: int labels ``(n,)`` (``classes`` ≥ 2) or real
    targets ``(n,)`` in [-1, 1] (``classes`` = 0: regression), split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def regression(self) -> bool:
        return self.classes == 0


def generate(name: str, *, n: int = 500, noise: float = 0.0, train_share: float = 50.0,
             classes: int = 2, seed: int = 0) -> Dataset:
    """The data set ``name`` with ``n`` points, ``noise`` percent of jitter and ``train_share``
    percent of the points for training, drawn from ``seed`` (the same seed, the same data)."""
    rng = np.random.default_rng(seed)
    k = classes if name in ("gauss", "spiral") else (2 if name in CLASSIFICATION else 0)
    if name == "circle":
        x, y = _circle(rng, n, noise)
    elif name == "xor":
        x, y = _xor(rng, n, noise)
    elif name == "gauss":
        x, y = _gauss(rng, n, noise, k)
    elif name == "spiral":
        x, y = _spiral(rng, n, noise, k)
    elif name == "plane":
        x, y = _plane(rng, n, noise)
    elif name == "multigauss":
        x, y = _multigauss(rng, n, noise)
    else:
        raise ConfigError(f"dataset must be one of {CLASSIFICATION + REGRESSION}; got {name!r}")
    return split(x, y, k, train_share, rng)


def split(x: np.ndarray, y: np.ndarray, classes: int, train_share: float,
          rng: np.random.Generator) -> Dataset:
    """Shuffle and split ``(x, y)``: the first ``train_share`` percent train, the rest test
    (each side keeps at least one point)."""
    order = rng.permutation(x.shape[0])
    x, y = x[order], y[order]
    n_train = min(max(1, round(x.shape[0] * train_share / 100.0)), x.shape[0] - 1)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes)


def _jitter(rng: np.random.Generator, x: np.ndarray, noise: float, scale: float) -> np.ndarray:
    """``x`` plus uniform noise of ``±noise% · scale`` on each coordinate, kept in the plane."""
    x = x + rng.uniform(-1.0, 1.0, x.shape) * (noise / 100.0) * scale
    return np.clip(x, -EXTENT, EXTENT)


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    y = (np.arange(n) % 2).astype(np.int64)          # 1: inside, 0: the ring
    r = np.where(y == 1, rng.uniform(0.0, 0.5 * radius, n), rng.uniform(0.7 * radius, radius, n))
    angle = rng.uniform(0.0, 2 * math.pi, n)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return _jitter(rng, x, noise, radius), y


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-5.0, 5.0, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)                     # a margin along the axes
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return _jitter(rng, x, noise, 5.0), y


def _gauss(rng: np.random.Generator, n: int, noise: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(n) % k).astype(np.int64)
    angle = 2 * math.pi * y / k + math.pi / 4
    centres = 2.5 * math.sqrt(2) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    spread = 0.5 + 3.5 * noise / 50.0                  # noise 0 → σ 0.5, noise 50 → σ 4
    x = centres + rng.normal(0.0, spread, (n, 2))
    return np.clip(x, -EXTENT, EXTENT), y


def _spiral(rng: np.random.Generator, n: int, noise: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(n) % k).astype(np.int64)
    t = rng.uniform(0.0, 1.0, n)
    r = 5.0 * t
    angle = 1.75 * 2 * math.pi * t + 2 * math.pi * y / k
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    return _jitter(rng, x, noise, 3.0), y


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-EXTENT, EXTENT, (n, 2))
    y = (x[:, 0] + x[:, 1]) / (2 * EXTENT)
    return _jitter(rng, x, noise, EXTENT), y


def multigauss_target(x: np.ndarray) -> np.ndarray:
    """The ``multigauss`` surface at ``x`` ``(n, 2)``: signed Gaussian bumps, in [-1, 1]."""
    bumps = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))
    total = np.zeros(x.shape[0])
    for cx, cy, sign in bumps:
        total += sign * np.exp(-((x[:, 0] - cx) ** 2 + (x[:, 1] - cy) ** 2) / 2.0)
    return np.clip(total, -1.0, 1.0)


def _multigauss(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-EXTENT, EXTENT, (n, 2))
    y = multigauss_target(x)                            # the label of the point before the jitter
    return _jitter(rng, x, noise, EXTENT), y


# ------------------------------------------------------------------ features
def features(x: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """The network's input ``(n, len(names))`` from points ``x`` ``(n, 2)``, float64."""
    x1, x2 = x[:, 0], x[:, 1]
    columns = {"x1": lambda: x1, "x2": lambda: x2, "x1sq": lambda: x1 * x1, "x2sq": lambda: x2 * x2,
               "x1x2": lambda: x1 * x2, "sinx1": lambda: np.sin(x1), "sinx2": lambda: np.sin(x2)}
    return np.stack([np.asarray(columns[name](), dtype=np.float64) for name in names], axis=1)


def feature_jacobian(x: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """``∂(feature_f)/∂(x1, x2)`` at each point: shape ``(n, len(names), 2)``; so
    ``∂C/∂(x1, x2) = Σ_f ∂C/∂feature_f · ∂feature_f/∂(x1, x2)``."""
    x1, x2 = x[:, 0], x[:, 1]
    zero, one = np.zeros_like(x1), np.ones_like(x1)
    parts = {"x1": (one, zero), "x2": (zero, one), "x1sq": (2 * x1, zero), "x2sq": (zero, 2 * x2),
             "x1x2": (x2, x1), "sinx1": (np.cos(x1), zero), "sinx2": (zero, np.cos(x2))}
    return np.stack([np.stack(parts[name], axis=1) for name in names], axis=1)


def grid_points(resolution: int) -> np.ndarray:
    """The centres of a ``resolution × resolution`` grid over the plane, row by row from the top
    (x2 = +EXTENT) to the bottom, left to right: shape ``(resolution², 2)``."""
    step = 2 * EXTENT / resolution
    centres = -EXTENT + step * (np.arange(resolution) + 0.5)
    x1, x2 = np.meshgrid(centres, centres[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


# ------------------------------------------------------------------ CSV
def parse_csv(text: str) -> tuple[np.ndarray, np.ndarray, int]:
    """A learner's CSV: rows ``x1,x2,label`` (an optional header line of names is skipped).

    Whole-number labels ``0 .. k-1`` (2 ≤ k ≤ :data:`MAX_CLASSES`) make a classification set;
    any other numbers in [-1, 1] a regression set (``classes`` 0). Returns ``(x, y, classes)``.

    Raises:
        ConfigError: the text is too long, a row is malformed, a value is not finite or out of
            range, or there are fewer than 4 rows; the message names the row.
    """
    if len(text.encode("utf-8")) > MAX_CSV_BYTES:
        raise ConfigError(f"csv must be at most {MAX_CSV_BYTES} bytes; got {len(text.encode('utf-8'))}")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]  # a header
    if len(rows) > MAX_CSV_ROWS:
        raise ConfigError(f"csv must have at most {MAX_CSV_ROWS} rows; got {len(rows)}")
    if len(rows) < 4:
        raise ConfigError(f"csv must have at least 4 rows of x1,x2,label; got {len(rows)}")
    values = np.empty((len(rows), 3))
    for i, row in enumerate(rows, start=1):
        if len(row) != 3:
            raise ConfigError(f"csv row {i} must have 3 values x1,x2,label; got {len(row)}")
        for j, cell in enumerate(row):
            if not _is_number(cell) or not math.isfinite(float(cell)):
                raise ConfigError(f"csv row {i}, column {j + 1} must be a finite number; got {cell.strip()!r}")
            values[i - 1, j] = float(cell)
    x, label = values[:, :2], values[:, 2]
    if np.abs(x).max() > EXTENT:
        bad = int(np.argmax(np.abs(x).max(axis=1))) + 1
        raise ConfigError(f"csv x1 and x2 must lie in [-{EXTENT:g}, {EXTENT:g}]; row {bad} does not")
    if np.all(label == np.round(label)) and label.min() >= 0:
        k = int(label.max()) + 1
        if not 2 <= k <= MAX_CLASSES:
            raise ConfigError(f"csv class labels must be 0 .. k-1 with 2 <= k <= {MAX_CLASSES}; got k = {k}")
        return x, label.astype(np.int64), k
    if np.abs(label).max() > 1.0:
        raise ConfigError("csv regression targets must lie in [-1, 1] (or use whole-number class labels)")
    return x, label, 0


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def to_csv(data: Dataset) -> str:
    """The data set as CSV text: ``x1,x2,label,set`` with ``set`` train or test."""
    out = io.StringIO()
    out.write("x1,x2,label,set\n")
    for part, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        for (a, b), label in zip(x, y, strict=True):
            out.write(f"{float(a)!r},{float(b)!r},{label.item()!r},{part}\n")
    return out.getvalue()
