"""Tests of scfill.dropout.zinb (MaskClass's biozero probability)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scfill.dropout import estimate, zinb
from scfill.errors import InputError


def nb_counts(means, n_cells=400, dispersion=0.2, dropout=0.1, seed=0, lib_sd=0.3):
    """NB counts per gene mean, random (mean-independent) dropout; returns counts, dropped."""
    rng = np.random.default_rng(seed)
    lib = rng.lognormal(0, lib_sd, size=n_cells)
    mu = lib[:, None] * np.asarray(means)[None, :]
    true = rng.poisson(rng.gamma(1 / dispersion, mu * dispersion))
    dropped = (rng.random(true.shape) < dropout) & (true > 0)
    observed = np.where(dropped, 0, true).astype(np.float32)
    return sp.csr_matrix(observed), dropped


def _library(counts):
    return np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()


@pytest.fixture(scope="module")
def data():
    means = np.geomspace(0.05, 50, 60)
    counts, dropped = nb_counts(means)
    return counts, dropped


def test_biozero_in_unit_interval_and_only_at_zeros(data):
    counts, _ = data
    p_bio = zinb.biozero_probability(counts, _library(counts))
    assert sp.isspmatrix_csr(p_bio) and p_bio.dtype == np.float32
    assert p_bio.shape == counts.shape
    assert counts.multiply(p_bio != 0).nnz == 0
    assert p_bio.data.min() >= 0 and p_bio.data.max() <= 1
    # every zero gets a (positive) value
    assert p_bio.nnz == np.prod(counts.shape) - counts.nnz


def test_dropout_is_one_minus_biozero(data):
    counts, _ = data
    lib = _library(counts)
    p_bio = zinb.biozero_probability(counts, lib).toarray()
    result = estimate("zinb-paper", counts, lib, labels=np.zeros(counts.shape[0]))
    drop = result.matrix().toarray()
    zeros = counts.toarray() == 0
    np.testing.assert_allclose(drop[zeros], 1 - p_bio[zeros], atol=1e-6)
    assert np.all(drop[~zeros] == 0)
    assert result.params["dropout_curve"][1] <= 0
    assert result.summary["model"] == "zinb-paper"


def test_biozero_higher_for_low_mean_genes():
    low, high = 0.2, 20.0
    counts, _ = nb_counts(np.r_[np.full(20, low), np.full(20, high)], n_cells=600, seed=1)
    p_bio = zinb.biozero_probability(counts, _library(counts)).toarray()
    zeros = counts.toarray() == 0
    low_mean = p_bio[:, :20][zeros[:, :20]].mean()
    high_mean = p_bio[:, 20:][zeros[:, 20:]].mean()
    assert low_mean > high_mean + 0.3


def test_zeros_of_dropped_entries_get_higher_dropout_probability(data):
    counts, dropped = data
    prob = zinb.dropout_probability(counts, _library(counts)).matrix().toarray()
    zeros = counts.toarray() == 0
    assert prob[zeros & dropped].mean() > prob[zeros & ~dropped].mean()


def test_sparsity_adjustment_lowers_biozero_of_sparse_cells():
    counts, _ = nb_counts(np.geomspace(0.1, 20, 50), n_cells=300, seed=2, lib_sd=0.8)
    lib = _library(counts)
    with_adj = zinb.fit_zinb(counts, lib)
    without = zinb.fit_zinb(counts, lib, sparsity_weight=0.0)
    rows = slice(0, counts.shape[0])
    ratio = with_adj.biozero(rows) / without.biozero(rows)
    zero_fraction = 1 - np.diff(counts.indptr) / counts.shape[1]
    sparse_cells = zero_fraction >= np.percentile(zero_fraction, 95)
    dense_cells = zero_fraction <= np.percentile(zero_fraction, 5)
    np.testing.assert_allclose(ratio[sparse_cells], 1 - zinb.SPARSITY_WEIGHT, rtol=1e-9)
    np.testing.assert_allclose(ratio[dense_cells], 1.0, rtol=1e-9)
    order = np.argsort(zero_fraction)
    assert np.all(np.diff(ratio[order, 0]) <= 1e-12)  # more zeros, smaller p_bio


def test_dispersion_moments_recover_truth():
    counts, _ = nb_counts(np.full(200, 10.0), n_cells=2000, dispersion=0.3, dropout=0.0,
                          lib_sd=0.2, seed=3)
    fit = zinb.fit_zinb(counts, _library(counts), dispersion_shrinkage=0.0)
    assert abs(np.median(fit.dispersion) - 0.3) < 0.05


def test_dropout_curve_is_fitted_decreasing():
    # dropout falling with the mean gives a clearly negative slope; flat dropout does not
    rng = np.random.default_rng(4)
    means = np.geomspace(0.1, 50, 80)
    counts, _ = nb_counts(means, dropout=0.0, seed=4)
    dense = counts.toarray()
    p_drop = 1 / (1 + np.exp(1.5 * (np.log(means) - 0.5)))
    falling = np.where(rng.random(dense.shape) < p_drop, 0, dense)
    flat = np.where(rng.random(dense.shape) < p_drop.mean(), 0, dense)
    slopes = [zinb.fit_zinb(sp.csr_matrix(m), _library(sp.csr_matrix(m))).slope
              for m in (falling, flat)]
    assert slopes[0] < -0.3
    assert slopes[0] < slopes[1] - 0.2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dispersion_shrinkage": 2.0}, "parameter dispersion_shrinkage=2.0 is out of range"),
    ({"min_dispersion": 0.0}, "parameter min_dispersion=0.0 is out of range"),
    ({"sparsity_weight": -0.1}, "parameter sparsity_weight=-0.1 is out of range"),
])
def test_bad_options_raise_input_error(data, kwargs, message):
    counts, _ = data
    with pytest.raises(InputError, match=message):
        zinb.fit_zinb(counts, _library(counts), **kwargs)


def test_bad_library_size_raises_input_error(data):
    counts, _ = data
    with pytest.raises(InputError, match="library_size has zero"):
        zinb.biozero_probability(counts, np.zeros(counts.shape[0]))


def test_dispersion_from_nonzero_counts_is_not_inflated_by_dropouts():
    counts, _ = nb_counts(np.full(100, 5.0), n_cells=1000, dispersion=0.2, dropout=0.4,
                          seed=5)
    lib = _library(counts)
    nonzero = zinb.fit_zinb(counts, lib, dispersion_shrinkage=0.0)
    every = zinb.fit_zinb(counts, lib, dispersion_shrinkage=0.0, dispersion_counts="all")
    assert np.median(every.dispersion) > 2 * np.median(nonzero.dispersion)
    with pytest.raises(InputError, match="parameter dispersion_counts='some' is not allowed"):
        zinb.fit_zinb(counts, lib, dispersion_counts="some")
