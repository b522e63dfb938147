"""ALRA against the rules of its paper (Linderman et al. 2022)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

import scfill
from scfill.errors import InputError
from scfill.external.alra import ALRA, alra, choose_rank


def low_rank_counts(n_cells: int = 300, n_genes: int = 150, rank: int = 4, seed: int = 0):
    """Non-negative log-expression of ``rank`` cell groups with group-specific genes, with
    biological zeros (genes off in a group) and dropouts (random zeros in expressed cells).

    Returns the observed matrix, the true expression and the mask of biological zeros.
    """
    rng = np.random.default_rng(seed)
    groups = np.arange(n_cells) % rank
    on = rng.random((rank, n_genes)) < 0.5
    on[np.arange(rank), np.arange(rank)] = True  # every group has genes
    level = rng.uniform(1.0, 3.0, size=(rank, n_genes)) * on
    truth = level[groups] + rng.normal(0, 0.05, (n_cells, n_genes)) * on[groups]
    truth = np.maximum(truth, 0)
    biological_zero = truth == 0
    dropout = rng.random(truth.shape) < 0.3
    observed = np.where(dropout, 0.0, truth)
    return observed, truth, biological_zero


def test_rank_is_read_from_the_singular_value_gaps():
    rng = np.random.default_rng(1)
    for rank in (3, 7):
        signal = rng.normal(size=(400, rank)) @ rng.normal(size=(rank, 200)) * 3
        noisy = signal + rng.normal(0, 0.1, signal.shape)
        choice = choose_rank(noisy, seed=0)
        assert choice.k == rank
        assert not choice.fallback
        # the rank-th gap is far above the noise gaps, the next ones are not
        assert choice.n_sds[rank - 1] > 6
        assert np.all(choice.n_sds[rank:] <= 6)
        assert choice.singular_values.size == 100


def test_rank_choice_adapts_to_small_matrices_and_rejects_tiny_ones():
    rng = np.random.default_rng(2)
    small = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 30)) + rng.normal(0, .05, (60, 30))
    choice = choose_rank(small, seed=0)
    assert choice.singular_values.size == 29
    assert choice.k == 2
    with pytest.raises(InputError, match="ALRA needs at least 8 cells and genes"):
        choose_rank(np.ones((5, 40)))


def test_no_gap_above_threshold_falls_back_to_the_largest_gap():
    rng = np.random.default_rng(3)
    choice = choose_rank(rng.normal(size=(200, 120)), n_sd=1e6, seed=0)
    assert choice.fallback
    assert choice.k == int(np.argmax(-np.diff(choice.singular_values))) + 1


def test_threshold_is_the_per_gene_quantile_of_the_low_rank_matrix():
    observed, _, _ = low_rank_counts()
    imputed, _ = alra(observed, k=4, seed=0)
    u, s, vt = randomized_svd(observed, n_components=4, n_iter=10, random_state=0)
    low_rank = (u * s).astype(np.float32) @ vt.astype(np.float32)
    threshold = np.abs(np.quantile(low_rank, 1e-3, axis=0))
    below = low_rank <= threshold
    # at or below the threshold: zero unless an observed value was restored there
    assert np.all(imputed[below & (observed == 0)] == 0)
    np.testing.assert_allclose(imputed[below & (observed > 0)], observed[below & (observed > 0)],
                               rtol=1e-6)
    # the threshold differs between genes (it is per gene, not global)
    assert np.unique(np.round(threshold, 4)).size > 10


def test_rescaling_matches_the_observed_nonzero_mean_and_sd():
    observed, _, _ = low_rank_counts(seed=4)
    imputed, _ = alra(observed, k=4, seed=0)
    u, s, vt = randomized_svd(observed, n_components=4, n_iter=10, random_state=0)
    low_rank = (u * s).astype(np.float32) @ vt.astype(np.float32)
    kept = low_rank > np.abs(np.quantile(low_rank, 1e-3, axis=0))
    # genes where nothing was clipped or restored: the kept values are exactly rescaled
    clean = (((imputed > 0) == kept).all(axis=0)
             & ~((observed > 0) & ~kept).any(axis=0)
             & ((observed > 0).sum(axis=0) > 2))
    assert clean.sum() >= 10
    for gene in np.flatnonzero(clean)[:10]:
        values = imputed[kept[:, gene], gene]
        target = observed[observed[:, gene] > 0, gene]
        assert values.mean() == pytest.approx(target.mean(), rel=1e-4)
        assert values.std(ddof=1) == pytest.approx(target.std(ddof=1), rel=1e-3)
        # an increasing affine map of the low-rank values
        slope = np.polyfit(low_rank[kept[:, gene], gene], values, 1)[0]
        assert slope > 0


def test_biological_zeros_stay_zero_and_dropouts_are_filled():
    observed, _, biological_zero = low_rank_counts(seed=5)
    imputed, choice = alra(sp.csr_matrix(observed), k=4, seed=0)
    assert choice is None
    dropout = (observed == 0) & ~biological_zero
    assert (imputed[biological_zero] == 0).mean() > 0.95
    assert (imputed[dropout] > 0).mean() > 0.9


def test_observed_nonzeros_are_never_zeroed():
    observed, _, _ = low_rank_counts(seed=6)
    # a gene with a few large values in cells where the model predicts nothing
    observed[:5, 0] = 0
    observed[:3, 0] = 7.0
    imputed, _ = alra(observed, k=4, seed=0)
    assert np.all(imputed[observed > 0] > 0)
    assert imputed.dtype == np.float32
    assert np.all(imputed >= 0)


def test_sparse_and_dense_input_agree():
    observed, _, _ = low_rank_counts(seed=7)
    dense, _ = alra(observed, k=4, seed=0)
    sparse, _ = alra(sp.csr_matrix(observed), k=4, seed=0)
    np.testing.assert_allclose(dense, sparse, atol=1e-5)


def test_bad_rank_is_rejected():
    observed, _, _ = low_rank_counts()
    with pytest.raises(InputError, match="ALRA rank k=150 is out of range"):
        alra(observed, k=150)


@pytest.mark.parametrize(("params", "message"), [
    ({"k": 0}, "parameter k=0 is out of range"),
    ({"quantile": 0.7}, "parameter quantile=0.7 is out of range"),
    ({"noise_start": 99}, "parameter noise_start=99 is out of range"),
    ({"n_sd": -1.0}, "parameter n_sd=-1.0 is out of range"),
])
def test_method_parameters_are_checked(params, message):
    with pytest.raises(InputError, match=message):
        ALRA(**params).check_params()


def test_registered_method_runs_in_the_pipeline(counts_adata):
    out = scfill.impute(counts_adata, method="alra", seed=0, copy=True)
    imputed = out.layers["imputed"].toarray()
    observed = counts_adata.X.toarray()
    assert imputed.shape == observed.shape
    assert np.all(imputed[observed > 0] > 0)
    assert out.uns["scfill"]["method"] == "alra"
    assert out.uns["scfill"]["info"]["k"] >= 1
    assert "dropout_probability" not in out.layers
