"""The documentation's executed examples, run by the test suite too: a change that breaks
them fails here, before `make docs` (CI, with -W) does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scfill.methods import base

DOCS = Path(__file__).resolve().parents[1] / "docs"
CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def code_cells(page: str) -> list[str]:
    """The code cells of a MyST notebook page, in order."""
    return CELL.findall((DOCS / page).read_text())


def test_adding_a_method_example_runs():
    cells = code_cells("adding_a_method.md")
    assert len(cells) >= 5
    namespace: dict = {}
    try:
        for cell in cells:
            exec(compile(cell, "adding_a_method.md", "exec"), namespace)
        adata = namespace["adata"]
        assert adata.uns["scfill"]["method"] == "tinyae"
        assert adata.layers["imputed"].shape == adata.shape
    finally:
        base._REGISTRY.pop("tinyae", None)  # the example's method stays out of other tests


@pytest.mark.parametrize("page", ["tutorial.md", "adding_a_method.md"])
def test_notebook_pages_are_parseable(page):
    for cell in code_cells(page):
        compile(cell, page, "exec")
