"""``train --config FILE.toml``: settings from a TOML file, keyed and checked like the flags.

A key is a flag's name without the dashes, with ``-`` or ``_`` between words
(``batch_size = 10`` or ``"batch-size" = 10``), at the top level or in a ``[train]`` table.
Each value is converted and checked as argparse would convert the flag's text; names of
losses, activations, ... are read as on the command line (:mod:`backprop.cli.names`). The
command sets the file's settings as the parser's defaults, so flags on the command line win.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .names import NAMES, resolve


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config: {path} is not valid TOML: {err}") from None


def load_config(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Settings from the TOML file ``path``, by the destinations of ``parser``'s flags.

    Raises:
        ConfigError: the file cannot be read or parsed, holds an unknown key, a key twice
        (as ``_`` and as ``-``) or a value its flag would refuse.
    """
    raw = _read_toml(path)
    raw = raw["train"] if isinstance(raw.get("train"), dict) else raw
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    settings: dict[str, Any] = {}
    for key, value in raw.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None:
            raise ConfigError(f"--config: unknown setting {key!r} in {path}; "
                              f"known: {sorted(actions)}")
        if dest in settings:
            raise ConfigError(f"--config: {dest} is set twice in {path} (as _ and as -)")
        settings[dest] = config_value(dest, value, action, path)
    return settings


def config_value(dest: str, value: Any, action: argparse.Action, path: Path) -> Any:
    """``value`` of the setting ``dest`` converted as its flag's text would be."""
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
    if dest in NAMES:
        return resolve(dest, value, f"--config: {dest} in {path}")
    try:
        converted = action.type(str(value)) if callable(action.type) else value
    except (argparse.ArgumentTypeError, ValueError) as err:
        raise ConfigError(f"--config: {dest} in {path}: {err}") from None
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"--config: {dest} in {path} must be one of {list(action.choices)}; "
                          f"got {value!r}")
    return converted
