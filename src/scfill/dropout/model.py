"""The fitted dropout model as an object: probabilities for a block of cells, on demand.

A model keeps its fitted parameters (per gene, or per group and gene) and the counts of the
cells it was fitted on; :meth:`DropoutModel.probability` computes the dense probabilities
of any rows when they are needed, so no cells × genes matrix of probabilities is stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from scfill.rows import row_blocks

#: Rows of a model: a slice of cells or an array of cell indices.
Rows = slice | np.ndarray


class DropoutModel(ABC):
    """Probability that each observed zero of a set of cells is a technical dropout.

    Parameters
    ----------
    counts
        The raw counts (CSR, cells × genes) of the cells the model describes; their
        non-zero entries get probability 0.
    params
        Fitted parameters, as arrays (documented by each model).
    summary
        Plain-JSON facts for ``uns["scfill"]["dropout_summary"]``.
    """

    #: Name of the model (``scfill.dropout.MODELS``).
    name: str = ""

    def __init__(self, counts: sp.csr_matrix | None, params: dict[str, np.ndarray] | None = None,
                 summary: dict[str, Any] | None = None) -> None:
        self.counts = counts
        self.params = params or {}
        self.summary = summary or {}

    @property
    def shape(self) -> tuple[int, int]:
        """cells × genes."""
        return self.counts.shape

    def probability(self, rows: Rows) -> np.ndarray:
        """Dense float32 probabilities of the cells ``rows``: 0 at non-zero counts."""
        block = np.asarray(self._zero_probability(rows), dtype=np.float32)
        part = self.counts[rows]
        block[np.repeat(np.arange(part.shape[0]), np.diff(part.indptr)), part.indices] = 0
        return block

    def __getitem__(self, rows: Rows) -> np.ndarray:
        """``probability(rows)``: the model reads like a row-indexable matrix (for example
        as a field of :class:`scfill.nn.data.RowDataset`)."""
        return self.probability(rows)

    @abstractmethod
    def _zero_probability(self, rows: Rows) -> np.ndarray:
        """A new dense array: each entry of ``rows``'s cells as if it were a zero count."""

    def blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, probability(rows))`` over every cell, in row blocks."""
        for rows in row_blocks(*self.shape):
            yield rows, self.probability(rows)

    def matrix(self) -> sp.csr_matrix:
        """Every probability as one CSR float32 (values at zeros only); built block by block."""
        parts = [sp.csr_matrix(block) for _, block in self.blocks()]
        if not parts:
            return sp.csr_matrix(self.shape, dtype=np.float32)
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)

    def above(self, threshold: float) -> sp.csr_matrix:
        """Boolean CSR of the zeros whose probability is strictly above ``threshold``."""
        parts = [sp.csr_matrix(block > threshold) for _, block in self.blocks()]
        if not parts:
            return sp.csr_matrix(self.shape, dtype=bool)
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=bool)


class FixedDropout(DropoutModel):
    """Probabilities given as a matrix (user-supplied, or made up in a test).

    Parameters
    ----------
    probability
        cells × genes, values at observed zeros only (dense or sparse).
    """

    name = "fixed"

    def __init__(self, probability: sp.spmatrix | np.ndarray) -> None:
        super().__init__(None, summary={"model": self.name})
        self._matrix = sp.csr_matrix(probability, dtype=np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        """cells × genes."""
        return self._matrix.shape

    def probability(self, rows: Rows) -> np.ndarray:
        """The given values of ``rows``, dense float32."""
        return self._matrix[rows].toarray()

    def _zero_probability(self, rows: Rows) -> np.ndarray:
        return self.probability(rows)

    def matrix(self) -> sp.csr_matrix:
        """The given matrix."""
        return self._matrix
