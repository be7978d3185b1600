"""The direction of imports: DESIGN.md's layers, read from the source.

Every module's import statements are parsed (those inside functions and under
``TYPE_CHECKING`` too: a lazy import is still a dependency), resolved to the part of
``backprop`` they name (a subpackage such as ``training``, or a top-level module such as
``network``), and checked two ways:

* no two parts import each other, directly or around a longer loop;
* a part never imports one that DESIGN.md's list puts above it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "backprop"

#: DESIGN.md: "Imports run one way, down this list's layers: cli → playground, sklearn, insight,
#: distributed → training → engines → optim, network → layers, activations, losses → devices,
#: _validation, errors." (position 0 is the top)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("playground", "sklearn", "insight", "distributed"),
    ("training",),
    ("engines",),
    ("optim", "network"),
    ("layers", "activations", "losses"),
    ("devices", "_validation", "errors"),
)
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """The absolute names of the ``backprop`` modules that ``path`` imports anywhere in it."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "backprop")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "backprop":
                continue
            for alias in node.names:  # `from .. import errors` imports the module backprop.errors
                sub = f"{target}.{alias.name}"
                as_file = root.parent.joinpath(*sub.split("."))
                found.add(sub if as_file.with_suffix(".py").exists() or as_file.is_dir() else target)
    return found


def part_of(module: str) -> str | None:
    """The part of ``backprop`` a module belongs to: its subpackage or top-level module (None:
    the package itself, ``backprop/__init__.py``, the facade that re-exports the public names)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def part_graph(root: Path = SOURCE) -> dict[str, dict[str, list[str]]]:
    """``{part: {imported part: [the modules whose imports make the edge]}}``."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.rglob("*.py")):
        here = part_of(module_name(path, root))
        if here is None:
            continue
        for target in imported_modules(path, root):
            there = part_of(target)
            if there is None:
                graph[here]["backprop"].append(module_name(path, root))
            elif there != here:
                graph[here][there].append(module_name(path, root))
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected parts with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """Every import of a part that DESIGN.md's list puts above the importer."""
    bad = []
    for here, targets in graph.items():
        for there, modules in targets.items():
            if here in LEVEL and there in LEVEL and LEVEL[there] < LEVEL[here]:
                bad.append(f"{here} imports {there} ({', '.join(sorted(set(modules)))})")
    return sorted(bad)


def test_the_parts_of_backprop_import_in_no_circle():
    graph = part_graph()
    assert "training" in graph and "engines" in graph["training"]  # the reading works
    assert cycles(graph) == []


def test_no_part_imports_one_above_it_in_the_design():
    assert upward(part_graph()) == []


def test_no_part_but_the_command_line_imports_the_facade():
    """``import backprop`` (the package's ``__init__``) pulls in everything; below ``cli`` a
    module names the module it needs instead."""
    graph = part_graph()
    assert sorted(p for p, targets in graph.items() if "backprop" in targets and p != "cli") == []


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "backprop" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "backprop"


def test_the_check_sees_a_lazy_relative_import_that_closes_a_circle(tmp_path):
    """The reading itself: an import inside a function, two levels up, closes a loop."""
    root = write(tmp_path, {
        "__init__.py": "",
        "engines/__init__.py": "",
        "engines/numpy.py": "def f():\n    from ..training.step import TrainingStep\n",
        "training/__init__.py": "from ..engines import numpy\n",
        "training/step.py": "",
        "errors.py": "",
        "optim/_fused.py": "from .. import errors\n",
    })
    graph = part_graph(root)
    assert cycles(graph) == [["engines", "training"]]
    assert upward(graph) == ["engines imports training (backprop.engines.numpy)"]
    assert dict(graph["optim"]) == {"errors": ["backprop.optim._fused"]}


@pytest.mark.parametrize("part", [p for layer in LAYERS for p in layer if p != "playground"])
def test_every_part_the_design_names_exists(part):
    assert (SOURCE / part).is_dir() or (SOURCE / f"{part}.py").exists()
