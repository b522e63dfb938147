"""scMASKGAN's parts: image layout, masks, scaling, networks, losses, candidate fill."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scfill.methods.scmaskgan.impute import (
    CandidateFill,
    DistanceMoments,
    eligible_ranking,
    neighbour_weights,
    observed_distances,
    remove_outliers,
)
from scfill.methods.scmaskgan.layout import GeneImage, UnitScaler
from scfill.methods.scmaskgan.module import (
    Discriminator,
    Generator,
    SelfAttention,
    adversarial_generator_loss,
    discriminator_loss,
    masked_reconstruction,
)
from scfill.methods.scmaskgan.tuning import Holdout, KObjective, RankedMeans, choose_holdout


# ----------------------------------------------------------------------------- layout
@pytest.mark.parametrize("n_genes, side", [(16, 4), (10, 4), (17, 5), (1, 1), (894, 30)])
def test_layout_round_trip_square_and_padded(n_genes, side):
    layout = GeneImage(n_genes)
    assert layout.side == side
    genes = torch.rand(3, n_genes) + 0.1
    image = layout.to_image(genes)
    assert image.shape == (3, 1, side, side)
    torch.testing.assert_close(layout.to_genes(image), genes)
    j = n_genes - 1  # row-wise: gene j at pixel (j // N, j % N)
    torch.testing.assert_close(image[:, 0, j // side, j % side], genes[:, j])
    flat = image.reshape(3, -1)
    assert torch.all(flat[:, n_genes:] == 0)  # padding
    assert layout.gene_pixels().sum() == n_genes


def test_observation_mask_is_one_only_at_observed_genes():
    layout = GeneImage(7)
    genes = torch.tensor([[0.0, 0.3, 0.0, 1.0, 0.2, 0.0, 0.5]])
    mask = layout.observation_mask(genes).reshape(-1)
    assert mask.tolist() == [0, 1, 0, 1, 1, 0, 1, 0, 0]


def test_unit_scaler_maps_to_unit_interval_and_back():
    rng = np.random.default_rng(0)
    x = np.where(rng.random((50, 6)) < 0.5, 0, rng.gamma(2, 1, (50, 6))).astype(np.float32)
    x[:, 5] = 0  # a gene without counts keeps divisor 1
    scaler = UnitScaler.fit(sp.csr_matrix(x))
    s = scaler.transform(torch.from_numpy(x))
    assert float(s.min()) == 0 and float(s[:, :5].max(dim=0).values.min()) == 1.0
    torch.testing.assert_close(scaler.inverse(s), torch.from_numpy(x))
    assert scaler.maxima[5] == 1
    np.testing.assert_array_equal(UnitScaler.from_state(scaler.state()).maxima, scaler.maxima)


# ----------------------------------------------------------------------------- networks
def test_attention_starts_as_identity_and_ignores_masked_keys():
    torch.manual_seed(0)
    attention = SelfAttention(8)
    h = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(attention(h), h)  # γ = 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    mask = torch.ones(2, 1, 3, 3)
    mask[:, :, 0, :] = 0
    changed = h.clone()
    changed[:, :, 0, :] += 5.0
    a, b = attention(h, mask), attention(changed, mask)
    torch.testing.assert_close(a[:, :, 1:], b[:, :, 1:])  # unmasked positions unaffected


def test_generator_output_shape_and_range():
    torch.manual_seed(0)
    gen = Generator(side=9, n_classes=3, latent_dim=9, channels=8)
    y = torch.eye(3)[[0, 1, 2, 1]]
    with torch.no_grad():
        out = gen(torch.randn(4, 9), y)
    assert out.shape == (4, 1, 9, 9)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("train", [True, False])
def test_discriminator_ignores_masked_pixels_and_padding(train):
    torch.manual_seed(0)
    layout = GeneImage(70)  # N = 9: 11 padding pixels
    disc = Discriminator(layout.side, n_classes=2, channels=8).train(train)
    genes = torch.rand(4, 70) * (torch.rand(4, 70) < 0.6)
    image, mask = layout.to_image(genes), layout.observation_mask(genes)
    y = torch.eye(2)[[0, 1, 1, 0]]
    noisy = image + (1 - mask) * torch.rand_like(image) * 3  # zeros and padding changed
    torch.testing.assert_close(disc(image, mask, y), disc(noisy, mask, y))
    assert disc(image, mask, y).shape == (4, 1, 3, 3)


def test_losses_use_only_observed_pixels_and_patches():
    torch.manual_seed(0)
    real, fake = torch.rand(3, 1, 5, 5), torch.rand(3, 1, 5, 5)
    mask = (torch.rand(3, 1, 5, 5) < 0.5).float()
    other = fake + (1 - mask) * 10
    other_real = real - (1 - mask) * 10
    assert masked_reconstruction(fake, real, mask) == masked_reconstruction(other, other_real,
                                                                            mask)
    expected = ((fake - real) ** 2 * mask).sum() / mask.sum()
    torch.testing.assert_close(masked_reconstruction(fake, real, mask), expected)
    logits_r, logits_f = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    weight = torch.ones(3, 1, 2, 2)
    weight[0, 0, 0, 0] = 0
    moved_r, moved_f = logits_r.clone(), logits_f.clone()
    moved_r[0, 0, 0, 0] += 9
    moved_f[0, 0, 0, 0] -= 9
    torch.testing.assert_close(discriminator_loss(logits_r, logits_f, weight),
                               discriminator_loss(moved_r, moved_f, weight))
    torch.testing.assert_close(adversarial_generator_loss(logits_f, weight),
                               adversarial_generator_loss(moved_f, weight))
    # log(1 − σ(l)) for the generator (paper eq. 3)
    torch.testing.assert_close(adversarial_generator_loss(logits_f, torch.ones_like(weight)),
                               torch.log(1 - torch.sigmoid(logits_f)).mean())


# --------------------------------------------------------------------- imputation parts
def test_isolation_forest_removes_planted_outliers():
    rng = np.random.default_rng(0)
    normal = rng.normal(0.5, 0.03, (200, 40))
    planted = rng.normal(0.5, 0.03, (6, 40)) + rng.choice([-0.4, 0.4], (6, 40))
    candidates = np.vstack([normal, planted])
    keep = remove_outliers(candidates, seed=0)
    assert not keep[200:].any()
    assert keep[:200].mean() > 0.9


def test_observed_distances_match_brute_force():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((5, 12)).astype(np.float32))
    m = torch.from_numpy((rng.random((5, 12)) < 0.5).astype(np.float32))
    c = torch.from_numpy(rng.random((7, 12)).astype(np.float32))
    brute = torch.sqrt(((x[:, None, :] - c[None]) ** 2 * m[:, None, :]).sum(-1))
    torch.testing.assert_close(observed_distances(x, m, c), brute, atol=1e-5, rtol=1e-5)


def test_neighbours_are_the_k_nearest_below_threshold_and_at_least_one():
    d = torch.tensor([[0.1, 0.5, 0.2, 0.9], [3.0, 2.0, 4.0, 5.0]])
    order, eligible = eligible_ranking(d, d, theta=0.6)
    assert eligible.tolist() == [3, 1]  # the second row has none below θ: keeps its nearest
    w = neighbour_weights(order, eligible, k=2)
    torch.testing.assert_close(w, torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]]))


def test_threshold_is_mean_plus_k_sigma():
    moments = DistanceMoments()
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    moments.add(values[:2])
    moments.add(values[2:])
    assert moments.threshold(1.5) == pytest.approx(2.5 + 1.5 * float(values.std(False)))


def test_fill_takes_the_nearest_candidates_mean():
    candidates = {0: torch.tensor([[0.1, 0.2, 0.9], [0.8, 0.8, 0.1], [0.1, 0.3, 0.7]])}
    fill = CandidateFill(candidates, k=2, k_sigma=10.0)
    values = torch.tensor([[0.1, 0.25, 0.0]])
    mask = (values != 0).float()
    labels = np.zeros(1, dtype=int)
    fill.add_moments(values, mask, labels)
    torch.testing.assert_close(fill.fill(values, mask, labels),
                               (candidates[0][0] + candidates[0][2])[None] / 2)


def test_holdout_hides_entries_by_position():
    rng = np.random.default_rng(0)
    dense = np.where(rng.random((30, 20)) < 0.5, 0, rng.random((30, 20)) + 0.5)
    matrix = sp.csr_matrix(dense.astype(np.float32))
    holdout = choose_holdout(matrix, np.random.default_rng(3), fraction=0.2, max_cells=10)
    assert len(np.unique(holdout.rows)) <= 10
    assert len(choose_holdout(matrix, np.random.default_rng(3), max_entries=5).rows) == 5
    np.testing.assert_allclose(holdout.values, dense[holdout.rows, holdout.cols])
    visible = holdout.hide(matrix).toarray()
    assert np.all(visible[holdout.rows, holdout.cols] == 0)
    untouched = np.ones_like(dense, dtype=bool)
    untouched[holdout.rows, holdout.cols] = False
    np.testing.assert_allclose(visible[untouched], dense[untouched])
    nan = Holdout(holdout.rows, holdout.cols, holdout.values)
    poisoned = matrix.copy()
    poisoned[holdout.rows, holdout.cols] = np.nan
    assert np.isfinite(nan.hide(sp.csr_matrix(poisoned)).data).all()


def test_k_objective_is_prefix_mean_error():
    ranked = RankedMeans(prefix=np.array([[1.0, 2.0, 3.0], [4.0, 4.5, 5.0]], np.float32),
                         n_eligible=np.array([3, 1]))
    objective = KObjective(ranked, truth=np.array([2.0, 4.0], np.float32))
    assert objective(2) == pytest.approx(0.0)  # second entry: only one eligible
    assert objective(3) == pytest.approx(0.5)
