"""Tests of scfill.dropout.gamma_normal against a plain per-gene copy of scImpute's EM."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import digamma
from scipy.stats import gamma as gamma_dist
from scipy.stats import norm

from scfill.dropout import estimate
from scfill.dropout import gamma_normal as gn
from scfill.errors import InputError

POINT = np.log10(1.01)


# --- a straightforward reference: scImpute's get_mix, one gene at a time -----------------
def _weights(x, p):
    lam, a, b, mu, sd = p
    pz1 = lam * gamma_dist.pdf(x, a, scale=1 / b)
    pz2 = (1 - lam) * norm.pdf(x, mu, sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        pz = pz1 / (pz1 + pz2)
    pz[pz1 == 0] = 0
    return pz


def _gamma_update(x, w):
    s, t, u = w.sum(), (w * x).sum(), (w * np.log(x)).sum()
    v = -u / s - np.log(s / t)
    if v <= 0:
        return 20.0, 20.0 * s / t
    a0 = (3 - v + np.sqrt((v - 3) ** 2 + 24 * v)) / 12 / v
    if a0 >= 20:
        a = 20.0
    else:
        f = lambda a: np.log(a) - digamma(a) - v  # noqa: E731
        lo, hi = 0.5 * a0, 2 * a0
        while f(lo) < 0:
            lo /= 2
        while f(hi) > 0:
            hi *= 2
        a = brentq(f, lo, hi, xtol=1e-15, rtol=1e-15)
    return a, a * s / t


def reference_get_mix(x, point, *, init_alpha=0.5, ddof=1, sigma_floor=None, max_iter=100):
    """Returns (lam, alpha, beta, mu, sigma) or None where scImpute's fit fails."""
    lam = np.mean(x == point) or 0.01
    above = x[x > point]
    sd = np.std(above, ddof=ddof) if above.size > ddof else 0.0
    if sd == 0 and sigma_floor is not None:
        sd = sigma_floor
    p = [lam, init_alpha, 1.0, above.mean(), sd]
    if p[4] <= 0:
        return None
    old = 0.0
    for _ in range(max_iter):
        w1 = _weights(x, p)
        w2 = 1 - w1
        if w1.sum() <= 0 or w2.sum() <= 0:
            return None
        mu = (w2 * x).sum() / w2.sum()
        sd = np.sqrt((w2 * (x - mu) ** 2).sum() / w2.sum())
        a, b = _gamma_update(x, w1)
        p = [w1.mean(), a, b, mu, sd]
        if sd <= 0:
            return None
        dens = p[0] * gamma_dist.pdf(x, a, scale=1 / b) + (1 - p[0]) * norm.pdf(x, mu, sd)
        loglik = np.log10(dens).sum()
        if not np.isfinite(loglik):
            return None
        if (loglik - old) ** 2 <= 0.5:
            break
        old = loglik
    return p


# --- a tiny Splatter-like generator with known dropouts ----------------------------------
def simulate_counts(n_cells=300, n_genes=120, n_groups=3, seed=0, dropout_mid=0.0):
    """NB counts with group DE and logistic dropout in log mean; returns counts and truth."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(n_groups, size=n_cells)
    base = rng.gamma(0.6, 1 / 0.3, size=n_genes)
    de = np.exp(rng.normal(0, 0.8, size=(n_groups, n_genes)) * (rng.random((n_groups, n_genes))
                                                                 < 0.2))
    lib = rng.lognormal(0, 0.3, size=n_cells)
    means = base[None, :] * de[groups] * lib[:, None]
    true = rng.poisson(rng.gamma(5.0, means / 5.0))
    p_drop = 1 / (1 + np.exp(1.0 * (np.log(means) - dropout_mid)))
    dropped = (rng.random(true.shape) < p_drop) & (true > 0)
    observed = np.where(dropped, 0, true)
    keep_g = observed.sum(0) > 0
    keep_c = observed[:, keep_g].sum(1) > 0
    observed, true, dropped = (a[keep_c][:, keep_g] for a in (observed, true, dropped))
    return sp.csr_matrix(observed.astype(np.float32)), true, dropped, groups[keep_c]


def _library(counts):
    return np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()


# --- tests -----------------------------------------------------------------------------
def test_em_recovers_parameters_of_a_synthetic_mixture():
    rng = np.random.default_rng(1)
    n, genes = 3000, 20
    truth = dict(lam=rng.uniform(0.3, 0.6, genes), alpha=rng.uniform(1.5, 3, genes),
                 beta=rng.uniform(8, 15, genes), mu=rng.uniform(2.5, 3.5, genes),
                 sigma=rng.uniform(0.3, 0.5, genes))
    is_gamma = rng.random((n, genes)) < truth["lam"]
    x = np.where(is_gamma, rng.gamma(truth["alpha"], 1 / truth["beta"], (n, genes)),
                 rng.normal(truth["mu"], truth["sigma"], (n, genes)))
    x = np.clip(x, 1e-3, None)
    fit = gn.fit_mixture(sp.csc_matrix(x), POINT)
    assert np.all(fit.status == gn.FITTED)
    assert np.all(fit.converged)
    np.testing.assert_allclose(fit.lam, truth["lam"], atol=0.04)
    np.testing.assert_allclose(fit.mu, truth["mu"], atol=0.05)
    np.testing.assert_allclose(fit.sigma, truth["sigma"], rtol=0.1)
    gamma_mean = fit.alpha / fit.beta
    np.testing.assert_allclose(gamma_mean, truth["alpha"] / truth["beta"], rtol=0.1)
    np.testing.assert_allclose(fit.alpha, truth["alpha"], rtol=0.25)


@pytest.mark.parametrize("variant", ["scimpute", "scgacl"])
def test_vectorised_em_matches_per_gene_reference(variant):
    counts, _, _, _ = simulate_counts(n_cells=150, n_genes=300, n_groups=1, seed=2)
    values, point, _ = gn.transform_values(counts, _library(counts), "log10_cpm")
    fit = gn.fit_mixture(values, point, variant=variant)
    spec = gn.VARIANTS[variant]
    dense = values.toarray()
    dense[dense == 0] = point
    compared = 0
    for j in range(dense.shape[1]):
        x = dense[:, j]
        if np.all(x == point):
            assert fit.status[j] == gn.ALL_ZERO
            continue
        if spec.max_point_fraction and np.mean(x == point) > spec.max_point_fraction:
            assert fit.status[j] == gn.TOO_SPARSE
            continue
        ref = reference_get_mix(x, point, init_alpha=spec.init_alpha, ddof=spec.sd_ddof,
                                sigma_floor=spec.sigma_floor)
        if ref is None:
            assert fit.status[j] in (gn.SIGMA_ZERO, gn.EMPTY, gn.NONFINITE), j
            continue
        assert fit.status[j] == gn.FITTED, j
        got = [fit.lam[j], fit.alpha[j], fit.beta[j], fit.mu[j], fit.sigma[j]]
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9, err_msg=f"gene {j}")
        compared += 1
    assert compared > 100


def test_solve_alpha_inverts_log_minus_digamma():
    alpha = np.array([0.05, 0.3, 1.0, 4.0, 15.0])
    v = np.log(alpha) - digamma(alpha)
    np.testing.assert_allclose(gn.solve_alpha(v), alpha, rtol=1e-10)
    assert gn.solve_alpha(np.array([0.0, -1.0]))[0] == gn.ALPHA_CAP
    # a start at or above the cap is capped, as scImpute does
    assert gn.solve_alpha(np.array([1e-4]))[0] == gn.ALPHA_CAP


def test_probability_only_at_zeros_and_in_unit_interval():
    counts, _, _, groups = simulate_counts(seed=3)
    result = estimate("gamma_normal", counts, _library(counts), labels=groups)
    prob = result.matrix()
    assert sp.isspmatrix_csr(prob) and prob.dtype == np.float32
    assert prob.shape == counts.shape
    assert counts.multiply(prob != 0).nnz == 0  # never at a non-zero count
    assert prob.data.min() > 0 and prob.data.max() <= 1
    # the value at a zero is the group × gene zero probability
    cells, genes = prob.nonzero()
    code = np.searchsorted(result.params["groups"], groups[cells])
    np.testing.assert_allclose(prob.data, result.params["zero_probability"][code, genes])
    assert result.params["lambda"].shape == (3, counts.shape[1])
    total = sum(result.summary["status"].values())
    assert total == result.summary["fits"] == 3 * counts.shape[1]


def test_identifies_dropouts_better_than_chance():
    counts, _, dropped, groups = simulate_counts(n_cells=400, n_genes=150, seed=4,
                                                 dropout_mid=1.0)
    prob = estimate("gamma_normal", counts, _library(counts), labels=groups).matrix()
    zeros = counts.toarray() == 0
    called = prob.toarray()[zeros] > 0.5
    truth = dropped[zeros]
    accuracy = np.mean(called == truth)
    assert accuracy > max(truth.mean(), 1 - truth.mean())


def test_edge_cases_give_finite_defined_results():
    n = 40
    dense = np.zeros((n, 5), dtype=np.float32)
    dense[:, 0] = np.arange(n) % 7 + 1          # no zeros at all
    dense[3, 1] = 5                              # one non-zero
    dense[: n // 2, 2] = 4                       # constant non-zeros
    dense[:, 3] = 0                              # all zero in the group (gene kept for others)
    dense[::2, 4] = np.arange(n // 2) + 1        # ordinary
    counts = sp.csr_matrix(np.vstack([dense, np.ones((2, 5), np.float32)]))
    labels = np.r_[np.zeros(n), [1, 2]]          # groups of 40, 1 and 1 cells
    for variant in ("scimpute", "scgacl"):
        for transform in ("log10_cpm", "ln_counts"):
            res = gn.dropout_probability(counts, _library(counts), labels=labels,
                                         variant=variant, transform=transform)
            assert np.all(np.isfinite(res.matrix().data))
            zp = res.params["zero_probability"]
            assert np.all(np.isfinite(zp)) and zp.min() >= 0 and zp.max() <= 1
            status = res.params["status"]
            assert status[0, 3] == gn.ALL_ZERO
            assert status[0, 1] != gn.FITTED and zp[0, 1] == 0
            assert np.all(status[1:] != gn.FITTED)  # one cell: nothing to fit
            assert zp[0, 3] == 0


def test_scimpute_fails_constant_gene_and_scgacl_skips_sparse_gene():
    n = 100
    dense = np.zeros((n, 3), np.float32)
    dense[:50, 0] = 3                # constant non-zeros: sd 0
    dense[:3, 1] = [2, 5, 9]         # 97 % zeros
    dense[:, 2] = np.arange(n) % 5 + 1
    counts = sp.csr_matrix(dense)
    a = gn.dropout_probability(counts, _library(counts), transform="ln_counts")
    b = gn.dropout_probability(counts, _library(counts), transform="ln_counts",
                               variant="scgacl")
    assert a.params["status"][0, 0] == gn.SIGMA_ZERO
    assert a.summary["status"]["failed_sigma_zero"] == 1
    assert b.params["status"][0, 1] == gn.TOO_SPARSE
    assert b.params["status"][0, 0] != gn.SIGMA_ZERO  # scGACL floors sd at 0.01


def test_chunking_does_not_change_the_result():
    counts, _, _, groups = simulate_counts(seed=5)
    lib = _library(counts)
    a = gn.dropout_probability(counts, lib, labels=groups)
    b = gn.dropout_probability(counts, lib, labels=groups, block_entries=50)
    np.testing.assert_array_equal(a.params["status"], b.params["status"])
    np.testing.assert_allclose(a.matrix().toarray(), b.matrix().toarray(), rtol=1e-6)


def test_valid_gene_filter_counts_low_mean_genes():
    counts, _, _, _ = simulate_counts(seed=6)
    res = gn.dropout_probability(counts, _library(counts), transform="ln_counts")
    st = res.params["status"][0]
    mu = res.params["mu"][0]
    assert np.sum(st == gn.LOW_MEAN) > 0
    assert np.all(mu[st == gn.LOW_MEAN] <= np.log(2.01))  # filtered genes keep their fit
    assert np.all(res.params["zero_probability"][0, st == gn.LOW_MEAN] == 0)
    assert res.summary["status"]["filtered_low_mean"] == np.sum(st == gn.LOW_MEAN)
    # every kept gene has μ above the filter threshold, in natural-log units
    assert np.all(mu[st == gn.FITTED] > np.log(2.01))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variant": "magic"}, "parameter variant='magic' is not allowed"),
    ({"transform": "log2"}, "parameter transform='log2' is not allowed"),
    ({"max_iter": 0}, "parameter max_iter=0 is out of range"),
    ({"block_entries": 0}, "parameter block_entries=0 is out of range"),
    ({"labels": np.zeros(3)}, "labels have shape (3,)"),
])
def test_bad_options_raise_input_error(kwargs, message):
    counts, _, _, _ = simulate_counts(n_cells=30, n_genes=10)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gn.dropout_probability(counts, _library(counts), **kwargs)


def test_bad_inputs_raise_input_error():
    counts, _, _, _ = simulate_counts(n_cells=30, n_genes=10)
    lib = _library(counts)
    with pytest.raises(InputError, match="must be a scipy sparse matrix"):
        gn.dropout_probability(counts.toarray(), lib)
    with pytest.raises(InputError, match="library_size has 29 values for 30 cells"):
        gn.dropout_probability(counts, lib[1:])
    with pytest.raises(InputError, match="library_size has zero"):
        gn.dropout_probability(counts, np.zeros_like(lib))
    bad = counts.copy()
    bad.data[0] = -1
    with pytest.raises(InputError, match="negative or non-finite"):
        gn.dropout_probability(bad, lib)
