"""Sparse (CSR) output built block by block, without a second full copy at the end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Output buffers are sized to this × the expected non-zeros (and grown by it when short).
BUFFER_MARGIN = 1.05


@dataclass
class Block:
    """Consecutive CSR rows: entries per row, column indices and values (None: all True)."""

    row_counts: np.ndarray
    cols: np.ndarray
    values: np.ndarray | None


class CSRBuilder:
    """Appends CSR blocks of consecutive rows into growing buffers, then hands out the matrix.

    The buffers are sized from the first block (rows are exchangeable, so its density
    predicts the rest) and grown in place with ``ndarray.resize`` (``realloc``): the pieces
    are never all kept and joined, which would need a second full copy at the end.
    """

    def __init__(self, n_rows: int, n_cols: int, dtype: np.dtype | None) -> None:
        self.n_rows, self.n_cols, self.dtype = n_rows, n_cols, dtype
        self.row_counts: list[np.ndarray] = []
        self.indices = self.data = None
        self.size = 0

    def add(self, block: Block) -> None:
        if self.indices is None:
            rows = max(block.row_counts.size, 1)
            capacity = int(block.cols.size / rows * self.n_rows * BUFFER_MARGIN) + 1
            self.indices = np.empty(capacity, dtype=np.int32)
            self.data = None if self.dtype is None else np.empty(capacity, dtype=self.dtype)
        end = self.size + block.cols.size
        if end > self.indices.size:
            capacity = int(end * BUFFER_MARGIN) + 1
            for buffer in (self.indices, self.data):
                if buffer is not None:
                    buffer.resize(capacity, refcheck=False)
        self.indices[self.size:end] = block.cols
        if self.data is not None:
            self.data[self.size:end] = block.values
        self.size = end
        self.row_counts.append(block.row_counts)

    def build(self) -> sp.csr_matrix:
        indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
        np.cumsum(np.concatenate(self.row_counts), out=indptr[1:])
        for buffer in (self.indices, self.data):
            if buffer is not None:
                buffer.resize(self.size, refcheck=False)
        data = np.ones(self.size, dtype=bool) if self.dtype is None else self.data
        if self.size >= np.iinfo(np.int32).max:
            return sp.csr_matrix((data, self.indices.astype(np.int64), indptr),
                                 shape=(self.n_rows, self.n_cols))
        return sp.csr_matrix((data, self.indices, indptr.astype(np.int32)),
                             shape=(self.n_rows, self.n_cols))
