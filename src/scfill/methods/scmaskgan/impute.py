"""scMASKGAN's imputation from generated candidates (paper, "Imputed method", eq. 6).

For each label, the trained generator's ``n_can`` candidate profiles are screened by an
Isolation Forest (anomaly score ``s(x) = 2^(−E h(x) / c(n))``; a candidate is an outlier
when ``s(x) > τ``). Each real cell is compared with its label's remaining candidates by the
Euclidean distance over the genes it observed (scaled to [0, 1]); the candidates whose
distance is below ``θ = μ + k_σ·σ`` of the label's distance distribution are eligible and
the ``k`` nearest of them are the cell's neighbours; a zero takes their mean (eq. 6:
non-zeros are kept by the pipeline's ``"zeros"`` combine rule).

The threshold compares the root-mean-square distance per observed gene (the Euclidean
distance divided by √(observed genes)): a cell's neighbour ranking is the Euclidean one,
but cells with many observed genes have large sums and would otherwise all fall beyond a
θ shared by the label. A cell always keeps its nearest candidate.

Everything is vectorised over cells and genes: distances are one matrix product per row
block and label, the fill is ``W @ C`` with ``W`` the neighbour weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Isolation Forest threshold τ on s(x): Liu et al. 2008, "if instances return s very
#: close to 1 they are definitely anomalies ... much smaller than 0.5, quite safe to be
#: regarded as normal" (scikit-learn's ``contamination="auto"`` uses the same 0.5).
OUTLIER_THRESHOLD = 0.5
#: Trees of the forest (Liu et al. 2008 and scikit-learn: 100).
FOREST_TREES = 100


def remove_outliers(candidates: np.ndarray, *, threshold: float = OUTLIER_THRESHOLD,
                    seed: int = 0) -> np.ndarray:
    """Which candidates an Isolation Forest keeps: a boolean mask over the rows.

    Parameters
    ----------
    candidates
        ``(n_can, genes)`` generated profiles of one label.
    threshold
        τ: a candidate whose anomaly score ``s(x)`` exceeds it is removed.
    seed
        Seeds the forest.

    Returns
    -------
    ``s(x) <= τ`` per candidate; all True when that would remove every candidate.
    """
    from sklearn.ensemble import IsolationForest

    if len(candidates) < 2:
        return np.ones(len(candidates), dtype=bool)
    forest = IsolationForest(n_estimators=FOREST_TREES, random_state=seed)
    forest.fit(candidates)
    score = -forest.score_samples(candidates)  # scikit-learn returns −s(x)
    keep = score <= threshold
    return keep if keep.any() else np.ones(len(candidates), dtype=bool)


def observed_distances(values: torch.Tensor, mask: torch.Tensor, candidates: torch.Tensor
                       ) -> torch.Tensor:
    """Euclidean distances ``(B, n)`` of each row to each candidate over its ``mask`` genes.

    ``‖m ⊙ (x − c)‖² = Σ m x² − 2 (m ⊙ x)·c + m·c²``: two matrix products, no
    ``B × n × genes`` array.
    """
    masked = mask * values
    squares = (masked * values).sum(dim=1, keepdim=True)
    cross = masked @ candidates.T
    candidate_squares = mask @ candidates.square().T
    return (squares - 2 * cross + candidate_squares).clamp_min(0).sqrt()


def per_gene_distances(distances: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Distances divided by √(observed genes) of each row: the scale the threshold uses."""
    return distances / mask.sum(dim=1, keepdim=True).clamp_min(1).sqrt()


@dataclass
class DistanceMoments:
    """Running sums of a label's per-gene distances: μ and σ of θ = μ + k_σ·σ."""

    total: float = 0.0
    squares: float = 0.0
    count: int = 0

    def add(self, values: torch.Tensor) -> None:
        """Accumulate a block of distances."""
        values = values.double()
        self.total += float(values.sum())
        self.squares += float(values.square().sum())
        self.count += values.numel()

    def threshold(self, k_sigma: float) -> float:
        """θ = μ + k_σ·σ (infinite before any distance was added)."""
        if self.count == 0:
            return float("inf")
        mean = self.total / self.count
        variance = max(self.squares / self.count - mean * mean, 0.0)
        return mean + k_sigma * variance ** 0.5


def eligible_ranking(distances: torch.Tensor, scaled: torch.Tensor, theta: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates of each row ordered nearest first, and how many are below θ (at least 1).

    ``distances`` rank, ``scaled`` (the per-gene form) is compared with ``theta``.
    """
    order = torch.argsort(distances, dim=1, stable=True)
    n_eligible = (scaled < theta).sum(dim=1).clamp_min(1)
    return order, n_eligible


def neighbour_weights(order: torch.Tensor, n_eligible: torch.Tensor, k: int
                      ) -> torch.Tensor:
    """``(B, n)`` weights: ``1/k_i`` on each row's ``k_i = min(k, eligible)`` nearest."""
    n_used = n_eligible.clamp_max(k)
    ranks = torch.arange(order.shape[1], device=order.device)
    chosen = (ranks[None, :] < n_used[:, None]).to(torch.float32) / n_used[:, None]
    return torch.zeros(order.shape, dtype=torch.float32, device=order.device).scatter_(
        1, order, chosen)


class CandidateFill:
    """The kNN fill of one dataset from its labels' screened candidates.

    Parameters
    ----------
    candidates
        Per label code, ``(n_kept, genes)`` scaled candidates (float32 tensors).
    k
        Neighbours per cell.
    k_sigma
        The multiple of σ in θ = μ + k_σ·σ.
    """

    def __init__(self, candidates: dict[int, torch.Tensor], *, k: int, k_sigma: float):
        self.candidates, self.k, self.k_sigma = candidates, k, k_sigma
        self.moments = {c: DistanceMoments() for c in candidates}

    def add_moments(self, values: torch.Tensor, mask: torch.Tensor, labels: np.ndarray
                    ) -> None:
        """First pass: add a block's distances to its labels' moments."""
        for code in np.unique(labels):
            rows = torch.as_tensor(np.flatnonzero(labels == code), device=values.device)
            d = observed_distances(values[rows], mask[rows], self.candidates[int(code)])
            self.moments[int(code)].add(per_gene_distances(d, mask[rows]))

    def ranking(self, values: torch.Tensor, mask: torch.Tensor, code: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest-first candidate order and eligible counts of rows of label ``code``."""
        d = observed_distances(values, mask, self.candidates[code])
        theta = self.moments[code].threshold(self.k_sigma)
        return eligible_ranking(d, per_gene_distances(d, mask), theta)

    def fill(self, values: torch.Tensor, mask: torch.Tensor, labels: np.ndarray
             ) -> torch.Tensor:
        """Second pass: the neighbours' mean of every gene of every row (scaled space)."""
        out = torch.empty_like(values)
        for code in np.unique(labels):
            rows = torch.as_tensor(np.flatnonzero(labels == code), device=values.device)
            order, n_eligible = self.ranking(values[rows], mask[rows], int(code))
            weights = neighbour_weights(order, n_eligible, self.k)
            out[rows] = weights @ self.candidates[int(code)]
        return out
