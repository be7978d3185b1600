"""The ``backprop`` commands that look inside a network: report, explain, saliency, attack.

* ``backprop report MODEL [--out report.html] [--limit N]``: one self-contained HTML page
  about a trained model (:mod:`backprop.insight.report`);
* ``backprop explain [--layers 2,3,2] [--activation sigmoid] [--loss quadratic] [--seed 0]
  [--format text|markdown] [--out FILE]``: one forward and one backward pass of a tiny
  network, every number checked against the per-parameter reference
  (:mod:`backprop.insight.explain`); exit 1 if a check fails;
* ``backprop saliency MODEL [--index i] [--out saliency.png]``: ``|∇ₓC|`` over a test image;
* ``backprop attack MODEL --eps 0.05,0.1,0.2 [--limit N] [--out attack.png] [--json]``: test
  accuracy under fast-gradient-sign examples (:mod:`backprop.insight.adversarial`).

Registered through :data:`backprop.cli.app.COMMAND_MODULES`: :func:`register` adds the
parsers; the heavy imports happen inside each command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .argtypes import Subparsers, non_negative_floats, positive_or_none, widths
from .names import listing, resolve_args

if TYPE_CHECKING:
    import numpy as np

    from ..network import Network


def _model_and_test(args: argparse.Namespace, limit: int | None
                    ) -> tuple[Network, str, tuple[np.ndarray, np.ndarray]]:
    """The network, its loss name and its test set ``(x, y)``: ``x`` ``(N, d_0)``, ``y``
    ``(N,)`` (ConfigError if the model has none)."""
    from .. import io
    from ..insight.report import model_test_set

    net = io.load(args.model)
    meta = io.read_metadata(args.model)["metadata"]
    test = model_test_set(meta.get("settings") or {}, net.dtype.name, limit=limit,
                          data_dir=args.data_dir)
    if test is None:
        raise ConfigError(f"{args.model} was trained on a --train-file without a --test-file: "
                          f"no test set to use")
    return net, meta.get("loss", "cross_entropy"), test


# ------------------------------------------------------------------ commands
def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of ``MODEL``."""
    from ..insight.report import write_report

    positive_or_none("--limit", args.limit)
    out = write_report(args.model, args.out, limit=args.limit, data_dir=args.data_dir)
    print(f"wrote the report of {args.model} to {out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Print (or write) the walk-through; exit 1 if a check against the reference failed."""
    from ..insight.explain import explain

    resolve_args(args, "activation", "loss")
    result = explain(args.layers, activation=args.activation, loss=args.loss, seed=args.seed,
                     fmt=args.format)
    if args.out is not None:
        args.out.write_text(result.text, encoding="utf-8")
        failed = [c.quantity for c in result.checks if not c.ok]
        print(f"wrote {args.out} ({len(result.checks)} checks, "
              + (f"FAILED: {', '.join(failed)})" if failed else "all passed)"))
    else:
        print(result.text, end="")
    return 0 if result.ok else 1


def cmd_saliency(args: argparse.Namespace) -> int:
    """Draw ``|∇ₓC|`` ``(d_0,)`` over test image ``--index`` and print its largest pixels."""
    import numpy as np

    from ..insight.adversarial import plot_saliency, saliency
    from ..losses import get_loss
    from ..training.metrics import output_probabilities, predicted_classes

    if args.index < 0:
        raise ConfigError(f"--index must be >= 0; got {args.index}")
    net, loss_name, (x, y) = _model_and_test(args, None)
    if args.index >= x.shape[0]:
        raise ConfigError(f"--index {args.index} is past the test set's {x.shape[0]:,} samples")
    loss = get_loss(loss_name)
    image, label = x[args.index], y[args.index]
    sal = saliency(net, image, label, loss)
    a = net.predict(image[None, :])
    pred = int(predicted_classes(a, loss)[0])
    prob = output_probabilities(a, loss)[0]
    conf = float(prob[pred]) if prob.shape[0] > 1 else float(prob[0])
    title = f"test image {args.index}: true {label}, predicted {pred} ({conf:.2f})"
    if int(round(np.sqrt(image.size))) ** 2 != image.size:
        raise ConfigError(f"saliency maps are drawn for square images; the model's inputs are "
                          f"{image.size} wide")
    path = plot_saliency(image, sal, args.out, title=title)
    top = np.argsort(sal)[::-1][:5]
    print(f"{title}; max |∇ₓC| = {sal.max():.3g} at pixels {', '.join(map(str, top))}")
    print(f"saved the saliency map to {path}")
    return 0


def cmd_attack(args: argparse.Namespace) -> int:
    """Print (or ``--json``) the test accuracy at ε = 0 and at each ``--eps``; draw the plot."""
    import numpy as np

    from ..insight.adversarial import attack, plot_attack
    from ..training import evaluate

    positive_or_none("--limit", args.limit)
    net, loss_name, (x, y) = _model_and_test(args, args.limit)
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ConfigError("attack needs a test set of integer class labels")
    eps = sorted(set([0.0, *args.eps]))
    result = attack(net, x, y, loss_name, eps)
    clean = evaluate(net, x, y, loss_name)["accuracy"]
    path = plot_attack(x, y, result, args.out) if args.out is not None else None
    rows = [{"eps": e, "accuracy": a}
            for e, a in zip(result["eps"], result["accuracy"], strict=True)]
    if args.json:
        print(json.dumps({"model": str(args.model), "samples": int(x.shape[0]),
                          "clean_accuracy": clean, "results": rows,
                          "plot": None if path is None else str(path)}, indent=2))
        return 0
    print(f"FGSM on {x.shape[0]:,} test samples of {args.model} "
          f"(x' = clip(x + ε·sign(∇ₓC), 0, 1)):")
    print(f"{'ε':>6}  {'accuracy':>8}  {'change':>7}")
    for r in rows:
        print(f"{r['eps']:>6g}  {r['accuracy']:>8.2%}  {100 * (r['accuracy'] - clean):>+6.1f}%")
    if path is not None:
        print(f"saved the plot to {path}")
    return 0


# ------------------------------------------------------------------ parsers
_DATA_DIR_HELP = "directory of the data set's IDX files (fashion-mnist, kmnist offline)"
_LIMIT_HELP = "use the first N test samples (default: the --limit of training)"


def register(subparsers: Subparsers) -> None:
    """Add report, explain, saliency and attack to ``backprop``'s sub-commands."""
    _register_report(subparsers)
    _register_explain(subparsers)
    _register_saliency(subparsers)
    _register_attack(subparsers)


def _register_report(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML training report of a model",
        description="One HTML page (figures embedded) with the training curves, per-layer "
                    "error norms ‖δˡ‖ (for models trained with --report), weight histograms, "
                    "the confusion matrix, the most confidently wrong test images and the "
                    "first layer's weights.")
    p.add_argument("model", type=Path)
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file to write (default: <model stem>.report.html next to it)")
    p.add_argument("--limit", type=int, default=None, help=_LIMIT_HELP)
    p.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    p.set_defaults(func=cmd_report)


def _register_explain(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "explain", help="one forward and backward pass of a tiny network, step by step",
        description="Print zˡ, aˡ, δˡ = ∂C/∂zˡ, ∂C/∂wˡᵢⱼ, ∂C/∂bˡⱼ and ∇ₓC for one sample, each "
                    "gradient checked against backprop.reference.per_parameter_gradients "
                    "(exit 1 if a check fails).")
    p.add_argument("--layers", type=widths, default=[2, 3, 2], help="widths (default 2,3,2)")
    p.add_argument("--activation", default="sigmoid",
                   help=f"hidden activation: {listing('activation')} (default: sigmoid)")
    p.add_argument("--loss", default="quadratic", help=f"{listing('loss')} (default: quadratic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="text (Unicode) or markdown (LaTeX in $...$)")
    p.add_argument("--out", type=Path, default=None, help="write to this file instead of printing")
    p.set_defaults(func=cmd_explain)


def _register_saliency(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "saliency", help="draw the magnitude of ∇ₓC over a test image (which pixels the cost is sensitive to)")
    p.add_argument("model", type=Path)
    p.add_argument("--index", type=int, default=0, help="test image index (default 0)")
    p.add_argument("--out", type=Path, default=Path("saliency.png"), help="PNG to write")
    p.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    p.set_defaults(func=cmd_saliency)


def _register_attack(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "attack", help="test accuracy under fast-gradient-sign adversarial examples",
        description="x' = clip(x + ε·sign(∇ₓC), 0, 1) with ∇ₓC from backprop (true labels); "
                    "reports the test accuracy at ε = 0 and at each --eps.")
    p.add_argument("model", type=Path)
    p.add_argument("--eps", type=non_negative_floats, default=[0.05, 0.1, 0.2],
                   help="comma-separated ε values (default 0.05,0.1,0.2; 0 is always included)")
    p.add_argument("--limit", type=int, default=None, help=_LIMIT_HELP)
    p.add_argument("--out", type=Path, default=Path("attack.png"),
                   help="PNG of accuracy vs ε and example images (default attack.png)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    p.set_defaults(func=cmd_attack)
