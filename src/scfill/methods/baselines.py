"""Reference methods every table carries: no imputation, and kNN smoothing."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from scfill.methods.base import Method, PreparedData, register
from scfill.utils import check_number


@register
class NoImputation(Method):
    """The observed data, prepared like every other method's input (the floor)."""

    name = "none"
    description = "No imputation: the observed log-normalised data (the floor to beat)."
    dropout_model = None
    combine_rule = "none"
    min_cells = 1
    min_genes = 1

    def __init__(self) -> None:
        self.info_ = {}

    def fit(self, data: PreparedData) -> NoImputation:
        """Nothing to learn."""
        return self

    def reconstruct(self, data: PreparedData) -> sp.csr_matrix:
        """The observed values themselves (CSR)."""
        return data.logcounts

    def _get_state(self) -> tuple[dict, dict]:
        return {}, {}

    def _set_state(self, tensors: dict, extra: dict) -> None:
        """Nothing to restore."""


@register
class KNNImpute(Method):
    """Each zero takes the mean of the cell's ``k`` nearest cells in PCA space.

    A simple, fast baseline (kNN smoothing restricted to zeros): PCA of the common-space
    data (``n_pcs`` components, scanpy's sparse-aware PCA), exact or approximate nearest
    neighbours (scikit-learn below ``approximate_above`` cells, pynndescent above), and the
    neighbours' mean expression as the reconstruction. Observed non-zeros are kept and every
    zero is a candidate (``combine_rule="zeros"``). Transductive: the neighbours are among
    the fitted cells.

    Parameters
    ----------
    k
        Number of neighbours (the cell itself excluded).
    n_pcs
        PCA components (capped by the data's size).
    approximate_above
        Use pynndescent's approximate neighbours for more cells than this.
    """

    name = "knn"
    description = "Baseline: zeros take the mean of the k nearest cells in PCA space."
    dropout_model = None
    combine_rule = "zeros"
    min_cells = 3
    transductive = True

    def __init__(self, k: int = 10, n_pcs: int = 30, approximate_above: int = 50_000) -> None:
        self.k = k
        self.n_pcs = n_pcs
        self.approximate_above = approximate_above
        self.info_ = {}

    def check_params(self) -> None:
        """``k`` ≥ 1, ``n_pcs`` ≥ 1, ``approximate_above`` ≥ 0."""
        check_number("k", self.k, integer=True, low=1, method=self.name)
        check_number("n_pcs", self.n_pcs, integer=True, low=1, method=self.name)
        check_number("approximate_above", self.approximate_above, integer=True, low=0,
                     method=self.name)

    def fit(self, data: PreparedData) -> KNNImpute:
        """Find each cell's neighbours; stores ``neighbors_`` (cells × k indices)."""
        embedding = self._pca(data)
        k = min(self.k, data.n_cells - 1)
        if data.n_cells > self.approximate_above:
            from pynndescent import NNDescent

            index = NNDescent(embedding, n_neighbors=k + 1, random_state=data.seed)
            neighbors, _ = index.neighbor_graph
        else:
            from sklearn.neighbors import NearestNeighbors

            neighbors = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(
                embedding, return_distance=False)
        self.neighbors_ = _drop_self(neighbors, k)
        self.info_ = {"k": k, "n_pcs": embedding.shape[1]}
        return self

    def _pca(self, data: PreparedData) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD

        n_comps = max(1, min(self.n_pcs, data.n_cells - 1, data.n_genes - 1))
        centred_mean = np.asarray(data.logcounts.mean(axis=0)).ravel()
        svd = TruncatedSVD(n_components=n_comps, random_state=data.seed)
        # PCA of the centred data without densifying: SVD of X, then subtract the mean's
        # projection.
        scores = svd.fit_transform(data.logcounts)
        return scores - centred_mean @ svd.components_.T

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """Mean of the neighbours' common-space expression, in row blocks (dense float32)."""
        n, k = self.neighbors_.shape
        graph = sp.csr_matrix((np.full(n * k, 1.0 / k, dtype=np.float32),
                               self.neighbors_.ravel(), np.arange(0, n * k + 1, k)),
                              shape=(n, n))
        for rows in data.row_blocks():
            yield rows, (graph[rows] @ data.logcounts).toarray().astype(np.float32, copy=False)

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {"neighbors": torch.from_numpy(self.neighbors_)}, {}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Restore the neighbour indices."""
        self.neighbors_ = tensors["neighbors"].numpy()


def _drop_self(neighbors: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (or its last neighbour when it is absent): k per row."""
    rows = np.arange(neighbors.shape[0])[:, None]
    is_self = neighbors == rows
    # rows without themselves drop their farthest neighbour instead
    is_self[~is_self.any(axis=1), -1] = True
    return neighbors[~is_self].reshape(neighbors.shape[0], k)
