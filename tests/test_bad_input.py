"""Every bad input the README promises to catch, through the command line: exit code 2,
one message naming the problem and the fix, and no output left behind.

One row of :data:`CASES` per bad input: an id, how the input is made, the command-line
arguments after ``scfill -q impute INPUT -o OUT``, and a fragment of the message. Adding a
case is one line.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import make_counts
from scfill.cli import main

#: Makes the input file in a folder and returns its path (a str is relative to the folder).
Maker = Callable[[Path], Path]


def h5ad(edit: Callable | None = None, name: str = "counts.h5ad") -> Maker:
    """The test counts as h5ad, after ``edit(adata)`` (which may return a new AnnData)."""
    def make(folder: Path) -> Path:
        adata = make_counts()
        edited = None if edit is None else edit(adata)
        adata = adata if edited is None else edited
        adata.write_h5ad(folder / name)
        return folder / name
    return make


def text(content: str | bytes, name: str = "counts.csv") -> Maker:
    """A file with exactly ``content``."""
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return make


def truncated(folder: Path) -> Path:
    path = h5ad()(folder)
    path.write_bytes(path.read_bytes()[:2000])
    return path


def tenx_without_barcodes(folder: Path) -> Path:
    tenx = folder / "filtered"
    tenx.mkdir()
    with gzip.open(tenx / "matrix.mtx.gz", "wt") as fh:
        fh.write("%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 3\n")
    with gzip.open(tenx / "features.tsv.gz", "wt") as fh:
        fh.write("ENSG1\tA\tGene Expression\nENSG2\tB\tGene Expression\n")
    return tenx


def setx(value) -> Callable:
    """Put ``value`` into the first stored entry of X."""
    def edit(adata):
        adata.X.data[0] = value
    return edit


def dense(edit: Callable) -> Callable:
    def apply(adata):
        adata.X = adata.X.toarray()
        edit(adata.X)
    return apply


def obs(column: str, values: Callable) -> Callable:
    def edit(adata):
        adata.obs[column] = values(adata)
    return edit


def rename(axis: str, position: int, name: str) -> Callable:
    def edit(adata):
        names = list(getattr(adata, f"{axis}_names"))
        names[position] = name
        setattr(adata, f"{axis}_names", names)
    return edit


def only_layer(adata):
    import anndata as ad

    return ad.AnnData(obs=adata.obs, var=adata.var, layers={"counts": adata.X})


class Case(NamedTuple):
    id: str
    make: Maker
    args: list[str]
    message: str
    out: str = "out.h5ad"  # the -o argument, relative to the test folder


CSV_GENES_BY_CELLS = "gene,c1,c2,c3\ng1,1,0,3\ng2,0,2,1\ng3,4,1,0\n"

CASES = [
    # the input file itself
    Case("missing file", lambda d: d / "nowhere.h5ad", [], "file not found"),
    Case("empty file", text(b"", "counts.h5ad"), [], "file is empty (0 bytes)"),
    Case("truncated h5ad", truncated, [], "may be truncated"),
    Case("unknown format", text("x", "counts.xlsx"), [], "unknown file format '.xlsx'"),
    Case("no extension", text("x", "counts"), [], "unknown file format '(no extension)'"),
    Case("h5ad without X", h5ad(only_layer), [], "the file has no X matrix"),
    Case("missing layer", h5ad(), ["--layer", "raw"], "layer 'raw' not found"),
    Case("layer of a csv", text(CSV_GENES_BY_CELLS), ["--layer", "raw"],
         "layer= applies to .h5ad files only"),
    Case("10x folder without barcodes", tenx_without_barcodes, [], "no barcodes.tsv"),
    Case("csv with a text column", text("gene,c1,c2\ng1,1,a\ng2,0,b\n"), [], "not numeric"),
    Case("csv duplicate column", text("gene,c1,c1\ng1,1,2\ng2,0,1\n"), [],
         "1 duplicate cell name(s), e.g. 'c1'"),
    Case("csv duplicate row", text("gene,c1,c2\ng1,1,2\ng1,0,1\n"), [],
         "1 duplicate gene name(s), e.g. 'g1'"),
    # the values
    Case("NaN", h5ad(dense(lambda x: x.__setitem__((0, 0), np.nan))), [], "NaN or infinite"),
    Case("infinite", h5ad(setx(np.inf)), [], "NaN or infinite"),
    Case("negative", h5ad(setx(-1)), [], "counts cannot be negative"),
    Case("not whole numbers", h5ad(setx(2.5)), [], "not whole numbers"),
    Case("log-normalised", h5ad(lambda a: setattr(a, "X", a.X.log1p())), [],
         "look log-normalised"),
    Case("empty matrix", h5ad(lambda a: a[:0].copy()), [], "the matrix is empty"),
    Case("all zero", h5ad(lambda a: setattr(a, "X", sp.csr_matrix(a.shape))), [],
         "every value is zero"),
    Case("duplicate cells", h5ad(rename("obs", 1, "cell0")), [], "duplicate cell name"),
    Case("duplicate genes", h5ad(rename("var", 1, "gene0")), [], "duplicate gene name"),
    Case("too few cells", h5ad(lambda a: a[:2].copy()), ["--method", "knn"],
         "needs at least 3 cells"),
    # the label column
    Case("label column missing", h5ad(), ["--labels-key", "celltype"],
         "label column 'celltype' not found"),
    Case("label with missing values", h5ad(obs("ct", lambda a: [None] + ["x"] * 119)),
         ["--labels-key", "ct"], "1 missing value"),
    Case("labels are cell ids", h5ad(obs("id", lambda a: a.obs_names)), ["--labels-key", "id"],
         "looks like an identifier"),
    Case("labels are continuous", h5ad(obs("s", lambda a: np.linspace(0, 1, a.n_obs))),
         ["--labels-key", "s"], "holds non-integer numbers"),
    # parameters
    Case("unknown method", h5ad(), ["--method", "magicc"], "unknown method 'magicc'"),
    Case("unknown parameter", h5ad(), ["--method", "knn", "--param", "kk=3"],
         "has no parameter 'kk'"),
    Case("parameter not key=value", h5ad(), ["--param", "k"], "not of the form key=value"),
    Case("parameter out of range", h5ad(), ["--method", "knn", "--param", "k=0"],
         "k=0 is out of range"),
    Case("parameter of the wrong type", h5ad(), ["--method", "knn", "--param", "k=ten"],
         "k='ten' is not a valid int"),
    Case("parameter NaN", h5ad(), ["--method", "maskclass", "--param", "p_nonzero=nan"],
         "p_nonzero=nan is not a finite number"),
    Case("n-top-genes 0", h5ad(), ["--n-top-genes", "0"], "n_top_genes=0 is out of range"),
    Case("n-top-genes negative", h5ad(), ["--n-top-genes", "-3"],
         "n_top_genes=-3 is out of range"),
    Case("unknown device", h5ad(), ["--method", "knn", "--device", "tpu"], "invalid choice"),
    Case("seed negative", h5ad(), ["--seed", "-1"], "-1 is out of range"),
    Case("seed too large", h5ad(), ["--method", "knn", "--seed", str(2**32)], "out of range"),
    Case("seed not whole", h5ad(), ["--seed", "1e20"], "'1e20' is not a whole number"),
    # the output path
    Case("output is the input", h5ad(), ["--force"], "the output is the input file",
         out="counts.h5ad"),
    Case("output exists", h5ad(), [], "output already exists", out="counts.csv"),
    Case("output unknown format", h5ad(), [], "unknown output format '.parquet'",
         out="out.parquet"),
    Case("output is a folder", h5ad(), ["--force"], "the output is an existing folder",
         out="folder"),
    Case("output parent is a file", h5ad(), [], "is a file, not a folder",
         out="counts.csv/out.h5ad"),
]

#: Messages from the argument parser (a usage line, no "Fix:").
PARSER_ERRORS = ("invalid choice", "out of range", "is not a whole number")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "counts.csv").write_text(CSV_GENES_BY_CELLS)  # an existing file
    (tmp_path / "folder").mkdir()
    before = set(tmp_path.rglob("*"))
    source = case.make(tmp_path)
    made = set(tmp_path.rglob("*")) - before
    code = main(["-q", "impute", str(source), "-o", case.out, *case.args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert case.message in err
    assert "Traceback" not in err
    if not any(part in case.message for part in PARSER_ERRORS):
        assert "Fix:" in err and len(err.strip().splitlines()) == 1, err
    assert set(tmp_path.rglob("*")) == before | made  # nothing written, no temporary file
