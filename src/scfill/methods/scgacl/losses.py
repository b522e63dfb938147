"""scGACL's losses (paper eq. 3–10), as the authors' code computes them.

All functions return a scalar averaged over the batch unless said otherwise.

- :func:`nonzero_mse`: the reconstruction term, a squared error at observed non-zeros only
  (code ``MSEloss``).
- :func:`mixture_kl`: VaDE's KL from the mixture prior to ``q(z, c | x)`` (code ``GMMLoss``);
  :func:`normal_kl` the plain VAE's KL to ``N(0, I)`` (the scGACL-VAE ablation).
- :func:`nt_xent`: cell-level NT-Xent over the 2N embeddings (eq. 6–8).
- :func:`supervised_contrastive`: type-level loss of Khosla et al. (eq. 9).
- :func:`discriminator_loss`, :func:`generator_loss`: adversarial losses (eq. 4–5) with
  optional soft labels (code ``D_ADV_loss``, ``G_ADV_loss``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scfill.methods.scgacl.module import MixturePrior
from scfill.nn.losses import bce_logits

#: Temperature τ of both contrastive losses (code ``TEMPERATURE = 0.9``).
TEMPERATURE = 0.9
#: Khosla's base temperature; the loss is scaled by τ / τ_base (code ``SupConLoss``: 0.7).
BASE_TEMPERATURE = 0.7
#: Soft labels of the discriminator: real ~ U(0.9, 1), fake ~ U(0, 0.1) (code).
SOFT_LABEL_WIDTH = 0.1
#: Logit put on a sample's similarity with itself so that it drops out of the softmax
#: (code ``nt_xent``: ``fill_diagonal_(-5e4)``; −inf here, exactly zero weight).
_SELF = -math.inf


def nonzero_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """``Σ_{x_ij ≠ 0} (x_ij − x̂_ij)² / (B·G)``: squared error at observed non-zeros.

    The code's ``MSEloss``: ``nn.MSELoss()(x, x̂ · 1[x ≠ 0])``, i.e. the mean over every
    entry with zero error at observed zeros. Zeros are not fitted: the decoder's value there
    is the imputation.
    """
    return ((x - x_hat) * (x != 0)).square().mean()


def mixture_kl(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor,
               prior: MixturePrior) -> torch.Tensor:
    """``KL(q(z, c | x) ‖ p(z, c))`` per cell, averaged over the batch (VaDE, paper eq. 3).

    ``q(z | x) = N(μ, diag σ²)``, ``q(c | x) = γ = p(c | z)`` evaluated at the sample ``z``
    (VaDE's choice; the code computes γ the same way). Closed form, the ``log 2π`` terms
    cancelling::

        ½ Σ_c γ_c Σ_d [log σ²_cd + σ²_d/σ²_cd + (μ_d − μ_cd)²/σ²_cd]
          + Σ_c γ_c (log γ_c − log π_c) − ½ Σ_d (1 + log σ²_d)
    """
    gamma = prior.responsibilities(z)
    log_var_c = prior.log_sigma2_c.unsqueeze(0)
    per_component = (log_var_c + (logvar.unsqueeze(1) - log_var_c).exp()
                     + (mu.unsqueeze(1) - prior.mu_c.unsqueeze(0)).square() / log_var_c.exp()
                     ).sum(-1)
    log_pi = prior.weights().log().unsqueeze(0)
    kl = (0.5 * (gamma * per_component).sum(1)
          + (gamma * (gamma.clamp_min(1e-30).log() - log_pi)).sum(1)
          - 0.5 * (1 + logvar).sum(1))
    return kl.mean()


def normal_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` per cell, averaged over the batch (plain VAE)."""
    return (0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)).mean()


def _cosine_logits(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine similarities / τ of every pair, the diagonal set to −inf (paper eq. 7)."""
    unit = F.normalize(features, dim=1)
    logits = unit @ unit.T / temperature
    return logits.masked_fill(torch.eye(len(unit), dtype=torch.bool, device=unit.device), _SELF)


def nt_xent(t: torch.Tensor, t_hat: torch.Tensor, *, temperature: float = TEMPERATURE
            ) -> torch.Tensor:
    """Cell-level loss ``L_cell = 1/(2N) Σ_i [ℓ(x_i, x̂_i) + ℓ(x̂_i, x_i)]`` (eq. 6–8).

    ``t`` and ``t_hat`` (N × d) embed the observed cells and their generated counterparts;
    the positive of each of the 2N embeddings is its counterpart, its negatives the other
    2N − 2, similarity cosine over τ.
    """
    n = len(t)
    log_prob = torch.log_softmax(_cosine_logits(torch.cat([t, t_hat]), temperature), dim=1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(t.device)
    return -log_prob[torch.arange(2 * n, device=t.device), partner].mean()


def supervised_contrastive(v: torch.Tensor, labels: torch.Tensor, *,
                           temperature: float = TEMPERATURE,
                           base_temperature: float = BASE_TEMPERATURE) -> torch.Tensor:
    """Type-level loss of Khosla et al. (paper eq. 9), averaged over anchors.

    For each anchor i, the mean over its positives P(i) (same label, i excluded) of
    ``−log softmax_{a ≠ i}(sim(v_i, v_a)/τ)`` at p, scaled by τ/τ_base; the paper writes a
    sum over anchors, the code (and Khosla's) a mean. An anchor without positives adds 0
    (the code's guard), so all-distinct labels give 0.
    """
    log_prob = torch.log_softmax(_cosine_logits(v, temperature), dim=1)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    positive = same & ~torch.eye(len(v), dtype=torch.bool, device=v.device)
    n_pos = positive.sum(1)
    summed = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1)
    mean_pos = summed / n_pos.clamp_min(1)
    return -(temperature / base_temperature) * mean_pos.mean()


def _targets(n: int, real: bool, soft: bool, generator: torch.Generator | None,
             like: torch.Tensor) -> torch.Tensor:
    """Real/fake targets: 1/0, or U(0.9, 1) / U(0, 0.1) with ``soft`` (code)."""
    if not soft:
        return torch.full((n,), 1.0 if real else 0.0, dtype=like.dtype, device=like.device)
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    return (1 - SOFT_LABEL_WIDTH) + SOFT_LABEL_WIDTH * u if real else SOFT_LABEL_WIDTH * u


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor, *,
                       soft: bool = True, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """``L_Dis = −E log H(f(x)) − E log(1 − H(f(x̂)))`` (eq. 4), as binary cross-entropies.

    The sum of the two terms, as in the paper and the code (``scfill.nn.losses``'
    ``discriminator_loss`` averages them). With ``soft`` the targets are the code's noisy
    labels instead of 1 and 0.
    """
    real = _targets(len(real_logit), True, soft, generator, real_logit)
    fake = _targets(len(fake_logit), False, soft, generator, fake_logit)
    return bce_logits(real_logit, real) + bce_logits(fake_logit, fake)


def generator_loss(fake_logit: torch.Tensor, *, soft: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The generator's adversarial loss: ``−E log H(f(x̂))`` (non-saturating form of eq. 5).

    The paper writes the minimax form ``E log(1 − H(f(x̂)))``; the code trains the
    generator with the cross-entropy of its samples against "real" targets (soft with
    ``soft``), the usual non-saturating substitute with the same fixed point.
    """
    real = _targets(len(fake_logit), True, soft, generator, fake_logit)
    return bce_logits(fake_logit, real)
