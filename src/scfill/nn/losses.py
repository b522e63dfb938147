"""Losses shared by the methods: weighted masked MSE and the adversarial (GAN) losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Smallest denominator of a weighted mean (a batch may hold no weighted entry).
TINY = 1e-12


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                 ) -> torch.Tensor:
    """``Σ w·(pred − target)² / Σ w``: the mean squared error over weighted entries.

    ``weight`` is a 0/1 mask (a masked MSE: only entries where it is 1 count) or any
    non-negative weights of ``pred``'s shape, bool or float. Returns 0 when every weight is
    0 (the denominator is floored at :data:`TINY`).
    """
    weight = weight.to(pred.dtype)
    return (weight * (pred - target).square()).sum() / weight.sum().clamp_min(TINY)


def bce_logits(logits: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of raw discriminator scores against ``target`` (1 real, 0 fake).

    Works on logits (the sigmoid is inside), which is stable under mixed precision.
    """
    target = torch.as_tensor(target, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, target.expand_as(logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss: real scored as 1, generated as 0 (mean of the two)."""
    return 0.5 * (bce_logits(real_logits, 1.0) + bce_logits(fake_logits, 0.0))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: generated samples scored as real."""
    return bce_logits(fake_logits, 1.0)
