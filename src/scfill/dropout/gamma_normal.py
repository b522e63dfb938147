"""scImpute's Gamma–Normal mixture, fitted by EM per gene and cell group, vectorised.

For gene j in cell group k the transformed expression x follows
``λ·Gamma(x; α, β) + (1−λ)·Normal(x; μ, σ)``; the Gamma part models dropouts and the
dropout probability of an entry is the Gamma component's posterior weight
``w1 = λΓ / (λΓ + (1−λ)N)`` (cnnImpute eq. 1–2, scGACL eq. 1–2, ``specs/dropout.md``).

How this differs from the reference code, and why it gives the same numbers:

- scImpute loops over genes in R. Here all genes of a group (in chunks of ``gene_chunk``)
  are fitted at once. Every zero count of a gene sits at the same point ``p0``, so its
  densities and weights are one number per gene; only the stored (non-zero) entries are
  visited, as a flat array with a gene index, and per-gene sums are ``np.bincount``. A gene
  leaves the iteration when it converges; the arrays are compacted as genes leave.
- ``log α − ψ(α) = v`` is solved by a vectorised Newton iteration from scImpute's closed-form
  start ``α0`` instead of R's ``uniroot`` (whose default tolerance is only ~1e-4).
- scImpute's R code errors out (and marks the gene NA) when the Normal component has zero
  variance: ``dnorm(sd = 0)`` gives Inf and the log-likelihood change becomes NaN. We stop
  such a gene at once and count it as ``failed_sigma_zero``; an empty component (all weight
  on one side) and any other non-finite value are counted too. A failed or skipped gene gets
  dropout probability 0 (never imputed), as in scImpute.
- scImpute's valid-gene thresholds are in log10 units; for the ``ln_counts`` transform they
  are converted to natural-log units (``μ > ln 2.01`` instead of ``μ > log10 2.01``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import digamma, gammaln, polygamma

from scfill._logging import logger, timed
from scfill.dropout._shared import check_inputs, gene_chunks, thread_map
from scfill.dropout.model import DropoutModel, Rows
from scfill.utils import check_choice, check_number

#: Value added to the (normalised) count before the log (scImpute, scGACL).
PSEUDOCOUNT = 1.01
#: Stored entries per gene chunk of one EM fit. Its step holds about a dozen float64
#: arrays of the chunk's entries (~200 MiB here); all 2,000 genes at once measured 6.0 GiB
#: peak for cnnImpute at 20,000 cells (80 % non-zero).
BLOCK_ENTRIES = 1 << 21
#: Transforms: name → (library-size target or None for raw counts, log base).
#: ``log10_cpm`` is scImpute/cnnImpute's ``log10(CPM + 1.01)``; ``ln_counts`` is scGACL's
#: code, ``ln(count + 1.01)`` without library normalisation.
TRANSFORMS: dict[str, tuple[float | None, float]] = {
    "log10_cpm": (1e6, 10.0),
    "ln_counts": (None, np.e),
}
#: Status of a (group, gene) fit, index = code stored in ``params["status"]``.
STATUSES = (
    "fitted",
    "skipped_all_zero",
    "skipped_too_sparse",
    "failed_sigma_zero",
    "failed_empty_component",
    "failed_nonfinite",
    "filtered_low_mean",
    "filtered_gamma_dominates",
)
FITTED, ALL_ZERO, TOO_SPARSE, SIGMA_ZERO, EMPTY, NONFINITE, LOW_MEAN, GAMMA_DOMINATES = range(8)
#: Cap on the Gamma shape (scImpute ``update_gmm_pars``).
ALPHA_CAP = 20.0
#: scImpute's valid-gene filter in log10 units (``find_va_genes``): keep μ > log10(2.01);
#: drop μ ≤ 1 where the Gamma density at μ + 1 is at least the Normal density there.
VALID_MIN_MU_LOG10 = float(np.log10(2.01))
VALID_CHECK_MU_LOG10 = 1.0
VALID_SHIFT_LOG10 = 1.0
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class Variant:
    """The details in which scImpute's and scGACL's code differ.

    Attributes
    ----------
    init_alpha
        Initial Gamma shape: 0.5 (scImpute), 1.5 (scGACL ``get_mix_internal``).
    sd_ddof
        Delta degrees of freedom of the initial Normal sd: 1 (R ``sd``), 0 (``np.std``).
    sigma_floor
        Initial sd used when the sd is 0: None (scImpute: fit fails) or 0.01 (scGACL).
    max_point_fraction
        Genes with a larger fraction of zeros in a group get no fit: None, 0.95 (scGACL).
    valid_filter
        Apply scImpute's valid-gene filter (scGACL's code does not).
    """

    init_alpha: float
    sd_ddof: int
    sigma_floor: float | None
    max_point_fraction: float | None
    valid_filter: bool


VARIANTS = {
    "scimpute": Variant(0.5, 1, None, None, True),
    "scgacl": Variant(1.5, 0, 0.01, 0.95, False),
}


@dataclass
class MixtureFit:
    """Per-gene result of :func:`fit_mixture` (NaN parameters where there is no fit)."""

    lam: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    status: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def solve_alpha(v: np.ndarray, *, max_steps: int = 50, rtol: float = 1e-12) -> np.ndarray:
    """Gamma shape from ``v = log(mean x) − mean(log x)`` (weighted), as scImpute does.

    ``v ≤ 0`` gives :data:`ALPHA_CAP`; otherwise the start
    ``α0 = (3 − v + sqrt((v − 3)² + 24v)) / (12v)`` is returned capped at
    :data:`ALPHA_CAP` when ``α0 ≥ 20``, else refined by Newton's method on
    ``log α − ψ(α) = v`` (vectorised, each element until its step is below ``rtol·α``).
    """
    v = np.asarray(v, dtype=np.float64)
    alpha = np.full(v.shape, ALPHA_CAP)
    with np.errstate(divide="ignore", invalid="ignore"):
        start = (3 - v + np.sqrt((v - 3) ** 2 + 24 * v)) / (12 * v)
    solve = (v > 0) & (start < ALPHA_CAP)
    a, target = start[solve], v[solve]
    todo = np.arange(a.size)
    for _ in range(max_steps):
        if todo.size == 0:
            break
        ai = a[todo]
        f = np.log(ai) - digamma(ai) - target[todo]
        slope = 1.0 / ai - polygamma(1, ai)
        new = ai - f / slope
        new = np.where(new > 0, new, ai / 2)
        a[todo] = new
        todo = todo[np.abs(new - ai) > rtol * ai]
    alpha[solve] = a
    return alpha


def _log_components(x, logx, lam, alpha, beta, mu, sigma):
    """log(λ·Gamma(x)) and log((1−λ)·Normal(x)), parameters broadcast against ``x``."""
    log_gamma = (np.log(lam) + alpha * np.log(beta) - gammaln(alpha)
                 + (alpha - 1) * logx - beta * x)
    log_normal = np.log1p(-lam) - np.log(sigma) - _LOG_SQRT_2PI - 0.5 * ((x - mu) / sigma) ** 2
    return log_gamma, log_normal


def _gamma_weight(pz1: np.ndarray, pz2: np.ndarray) -> np.ndarray:
    """``w1 = pz1 / (pz1 + pz2)``, 0 where ``pz1`` is 0 (scImpute ``calculate_weight``)."""
    total = pz1 + pz2
    return np.divide(pz1, total, out=np.zeros_like(pz1), where=pz1 > 0)


class _Entries:
    """Stored entries of the genes still iterating: values, their logs, local gene index."""

    def __init__(self, x: np.ndarray, gene: np.ndarray, genes: np.ndarray):
        self.genes = genes  # global gene ids, position = local index
        self.x = x
        self.logx = np.log(x)
        self.gene = gene

    def keep(self, local: np.ndarray) -> _Entries:
        """The entries of local genes ``local`` (sorted), re-indexed."""
        remap = np.full(self.genes.size, -1)
        remap[local] = np.arange(local.size)
        new_gene = remap[self.gene]
        mask = new_gene >= 0
        out = _Entries.__new__(_Entries)
        out.genes, out.x, out.logx, out.gene = (self.genes[local], self.x[mask],
                                                self.logx[mask], new_gene[mask])
        return out


def fit_mixture(
    values: sp.spmatrix,
    point: float,
    *,
    variant: str = "scimpute",
    max_iter: int = 100,
    tol: float = 0.5,
) -> MixtureFit:
    """Fit the Gamma–Normal mixture by EM to every column of ``values`` at once.

    Parameters
    ----------
    values
        cells × genes sparse matrix of transformed expression; stored entries are the
        values above ``point``, entries not stored are at ``point`` (the zeros).
    point
        Where a zero count lies after the transform (``log10(1.01)`` for ``log10_cpm``).
    variant
        ``"scimpute"`` or ``"scgacl"`` (:data:`VARIANTS`).
    max_iter, tol
        Stop a gene when the squared change of its log10-likelihood is ≤ ``tol`` (0.5) or
        after ``max_iter`` (100) iterations (scImpute ``get_mix``).

    Returns
    -------
    MixtureFit
        Parameters λ, α, β (rate), μ, σ per gene, a status code (:data:`STATUSES`; the
        valid-gene filter is not applied here), convergence flag and iteration count.
    """
    spec = VARIANTS[variant]
    csc = sp.csc_matrix(values, dtype=np.float64)
    n_cells, n_genes = csc.shape
    nnz = np.diff(csc.indptr)
    n_point = (n_cells - nnz).astype(np.float64)
    gene_of = np.repeat(np.arange(n_genes), nnz)
    x = csc.data

    status = np.full(n_genes, FITTED, dtype=np.int8)
    status[nnz == 0] = ALL_ZERO
    if spec.max_point_fraction is not None:
        status[(nnz > 0) & (n_point / n_cells > spec.max_point_fraction)] = TOO_SPARSE

    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(n_point > 0, n_point / n_cells, 0.01)
        mu = np.bincount(gene_of, x, minlength=n_genes) / nnz
        squares = np.bincount(gene_of, (x - mu[gene_of]) ** 2, minlength=n_genes)
        dof = nnz - spec.sd_ddof
        sigma = np.sqrt(np.where(dof > 0, squares / np.maximum(dof, 1), 0.0))
    if spec.sigma_floor is not None:
        sigma[sigma == 0] = spec.sigma_floor
    status[(status == FITTED) & (sigma <= 0)] = SIGMA_ZERO
    alpha = np.full(n_genes, spec.init_alpha)
    beta = np.ones(n_genes)
    params = np.stack([lam, alpha, beta, mu, sigma])  # 5 × genes, updated in place
    converged = np.zeros(n_genes, dtype=bool)
    iterations = np.zeros(n_genes, dtype=np.int32)

    active = np.flatnonzero(status == FITTED)
    entries = _Entries(x, gene_of, np.arange(n_genes)).keep(active)
    _iterate(entries, params, n_point, n_cells, point, status, converged, iterations,
             max_iter=max_iter, tol=tol)

    params[:, status != FITTED] = np.nan
    lam, alpha, beta, mu, sigma = params
    return MixtureFit(lam, alpha, beta, mu, sigma, status, converged, iterations)


def _iterate(entries: _Entries, params: np.ndarray, n_point: np.ndarray, n_cells: int,
             point: float, status: np.ndarray, converged: np.ndarray,
             iterations: np.ndarray, *, max_iter: int, tol: float) -> None:
    """Run EM on the genes of ``entries``, writing into the global arrays."""
    log_point = np.log(point)
    local = params[:, entries.genes]
    old_loglik = np.zeros(entries.genes.size)
    live = np.ones(entries.genes.size, dtype=bool)
    with np.errstate(all="ignore"):
        pz1, pz2, pz1_0, pz2_0 = _densities(entries, local, point, log_point)
        for step in range(1, max_iter + 1):
            if not live.any():
                break
            if live.sum() < 0.75 * live.size:  # compact: drop the finished genes
                keep = np.flatnonzero(live)
                entries, local, old_loglik = entries.keep(keep), local[:, keep], old_loglik[keep]
                pz1, pz2, pz1_0, pz2_0 = _densities(entries, local, point, log_point)
                live = np.ones(keep.size, dtype=bool)
            np_local = n_point[entries.genes]
            # E-step
            w1 = _gamma_weight(pz1, pz2)
            w1_0 = _gamma_weight(pz1_0, pz2_0)
            # M-step, in scImpute's order
            m = entries.genes.size
            g = entries.gene
            s1 = np_local * w1_0 + np.bincount(g, w1, minlength=m)
            s2 = np_local * (1 - w1_0) + np.bincount(g, 1 - w1, minlength=m)
            lam = s1 / n_cells
            mu = (np_local * (1 - w1_0) * point + np.bincount(g, (1 - w1) * entries.x,
                                                              minlength=m)) / s2
            var = (np_local * (1 - w1_0) * (point - mu) ** 2
                   + np.bincount(g, (1 - w1) * (entries.x - mu[g]) ** 2, minlength=m)) / s2
            t = np_local * w1_0 * point + np.bincount(g, w1 * entries.x, minlength=m)
            u = np_local * w1_0 * log_point + np.bincount(g, w1 * entries.logx, minlength=m)
            alpha = solve_alpha(np.log(t / s1) - u / s1)
            beta = alpha * s1 / t
            new = np.stack([lam, alpha, beta, mu, np.sqrt(var)])
            local[:, live] = new[:, live]
            pz1, pz2, pz1_0, pz2_0 = _densities(entries, local, point, log_point)
            loglik = (np.bincount(g, np.log10(pz1 + pz2), minlength=m)
                      + np.where(np_local > 0, np_local * np.log10(pz1_0 + pz2_0), 0.0))
            failed = np.select(
                [(s1 <= 0) | (s2 <= 0), new[4] <= 0,
                 ~np.isfinite(new).all(axis=0) | ~np.isfinite(loglik)],
                [EMPTY, SIGMA_ZERO, NONFINITE], FITTED)
            done_ok = (loglik - old_loglik) ** 2 <= tol
            old_loglik = loglik
            finish = live & ((failed != FITTED) | done_ok | (step == max_iter))
            ids = entries.genes[finish]
            status[ids] = failed[finish]
            converged[ids] = done_ok[finish] & (failed[finish] == FITTED)
            iterations[ids] = step
            params[:, ids] = local[:, finish]
            live &= ~finish


def _densities(entries: _Entries, local: np.ndarray, point: float, log_point: float):
    """λΓ and (1−λ)N at the stored entries and at ``point`` (one value per gene)."""
    lam, alpha, beta, mu, sigma = local
    g = entries.gene
    l1, l2 = _log_components(entries.x, entries.logx, lam[g], alpha[g], beta[g], mu[g],
                             sigma[g])
    l1_0, l2_0 = _log_components(point, log_point, lam, alpha, beta, mu, sigma)
    return np.exp(l1), np.exp(l2), np.exp(l1_0), np.exp(l2_0)


def zero_dropout_probability(fit: MixtureFit, point: float, *, log_base: float,
                             valid_filter: bool) -> np.ndarray:
    """Dropout probability of a zero of each gene; updates ``fit.status`` with the filter.

    Genes that were not fitted, or that fail scImpute's valid-gene filter (thresholds
    converted from log10 to ``log_base`` units), get 0; so does a zero above μ.
    """
    unit = np.log(10.0) / np.log(log_base)
    with np.errstate(all="ignore"):
        l1, l2 = _log_components(point, np.log(point), fit.lam, fit.alpha, fit.beta,
                                 fit.mu, fit.sigma)
        prob = _gamma_weight(np.exp(l1), np.exp(l2))
        if valid_filter:
            fitted = fit.status == FITTED
            low = fitted & ~(fit.mu > VALID_MIN_MU_LOG10 * unit)
            at = fit.mu + VALID_SHIFT_LOG10 * unit
            gamma_at = np.exp(fit.alpha * np.log(fit.beta) - gammaln(fit.alpha)
                              + (fit.alpha - 1) * np.log(at) - fit.beta * at)
            normal_at = np.exp(-np.log(fit.sigma) - _LOG_SQRT_2PI
                               - 0.5 * ((at - fit.mu) / fit.sigma) ** 2)
            dominated = fitted & ~low & (gamma_at >= normal_at) & (
                fit.mu <= VALID_CHECK_MU_LOG10 * unit)
            fit.status[low] = LOW_MEAN
            fit.status[dominated] = GAMMA_DOMINATES
    prob[(fit.status != FITTED) | ~(point <= fit.mu)] = 0.0
    return np.nan_to_num(prob, nan=0.0)


def transform_values(counts: sp.csr_matrix, library_size: np.ndarray,
                     transform: str) -> tuple[sp.csr_matrix, float, float]:
    """The stored counts mapped by ``transform``; returns (values, point, log base)."""
    target, base = TRANSFORMS[transform]
    out = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    if target is not None:
        out.data *= np.repeat(target / library_size, np.diff(out.indptr))
    out.data = np.log(out.data + PSEUDOCOUNT) / np.log(base)
    return out, float(np.log(PSEUDOCOUNT) / np.log(base)), base


def dropout_probability(
    counts: sp.csr_matrix,
    library_size: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    variant: str = "scimpute",
    transform: str = "log10_cpm",
    max_iter: int = 100,
    tol: float = 0.5,
    block_entries: int = BLOCK_ENTRIES,
) -> GammaNormalDropout:
    """Dropout probability of every zero count by scImpute's Gamma–Normal mixture.

    Parameters
    ----------
    counts
        cells × genes raw counts (CSR), all-zero cells and genes removed.
    library_size
        Total count of each cell (of the input as given).
    labels
        Cell group of each cell (true labels or pre-clusters); None: one group.
    variant
        ``"scimpute"`` (default, the reference) or ``"scgacl"`` (:class:`Variant`).
    transform
        ``"log10_cpm"`` (default, scImpute/cnnImpute) or ``"ln_counts"`` (scGACL's code).
    max_iter, tol
        EM stopping rule (scImpute: 100 iterations, squared log10-likelihood change 0.5).
    block_entries
        Stored entries of a group fitted together (genes are independent, so the chunks
        change nothing but the memory, which is ∝ this; :data:`BLOCK_ENTRIES`).

    Returns
    -------
    GammaNormalDropout
        ``probability(rows)``: dense float32, values only at observed zeros. ``params``: ``lambda``,
        ``alpha``, ``beta``, ``mu``, ``sigma`` (groups × genes, NaN where no fit),
        ``status`` (codes of :data:`STATUSES`), ``zero_probability`` (groups × genes) and
        ``groups`` (the label of each row). ``summary``: counts of fits by status.
    """
    check_choice("variant", variant, VARIANTS)
    check_choice("transform", transform, TRANSFORMS)
    check_number("max_iter", max_iter, integer=True, low=1)
    check_number("tol", tol, low=0, low_open=True)
    check_number("block_entries", block_entries, integer=True, low=1)
    counts, library_size, names, codes = check_inputs(counts, library_size, labels)
    n_genes = counts.shape[1]
    values, point, base = transform_values(counts, library_size, transform)
    shape = (names.size, n_genes)
    out = {k: np.full(shape, np.nan) for k in ("lambda", "alpha", "beta", "mu", "sigma")}
    status = np.zeros(shape, dtype=np.int8)
    zero_prob = np.zeros(shape, dtype=np.float32)
    converged = np.zeros(shape, dtype=bool)
    iterations = np.zeros(shape, dtype=np.int32)
    with timed(f"fitting the Gamma–Normal dropout model ({names.size} groups × {n_genes} genes)"):
        for k in range(names.size):
            group = values if names.size == 1 else values[np.flatnonzero(codes == k)]
            chunks = gene_chunks(np.bincount(group.indices, minlength=n_genes), block_entries)

            def fit_chunk(cols: slice, group: sp.csr_matrix = group) -> MixtureFit:
                return fit_mixture(group[:, cols], point, variant=variant, max_iter=max_iter,
                                   tol=tol)

            for cols, fit in zip(chunks, thread_map(fit_chunk, chunks), strict=True):
                zero_prob[k, cols] = zero_dropout_probability(
                    fit, point, log_base=base, valid_filter=VARIANTS[variant].valid_filter)
                for key, arr in zip(out, (fit.lam, fit.alpha, fit.beta, fit.mu, fit.sigma),
                                    strict=True):
                    out[key][k, cols] = arr
                status[k, cols] = fit.status
                converged[k, cols] = fit.converged
                iterations[k, cols] = fit.iterations
    summary = _summary(status, converged, iterations, variant, transform, names.size)
    logger.info("Gamma–Normal fits: %s", summary["status"])
    params = {**out, "status": status, "zero_probability": zero_prob, "groups": names}
    return GammaNormalDropout(counts, codes, params=params, summary=summary)


class GammaNormalDropout(DropoutModel):
    """Fitted Gamma–Normal mixtures: a zero of gene j in group k has probability
    ``params["zero_probability"][k, j]``.

    Parameters
    ----------
    counts
        The counts the mixtures were fitted on.
    codes
        Group code of each cell (row of ``params["zero_probability"]``).
    """

    name = "gamma_normal"

    def __init__(self, counts: sp.csr_matrix, codes: np.ndarray, *, params: dict,
                 summary: dict) -> None:
        super().__init__(counts, params, summary)
        self.codes = codes

    def _zero_probability(self, rows: Rows) -> np.ndarray:
        return self.params["zero_probability"][self.codes[rows]]


def _summary(status, converged, iterations, variant, transform, n_groups) -> dict:
    counts = {name: int(np.sum(status == code)) for code, name in enumerate(STATUSES)}
    ran = iterations > 0
    return {
        "model": "gamma_normal",
        "variant": variant,
        "transform": transform,
        "groups": int(n_groups),
        "fits": int(status.size),
        "status": counts,
        "not_converged": int(np.sum(ran & ~converged & (status != SIGMA_ZERO)
                                    & (status != EMPTY) & (status != NONFINITE))),
        "mean_iterations": float(iterations[ran].mean()) if ran.any() else 0.0,
    }
