"""scMASKGAN's gene images: the row-wise N × N layout, the observation masks, [0, 1] scaling.

Paper, "Data preprocessing" (eq. 1): each cell's m genes are zero-padded to N × N,
N = ceil(sqrt(m)), and laid out row-wise, gene j at pixel (j // N, j % N). A binary mask of
the same size is 1 at observed (non-zero) genes and 0 at zeros (dropout candidates) and at
the padding; losses and attention use only pixels where it is 1.

The generator ends in a sigmoid, so expression is scaled to [0, 1] first. The paper
normalises "to eliminate the influence of varying gene expression ranges" before its
distances; :class:`UnitScaler` divides each gene's log expression by its maximum over the
cells, which does both and is inverted exactly by multiplying back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GeneImage:
    """The row-wise layout of ``n_genes`` genes on a ``side × side`` image.

    Attributes
    ----------
    n_genes
        m, the genes of one cell.
    side
        N = ceil(sqrt(m)); the last ``N² − m`` pixels are padding.
    """

    n_genes: int

    @property
    def side(self) -> int:
        """Image side N."""
        return math.isqrt(self.n_genes - 1) + 1 if self.n_genes > 0 else 0

    @property
    def n_pixels(self) -> int:
        """N², genes plus padding."""
        return self.side * self.side

    def to_image(self, genes: torch.Tensor) -> torch.Tensor:
        """``(B, m)`` → ``(B, 1, N, N)``: zero-pad, then fill the rows in order (eq. 1)."""
        padded = F.pad(genes, (0, self.n_pixels - self.n_genes))
        return padded.view(genes.shape[0], 1, self.side, self.side)

    def to_genes(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` → ``(B, m)``: the inverse of :meth:`to_image` (padding dropped)."""
        return image.reshape(image.shape[0], self.n_pixels)[:, :self.n_genes]

    def gene_pixels(self, device: torch.device | None = None) -> torch.Tensor:
        """``(1, 1, N, N)`` mask: 1 at the pixels that hold a gene, 0 at the padding."""
        return self.to_image(torch.ones(1, self.n_genes, device=device))

    def observation_mask(self, genes: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` float mask: 1 at observed (non-zero) genes, 0 at zeros and padding."""
        return self.to_image((genes != 0).to(genes.dtype))


class UnitScaler:
    """Per-gene scaling of log expression to [0, 1]: ``s = x / max_j`` and back.

    Log expression is non-negative with observed zeros at 0, so dividing by each gene's
    maximum maps every gene onto [0, 1] with zeros staying 0. A gene without any non-zero
    (the pipeline drops those) keeps the divisor 1.

    Parameters
    ----------
    maxima
        Each gene's largest value, float32.
    """

    def __init__(self, maxima: np.ndarray):
        maxima = np.asarray(maxima, dtype=np.float32)
        self.maxima = np.where(maxima > 0, maxima, np.float32(1.0))

    @classmethod
    def fit(cls, values: sp.csr_matrix | np.ndarray) -> UnitScaler:
        """The scaler of ``values`` (cells × genes, non-negative, sparse or dense)."""
        top = values.max(axis=0)
        top = top.toarray() if sp.issparse(top) else np.asarray(top)
        return cls(top.ravel())

    def transform(self, values: torch.Tensor) -> torch.Tensor:
        """Scale ``(B, m)`` log expression to [0, 1]."""
        return values / self._divisor(values)

    def inverse(self, scaled: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`transform`."""
        return scaled * self._divisor(scaled)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors that rebuild the scaler (:meth:`from_state`)."""
        return {"maxima": torch.from_numpy(self.maxima.copy())}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> UnitScaler:
        """The scaler saved by :meth:`state`."""
        return cls(state["maxima"].numpy())

    def _divisor(self, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.maxima, dtype=like.dtype, device=like.device)
