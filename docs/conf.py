"""Sphinx configuration of the backprop documentation site.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install ".[docs]"``
first): ``-W`` turns every warning into an error, so a broken reference, a docstring that is
not valid reStructuredText or a gallery example that raises fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# the sources of this checkout first, so that the site documents the code beside it
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

import backprop  # noqa: E402

project = "backprop"
author = "backprop developers"
copyright = "backprop developers"  # noqa: A001  (Sphinx reads this name)
version = release = backprop.__version__

extensions = [
    "myst_parser",                # the pages in docs/ are Markdown
    "sphinx.ext.autodoc",         # the API reference, from the docstrings
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",        # ... which follow the Google style (Args, Returns, Raises)
    "sphinx.ext.mathjax",         # the $...$ of docs/math.md
    "sphinx-mathjax-offline",     # ... rendered by a MathJax shipped with the site, not from a CDN
    "sphinx.ext.viewcode",
    "sphinxarg.ext",              # the command-line reference, from backprop's own parsers
    "sphinx_gallery.gen_gallery", # examples/ as a gallery of scripts with their figures
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.codeobj.json",
                    "sg_execution_times.rst"]

# -- Markdown (MyST) -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3        # [text](math.md#000-7-...) links resolve to headings
myst_dmath_double_inline = True

# -- the API reference -----------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = True   # the scikit-learn estimators document themselves as scikit-learn does
napoleon_use_rtype = False
autosummary_generate = False
nitpicky = False


# -- the gallery -----------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",       # run every plot_*.py and keep its figures
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "run_stale_examples": False,         # unchanged examples are not run again (md5 cache)
    "abort_on_example_error": True,
    "show_memory": False,
    "write_computation_times": False,
    "within_subsection_order": "FileNameSortKey",
}

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "backprop"
html_static_path: list[str] = []
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_show_sourcelink = False
