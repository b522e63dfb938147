"""MaskClass's torch parts: the autoencoder, mask sampling, corruption and the losses.

Pure torch, no AnnData: :mod:`scfill.methods.maskclass` drives these. Notation follows the
paper (§2.3–2.5): ``s`` scaled expression, ``ŝ`` reconstruction, ``m`` mask, ``p_bio`` the
probability that an observed zero is a biological zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from scfill.nn.blocks import fc_stack
from scfill.nn.losses import TINY

#: Every hidden layer: Linear + LayerNorm + SiLU, no dropout (paper §2.3).
HIDDEN_LAYER = {"norm": "layer", "activation": "silu"}


class MaskClassAutoencoder(nn.Module):
    """Symmetric MLP autoencoder ``G → 64 → 32 → 64 → G`` (paper §2.3).

    Every hidden layer (the bottleneck included) is Linear + LayerNorm + SiLU; the output
    layer is linear.

    Parameters
    ----------
    n_genes
        Input and output width G.
    hidden
        Encoder widths after the input, the last one being the bottleneck (paper: 64, 32);
        the decoder mirrors them.
    """

    def __init__(self, n_genes: int, hidden: Sequence[int] = (64, 32)):
        super().__init__()
        widths = [n_genes, *hidden]
        self.encoder = fc_stack(widths, **HIDDEN_LAYER)
        self.decoder = nn.Sequential(fc_stack(widths[::-1][:-1], **HIDDEN_LAYER),
                                     nn.Linear(widths[1], n_genes))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Reconstruct scaled expression ``ŝ = g(f(s))``."""
        return self.decoder(self.encoder(s))


def mask_rate(is_zero: torch.Tensor, p_bio: torch.Tensor, *, p_zero: float,
              p_nonzero: float) -> torch.Tensor:
    """``π``, each entry's masking probability: ``p_zero·p_bio`` at zeros, ``p_nonzero``
    elsewhere (paper §2.5). Fixed for the whole training, so the dataset computes it once.

    ``is_zero`` is a 0/1 float tensor (float arithmetic instead of ``torch.where``, which is
    an order of magnitude slower on the CPU for these sizes).
    """
    return p_nonzero + is_zero * (p_zero * p_bio - p_nonzero)


def sample_mask(rate: torch.Tensor, uniform: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``m ~ Bernoulli(π)`` and the noise level ``η ~ U(0, 1)`` of every masked entry, from
    one uniform draw ``uniform`` of ``rate``'s shape (overwritten).

    One uniform ``u`` per entry gives both: ``m = [u < π]``, and given ``m = 1`` the ratio
    ``u / π`` is uniform on (0, 1) and independent of the mask, so ``η = u / π`` has the
    distribution of a second, independent draw (paper §2.5) at half the random numbers:
    drawing them was a fifth of MaskClass's CPU step. Where ``m = 0`` the returned ``η`` is
    finite and unused (the noise is placed at masked zeros only).

    Returns
    -------
    mask, eta
        The 0/1 float mask and the noise level, both of ``rate``'s shape.
    """
    mask = torch.lt(uniform, rate, out=torch.empty_like(rate))  # 0/1 float in one pass
    eta = uniform.div_(rate).nan_to_num_(nan=0.0, posinf=1.0).clamp_max_(1.0)
    return mask, eta


def zero_noise(c_max: torch.Tensor, eta: torch.Tensor, *, scale: float) -> torch.Tensor:
    """``log2(1 + η·scale·c_max_j)`` for ``η ~ U(0, 1)`` (from :func:`sample_mask`): the noise
    of masked zeros in log2 space, ``η·scale`` being the paper's ``U(0, scale)``.

    Overwrites ``eta``. The caller puts the result through the gene scaling.
    """
    return eta.mul_(scale * c_max).log1p_().mul_(1 / math.log(2))


def corrupt(
    s: torch.Tensor, is_zero: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
) -> torch.Tensor:
    """Masked non-zeros become 0 (in the scaled space), masked zeros take ``noise``.

    ``is_zero`` and ``mask`` are 0/1 float tensors; ``noise`` is the scaled noise value of
    every entry (see :func:`zero_noise`), used only at masked zeros; it is overwritten.
    Computed as ``s + m·(z·noise − s)`` in place (four passes instead of six).
    """
    return noise.mul_(is_zero).sub_(s).mul_(mask).add_(s)


def mask_weight(mask: torch.Tensor, is_zero: torch.Tensor, *, zero_weight: float,
                nonzero_weight: float) -> torch.Tensor:
    """The weight of each entry in ``L_mask``: ``zero_weight`` at masked zeros,
    ``nonzero_weight`` at masked non-zeros, 0 where unmasked."""
    return (is_zero * (zero_weight - nonzero_weight)).add_(nonzero_weight).mul_(mask)


class _WeightedSquares(torch.autograd.Function):
    """``L_mask`` and ``L_bio`` with their gradient computed in the forward pass.

    Both are weighted means of squared residuals of the same ``ŝ``; autograd would keep
    and revisit six cells × genes temporaries, this keeps two (the per-entry gradients),
    which made MaskClass's CPU step faster by a fifth.
    """

    @staticmethod
    def forward(ctx, s_hat, s, weight, s_zero, p_bio):
        residual = s_hat.float() - s
        weighted = residual * weight
        w_total = weight.sum().clamp_min(TINY)
        loss_mask = torch.dot(weighted.view(-1), residual.view(-1)) / w_total
        grad_mask = weighted.mul_(2 / w_total)
        residual_zero = torch.sub(s_hat.float(), s_zero, out=residual)
        weighted_zero = residual_zero * p_bio
        p_total = p_bio.sum().clamp_min(TINY)
        loss_bio = torch.dot(weighted_zero.view(-1), residual_zero.view(-1)) / p_total
        ctx.save_for_backward(grad_mask, weighted_zero.mul_(2 / p_total))
        return loss_mask, loss_bio

    @staticmethod
    def backward(ctx, grad_loss_mask, grad_loss_bio):
        grad_mask, grad_bio = ctx.saved_tensors
        grad = torch.mul(grad_mask, grad_loss_mask).addcmul_(grad_bio, grad_loss_bio)
        return grad, None, None, None, None


def masked_losses(s_hat: torch.Tensor, s: torch.Tensor, weight: torch.Tensor,
                  s_zero: torch.Tensor, p_bio: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's two losses (§2.5) of one reconstruction ``ŝ``.

    ``L_mask = Σ w·(ŝ − s)² / Σ w`` over masked entries (``weight`` from
    :func:`mask_weight`) and ``L_bio = Σ p_bio·(ŝ − s0)² / Σ p_bio``, the ``p_bio``-weighted
    squared distance of the zeros' reconstructions from the gene's scaled zero ``s0_j``
    (``p_bio`` is 0 at observed non-zeros, so they do not count). Each is 0 when its
    weights are all 0. Differentiable in ``ŝ`` only.
    """
    return _WeightedSquares.apply(s_hat, s, weight, s_zero, p_bio)
