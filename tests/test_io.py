"""Readers and writers: every format round-trips; file problems give clear errors."""

from __future__ import annotations

import gzip

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
