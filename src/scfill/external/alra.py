"""ALRA: zero-preserving imputation by adaptively thresholded low-rank approximation.

Implemented from the paper: Linderman, Zhao, Roulis, Bielecki, Kluger et al.,
"Zero-preserving imputation of single-cell RNA-seq data", Nature Communications 13, 192
(2022) (preprint bioRxiv 397588, 2018). The steps, on a normalised cells × genes matrix
``A``:

1. **Rank.** Compute the top ``max_rank`` (paper: 100) singular values by randomized SVD
   and the gaps between consecutive ones. The gaps from the ``noise_start``-th (paper: 80)
   on are taken as noise; ``k`` is the largest index whose gap exceeds the noise gaps' mean
   by more than ``n_sd`` (paper: 6) of their standard deviations.
2. **Low rank.** ``A_k``, the rank-``k`` randomized-SVD approximation of ``A``.
3. **Threshold.** For each gene, entries of ``A_k`` at or below the magnitude of the gene's
   ``quantile`` (paper: 0.001) quantile are set to zero: the most negative values estimate
   the symmetric noise around the true zeros.
4. **Rescale.** The remaining (positive) entries of each gene are shifted and scaled to
   have the mean and standard deviation of the gene's observed non-zero values; values
   pushed below zero are set to zero.
5. **Restore.** Observed non-zeros that the model set to zero get their observed values
   back.

The randomized SVD is scikit-learn's :func:`~sklearn.utils.extmath.randomized_svd`; its
``n_iter`` plays the role of the power iterations ``q`` in the paper's software (2 for
choosing the rank, 10 for the approximation). The input stays sparse up to the low-rank
matrix, which is dense by nature.

Deviations, each forced by something outside the paper:

- The normalisation is scfill's common space, ln(1 + count · median / library size),
  instead of the paper's scaling to 10,000 counts: every method is compared in one space
  (DESIGN.md), and the two differ only by a per-matrix constant inside the log.
- Matrices too small for 100 singular values use ``max_rank = min(dim) - 1`` and a noise
  start at the same fraction (80 %) of it; the paper's software refuses them.
- When no gap passes the threshold (the paper's software then fails) the largest gap sets
  ``k``; :attr:`ALRA.info_` records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.extmath import randomized_svd

from scfill._logging import logger
from scfill.errors import InputError
from scfill.methods.base import Method, PreparedData, register
from scfill.rows import row_blocks
from scfill.utils import check_number

#: Singular values computed to choose the rank (paper: 100).
MAX_RANK = 100
#: Index (1-based) of the first singular value taken as noise (paper: 80).
NOISE_START = 80
#: A gap counts as signal when it is this many noise sds above the noise mean (paper: 6).
N_SD = 6.0
#: Per-gene quantile of the low-rank matrix whose magnitude is the threshold (paper: 0.001).
QUANTILE = 1e-3
#: Power iterations of the randomized SVD: choosing k, then the approximation (paper: 2, 10).
N_ITER_CHOOSE = 2
N_ITER = 10
#: Fewest singular values taken as noise when the rank is chosen (paper's software: 5).
MIN_NOISE_VALUES = 5


@dataclass(frozen=True)
class RankChoice:
    """Outcome of :func:`choose_rank`.

    Attributes
    ----------
    k
        The chosen rank.
    singular_values
        The ``max_rank`` singular values computed.
    n_sds
        Each gap expressed in noise standard deviations above the noise mean.
    fallback
        True when no gap passed the threshold and the largest gap was used.
    """

    k: int
    singular_values: np.ndarray
    n_sds: np.ndarray
    fallback: bool


def _rank_limits(shape: tuple[int, int], max_rank: int, noise_start: int) -> tuple[int, int]:
    """``max_rank`` and ``noise_start`` shrunk to what a matrix of ``shape`` allows."""
    smallest = min(shape)
    if smallest - 1 < MIN_NOISE_VALUES + 2:
        raise InputError(f"ALRA needs at least {MIN_NOISE_VALUES + 3} cells and genes; the "
                         f"matrix is {shape[0]} x {shape[1]}.",
                         fix="give more cells and genes, or pick another method.")
    if max_rank <= smallest - 1:
        return max_rank, noise_start
    limited = smallest - 1
    return limited, max(2, round(limited * noise_start / max_rank))


def choose_rank(
    matrix: np.ndarray | sp.spmatrix,
    *,
    max_rank: int = MAX_RANK,
    noise_start: int = NOISE_START,
    n_sd: float = N_SD,
    n_iter: int = N_ITER_CHOOSE,
    seed: int = 0,
) -> RankChoice:
    """Choose the rank of ``matrix`` from the gaps between its singular values (ALRA step 1).

    Parameters
    ----------
    matrix
        Normalised cells × genes matrix (dense or sparse).
    max_rank
        Number of singular values computed.
    noise_start
        1-based index of the first singular value taken as noise; the gaps from there to
        ``max_rank`` give the noise mean and standard deviation.
    n_sd
        A gap is signal when it exceeds the noise mean by more than ``n_sd`` sds.
    n_iter
        Power iterations of the randomized SVD.
    seed
        Seed of the randomized SVD.

    Returns
    -------
    The chosen rank and the numbers behind it.
    """
    max_rank, noise_start = _rank_limits(matrix.shape, max_rank, noise_start)
    if noise_start > max_rank - MIN_NOISE_VALUES:
        raise InputError(f"ALRA: noise_start={noise_start} leaves fewer than "
                         f"{MIN_NOISE_VALUES} singular values as noise (max_rank={max_rank}).",
                         fix=f"use noise_start <= max_rank - {MIN_NOISE_VALUES}.")
    _, values, _ = randomized_svd(matrix, n_components=max_rank, n_iter=n_iter,
                                  random_state=seed)
    gaps = values[:-1] - values[1:]
    # gap i (0-based) lies between singular values i+1 and i+2 (1-based)
    noise = gaps[noise_start - 1:]
    spread = noise.std(ddof=1)
    n_sds = (gaps - noise.mean()) / spread if spread > 0 else np.zeros_like(gaps)
    signal = np.flatnonzero(n_sds > n_sd)
    fallback = signal.size == 0
    k = int(np.argmax(gaps) + 1) if fallback else int(signal[-1] + 1)
    return RankChoice(k=k, singular_values=values, n_sds=n_sds, fallback=fallback)


def _nonzero_column_stats(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and sample sd (ddof=1) of the stored non-zero values of ``matrix``."""
    values = matrix.data.astype(np.float64)
    keep = values != 0
    columns = matrix.indices[keep]
    values = values[keep]
    n_genes = matrix.shape[1]
    count = np.bincount(columns, minlength=n_genes).astype(np.float64)
    total = np.bincount(columns, weights=values, minlength=n_genes)
    squares = np.bincount(columns, weights=values ** 2, minlength=n_genes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = (squares - count * mean ** 2) / (count - 1)
    return mean, np.sqrt(np.maximum(var, 0))


def _dense_nonzero_column_stats(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and sample sd of the non-zero entries of a dense matrix."""
    present = matrix != 0
    count = present.sum(axis=0).astype(np.float64)
    total = matrix.sum(axis=0, dtype=np.float64)
    squares = np.einsum("ij,ij->j", matrix, matrix, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = (squares - count * mean ** 2) / (count - 1)
    return mean, np.sqrt(np.maximum(var, 0))


@dataclass
class AlraFit:
    """ALRA fitted to a matrix: the rank-``k`` factors and the per-gene steps 3–4, from
    which any row block of the result is computed (:meth:`block`).

    Attributes
    ----------
    scores, components
        ``A_k = scores @ components`` (cells × k and k × genes, float32).
    threshold
        Per gene: entries of ``A_k`` at or below it are zero (step 3).
    ratio, shift
        Per gene: kept entries become ``ratio · a + shift`` (step 4).
    choice
        How ``k`` was chosen (None when it was given).
    """

    scores: np.ndarray
    components: np.ndarray
    threshold: np.ndarray
    ratio: np.ndarray
    shift: np.ndarray
    choice: RankChoice | None

    @property
    def k(self) -> int:
        """The rank."""
        return self.components.shape[0]

    def block(self, rows: slice, observed: sp.csr_matrix) -> np.ndarray:
        """Steps 2–5 for the cells ``rows``; ``observed`` holds those rows of the input."""
        low_rank = self.scores[rows] @ self.components
        zero = low_rank <= self.threshold
        low_rank *= self.ratio
        low_rank += self.shift
        low_rank[zero] = 0
        np.maximum(low_rank, 0, out=low_rank)
        # step 5: observed non-zeros the model zeroed get their values back
        entries = sp.coo_matrix(observed)
        nonzero = entries.data != 0
        row, col, value = entries.row[nonzero], entries.col[nonzero], entries.data[nonzero]
        lost = low_rank[row, col] == 0
        low_rank[row[lost], col[lost]] = value[lost]
        return low_rank


def fit_alra(
    matrix: np.ndarray | sp.spmatrix,
    *,
    k: int | None = None,
    quantile: float = QUANTILE,
    max_rank: int = MAX_RANK,
    noise_start: int = NOISE_START,
    n_sd: float = N_SD,
    n_iter: int = N_ITER,
    seed: int = 0,
) -> AlraFit:
    """Fit ALRA to a normalised cells × genes matrix (module docstring, steps 1–4).

    Parameters
    ----------
    matrix
        Non-negative normalised expression (e.g. log-normalised counts), dense or sparse;
        a sparse input is never densified.
    k
        Rank of the approximation; None chooses it with :func:`choose_rank`.
    quantile
        Per-gene quantile of the low-rank matrix whose magnitude is the zero threshold.
    max_rank, noise_start, n_sd
        Passed to :func:`choose_rank`.
    n_iter
        Power iterations of the randomized SVD of the approximation.
    seed
        Seed of the randomized SVDs.

    The per-gene quantiles and statistics of ``A_k`` are computed over blocks of genes
    (each cells × a few genes), so ``A_k`` is never held whole.
    """
    choice = None
    if k is None:
        choice = choose_rank(matrix, max_rank=max_rank, noise_start=noise_start, n_sd=n_sd,
                             seed=seed)
        k = choice.k
    if not 1 <= k < min(matrix.shape):
        raise InputError(f"ALRA rank k={k} is out of range for a {matrix.shape[0]} x "
                         f"{matrix.shape[1]} matrix.",
                         fix=f"use 1 <= k < {min(matrix.shape)}, or k=None to choose it.")
    u, s, vt = randomized_svd(matrix, n_components=k, n_iter=n_iter, random_state=seed)
    scores, components = (u * s).astype(np.float32), vt.astype(np.float32)
    n_cells, n_genes = matrix.shape
    threshold = np.empty(n_genes, dtype=np.float32)
    kept_mean, kept_sd = np.empty(n_genes), np.empty(n_genes)
    for cols in row_blocks(n_genes, n_cells):  # blocks of genes: columns of A_k
        low_rank = scores @ components[:, cols]
        # step 3: per-gene threshold at the magnitude of the gene's most negative values
        threshold[cols] = np.abs(np.quantile(low_rank, quantile, axis=0))
        low_rank[low_rank <= threshold[cols]] = 0
        kept_mean[cols], kept_sd[cols] = _dense_nonzero_column_stats(low_rank)
    # step 4: match the observed non-zero mean and sd, gene by gene (vectorised)
    observed_mean, observed_sd = _nonzero_column_stats(sp.csr_matrix(matrix, dtype=np.float32))
    scalable = np.isfinite(kept_sd) & np.isfinite(observed_sd) & (kept_sd > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(scalable, observed_sd / kept_sd, 1.0).astype(np.float32)
        shift = np.where(scalable, observed_mean - kept_mean * ratio, 0.0).astype(np.float32)
    logger.info("ALRA: rank %d", k)
    return AlraFit(scores, components, threshold, ratio, shift, choice)


def alra(matrix: np.ndarray | sp.spmatrix, **options) -> tuple[np.ndarray, RankChoice | None]:
    """ALRA's whole result for a small matrix (steps 1–5), as one dense array.

    ``options`` go to :func:`fit_alra`. Returns the imputed matrix (dense float32: zero
    where the model says zero, non-negative elsewhere) and how ``k`` was chosen (None when
    it was given). The method (:class:`ALRA`) streams the same rows block by block instead.
    """
    fit = fit_alra(matrix, **options)
    observed = sp.csr_matrix(matrix, dtype=np.float32)
    imputed = np.vstack([fit.block(rows, observed[rows])
                         for rows in row_blocks(*matrix.shape)])
    return imputed, fit.choice


@register
class ALRA(Method):
    """ALRA (Linderman et al. 2022) on the common-space matrix; see :mod:`scfill.external.alra`.

    Parameters
    ----------
    k
        Rank of the approximation; None chooses it from the singular-value gaps.
    quantile
        Per-gene quantile of the low-rank matrix whose magnitude is the zero threshold
        (paper: 0.001).
    max_rank, noise_start, n_sd
        Rank choice: singular values computed (paper: 100), first one taken as noise
        (paper: 80) and the signal threshold in noise sds (paper: 6).

    Notes
    -----
    ALRA's output is final (it keeps its own zeros, rescales and restores non-zeros), so the
    method returns it as is (``combine_rule="all"``) and needs no dropout model.
    """

    name = "alra"
    description = "Peer: ALRA zero-preserving low-rank approximation (Linderman et al. 2022)."
    dropout_model = None
    combine_rule = "all"
    min_cells = 8
    min_genes = 8
    transductive = True

    def __init__(self, k: int | None = None, quantile: float = QUANTILE,
                 max_rank: int = MAX_RANK, noise_start: int = NOISE_START,
                 n_sd: float = N_SD) -> None:
        self.k = k
        self.quantile = quantile
        self.max_rank = max_rank
        self.noise_start = noise_start
        self.n_sd = n_sd
        self.info_ = {}

    def check_params(self) -> None:
        """``k`` ≥ 1 or None, ``0 < quantile < 0.5``, ranks ≥ 2, ``n_sd`` > 0."""
        if self.k is not None:
            check_number("k", self.k, integer=True, low=1, method=self.name)
        check_number("quantile", self.quantile, low=0, high=0.5, low_open=True,
                     method=self.name)
        check_number("max_rank", self.max_rank, integer=True, low=MIN_NOISE_VALUES + 2,
                     method=self.name)
        check_number("noise_start", self.noise_start, integer=True, low=2,
                     high=self.max_rank - MIN_NOISE_VALUES, method=self.name)
        check_number("n_sd", self.n_sd, low=0, low_open=True, method=self.name)

    def fit(self, data: PreparedData) -> ALRA:
        """Fit the low-rank model; stores ``fit_`` and the chosen rank in ``info_``."""
        self.check_params()
        self.fit_ = fit_alra(data.logcounts, k=self.k, quantile=self.quantile,
                             max_rank=self.max_rank, noise_start=self.noise_start,
                             n_sd=self.n_sd, seed=data.seed)
        choice = self.fit_.choice
        self.info_ = {"k": self.fit_.k,
                      "k_fallback": False if choice is None else choice.fallback}
        return self

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """The ALRA result, in row blocks (dense float32)."""
        for rows in data.row_blocks():
            yield rows, self.fit_.block(rows, data.logcounts[rows])

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        names = ("scores", "components", "threshold", "ratio", "shift")
        return {n: torch.from_numpy(getattr(self.fit_, n)) for n in names}, {}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Restore the factors and the per-gene steps."""
        names = ("scores", "components", "threshold", "ratio", "shift")
        self.fit_ = AlraFit(*(tensors[n].numpy() for n in names), choice=None)
