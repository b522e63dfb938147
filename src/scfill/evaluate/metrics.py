"""Metrics the seed papers judge imputation by, each on plain arrays or sparse matrices.

Standard metrics come from scikit-learn and scipy (ARI, NMI, silhouette, Wasserstein,
Jensen–Shannon, Kendall's tau, ROC AUC, F1). Written here are only those no library has:
purity and cluster entropy (cnnImpute's formulas, from IntNMF), Hungarian-matched
accuracy/F1/AUC (scMASKGAN), the dropout-identification counts on sparse matrices (scGACL),
molecular cross-validation's MSE and Poisson loss (Open Problems' denoising task),
per-gene Gini (cnnImpute) and the pseudo-temporal ordering score (TSCAN, used by scGACL).
Entry-wise errors are computed from sums (moments), so a whole sparse matrix is scored
without densifying it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import jensenshannon
from scipy.stats import kendalltau, wasserstein_distance
from sklearn.metrics import (
    adjusted_rand_score,
    f1_score,
    normalized_mutual_info_score,
    roc_auc_score,
)
from sklearn.metrics.cluster import contingency_matrix

from scfill.errors import InputError

#: Bins of the pooled value histograms the Jensen–Shannon distance compares.
JS_BINS = 100


# --------------------------------------------------------------------------- entries
def _sum(matrix) -> float:
    return float(matrix.sum()) if sp.issparse(matrix) else float(np.sum(matrix))


def _square_sum(matrix) -> float:
    if sp.issparse(matrix):
        return float(np.sum(np.square(matrix.data, dtype=np.float64)))
    return float(np.sum(np.square(matrix, dtype=np.float64)))


def _product_sum(a, b) -> float:
    if sp.issparse(a):
        return float(sp.csr_matrix(a, dtype=np.float64).multiply(b).sum())
    if sp.issparse(b):
        return _product_sum(b, a)
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


def entry_errors(predicted, reference, *, n: int | None = None) -> dict[str, float]:
    """MSE, RMSE, Pearson and cosine similarity between two sets of entries.

    Parameters
    ----------
    predicted, reference
        1-D arrays, or matrices (dense or sparse) of the same shape. Entries outside a
        sparse matrix's pattern count as zeros, so a whole sparse matrix is scored without
        densifying it; restrict both to scored entries first (:func:`restrict`) to score a
        subset.
    n
        Number of scored entries when both inputs are restricted sparse matrices (their
        shape then overstates it); default: every entry.

    Returns
    -------
    ``{"mse", "rmse", "pearson", "cosine"}``; Pearson and cosine are NaN when a side is
    constant (Pearson) or all zero (cosine).
    """
    if np.shape(predicted) != np.shape(reference):
        raise InputError(f"predicted and reference shapes differ: {np.shape(predicted)} vs "
                         f"{np.shape(reference)}.", fix="score matrices of the same cells and "
                         "genes, in the same order.")
    n = int(np.prod(np.shape(reference))) if n is None else n
    if n == 0:
        nan = float("nan")
        return {"mse": nan, "rmse": nan, "pearson": nan, "cosine": nan}
    sx, sy = _sum(predicted), _sum(reference)
    sxx, syy, sxy = _square_sum(predicted), _square_sum(reference), _product_sum(predicted,
                                                                                  reference)
    mse = max((sxx + syy - 2 * sxy) / n, 0.0)
    var_x, var_y = sxx - sx * sx / n, syy - sy * sy / n
    cov = sxy - sx * sy / n
    pearson = cov / np.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else float("nan")
    cosine = sxy / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "pearson": float(pearson),
            "cosine": float(cosine)}


def restrict(matrix, pattern: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` at the stored entries of boolean ``pattern`` (zero elsewhere), CSR."""
    if sp.issparse(matrix):
        return sp.csr_matrix(sp.csr_matrix(matrix, dtype=np.float64).multiply(pattern))
    return sp.csr_matrix(pattern.multiply(np.asarray(matrix, dtype=np.float64)))


# ------------------------------------------------------- molecular cross-validation
#: Added to the Poisson mean before the log (the MCV package's ``poisson_nll_loss``).
POISSON_EPS = 1e-6


def _normalize_log1p(counts, target: float):
    """``log1p(counts / cell total · target)`` (scanpy's ``normalize_total`` + ``log1p``:
    cells with no count stay zero). Sparse stays sparse."""
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    scale = target / np.where(totals > 0, totals, 1.0)
    if sp.issparse(counts):
        out = sp.csr_matrix(counts, dtype=np.float64, copy=True)
        out.data = np.log1p(out.data * np.repeat(scale, np.diff(out.indptr)))
        return out
    return np.log1p(np.asarray(counts, dtype=np.float64) * scale[:, None])


def mcv_mse(denoised, test) -> float:
    """MSE between a denoiser's counts and the held-out test counts (Open Problems).

    As the Open Problems denoising task's ``mse`` metric
    (``openproblems/tasks/denoising/metrics/mse.py``): both matrices are normalised per cell
    to the median total count of the *test* cells and ``log1p``-transformed, then the mean
    squared difference over all cells × genes. (The task's later viash version uses a fixed
    target of 10,000; this follows the median definition.) Lower is better.

    Parameters
    ----------
    denoised
        The method's output on the count scale, cells × genes (dense or sparse).
    test
        The test part of the molecules, same shape.
    """
    target = float(np.median(np.asarray(test.sum(axis=1)).ravel()))
    return entry_errors(_normalize_log1p(denoised, target), _normalize_log1p(test, target))["mse"]


def poisson_loss(denoised, test, *, train_total: float) -> float:
    """Poisson negative log-likelihood of the test counts under the denoised means.

    As Open Problems' ``poisson`` metric: the denoised counts are scaled by (total test
    count) / (total training count), μ = denoised · Σ test / Σ train, and the loss is the
    MCV package's ``poisson_nll_loss``, mean over all entries of ``μ − y · log(μ + 1e-6)``
    (the log-factorial term, constant across methods, is left out). Open Problems v1 passes
    the two matrices to that function in swapped order; this follows the function's own
    definition (mean μ, observed y), as the task's later version does. Lower is better.
    Sparse inputs are not densified.
    """
    scale = _sum(test) / train_total
    n = int(np.prod(np.shape(test)))
    test = sp.csr_matrix(test, dtype=np.float64)
    test.eliminate_zeros()
    rows = np.repeat(np.arange(test.shape[0]), np.diff(test.indptr))
    at_test = np.asarray(denoised[rows, test.indices], dtype=np.float64).ravel() * scale
    return (_sum(denoised) * scale - float(np.sum(test.data * np.log(at_test + POISSON_EPS)))) / n


# ------------------------------------------------------------------ dropout calling
def dropout_identification(observed, reference, imputed) -> dict[str, float]:
    """How well the zeros a method filled match the true dropouts (scGACL, Fig. 2).

    Over the observed zeros: a zero is a *true dropout* when the reference (true counts)
    is positive there, and *called a dropout* when the imputed value is positive. Computed
    from sparse patterns without densifying.

    Returns
    -------
    ``{"dropout_accuracy", "dropout_f1", "dropout_precision", "dropout_fpr"}`` (precision
    is NaN when nothing is called, FPR NaN when there is no biological zero).
    """
    observed_nz = sp.csr_matrix(observed) != 0
    true_nz = sp.csr_matrix(reference) != 0
    called_nz = sp.csr_matrix(imputed) != 0
    dropout = true_nz - true_nz.multiply(observed_nz)
    called = called_nz - called_nz.multiply(observed_nz)
    tp = dropout.multiply(called).nnz
    fp, fn = called.nnz - tp, dropout.nnz - tp
    zeros = int(np.prod(observed_nz.shape)) - observed_nz.nnz
    return binary_scores(tp=tp, fp=fp, fn=fn, tn=zeros - tp - fp - fn, prefix="dropout_")


def binary_scores(*, tp: int, fp: int, fn: int, tn: int, prefix: str = "") -> dict[str, float]:
    """Accuracy, F1, precision and false-positive rate from confusion counts."""
    nan = float("nan")
    total = tp + fp + fn + tn
    return {f"{prefix}accuracy": (tp + tn) / total if total else nan,
            f"{prefix}f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan,
            f"{prefix}precision": tp / (tp + fp) if tp + fp else nan,
            f"{prefix}fpr": fp / (fp + tn) if fp + tn else nan}


# --------------------------------------------------------------------- clustering
def purity(labels, clusters) -> float:
    """Σ_k max_j |c_k ∩ t_j| / N (MaskClass §2.8, cnnImpute Methods)."""
    table = contingency_matrix(labels, clusters)
    return float(table.max(axis=0).sum() / table.sum())


def cluster_entropy(labels, clusters) -> float:
    """cnnImpute's (IntNMF's) entropy of clusters w.r.t. types; 0 = every cluster pure.

    ``−1 / (N log2 l) Σ_i Σ_j n_i^j log2(n_i^j / n_i)`` with l the number of types,
    n_i the size of cluster i and n_i^j its cells of type j. 0 when there is one type.
    """
    table = contingency_matrix(labels, clusters).astype(np.float64)  # types × clusters
    n_types = table.shape[0]
    if n_types < 2:
        return 0.0
    sizes = table.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table * np.log2(table / sizes), 0.0)
    return float(-terms.sum() / (table.sum() * np.log2(n_types))) + 0.0  # no -0.0


def matched_classification(labels, clusters) -> dict[str, float]:
    """scMASKGAN's clustering ACC, F1 and AUC after Hungarian matching (Tables 3–4).

    Clusters are matched one-to-one to labels maximising the cells they share
    (:func:`scipy.optimize.linear_sum_assignment` on the contingency table). Cells of an
    unmatched cluster (more clusters than labels) count as wrong. ACC is the share of cells
    whose matched label is right; F1 is the macro F1 over true labels; AUC is the macro
    one-vs-rest ROC AUC of the matched hard assignment (per label (TPR + TNR) / 2).
    """
    labels = np.asarray(labels)
    label_values, label_codes = np.unique(labels, return_inverse=True)
    cluster_values, cluster_codes = np.unique(np.asarray(clusters), return_inverse=True)
    table = contingency_matrix(label_codes, cluster_codes)
    rows, cols = linear_sum_assignment(-table)
    mapping = np.full(len(cluster_values), -1)
    mapping[cols] = rows
    predicted = mapping[cluster_codes]
    classes = np.arange(len(label_values))
    aucs = [roc_auc_score(label_codes == c, predicted == c) if 0 < np.sum(label_codes == c)
            < len(label_codes) else float("nan") for c in classes]
    return {"acc": float(np.mean(predicted == label_codes)),
            "f1": float(f1_score(label_codes, predicted, labels=classes, average="macro",
                                 zero_division=0)),
            "auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")}


def clustering_agreement(labels, clusters) -> dict[str, float]:
    """ARI, NMI (scikit-learn), purity, entropy and the Hungarian-matched ACC/F1/AUC."""
    scores = {"ari": float(adjusted_rand_score(labels, clusters)),
              "nmi": float(normalized_mutual_info_score(labels, clusters)),
              "purity": purity(labels, clusters),
              "entropy": cluster_entropy(labels, clusters)}
    scores.update(matched_classification(labels, clusters))
    return scores


# ---------------------------------------------------------------- distributions
def _pooled(matrix) -> tuple[np.ndarray, int]:
    """Stored values and the number of implicit zeros of a matrix."""
    if sp.issparse(matrix):
        return np.asarray(sp.csr_matrix(matrix).data, np.float64), \
            int(np.prod(matrix.shape)) - sp.csr_matrix(matrix).nnz
    return np.asarray(matrix, np.float64).ravel(), 0


def wasserstein(a, b) -> float:
    """Wasserstein-1 distance between the pooled values of two matrices (scipy).

    Implicit zeros of sparse matrices enter as one value 0 with their count as weight.
    """
    (va, za), (vb, zb) = _pooled(a), _pooled(b)
    values_a, weights_a = np.append(va, 0.0), np.append(np.ones_like(va), za)
    values_b, weights_b = np.append(vb, 0.0), np.append(np.ones_like(vb), zb)
    return float(wasserstein_distance(values_a, values_b, weights_a, weights_b))


def js_distance(a, b, *, bins: int = JS_BINS) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between pooled value histograms.

    Both matrices are binned on the same ``bins`` equal-width bins from 0 to the larger
    maximum; scipy's :func:`~scipy.spatial.distance.jensenshannon` compares them
    (scMASKGAN eq. 8–9: the square root of the divergence).
    """
    (va, za), (vb, zb) = _pooled(a), _pooled(b)
    top = max(va.max(initial=0.0), vb.max(initial=0.0), 1e-12)
    edges = np.linspace(0.0, top, bins + 1)
    ha = np.histogram(va, edges)[0].astype(np.float64)
    hb = np.histogram(vb, edges)[0].astype(np.float64)
    ha[0] += za
    hb[0] += zb
    return float(jensenshannon(ha, hb, base=2))


def _column_moments(matrix) -> tuple[np.ndarray, np.ndarray]:
    if sp.issparse(matrix):
        m = sp.csr_matrix(matrix, dtype=np.float64)
        return np.asarray(m.mean(axis=0)).ravel(), np.asarray(m.multiply(m).mean(axis=0)).ravel()
    m = np.asarray(matrix, np.float64)
    return m.mean(axis=0), np.square(m).mean(axis=0)


def gene_cv(matrix) -> np.ndarray:
    """Coefficient of variation (population sd / mean) of each gene; NaN for zero mean."""
    mean, mean_sq = _column_moments(matrix)
    sd = np.sqrt(np.maximum(mean_sq - mean**2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, sd / mean, np.nan)


def gene_gini(matrix) -> np.ndarray:
    """Gini coefficient of each gene over cells (cnnImpute eq.: Σ|x_i − x_j| / (2 N² x̄)).

    Computed from each gene's sorted values, ``Σ_i (2i − N − 1) x_(i) / (N Σ x)``; for a
    sparse matrix the zeros sort first, so only stored values are sorted (one lexsort over
    all of them, no loop over genes). Values must be non-negative; NaN for a zero gene.
    """
    csc = sp.csc_matrix(matrix, dtype=np.float64)
    n_cells, n_genes = csc.shape
    gene = np.repeat(np.arange(n_genes), np.diff(csc.indptr))
    order = np.lexsort((csc.data, gene))
    values, gene = csc.data[order], gene[order]
    nnz = np.diff(csc.indptr)
    # 1-based rank among all N cells: the zeros of the gene come first
    rank = np.arange(len(values)) - np.repeat(csc.indptr[:-1], nnz) + 1 + \
        np.repeat(n_cells - nnz, nnz)
    weighted = np.bincount(gene, (2 * rank - n_cells - 1) * values, minlength=n_genes)
    total = np.bincount(gene, values, minlength=n_genes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, weighted / (n_cells * total), np.nan)


# ---------------------------------------------------------------------- DE genes
def set_agreement(predicted, reference) -> dict[str, float]:
    """F1 and Jaccard index of a predicted gene set against a reference set (scGACL)."""
    predicted, reference = set(predicted), set(reference)
    both = len(predicted & reference)
    union = len(predicted | reference)
    denominator = len(predicted) + len(reference)
    return {"f1": 2 * both / denominator if denominator else float("nan"),
            "jaccard": both / union if union else float("nan")}


def ranking_auc(scores, is_reference) -> float:
    """ROC AUC of a gene ranking (higher = more DE) against reference membership."""
    is_reference = np.asarray(is_reference, dtype=bool)
    if is_reference.all() or not is_reference.any():
        return float("nan")
    return float(roc_auc_score(is_reference, np.asarray(scores, np.float64)))


# -------------------------------------------------------------------- trajectory
def pseudotemporal_ordering_score(pseudotime, true_time) -> float:
    """TSCAN's POS (Ji & Ji 2016), generalised to ordered time points as scGACL uses it.

    With cells sorted by pseudotime and t_(k) their true times,
    ``POS = Σ_{i<j} (t_(j) − t_(i)) / Σ_{i<j} |t_(j) − t_(i)|``: 1 when pseudotime never
    puts a later cell before an earlier one, −1 when it reverses them all. Computed in
    O(N log N) as ``Σ_k (2k − N + 1) t_(k)`` (0-based k) over the pseudotime order, divided
    by the same sum over the sorted times.
    """
    pseudotime = np.asarray(pseudotime, np.float64)
    true_time = np.asarray(true_time, np.float64)
    n = len(true_time)
    weights = 2 * np.arange(n) - n + 1
    achieved = np.sum(weights * true_time[np.argsort(pseudotime, kind="stable")])
    best = np.sum(weights * np.sort(true_time))
    return float(achieved / best) if best > 0 else float("nan")


def kendall_tau(pseudotime, true_time) -> float:
    """Kendall's rank correlation (tau-b, scipy) between pseudotime and true time (KOR)."""
    return float(kendalltau(pseudotime, true_time).statistic)
