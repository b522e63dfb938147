"""Preparation shared by every method: empty cells/genes, normalisation, gene selection.

Every transform here can be inverted, so a result can go back to counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: The output space every method returns ``imputed`` in (DESIGN.md).
COMMON_SPACE = "ln(1 + count * median_library_size / library_size)"


def nonempty(counts: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of cells and genes with at least one positive count."""
    positive = sp.csr_matrix(counts) > 0
    return positive.getnnz(axis=1) > 0, positive.getnnz(axis=0) > 0


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

    def transform(self, counts, library_sizes: np.ndarray):
        """Counts (CSR or dense, cells × genes) to this space; sparse stays sparse.

        With ``pseudocount != 1`` zeros map to ``log(pseudocount)`` and the result is dense.
        """
        scale = self._scale(library_sizes)
        log_base = np.log(self.base)
        if sp.issparse(counts) and self.pseudocount == 1.0:
            out = sp.csr_matrix(counts, dtype=np.float32, copy=True)
            out.data *= np.repeat(scale, np.diff(out.indptr)).astype(np.float32)
            np.log1p(out.data, out=out.data)
            out.data /= log_base
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
