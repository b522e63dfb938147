"""scGACL's torch modules: the VaDE generator, its mixture prior and the discriminator.

Pure torch, no AnnData (:mod:`scfill.methods.scgacl.model` drives them). Widths and
initialisation follow the authors' code (Hhjyl/scGACL ``models/*.py``, ``trainer/config.py``):
encoder and discriminator trunk ``[500, 500, 2000]``, decoder ``[2000, 500, 500]``, latent
and both projections 10-d, every ``Linear`` initialised ``N(0, 0.02)`` with zero bias
(``trainer/utils.py: init_weights``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

#: Hidden widths of the encoder and of the discriminator trunk (code ``EN_SIZE``, ``DI_SIZE``).
ENCODER_WIDTHS = (500, 500, 2000)
#: Latent dimension (code ``Z_SIZE``) and projection sizes (``PROJECT_SIZE1/2``).
LATENT_DIM = 10
PROJECTION_DIM = 10
#: Standard deviation of the normal initialisation of every Linear weight (code ``init_weights``).
INIT_STD = 0.02
#: Smallest mixture weight before renormalising (code ``GMMLoss``: ``pi.clamp(min=1e-8)``).
MIN_WEIGHT = 1e-8
_LOG_2PI = math.log(2 * math.pi)


def init_linear(module: nn.Module, std: float = INIT_STD) -> None:
    """Weights ``N(0, std)``, biases 0 for every ``Linear`` inside ``module`` (code)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)


def _trunk(widths: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    """``Linear → BatchNorm1d → activation`` through ``widths`` (encoder, discriminator)."""
    layers: list[nn.Module] = []
    for a, b in pairwise(widths):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), activation()]
    return nn.Sequential(*layers)


class MixturePrior(nn.Module):
    """Learnable Gaussian mixture ``p(z, c) = π_c N(z; μ_c, diag σ²_c)`` (VaDE's prior).

    Parameters are stored as in the authors' ``models/GMM.py``: raw weights ``pi_``,
    means ``mu_c`` and log variances ``log_sigma2_c``; :meth:`weights` clamps and
    renormalises ``pi_`` as the code's loss does.
    """

    def __init__(self, n_components: int, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.pi_ = nn.Parameter(torch.full((n_components,), 1.0 / n_components))
        self.mu_c = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.log_sigma2_c = nn.Parameter(torch.zeros(n_components, latent_dim))

    @property
    def n_components(self) -> int:
        """Number of mixture components K."""
        return self.pi_.numel()

    def weights(self) -> torch.Tensor:
        """Mixture weights π (clamped at :data:`MIN_WEIGHT`, summing to one)."""
        pi = self.pi_.clamp(min=MIN_WEIGHT)
        return pi / pi.sum()

    def component_log_density(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z_b; μ_c, σ²_c)`` for every cell b and component c (B × K)."""
        var = self.log_sigma2_c.exp()
        sq = (z.unsqueeze(1) - self.mu_c.unsqueeze(0)).square() / var.unsqueeze(0)
        return -0.5 * (sq + self.log_sigma2_c.unsqueeze(0) + _LOG_2PI).sum(-1)

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        """``γ_bc = p(c | z_b)``, VaDE's q(c | x) (B × K)."""
        return torch.softmax(self.weights().log().unsqueeze(0)
                             + self.component_log_density(z), dim=1)

    @torch.no_grad()
    def initialise(self, weights, means, variances) -> None:
        """Set π, μ_c and σ²_c (e.g. from a diagonal ``GaussianMixture``)."""
        dtype, device = self.pi_.dtype, self.pi_.device
        self.pi_.copy_(torch.as_tensor(weights, dtype=dtype, device=device))
        self.mu_c.copy_(torch.as_tensor(means, dtype=dtype, device=device))
        self.log_sigma2_c.copy_(torch.as_tensor(variances, dtype=dtype, device=device).log())


class VaDE(nn.Module):
    """The generator: a VAE with a Gaussian-mixture prior (paper eq. 3, Jiang et al. 2017).

    Encoder ``G → 500 → 500 → 2000`` (Linear + BatchNorm + ReLU) and two linear heads for
    the posterior mean μ and log variance log σ² of a 10-d latent; decoder
    ``10 → 2000 → 500 → 500 → G``, ReLU after every layer, the last included, so the output
    is non-negative like log-normalised expression.

    Parameters
    ----------
    n_genes
        Input and output width G.
    n_components
        Mixture components K (the number of cell groups); None for the standard normal
        prior of a plain VAE (the paper's scGACL-VAE ablation).
    """

    def __init__(self, n_genes: int, n_components: int | None,
                 widths: Sequence[int] = ENCODER_WIDTHS, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.encoder = _trunk([n_genes, *widths], nn.ReLU)
        self.mu = nn.Linear(widths[-1], latent_dim)
        self.logvar = nn.Linear(widths[-1], latent_dim)
        decoder: list[nn.Module] = []
        for a, b in pairwise([latent_dim, *widths[::-1], n_genes]):
            decoder += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*decoder)
        init_linear(self)
        self.prior = None if n_components is None else MixturePrior(n_components, latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log variance of ``q(z | x)``."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Generated expression (non-negative) from latent codes."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, *, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x̂, z, μ, log σ²)`` with ``z = μ + σ·ε`` (reparameterisation, ε from ``generator``)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        return self.decode(z), z, mu, logvar

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic reconstruction ``decode(μ(x))`` (posterior mean, no sampling)."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def copy_mean_head_to_logvar(self) -> None:
        """After pretraining, start the log-variance head as a copy of the mean head.

        The authors' ``pretrain_VAE`` does this (``netE.logvar.load_state_dict(
        netE.mu.state_dict())``), as the original VaDE code does.
        """
        self.logvar.load_state_dict(self.mu.state_dict())


class Discriminator(nn.Module):
    """The multi-task discriminator: a shared embedding ``f_e`` and three heads.

    Trunk ``G → 500 → 500 → 2000`` (Linear + BatchNorm + LeakyReLU); heads: adversarial
    ``H_adv`` (one logit; the code's sigmoid is folded into the loss), cell-level
    projection ``H_cell`` (10-d) and type-level projection ``H_type`` (10-d), both linear.
    """

    def __init__(self, n_genes: int, widths: Sequence[int] = ENCODER_WIDTHS,
                 projection_dim: int = PROJECTION_DIM):
        super().__init__()
        self.trunk = _trunk([n_genes, *widths], nn.LeakyReLU)
        self.adversarial_head = nn.Linear(widths[-1], 1)
        self.cell_head = nn.Linear(widths[-1], projection_dim)
        self.type_head = nn.Linear(widths[-1], projection_dim)
        init_linear(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(real/fake logit (B), cell projection t (B × 10), type projection v (B × 10))``."""
        h = self.trunk(x)
        return self.adversarial_head(h).squeeze(-1), self.cell_head(h), self.type_head(h)
