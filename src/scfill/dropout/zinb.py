"""MaskClass's ZINB biozero probability as the paper gives it (§2.6, ``specs/dropout.md``).

This is the ``"zinb-paper"`` dropout model. The default ZINB model (``"zinb"``) is the
per-gene maximum-likelihood fit of :mod:`scfill.dropout.zinb_mle`, measured against this
one in ``benchmarks/results/dropout_models.md``.

Counts follow a zero-inflated negative binomial: a latent count ``t ~ NB(μ_ij, φ_j)`` with
``μ_ij = ℓ_i·μ_j``, dropped with probability ``δ_ij``. For an observed zero

    p_bio = (1 − δ)·f(0) / (δ + (1 − δ)·f(0)),   f(0) = (1 + φ·μ_ij)^(−1/φ),

and ``p_bio = 0`` at non-zero counts; then ``p_bio ← p_bio·(1 − 0.3·z_i)`` with ``z_i`` the
cell's zero fraction rescaled between its 5th and 95th percentiles.

Choices the paper and spec leave open, made here (each a named parameter):

- Dispersion: the moment estimator with size factors, ``φ = (s² − m·mean(1/ℓ)) / m²`` on
  ``y = c/ℓ``, over the gene's non-zero counts as the paper says (``dispersion_counts =
  "nonzero"``, the default, since the spec follows the paper where it and the code
  differ; ``"all"`` uses every cell). The evidence is mixed
  (``benchmarks/results/dropout_identification.md``): over all cells the dropout zeros
  inflate φ (median 24 on scgacl-8) and p_bio ranks true dropouts above biological zeros
  on the scGACL sets, yet on the cnnImpute set ``"all"`` classifies better; with
  ``"nonzero"`` p_bio is small everywhere (every zero scores as a dropout above 0.5). φ is
  clipped to [``min_dispersion``,
  ``max_dispersion``], shrunk linearly toward the median over genes by
  ``dispersion_shrinkage`` (0.5) and bounded below again.
- δ: ``δ = expit(a + b·log μ)`` with ``b ≤ 0``. (a, b) maximise the binomial likelihood of
  each gene's observed zero count under ``P(0)_j = δ_j + (1 − δ_j)·f̄_j``, where ``f̄_j`` is
  the gene's NB zero probability averaged over cells and ``δ_j`` is taken at ``μ_j`` (a
  cell of median library size); this fits the curve to the observed zero rates with one
  pass over the cells. At prediction δ is evaluated at each cell's ``μ_ij``.
- ``labels`` are ignored: MaskClass fits one model over all cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit

from scfill._logging import logger, timed
from scfill.dropout import DropoutResult
from scfill.dropout._shared import BLOCK_ELEMENTS, check_inputs, fill_zeros
from scfill.utils import check_choice, check_number

#: Weight of the cell sparsity adjustment, α in ``p_bio·(1 − α·z_i)`` (MaskClass §2.6).
SPARSITY_WEIGHT = 0.3
#: Percentiles between which the cell zero fraction is rescaled to [0, 1] (MaskClass §2.6).
SPARSITY_PERCENTILES = (5.0, 95.0)
#: Smallest mean used inside logs (genes are non-empty, this only guards the log).
_TINY = 1e-300


@dataclass
class ZinbFit:
    """Fitted ZINB biozero model.

    Attributes
    ----------
    size_factor
        ℓ_i = library size / median library size.
    mean
        μ_j = mean over cells of count/ℓ.
    dispersion
        φ_j after shrinkage and bounds.
    intercept, slope
        The dropout curve ``δ = expit(intercept + slope·log μ)``, ``slope ≤ 0``.
    sparsity
        Rescaled cell zero fraction z_i in [0, 1].
    sparsity_weight
        α of the sparsity adjustment.
    """

    size_factor: np.ndarray
    mean: np.ndarray
    dispersion: np.ndarray
    intercept: float
    slope: float
    sparsity: np.ndarray
    sparsity_weight: float

    def nb_zero(self, rows: slice) -> np.ndarray:
        """f_ij(0) for the cells ``rows`` (dense rows × genes)."""
        mu = self.size_factor[rows, None] * self.mean[None, :]
        return np.exp(-np.log1p(self.dispersion * mu) / self.dispersion)

    def biozero(self, rows: slice) -> np.ndarray:
        """p_bio for every entry of the cells ``rows``, as if each were a zero."""
        mu = np.maximum(self.size_factor[rows, None] * self.mean[None, :], _TINY)
        f0 = np.exp(-np.log1p(self.dispersion * mu) / self.dispersion)
        delta = expit(self.intercept + self.slope * np.log(mu))
        kept = (1 - delta) * f0
        p_bio = kept / (delta + kept)
        return p_bio * (1 - self.sparsity_weight * self.sparsity[rows, None])


def _dispersion(y: sp.csr_matrix, inv_size: np.ndarray, *, nonzero: bool, shrinkage: float,
                low: float, high: float) -> np.ndarray:
    """Shrunk moment dispersion per gene from size-factor-normalised counts ``y``.

    ``φ = (s² − m·mean(1/ℓ)) / m²`` over the gene's non-zero entries (``nonzero``, the
    paper) or over all cells; genes with fewer than 2 entries take the median.
    """
    present = sp.csr_matrix(y, copy=True)
    present.data[:] = 1.0
    n = (np.asarray(present.sum(axis=0)).ravel() if nonzero
         else np.full(y.shape[1], float(y.shape[0])))
    inv = (np.asarray(present.T @ inv_size).ravel() / np.maximum(n, 1) if nonzero
           else np.full(y.shape[1], inv_size.mean()))
    total = np.asarray(y.sum(axis=0)).ravel()
    second = np.asarray(y.multiply(y).sum(axis=0)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        var = (second - n * mean**2) / (n - 1)
        raw = np.where(n >= 2, (var - mean * inv) / mean**2, np.nan)
    raw = np.clip(raw, low, high)
    raw = np.where(np.isfinite(raw), raw, np.nanmedian(raw) if np.isfinite(raw).any() else low)
    shrunk = (1 - shrinkage) * raw + shrinkage * np.median(raw)
    return np.maximum(shrunk, low)


def _fit_dropout_curve(log_mean: np.ndarray, zero_rate: np.ndarray, nb_zero_rate: np.ndarray,
                       n_cells: int) -> tuple[float, float]:
    """(a, b), b ≤ 0, maximising Σ_j binomial log-lik of zero rates under the ZINB."""
    eps = 1e-12

    def loss(theta):
        a, b = theta
        delta = expit(a + b * log_mean)
        p0 = np.clip(delta + (1 - delta) * nb_zero_rate, eps, 1 - eps)
        value = -np.sum(zero_rate * np.log(p0) + (1 - zero_rate) * np.log1p(-p0))
        d_p0 = -(zero_rate / p0 - (1 - zero_rate) / (1 - p0)) * (1 - nb_zero_rate)
        d_eta = d_p0 * delta * (1 - delta)
        return value / n_cells, np.array([d_eta.sum(), (d_eta * log_mean).sum()]) / n_cells

    start = np.array([0.0, -1.0])
    result = minimize(loss, start, jac=True, method="L-BFGS-B",
                      bounds=[(None, None), (None, 0.0)])
    return float(result.x[0]), float(result.x[1])


def fit_zinb(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    dispersion_counts: str = "nonzero",
    dispersion_shrinkage: float = 0.5,
    min_dispersion: float = 1e-2,
    max_dispersion: float = 1e3,
    sparsity_weight: float = SPARSITY_WEIGHT,
    block_elements: int = BLOCK_ELEMENTS,
) -> ZinbFit:
    """Fit MaskClass's biozero model to raw ``counts`` (see the module docstring)."""
    check_choice("dispersion_counts", dispersion_counts, ("nonzero", "all"))
    check_number("dispersion_shrinkage", dispersion_shrinkage, low=0, high=1)
    check_number("min_dispersion", min_dispersion, low=0, low_open=True)
    check_number("max_dispersion", max_dispersion, low=min_dispersion)
    check_number("sparsity_weight", sparsity_weight, low=0, high=1)
    counts, library_size, _, _ = check_inputs(counts, library_size)
    n_cells, n_genes = counts.shape
    size = library_size / np.median(library_size)
    y = sp.csr_matrix(sp.diags(1 / size) @ counts, dtype=np.float64)
    mean = np.asarray(y.mean(axis=0)).ravel()
    dispersion = _dispersion(y, 1 / size, nonzero=dispersion_counts == "nonzero",
                             shrinkage=dispersion_shrinkage, low=min_dispersion,
                             high=max_dispersion)
    zeros_per_cell = n_genes - np.diff(counts.indptr)
    zero_rate = 1 - np.bincount(counts.indices, minlength=n_genes) / n_cells
    lo, hi = np.percentile(zeros_per_cell / n_genes, SPARSITY_PERCENTILES)
    span = hi - lo
    sparsity = (np.clip((zeros_per_cell / n_genes - lo) / span, 0, 1) if span > 0
                else np.zeros(n_cells))
    fit = ZinbFit(size, mean, dispersion, 0.0, 0.0, sparsity, sparsity_weight)
    rows_per_block = max(1, block_elements // max(n_genes, 1))
    nb_zero_rate = sum(fit.nb_zero(slice(s, s + rows_per_block)).sum(axis=0)
                       for s in range(0, n_cells, rows_per_block)) / n_cells
    fit.intercept, fit.slope = _fit_dropout_curve(np.log(np.maximum(mean, _TINY)), zero_rate,
                                                  nb_zero_rate, n_cells)
    logger.info("ZINB dropout curve: delta = expit(%.3f %+.3f log mu); median dispersion %.3g",
                fit.intercept, fit.slope, float(np.median(dispersion)))
    return fit


def biozero_probability(counts: sp.csr_matrix, library_size: np.ndarray,
                        **options) -> sp.csr_matrix:
    """p_bio of every zero count (CSR float32, nothing stored at non-zero counts).

    ``options`` go to :func:`fit_zinb`.
    """
    fit = fit_zinb(counts, library_size, **options)
    return fill_zeros(sp.csr_matrix(counts), fit.biozero)


def dropout_probability(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    **options,
) -> DropoutResult:
    """Dropout probability ``1 − p_bio`` of every zero count (``labels`` are ignored).

    Returns
    -------
    DropoutResult
        ``probability`` (CSR float32 at zeros), ``params`` (``mean``, ``dispersion``,
        ``size_factor``, ``sparsity``, ``dropout_curve`` = [intercept, slope]) and
        ``summary``.
    """
    if labels is not None:
        logger.info("ZINB dropout model: labels ignored (one model over all cells)")
    with timed("fitting the ZINB biozero model"):
        fit = fit_zinb(counts, library_size, **options)
        probability = fill_zeros(sp.csr_matrix(counts), lambda rows: 1 - fit.biozero(rows))
    params = {"mean": fit.mean, "dispersion": fit.dispersion, "size_factor": fit.size_factor,
              "sparsity": fit.sparsity, "dropout_curve": np.array([fit.intercept, fit.slope])}
    summary = {"model": "zinb-paper", "genes": int(counts.shape[1]),
               "dropout_curve": {"intercept": fit.intercept, "slope": fit.slope},
               "median_dispersion": float(np.median(fit.dispersion)),
               "sparsity_weight": fit.sparsity_weight}
    return DropoutResult(probability=probability, params=params, summary=summary)
