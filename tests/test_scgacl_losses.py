"""scGACL's torch modules and losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from scfill.methods.scgacl.losses import (
    discriminator_loss,
    generator_loss,
    mixture_kl,
    nonzero_mse,
    normal_kl,
    nt_xent,
    supervised_contrastive,
)
from scfill.methods.scgacl.module import Discriminator, MixturePrior, VaDE

TAU = 0.9


# ----------------------------------------------------------------------------- NT-Xent
def test_nt_xent_of_identical_orthogonal_pairs():
    """t = t̂ = unit vectors e_1..e_N: each anchor's positive has cosine 1, the other
    2N − 2 embeddings cosine 0, so every ℓ = −log(e^{1/τ} / (e^{1/τ} + 2N − 2))."""
    n = 3
    t = torch.eye(n, 5)
    expected = -math.log(math.exp(1 / TAU) / (math.exp(1 / TAU) + 2 * n - 2))
    assert nt_xent(t, t.clone(), temperature=TAU).item() == pytest.approx(expected, rel=1e-6)
    # scaling an embedding does not change cosine similarities
    assert nt_xent(3 * t, t, temperature=TAU).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_hand_built_two_pairs():
    """t1 = (1, 0), t2 = (0, 1), t̂1 = (1, 1), t̂2 = (−1, 0); c = 1/√2. Cosines:
    t1·t2 = 0, t1·t̂1 = c, t1·t̂2 = −1, t2·t̂1 = c, t2·t̂2 = 0, t̂1·t̂2 = −c."""
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t_hat = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    c = 1 / math.sqrt(2)
    e = lambda s: math.exp(s / TAU)  # noqa: E731
    terms = [
        -math.log(e(c) / (e(0) + e(c) + e(-1))),   # ℓ(x1, x̂1): others t2, t̂1, t̂2
        -math.log(e(0) / (e(0) + e(c) + e(0))),    # ℓ(x2, x̂2): others t1, t̂1, t̂2
        -math.log(e(c) / (e(c) + e(c) + e(-c))),   # ℓ(x̂1, x1): others t1, t2, t̂2
        -math.log(e(0) / (e(-1) + e(0) + e(-c))),  # ℓ(x̂2, x2): others t1, t2, t̂1
    ]
    expected = sum(terms) / 4
    assert nt_xent(t, t_hat, temperature=TAU).item() == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------ supervised contrastive
def test_supervised_contrastive_one_label():
    """One label: every other embedding is a positive. For anchor i,
    ℓ_i = −(τ/τ_b)·[mean_{p≠i} s_ip/τ − log Σ_{a≠i} exp(s_ia/τ)]."""
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]])
    unit = v / v.norm(dim=1, keepdim=True)
    s = (unit @ unit.T).tolist()
    base = 0.7
    losses = []
    for i in range(4):
        others = [a for a in range(4) if a != i]
        log_norm = math.log(sum(math.exp(s[i][a] / TAU) for a in others))
        mean_pos = sum(s[i][p] / TAU - log_norm for p in others) / 3
        losses.append(-(TAU / base) * mean_pos)
    got = supervised_contrastive(v, torch.zeros(4, dtype=torch.long), temperature=TAU,
                                 base_temperature=base)
    assert got.item() == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_supervised_contrastive_all_distinct_labels_is_zero():
    v = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = supervised_contrastive(v, torch.arange(6))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(v.grad == 0)


def test_supervised_contrastive_with_pair_labels_is_nt_xent():
    """Over [t; t̂] with label i for t_i and t̂_i, each anchor's only positive is its partner:
    the loss is NT-Xent (with τ_b = τ, which removes Khosla's scale)."""
    gen = torch.Generator().manual_seed(1)
    t, t_hat = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    labels = torch.arange(5).repeat(2)
    sup = supervised_contrastive(torch.cat([t, t_hat]), labels, temperature=TAU,
                                 base_temperature=TAU)
    assert sup.item() == pytest.approx(nt_xent(t, t_hat, temperature=TAU).item(), rel=1e-6)


# ------------------------------------------------------------------------ mixture KL
def _prior(seed: int = 0) -> MixturePrior:
    gen = torch.Generator().manual_seed(seed)
    prior = MixturePrior(3, 4)
    prior.initialise(torch.tensor([0.5, 0.3, 0.2]), torch.randn(3, 4, generator=gen),
                     torch.rand(3, 4, generator=gen) + 0.3)
    return prior


def test_mixture_kl_matches_a_monte_carlo_estimate():
    """KL(q(z|x) γ(c) ‖ π_c N(z; μ_c, σ²_c)) = E_q[log q(z|x) + log γ_c − log π_c
    − log N(z; μ_c, σ²_c)]: the closed form against 400k samples of z (the sum over c
    is exact)."""
    prior = _prior()
    gen = torch.Generator().manual_seed(2)
    mu = torch.randn(2, 4, generator=gen, dtype=torch.float64)
    logvar = 0.5 * torch.randn(2, 4, generator=gen, dtype=torch.float64)
    prior = prior.double()
    z_gamma = mu + 0.1 * torch.randn(2, 4, generator=gen, dtype=torch.float64)
    closed = mixture_kl(mu, logvar, z_gamma, prior).item()
    with torch.no_grad():
        gamma = prior.responsibilities(z_gamma)  # the γ the closed form used
        n = 400_000
        eps = torch.randn(n, 2, 4, generator=gen, dtype=torch.float64)
        z = mu + (0.5 * logvar).exp() * eps
        log_q = (-0.5 * (eps.square() + logvar + math.log(2 * math.pi))).sum(-1)  # n × 2
        log_p = prior.component_log_density(z.reshape(-1, 4)).reshape(n, 2, 3)
        log_pi = prior.weights().log()
        per_c = log_q.unsqueeze(-1) + gamma.log() - log_pi - log_p  # n × 2 × 3
        mc = (gamma * per_c).sum(-1).mean(0).mean().item()
    assert closed == pytest.approx(mc, abs=5e-3)


def test_mixture_kl_of_one_component_is_the_gaussian_kl():
    """K = 1 with μ_c = 0, σ²_c = 1: γ = 1 and the KL is the plain VAE's."""
    prior = MixturePrior(1, 3)
    prior.initialise(torch.ones(1), torch.zeros(1, 3), torch.ones(1, 3))
    gen = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    assert mixture_kl(mu, logvar, mu, prior).item() == pytest.approx(
        normal_kl(mu, logvar).item(), rel=1e-5)


def test_normal_kl_by_hand():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 * (1 + 0) + 0.5 * (2 - 1 - math.log(2))
    assert normal_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_mixture_weights_are_clamped_and_normalised():
    prior = MixturePrior(3, 2)
    with torch.no_grad():
        prior.pi_.copy_(torch.tensor([-0.5, 1.0, 3.0]))
    w = prior.weights()
    assert w.sum().item() == pytest.approx(1.0)
    assert w[0].item() == pytest.approx(1e-8 / 4, rel=1e-3)


# ----------------------------------------------------------------- other losses, modules
def test_nonzero_mse_ignores_observed_zeros():
    x = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    x_hat = torch.tensor([[5.0, 1.0], [3.0, 7.0]])
    assert nonzero_mse(x, x_hat).item() == pytest.approx((1 + 4) / 4)


def test_adversarial_losses_hard_labels():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    expected_d = (-torch.log(sig(real)).mean() - torch.log(1 - sig(fake)).mean()).item()
    assert discriminator_loss(real, fake, soft=False).item() == pytest.approx(expected_d,
                                                                              rel=1e-5)
    expected_g = -torch.log(sig(fake)).mean().item()
    assert generator_loss(fake, soft=False).item() == pytest.approx(expected_g, rel=1e-5)


def test_soft_labels_stay_in_the_codes_ranges():
    """Soft targets: real ~ U(0.9, 1), fake ~ U(0, 0.1). A discriminator sure and right
    (logit +L on real, −L on fake) pays BCE ≈ (1 − y)·L on real and y·L on fake: with
    L = 30 each part averages 30 × 0.05 = 1.5, where hard labels cost nothing."""
    big = torch.full((4000,), 30.0)
    gen = torch.Generator().manual_seed(0)
    assert discriminator_loss(big, -big, soft=True, generator=gen).item() == pytest.approx(
        3.0, abs=0.1)
    assert discriminator_loss(big, -big, soft=False).item() == pytest.approx(0.0, abs=1e-6)
    # at logit 0 the BCE is log 2 whatever the target
    assert generator_loss(torch.zeros(10), soft=True, generator=gen).item() == pytest.approx(
        math.log(2), rel=1e-5)


def test_vade_shapes_non_negative_output_and_deterministic_reconstruction():
    torch.manual_seed(0)
    net = VaDE(30, 4).eval()
    x = torch.rand(8, 30)
    x_hat, z, mu, logvar = net(x, generator=torch.Generator().manual_seed(0))
    assert x_hat.shape == (8, 30) and z.shape == mu.shape == logvar.shape == (8, 10)
    assert torch.all(x_hat >= 0)
    assert torch.equal(net.reconstruct(x), net.reconstruct(x))
    assert torch.allclose(net.reconstruct(x), net.decode(mu))
    net.copy_mean_head_to_logvar()
    assert torch.equal(net.logvar.weight, net.mu.weight)
    assert VaDE(30, None).prior is None


def test_discriminator_heads():
    d = Discriminator(30).eval()
    logit, t, v = d(torch.rand(5, 30))
    assert logit.shape == (5,) and t.shape == (5, 10) and v.shape == (5, 10)
    weights = [m.weight for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert all(abs(w.std().item() - 0.02) < 0.005 for w in weights if w.numel() > 1000)
