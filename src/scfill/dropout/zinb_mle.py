"""ZINB biozero model fitted per gene by maximum likelihood, with a shrunk dispersion.

The model is MaskClass's (§2.6, ``specs/dropout.md``): an observed count is a latent count
``t_ij ~ NB(ℓ_i·μ_j, φ_j)`` dropped to 0 with probability ``π_j``. Where the paper fits
φ by moments and the dropout rate by a logistic curve of the mean, here every gene's
(μ_j, φ_j, π_j) maximise its own ZINB likelihood over all cells, with the cells' library
size factors ``ℓ_i = library size / median`` as offsets, and φ_j is shrunk across genes:

- **Fit**: EM on the zero-inflation indicator. E-step: a zero's posterior probability of
  being a dropout, ``z = π / (π + (1 − π)·f_ij(0))``; M-step: ``π = mean(z)``, then one
  Newton step for ``log μ`` and one for ``log(1/φ)`` on the ``(1 − z)``-weighted NB
  likelihood (exact gradients and second derivatives; steps bounded, a non-concave
  ``log(1/φ)`` direction takes a bounded gradient step). All genes of a chunk (about
  ``block_elements`` stored entries) are updated together as arrays: non-zero counts are
  visited as a flat array, and a gene's zeros, whose likelihood depends on the cell only
  through ℓ_i, are counted per bin of size factors (``n_bins`` equal-count bins of log ℓ,
  evaluated at the bin mean; ``None`` is exact). A gene stops when its log-likelihood
  changes by less than ``tol`` per cell. No dense cells × genes array is built. A group of
  more than ``max_cells`` cells is fitted on a seeded random subset of that many (default
  :data:`FIT_CELLS`); every cell's probabilities then use its own size factor.
- **Dispersion shrinkage**: DESeq2's empirical Bayes (Love, Huber & Anders 2014, *Genome
  Biology* 15:550, "Shrinkage estimation of dispersion"). The gene-wise ML dispersions
  give a mean–dispersion trend ``φ_tr(μ) = a0 + a1/μ`` (DESeq2's parametric trend, here a
  robust least-squares fit on the log scale); the prior of ``log φ_j`` is Normal around
  ``log φ_tr(μ_j)`` with variance ``max(s² − ψ₁((n − p)/2), 0.25)``, ``s`` the MAD of the
  log residuals, ``ψ₁`` the trigamma function, ``n`` cells and ``p = 3`` parameters
  (DESeq2's rule, including its floor 0.25). The EM is then rerun from the ML fit with
  this prior added to the ``log φ`` step (maximum a posteriori). Genes with little
  information (few non-zero cells) are pulled to the trend; well-measured genes keep
  their own estimate.
- **Biozero probability**: the posterior of a true zero given an observed zero,
  ``p_bio = Pr(t = 0 | c = 0) = f(0) / (π + (1 − π)·f(0))``. This is the quantity the
  paper defines (§2.6, "p_bio(i, j) = Pr(t_ij = 0 | c_ij = 0)"); the paper's formula
  ``(1 − δ)·f(0) / (δ + (1 − δ)·f(0))`` is instead ``Pr(t = 0, not dropped | c = 0)`` and
  counts a dropped true zero as a dropout, which biases p_bio low wherever δ is large
  (``scfill.dropout.zinb`` keeps the paper's formula as the ``zinb-paper`` model).
- No cell-sparsity adjustment: the library size factors already carry each cell's depth.

``labels`` (cell groups) fit one model per group when given; the default is one model over
all cells, as MaskClass's paper does.

Measured against the paper's model on the simulator's ground truth:
``benchmarks/results/dropout_models.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares
from scipy.special import digamma, gammaln

from scfill._logging import logger, timed
from scfill.dropout._shared import check_inputs, gene_chunks, thread_map
from scfill.dropout.model import DropoutModel, Rows
from scfill.utils import check_number

#: Bounds of the dispersion φ (1/φ is the NB size); beyond them the likelihood is flat.
MIN_DISPERSION, MAX_DISPERSION = 1e-4, 1e3
#: Largest zero-inflation π (π = 1 would make the NB part unidentifiable).
MAX_ZERO_INFLATION = 0.999
#: DESeq2's floor on the prior variance of log dispersion (Love et al. 2014, Methods).
MIN_PRIOR_VARIANCE = 0.25
#: Parameters per gene (μ, φ, π): the p of DESeq2's expected sampling variance ψ₁((n−p)/2).
N_PARAMS = 3
#: Largest Newton step in log μ and in log(1/φ) per iteration (keeps EM stable).
MAX_STEP = 1.0
#: Scale of the robust (soft-L1) loss of the trend fit, in log-dispersion units.
TREND_LOSS_SCALE = 1.0
#: Genes need this many non-zero cells to enter the dispersion trend.
TREND_MIN_NONZERO = 10
#: Bins of size factors at which the zeros are evaluated while fitting (quantiles of log ℓ).
SIZE_BINS = 64
#: Stored (non-zero) entries per gene chunk. An EM step holds about twenty float64
#: temporaries of the chunk's size (~320 MiB here); chunks are built one at a time.
BLOCK_ELEMENTS = 1 << 21
#: Cells per group the fit uses: a larger group is fitted on a seeded random subset of this
#: many cells, and its probabilities are still computed for every cell with the cell's own
#: size factor. Three parameters per gene need far fewer cells than an atlas has; the fit's
#: time then no longer grows with the number of cells. Measured against the fit on every
#: cell (benchmarks/results/zinb_fit_cells.md, 4 presets × 2 seeds): ROC AUC of the dropout
#: calls 0.002 lower at most, F1, Brier and calibration error equal or better, the fit
#: 4.7-5.8 × faster at 5,000 cells.
FIT_CELLS = 1000
#: trigamma: shift x up to this value before the asymptotic series.
TRIGAMMA_SHIFT = 6
_TINY = 1e-300


@dataclass
class ZinbMleFit:
    """Fitted per-gene ZINB.

    Attributes
    ----------
    size_factor
        ℓ_i = library size / median library size.
    mean, dispersion, zero_inflation
        μ, φ (after shrinkage) and π per group and gene (groups × genes).
    ml_dispersion
        φ before shrinkage (the gene-wise ML estimate), groups × genes.
    trend
        (a0, a1) of ``φ_tr(μ) = a0 + a1/μ`` per group (groups × 2).
    prior_sd
        Standard deviation of the log-dispersion prior per group.
    groups
        Group code of each cell (all 0 without labels).
    iterations, converged
        EM iterations run and convergence flag per group and gene (of the last pass).
    fit_cells
        Cells the fit used, all groups together (see ``max_cells``).
    """

    size_factor: np.ndarray
    mean: np.ndarray
    dispersion: np.ndarray
    zero_inflation: np.ndarray
    ml_dispersion: np.ndarray
    trend: np.ndarray
    prior_sd: np.ndarray
    groups: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    fit_cells: int

    def biozero(self, rows: slice) -> np.ndarray:
        """``Pr(t = 0 | c = 0)`` for every entry of the cells ``rows`` (dense rows × genes)."""
        g = self.groups[rows]
        mu = self.size_factor[rows, None] * self.mean[g]
        phi = self.dispersion[g]
        f0 = np.exp(-np.log1p(phi * mu) / phi)
        pi = self.zero_inflation[g]
        # f(0) underflows for a highly expressed gene: then a zero is a dropout where π > 0
        # and (the limit of f0 / f0) biological where π = 0
        denominator = pi + (1 - pi) * f0
        return np.divide(f0, denominator, out=(pi == 0).astype(f0.dtype),
                         where=denominator > 0)


def trigamma(x: np.ndarray) -> np.ndarray:
    """ψ₁(x) for x > 0: recurrence ψ₁(x) = ψ₁(x + 1) + 1/x² up to x ≥ 6, then the asymptotic
    series ``1/x + 1/(2x²) + 1/(6x³) − 1/(30x⁵) + 1/(42x⁷) − 1/(30x⁹)`` (relative error below 1e-8).

    ``scipy.special.polygamma(1, x)`` computes the same through the Hurwitz zeta function
    and was measured 12× slower than digamma on our CPU; the EM calls it every iteration.
    """
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    small = np.flatnonzero(x < TRIGAMMA_SHIFT)
    xs = x[small]
    for _ in range(TRIGAMMA_SHIFT):
        out[small] += 1 / xs**2
        xs = xs + 1
        keep = xs < TRIGAMMA_SHIFT
        small, xs = small[keep], xs[keep]
        if not small.size:
            break
    x = np.where(x < TRIGAMMA_SHIFT, x + np.ceil(TRIGAMMA_SHIFT - x), x)
    inv = 1 / x
    inv2 = inv * inv
    series = inv + inv2 / 2 + inv * inv2 * (1 / 6 + inv2 * (-1 / 30 + inv2 * (1 / 42
                                                                               - inv2 / 30)))
    return out + series


@dataclass
class _Block:
    """One chunk of genes: its non-zero counts as flat arrays, its zeros counted per bin.

    A zero count's likelihood depends on its cell only through ℓ_i, so the zeros of a gene
    are counted per bin of size factors (``n_zero``: bins × genes) and evaluated at the
    bin's mean ``size``; non-zero counts are visited one by one (``x``, their cell's size
    factor ``x_size``, local gene ``gene``). With one bin per distinct size factor this is
    exact.
    """

    x: np.ndarray
    x_size: np.ndarray
    gene: np.ndarray
    lgamma_x1: np.ndarray  # lgamma(x + 1), the NB constant
    size: np.ndarray  # bins
    n_zero: np.ndarray  # bins × genes
    n_cells: int

    @classmethod
    def of(cls, counts: sp.csc_matrix, size: np.ndarray, bin_of: np.ndarray,
           bin_size: np.ndarray) -> _Block:
        n_cells, n_genes = counts.shape
        nnz = np.diff(counts.indptr)
        gene = np.repeat(np.arange(n_genes), nnz)
        cells = counts.indices
        n_bins = bin_size.size
        stored = np.bincount(bin_of[cells] * n_genes + gene,
                             minlength=n_bins * n_genes).reshape(n_bins, n_genes)
        per_bin = np.bincount(bin_of, minlength=n_bins)
        x = counts.data.astype(np.float64)
        return cls(x, size[cells], gene, gammaln(x + 1), bin_size,
                   (per_bin[:, None] - stored).astype(np.float64), n_cells)

    def keep(self, genes: np.ndarray) -> _Block:
        """The block restricted to local genes ``genes`` (sorted), re-indexed."""
        remap = np.full(self.n_zero.shape[1], -1)
        remap[genes] = np.arange(genes.size)
        new_gene = remap[self.gene]
        stored = new_gene >= 0
        return _Block(self.x[stored], self.x_size[stored], new_gene[stored],
                      self.lgamma_x1[stored], self.size, self.n_zero[:, genes], self.n_cells)

    def gene_sum(self, values: np.ndarray) -> np.ndarray:
        """Per-gene sum of values at the non-zero entries."""
        return np.bincount(self.gene, values, minlength=self.n_zero.shape[1])


def size_bins(size: np.ndarray, n_bins: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(bin code of each cell, mean size factor of each bin): equal-count bins of log ℓ.

    ``n_bins`` None, or at least the number of distinct size factors: one bin per value.
    """
    values, inverse = np.unique(size, return_inverse=True)
    if n_bins is None or values.size <= n_bins:
        return inverse, values
    edges = np.quantile(np.log(size), np.linspace(0, 1, n_bins + 1)[1:-1])
    code = np.searchsorted(edges, np.log(size), side="right")
    _, code = np.unique(code, return_inverse=True)
    means = np.bincount(code, size) / np.bincount(code)
    return code, means


def _loglik(b: _Block, eta, zeta, pi) -> np.ndarray:
    """ZINB log-likelihood of each gene of the block."""
    theta = np.exp(zeta)
    m0 = b.size[:, None] * np.exp(eta)
    log_f0 = -theta * np.log1p(m0 / theta)
    # bins without zeros add nothing (where f(0) underflows and π = 0, 0·log 0 would be NaN)
    zeros = np.where(b.n_zero > 0, b.n_zero * np.log(pi + (1 - pi) * np.exp(log_f0)),
                     0.0).sum(axis=0)
    g = b.gene
    t, m = theta[g], b.x_size * np.exp(eta[g])
    log_tm = np.log(t + m)
    log_nb = (gammaln(b.x + t) - b.lgamma_x1 + t * (zeta[g] - log_tm)
              + b.x * (np.log(m) - log_tm))
    n_nonzero = b.n_cells - b.n_zero.sum(axis=0)
    return zeros + n_nonzero * (np.log1p(-pi) - gammaln(theta)) + b.gene_sum(log_nb)


def _objective(b: _Block, eta, zeta, pi, prior_mean, prior_var) -> np.ndarray:
    """Log-likelihood plus the log prior of log φ = −ζ (when a prior is given)."""
    value = _loglik(b, eta, zeta, pi)
    if prior_mean is not None:
        value = value - (-zeta - prior_mean) ** 2 / (2 * prior_var)
    return value


def _step(b: _Block, eta, zeta, pi, prior_mean, prior_var):
    """One EM iteration: E-step, then π, a Newton step in log μ, a Newton step in ζ."""
    g = b.gene
    n_nonzero = b.n_cells - b.n_zero.sum(axis=0)
    theta = np.exp(zeta)
    m0 = b.size[:, None] * np.exp(eta)
    f0 = np.exp(-theta * np.log1p(m0 / theta))
    # E-step: posterior dropout weight of the zeros of each bin
    denominator = pi + (1 - pi) * f0  # 0 only where π = 0 and f(0) underflows: z = 0
    z = np.divide(np.broadcast_to(pi, f0.shape), denominator, out=np.zeros_like(f0),
                  where=denominator > 0)
    w0 = b.n_zero * (1 - z)
    new_pi = np.minimum((b.n_zero * z).sum(axis=0) / b.n_cells, MAX_ZERO_INFLATION)
    # M-step for log μ: Newton on the weighted NB likelihood (concave in log μ)
    t, m = theta[g], b.x_size * np.exp(eta[g])
    tm0, tm = theta + m0, t + m
    grad = -(w0 * theta * m0 / tm0).sum(axis=0) + b.gene_sum(t * (b.x - m) / tm)
    hess = -((w0 * theta**2 * m0 / tm0**2).sum(axis=0)
             + b.gene_sum(t * m * (b.x + t) / tm**2))
    new_eta = eta - np.clip(grad / np.minimum(hess, -_TINY), -MAX_STEP, MAX_STEP)
    # M-step for ζ = log θ (θ = 1/φ) at the new μ
    m0 = b.size[:, None] * np.exp(new_eta)
    m = b.x_size * np.exp(new_eta[g])
    tm0, tm = theta + m0, t + m
    g_theta = ((w0 * (zeta - np.log(tm0) + m0 / tm0)).sum(axis=0)
               + b.gene_sum(digamma(b.x + t) + zeta[g] - np.log(tm) + (m - b.x) / tm)
               - n_nonzero * digamma(theta))
    h_theta = ((w0 * (1 / theta - 1 / tm0 - m0 / tm0**2)).sum(axis=0)
               + b.gene_sum(trigamma(b.x + t) + 1 / t - 1 / tm - (m - b.x) / tm**2)
               - n_nonzero * trigamma(theta))
    g_zeta = theta * g_theta
    h_zeta = theta**2 * h_theta + theta * g_theta
    if prior_mean is not None:
        g_zeta = g_zeta - (zeta + prior_mean) / prior_var
        h_zeta = h_zeta - 1 / prior_var
    newton = np.where(h_zeta < 0, -g_zeta / np.where(h_zeta < 0, h_zeta, -1.0),
                      np.sign(g_zeta) * MAX_STEP)
    new_zeta = np.clip(zeta + np.clip(newton, -MAX_STEP, MAX_STEP),
                       -np.log(MAX_DISPERSION), -np.log(MIN_DISPERSION))
    return new_eta, new_zeta, new_pi


def _em(b: _Block, eta, zeta, pi, *, prior_mean=None, prior_var=None, max_iter: int,
        tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run EM from (η = log μ, ζ = log 1/φ, π); a prior N(prior_mean, prior_var) on log φ.

    Genes leave when converged; the block is compacted to the remaining genes as they
    leave. Returns the final (η, ζ, π), iterations and convergence flags per gene.
    """
    n_genes = b.n_zero.shape[1]
    params = np.stack([eta, zeta, pi]).astype(np.float64)
    iterations = np.zeros(n_genes, dtype=np.int32)
    converged = np.zeros(n_genes, dtype=bool)
    ids = np.arange(n_genes)  # global gene of each local column
    prior = None if prior_mean is None else np.asarray(prior_mean, dtype=np.float64)
    local = params.copy()
    # an underflowed f(0) with π = 0 gives log 0: such a step's objective is not finite and
    # the gene keeps its previous value (below), so those warnings carry no information
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        old = _objective(b, *local, prior, prior_var)
        for step in range(1, max_iter + 1):
            new_local = np.stack(_step(b, *local, prior, prior_var))
            new = _objective(b, *new_local, prior, prior_var)
            done = np.abs(new - old) <= tol * b.n_cells
            params[:, ids] = new_local
            iterations[ids] = step
            converged[ids[done]] = True
            live = ~done
            if not live.any():
                break
            old, local = np.where(np.isfinite(new), new, old)[live], new_local[:, live]
            ids = ids[live]
            if prior is not None:
                prior = prior[live]
            b = b.keep(np.flatnonzero(live))
    return params[0], params[1], params[2], iterations, converged


def _start(b: _Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment start: μ of c/ℓ, φ of the moments (clipped), π = excess zeros over NB."""
    y = b.x / b.x_size
    mean = np.maximum(b.gene_sum(y) / b.n_cells, 1e-8)
    second = b.gene_sum(y**2) / b.n_cells
    inv_size = (b.gene_sum(1 / b.x_size) + (b.n_zero / b.size[:, None]).sum(axis=0)) / b.n_cells
    phi = np.clip((second - mean**2 - mean * inv_size) / mean**2, 1e-2, 10.0)
    f0 = np.exp(-np.log1p(phi * mean) / phi)
    zero_rate = b.n_zero.sum(axis=0) / b.n_cells
    pi = np.clip((zero_rate - f0) / np.maximum(1 - f0, 1e-8), 0.0, 0.9)
    return np.log(mean / (1 - pi)), -np.log(phi), pi


def fit_dispersion_trend(mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """(a0, a1) of ``φ_tr(μ) = a0 + a1/μ`` by robust least squares on log φ (DESeq2's form)."""
    log_phi, log_mu = np.log(dispersion), np.log(mean)

    def residual(x):
        return np.log(np.exp(x[0]) + np.exp(x[1] - log_mu)) - log_phi

    start = np.array([np.log(max(np.median(dispersion), 1e-3)), np.log(1e-2)])
    fit = least_squares(residual, start, loss="soft_l1", f_scale=TREND_LOSS_SCALE)
    return np.exp(fit.x)


def _prior_variance(residual: np.ndarray, n_cells: int) -> float:
    """DESeq2's prior variance of log dispersion: MAD² − ψ₁((n − p)/2), floored."""
    mad = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    expected = float(trigamma(np.array([max((n_cells - N_PARAMS) / 2, 0.5)]))[0])
    return max(mad**2 - expected, MIN_PRIOR_VARIANCE)


def _fit_group(counts: sp.csr_matrix, size: np.ndarray, *, n_bins: int | None, shrink: bool,
               block_elements: int, max_iter: int, tol: float) -> dict:
    """ML then MAP fit of every gene of one group of cells (CSR counts).

    Each pass builds one gene chunk at a time from the CSR counts (no CSC or float64 copy
    of the whole matrix is held).
    """
    n_cells, n_genes = counts.shape
    nonzero = np.bincount(counts.indices, minlength=n_genes)
    cols = gene_chunks(nonzero, block_elements)
    bin_of, bin_size = size_bins(size, n_bins)

    def block(c: slice) -> _Block:
        return _Block.of(sp.csc_matrix(counts[:, c]), size, bin_of, bin_size)

    def fit_ml(c: slice) -> tuple:
        b = block(c)
        return _em(b, *_start(b), max_iter=max_iter, tol=tol)

    eta, zeta, pi = (np.empty(n_genes) for _ in range(3))
    iterations = np.zeros(n_genes, dtype=np.int32)
    converged = np.zeros(n_genes, dtype=bool)
    for c, fit in zip(cols, thread_map(fit_ml, cols), strict=True):
        eta[c], zeta[c], pi[c], iterations[c], converged[c] = fit
    ml_phi = np.exp(-zeta)
    if not shrink:
        return {"mean": np.exp(eta), "dispersion": ml_phi, "zero_inflation": pi,
                "ml_dispersion": ml_phi, "trend": np.full(2, np.nan), "prior_sd": np.inf,
                "iterations": iterations, "converged": converged}
    inside = (ml_phi > MIN_DISPERSION * 1.01) & (ml_phi < MAX_DISPERSION / 1.01)
    usable = inside & (nonzero >= TREND_MIN_NONZERO)
    if usable.sum() < 2:
        usable = nonzero > 0
    mean = np.exp(eta)
    trend = fit_dispersion_trend(mean[usable], ml_phi[usable])
    log_trend = np.log(trend[0] + trend[1] / mean)
    prior_var = _prior_variance(np.log(ml_phi[usable]) - log_trend[usable], n_cells)

    def fit_map(c: slice) -> tuple:
        return _em(block(c), eta[c], zeta[c], pi[c], prior_mean=log_trend[c],
                   prior_var=prior_var, max_iter=max_iter, tol=tol)

    for c, fit in zip(cols, list(thread_map(fit_map, cols)), strict=True):
        eta[c], zeta[c], pi[c], iterations[c], converged[c] = fit
    return {"mean": np.exp(eta), "dispersion": np.exp(-zeta), "zero_inflation": pi,
            "ml_dispersion": ml_phi, "trend": trend, "prior_sd": float(np.sqrt(prior_var)),
            "iterations": iterations, "converged": converged}


def fit_zinb_mle(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    n_bins: int | None = SIZE_BINS,
    shrink_dispersion: bool = True,
    max_iter: int = 200,
    tol: float = 1e-6,
    block_elements: int = BLOCK_ELEMENTS,
    max_cells: int | None = FIT_CELLS,
    seed: int = 0,
) -> ZinbMleFit:
    """Fit the per-gene ZINB with shrunk dispersions (see the module docstring).

    Parameters
    ----------
    counts
        cells × genes raw counts (CSR).
    library_size
        Total count of each cell.
    labels
        Cell groups, each fitted on its own; None: one model over all cells.
    n_bins
        Bins of size factors at which zeros are evaluated during the fit (:class:`_Block`);
        None: every distinct size factor (exact).
    shrink_dispersion
        Shrink φ toward the mean–dispersion trend (DESeq2's empirical Bayes; default). False
        keeps the gene-wise ML estimates (for comparison).
    max_iter, tol
        EM stops for a gene when its log-likelihood changes by at most ``tol`` nats per
        cell, or after ``max_iter`` iterations.
    block_elements
        Stored (non-zero) entries per gene chunk.
    max_cells
        Fit each group on at most this many of its cells (a random subset drawn with
        ``seed``); None: every cell.
    seed
        Seed of that subset.
    """
    check_number("max_iter", max_iter, integer=True, low=1)
    check_number("tol", tol, low=0, low_open=True)
    check_number("block_elements", block_elements, integer=True, low=1)
    if max_cells is not None:
        check_number("max_cells", max_cells, integer=True, low=1)
    if n_bins is not None:
        check_number("n_bins", n_bins, integer=True, low=1)
    counts, library_size, names, codes = check_inputs(counts, library_size, labels)
    size = library_size / np.median(library_size)
    fits = []
    fit_cells = 0
    for k in range(names.size):
        cells = np.flatnonzero(codes == k)
        if max_cells is not None and cells.size > max_cells:
            cells = np.sort(np.random.default_rng([seed, k]).choice(cells, max_cells,
                                                                     replace=False))
        fit_cells += cells.size
        group = counts if cells.size == counts.shape[0] else counts[cells]
        fits.append(_fit_group(group, size[cells],
                               n_bins=n_bins, shrink=shrink_dispersion,
                               block_elements=block_elements,
                               max_iter=max_iter, tol=tol))

    def stack(key):
        return np.stack([f[key] for f in fits])

    fit = ZinbMleFit(size, stack("mean"), stack("dispersion"), stack("zero_inflation"),
                     stack("ml_dispersion"), stack("trend"), stack("prior_sd"), codes,
                     stack("iterations"), stack("converged"), fit_cells)
    logger.info("ZINB ML fit: median dispersion %.3g (ML %.3g), median zero inflation %.3g, "
                "%d of %d gene fits not converged", float(np.median(fit.dispersion)),
                float(np.median(fit.ml_dispersion)), float(np.median(fit.zero_inflation)),
                int((~fit.converged).sum()), fit.converged.size)
    return fit


class ZinbMleDropout(DropoutModel):
    """The fitted per-gene ZINB of a set of cells: dropout probability ``1 − p_bio`` at
    zeros, computed for a block of rows on demand (nothing cells × genes is stored).

    Parameters
    ----------
    counts
        The counts the model describes (non-zero entries get probability 0).
    fit
        The fitted :class:`ZinbMleFit`.
    """

    name = "zinb-ml"

    def __init__(self, counts: sp.csr_matrix, fit: ZinbMleFit) -> None:
        params = {"mean": fit.mean, "dispersion": fit.dispersion,
                  "ml_dispersion": fit.ml_dispersion, "zero_inflation": fit.zero_inflation,
                  "size_factor": fit.size_factor, "trend": fit.trend}
        summary = {"model": self.name, "genes": int(counts.shape[1]),
                   "groups": int(fit.mean.shape[0]), "fit_cells": fit.fit_cells,
                   "median_dispersion": float(np.median(fit.dispersion)),
                   "median_ml_dispersion": float(np.median(fit.ml_dispersion)),
                   "median_zero_inflation": float(np.median(fit.zero_inflation)),
                   "dispersion_trend": fit.trend.tolist(), "prior_sd": fit.prior_sd.tolist(),
                   "not_converged": int((~fit.converged).sum())}
        super().__init__(counts, params, summary)
        self.fit = fit

    def _zero_probability(self, rows: Rows) -> np.ndarray:
        return 1 - self.fit.biozero(rows)


def dropout_probability(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    by_group: bool = False,
    **options,
) -> ZinbMleDropout:
    """The fitted model of the dropout probability ``1 − Pr(t = 0 | c = 0)`` of every zero.

    Parameters
    ----------
    counts, library_size
        Raw counts (CSR) and each cell's total count.
    labels
        Cell groups (used only with ``by_group``).
    by_group
        Fit one model per group of ``labels`` (default False: one model over all cells,
        as MaskClass does).
    options
        Passed to :func:`fit_zinb_mle`.

    Returns
    -------
    ZinbMleDropout
        ``probability(rows)`` on demand, ``matrix()`` (CSR float32 at zeros), ``params``
        (``mean``, ``dispersion``, ``ml_dispersion``, ``zero_inflation``: groups × genes;
        ``size_factor``; ``trend``) and ``summary``.
    """
    counts = sp.csr_matrix(counts)
    with timed("fitting the ZINB dropout model by maximum likelihood"):
        fit = fit_zinb_mle(counts, library_size, labels=labels if by_group else None,
                           **options)
    return ZinbMleDropout(counts, fit)
