#!/usr/bin/env python3
"""Check that docs/math.md still describes the code: references exist, quotes are verbatim.

docs/math.md maps each equation of the notes to the ``file:function`` that implements it
and quotes the line that does it. When the code changes, this script says which parts of
the page went stale. Run it from anywhere::

    python tools/check_math_doc.py              # exit 0: all current; 1: a list of stale entries
    python tools/check_math_doc.py --verbose    # also list every reference and quote checked

What it reads, in each paragraph and in each table cell separately (the backticked spans
in order; math between ``$`` and fenced code blocks are skipped):

* **references** ``src/backprop/X.py:Name`` or ``src/backprop/X.py:Class.attr``: the module
  must import, ``Name`` must be defined in it, and ``attr`` must be defined in that class
  itself (an inherited method is reported: the page should name the class that has the
  code). ``tests/X.py:name`` must be a top-level function or class of that file, and a
  bare path (``tests/test_handworked.py``) must exist;
* **short references** ``Class.attr`` (``Dense.backward``): as above, looking ``Class`` up in
  the module of the paragraph's last full reference, then in the library's main modules.
  A bare lower-case name (``scalar_derivative``) is a reference when the paragraph's last
  full reference is to a module that defines it at top level;
* **quotes**: every other backticked span that follows a reference in the same paragraph or
  cell is attributed to the most recent reference and must occur in that object's source
  (``inspect.getsource``), compared with all whitespace removed; ``...`` or ``…`` in a quote
  elides code, so ``sum(g[j] * W[j][k] for j ...)`` matches when its two parts occur in
  that order. Class names on their own (``Sigmoid``) are checked to exist but attribute
  nothing, and neither do array shapes (``(N, d_in)``). A bare file path ends the
  attribution. Spans before any reference in their paragraph (usage such as
  ``net.backward(loss.grad(a, y))``) are not checked.

So write the reference first and its quotes after it, in the same paragraph or table
cell, and name the function that holds the code: ``Activation.backward``, not the
inherited ``Sigmoid.backward``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "math.md"
# where a short reference's class is looked up when the paragraph names no module
DEFAULT_MODULES = ("layers", "activations", "losses", "network", "training.fit", "training.step",
                   "training.run", "engines.numpy", "engines.base", "reference", "gradcheck", "optim",
                   "_workspace", "init")

FULL_SRC = re.compile(r"^(src/backprop/(?:\w+/)*\w+\.py):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
FULL_TEST = re.compile(r"^(tests/(?:\w+/)*\w+\.py):([A-Za-z_]\w*)$")
BARE_PATH = re.compile(r"^(?:src|tests|tools|docs)/[\w/.-]+\.(?:py|md)$")
SHORT = re.compile(r"^([A-Z]\w*)((?:\.[A-Za-z_]\w*)+)$")
CLASS_NAME = re.compile(r"^[A-Z]\w*$")
LOWER_NAME = re.compile(r"^_?[a-z]\w*$")
# an array shape such as (N, d_in) or (d_out,): prose, not a quote
SHAPE = re.compile(r"^\((?:\s*(?:N|k|m|d(?:_\w+)?|\d+)\s*,)*\s*(?:N|k|m|d(?:_\w+)?|\d+)?\s*\)$")
ELLIPSIS = re.compile(r"\.\.\.|…")


@dataclass
class Target:
    """What a quote is checked against: a named object's source text."""
    label: str
    source: str


@dataclass
class Report:
    stale: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    n_refs: int = 0
    n_quotes: int = 0


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _module(relpath: str):
    """``src/backprop/layers.py`` → the imported ``backprop.layers`` (``None`` if absent)."""
    if not (ROOT / relpath).is_file():
        return None
    name = relpath[len("src/"):-len(".py")].replace("/", ".").removesuffix(".__init__")
    return importlib.import_module(name)


def _defines(module, name: str) -> bool:
    """Whether ``module`` itself defines ``name`` (not merely imports it)."""
    obj = vars(module).get(name)
    return obj is not None and getattr(obj, "__module__", module.__name__) == module.__name__


def _source_of(obj) -> str:
    """The source text of a function, method or class ("" for a constant, which has none)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError):
        return ""


def _resolve(module, dotted: str) -> tuple[object | None, str]:
    """The object ``module.dotted`` where each part is defined where it is named, or an error."""
    head, *rest = dotted.split(".")
    if head not in vars(module):
        return None, f"{module.__name__} defines no {head!r}"
    obj = vars(module)[head]
    if getattr(obj, "__module__", module.__name__) != module.__name__:
        return None, f"{head!r} is imported into {module.__name__}, not defined there"
    for part in rest:
        if not inspect.isclass(obj):
            return None, f"{dotted}: {obj!r} is not a class"
        if part not in vars(obj):
            owner = next((c.__name__ for c in obj.__mro__[1:] if part in vars(c)), None)
            why = f"inherited from {owner}" if owner else "not defined"
            return None, f"{obj.__name__}.{part} is {why}"
        obj = vars(obj)[part]
    return obj, ""


def _test_target(relpath: str, name: str) -> tuple[Target | None, str]:
    """A top-level function or class of a test file, found by parsing (tests are not imported)."""
    path = ROOT / relpath
    if not path.is_file():
        return None, f"{relpath} does not exist"
    text = path.read_text(encoding="utf-8")
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in ast.parse(text).body:
        if isinstance(node, kinds) and node.name == name:
            return Target(f"{relpath}:{name}", ast.get_source_segment(text, node) or ""), ""
    return None, f"{relpath} has no top-level {name!r}"


def _bare_target(scope, name: str) -> Target | None:
    """``name`` as a short reference within ``scope`` (a module, or a test file's path)."""
    if isinstance(scope, str):
        return _test_target(scope, name)[0]
    obj = vars(scope).get(name)
    if obj is None or getattr(obj, "__module__", None) != scope.__name__:
        return None  # not defined there (constants have no __module__): not a reference
    return Target(name, _source_of(obj))


def _spans(doc: str):
    """Yield ``(block_id, cell, line, text)`` for each backticked span outside math and fences."""
    block = cell = 0
    in_fence = False
    math = ""  # the open math delimiter, "$" or "$$" (display math may span lines)
    for lineno, line in enumerate(doc.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        is_row = line.lstrip().startswith("|")
        if not math and (not line.strip() or is_row or line.startswith("#")):
            block += 1  # paragraphs end at blank lines; every table row and heading is its own
        cell = 0
        i, n = 0, len(line)
        while i < n:
            if math:
                j = line.find(math, i)
                if j < 0:
                    break
                i, math = j + len(math), ""
            elif line[i] == "`":
                j = line.find("`", i + 1)
                if j < 0:
                    break
                yield block, cell, lineno, line[i + 1:j]
                i = j + 1
            elif line[i] == "$":
                math = "$$" if line.startswith("$$", i) else "$"
                i += len(math)
            elif line[i] == "\\":
                i += 2  # an escaped character
            else:
                if line[i] == "|" and is_row:
                    cell += 1
                i += 1
        if math == "$":
            math = ""  # inline math never spans lines: an unmatched $ is a literal one
        if is_row:
            block += 1


def check(doc_path: Path = DOC) -> Report:
    """Check every reference and quote of ``doc_path``; see the module docstring."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    doc = doc_path.read_text(encoding="utf-8")
    rel = doc_path.relative_to(ROOT) if doc_path.is_relative_to(ROOT) else doc_path
    report = Report()
    modules = {name: importlib.import_module(f"backprop.{name}") for name in DEFAULT_MODULES}
    mods = list(modules.values())
    for module in mods:  # an installed copy (not editable) is fine if it is this checkout's code
        imported = Path(module.__file__).resolve()
        depth = module.__name__.count(".") + (imported.name == "__init__.py")  # folders below src/
        here = ROOT / "src" / imported.relative_to(imported.parents[depth])
        if imported != here.resolve() and (not here.is_file() or imported.read_bytes() != here.read_bytes()):
            report.stale.append(f"checked {imported}, which differs from {here}")
    state: tuple[int, int] | None = None
    target: Target | None = None
    module = None  # the module (or test file) of the block's last full reference

    def stale(line: int, span: str, why: str) -> None:
        report.stale.append(f"{rel}:{line}: `{span}`: {why}")

    for block, cell, line, span in _spans(doc):
        if state != (block, cell):
            if state is None or state[0] != block:
                module = None
            state, target = (block, cell), None
        span = span.strip()
        if m := FULL_SRC.match(span):
            report.n_refs += 1
            mod = _module(m.group(1))
            if mod is None:
                stale(line, span, f"{m.group(1)} does not exist")
                target = None
                continue
            obj, why = _resolve(mod, m.group(2))
            module = mod
            target = None if obj is None else Target(span, _source_of(obj))
            if obj is None:
                stale(line, span, why)
            else:
                report.checked.append(f"{rel}:{line}: ref {span}")
        elif m := FULL_TEST.match(span):
            report.n_refs += 1
            target, why = _test_target(m.group(1), m.group(2))
            module = m.group(1)
            if target is None:
                stale(line, span, why)
            else:
                report.checked.append(f"{rel}:{line}: ref {span}")
        elif BARE_PATH.match(span):
            report.n_refs += 1
            target = None  # a whole file: nothing after it is attributed to a function
            if not (ROOT / span).exists():
                stale(line, span, "no such file")
        elif m := SHORT.match(span):
            cls_name = m.group(1)
            homes = [mod for mod in (module, *modules.values())
                     if mod is not None and not isinstance(mod, str) and _defines(mod, cls_name)]
            if not homes:
                where = ", ".join(DEFAULT_MODULES)
                stale(line, span, f"no class {cls_name!r} in backprop.{{{where}}}")
                target = None
                continue
            report.n_refs += 1
            obj, why = _resolve(homes[0], span)
            target = None if obj is None else Target(span, _source_of(obj))
            if obj is None:
                stale(line, span, why)
            else:
                report.checked.append(f"{rel}:{line}: ref {span} ({homes[0].__name__})")
        elif CLASS_NAME.match(span) and any(inspect.isclass(vars(m).get(span)) for m in mods):
            continue  # a class named in passing: it exists, and it attributes nothing
        elif LOWER_NAME.match(span) and module is not None and (bare := _bare_target(module, span)):
            report.n_refs += 1
            target = bare
            where = module if isinstance(module, str) else module.__name__
            report.checked.append(f"{rel}:{line}: ref {span} ({where})")
        elif SHAPE.match(span):
            continue  # a shape, (N, d_in): prose
        elif target is not None:
            report.n_quotes += 1
            code = _squash(target.source)
            pos = 0
            for part in ELLIPSIS.split(span):
                part = _squash(part)
                found = code.find(part, pos)
                if found < 0:
                    stale(line, span, f"not in the source of {target.label}")
                    break
                pos = found + len(part)
            else:
                report.checked.append(f"{rel}:{line}: quote `{span}` in {target.label}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("doc", nargs="?", type=Path, default=DOC,
                        help="the page to check (default: docs/math.md)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list everything checked")
    args = parser.parse_args(argv)
    report = check(args.doc.resolve())
    if args.verbose:
        print("\n".join(report.checked))
    for entry in report.stale:
        print(entry)
    status = f"{len(report.stale)} stale" if report.stale else "all current"
    print(f"{report.n_refs} references and {report.n_quotes} quotes checked: {status}")
    return 1 if report.stale else 0


if __name__ == "__main__":
    sys.exit(main())
