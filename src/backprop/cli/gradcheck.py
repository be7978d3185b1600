"""``backprop gradcheck``: backprop's gradients against central differences, in float64.

A fresh network (``--layers``, ``--activation``, ``--loss``) or a saved one (``--model``, with
the loss its metadata names) gets ``--batch`` random inputs ``x`` ``(B, d_0)`` and targets fit
for its loss; up to ``--max-entries`` entries of every parameter are checked. Exit 1 when the
worst relative error exceeds ``--tolerance``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .argtypes import Subparsers, finite, require, widths
from .names import listing, resolve, resolve_args

if TYPE_CHECKING:
    from ..network import Network


def register(subparsers: Subparsers) -> None:
    """Add ``gradcheck`` to ``backprop``'s sub-commands."""
    p = subparsers.add_parser("gradcheck", help="check backprop against finite differences")
    p.add_argument("--model", type=Path, default=None,
                   help="check this model (random inputs) instead of a fresh net")
    p.add_argument("--layers", type=widths, default=[4, 6, 5, 3])
    p.add_argument("--activation", default="tanh",
                   help=f"hidden activation: {listing('activation')} (default: tanh)")
    p.add_argument("--loss", default="cross-entropy",
                   help=f"{listing('loss')} (default: cross-entropy; a --model's own loss wins)")
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--max-entries", type=int, default=50, help="entries checked per parameter")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="fail when a relative error exceeds this")
    p.set_defaults(func=cmd_gradcheck)


def check_gradcheck_args(args: argparse.Namespace) -> None:
    """Refuse unknown names and out-of-range numbers, by flag name."""
    resolve_args(args, "activation", "loss")
    require(args.batch >= 1, "--batch", "a positive integer", args.batch)
    require(args.max_entries >= 1, "--max-entries", "a positive integer", args.max_entries)
    require(finite(args.eps) and args.eps > 0, "--eps", "a finite number > 0", args.eps)
    require(args.tolerance >= 0, "--tolerance", "a number >= 0", args.tolerance)


def _network(args: argparse.Namespace) -> tuple[Network, str]:
    """The network to check and the library key of its loss."""
    from .. import io
    from ..builders import build_network, default_output_activation
    from ..losses import get_loss

    if args.model is not None:
        net = io.load(args.model)
        saved = io.read_metadata(args.model)["metadata"].get("loss", args.loss)
        return net, resolve("loss", saved, f"the loss of {args.model}")
    net = build_network(args.layers, activation_name=args.activation,
                        output_activation=default_output_activation(get_loss(args.loss)),
                        init="glorot_uniform", seed=args.seed, dtype="float64")
    return net, args.loss


def _targets(rng: np.random.Generator, loss_name: str, batch: int, k: int) -> np.ndarray:
    """Targets fit for the loss: labels ``(B,)`` for classification (0/1 for one output), else
    rows ``(B, k)`` (in [0, 1) for the quadratic and Huber losses)."""
    y: np.ndarray
    if k > 1 or loss_name == "binary_cross_entropy":
        y = rng.integers(0, max(k, 2), batch)
    else:
        y = rng.standard_normal((batch, k))
    if loss_name in ("quadratic", "huber") and k > 1:
        y = rng.random((batch, k))
    return y


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Print each parameter's relative and absolute error; exit 1 above ``--tolerance``."""
    from ..gradcheck import gradcheck
    from ..losses import get_loss

    check_gradcheck_args(args)
    rng = np.random.default_rng(args.seed)
    net, loss_name = _network(args)
    loss = get_loss(loss_name)
    if net.input_width is None or net.output_width is None:
        raise ConfigError("gradcheck needs a network with a Dense layer")
    x = rng.standard_normal((args.batch, net.input_width)).astype(net.dtype)
    y = _targets(rng, loss_name, args.batch, net.output_width)
    result = gradcheck(net, loss, x, y, eps=args.eps, max_entries=args.max_entries, seed=args.seed)
    print(net.summary())
    print(f"\ncentral differences (eps={args.eps:g}, float64) vs backprop, {loss!r}:")
    for name, rel in result.rel_errors.items():
        status = "ok" if rel <= args.tolerance else "FAIL"
        print(f"  {name:>6}  relative error {rel:.2e}  "
              f"max abs {result.abs_errors[name]:.2e}  {status}")
    ok = result.worst <= args.tolerance
    print(f"worst relative error {result.worst:.2e} "
          f"({'within' if ok else 'ABOVE'} tolerance {args.tolerance:g})")
    return 0 if ok else 1
