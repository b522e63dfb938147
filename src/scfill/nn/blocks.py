"""Reusable network blocks: a configurable fully connected layer and stacks of them."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn

#: Normalisations by name (None: none).
NORMS = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d}
#: Activations by name (None: linear).
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
               "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class FCBlock(nn.Sequential):
    """``Linear → norm → activation → dropout``: one fully connected hidden layer.

    The parts are numbered in that order (``0`` the Linear, ``1`` the norm, ...), and
    those set to None are left out.

    Parameters
    ----------
    n_in, n_out
        Input and output width.
    norm
        ``"layer"``, ``"batch"`` or None.
    activation
        A name of :data:`ACTIVATIONS` or None.
    dropout
        Dropout rate after the activation (0: no dropout layer).
    """

    def __init__(self, n_in: int, n_out: int, *, norm: str | None = "layer",
                 activation: str | None = "silu", dropout: float = 0.0) -> None:
        if norm is not None and norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)} or None, got {norm!r}")
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got "
                             f"{activation!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
        if norm is not None:
            layers.append(NORMS[norm](n_out))
        if activation is not None:
            layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


def fc_stack(widths: Sequence[int], **block: object) -> nn.Sequential:
    """Consecutive :class:`FCBlock` layers through ``widths`` (``[in, h1, ..., out]``);
    ``block`` are :class:`FCBlock`'s options, shared by every layer."""
    return nn.Sequential(*(FCBlock(a, b, **block) for a, b in pairwise(widths)))
