"""Minibatches from sparse matrices: rows stay sparse until a batch needs them dense.

:class:`RowDataset` holds named fields over the same rows (CSR matrices, dense arrays,
per-row labels), densifies the rows a batch asks for and optionally keeps the whole
densified result on the device. :class:`RowLoader` turns it into shuffled dict batches
(and shards them across the processes of a torchrun job). :func:`predict_blocks` runs a
function over every row in blocks, for reconstruction and prediction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from scfill.nn import distributed

Field = sp.spmatrix | np.ndarray
Batch = dict[str, torch.Tensor]
#: Default device cache limit of :class:`RowDataset`: 1.5 GiB of densified batch tensors
#: (MaskClass's three float32 cells × genes arrays at 2**27 entries each).
CACHE_BYTES = 12 * 2**27
#: Rows densified at once while filling the cache and in :func:`predict_blocks`.
ROW_BLOCK = 2048


def dense_rows(
    matrix: sp.spmatrix | np.ndarray, rows: np.ndarray, device: torch.device
) -> torch.Tensor:
    """Rows of ``matrix`` as a dense float32 tensor on ``device``."""
    block = matrix[rows]
    if sp.issparse(block):
        block = block.toarray()
    return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32)).to(device)


def _field_rows(field: Field, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Integer per-row arrays (labels) keep int64; everything else becomes float32."""
    if not sp.issparse(field) and np.issubdtype(np.asarray(field).dtype, np.integer):
        return torch.from_numpy(np.ascontiguousarray(field[rows], dtype=np.int64)).to(device)
    return dense_rows(field, rows, device)


class RowDataset:
    """Named fields over the same rows, densified one batch of rows at a time.

    Parameters
    ----------
    fields
        Name → CSR matrix, dense 2-D array or 1-D per-row array; all with the same number
        of rows. Sparse fields stay sparse: only the rows of a batch are densified.
    transform
        Applied to each densified batch (a dict of tensors on ``device``) and returns the
        batch the model sees (for example scaled values and masks derived from counts);
        None passes the densified fields through.
    device
        Where batches are built.
    cache_bytes
        When the transformed batches of all rows take at most this many bytes, they are
        computed once (in blocks of :data:`ROW_BLOCK` rows) and kept on ``device``; a batch
        is then one index. 0 never caches.

    Examples
    --------
    >>> data = RowDataset({"x": counts_csr}, device=torch.device("cpu"))
    >>> data[np.array([0, 5])]["x"].shape
    torch.Size([2, n_genes])
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        transform: Callable[[Batch], Batch] | None = None,
        device: torch.device | str = "cpu",
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        if not fields:
            raise ValueError("RowDataset needs at least one field")
        lengths = {name: field.shape[0] for name, field in fields.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"RowDataset fields differ in their number of rows: {lengths}")
        self.fields = dict(fields)
        self.transform = transform
        self.device = torch.device(device)
        self.n_rows = next(iter(lengths.values()))
        self._cache: Batch | None = None
        if cache_bytes > 0 and self.n_rows > 0:
            first = self._compute(np.arange(min(ROW_BLOCK, self.n_rows)))
            per_row = sum(t.element_size() * t[0].numel() for t in first.values())
            if per_row * self.n_rows <= cache_bytes:  # filled in place: no second copy
                cache = {name: t.new_empty((self.n_rows, *t.shape[1:]))
                         for name, t in first.items()}
                for a in range(0, self.n_rows, ROW_BLOCK):
                    stop = min(a + ROW_BLOCK, self.n_rows)
                    block = first if a == 0 else self._compute(np.arange(a, stop))
                    for name, tensor in block.items():
                        cache[name][a:stop] = tensor
                self._cache = cache

    def __len__(self) -> int:
        return self.n_rows

    @property
    def cached(self) -> bool:
        """Whether every row's batch tensors are held on the device."""
        return self._cache is not None

    def __getitem__(self, rows: np.ndarray) -> Batch:
        """The batch of ``rows`` (an integer index array)."""
        if self._cache is None:
            return self._compute(np.asarray(rows))
        index = torch.as_tensor(rows, device=self.device)
        # index_select: the same rows as tensor[index], measured 1.6 × faster on the CPU
        return {name: tensor.index_select(0, index) for name, tensor in self._cache.items()}

    def _compute(self, rows: np.ndarray) -> Batch:
        batch = {name: _field_rows(field, rows, self.device)
                 for name, field in self.fields.items()}
        return self.transform(batch) if self.transform is not None else batch


class RowLoader:
    """Dict batches of a :class:`RowDataset`, in order or shuffled with a numpy generator.

    Each pass (epoch) over the loader draws one permutation from ``rng``, so a seeded
    generator gives the same batches run after run, and the generator's state (saved by
    :meth:`state_dict`) is the loader's whole position between epochs.

    Under torchrun (a process group of more than one process) each process takes every
    ``world_size``-th row of the same permutation, padded with its first rows so every
    process has the same number of batches (the rule of PyTorch's ``DistributedSampler``);
    ``batch_size`` is then per process, and the processes' batches of one step together
    are the one-process batch of ``batch_size × world_size`` rows.

    Parameters
    ----------
    dataset
        The rows.
    batch_size
        Rows per batch (per process).
    shuffle
        Draw a new order every epoch from ``rng``.
    rng
        The generator for ``shuffle`` (or an int seed for one).
    rows
        Use only these rows (for example a training split), in this order before shuffling.
    min_batch
        Skip batches with fewer rows (for example 2 for BatchNorm).
    shard
        Split the rows across the processes of a torchrun job (default True).
    """

    def __init__(
        self,
        dataset: RowDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        rng: np.random.Generator | int | None = None,
        rows: np.ndarray | None = None,
        min_batch: int = 1,
        shard: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if shuffle and rng is None:
            raise ValueError("a shuffled RowLoader needs rng (a numpy Generator or a seed)")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(rng) if isinstance(rng, int) else rng
        self.rows = np.arange(len(dataset)) if rows is None else np.asarray(rows)
        self.min_batch = int(min_batch)
        self.shard = shard

    def _order(self, draw: bool) -> np.ndarray:
        order = self.rows
        if self.shuffle:
            permutation = self.rng.permutation(order.size) if draw else np.arange(order.size)
            order = order[permutation]
        rank, world = distributed.rank_and_world()
        if self.shard and world > 1 and order.size:
            padded = -(-order.size // world) * world
            order = np.resize(order, padded)[rank::world]
        return order

    def _batches(self, order: np.ndarray) -> list[np.ndarray]:
        starts = range(0, order.size, self.batch_size)
        return [b for b in (order[s:s + self.batch_size] for s in starts)
                if b.size >= self.min_batch]

    def __len__(self) -> int:
        """Batches per epoch (on this process)."""
        return len(self._batches(self._order(draw=False)))

    def __iter__(self) -> Iterator[Batch]:
        for rows in self._batches(self._order(draw=True)):
            yield self.dataset[rows]

    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator's state (JSON text), for a training checkpoint."""
        if self.rng is None:
            return {}
        return {"rng": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        if state.get("rng") is not None and self.rng is not None:
            self.rng.bit_generator.state = json.loads(state["rng"])


def predict_blocks(
    fn: Callable[[Batch], torch.Tensor],
    dataset: RowDataset,
    *,
    block_rows: int = ROW_BLOCK,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Run ``fn`` over every row of ``dataset`` in order, one block of rows at a time.

    ``fn`` gets a batch dict and returns a tensor with one row per input row; it runs under
    :func:`torch.no_grad`. The caller puts its modules in eval mode.

    Yields
    ------
    ``(rows, block)``: the slice of rows and ``fn``'s output for them as a numpy array.
    """
    with torch.no_grad():
        for start in range(0, len(dataset), block_rows):
            rows = slice(start, min(start + block_rows, len(dataset)))
            out = fn(dataset[np.arange(rows.start, rows.stop)])
            yield rows, out.detach().cpu().numpy()
