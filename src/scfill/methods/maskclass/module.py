"""MaskClass's torch parts: the autoencoder, mask sampling, corruption and the losses.

Pure torch, no AnnData: :mod:`scfill.methods.maskclass` drives these. Notation follows the
paper (§2.3–2.5): ``s`` scaled expression, ``ŝ`` reconstruction, ``m`` mask, ``p_bio`` the
probability that an observed zero is a biological zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scfill.nn.blocks import fc_stack
from scfill.nn.losses import weighted_mse

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


def sample_mask(
    is_zero: torch.Tensor, p_bio: torch.Tensor, *, p_zero: float, p_nonzero: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Draw ``m ~ Bernoulli(π)``, ``π = p_zero·p_bio`` at zeros, ``p_nonzero`` elsewhere.

    ``is_zero`` is a 0/1 float tensor, as is the returned mask (float arithmetic instead of
    ``torch.where``, which is an order of magnitude slower on the CPU for these sizes).
    """
    rate = p_nonzero + is_zero * (p_zero * p_bio - p_nonzero)
    uniform = torch.rand(rate.shape, generator=generator, device=rate.device, dtype=rate.dtype)
    return (uniform < rate).to(rate.dtype)


def corrupt(
    s: torch.Tensor, is_zero: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
) -> torch.Tensor:
    """Masked non-zeros become 0 (in the scaled space), masked zeros take ``noise``.

    ``is_zero`` and ``mask`` are 0/1 float tensors; ``noise`` is the scaled noise value of
    every entry (see :func:`zero_noise`), used only at masked zeros.
    """
    return s * (1 - mask) + (mask * is_zero) * noise


def zero_noise(
    c_max: torch.Tensor, shape: torch.Size, *, scale: float, generator: torch.Generator,
) -> torch.Tensor:
    """``log2(1 + η·c_max_j)`` with ``η ~ U(0, scale)``: noise for masked zeros (log2 space).

    The caller puts it through the gene scaling.
    """
    eta = torch.rand(shape, generator=generator, device=c_max.device, dtype=c_max.dtype)
    return torch.log2(1 + eta * scale * c_max)


def masked_loss(
    s_hat: torch.Tensor, s: torch.Tensor, mask: torch.Tensor, is_zero: torch.Tensor, *,
    zero_weight: float, nonzero_weight: float,
) -> torch.Tensor:
    """Weighted mean squared residual over masked entries only (paper's L_mask).

    ``mask`` and ``is_zero`` are 0/1 float tensors.
    """
    weight = mask * (nonzero_weight + (zero_weight - nonzero_weight) * is_zero)
    return weighted_mse(s_hat, s, weight)


def biozero_loss(s_hat: torch.Tensor, s_zero: torch.Tensor, p_bio: torch.Tensor
                 ) -> torch.Tensor:
    """``p_bio``-weighted mean of ``(ŝ − s0)²`` over observed zeros (paper's L_bio).

    ``p_bio`` must be 0 at observed non-zeros, so they do not count.
    """
    return weighted_mse(s_hat, s_zero, p_bio)
