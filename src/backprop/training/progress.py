"""The progress bar of ``fit(verbose=True)``: one per epoch, with live loss and accuracy."""

from __future__ import annotations

from typing import Any


class Progress:
    """A tqdm bar over an epoch's ``total`` samples; :meth:`report` is the engines' callback.

    Args:
        total: the samples in the epoch.
        desc: the bar's label, e.g. ``"epoch 3/20"``.
        labels: whether the targets are class labels (then the accuracy is shown too).
    """

    #: batches between refreshes of the shown loss and accuracy
    EVERY = 50

    def __init__(self, total: int, desc: str, labels: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="sample", unit_scale=True, leave=True, dynamic_ncols=True)
        self.labels = labels
        self.calls = 0

    def report(self, seen: int, loss_sum: float, correct: float) -> None:
        """``seen`` samples trained so far, with the running sums of loss × rows and correct."""
        self.bar.update(seen - self.bar.n)
        if self.calls % self.EVERY == 0:
            self.bar.set_postfix(self.postfix(loss_sum, correct, seen), refresh=False)
        self.calls += 1

    def postfix(self, loss_sum: float, correct: float, seen: int) -> dict[str, str]:
        shown = {"loss": f"{loss_sum / seen:.4f}"}
        if self.labels:
            shown["acc"] = f"{correct / seen:.4f}"
        return shown

    def close(self, logs: dict[str, Any] | None = None) -> None:
        """Show the epoch's final ``logs`` (if given) and close the bar."""
        if logs is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if v is not None}, refresh=True)
        self.bar.close()
