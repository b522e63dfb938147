"""Reusable network blocks."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn


def dense_block(n_in: int, n_out: int) -> nn.Sequential:
    """``Linear → LayerNorm → SiLU``: a fully connected hidden layer (MaskClass §2.3)."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.SiLU())


def dense_stack(widths: Sequence[int]) -> nn.Sequential:
    """Consecutive :func:`dense_block` layers through ``widths`` (``[in, h1, ..., out]``)."""
    return nn.Sequential(*(dense_block(a, b) for a, b in pairwise(widths)))
