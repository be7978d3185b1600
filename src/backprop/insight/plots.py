"""Training curves as a PNG (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

from pathlib import Path

from ..training import History


def _percent(values: list[float | None]) -> list[float]:
    """Fractions as percentages; NaN (no point drawn) where an epoch measured none."""
    return [float("nan") if v is None else 100 * v for v in values]


def plot_history(history: History, path: str | Path, *, val_name: str = "validation") -> Path:
    """Draw loss and (where measured) accuracy per epoch, training and validation, to ``path``.

    Two panels (loss, accuracy in %) of 10 × 3.6 in, or one (loss) of 5 × 3.6 in, at 100 dpi;
    returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    has_acc = any(a is not None for a in history.accuracy)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot(history.epoch, history.loss, "o-", label="training")
    if history.val_loss:
        ax.plot(history.epoch, history.val_loss, "s-", label=val_name)
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    ax.legend()
    if has_acc:
        ax = axes[0][1]
        ax.plot(history.epoch, _percent(history.accuracy), "o-", label="training")
        if history.val_accuracy and history.val_accuracy[0] is not None:
            ax.plot(history.epoch, _percent(history.val_accuracy), "s-", label=val_name)
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
        ax.legend()
    for row in axes:
        for a in row:
            a.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
