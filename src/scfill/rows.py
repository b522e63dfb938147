"""Row blocks: how much of a cells × genes matrix is dense at any one time.

Everything that densifies rows of a large matrix (the dropout models, the methods'
reconstructions, the combine step, the output writer) walks it in the blocks given here, so
no dense cells × genes array exists anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator

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
