"""scMASKGAN's networks (paper Algorithms 1–2) and losses (Algorithm 3), pure torch.

Notation: images are ``(B, 1, N, N)`` in [0, 1] (:mod:`.layout`), ``m`` the observation
mask (1 observed, 0 zero or padding), ``y`` one-hot labels ``(B, K)``, ``z`` the noise.

Bounded size (the authors' script maps the latent to 32·N² with one dense layer, ~256 M
weights at N = 200, and its discriminator starts with a dense N² → N² layer): here the only
dense layer of the generator ends at the low resolution ``L = ceil(N/4)`` (Algorithm 1 step
2), the discriminator starts with convolutions, and self-attention runs at ``L × L`` only.
With ``C`` channels, ``d_z`` the latent size and ``K`` labels, the generator has about
``(d_z + K + 2)·C·L²`` weights in its dense layer, ``K·N²`` in its label matrix
(:class:`LabelMap`) and ``~5·9·C²`` in its convolutions; the discriminator ``~3·9·C² + K·L²``.
At 20,000 genes (N = 142, L = 36), C = 32, d_z = N, K = 3: 6.2 M generator and 0.03 M
discriminator parameters. Activations per cell are dominated by the ``L² × L²`` attention
map (1.7 M floats at L = 36, once in G and once in D) and ~12 maps of ``C × N²`` (0.65 M
floats each at N = 142): ~10 M floats, 40 MB per cell forward (about twice that with the
backward), so a batch of 32 needs a few GB
(``benchmarks/results/scmaskgan_memory.csv`` measures it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Channels of the first convolutional block (paper: "(32, N, N)"; "typically 32 to 64").
CHANNELS = 32
#: Channels of the label map (paper: LConv1/LConv2 give 8 channels).
LABEL_CHANNELS = 8
#: Channels at the discriminator's attention (paper: DConv2 gives 16).
D_ATTENTION_CHANNELS = 16
#: Query/key width of self-attention as a share of the channels (SAGAN's C/8).
QK_REDUCTION = 8
#: Smallest denominator of a masked mean.
_TINY = 1e-12


def low_side(side: int) -> int:
    """The low resolution ``ceil(N/4)`` where the dense layer ends and attention runs."""
    return -(-side // 4)


def _conv_bn_relu(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out),
                         nn.ReLU())


class SelfAttention(nn.Module):
    """``h + γ·V·softmax(QKᵀ/√d)`` with Q, K, V from 1×1 convolutions (paper eq. 4).

    γ is learnable and starts at 0 (the block is the identity at initialisation). Keys at
    positions where ``token_mask`` is 0 get no attention; a position whose keys are all
    masked gets no attention output.
    """

    def __init__(self, channels: int):
        super().__init__()
        width = max(channels // QK_REDUCTION, 1)
        self.query = nn.Conv2d(channels, width, 1)
        self.key = nn.Conv2d(channels, width, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(width)

    def forward(self, h: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the ``H·W`` positions of ``h`` ``(B, C, H, W)``.

        ``token_mask`` is ``(B, 1, H, W)``, 1 where a position may be attended to.
        """
        b, c, height, width = h.shape
        q = self.query(h).flatten(2).transpose(1, 2)          # (B, HW, d)
        k = self.key(h).flatten(2)                             # (B, d, HW)
        v = self.value(h).flatten(2)                           # (B, C, HW)
        scores = torch.bmm(q, k) * self.scale                  # (B, HW, HW)
        if token_mask is not None:
            valid = token_mask.flatten(2) > 0                  # (B, 1, HW) over keys
            scores = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
            attention = torch.softmax(scores, dim=-1) * valid
        else:
            attention = torch.softmax(scores, dim=-1)
        out = torch.bmm(v, attention.transpose(1, 2)).view(b, c, height, width)
        return h + self.gamma * out


class LabelMap(nn.Module):
    """The label matrix: one-hot labels upsampled to an ``S × S`` map, then a 3×3
    convolution to 8 channels (Algorithm 1 steps 10–11, Algorithm 2 steps 6–7).

    The upsampling is learned: ``y`` (K) → ``y·E`` with ``E`` a ``K × S²`` matrix, one map
    per label, so the map can differ from gene to gene (a constant upsampling of the one-hot
    vector would give the same value at every pixel). ``K·S²`` weights: 0.3 M for 16
    labels at N = 142.
    """

    def __init__(self, n_classes: int, size: int, channels: int = LABEL_CHANNELS):
        super().__init__()
        self.size = size
        self.upsample = nn.Linear(n_classes, size * size, bias=False)
        self.conv = nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` one-hot → ``(B, 8, S, S)``."""
        return self.conv(self.upsample(y).view(-1, 1, self.size, self.size))


class Generator(nn.Module):
    """Conditional generator (Algorithm 1), sigmoid output ``(B, 1, N, N)``.

    ``[z, y] → Linear → BN → ReLU → (C, L, L) → Conv-BN-ReLU → self-attention → ×2
    Conv-BN-ReLU → ×2 Conv-BN-ReLU (N × N) → concat label map → Conv-BN-ReLU → Conv →
    sigmoid``. The labels enter twice: with the noise (paper, "Imputed method": "the
    one-hot encoded cell-type vectors are combined with randomly sampled noise and fed into
    the generator") and as the label map before the last convolutions (steps 10–12). The
    two upsampling stages are the paper's "multi-scale" path from ``N/4`` to ``N``.

    Parameters
    ----------
    side
        Image side N.
    n_classes
        K, the number of labels.
    latent_dim
        Size of z (paper: equal to N).
    channels
        C (paper: 32).
    """

    def __init__(self, side: int, n_classes: int, latent_dim: int, channels: int = CHANNELS):
        super().__init__()
        self.side, self.low = side, low_side(side)
        self.mid = -(-side // 2)
        self.channels = channels
        n_low = channels * self.low * self.low
        self.project = nn.Sequential(nn.Linear(latent_dim + n_classes, n_low),
                                     nn.BatchNorm1d(n_low), nn.ReLU())
        self.conv_low = _conv_bn_relu(channels, channels)
        self.attention = SelfAttention(channels)
        self.up_mid = _conv_bn_relu(channels, channels)
        self.up_full = _conv_bn_relu(channels, channels)
        self.label_map = LabelMap(n_classes, side)
        self.head = nn.Sequential(_conv_bn_relu(channels + LABEL_CHANNELS, channels),
                                  nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images ``G(z, y)`` in [0, 1]."""
        h = self.project(torch.cat([z, y], dim=1))
        h = self.conv_low(h.view(-1, self.channels, self.low, self.low))
        h = self.attention(h)
        h = self.up_mid(F.interpolate(h, size=(self.mid, self.mid), mode="nearest"))
        h = self.up_full(F.interpolate(h, size=(self.side, self.side), mode="nearest"))
        h = torch.cat([h, self.label_map(y)], dim=1)
        return torch.sigmoid(self.head(h))


class ResidualBlock(nn.Module):
    """``ReLU(h + BN(Conv(ReLU(BN(Conv(h))))))`` (the discriminator's residual block)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(channels, channels),
                                  nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.BatchNorm2d(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Residual update of ``h``."""
        return torch.relu(h + self.body(h))


class Discriminator(nn.Module):
    """Conditional patch discriminator (Algorithm 2): real/fake logits ``(B, 1, L, L)``.

    Input: the masked image ``x·m`` and the mask ``m`` (2 channels), so values at unobserved
    pixels never reach it. ``Conv-BN-ReLU → max-pool → residual block (N/2) → Conv-BN-ReLU
    (16 channels) → max-pool (L = N/4) → self-attention over positions holding an observed
    pixel → concat label map → 1×1 convolution ("fully connected" at each position) → ReLU
    → 3×3 convolution → one logit per patch``; the sigmoid is inside the BCE loss
    (:func:`discriminator_loss`).

    Deviations (bounded size): the paper's first layer is a dense ``N² → N²`` map (4·10⁸
    weights at N = 142), left out; attention runs at N/4 instead of N/2 (at 20,000 genes an
    ``(N/2)²``-position attention map is 25 M floats per cell).
    """

    def __init__(self, side: int, n_classes: int, channels: int = CHANNELS):
        super().__init__()
        self.side, self.low = side, low_side(side)
        self.stem = _conv_bn_relu(2, channels)
        self.residual = ResidualBlock(channels)
        self.reduce = _conv_bn_relu(channels, D_ATTENTION_CHANNELS)
        self.attention = SelfAttention(D_ATTENTION_CHANNELS)
        self.label_map = LabelMap(n_classes, self.low)
        self.head = nn.Sequential(
            nn.Conv2d(D_ATTENTION_CHANNELS + LABEL_CHANNELS, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor, y: torch.Tensor
                ) -> torch.Tensor:
        """Patch logits of ``image`` observed where ``mask`` is 1, given labels ``y``."""
        h = self.stem(torch.cat([image * mask, mask], dim=1))
        h = self.residual(F.max_pool2d(h, 2, ceil_mode=True))
        h = F.max_pool2d(self.reduce(h), 2, ceil_mode=True)
        h = self.attention(h, patch_mask(mask, self.low))
        h = torch.cat([h, self.label_map(y)], dim=1)
        return self.head(h)


def patch_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, 1, size, size)``: 1 where a patch of the low-resolution map holds an observed pixel."""
    return F.adaptive_max_pool2d(mask, size)


def masked_reconstruction(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor
                          ) -> torch.Tensor:
    """Mean squared error of ``fake`` against ``real`` over observed pixels only."""
    return (mask * (fake - real).square()).sum() / mask.sum().clamp_min(_TINY)


def _patch_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (weight * values).sum() / weight.sum().clamp_min(_TINY)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       weight: torch.Tensor) -> torch.Tensor:
    """``−[log D(x|y) + log(1 − D(G(z|y)|y))]`` (Algorithm 3 step 15), mean over patches
    with an observed pixel (``weight``)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits),
                                              reduction="none")
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits),
                                              reduction="none")
    return _patch_mean(real + fake, weight)


def adversarial_generator_loss(fake_logits: torch.Tensor, weight: torch.Tensor
                               ) -> torch.Tensor:
    """``log(1 − D(G(z|y)|y))`` (eq. 3, Algorithm 3 step 19), mean over observed patches.

    With logits ``l``, ``log(1 − σ(l)) = −softplus(l)``.
    """
    return _patch_mean(-F.softplus(fake_logits), weight)
