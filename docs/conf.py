"""Sphinx configuration of the scfill documentation (``make docs``).

Two kinds of page are written at build time into ``docs/generated/`` (not committed):

- the API reference (``api.rst``), from the ``__all__`` of the public modules and the
  method registry, so a new public function or registered method appears without editing;
- the committed benchmark results of ``benchmarks/results/``, copied with their figures, so
  the site shows the files the benchmark scripts wrote, not a second copy of their numbers.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
sys.path.insert(0, str(ROOT / "src"))

import scfill  # noqa: E402

project = "scfill"
author = "the scfill developers"
copyright = "2026, the scfill developers"
release = scfill.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "jupyter_execute"]
html_theme = "furo"
html_title = f"scfill {release}"
html_static_path = ["_static"]

# numpy-style docstrings (napoleon), type hints in the signature, one page per object
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autosummary_generate = True
autosummary_imported_members = True

# MyST and the executed tutorial: run at every build, fail the build on a cell error
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
# The copied benchmark reports start their sections at any level.
suppress_warnings = ["myst.header"]

#: Modules whose public names make the API reference, in page order, with a heading.
API_MODULES = {
    "scfill": "Reading, imputing, writing",
    "scfill.pl": "Plotting",
    "scfill.methods": "Methods: the interface and the registry",
    "scfill.select": "Choosing the method automatically (method='auto')",
    "scfill.simulate": "Simulation",
    "scfill.evaluate": "Evaluation",
    "scfill.dropout": "Dropout models",
    "scfill.cluster": "Pre-clustering",
    "scfill.nn": "Training engine",
    "scfill.errors": "Errors",
    "scfill.utils": "Parameter checks and optional imports",
}


def public_names(module) -> list[str]:
    """Public functions and classes of ``module``: its ``__all__``, or when it has none the
    ones it defines. Constants and submodules are left to the narrative pages."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if getattr(obj, "__module__", None) == module.__name__]
    return [n for n in names if not n.startswith("_")
            and (inspect.isfunction(getattr(module, n, None))
                 or inspect.isclass(getattr(module, n, None)))]


def registered_methods() -> list[str]:
    """Dotted paths of every registered method class (built-in methods and peers)."""
    from scfill.methods.base import registered

    return [f"{cls.__module__}.{cls.__qualname__}" for _, cls in sorted(registered().items())]


def write_api_page() -> None:
    """``generated/api.rst``: one autosummary table per public module, then the methods."""
    title = "API reference"
    lines = [title, "=" * len(title), "",
             "Every public function and class, from the docstrings. Import as "
             "``import scfill`` (plots: ``scfill.pl``).", ""]
    documented: set[int] = set()  # each object once, under the first module that has it
    for name, heading in API_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        names = [n for n in public_names(module) if id(getattr(module, n)) not in documented]
        documented.update(id(getattr(module, n)) for n in names)
        if not names:
            continue
        lines += [heading, "-" * len(heading), "", f"``{name}``", "",
                  f".. currentmodule:: {name}", "", ".. autosummary::", "   :toctree: api",
                  "", *[f"   {n}" for n in names], ""]
    heading = "Registered methods"
    lines += [heading, "-" * len(heading), "",
              "Each class below is what ``scfill.get_method(name)`` returns; its docstring "
              "lists its parameters and their sources.", "", ".. currentmodule:: scfill", "",
              ".. autosummary::",
              "   :toctree: api", "",
              *[f"   {path.removeprefix('scfill.')}" for path in registered_methods()], ""]
    (GENERATED / "api.rst").write_text("\n".join(lines))


#: A markdown image: ``![alt](path)``.
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def copy_page(page: Path, target: Path) -> None:
    """Copy a markdown page and every local image it shows, keeping their relative paths."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(page, target)
    for link in IMAGE.findall(page.read_text()):
        image = page.parent / link
        if "://" not in link and image.is_file():
            (target.parent / link).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, target.parent / link)


def copy_results() -> None:
    """Copy the committed benchmark results into the build: every ``*.md`` report and each
    run folder's ``report.md``, with the images they show."""
    source = ROOT / "benchmarks" / "results"
    target = GENERATED / "results"
    for page in [*sorted(source.glob("*.md")), *sorted(source.glob("*/report.md"))]:
        copy_page(page, target / page.relative_to(source))


# before Sphinx looks for source files, so the generated pages are found like the others
GENERATED.mkdir(exist_ok=True)
write_api_page()
copy_results()
