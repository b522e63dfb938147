"""Tests of scfill.dropout.zinb_mle (the per-gene ML ZINB) and the model registry."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import polygamma
from sklearn.metrics import roc_auc_score

from scfill.dropout import ZINB_DEFAULT, estimate, zinb_mle
from scfill.errors import InputError


def zinb_counts(means, dispersions, zero_inflation, *, n_cells=3000, seed=0, lib_sd=0.3):
    """ZINB counts with size factors; returns counts CSR, true (pre-dropout) counts, and
    library sizes proportional to the true size factors (with few genes the observed totals
    would be dominated by the noise of the largest genes)."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0, lib_sd, size=n_cells)
    mu = size[:, None] * np.asarray(means)[None, :]
    phi = np.asarray(dispersions)[None, :]
    true = rng.poisson(rng.gamma(1 / phi, mu * phi))
    dropped = rng.random(true.shape) < np.asarray(zero_inflation)[None, :]
    observed = np.where(dropped, 0, true).astype(np.float32)
    counts = sp.csr_matrix(observed)
    return counts, true, 1000.0 * size


@pytest.fixture(scope="module")
def known():
    means = np.array([0.5, 2.0, 5.0, 20.0, 50.0] * 4)
    phis = np.array([0.1] * 10 + [0.5] * 10)
    pis = np.array([0.0, 0.2, 0.5, 0.3, 0.1] * 4)
    counts, true, lib = zinb_counts(means, phis, pis)
    return means, phis, pis, counts, true, lib


def test_trigamma_matches_scipy():
    x = np.concatenate([np.geomspace(1e-4, 1e6, 500), np.arange(1.0, 12.0), [5.5, 6.0]])
    np.testing.assert_allclose(zinb_mle.trigamma(x), polygamma(1, x), rtol=1e-8)


def test_recovers_mean_and_zero_inflation(known):
    means, _, pis, counts, _, lib = known
    fit = zinb_mle.fit_zinb_mle(counts, lib)
    strong = means >= 2
    np.testing.assert_allclose(fit.zero_inflation[0, strong], pis[strong], atol=0.05)
    # μ is per cell of median library size: one common factor relates it to the truth
    ratio = fit.mean[0] / means
    np.testing.assert_allclose(ratio[strong] / np.median(ratio[strong]), 1, atol=0.1)
    assert fit.converged.mean() > 0.9


def test_dispersion_recovered_for_well_measured_genes(known):
    means, phis, _, counts, _, lib = known
    fit = zinb_mle.fit_zinb_mle(counts, lib)
    strong = means >= 5
    np.testing.assert_allclose(np.log(fit.dispersion[0, strong]), np.log(phis[strong]),
                               atol=np.log(1.6))


def test_biozero_is_calibrated_posterior_of_a_true_zero(known):
    _, _, _, counts, true, lib = known
    fit = zinb_mle.fit_zinb_mle(counts, lib)
    p_bio = fit.biozero(slice(None))
    zero = counts.toarray() == 0
    is_true_zero = true[zero] == 0
    # the posterior's mean over zeros matches the share of true zeros, per gene too
    assert abs(p_bio[zero].mean() - is_true_zero.mean()) < 0.02
    per_gene_pred = np.array([p_bio[zero[:, j], j].mean() for j in range(counts.shape[1])])
    per_gene_true = np.array([(true[zero[:, j], j] == 0).mean()
                              for j in range(counts.shape[1])])
    assert np.max(np.abs(per_gene_pred - per_gene_true)) < 0.1


def test_binned_zeros_match_exact_fit(known):
    _, _, _, counts, _, lib = known
    binned = zinb_mle.fit_zinb_mle(counts, lib, n_bins=64)
    exact = zinb_mle.fit_zinb_mle(counts, lib, n_bins=None)
    np.testing.assert_allclose(binned.mean, exact.mean, rtol=0.01)
    np.testing.assert_allclose(binned.zero_inflation, exact.zero_inflation, atol=0.01)
    np.testing.assert_allclose(binned.biozero(slice(0, 50)), exact.biozero(slice(0, 50)),
                               atol=0.01)


def test_size_bins_exact_when_few_distinct_sizes():
    size = np.array([0.5, 1.0, 2.0, 1.0, 0.5])
    code, means = zinb_mle.size_bins(size, 64)
    np.testing.assert_array_equal(means[code], size)
    code, means = zinb_mle.size_bins(np.geomspace(0.1, 10, 1000), 8)
    assert means.size == 8 and np.all(np.diff(means) > 0)


def test_shrinkage_pulls_sparse_genes_to_the_trend():
    means = np.concatenate([np.full(40, 10.0), np.full(10, 0.05)])
    phis = np.full(50, 0.3)
    counts, _, lib = zinb_counts(means, phis, np.zeros(50), n_cells=600, seed=1)
    shrunk = zinb_mle.fit_zinb_mle(counts, lib)
    raw = zinb_mle.fit_zinb_mle(counts, lib, shrink_dispersion=False)
    a0, a1 = shrunk.trend[0]
    trend = np.log(a0 + a1 / shrunk.mean[0])
    sparse = means < 1
    dist_shrunk = np.abs(np.log(shrunk.dispersion[0]) - trend)
    dist_raw = np.abs(np.log(raw.dispersion[0]) - trend)
    assert np.median(dist_shrunk[sparse]) < np.median(dist_raw[sparse])
    # well-measured genes keep their own estimate
    np.testing.assert_allclose(np.log(shrunk.dispersion[0, ~sparse]),
                               np.log(raw.dispersion[0, ~sparse]), atol=0.1)
    assert shrunk.prior_sd[0] >= np.sqrt(zinb_mle.MIN_PRIOR_VARIANCE)


def test_output_at_zeros_only_and_deterministic(known):
    _, _, _, counts, _, lib = known
    first = estimate("zinb-ml", counts, lib)
    second = estimate("zinb-ml", counts, lib)
    p = first.matrix()
    assert sp.isspmatrix_csr(p) and p.dtype == np.float32 and p.shape == counts.shape
    assert counts.multiply(p != 0).nnz == 0
    assert p.data.min() >= 0 and p.data.max() <= 1
    np.testing.assert_array_equal(p.toarray(), second.matrix().toarray())
    assert first.summary["model"] == "zinb-ml"


def test_zinb_names_the_default_and_paper_variant_is_kept(known):
    _, _, _, counts, _, lib = known
    assert ZINB_DEFAULT == "zinb-ml"
    default = estimate("zinb", counts, lib)
    assert default.summary["model"] == ZINB_DEFAULT
    assert estimate("zinb-paper", counts, lib).summary["model"] == "zinb-paper"


def test_by_group_fits_each_group():
    a, _, _ = zinb_counts([5.0, 5.0], [0.2, 0.2], [0.0, 0.0], n_cells=400, seed=2)
    b, _, _ = zinb_counts([5.0, 20.0], [0.2, 0.2], [0.5, 0.0], n_cells=400, seed=3)
    counts = sp.vstack([a, b], format="csr")
    lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    labels = np.repeat(["a", "b"], 400)
    result = zinb_mle.dropout_probability(counts, lib, labels=labels, by_group=True)
    assert result.params["mean"].shape == (2, 2)
    assert result.params["zero_inflation"][1, 0] > 0.4
    assert result.params["zero_inflation"][0, 0] < 0.05
    ignored = zinb_mle.dropout_probability(counts, lib, labels=labels)
    assert ignored.params["mean"].shape == (1, 2)


def test_separates_dropouts_better_than_the_paper_model():
    import scfill
    from scfill.preprocess import library_size, nonempty

    adata = scfill.simulate(preset="scgacl-4", seed=0)
    cells, genes = nonempty(adata.X)
    adata = adata[cells][:, genes]
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    zero = counts.toarray() == 0
    is_dropout = adata.layers["true_counts"].toarray()[zero] > 0
    lib = library_size(counts)
    auc = {m: roc_auc_score(is_dropout, estimate(m, counts, lib).matrix().toarray()[zero])
           for m in ("zinb-ml", "zinb-paper")}
    assert auc["zinb-ml"] > 0.85
    assert auc["zinb-ml"] > auc["zinb-paper"] + 0.2


def test_bad_parameters_raise():
    counts, _, lib = zinb_counts([1.0, 2.0], [0.1, 0.1], [0.0, 0.0], n_cells=20)
    with pytest.raises(InputError):
        zinb_mle.fit_zinb_mle(counts, lib, max_iter=0)
    with pytest.raises(InputError):
        zinb_mle.fit_zinb_mle(counts, lib, n_bins=0)
    with pytest.raises(InputError):
        zinb_mle.fit_zinb_mle(counts, -lib)
    with pytest.raises(InputError, match="max_cells"):
        zinb_mle.fit_zinb_mle(counts, lib, max_cells=0)


def test_gamma_normal_zinb_scores_the_mixtures_genes_with_the_zinb(known):
    _, _, _, counts, _, lib = known
    labels = np.repeat([0, 1], counts.shape[0] // 2)
    hybrid = estimate("gamma_normal-zinb", counts, lib, labels=labels).matrix().toarray()
    mixture = estimate("gamma_normal", counts, lib, labels=labels).matrix().toarray()
    zinb = zinb_mle.dropout_probability(counts, lib, labels=labels,
                                        by_group=True).matrix().toarray()
    imputable = mixture > 0
    assert np.all(hybrid[~imputable] == 0)
    np.testing.assert_allclose(hybrid[imputable], zinb[imputable], rtol=1e-6)


def test_large_groups_are_fitted_on_a_seeded_subset(known):
    """max_cells: the fit uses a seeded subset; every cell keeps its own size factor, and
    the estimates and the dropout ranking agree with the fit on every cell."""
    _, _, _, counts, true, lib = known
    full = zinb_mle.fit_zinb_mle(counts, lib, max_cells=None)
    part = zinb_mle.fit_zinb_mle(counts, lib, max_cells=1000)
    assert (full.fit_cells, part.fit_cells) == (counts.shape[0], 1000)
    np.testing.assert_array_equal(part.size_factor, full.size_factor)
    np.testing.assert_allclose(np.log(part.mean), np.log(full.mean), atol=0.15)
    np.testing.assert_allclose(part.zero_inflation, full.zero_inflation, atol=0.08)
    np.testing.assert_array_equal(zinb_mle.fit_zinb_mle(counts, lib, max_cells=1000).mean,
                                  part.mean)
    assert not np.array_equal(zinb_mle.fit_zinb_mle(counts, lib, max_cells=1000, seed=1).mean,
                              part.mean)
    zero = counts.toarray() == 0
    auc = {name: roc_auc_score(true[zero] > 0, 1 - fit.biozero(slice(None))[zero])
           for name, fit in (("full", full), ("part", part))}
    assert auc["part"] > auc["full"] - 0.01


def test_genes_without_zeros_in_the_fit_get_finite_parameters_and_probabilities():
    """A highly expressed gene with no zero among the fitted cells (f(0) underflows, π = 0)
    used to end with NaN parameters, which made the probabilities of its zeros elsewhere
    NaN (a MaskClass loss of NaN). Now it is fitted, and its zeros are biological."""
    counts, _, lib = zinb_counts([2.0, 1e6], [0.3, 0.01], [0.3, 0.0], n_cells=400, seed=3)
    dense = counts.toarray()
    assert (dense[:, 1] > 0).all()
    dense[-5:, 1] = 0  # zeros only in cells the subset fit does not see
    fit_cells = np.arange(395)
    fit = zinb_mle.fit_zinb_mle(sp.csr_matrix(dense[fit_cells]), lib[fit_cells])
    assert np.isfinite(fit.mean).all() and np.isfinite(fit.dispersion).all()
    assert fit.zero_inflation[0, 1] == 0 and fit.converged.all()
    whole = zinb_mle.fit_zinb_mle(sp.csr_matrix(dense), lib, max_cells=395, seed=0)
    p_bio = whole.biozero(slice(None))
    assert np.isfinite(p_bio).all()


def test_fit_threads_follow_omp_num_threads(monkeypatch):
    """The EM fits use the process's CPUs, at most OMP_NUM_THREADS; bad values are ignored."""
    from scfill.dropout._shared import fit_threads
    from scfill.utils import requested_threads, usable_cpus

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert requested_threads() == 1 and fit_threads() == 1
    for bad in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert requested_threads() is None and fit_threads() == usable_cpus()
