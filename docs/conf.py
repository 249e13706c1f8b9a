"""Sphinx configuration: ``pip install -e ".[docs]" && sphinx-build -W --keep-going docs docs/_build/html``.

Before the pages are read, the spec and CLI references are rendered from the code
(``kagglekit.spec_reference``, ``kagglekit.cli._reference``), the benchmark plots are drawn from
``bench/results/`` (``docs/plots.py``), and the notebooks of ``notebooks/`` are copied in to be
executed by myst-nb (where the real data of ``../shared/data`` is present; else shown unexecuted).
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(DOCS))

import plots  # noqa: E402

import kagglekit  # noqa: E402
from kagglekit.cli._reference import cli_reference_markdown  # noqa: E402
from kagglekit.spec_reference import reference_markdown  # noqa: E402

project = "kagglekit"
author = "the kagglekit developers"
copyright = "2026, the kagglekit developers"
release = version = kagglekit.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated", "jupyter_execute", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header"]  # pages moved from the README keep their own heading levels

html_theme = "pydata_sphinx_theme"
html_title = "kagglekit"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2, "secondary_sidebar_items": ["page-toc"]}

autosummary_generate = True
autodoc_typehints = "description"
autodoc_default_options = {"members": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False

# ---------------------------------------------------------------------------------------------
# generated before the build: references, plots, notebooks
GEN = DOCS / "_generated"
GEN.mkdir(exist_ok=True)
(GEN / "spec-keys.md").write_text(reference_markdown(), encoding="utf-8")
(GEN / "cli.md").write_text(cli_reference_markdown(), encoding="utf-8")
plots.make_all(REPO / "bench" / "results", GEN)

NB = DOCS / "notebooks"
NB.mkdir(exist_ok=True)
for book in (REPO / "notebooks").glob("*.ipynb"):
    shutil.copy(book, NB / book.name)

SHARED = Path(os.environ.get("KK_SHARED_DATA", REPO.parent / "shared" / "data"))
os.environ["KK_SHARED_DATA"] = str(SHARED)  # the notebooks' kernels read the real files from here
os.environ.pop("MPLBACKEND", None)  # the kernels' inline backend shows the plots
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
nb_execution_mode = "force" if (SHARED / "titanic").is_dir() else "off"
nb_execution_in_temp = True  # runs/ and submission.csv are written in a temporary folder
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
