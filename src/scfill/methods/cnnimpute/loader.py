"""A training loader whose epoch holds at least a given number of steps.

Early stopping counts epochs; with the fast profile's large batch a small dataset has few
steps an epoch (1,000 cells: 8 steps at batch 128), so two epochs of patience are a few
dozen steps and training stops long before the paper's schedule would. An epoch of
:class:`StepsLoader` passes over the training cells as many times as it takes to reach
``min_steps`` (each pass a fresh shuffle), so patience means about the same amount of
training at every dataset size; a dataset with that many steps a pass is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from scfill.nn import RowLoader
from scfill.nn.plan import Batch


class StepsLoader(RowLoader):
    """:class:`~scfill.nn.RowLoader` whose epoch is ``passes`` shuffled passes, the fewest
    with at least ``min_steps`` batches (1 pass when one already has that many).

    Parameters
    ----------
    *args, **kwargs
        As :class:`~scfill.nn.RowLoader`.
    min_steps
        Fewest batches an epoch holds (1: one pass, the plain loader).
    """

    def __init__(self, *args, min_steps: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        per_pass = super().__len__()
        self.passes = max(1, math.ceil(min_steps / per_pass)) if per_pass else 1

    def __len__(self) -> int:
        """Batches per epoch (on this process)."""
        return self.passes * super().__len__()

    def __iter__(self) -> Iterator[Batch]:
        for _ in range(self.passes):
            yield from super().__iter__()
