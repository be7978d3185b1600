"""``backprop train``: build a network from flags (or a TOML file), fit it, write what it learned.

With no arguments (the main job): a ``[784, 256, 256, 10]`` ReLU network with dropout 0.2 on
the embedded MNIST, Adam at a constant 1e-3, batch 128, 20 epochs. On a user's data without
``--layers``, the same network with the data's widths (:mod:`.widths`). Every check that can
fail runs before anything is printed; the output folders are checked before training
(:mod:`.outputs`). Next to the model file
``--out M.safetensors`` it writes ``M.metrics.json`` (the settings, the history and the test
result), ``M.curves.png`` and, with ``--report``, ``M.report.html``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import distributed
from ..errors import ConfigError, WriteError
from ..training import AUTO_COMPILED_MAX_BATCH, ENGINES, Callback, History
from .argtypes import Subparsers, finite, positive_or_none, require, seconds, widths
from .data import DATASET_CLASSES, Split, add_data_options, load_data, uses_files
from .names import listing, resolve_args

#: the dropout rate of the default network (built around the data when --layers is not
#: given: :mod:`.widths`); a network given by --layers has none unless --dropout says so
DEFAULT_LAYERS_DROPOUT = 0.2

if TYPE_CHECKING:
    from ..network import Network
    from ..optim import Optimizer


# ------------------------------------------------------------------ parser
def register(subparsers: Subparsers) -> None:
    """Add ``train`` to ``backprop``'s sub-commands."""
    p = subparsers.add_parser(
        "train", help="train a network (default: an MLP on the embedded MNIST)",
        description="Train a feedforward network. With no arguments (the main job): a "
                    "[784,256,256,10] ReLU network with dropout 0.2 on the embedded MNIST, Adam "
                    "at a constant 1e-3, batch 128, 20 epochs. Names of losses, activations, "
                    "initializers, optimizers and schedules are shown with hyphens "
                    "(cross-entropy); underscores are accepted too.")
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file holding any of these settings (flags on the command line win)")
    add_data_options(p, train=True)
    _add_network_options(p)
    _add_optimizer_options(p)
    _add_run_options(p)
    _add_output_options(p)
    p.set_defaults(func=cmd_train)


def _add_network_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network")
    g.add_argument("--layers", type=widths, default=None,
                   help="widths, e.g. 784,100,10 (default: the data's input width, 256, 256, and "
                        "one output per class or target column: 784,256,256,10 on MNIST)")
    g.add_argument("--activation", default="relu",
                   help=f"hidden activation: {listing('activation')} (default: relu)")
    g.add_argument("--output-activation", default="auto",
                   help="activation after the last layer: auto (none, i.e. logits, for the "
                        "cross-entropy losses, sigmoid for quadratic, identity for huber), none, "
                        "or an activation name")
    g.add_argument("--init", default="he-uniform",
                   help=f"weight initializer: {listing('init')} (default: he-uniform)")
    g.add_argument("--dropout", type=float, default=None,
                   help="dropout rate after each hidden activation (default: 0.2 for the default "
                        "network, 0 for a network given by --layers)")
    g.add_argument("--input-dropout", type=float, default=0.0, help="dropout rate on the inputs")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32")


def _add_optimizer_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss and optimizer")
    g.add_argument("--loss", default="cross-entropy",
                   help=f"{listing('loss')} (default: cross-entropy)")
    g.add_argument("--optimizer", default="adam", help=f"{listing('optimizer')} (default: adam)")
    g.add_argument("--lr", type=float, default=1e-3, help="learning rate η")
    g.add_argument("--momentum", type=float, default=0.0, help="momentum (sgd, rmsprop)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=False,
                   help="Nesterov momentum (sgd)")
    g.add_argument("--weight-decay", type=float, default=0.0,
                   help="L2 weight decay λ/n (decoupled for adamw)")
    g.add_argument("--clip-norm", type=float, default=None,
                   help="clip the global gradient norm to this")
    g.add_argument("--max-norm", type=float, default=None,
                   help="max-norm constraint on each unit's incoming weights")
    g.add_argument("--schedule", default="constant",
                   help=f"learning-rate schedule: {listing('schedule')} (default: constant)")
    g.add_argument("--warmup-epochs", type=float, default=0.0,
                   help="linear warm-up length in epochs")
    g.add_argument("--step-epochs", type=int, default=10,
                   help="epochs between decays (schedule step)")
    g.add_argument("--gamma", type=float, default=0.1,
                   help="decay factor (schedules step, exponential)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--seed", type=int, default=0, help="seed of the weights, dropout and shuffling")
    g.add_argument("--validation-split", type=float, default=0.0,
                   help="hold out this fraction of the training data for per-epoch validation "
                        "(default 0: the test set is scored after each epoch, as in the textbook)")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement and restore "
                        "the best weights (needs --validation-split)")
    g.add_argument("--threads", type=int, default=None,
                   help="BLAS threads (default: OPENBLAS_NUM_THREADS or OMP_NUM_THREADS when set, else all "
                        "cores; under mpiexec, the cores divided among the processes on each machine)")
    g.add_argument("--collective-timeout", type=seconds, default=distributed.DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="under mpiexec: end the job when the processes wait for one another longer than "
                        "this, naming the processes that stopped answering (a cut link, a stalled "
                        f"host); default {distributed.DEFAULT_TIMEOUT:g}")
    g.add_argument("--engine", choices=ENGINES, default="auto",
                   help="numpy: the readable reference; numba: the optional compiled engine for "
                        "plain SGD at small batches (pip install 'backprop[fast]'); numba-split: "
                        "compiled steps that split each batch's rows between the threads (numba and "
                        "SciPy); auto (default): where numba is installed, compiled steps where able "
                        f"with --batch-size <= {AUTO_COMPILED_MAX_BATCH}, else split-batch steps where "
                        "able (2+ threads, at most 1 M parameters), else NumPy steps with a compiled "
                        "optimizer update")
    g.add_argument("--device", default="cpu", help="cpu (NumPy), cuda or cuda:N (CuPy: pip install "
                   "'backprop[gpu]'); the model file is written from a host copy")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--out", type=Path, default=Path("model.safetensors"),
                   help="model file to write")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--report", action="store_true",
                   help="record the per-layer error norms ‖δˡ‖ while training and write a "
                        "self-contained HTML report, <model stem>.report.html, next to the model")
    g.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="write a checkpoint here after every epoch (atomically; the last two kept)")
    g.add_argument("--resume", action="store_true",
                   help="continue from the newest good checkpoint in --checkpoint-dir; the result "
                        "is bitwise that of an uninterrupted run with the same settings")


# ------------------------------------------------------------------ checks
def check_train_args(args: argparse.Namespace) -> None:
    """Refuse unknown names and out-of-range numbers up front, by flag name, before loading or
    building anything; turn the names into the library's keys (``cross-entropy`` →
    ``cross_entropy``) and resolve the ``--dropout`` default."""
    resolve_args(args, "loss", "activation", "output_activation", "init", "optimizer", "schedule")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--step-epochs", args.step_epochs)):
        require(value >= 1, flag, "a positive integer", value)
    positive_or_none("--limit", args.limit)
    positive_or_none("--threads", args.threads)
    require(args.early_stopping >= 0, "--early-stopping", "an integer >= 0 (0: off)",
            args.early_stopping)
    require(finite(args.lr) and args.lr > 0, "--lr", "a finite number > 0", args.lr)
    require(finite(args.gamma) and 0 < args.gamma <= 1, "--gamma", "a number in (0, 1]", args.gamma)
    for flag, value in (("--momentum", args.momentum), ("--weight-decay", args.weight_decay),
                        ("--warmup-epochs", args.warmup_epochs)):
        require(finite(value) and value >= 0, flag, "a finite number >= 0", value)
    for flag, value in (("--clip-norm", args.clip_norm), ("--max-norm", args.max_norm)):
        require(value is None or (finite(value) and value > 0), flag, "a finite number > 0", value)
    if args.dropout is None:
        args.dropout = DEFAULT_LAYERS_DROPOUT if args.layers is None else 0.0
    for flag, value in (("--dropout", args.dropout), ("--input-dropout", args.input_dropout),
                        ("--validation-split", args.validation_split)):
        require(0 <= value < 1, flag, "a number in [0, 1)", value)
    if args.resume and args.checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir")
    if args.early_stopping and not args.validation_split:
        raise ConfigError("--early-stopping needs --validation-split (never stop on the test set)")


def check_train_outputs(args: argparse.Namespace) -> None:
    """The folders of ``--out`` and ``--checkpoint-dir`` exist (made if need be) and take files."""
    from .outputs import check_folder, check_out

    check_out("--out", args.out)
    if args.checkpoint_dir is not None:
        check_folder("--checkpoint-dir", args.checkpoint_dir)


# ------------------------------------------------------------------ command
@distributed.command  # under mpiexec -n K: one model over K processes; rank 0 prints and writes
def cmd_train(args: argparse.Namespace) -> int:
    """Check, load, build, fit, evaluate, print and write; returns the exit code 0.

    Every check that can fail (flags, output folders, the data, the widths, the engine) runs
    before anything is printed: the summary is printed by :class:`_Announce` once ``fit`` has
    checked the run."""
    from ..builders import build_network, default_output_activation
    from ..distributed.fit import fit
    from ..losses import get_loss
    from ..threads import set_threads
    from ..training import EarlyStopping
    from .outputs import check_room
    from .widths import as_targets, network_widths

    started = time.perf_counter()
    check_train_args(args)
    check_train_outputs(args)
    if args.threads is not None:
        set_threads(args.threads)
    loss = get_loss(args.loss)
    notes: list[str] = []
    train, test = load_data(args, args.dtype, need_train=True, notes=notes)
    assert train is not None  # need_train: load_data returns it or raises
    x, y = train[0], as_targets(train[1], loss)
    test = None if test is None else (test[0], as_targets(test[1], loss))
    args.layers = network_widths(args.layers, x, _source(args, "train"),
                                 [(y, _source(args, "train"))]
                                 + ([(test[1], _source(args, "test"))] if test else []), loss,
                                 classes=None if uses_files(args) else DATASET_CLASSES)
    out_act = (default_output_activation(loss) if args.output_activation == "auto"
               else args.output_activation)
    net = build_network(args.layers, activation_name=args.activation, output_activation=out_act,
                        init=args.init, dropout=args.dropout, input_dropout=args.input_dropout,
                        seed=args.seed, dtype=args.dtype).to(args.device)
    check_room("--out", args.out.parent, net.parameter_buffer.nbytes)
    if args.checkpoint_dir is not None:
        check_room("--checkpoint-dir", args.checkpoint_dir, net.parameter_buffer.nbytes)
    n_train = x.shape[0] - int(round(x.shape[0] * args.validation_split))
    optimizer = _optimizer(args, n_train)
    callbacks: list[Any] = [_Announce(notes, f"training on {n_train:,} samples; {optimizer!r}")]
    if args.early_stopping:
        callbacks.append(EarlyStopping("val_loss", patience=args.early_stopping))
    try:
        history = fit(net, x, y, loss=loss, optimizer=optimizer, epochs=args.epochs,
                      batch_size=args.batch_size,
                      validation_data=None if args.validation_split or test is None else test,
                      validation_split=args.validation_split, seed=args.seed,
                      callbacks=callbacks, verbose=not args.quiet, record_grad_norms=args.report,
                      checkpoint_dir=args.checkpoint_dir, resume=args.resume, engine=args.engine,
                      collective_timeout=args.collective_timeout)
    except ConfigError as err:  # fit names its arguments; the command line has flags
        raise ConfigError(re.sub(r"engine='([\w-]+)'", r"--engine \1", str(err))) from None
    except WriteError as err:
        raise _checkpoint_failure(args, err) from None
    result = distributed.evaluate(net, test[0], test[1], loss) if test is not None else None
    seconds = time.perf_counter() - started
    if distributed.rank() != 0:
        return 0  # a data-parallel run: rank 0 alone prints the summary and writes the files
    _print_results(args, history, result, test)
    _write_outputs(args, net, history, result, test, seconds)
    print(f"total wall time {seconds:.1f} s")
    return 0


def _checkpoint_failure(args: argparse.Namespace, err: WriteError) -> WriteError:
    """A checkpoint that could not be written: the previous one is intact (the write was
    atomic), and ``--resume`` continues from it."""
    from ..training.checkpoint import load_latest

    if args.checkpoint_dir is None:
        return err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a bad newest checkpoint is skipped, as --resume would
        previous = load_latest(args.checkpoint_dir)
    if previous is None:
        return err
    return WriteError(err.filename, err.errno,
                      f"{err.strerror}; the checkpoint of epoch {previous.epoch} is intact: make room "
                      f"and rerun with --resume to continue from it")


def _source(args: argparse.Namespace, split: str) -> str:
    """How errors name a split's data: ``--train-file data.csv`` or ``--dataset mnist``."""
    path = getattr(args, f"{split}_file", None)
    if path is not None:
        return f"--{split}-file {path}"
    return f"--dataset {args.dataset}"


class _Announce(Callback):
    """Prints the network's summary, the notes of loading and ``line`` when training begins:
    after ``fit`` has checked every argument, so a run that fails its checks prints nothing."""

    def __init__(self, notes: list[str], line: str) -> None:
        self.notes, self.line = notes, line

    def on_train_begin(self, net: Network, history: History) -> None:
        for note in self.notes:
            print(f"note: {note}", file=sys.stderr)
        print(net.summary())
        print(self.line)


def _optimizer(args: argparse.Namespace, n_train: int) -> Optimizer:
    """The optimizer and its schedule, with epochs turned into the steps of ``n_train`` samples."""
    from ..builders import build_optimizer, build_schedule

    if args.batch_size > n_train:
        raise ConfigError(f"--batch-size {args.batch_size} exceeds the {n_train:,} training "
                          f"samples; use a smaller --batch-size")
    steps_per_epoch = -(-n_train // args.batch_size)
    schedule = build_schedule(args.schedule, total_steps=steps_per_epoch * args.epochs,
                              steps_per_epoch=steps_per_epoch, warmup_epochs=args.warmup_epochs,
                              step_epochs=args.step_epochs, gamma=args.gamma)
    return build_optimizer(args.optimizer, lr=args.lr, momentum=args.momentum,
                           nesterov=args.nesterov, weight_decay=args.weight_decay,
                           clip_norm=args.clip_norm, max_norm=args.max_norm, schedule=schedule)


def _print_results(args: argparse.Namespace, history: History, result: dict[str, Any] | None,
                   test: Split | None) -> None:
    print(summary_table(history, "validation" if args.validation_split else "test"))
    if result is not None and test is not None:
        acc = f", accuracy {result['accuracy']:.2%}" if result["accuracy"] is not None else ""
        print(f"test: loss {result['loss']:.4f}{acc}  ({test[0].shape[0]:,} samples)")
    print(f"engine: {history.engine}")


def _write_outputs(args: argparse.Namespace, net: Network, history: History,
                   result: dict[str, Any] | None, test: Split | None, seconds: float) -> None:
    """The model file (its metadata: the loss's library key, the settings, the history, the test
    result), ``.metrics.json`` (the same metadata), ``.curves.png`` and, with ``--report``, the
    HTML report."""
    from .._atomic import write_atomically, write_error
    from ..insight.plots import plot_history
    from .outputs import save_model

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("func", "debug", "command")}
    metadata = {"loss": args.loss, "settings": settings, "history": history.as_dict(),
                "test": result, "seconds": seconds, "engine": history.engine}
    out = save_model(net, args.out, metadata, [args.checkpoint_dir])
    metrics_path = out.with_suffix(".metrics.json")
    val_name = "validation" if args.validation_split else "test"

    def write_metrics(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(metadata, indent=2) + "\n")

    try:
        write_atomically(metrics_path, write_metrics)
        curves = plot_history(history, out.with_suffix(".curves.png"), val_name=val_name)
        print(f"saved model to {out}  (metrics: {metrics_path}, curves: {curves})")
        if args.report:
            from ..insight.report import write_report

            report = write_report(out, out.with_suffix(".report.html"), test_data=test)
            print(f"report: {report}")
    except OSError as err:  # the model is saved: say so beside what failed
        failure = err if isinstance(err, WriteError) else write_error(Path(err.filename or out), err)
        if failure is None:
            raise
        raise WriteError(failure.filename, failure.errno,
                         f"{failure.strerror} (the model was saved to {str(out)!r})") from None


def summary_table(history: History, val_name: str) -> str:
    """One row per epoch: loss, [accuracy], [validation loss and accuracy], lr, seconds."""
    has_acc = any(a is not None for a in history.accuracy)
    head = ["epoch", "loss"] + (["acc"] if has_acc else [])
    if history.val_loss:
        head += [f"{val_name} loss"] + ([f"{val_name} acc"] if has_acc else [])
    head += ["lr", "seconds"]
    rows = []
    for i, epoch in enumerate(history.epoch):
        row = [str(epoch), f"{history.loss[i]:.4f}"]
        row += [f"{history.accuracy[i]:.4f}"] if has_acc else []
        if history.val_loss:
            row += [f"{history.val_loss[i]:.4f}"]
            row += [f"{history.val_accuracy[i]:.4f}"] if has_acc else []
        row += [f"{history.lr[i]:.3g}", f"{history.seconds[i]:.2f}"]
        rows.append(row)
    col_widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, col_widths, strict=True))
             for r in [head, *rows]]
    if history.restored_epoch is not None:
        lines.append(f"(restored the weights of epoch {history.restored_epoch})")
    return "\n".join(lines)
