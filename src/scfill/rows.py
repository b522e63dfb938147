"""Row blocks: how much of a cells × genes matrix is dense at any one time.

Everything that densifies rows of a large matrix (the dropout models, the methods'
reconstructions, the combine step, the output writer) walks it in the blocks given here, so
no dense cells × genes array exists anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Dense entries in one row block (float32: 16 MiB).
BLOCK_ELEMENTS = 1 << 22


def rows_per_block(n_cols: int, *, block_elements: int | None = None) -> int:
    """Rows of ``n_cols`` columns that fit in ``block_elements`` entries (at least 1;
    default :data:`BLOCK_ELEMENTS`, read at each call)."""
    return max(1, (block_elements or BLOCK_ELEMENTS) // max(n_cols, 1))


def row_blocks(n_rows: int, n_cols: int, *, block_elements: int | None = None
               ) -> Iterator[slice]:
    """Consecutive slices covering ``range(n_rows)``, each of about ``block_elements``."""
    step = rows_per_block(n_cols, block_elements=block_elements)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def column_max(matrix) -> np.ndarray:
    """Largest value of each column of a sparse matrix (unstored entries count as 0),
    computed over row blocks: scipy's ``max(axis=0)`` makes a CSC copy of the whole matrix."""
    n_rows, n_cols = matrix.shape
    blocks = [np.asarray(matrix[rows].max(axis=0).toarray()).ravel()
              for rows in row_blocks(n_rows, n_cols)]
    return np.maximum.reduce(blocks) if blocks else np.zeros(n_cols, dtype=matrix.dtype)
