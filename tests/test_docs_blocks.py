"""Every code block in README.md and docs/*.md runs, in the order a reader meets it.

The blocks are found and run by Sybil (https://sybil.readthedocs.io), a library made for
testing the examples in documentation; docs/testing-docs.md says why it was chosen. Per page:

* a ``python`` block runs in one namespace shared by the page's blocks (a later block may use
  what an earlier one defined, as a reader would); a failing block fails its test;
* a ``bash`` block runs in ``bash -euo pipefail``, with this checkout's ``src`` first on
  ``PYTHONPATH`` and this interpreter's ``bin`` first on ``PATH`` (so ``backprop`` and
  ``python`` are the ones under test); a non-zero exit fails its test, with its output;
* every page runs in a folder of its own (files a block writes stay there, for the next
  block), so a block that reads ``data.csv`` needs a block before it that writes the file:
  an ``invisible-code-block`` in an HTML comment, which a reader does not see;
* a block that needs a GPU, several machines or minutes is preceded by
  ``<!-- skip: next if(not GPU, reason="...") -->`` or ``<!-- skip: next "reason" -->`` and is
  reported as skipped with that reason. The conditions ``GPU``, ``MPI`` and ``SLOW`` are set
  below; ``BACKPROP_DOCS_SLOW=1`` runs the slow blocks too.

Any other fenced block must say it is not code (``text``) or be a MyST directive
(```` ```{toctree} ````), so that no block is left untested by accident:
``test_every_block_is_run_or_says_it_is_not_code`` checks that.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sybil = pytest.importorskip("sybil", reason="the documentation tests need Sybil: pip install '.[test]'")
from sybil import Document, Example  # noqa: E402
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser  # noqa: E402
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python", "bash"}          # executed
NOT_CODE = {"text"}               # shown, not run: diagrams, a command's synopsis, output
SHELL_TIMEOUT_S = 600


def _gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, no device: the GPU blocks skip
        return False


def _search_path() -> str:
    """PATH for the shell blocks: this interpreter's ``bin`` first (its ``backprop``, ``python``
    and the MPICH wheel's ``mpiexec``)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _mpi() -> bool:
    return (shutil.which("mpiexec", path=_search_path()) is not None
            and importlib.util.find_spec("mpi4py") is not None)


#: the optional packages a page may import, and the extra that installs each: a page whose
#: block fails because one is not installed skips from that block on, naming the extra
EXTRAS = {"sklearn": "sklearn", "scipy": "sklearn", "onnx": "onnx", "onnxruntime": "onnx",
          "torch": "torch", "mpi4py": "mpi", "cupy": "gpu", "pyarrow": "data"}

# what a skip condition may name: <!-- skip: next if(not GPU, reason="needs a CUDA GPU") -->
CONDITIONS = {"GPU": _gpu(), "MPI": _mpi(), "SLOW": os.environ.get("BACKPROP_DOCS_SLOW") == "1"}


def run_shell(example: Example) -> str | None:
    """Run a ``bash`` block in the page's folder; return its output when it fails."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env["PATH"] = _search_path()
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", str(example.parsed)], cwd=os.getcwd(),
                          env=env, capture_output=True, text=True, timeout=SHELL_TIMEOUT_S)
    if proc.returncode != 0:
        return (f"exit code {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n"
                f"--- stderr\n{proc.stderr[-3000:]}")
    return None


PARSERS = [PythonCodeBlockParser(), CodeBlockParser("bash", run_shell), SkipParser()]


def _parse(page: Path) -> Document:
    document = Document.parse(str(page), *PARSERS)
    document.namespace.update(CONDITIONS)
    document.namespace["__name__"] = "__docs__"
    return document


DOCUMENTS = {page: _parse(page) for page in PAGES}


def _cases() -> Iterator[object]:
    for page, document in DOCUMENTS.items():
        for example in document.examples():
            name = f"{page.relative_to(ROOT)}:{example.line}"
            yield pytest.param(page, example, id=name)


@pytest.fixture(scope="module")
def page_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """One working folder per page, kept across its blocks."""
    return {page: tmp_path_factory.mktemp(page.stem) for page in PAGES}


#: page -> why its remaining blocks skip (an optional package it needs is not installed)
MISSING: dict[Path, str] = {}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The reason to skip, when ``error`` is an optional package that is really not installed."""
    top = (error.name or "").split(".")[0]
    if top in EXTRAS and importlib.util.find_spec(top) is None:
        return f"needs {top}, which is not installed: pip install '.[{EXTRAS[top]}]'"
    return None


@pytest.mark.parametrize(("page", "example"), list(_cases()))
def test_block(page: Path, example: Example, page_folders: dict[Path, Path],
               monkeypatch: pytest.MonkeyPatch) -> None:
    """One block (or skip directive) of ``page``, in page order, in the page's folder."""
    __tracebackhide__ = True
    if page in MISSING:
        pytest.skip(MISSING[page])
    if page == ROOT / "README.md" and example.line == _fences(page)[0][0]:
        pytest.skip("the README's opening commands install the package and run this test suite; "
                    ".ci/run runs both itself, on a fresh clone")
    monkeypatch.chdir(page_folders[page])
    try:
        example.evaluate()
    except ModuleNotFoundError as error:
        reason = missing_extra(error)
        if reason is None:
            raise
        MISSING[page] = reason
        pytest.skip(reason)


def _fences(page: Path) -> list[tuple[int, str]]:
    """``(line, info string)`` of every fenced block of ``page``."""
    document = Document(page.read_text(encoding="utf-8"), str(page))
    lexer = FencedCodeBlockLexer(language=r".*", mapping={"language": "language"})
    return [(document.text.count("\n", 0, region.start) + 1, region.lexemes["language"])
            for region in lexer(document)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_is_run_or_says_it_is_not_code(page: Path) -> None:
    """A fence without a language, or with one that is neither run nor ``text``, would be
    skipped silently: each must be ``python`` or ``bash`` (run) or ``text`` (not code)."""
    bad = [f"{page.name}:{line}: ```{info}" for line, info in _fences(page)
           if info.split()[0:1] not in ([lang] for lang in RUN | NOT_CODE)
           and not re.fullmatch(r"\{[a-z-]+\}.*", info)]  # a MyST directive: ```{toctree}
    assert not bad, "fenced blocks that would not run (write python, bash or text):\n" + "\n".join(bad)


def test_the_runner_fails_a_block_that_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness can fail: a Python block that raises, a shell block that exits 1, and a
    command that does not exist each fail; a skip directive skips with its reason."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n\n```python\nassert x == 2, 'x is 1'\n```\n\n"
        "```bash\nbackprop --version\n```\n\n```bash\nexit 3\n```\n\n"
        "```bash\nno-such-command-anywhere\n```\n\n"
        '<!-- skip: next "needs a GPU" -->\n\n```python\nraise RuntimeError\n```\n',
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outcomes = []
    for example in _parse(page).examples():
        try:
            example.evaluate()
            outcomes.append("ok")
        except unittest_skip() as skip:
            outcomes.append(f"skip: {skip}")
        except Exception as error:  # SybilFailure and the block's own exception
            outcomes.append(type(error).__name__ + ": " + str(error).splitlines()[-1][:60])
    assert outcomes[0] == "ok" and outcomes[2] == "ok"
    assert outcomes[1].startswith("AssertionError: x is 1")
    assert outcomes[3].startswith("SybilFailure") and outcomes[4].startswith("SybilFailure")
    assert outcomes[5] == "ok" and outcomes[6] == "skip: needs a GPU", outcomes


def unittest_skip() -> type[BaseException]:
    import unittest

    return unittest.SkipTest


def test_every_page_is_found() -> None:
    """The pages tested are the README and the site's Markdown pages."""
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/math.md", "docs/architecture.md"} <= names
    assert not [n for n in names if re.search(r"_build|auto_examples", n)]
