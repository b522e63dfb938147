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
from scfill.dropout._shared import check_inputs
from scfill.dropout.model import DropoutModel, Rows
from scfill.rows import row_blocks
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


@dataclass(frozen=True)
class _GeneSums:
    """Per-gene sums over the stored entries of ``y = counts / ℓ`` (one pass, row blocks)."""

    present: np.ndarray
    inv_size: np.ndarray
    total: np.ndarray
    second: np.ndarray

    @classmethod
    def of(cls, counts: sp.csr_matrix, size: np.ndarray) -> _GeneSums:
        n_genes = counts.shape[1]
        sums = np.zeros((4, n_genes))
        for rows in row_blocks(*counts.shape):
            part = counts[rows]
            inv = np.repeat(1 / size[rows], np.diff(part.indptr))
            y = part.data * inv
            for k, weights in enumerate((None, inv, y, y * y)):
                sums[k] += np.bincount(part.indices, weights=weights, minlength=n_genes)
        return cls(*sums)


def _dispersion(sums: _GeneSums, n_cells: int, inv_size: np.ndarray, *, nonzero: bool,
                shrinkage: float, low: float, high: float) -> np.ndarray:
    """Shrunk moment dispersion per gene from the sums of ``y = counts / ℓ``.

    ``φ = (s² − m·mean(1/ℓ)) / m²`` over the gene's non-zero entries (``nonzero``, the
    paper) or over all cells; genes with fewer than 2 entries take the median.
    """
    n = sums.present if nonzero else np.full(sums.total.size, float(n_cells))
    inv = (sums.inv_size / np.maximum(n, 1) if nonzero
           else np.full(sums.total.size, inv_size.mean()))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = sums.total / n
        var = (sums.second - n * mean**2) / (n - 1)
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
    sums = _GeneSums.of(counts, size)
    mean = sums.total / n_cells
    dispersion = _dispersion(sums, n_cells, 1 / size, nonzero=dispersion_counts == "nonzero",
                             shrinkage=dispersion_shrinkage, low=min_dispersion,
                             high=max_dispersion)
    zeros_per_cell = n_genes - np.diff(counts.indptr)
    zero_rate = 1 - np.bincount(counts.indices, minlength=n_genes) / n_cells
    lo, hi = np.percentile(zeros_per_cell / n_genes, SPARSITY_PERCENTILES)
    span = hi - lo
    sparsity = (np.clip((zeros_per_cell / n_genes - lo) / span, 0, 1) if span > 0
                else np.zeros(n_cells))
    fit = ZinbFit(size, mean, dispersion, 0.0, 0.0, sparsity, sparsity_weight)
    nb_zero_rate = sum(fit.nb_zero(rows).sum(axis=0)
                       for rows in row_blocks(n_cells, n_genes)) / n_cells
    fit.intercept, fit.slope = _fit_dropout_curve(np.log(np.maximum(mean, _TINY)), zero_rate,
                                                  nb_zero_rate, n_cells)
    logger.info("ZINB dropout curve: delta = expit(%.3f %+.3f log mu); median dispersion %.3g",
                fit.intercept, fit.slope, float(np.median(dispersion)))
    return fit


class ZinbDropout(DropoutModel):
    """The fitted ZINB model of a set of cells: dropout probability ``1 − p_bio`` at zeros
    (or ``p_bio`` itself with ``biozero=True``).

    Parameters
    ----------
    counts
        The counts the model was fitted on.
    fit
        The fitted :class:`ZinbFit`.
    """

    name = "zinb-paper"

    def __init__(self, counts: sp.csr_matrix, fit: ZinbFit, *, biozero: bool = False) -> None:
        params = {"mean": fit.mean, "dispersion": fit.dispersion,
                  "size_factor": fit.size_factor, "sparsity": fit.sparsity,
                  "dropout_curve": np.array([fit.intercept, fit.slope])}
        summary = {"model": "zinb-paper", "genes": int(counts.shape[1]),
                   "dropout_curve": {"intercept": fit.intercept, "slope": fit.slope},
                   "median_dispersion": float(np.median(fit.dispersion)),
                   "sparsity_weight": fit.sparsity_weight}
        super().__init__(counts, params, summary)
        self.fit = fit
        self.biozero = biozero

    def _zero_probability(self, rows: Rows) -> np.ndarray:
        p_bio = self.fit.biozero(rows)
        return p_bio if self.biozero else 1 - p_bio


def biozero_probability(counts: sp.csr_matrix, library_size: np.ndarray,
                        **options) -> sp.csr_matrix:
    """p_bio of every zero count (CSR float32, nothing stored at non-zero counts).

    ``options`` go to :func:`fit_zinb`.
    """
    counts = sp.csr_matrix(counts)
    return ZinbDropout(counts, fit_zinb(counts, library_size, **options), biozero=True).matrix()


def dropout_probability(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    **options,
) -> ZinbDropout:
    """The ZINB model of ``counts``: dropout probability ``1 − p_bio`` at each zero count
    (``labels`` are ignored).

    Returns
    -------
    ZinbDropout
        ``probability(rows)`` (dense float32, values at zeros), ``params`` (``mean``,
        ``dispersion``, ``size_factor``, ``sparsity``, ``dropout_curve`` = [intercept,
        slope]) and ``summary``.
    """
    if labels is not None:
        logger.info("ZINB dropout model: labels ignored (one model over all cells)")
    counts = sp.csr_matrix(counts)
    with timed("fitting the ZINB biozero model"):
        return ZinbDropout(counts, fit_zinb(counts, library_size, **options))
