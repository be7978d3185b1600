"""``History``: what ``fit`` measured, one entry per epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch.

    ``val_*`` lists stay empty without validation data; ``*accuracy`` lists hold ``None``
    where the targets are not class labels.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    #: set by a callback (e.g. :class:`EarlyStopping`) to end training after this epoch
    stop_training: bool = False
    #: the epoch whose weights the network holds at the end, if a callback restored them
    restored_epoch: int | None = None
    #: with ``fit(record_grad_norms=True)``: for each Dense layer (by index in ``net.layers``),
    #: per epoch, the root-mean-square over the epoch's samples of ‖δˡ‖ = ‖∂C_x/∂zˡ‖, the
    #: per-sample error at that layer's output (small values in early layers: vanishing gradients)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    #: which engine ran the steps (see ``fit(engine=...)``): ``"numpy"``, ``"numba"`` (the
    #: compiled steps), or ``"numpy+numba-update"`` (NumPy steps whose optimizer update ran
    #: compiled); a data-parallel run adds ``", data-parallel over K processes"``
    engine: str = "numpy"

    def record(self, epoch: int, logs: dict[str, Any], lr: float, seconds: float, *, validation: bool) -> None:
        """Append one epoch's ``logs`` (``loss``, ``accuracy``, and with ``validation`` the
        ``val_*`` entries), its learning rate and its duration."""
        self.epoch.append(epoch)
        self.loss.append(logs["loss"])
        self.accuracy.append(logs["accuracy"])
        if validation:
            self.val_loss.append(logs["val_loss"])
            self.val_accuracy.append(logs["val_accuracy"])
        self.lr.append(lr)
        self.seconds.append(seconds)

    def as_dict(self) -> dict[str, Any]:
        """The per-epoch lists by name (JSON-serialisable)."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        out: dict[str, Any] = {k: list(getattr(self, k)) for k in keys}
        if self.grad_norms:
            out["grad_norms"] = {k: list(v) for k, v in self.grad_norms.items()}
        return out

    def __len__(self) -> int:
        return len(self.epoch)

    def _repr_html_(self) -> str:
        """The per-epoch table as HTML, for notebooks."""
        table = {k: v for k, v in self.as_dict().items() if k != "grad_norms" and v}
        head = "".join(f"<th>{k}</th>" for k in table)
        body = "".join(
            "<tr>" + "".join(f"<td>{'' if v[i] is None else f'{v[i]:.4g}'}</td>" for v in table.values())
            + "</tr>" for i in range(len(self)))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = {k: v[-1] for k, v in self.as_dict().items() if v and v[-1] is not None}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in last.items())
        return f"History({len(self)} epochs; last: {shown})"
