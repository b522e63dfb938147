"""The pipeline end to end with the kNN baseline: outputs, conservativeness, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import scfill
from scfill.errors import InputError
from scfill.preprocess import LogNormalizer, library_size


def test_outputs_and_provenance(counts_adata):
    out = scfill.impute(counts_adata, "knn", seed=3, copy=True, counts_layer=True)
    assert "imputed" not in counts_adata.layers  # copy=True leaves the input alone
    imputed = out.layers["imputed"]
    assert sp.isspmatrix_csr(imputed) and imputed.shape == counts_adata.shape
    info = out.uns["scfill"]
    assert info["method"] == "knn" and info["seed"] == 3 and info["device"] == "cpu"
    assert info["params"]["k"] == 10 and info["version"] == scfill.__version__
    assert info["space"].startswith("ln(1 + count")
    np.testing.assert_allclose(out.layers["imputed_counts"][counts_adata.X.nonzero()],
                               counts_adata.X[counts_adata.X.nonzero()], rtol=1e-4)


def test_in_place_returns_none(counts_adata):
    assert scfill.impute(counts_adata, "knn") is None
    assert "imputed" in counts_adata.layers


def test_observed_nonzeros_kept_and_zeros_filled(counts_adata):
    out = scfill.impute(counts_adata, "knn", copy=True)
    observed = LogNormalizer.median(library_size(counts_adata.X)).transform(
        counts_adata.X, library_size(counts_adata.X)).toarray()
    imputed = out.layers["imputed"].toarray()
    nonzero = observed > 0
    np.testing.assert_allclose(imputed[nonzero], observed[nonzero], rtol=1e-6)
    assert (imputed[~nonzero] > 0).mean() > 0.5  # most zeros received a value


def test_common_space_is_scanpy_normalisation(counts_adata):
    import scanpy as sc

    out = scfill.impute(counts_adata, "none", copy=True)
    reference = counts_adata.copy()
    sc.pp.normalize_total(reference)
    sc.pp.log1p(reference)
    np.testing.assert_allclose(out.layers["imputed"].toarray(), reference.X.toarray(),
                               rtol=1e-5, atol=1e-6)


def test_all_zero_cells_and_genes_set_aside(counts_adata):
    dense = counts_adata.X.toarray()
    dense[5, :] = 0
    dense[:, 7] = 0
    counts_adata.X = sp.csr_matrix(dense)
    out = scfill.impute(counts_adata, "knn", copy=True)
    imputed = out.layers["imputed"].toarray()
    assert not imputed[5].any() and not imputed[:, 7].any()
    assert out.uns["scfill"]["n_cells_set_aside"] == 1
    assert out.uns["scfill"]["n_genes_not_imputed"] == 1
    assert imputed[[0, 1]].any()


def test_n_top_genes_leaves_others_observed(counts_adata):
    out = scfill.impute(counts_adata, "knn", n_top_genes=10, copy=True)
    observed = scfill.impute(counts_adata, "none", copy=True).layers["imputed"].toarray()
    changed = (out.layers["imputed"].toarray() != observed).any(axis=0)
    assert changed.sum() <= 10 and changed.any()
    assert out.uns["scfill"]["n_genes_imputed"] == 10


def test_same_seed_same_output(counts_adata):
    a = scfill.impute(counts_adata, "knn", seed=1, copy=True).layers["imputed"]
    b = scfill.impute(counts_adata, "knn", seed=1, copy=True).layers["imputed"]
    assert (a != b).nnz == 0


def test_labels_from_user(counts_adata):
    """The user's column reaches the method as its groups (cell by cell) and the dropout
    model is fitted per those groups; nothing is pre-clustered."""
    from scfill.dropout import estimate
    from scfill.methods.baselines import KNNImpute

    class Recording(KNNImpute):
        dropout_model = "gamma_normal"
        preclustering = "kmeans"

        def fit(self, data):
            self.seen_ = (data.labels.copy(), list(data.label_names))
            return super().fit(data)

    counts_adata.obs["cell_type"] = counts_adata.obs["group"].map(
        {"0": "B", "1": "T", "2": "NK"}).astype(str)
    model = Recording()
    out = scfill.impute(counts_adata, model, labels_key="cell_type", copy=True)
    codes, names = model.seen_
    assert np.array(names)[codes].tolist() == counts_adata.obs["cell_type"].tolist()
    assert out.uns["scfill"]["labels"] == "obs['cell_type']"
    assert "scfill_cluster" not in out.obs
    expected = estimate("gamma_normal", sp.csr_matrix(counts_adata.X, dtype=np.float32),
                        library_size(counts_adata.X), labels=codes).matrix()
    np.testing.assert_allclose(out.layers["dropout_probability"].toarray(),
                               expected.toarray(), rtol=1e-5, atol=1e-7)
    ignored = scfill.impute(counts_adata, Recording(), copy=True)  # pre-clustered instead
    assert (ignored.layers["dropout_probability"] != out.layers["dropout_probability"]).nnz


def test_method_instance(counts_adata):
    model = scfill.get_method("knn")(k=3)
    scfill.impute(counts_adata, model)
    assert model.neighbors_.shape == (counts_adata.n_obs, 3)
    assert counts_adata.uns["scfill"]["params"]["k"] == 3


def test_layer_input(counts_adata):
    counts_adata.layers["counts"] = counts_adata.X.copy()
    counts_adata.X = sp.csr_matrix(np.log1p(counts_adata.X.toarray()))
    out = scfill.impute(counts_adata, "knn", layer="counts", copy=True)
    assert out.uns["scfill"]["layer"] == "counts"
    with pytest.raises(InputError, match="not whole numbers"):
        scfill.impute(counts_adata, "knn", copy=True)


def test_normalizer_round_trip():
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(2, (30, 8)).astype(np.float32))
    lib = library_size(counts)
    for norm in (LogNormalizer.median(lib), LogNormalizer(target=1e6),
                 LogNormalizer.median(lib, base=2.0)):
        np.testing.assert_allclose(norm.inverse(norm.transform(counts, lib), lib).toarray(),
                                   counts.toarray(), rtol=1e-4, atol=1e-4)
    gn = LogNormalizer(target=1e6, base=10.0, pseudocount=1.01)
    np.testing.assert_allclose(gn.inverse(gn.transform(counts, lib), lib), counts.toarray(),
                               rtol=1e-3, atol=1e-3)


def test_dropout_layer_can_be_skipped(counts_adata):
    kept = scfill.impute(counts_adata, "cnnimpute", labels_key="group", copy=True,
                         params={"subset_size": 8, "epochs": 1})
    skipped = scfill.impute(counts_adata, "cnnimpute", labels_key="group", copy=True,
                            params={"subset_size": 8, "epochs": 1}, dropout_layer=False)
    assert "dropout_probability" in kept.layers
    assert "dropout_probability" not in skipped.layers
    assert (kept.layers["imputed"] != skipped.layers["imputed"]).nnz == 0


def _set_aside(adata):
    dense = adata.X.toarray()
    dense[[0, 5, 119], :] = 0
    dense[:, [0, 7]] = 0
    adata.X = sp.csr_matrix(dense)
    return adata


@pytest.mark.parametrize("method", ["knn", "cnnimpute"])
def test_streamed_file_equals_the_in_memory_result(counts_adata, tmp_path, monkeypatch,
                                                    method):
    import anndata as ad

    import scfill.rows
    from scfill.pipeline import impute_to_file

    monkeypatch.setattr(scfill.rows, "BLOCK_ELEMENTS", 40 * 16)  # 16-row blocks
    adata = _set_aside(counts_adata)
    options = {"labels_key": "group", "counts_layer": True,
               "params": {"subset_size": 8, "epochs": 1} if method == "cnnimpute" else None}
    memory = scfill.impute(adata, method, copy=True, **options)
    impute_to_file(adata, tmp_path / "out.h5ad", method, **options)
    back = ad.read_h5ad(tmp_path / "out.h5ad")
    storage = back.uns["scfill"]["storage"]
    for name in memory.layers:
        stored = back.layers[name]
        dense = stored.toarray() if sp.issparse(stored) else stored
        assert storage[name]["format"] == ("csr" if sp.issparse(stored) else "dense")
        np.testing.assert_array_equal(dense, memory.layers[name].toarray())
    # knn fills every zero: dense; the dropout probabilities sit at zeros only: CSR
    if method == "knn":
        assert storage["imputed"]["format"] == "dense"
    else:
        assert storage["dropout_probability"]["format"] == "csr"
    assert "imputed" not in adata.layers and adata.uns["scfill"]["method"] == method
    with pytest.raises(InputError, match="already exists"):
        impute_to_file(adata, tmp_path / "out.h5ad", method, **options)


def test_set_aside_cells_and_genes_keep_their_place(counts_adata, monkeypatch):
    import scfill.rows

    monkeypatch.setattr(scfill.rows, "BLOCK_ELEMENTS", 40 * 16)
    adata = _set_aside(counts_adata)
    out = scfill.impute(adata, "knn", n_top_genes=20, copy=True)
    imputed = out.layers["imputed"].toarray()
    observed = scfill.impute(adata, "none", copy=True).layers["imputed"].toarray()
    assert not imputed[[0, 5, 119]].any() and not imputed[:, [0, 7]].any()
    changed = (imputed != observed).any(axis=0)
    assert 0 < changed.sum() <= 20
    nonzero = observed > 0
    np.testing.assert_array_equal(imputed[nonzero], observed[nonzero])


def test_prepare_without_set_aside_makes_no_copies(counts_adata):
    data = scfill.prepare(counts_adata)
    assert data.layout.whole and data.layout.observed is data.logcounts
    assert data.dropout is None and data.labels is None
    rows, block = slice(0, 4), np.ones((4, counts_adata.n_vars), np.float32)
    assert data.layout.embed(rows, block, fill=data.logcounts)[1] is block
    with_model = scfill.prepare(counts_adata, "cnnimpute", labels_key="group")
    assert with_model.dropout.probability(np.array([3, 1])).shape == (2, counts_adata.n_vars)
    assert with_model.layout.labels_source == "obs['group']"


def test_setting_aside_empty_cells_and_genes_shares_the_values(counts_adata):
    """All-zero cells and genes are left out without copying the stored values: the
    prepared counts and common-space values equal the copied subsets and share memory
    with each other's index array; a gene selection copies."""
    adata = _set_aside(counts_adata)
    data = scfill.prepare(adata)
    cells, genes = data.layout.cells, data.layout.genes
    raw = sp.csr_matrix(adata.X, dtype=np.float32)
    assert (data.counts != raw[cells][:, genes]).nnz == 0
    expected = data.normalizer.transform(raw[cells], np.asarray(raw[cells].sum(axis=1)).ravel())
    np.testing.assert_array_equal(data.logcounts.toarray(), expected[:, genes].toarray())
    assert np.shares_memory(data.counts.indices, data.logcounts.indices)
    assert np.shares_memory(data.logcounts.data, data.layout.observed.data)
    chosen = scfill.prepare(adata, n_top_genes=10)
    assert chosen.n_genes == 10
    assert not np.shares_memory(chosen.logcounts.data, chosen.layout.observed.data)


def test_fitted_model_is_reused_on_new_data(counts_adata, tmp_path):
    from conftest import make_counts

    model = scfill.get_method("maskclass")(epochs=1)
    scfill.impute(counts_adata, model, seed=0)
    trained = model.fitted_.var_names
    new = make_counts(50, 40, seed=9)
    new = new[:, list(reversed(new.var_names))].copy()  # other cells, genes in other order
    new.obs_names = [f"new{i}" for i in range(50)]
    scfill.impute(new, model)
    info = new.uns["scfill"]
    assert info["fitted_here"] is False
    assert info["normalizer"] == model.fitted_.normalizer.to_dict()
    assert new.layers["imputed"].shape == new.shape and model.fitted_.var_names == trained
    with pytest.raises(InputError, match="cannot be used with a fitted model"):
        scfill.impute(new, model, n_top_genes=5)


def test_cli_saves_and_reuses_a_model(counts_adata, tmp_path):
    import anndata as ad

    from scfill.cli import main

    source = tmp_path / "in.h5ad"
    counts_adata.write_h5ad(source)
    first, second = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    assert main(["impute", str(source), "-o", str(first), "--method", "maskclass",
                 "--param", "epochs=1", "--save-model", str(tmp_path / "m")]) == 0
    assert main(["impute", str(source), "-o", str(second), "--model", str(tmp_path / "m"),
                 "--no-dropout-layer"]) == 0
    a, b = ad.read_h5ad(first), ad.read_h5ad(second)
    assert (a.layers["imputed"] != b.layers["imputed"]).nnz == 0
    assert "dropout_probability" in a.layers and "dropout_probability" not in b.layers
    assert not b.uns["scfill"]["fitted_here"]
    assert main(["impute", str(source), "-o", str(tmp_path / "c.h5ad"), "--model",
                 str(tmp_path / "m"), "--method", "knn"]) == 2
    assert main(["impute", str(source), "-o", str(tmp_path / "c.h5ad"), "--method", "knn",
                 "--save-model", str(tmp_path / "m")]) == 2  # not empty


def test_row_block_helpers_match_scipy(monkeypatch):
    import scfill.rows
    from scfill.preprocess import nonempty
    from scfill.rows import column_max

    monkeypatch.setattr(scfill.rows, "BLOCK_ELEMENTS", 8 * 7)  # 7-row blocks
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((50, 8)) < 0.6, 0, rng.poisson(3, (50, 8))).astype(np.float32)
    dense[4] = 0
    dense[:, 2] = 0
    counts = sp.csr_matrix(dense)
    np.testing.assert_array_equal(column_max(counts), dense.max(axis=0))
    cells, genes = nonempty(counts)
    np.testing.assert_array_equal(cells, dense.any(axis=1))
    np.testing.assert_array_equal(genes, dense.any(axis=0))
    lib = library_size(counts)
    norm = LogNormalizer.median(lib[cells])
    safe = np.where(cells, lib, 1.0)
    shared = norm.transform(counts, safe, share_structure=True)
    copied = norm.transform(counts, safe)
    assert np.shares_memory(shared.indices, counts.indices)
    assert not np.shares_memory(copied.indices, counts.indices)
    np.testing.assert_array_equal(shared.toarray(), copied.toarray())
    expected = np.log1p(dense * norm.target / safe[:, None])
    np.testing.assert_allclose(copied.toarray(), expected, rtol=1e-5)


def test_prepare_never_changes_the_input(counts_adata):
    counts = counts_adata.X.astype(np.float32)
    counts.data[:5] = 0  # stored zeros: prepare works on a canonical copy
    counts_adata.X = counts
    before = counts_adata.X.copy()
    data = scfill.prepare(counts_adata)
    assert counts_adata.X.nnz == before.nnz and (counts_adata.X != before).nnz == 0
    assert data.counts.nnz == before.nnz - 5
