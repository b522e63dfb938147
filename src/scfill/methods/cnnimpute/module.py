"""cnnImpute's network (pure torch): a 1-D CNN from co-expressed inputs to target genes.

Paper (Zhang et al. 2024, Fig. 1B and Methods): input (``n_inputs`` × 1) →
Conv1D(16, k=3, ReLU) → MaxPool(2) → BatchNorm → Conv1D(16, k=3, ReLU) → MaxPool(2) →
BatchNorm → flatten → Dropout(0.3) → Dense(1024, ReLU) → Dense(``n_outputs``). The output is
kept non-negative with a ReLU, as in the authors' code (expression is ≥ 0 in log space).

``head="gap"`` is the authors' code instead of the paper: after the second convolution a
global average pool (16 numbers) replaces MaxPool → BatchNorm → flatten, then BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from scfill.nn.losses import weighted_mse

#: Convolution filters, kernel size and pooling width (paper, Methods).
FILTERS, KERNEL, POOL = 16, 3, 2
#: Width of the hidden dense layer (paper, Methods).
HIDDEN = 1024
HEADS = ("flatten", "gap")
#: Shortest input both heads accept: conv → pool → conv → pool leaves one position.
MIN_INPUTS = 10


def flat_length(n_inputs: int) -> int:
    """Positions left after conv → pool → conv → pool on ``n_inputs`` inputs (flatten head)."""
    after_first = (n_inputs - KERNEL + 1) // POOL
    return (after_first - KERNEL + 1) // POOL


class CoexpressionCNN(nn.Module):
    """The cnnImpute network for one target subset.

    Parameters
    ----------
    n_inputs
        Input genes (paper: 2560 = 5 × 512).
    n_outputs
        Target genes (paper: 512).
    head
        ``"flatten"`` (paper) or ``"gap"`` (authors' code: global average pool).
    dropout
        Dropout rate before the dense layer (paper: 0.3).
    """

    def __init__(self, n_inputs: int, n_outputs: int, *, head: str = "flatten",
                 dropout: float = 0.3) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        layers: list[nn.Module] = [
            nn.Conv1d(1, FILTERS, KERNEL), nn.ReLU(), nn.MaxPool1d(POOL),
            nn.BatchNorm1d(FILTERS),
            nn.Conv1d(FILTERS, FILTERS, KERNEL), nn.ReLU(),
        ]
        if head == "flatten":
            layers += [nn.MaxPool1d(POOL), nn.BatchNorm1d(FILTERS), nn.Flatten()]
            n_features = FILTERS * flat_length(n_inputs)
        else:
            layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.BatchNorm1d(FILTERS)]
            n_features = FILTERS
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(n_features, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, n_outputs), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: batch × n_inputs → batch × n_outputs."""
        return self.head(self.features(x.unsqueeze(1)))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``mask`` is True (paper: missing entries and
    padding are masked); 0 when nothing is observed."""
    return weighted_mse(pred, target, mask)
