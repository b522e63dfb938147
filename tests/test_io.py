"""Readers and writers: every format round-trips; file problems give clear errors."""

from __future__ import annotations

import gzip
import os
import stat

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import scfill
from scfill.errors import InputError


def _same(a: ad.AnnData, b: ad.AnnData) -> None:
    assert list(a.obs_names) == list(b.obs_names)
    assert list(a.var_names) == list(b.var_names)
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())


def _write_10x_folder(adata: ad.AnnData, folder, *, v3: bool = True) -> None:
    folder.mkdir()
    suffix = ".gz" if v3 else ""
    opener = gzip.open if v3 else open
    with opener(folder / f"matrix.mtx{suffix}", "wb") as fh:
        scipy.io.mmwrite(fh, sp.csr_matrix(adata.X.T.astype(np.int64)), field="integer")
    genes = pd.DataFrame({"id": [f"ENSG{i}" for i in range(adata.n_vars)],
                          "name": adata.var_names, "type": "Gene Expression"})
    name = "features.tsv" if v3 else "genes.tsv"
    with opener(folder / f"{name}{suffix}", "wt") as fh:
        genes.iloc[:, : 3 if v3 else 2].to_csv(fh, sep="\t", header=False, index=False)
    with opener(folder / f"barcodes.tsv{suffix}", "wt") as fh:
        fh.write("\n".join(adata.obs_names) + "\n")


def _write_10x_h5(adata: ad.AnnData, path) -> None:
    matrix = sp.csc_matrix(adata.X.T.astype(np.int32))  # genes x cells, columns = cells
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = matrix.data, matrix.indices, matrix.indptr
        g["shape"] = np.array(matrix.shape, dtype=np.int32)
        g["barcodes"] = np.array(adata.obs_names, dtype="S")
        feats = g.create_group("features")
        feats["id"] = np.array([f"ENSG{i}" for i in range(adata.n_vars)], dtype="S")
        feats["name"] = np.array(adata.var_names, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * adata.n_vars, dtype="S")
        feats["genome"] = np.array(["GRCh38"] * adata.n_vars, dtype="S")


def test_h5ad_round_trip(tmp_path, counts_adata):
    path = tmp_path / "in.h5ad"
    scfill.write(counts_adata, path)
    back = scfill.read(path)
    _same(counts_adata, back)
    assert sp.isspmatrix_csr(back.X)


def test_h5ad_layer(tmp_path, counts_adata):
    counts_adata.layers["counts"] = counts_adata.X.copy()
    counts_adata.X = counts_adata.X * 0.5
    path = tmp_path / "in.h5ad"
    counts_adata.write_h5ad(path)
    back = scfill.read(path, layer="counts")
    np.testing.assert_array_equal(back.X.toarray(), counts_adata.layers["counts"].toarray())
    with pytest.raises(InputError, match="layer 'missing' not found"):
        scfill.read(path, layer="missing")


@pytest.mark.parametrize("v3", [True, False])
def test_10x_mtx_folder(tmp_path, counts_adata, v3):
    folder = tmp_path / "filtered"
    _write_10x_folder(counts_adata, folder, v3=v3)
    _same(counts_adata, scfill.read(folder))
    matrix = next(folder.glob("matrix.mtx*"))
    _same(counts_adata, scfill.read(matrix))


def test_10x_folder_without_genes(tmp_path, counts_adata):
    folder = tmp_path / "broken"
    _write_10x_folder(counts_adata, folder)
    (folder / "features.tsv.gz").unlink()
    with pytest.raises(InputError, match="no features.tsv"):
        scfill.read(folder)


def test_10x_h5(tmp_path, counts_adata):
    path = tmp_path / "filtered.h5"
    _write_10x_h5(counts_adata, path)
    _same(counts_adata, scfill.read(path))


def test_csv_genes_by_cells_round_trip(tmp_path, counts_adata):
    path = tmp_path / "counts.csv"
    counts_adata.to_df().T.to_csv(path)
    back = scfill.read(path)
    _same(counts_adata, back)
    out = tmp_path / "out.csv"
    back.layers["imputed"] = back.X.copy()
    scfill.write(back, out)
    written = pd.read_csv(out, index_col=0)
    assert list(written.index) == list(counts_adata.var_names)  # genes x cells, as given


def test_tsv_cells_by_genes(tmp_path, counts_adata):
    path = tmp_path / "counts.tsv.gz"
    counts_adata.to_df().to_csv(path, sep="\t")
    back = scfill.read(path, cells_axis=0)
    _same(counts_adata, back)
    out = tmp_path / "out.tsv"
    scfill.write(back, out)
    assert list(pd.read_csv(out, sep="\t", index_col=0).index) == list(back.obs_names)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        scfill.read(tmp_path / "nope.h5ad")


def test_unknown_extension(tmp_path):
    path = tmp_path / "counts.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown file format '.xlsx'"):
        scfill.read(path)


def test_empty_file(tmp_path):
    path = tmp_path / "counts.h5ad"
    path.touch()
    with pytest.raises(InputError, match="file is empty"):
        scfill.read(path)


def test_truncated_h5ad(tmp_path, counts_adata):
    path = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="could not read the file.*truncated"):
        scfill.read(path)


def test_unreadable_file(tmp_path, counts_adata, monkeypatch):
    path = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(path)
    # permissions are not enforced for root, so simulate a file the user may not read
    monkeypatch.setattr("scfill.io.os.access", lambda *_: False)
    with pytest.raises(InputError, match="not readable"):
        scfill.read(path)


def test_csv_with_text_column(tmp_path):
    path = tmp_path / "counts.csv"
    pd.DataFrame({"c1": [1, 2], "c2": ["a", "b"]}, index=["g1", "g2"]).to_csv(path)
    with pytest.raises(InputError, match="not numeric"):
        scfill.read(path)


def test_write_refuses_overwrite(tmp_path, counts_adata):
    path = tmp_path / "out.h5ad"
    scfill.write(counts_adata, path)
    before = path.read_bytes()
    with pytest.raises(InputError, match="output already exists"):
        scfill.write(counts_adata, path)
    assert path.read_bytes() == before
    scfill.write(counts_adata, path, force=True)


def test_write_is_atomic(tmp_path, counts_adata, monkeypatch):
    path = tmp_path / "out.h5ad"

    def crash(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        scfill.write(counts_adata, path)
    assert list(tmp_path.iterdir()) == []  # no half file, no temp file left


def test_write_unknown_format(tmp_path, counts_adata):
    with pytest.raises(InputError, match="unknown output format"):
        scfill.write(counts_adata, tmp_path / "out.parquet")


def test_10x_v3_folder_not_gzipped(tmp_path, counts_adata):
    """matrix.mtx + features.tsv + barcodes.tsv, none gzipped (issue 18, defect 15)."""
    folder = tmp_path / "plain_v3"
    _write_10x_folder(counts_adata, folder)
    for gz in folder.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert sorted(p.name for p in folder.iterdir()) == ["barcodes.tsv", "features.tsv",
                                                        "matrix.mtx"]
    back = scfill.read(folder)
    _same(counts_adata, back)
    assert list(back.var["gene_ids"][:2]) == ["ENSG0", "ENSG1"]


def test_10x_folder_keeps_gene_expression_only(tmp_path, counts_adata):
    folder = tmp_path / "multi"
    _write_10x_folder(counts_adata, folder)
    features = pd.read_csv(folder / "features.tsv.gz", sep="\t", header=None)
    features.iloc[:3, 2] = "Antibody Capture"
    features.to_csv(folder / "features.tsv.gz", sep="\t", header=False, index=False)
    back = scfill.read(folder)
    assert list(back.var_names) == list(counts_adata.var_names[3:])


def test_10x_folder_tables_of_another_run(tmp_path, counts_adata):
    folder = tmp_path / "mixed"
    _write_10x_folder(counts_adata, folder)
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("AAAC-1\n")
    with pytest.raises(InputError, match="lists 40 genes and barcodes.tsv.gz 1 barcodes"):
        scfill.read(folder)


def test_h5ad_without_x(tmp_path, counts_adata):
    """An h5ad whose counts live only in a layer (issue 18, defect 12)."""
    path = tmp_path / "nox.h5ad"
    ad.AnnData(obs=counts_adata.obs, var=counts_adata.var,
               layers={"counts": counts_adata.X}).write_h5ad(path)
    with pytest.raises(InputError, match="no X matrix \\(layers: counts\\).*--layer NAME"):
        scfill.read(path)
    _same(counts_adata, scfill.read(path, layer="counts"))


def test_csv_duplicate_header_refused(tmp_path):
    """pandas renames a repeated column to 'c1.1'; scfill refuses it (defect 6)."""
    path = tmp_path / "counts.csv"
    path.write_text("gene,c1,c2,c1\ng1,1,2,3\ng2,0,1,0\n")
    with pytest.raises(InputError, match="1 duplicate cell name.*'c1'"):
        scfill.read(path)
    path.write_text("gene,c1,c2\ng1,1,2\ng1,0,1\n")
    with pytest.raises(InputError, match="1 duplicate gene name.*'g1'"):
        scfill.read(path)


def test_csv_header_without_row_label(tmp_path):
    """R's write.table header has no field above the row names; names are kept as given."""
    path = tmp_path / "counts.tsv"
    path.write_text("c1\tc2\ng1\t1\t2\ng2\t0\t1\n")
    assert list(scfill.read(path).obs_names) == ["c1", "c2"]


def test_csv_cells_as_rows_detected(tmp_path, counts_adata, caplog):
    """A cells x genes table read without cells_axis: the names say so (defect 3)."""
    path = tmp_path / "cells_by_genes.csv"
    counts_adata.to_df().to_csv(path)  # rows cell0.., columns gene0..
    with caplog.at_level("WARNING", logger="scfill"):
        back = scfill.read(path)
    _same(counts_adata, back)
    assert back.uns["scfill_input"]["cells_axis"] == 0
    assert "rows look like cells" in caplog.text and "--no-transpose" in caplog.text
    forced = scfill.read(path, cells_axis=1)  # the caller's choice wins
    assert forced.shape == (counts_adata.n_vars, counts_adata.n_obs)


@pytest.mark.parametrize(("rows", "columns", "cells_axis"), [
    (["ENSG00000141510", "ENSG00000012048"], ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1"], 1),
    (["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1"], ["ENSG00000141510", "ENSG00000012048"], 0),
    (["MT-CO1", "RPL13"], ["s1", "s2"], 1),
    (["s1", "s2"], ["MT-CO1", "RPS6"], 0),
    (["ACTB", "GAPDH"], ["s1", "s2"], 1),  # nothing recognisable: the default
    (["s1", "s2"], ["ACTB", "GAPDH"], 1),
])
def test_csv_orientation_from_names(tmp_path, rows, columns, cells_axis):
    path = tmp_path / "counts.csv"
    pd.DataFrame([[1, 2], [3, 0]], index=rows, columns=columns).to_csv(path)
    assert scfill.read(path).uns["scfill_input"]["cells_axis"] == cells_axis


def test_read_checks_cells_axis(tmp_path, counts_adata):
    path = tmp_path / "counts.csv"
    counts_adata.to_df().T.to_csv(path)
    with pytest.raises(InputError, match="cells_axis=2 is not 0, 1 or None"):
        scfill.read(path, cells_axis=2)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_follows_umask(tmp_path, counts_adata, umask):
    """Outputs get 0o666 minus the umask, like any other tool's (defect 16)."""
    old = os.umask(umask)
    try:
        scfill.write(counts_adata, tmp_path / "out.h5ad")
        counts_adata.layers["imputed"] = counts_adata.X
        scfill.write(counts_adata, tmp_path / "out.csv")
    finally:
        os.umask(old)
    for name in ("out.h5ad", "out.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_overwrite_keeps_the_replaced_files_mode(tmp_path, counts_adata):
    path = tmp_path / "out.h5ad"
    scfill.write(counts_adata, path)
    path.chmod(0o640)
    scfill.write(counts_adata, path, force=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_write_refuses_the_input_file(tmp_path, counts_adata):
    """Even with force, the output is never the file the data came from (defect 9)."""
    path = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(path)
    before = path.read_bytes()
    adata = scfill.read(path)
    with pytest.raises(InputError, match="the output is the input file"):
        scfill.write(adata, tmp_path / "." / "counts.h5ad", force=True)
    assert path.read_bytes() == before


def test_failed_write_removes_the_folders_it_made(tmp_path, counts_adata, monkeypatch):
    def crash(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        scfill.write(counts_adata, tmp_path / "new" / "deeper" / "out.h5ad")
    assert list(tmp_path.iterdir()) == []


def test_write_into_new_folders(tmp_path, counts_adata):
    path = scfill.write(counts_adata, tmp_path / "a" / "b" / "out.h5ad")
    _same(counts_adata, scfill.read(path))


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: (p / "file").write_text("x") and p / "file" / "out.h5ad",
     "is a file, not a folder"),
    (lambda p: (p / "out.h5ad").mkdir() or p / "out.h5ad", "is an existing folder"),
    (lambda p: p / "out.xlsx", "unknown output format '.xlsx'"),
])
def test_write_bad_output_path(tmp_path, counts_adata, make, message):
    with pytest.raises(InputError, match=message):
        scfill.write(counts_adata, make(tmp_path), force=True)


def test_write_unwritable_folder(tmp_path, counts_adata, monkeypatch):
    # permissions are not enforced for root, so simulate a folder the user may not write
    monkeypatch.setattr("scfill.paths.os.access", lambda *_: False)
    with pytest.raises(InputError, match="cannot write to the folder.*permission denied"):
        scfill.write(counts_adata, tmp_path / "out.h5ad")


def test_read_without_layers_names_a_missing_layer(tmp_path, counts_adata):
    from scfill.io import h5ad_shape, read_h5ad_without_layers

    path = tmp_path / "in.h5ad"
    counts_adata.write_h5ad(path)
    assert h5ad_shape(path) == counts_adata.shape
    with pytest.raises(InputError, match="layer 'nope' not found.*layers: none"):
        read_h5ad_without_layers(path, layer="nope")
    text = tmp_path / "in.csv"
    counts_adata.to_df().T.to_csv(text)
    with pytest.raises(InputError, match="only an .h5ad input"):
        read_h5ad_without_layers(text)
