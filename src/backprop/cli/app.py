"""The ``backprop`` command's skeleton: the parser, the dispatch to a command, the exit codes.

Each command group lives in a module of its own with a ``register(subparsers)`` function,
listed in :data:`COMMAND_MODULES`: ``register`` adds the group's parsers and sets ``func``
(a function of the parsed arguments returning the exit code) with ``set_defaults``; heavy
imports stay inside ``func``. The commands parse, print and call the library; the library
never imports this package.

Exit codes: 0 success, 2 usage error (bad flag or flag value, unknown name in a flag or
config file), 1 any other failure, with a one-line message (the traceback only with
``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from .._version import __version__
from ..errors import BackpropError, ConfigError

#: the modules that define ``backprop``'s commands, in the order ``--help`` lists them
COMMAND_MODULES: tuple[str, ...] = (
    "backprop.cli.train",      # train
    "backprop.cli.model",      # evaluate, predict, info
    "backprop.cli.gradcheck",  # gradcheck
    "backprop.cli.bench",      # bench
    "backprop.cli.insight",    # report, explain, saliency, attack
    "backprop.cli.convert",    # convert
    "backprop.cli.playground", # playground
)


class _Formatter(argparse.HelpFormatter):
    """Help text wrapped between words only, never inside ``cross-entropy`` or ``he-uniform``."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help uses :class:`_Formatter` (the commands' parsers too) and
    whose errors are one line, like every other error of the command (exit code 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """``backprop train: error: argument --lr: invalid float value: 'abc' (see backprop
        train --help)`` on stderr, exit code 2: the usage is where ``--help`` shows it."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``backprop`` parser with every command of :data:`COMMAND_MODULES`."""
    parser = _Parser(prog="backprop",
                     description="Train feedforward networks by explicit backpropagation.")
    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of the command ``name`` inside ``parser`` (from :func:`build_parser`)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def implicit_train(argv: list[str]) -> list[str]:
    """``backprop [--debug] [train options]`` means ``backprop [--debug] train [train options]``:
    no command, or an option where the command would be, runs the main job."""
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    if i == len(argv) or (argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--version")):
        return [*argv[:i], "train", *argv[i:]]
    return argv


def _with_config_file(parser: argparse.ArgumentParser, argv: list[str],
                      args: argparse.Namespace) -> argparse.Namespace:
    """``train --config FILE``: parse ``argv`` again with the file's settings as train's
    defaults, so that flags on the command line win."""
    from .config import load_config

    train = command_parser(parser, "train")
    train.set_defaults(**load_config(args.config, train))
    return parse(parser, argv)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but an unknown flag is reported by the command it was given
    to (``backprop train: error: unrecognized arguments: --frobnicate``)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        where = command_parser(parser, args.command) if args.command else parser
        where.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``backprop`` console script; returns the exit code."""
    parser = build_parser()
    arguments = implicit_train(list(sys.argv[1:] if argv is None else argv))
    args = parse(parser, arguments)
    try:
        if args.command == "train" and args.config is not None:
            args = _with_config_file(parser, arguments, args)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("backprop: interrupted", file=sys.stderr)
        return 130
    except ConfigError as err:
        if args.debug:
            raise
        return _error(args, err, 2)
    except (BackpropError, OSError, ValueError) as err:
        if args.debug:
            raise
        return _error(args, err, 1)


def _error(args: argparse.Namespace, err: Exception, code: int) -> int:
    """Print the one-line ``backprop COMMAND: error: MESSAGE`` and return ``code``.

    An operating-system error of the library's dependencies reads like the library's own
    (``'data.csv': Permission denied``, not ``[Errno 13] Permission denied: 'data.csv'``)."""
    message = str(err)
    if isinstance(err, OSError) and not isinstance(err, BackpropError) and err.strerror:
        message = f"{err.filename!r}: {err.strerror}" if err.filename else err.strerror
    print(f"backprop {args.command}: error: {' '.join(message.split())}", file=sys.stderr)
    return code
