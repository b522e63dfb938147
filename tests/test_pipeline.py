"""The pipeline end to end with the kNN baseline: outputs, conservativeness, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import scfill
from scfill.combine import combine
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
                        library_size(counts_adata.X), labels=codes).probability
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


def test_combine_rules():
    observed = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=np.float32))
    recon = np.full((2, 3), 9.0, dtype=np.float32)
    prob = sp.csr_matrix(np.array([[0, 0.9, 0.2], [0.6, 0, 0.5]], dtype=np.float32))
    dropout = combine(observed, recon, rule="dropout", dropout_probability=prob).toarray()
    np.testing.assert_array_equal(dropout, [[1, 9, 0], [9, 2, 0]])
    np.testing.assert_array_equal(combine(observed, recon, rule="zeros").toarray(),
                                  [[1, 9, 9], [9, 2, 9]])
    np.testing.assert_array_equal(combine(observed, recon, rule="all").toarray(), recon)
    np.testing.assert_array_equal(combine(observed, recon, rule="none").toarray(),
                                  observed.toarray())
    with pytest.raises(InputError, match="unknown combine rule"):
        combine(observed, recon, rule="mean")


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
