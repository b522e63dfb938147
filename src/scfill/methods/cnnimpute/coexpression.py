"""cnnImpute's gene selection: target genes, the input-gene pool, and co-expressed inputs.

Paper (Zhang et al. 2024, Methods, "CNN-based model construction"):

- a *target* gene has at least one missing entry (dropout probability > T);
- the *input pool* holds genes missing in at most P % of cells;
- targets are split, in their given order, into subsets of N genes (two halves when they
  all fit in one: :func:`split_size`);
- each target takes the 5 pool genes outside its subset with the highest Pearson
  correlation to it; a subset's inputs are these genes target by target, duplicates removed.

Correlations are computed one target subset at a time as a float32 block (subset × pool) from
the sparse matrix, never as a genes × genes matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Index that marks an empty slot (padding) in target and input layouts.
PAD = -1
#: Densified entries (both sides together) per block of cells in :func:`_cross_product`
#: (float32: 64 MiB).
CROSS_BLOCK_ENTRIES = 1 << 24


@dataclass(frozen=True)
class SubsetLayout:
    """Genes of one model: its targets (outputs) and its inputs, both padded.

    Attributes
    ----------
    targets
        Gene indices of the outputs, length ``subset_size``; :data:`PAD` after the real ones.
    inputs
        Gene indices of the inputs, length ``subset_size · inputs_per_target``; :data:`PAD`
        after the real ones (padding is fed as zeros).
    """

    targets: np.ndarray
    inputs: np.ndarray

    @property
    def n_targets(self) -> int:
        """Number of real (unpadded) targets."""
        return int(np.count_nonzero(self.targets != PAD))

    @property
    def n_inputs(self) -> int:
        """Number of real (unpadded) inputs; they come first, the padding after them."""
        return int(np.count_nonzero(self.inputs != PAD))


def target_and_pool(
    missing: sp.csr_matrix, expressed: np.ndarray, pool_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of target genes and of input-pool genes.

    Parameters
    ----------
    missing
        Boolean cells × genes CSR, True where an entry is missing (probability > T).
    expressed
        Boolean per gene: at least one non-zero count in these cells (all-zero genes are
        neither targets nor inputs).
    pool_fraction
        P: a pool gene is missing in at most this fraction of cells (paper: 0.5).
    """
    n_missing = missing.getnnz(axis=0)
    targets = np.flatnonzero((n_missing > 0) & expressed)
    pool = np.flatnonzero((n_missing <= pool_fraction * missing.shape[0]) & expressed)
    return targets, pool


def top_correlated(
    values: sp.csr_matrix | np.ndarray, targets: np.ndarray, pool: np.ndarray, k: int
) -> np.ndarray:
    """For each target, the ``k`` pool genes outside ``targets`` most correlated with it.

    Parameters
    ----------
    values
        Cells × genes expression (the work space).
    targets
        Gene indices of one subset; pool genes in it are excluded (paper).
    pool
        Gene indices of the input pool.
    k
        Inputs per target (paper: 5).

    Returns
    -------
    ``len(targets) × k`` gene indices, best first; :data:`PAD` where fewer than ``k`` pool
    genes with a defined correlation are left (constant genes have none).
    """
    corr = correlation_block(values, targets, pool)
    corr[:, np.isin(pool, targets)] = -np.inf
    k_eff = min(k, pool.size)
    out = np.full((targets.size, k), PAD, dtype=np.int64)
    if k_eff == 0:
        return out
    part = np.argpartition(-corr, k_eff - 1, axis=1)[:, :k_eff]
    part_corr = np.take_along_axis(corr, part, axis=1)
    order = np.argsort(-part_corr, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    best_corr = np.take_along_axis(part_corr, order, axis=1)
    out[:, :k_eff] = np.where(np.isfinite(best_corr), pool[best], PAD)
    return out


def correlation_block(
    values: sp.csr_matrix | np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Pearson correlations (float32) between genes ``rows`` and genes ``cols``.

    Computed as ``(XᵣᵀX꜀ / n − mᵣm꜀ᵀ) / (sᵣs꜀ᵀ)`` from the (sparse) matrix, so that only the
    ``len(rows) × len(cols)`` block is ever dense. A pair with a constant gene is ``-inf``
    (no correlation, never selected).
    """
    n = values.shape[0]
    if sp.issparse(values):
        cross, (mean_l, sd_l), (mean_r, sd_r) = _cross_product(values, rows, cols)
    else:
        left, right = _columns(values, rows), _columns(values, cols)
        (mean_l, sd_l), (mean_r, sd_r) = _mean_sd(left), _mean_sd(right)
        cross = left.T @ right
    corr = cross.astype(np.float32) / np.float32(n)
    corr -= np.outer(mean_l, mean_r)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr /= np.outer(sd_l, sd_r)
    corr[~np.isfinite(corr)] = -np.inf
    return np.clip(corr, None, 1.0, out=corr)


def _cross_product(values: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, *,
                   block_entries: int = CROSS_BLOCK_ENTRIES) -> tuple:
    """``XᵣᵀX꜀`` (float64, ``len(rows) × len(cols)``) and the column means and population
    standard deviations of ``Xᵣ`` and ``X꜀`` (float32), from CSR ``values``.

    Summed over blocks of cells, each densified once (float32, ``block_entries`` entries)
    for a dense matrix product: the sparse × sparse product of two mostly filled matrices
    (80 % non-zeros) ran for more than ten minutes at 100,000 cells without finishing, and
    slicing the sparse columns first cost 10 s a block of targets.
    """
    n_cells, n_genes = values.shape
    step = max(1, block_entries // max(n_genes, 1))
    cross = np.zeros((rows.size, cols.size), dtype=np.float64)
    sums = {name: np.zeros(idx.size) for name, idx in (("rows", rows), ("cols", cols))}
    squares = {"rows": np.zeros(rows.size), "cols": np.zeros(cols.size)}
    for start in range(0, n_cells, step):
        dense = values[start:start + step].toarray().astype(np.float32, copy=False)
        left, right = dense[:, rows], dense[:, cols]
        cross += left.T @ right
        for name, part in (("rows", left), ("cols", right)):
            sums[name] += part.sum(axis=0, dtype=np.float64)
            squares[name] += np.square(part, dtype=np.float64).sum(axis=0)
    moments = []
    for name in ("rows", "cols"):
        mean = sums[name] / n_cells
        sd = np.sqrt(np.maximum(squares[name] / n_cells - mean**2, 0.0))
        moments.append((mean.astype(np.float32), sd.astype(np.float32)))
    return cross, moments[0], moments[1]


def _columns(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.asarray(values[:, idx], dtype=np.float32)


def _mean_sd(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population standard deviations (float32) of a dense block."""
    mean = block.mean(axis=0, dtype=np.float64)
    sd = np.sqrt(np.maximum(np.square(block, dtype=np.float64).mean(axis=0) - mean**2, 0.0))
    return mean.astype(np.float32), sd.astype(np.float32)


def input_layout(top: np.ndarray, n_slots: int) -> np.ndarray:
    """A subset's input genes: ``top`` read target by target, duplicates removed.

    A gene chosen by several targets stays at its first place (next to the first target
    that chose it, so neighbouring inputs remain co-expressed); the freed slots go to the
    end as :data:`PAD`, i.e. zero inputs — the paper's own padding for short inputs. The
    length stays ``n_slots`` (= subset size × inputs per target) so every model of a run
    has the same shape.
    """
    flat = top.ravel()
    flat = flat[flat != PAD]
    _, first = np.unique(flat, return_index=True)
    genes = flat[np.sort(first)]
    out = np.full(n_slots, PAD, dtype=np.int64)
    out[:genes.size] = genes
    return out


def split_size(n_targets: int, subset_size: int, min_size: int) -> int:
    """Targets per subset: ``subset_size`` (paper: 512), or half the targets when they all
    fit in one subset.

    With a single subset every pool gene that is also a target is excluded from the inputs
    (paper: inputs lie outside the target's subset), and when most genes are targets — any
    panel of fewer than ~512 genes — nothing is left: the model would see only padding.
    Splitting into two subsets lets each half take its inputs from the other. ``min_size``
    keeps the input long enough for the network.
    """
    if n_targets > subset_size:
        return subset_size
    return min(subset_size, max(-(-n_targets // 2), min_size))


def subset_layouts(
    values: sp.csr_matrix | np.ndarray,
    targets: np.ndarray,
    pool: np.ndarray,
    *,
    subset_size: int,
    inputs_per_target: int,
) -> Iterator[SubsetLayout]:
    """Split ``targets`` (in order, not sorted) into subsets and choose each one's inputs."""
    n_slots = subset_size * inputs_per_target
    for start in range(0, targets.size, subset_size):
        subset = targets[start:start + subset_size]
        top = top_correlated(values, subset, pool, inputs_per_target)
        padded = np.full(subset_size, PAD, dtype=np.int64)
        padded[:subset.size] = subset
        yield SubsetLayout(targets=padded, inputs=input_layout(top, n_slots))
