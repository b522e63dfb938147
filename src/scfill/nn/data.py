"""Minibatches from sparse matrices: rows stay sparse until a batch needs them dense."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch


def batch_indices(
    n: int, batch_size: int, *, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Yield index arrays covering ``range(n)`` in batches, shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def dense_rows(
    matrix: sp.csr_matrix | np.ndarray, rows: np.ndarray, device: torch.device
) -> torch.Tensor:
    """Rows of ``matrix`` as a dense float32 tensor on ``device``."""
    block = matrix[rows]
    if sp.issparse(block):
        block = block.toarray()
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)
