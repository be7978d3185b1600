"""The ``backprop`` command: train, evaluate, predict, gradcheck, info.

Exit codes: 0 success, 2 usage error (bad flag or flag value, unknown name in a flag or
config file), 1 any other failure, with a one-line message (the traceback only with
``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import BackpropError, ConfigError
from ..training import AUTO_COMPILED_MAX_BATCH, ENGINES
from .argtypes import widths

DATASETS = ("mnist", "fashion-mnist", "kmnist")


# ------------------------------------------------------------------ parsing
def _label_column(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _add_data_options(p: argparse.ArgumentParser, train: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="built-in data set (default: mnist, embedded in the package)")
    g.add_argument("--data-dir", type=Path, default=None,
                   help="directory holding the data set's four IDX .gz files "
                        "(for fashion-mnist/kmnist offline)")
    if train:
        g.add_argument("--train-file", type=Path, default=None,
                       help="training data: CSV (with a label column) or NPZ (x, y)")
    g.add_argument("--test-file", type=Path, default=None,
                   help="test data: CSV or NPZ, like --train-file")
    g.add_argument("--label-column", type=_label_column, default=-1,
                   help="CSV label column: index or header name (default: -1, the last)")
    g.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and test samples (quick runs)")


#: the main job's network: what `backprop train` builds when --layers is not given
DEFAULT_LAYERS = [784, 256, 256, 10]
#: its dropout rate; a network given by --layers has none unless --dropout says so
DEFAULT_LAYERS_DROPOUT = 0.2


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a network (default: an MLP on the embedded MNIST)",
                       description="Train a feedforward network. With no arguments (the main "
                                   "job): a [784,256,256,10] ReLU network with dropout 0.2 on "
                                   "the embedded MNIST, Adam at a constant 1e-3, batch 128, "
                                   "20 epochs.")
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file holding any of these settings (flags on the command line win)")
    _add_data_options(p, train=True)
    g = p.add_argument_group("network")
    g.add_argument("--layers", type=widths, default=DEFAULT_LAYERS,
                   help="widths, e.g. 784,100,10 (default: 784,256,256,10)")
    g.add_argument("--activation", default="relu",
                   help="hidden activation: relu, sigmoid, tanh, leaky_relu, elu, softplus, "
                        "gelu, identity")
    g.add_argument("--output-activation", default="auto",
                   help="activation after the last layer: auto (none/logits for cross-entropy "
                        "losses, sigmoid for quadratic, identity for huber), none, or an "
                        "activation name")
    g.add_argument("--init", default="he_uniform",
                   help="normal, normal_fan_in, glorot_uniform, glorot_normal, he_normal, "
                        "he_uniform, uniform_fan_in")
    g.add_argument("--dropout", type=float, default=None,
                   help="dropout rate after each hidden activation (default: 0.2 for the default "
                        "network, 0 for a network given by --layers)")
    g.add_argument("--input-dropout", type=float, default=0.0, help="dropout rate on the inputs")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    g = p.add_argument_group("training")
    g.add_argument("--loss", default="cross_entropy",
                   help="cross_entropy, quadratic, binary_cross_entropy, huber")
    g.add_argument("--optimizer", default="adam", help="sgd, rmsprop, adam, adamw")
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
                   help="learning-rate schedule: constant, step, exponential, cosine")
    g.add_argument("--warmup-epochs", type=float, default=0.0,
                   help="linear warm-up length in epochs")
    g.add_argument("--step-epochs", type=int, default=10,
                   help="epochs between decays (schedule step)")
    g.add_argument("--gamma", type=float, default=0.1,
                   help="decay factor (schedules step, exponential)")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--seed", type=int, default=0, help="seed of the weights, dropout and shuffling")
    g.add_argument("--validation-split", type=float, default=0.0,
                   help="hold out this fraction of the training data for per-epoch validation "
                        "(default 0: the test set is scored after each epoch, as in the textbook)")
    g.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement and restore "
                        "the best weights (needs --validation-split)")
    g.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all cores)")
    g.add_argument("--engine", choices=ENGINES, default="auto",
                   help="numpy: the readable reference; numba: the optional compiled engine for "
                        "plain SGD at small batches (pip install 'backprop[fast]'); auto (default): "
                        f"where numba is installed, compiled steps where able with --batch-size <= "
                        f"{AUTO_COMPILED_MAX_BATCH}, else NumPy steps with a compiled optimizer update")
    g.add_argument("--device", default="cpu", help="cpu (NumPy), cuda or cuda:N (CuPy: pip install "
                   "'backprop[gpu]'); the model file is written from a host copy")
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
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backprop", description="Train feedforward networks by explicit backpropagation.")
    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    _train_parser(sub)

    p = sub.add_parser("evaluate", help="loss and accuracy of a model on a test set")
    p.add_argument("model", type=Path)
    _add_data_options(p, train=False)

    p = sub.add_parser("predict",
                       help="predict the class of each row of a CSV/NPY file or of a PNG digit")
    p.add_argument("model", type=Path)
    p.add_argument("input", type=Path,
                   help="CSV or NPY of shape (N, d_0), or a PNG image of a digit")
    p.add_argument("--top", type=int, default=1, help="show the top K classes")
    p.add_argument("--out", type=Path, default=None,
                   help="write the outputs to this CSV instead of printing")

    p = sub.add_parser("gradcheck", help="check backprop against finite differences")
    p.add_argument("--model", type=Path, default=None,
                   help="check this model (random inputs) instead of a fresh net")
    p.add_argument("--layers", type=widths, default=[4, 6, 5, 3])
    p.add_argument("--activation", default="tanh")
    p.add_argument("--loss", default="cross_entropy")
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--max-entries", type=int, default=50, help="entries checked per parameter")
    p.add_argument("--tolerance", type=float, default=1e-6,
                   help="fail when a relative error exceeds this")

    p = sub.add_parser("info", help="architecture and training metadata of a model file")
    p.add_argument("model", type=Path)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _load_config(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Settings from a TOML file, keyed like the flags (``batch_size`` or ``batch-size``)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config: {path} is not valid TOML: {err}") from None
    raw = raw.get("train", raw) if isinstance(raw.get("train"), dict) else raw
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    settings = {}
    for key, value in raw.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None:
            raise ConfigError(f"--config: unknown setting {key!r} in {path}; "
                              f"known: {sorted(actions)}")
        if dest in settings:
            raise ConfigError(f"--config: {dest} is set twice in {path} (as _ and as -)")
        settings[dest] = _config_value(dest, value, action, path)
    return settings


def _config_value(dest: str, value: Any, action: argparse.Action, path: Path) -> Any:
    if dest == "layers" and isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise ConfigError(f"--config: {dest} in {path} must be true or false; got {value!r}")
        return value
    if isinstance(value, (dict, list)):
        raise ConfigError(f"--config: {dest} in {path} must be a single value; got {value!r}")
    if action.type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if action.type is int and isinstance(value, float):
        raise ConfigError(f"--config: {dest} in {path} must be an integer; got {value!r}")
    if action.type in (None, Path) and not isinstance(value, str):
        raise ConfigError(f"--config: {dest} in {path} must be a string; got {value!r}")
    try:
        converted = action.type(str(value)) if action.type else value
    except (argparse.ArgumentTypeError, ValueError) as err:
        raise ConfigError(f"--config: {dest} in {path}: {err}") from None
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"--config: {dest} in {path} must be one of {list(action.choices)}; "
                          f"got {value!r}")
    return converted


# -------------------------------------------------------------------- data
def _load_data(args: argparse.Namespace, dtype: str, need_train: bool):
    from .. import datasets

    train = test = None
    if getattr(args, "train_file", None) is not None or args.test_file is not None:
        if need_train:
            if args.train_file is None:
                raise ConfigError("--test-file needs --train-file for training")
            train = _load_file(args.train_file, args.label_column, dtype)
        if args.test_file is not None:
            test = _load_file(args.test_file, args.label_column, dtype)
    else:
        loader = {
            "mnist": lambda: datasets.load_mnist(dtype=dtype),
            "fashion-mnist": lambda: datasets.load_fashion_mnist(dtype=dtype,
                                                                 data_dir=args.data_dir),
            "kmnist": lambda: datasets.load_kmnist(dtype=dtype, data_dir=args.data_dir),
        }[args.dataset]
        train, test = loader()
    if args.limit is not None:
        if args.limit < 1:
            raise ConfigError(f"--limit must be a positive integer; got {args.limit}")
        train = None if train is None else (train[0][:args.limit], train[1][:args.limit])
        test = None if test is None else (test[0][:args.limit], test[1][:args.limit])
    return train, test


def _load_file(path: Path, label_column: int | str, dtype: str):
    from .. import datasets

    if path.suffix.lower() == ".npz":
        return datasets.load_npz(path, dtype=dtype)
    return datasets.load_csv(path, label_column=label_column, dtype=dtype)


# ------------------------------------------------------------------ checks
def _check(ok: bool, flag: str, what: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{flag} must be {what}; got {value}")


def _finite(v: float) -> bool:
    return bool(np.isfinite(v))


def _check_train_args(args: argparse.Namespace) -> None:
    """Refuse out-of-range numbers up front, by flag name, before loading or building anything."""
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size),
                        ("--step-epochs", args.step_epochs)):
        _check(value >= 1, flag, "a positive integer", value)
    for flag, value in (("--limit", args.limit), ("--threads", args.threads)):
        _check(value is None or value >= 1, flag, "a positive integer", value)
    _check(args.early_stopping >= 0, "--early-stopping", "an integer >= 0 (0: off)",
           args.early_stopping)
    _check(_finite(args.lr) and args.lr > 0, "--lr", "a finite number > 0", args.lr)
    _check(_finite(args.gamma) and 0 < args.gamma <= 1, "--gamma", "a number in (0, 1]", args.gamma)
    for flag, value in (("--momentum", args.momentum), ("--weight-decay", args.weight_decay),
                        ("--warmup-epochs", args.warmup_epochs)):
        _check(_finite(value) and value >= 0, flag, "a finite number >= 0", value)
    for flag, value in (("--clip-norm", args.clip_norm), ("--max-norm", args.max_norm)):
        _check(value is None or (_finite(value) and value > 0), flag, "a finite number > 0", value)
    if args.dropout is None:
        args.dropout = DEFAULT_LAYERS_DROPOUT if args.layers == DEFAULT_LAYERS else 0.0
    for flag, value in (("--dropout", args.dropout), ("--input-dropout", args.input_dropout),
                        ("--validation-split", args.validation_split)):
        _check(0 <= value < 1, flag, "a number in [0, 1)", value)
    if args.resume and args.checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir")
    if args.early_stopping and not args.validation_split:
        raise ConfigError("--early-stopping needs --validation-split (never stop on the test set)")


def _check_gradcheck_args(args: argparse.Namespace) -> None:
    _check(args.batch >= 1, "--batch", "a positive integer", args.batch)
    _check(args.max_entries >= 1, "--max-entries", "a positive integer", args.max_entries)
    _check(_finite(args.eps) and args.eps > 0, "--eps", "a finite number > 0", args.eps)
    _check(args.tolerance >= 0, "--tolerance", "a number >= 0", args.tolerance)


# ------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    from .. import io
    from ..builders import build_network, build_optimizer, build_schedule, default_output_activation
    from ..insight.plots import plot_history
    from ..losses import get_loss
    from ..threads import set_threads
    from ..training import EarlyStopping, evaluate, fit

    started = time.perf_counter()
    _check_train_args(args)
    if args.threads is not None:
        set_threads(args.threads)
    loss = get_loss(args.loss)
    out_act = (default_output_activation(loss) if args.output_activation == "auto"
               else args.output_activation)
    net = build_network(args.layers, activation_name=args.activation, output_activation=out_act,
                        init=args.init, dropout=args.dropout, input_dropout=args.input_dropout,
                        seed=args.seed, dtype=args.dtype).to(args.device)
    (x, y), test = _load_data(args, args.dtype, need_train=True)
    n_train = x.shape[0] - int(round(x.shape[0] * args.validation_split))
    if args.batch_size > n_train:
        raise ConfigError(f"--batch-size {args.batch_size} exceeds the {n_train:,} training "
                          f"samples; use a smaller --batch-size")
    steps_per_epoch = -(-n_train // max(args.batch_size, 1))
    schedule = build_schedule(args.schedule, total_steps=steps_per_epoch * args.epochs,
                              steps_per_epoch=steps_per_epoch, warmup_epochs=args.warmup_epochs,
                              step_epochs=args.step_epochs, gamma=args.gamma)
    optimizer = build_optimizer(args.optimizer, lr=args.lr, momentum=args.momentum,
                                nesterov=args.nesterov,
                                weight_decay=args.weight_decay, clip_norm=args.clip_norm,
                                max_norm=args.max_norm, schedule=schedule)
    callbacks = []
    if args.early_stopping:
        callbacks.append(EarlyStopping("val_loss", patience=args.early_stopping))
    validation = None if args.validation_split or test is None else test
    print(net.summary())
    print(f"training on {n_train:,} samples; {optimizer!r}")
    history = fit(net, x, y, loss=loss, optimizer=optimizer, epochs=args.epochs,
                  batch_size=args.batch_size, validation_data=validation,
                  validation_split=args.validation_split, seed=args.seed,
                  callbacks=callbacks, verbose=not args.quiet, record_grad_norms=args.report,
                  checkpoint_dir=args.checkpoint_dir, resume=args.resume, engine=args.engine)
    result = evaluate(net, *test, loss) if test is not None else None
    seconds = time.perf_counter() - started

    val_name = "validation" if args.validation_split else "test"
    print(_summary_table(history, val_name))
    if result is not None:
        acc = f", accuracy {result['accuracy']:.2%}" if result["accuracy"] is not None else ""
        print(f"test: loss {result['loss']:.4f}{acc}  ({test[0].shape[0]:,} samples)")
    print(f"engine: {history.engine}")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("func", "debug", "command")}
    metadata = {"loss": args.loss, "settings": settings, "history": history.as_dict(),
                "test": result, "seconds": seconds, "engine": history.engine}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = io.save(net, args.out, metadata=metadata)
    metrics_path = out.with_suffix(".metrics.json")
    metrics_path.write_text(json.dumps(metadata, indent=2) + "\n")
    curves = plot_history(history, out.with_suffix(".curves.png"), val_name=val_name)
    print(f"saved model to {out}  (metrics: {metrics_path}, curves: {curves})")
    if args.report:
        from ..insight.report import write_report

        report = write_report(out, out.with_suffix(".report.html"), test_data=test)
        print(f"report: {report}")
    print(f"total wall time {seconds:.1f} s")
    return 0


def _summary_table(history, val_name: str) -> str:
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
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True))
             for r in [head, *rows]]
    if history.restored_epoch is not None:
        lines.append(f"(restored the weights of epoch {history.restored_epoch})")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import io
    from ..training import evaluate

    net = io.load(args.model)
    loss = io.read_metadata(args.model)["metadata"].get("loss", "cross_entropy")
    _, test = _load_data(args, net.dtype.name, need_train=False)
    if test is None:
        raise ConfigError("evaluate needs a test set: --dataset or --test-file")
    result = evaluate(net, *test, loss)
    acc = f"  accuracy {result['accuracy']:.4f}" if result["accuracy"] is not None else ""
    print(f"{args.model}: {test[0].shape[0]:,} samples  loss {result['loss']:.4f}{acc}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .. import io
    from ..losses import get_loss
    from ..training.metrics import output_probabilities

    net = io.load(args.model)
    loss = get_loss(io.read_metadata(args.model)["metadata"].get("loss", "cross_entropy"))
    x = _read_inputs(args.input, net)
    outputs = output_probabilities(net.predict(x), loss)
    if args.out is not None:
        np.savetxt(args.out, outputs, delimiter=",", fmt="%.6g")
        print(f"wrote {outputs.shape[0]} rows of {outputs.shape[1]} outputs to {args.out}")
        return 0
    top = max(1, min(args.top, outputs.shape[1]))
    for i, row in enumerate(outputs):
        best = np.argsort(row)[::-1][:top]
        shown = "  ".join(f"{c}: {row[c]:.4f}" for c in best)
        print(f"{i}: class {best[0]}  ({shown})")
    return 0


def _read_inputs(path: Path, net) -> np.ndarray:
    from ..datasets.images import read_digit_png
    from ..errors import FileFormatError

    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"input file {str(path)!r} does not exist")
    if suffix == ".png":
        x = read_digit_png(path).reshape(1, -1)
    elif suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise FileFormatError(f"{path}: not a plain numeric .npy file ({err})") from None
        if x.ndim == 1:
            x = x.reshape(1, -1)
    elif suffix == ".csv":
        try:
            x = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as err:
            raise FileFormatError(f"{path}: not a numeric CSV ({err})") from None
    else:
        raise ConfigError(f"input must be a .csv, .npy or .png file; got {path.name!r}")
    if x.dtype.kind in "fiu" and x.dtype != net.dtype:
        x = x.astype(net.dtype)  # the file's numbers are the user's features, in the model's dtype
    return x


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from .. import io
    from ..builders import build_network, default_output_activation
    from ..gradcheck import gradcheck
    from ..losses import get_loss

    _check_gradcheck_args(args)
    loss_name = args.loss
    rng = np.random.default_rng(args.seed)
    if args.model is not None:
        net = io.load(args.model)
        loss_name = io.read_metadata(args.model)["metadata"].get("loss", args.loss)
    loss = get_loss(loss_name)
    if args.model is None:
        net = build_network(args.layers, activation_name=args.activation,
                            output_activation=default_output_activation(loss),
                            init="glorot_uniform", seed=args.seed, dtype="float64")
    x = rng.standard_normal((args.batch, net.input_width)).astype(net.dtype)
    k = net.output_width
    if k > 1 or loss_name == "binary_cross_entropy":  # targets fit for the model's own loss
        y = rng.integers(0, max(k, 2), args.batch)
    else:
        y = rng.standard_normal((args.batch, k))
    if loss_name in ("quadratic", "huber") and k > 1:
        y = rng.random((args.batch, k))
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


def cmd_info(args: argparse.Namespace) -> int:
    from .. import io

    info = io.read_metadata(args.model)
    net = io.load(args.model)
    meta = info["metadata"]
    print(f"{args.model}  (model format version {info['format_version']})")
    print(net.summary())
    if "loss" in meta:
        print(f"loss: {meta['loss']}")
    if meta.get("test"):
        test = meta["test"]
        acc = f", accuracy {test['accuracy']:.4f}" if test.get("accuracy") is not None else ""
        print(f"test: loss {test['loss']:.4f}{acc}")
    if meta.get("history"):
        print(f"trained for {len(meta['history']['epoch'])} epochs "
              f"in {meta.get('seconds', 0):.1f} s")
    if meta.get("settings"):
        shown = {k: v for k, v in meta["settings"].items() if v is not None}
        print("settings: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "gradcheck": cmd_gradcheck, "info": cmd_info}

#: modules of ``backprop`` that define further commands: each has ``register(subparsers)``,
#: which adds its parser and sets ``func`` (a function of the parsed arguments returning the
#: exit code) with ``set_defaults``; heavy imports stay inside ``func``
COMMAND_MODULES: tuple[str, ...] = ("backprop.cli.bench", "backprop.cli.insight")


def _implicit_train(argv: list[str]) -> list[str]:
    """``backprop [--debug] [train options]`` means ``backprop [--debug] train [train options]``:
    no command, or an option where the command would be, runs the main job."""
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    if i == len(argv) or (argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--version")):
        return [*argv[:i], "train", *argv[i:]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``backprop`` console script; returns the exit code."""
    parser = _parser()
    argv = _implicit_train(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    try:
        if args.command == "train" and args.config is not None:
            sub = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
            sub.set_defaults(**_load_config(args.config, sub))
            args = parser.parse_args(argv)  # the file's settings are now defaults: flags win
        handler = COMMANDS.get(args.command) or args.func
        return handler(args)
    except KeyboardInterrupt:
        print("backprop: interrupted", file=sys.stderr)
        return 130
    except ConfigError as err:
        if args.debug:
            raise
        print(f"backprop {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (BackpropError, OSError, ValueError) as err:
        if args.debug:
            raise
        print(f"backprop {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
