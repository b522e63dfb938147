"""Preparation shared by every method: empty cells/genes, normalisation, gene selection.

Every transform here can be inverted, so a result can go back to counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scfill.rows import row_blocks

#: The output space every method returns ``imputed`` in (DESIGN.md).
COMMON_SPACE = "ln(1 + count * median_library_size / library_size)"


def nonempty(counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of cells and genes with at least one positive count (read in row
    blocks: no copy of the matrix)."""
    counts = sp.csr_matrix(counts)
    n_cells, n_genes = counts.shape
    cells, genes = np.zeros(n_cells, dtype=bool), np.zeros(n_genes, dtype=bool)
    for rows in row_blocks(n_cells, n_genes):
        lo, hi = counts.indptr[rows.start], counts.indptr[rows.stop]
        positive = counts.data[lo:hi] > 0
        owner = np.repeat(np.arange(rows.start, rows.stop),
                          np.diff(counts.indptr[rows.start:rows.stop + 1]))
        cells[owner[positive]] = True
        genes[counts.indices[lo:hi][positive]] = True
    return cells, genes


def library_size(counts: sp.csr_matrix) -> np.ndarray:
    """Total count of each cell (float64)."""
    return np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()


@dataclass(frozen=True)
class LogNormalizer:
    """``x = log_base(1 + count · target / library_size)``, and its inverse.

    Parameters
    ----------
    target
        The library size every cell is scaled to: the median library size for the common
        space (scanpy's ``normalize_total`` default), 1e6 for CPM (cnnImpute).
    base
        Logarithm base: e (common space, scGACL, cnnImpute) or 2 (MaskClass).
    pseudocount
        Added before the log (1 everywhere but in the Gamma–Normal transform).
    """

    target: float
    base: float = np.e
    pseudocount: float = 1.0

    @classmethod
    def median(cls, library_sizes: np.ndarray, **kwargs) -> LogNormalizer:
        """The normaliser that scales to the median of ``library_sizes``."""
        return cls(target=float(np.median(library_sizes)), **kwargs)

    def _scale(self, library_sizes: np.ndarray) -> np.ndarray:
        return self.target / np.asarray(library_sizes, dtype=np.float64)

    def transform(self, counts, library_sizes: np.ndarray, *, share_structure: bool = False):
        """Counts (CSR or dense, cells × genes) to this space; sparse stays sparse.

        With ``pseudocount != 1`` zeros map to ``log(pseudocount)`` and the result is dense.
        A CSR result is computed in row blocks; with ``share_structure`` it shares the
        ``indices`` and ``indptr`` arrays of ``counts`` (only the values are new), which is
        safe when ``counts`` is in canonical form (sorted, no duplicates, no stored zeros):
        then no scipy operation changes those arrays in place.
        """
        scale = self._scale(library_sizes)
        log_base = np.log(self.base)
        if sp.issparse(counts) and self.pseudocount == 1.0:
            counts = sp.csr_matrix(counts)
            if share_structure:
                out = sp.csr_matrix((counts.data.astype(np.float32), counts.indices,
                                     counts.indptr), shape=counts.shape, copy=False)
            else:
                out = sp.csr_matrix(counts, dtype=np.float32, copy=True)
            for rows in row_blocks(*out.shape):
                part = slice(out.indptr[rows.start], out.indptr[rows.stop])
                values = out.data[part]
                values *= np.repeat(scale[rows], np.diff(out.indptr[rows.start:rows.stop + 1])
                                    ).astype(np.float32)
                np.log1p(values, out=values)
                values /= log_base
            return out
        dense = counts.toarray() if sp.issparse(counts) else np.asarray(counts, dtype=np.float64)
        return (np.log(dense * scale[:, None] + self.pseudocount) / log_base).astype(np.float32)

    def inverse(self, values, library_sizes: np.ndarray) -> np.ndarray:
        """This space back to counts (dense float32 or CSR, like the input)."""
        scale = self._scale(library_sizes)
        if sp.issparse(values) and self.pseudocount == 1.0:
            out = sp.csr_matrix(values, dtype=np.float32, copy=True)
            out.data = np.expm1(out.data * np.log(self.base)).astype(np.float32)
            out.data /= np.repeat(scale, np.diff(out.indptr)).astype(np.float32)
            return out
        dense = values.toarray() if sp.issparse(values) else np.asarray(values, np.float64)
        counts = (np.power(self.base, dense) - self.pseudocount) / scale[:, None]
        return np.maximum(counts, 0).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain-JSON description, for ``uns``."""
        return {"target": self.target, "base": float(self.base), "pseudocount": self.pseudocount}


def highly_variable(logcounts: sp.csr_matrix, n_top_genes: int) -> np.ndarray:
    """Boolean mask of the ``n_top_genes`` most variable genes (scanpy's Seurat flavour)."""
    import anndata as ad
    import scanpy as sc

    if n_top_genes >= logcounts.shape[1]:
        return np.ones(logcounts.shape[1], dtype=bool)
    frame = sc.pp.highly_variable_genes(ad.AnnData(logcounts), n_top_genes=n_top_genes,
                                        flavor="seurat", inplace=False)
    return frame["highly_variable"].to_numpy()
