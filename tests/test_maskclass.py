"""MaskClass: gene scaling, masks, losses, training, save/load, and the pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scfill
from conftest import make_counts, prepared, random_dropout, reconstructed
from scfill.errors import InputError, NotFittedError
from scfill.methods.base import PreparedData
from scfill.methods.maskclass import MaskClass
from scfill.methods.maskclass import model as maskclass_module
from scfill.methods.maskclass.module import (
    MaskClassAutoencoder,
    corrupt,
    mask_rate,
    mask_weight,
    masked_losses,
    sample_mask,
    zero_noise,
)
from scfill.methods.maskclass.scaler import GeneScaler
from scfill.preprocess import LogNormalizer, library_size

N_CELLS, N_GENES = 200, 60


def _prepared(seed: int = 0, n_genes: int = N_GENES) -> PreparedData:
    """Tiny prepared data with made-up dropout probabilities (no dropout model needed)."""
    adata = make_counts(N_CELLS, N_GENES, seed=3)[:, :n_genes].copy()
    return prepared(adata, seed=seed, dropout=random_dropout(adata.X, low=0.05, high=0.95))


def _fitted(seed: int = 0, **params) -> tuple[MaskClass, PreparedData]:
    data = _prepared(seed)
    return MaskClass(epochs=2, **params).fit(data), data


# ----------------------------------------------------------------------------- scaling
def test_scaler_follows_the_paper_and_round_trips():
    rng = np.random.default_rng(0)
    x = np.where(rng.random((300, 8)) < 0.4, 0, rng.gamma(2, 1.5, (300, 8))).astype(np.float32)
    scaler = GeneScaler.fit(sp.csr_matrix(x))
    low, high = np.percentile(x.astype(np.float64), [2, 99.5], axis=0)
    np.testing.assert_allclose(scaler.low, low, rtol=1e-6)
    np.testing.assert_allclose(scaler.high, high, rtol=1e-6)
    s = scaler.transform(x)
    np.testing.assert_allclose(s.min(axis=0), -1, atol=1e-5)
    np.testing.assert_allclose(s.max(axis=0), 1, atol=1e-5)
    inside = np.clip(x, scaler.low, scaler.high)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(inside)), inside, atol=1e-4)
    # values beyond the percentiles come back winsorised
    assert np.all(scaler.inverse(s) <= scaler.high + 1e-4)


def test_scaler_blocks_torch_and_constant_genes():
    rng = np.random.default_rng(1)
    x = rng.gamma(1, 2, (100, 7)).astype(np.float32)
    x[:, 3] = 0  # constant gene: σ and the range are floored, no NaN
    whole = GeneScaler.fit(x)
    blocked = GeneScaler.fit(sp.csr_matrix(x), block_entries=150)  # one gene per block
    for name in ("low", "high", "mean", "std", "z_min", "z_range"):
        np.testing.assert_allclose(getattr(blocked, name), getattr(whole, name), rtol=1e-6)
    s_torch = whole.transform(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s_torch, whole.transform(x), atol=1e-5)
    assert np.all(whole.transform(x)[:, 3] == -1)
    assert whole.zero_point()[3] == -1
    np.testing.assert_allclose(whole.inverse(whole.transform(x))[:, 3], 0, atol=1e-6)


# ----------------------------------------------------------------------------- masks
def test_masks_follow_the_requested_rates():
    generator = torch.Generator().manual_seed(0)
    n = 400_000
    is_zero = (torch.rand(n, generator=generator) < 0.5).float()
    p_bio = torch.rand(n, generator=generator) * is_zero
    rate = mask_rate(is_zero, p_bio, p_zero=0.2, p_nonzero=0.3)
    torch.testing.assert_close(rate, torch.where(is_zero == 1, 0.2 * p_bio, 0.3))
    mask, _ = sample_mask(rate, torch.rand(n, generator=generator))
    nonzero_rate = mask[is_zero == 0].mean().item()
    assert abs(nonzero_rate - 0.3) < 5 * math.sqrt(0.3 * 0.7 / (n / 2))
    zeros = is_zero == 1
    expected = (0.2 * p_bio[zeros]).mean().item()
    assert abs(mask[zeros].mean().item() - expected) < 5 * math.sqrt(expected / (n / 2))
    # the rate tracks p_bio: zeros with high p_bio are masked more
    high = zeros & (p_bio > 0.5)
    low = zeros & (p_bio < 0.5) & (p_bio > 0)
    assert mask[high].mean() > 2 * mask[low].mean()
    never, eta_never = sample_mask(torch.zeros(n), torch.rand(n, generator=generator))
    assert never.sum() == 0 and torch.isfinite(eta_never).all()


def test_noise_level_of_masked_entries_is_uniform_and_independent_of_the_rate():
    """η = u/π from the mask's own draw is U(0, 1) at masked entries, whatever π is."""
    generator = torch.Generator().manual_seed(3)
    n = 400_000
    for value in (0.002, 0.3, 0.9):
        mask, eta = sample_mask(torch.full((n,), value), torch.rand(n, generator=generator))
        assert torch.isfinite(eta).all() and eta.min() >= 0 and eta.max() <= 1
        masked = eta[mask == 1]
        quartiles = torch.quantile(masked, torch.tensor([0.25, 0.5, 0.75]))
        se = 2 / math.sqrt(masked.numel())
        torch.testing.assert_close(quartiles, torch.tensor([0.25, 0.5, 0.75]),
                                   atol=5 * se, rtol=0)
    # the noise follows the paper's log2(1 + η·ν·c_max) with η·ν ~ U(0, ν)
    c_max = torch.tensor([10.0, 0.0])
    eta = torch.tensor([[0.5, 0.5]])
    torch.testing.assert_close(zero_noise(c_max, eta.clone(), scale=0.2),
                               torch.log2(1 + 0.5 * 0.2 * c_max)[None])


def test_corruption_changes_masked_entries_only():
    s = torch.tensor([[0.5, -1.0, 0.2, -1.0]])
    is_zero = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    noise = torch.full_like(s, 0.7)
    out = corrupt(s, is_zero, mask, noise)
    # masked non-zero → 0, masked zero → noise, unmasked unchanged
    assert out.tolist() == [[0.0, pytest.approx(0.7), pytest.approx(0.2), -1.0]]


# ----------------------------------------------------------------------------- losses
def _reference_losses(s_hat, s, weight, s_zero, p_bio):
    """The paper's two losses written directly (autograd differentiates them)."""
    return ((weight * (s_hat - s) ** 2).sum() / weight.sum(),
            (p_bio * (s_hat - s_zero) ** 2).sum() / p_bio.sum())


def test_masked_losses_and_their_gradient_match_the_paper_formulas():
    generator = torch.Generator().manual_seed(2)
    s_hat = torch.randn(8, 20, generator=generator, requires_grad=True)
    s, s_zero = torch.randn(8, 20, generator=generator), torch.randn(20, generator=generator)
    is_zero = (torch.rand(8, 20, generator=generator) < 0.5).float()
    mask = (torch.rand(8, 20, generator=generator) < 0.3).float()
    p_bio = torch.rand(8, 20, generator=generator) * is_zero
    weight = mask_weight(mask, is_zero, zero_weight=2.0, nonzero_weight=1.0)
    torch.testing.assert_close(weight, mask * (1 + is_zero))
    gamma = 0.7
    losses = masked_losses(s_hat, s, weight, s_zero, p_bio)
    (grad,) = torch.autograd.grad(losses[0] + gamma * losses[1], s_hat)
    expected = _reference_losses(s_hat, s, weight, s_zero, p_bio)
    (expected_grad,) = torch.autograd.grad(expected[0] + gamma * expected[1], s_hat)
    torch.testing.assert_close(torch.stack(losses), torch.stack(expected))
    torch.testing.assert_close(grad, expected_grad)
    # only masked targets count: moving unmasked ones leaves L_mask unchanged
    changed = s + (1 - mask) * 100
    assert masked_losses(s_hat, changed, weight, s_zero, p_bio)[0] == losses[0]
    assert masked_losses(s_hat, s + mask, weight, s_zero, p_bio)[0] != losses[0]
    # no weights: both 0, not NaN
    zero = masked_losses(s_hat, s, torch.zeros_like(weight), s_zero, torch.zeros_like(p_bio))
    assert [float(v.detach()) for v in zero] == [0.0, 0.0]


def test_biozero_loss_ignores_non_zeros():
    s_hat = torch.tensor([[0.0, 3.0, 1.0]])
    s_zero = torch.tensor([-1.0, -1.0, -1.0])
    p_bio = torch.tensor([[0.5, 0.0, 1.5]])  # the middle entry is an observed non-zero
    expected = (0.5 * 1.0 + 1.5 * 4.0) / 2.0
    loss_bio = masked_losses(s_hat, torch.zeros_like(s_hat), torch.ones_like(s_hat), s_zero,
                             p_bio)[1]
    assert loss_bio.item() == pytest.approx(expected)


def test_autoencoder_shape():
    net = MaskClassAutoencoder(N_GENES)
    layers = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [
        (N_GENES, 64), (64, 32), (32, 64), (64, N_GENES)]
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in net.modules()) == 3
    assert isinstance(net.decoder[-1], torch.nn.Linear)  # linear output


# ----------------------------------------------------------------------------- training
def test_fit_records_history_and_variants():
    model, data = _fitted()
    assert len(model.history_["loss"]) == 2
    assert model.info_["epochs_run"] == 2 and model.info_["gamma"] == 1.0
    np.testing.assert_allclose(model.history_["loss"],
                               np.add(model.history_["mask_loss"], model.history_["bio_loss"]),
                               rtol=1e-5)
    best, _ = _fitted(variant="best")
    assert best.info_["gamma"] == 0.0
    np.testing.assert_allclose(best.history_["loss"], best.history_["mask_loss"])
    out = reconstructed(model, data)
    assert out.shape == (N_CELLS, N_GENES) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_network_space_is_log2_of_the_common_space():
    data = _prepared()
    log2 = data.logcounts.toarray() * maskclass_module.log2_factor(data)
    counts, lib = data.counts.toarray(), data.library_size
    expected = np.log2(1 + counts * np.median(lib) / lib[:, None])
    np.testing.assert_allclose(log2, expected, rtol=1e-5, atol=1e-6)


def test_same_seed_same_output_and_streaming_equals_cache(monkeypatch):
    first, data = _fitted(seed=5)
    second, _ = _fitted(seed=5)
    np.testing.assert_array_equal(reconstructed(first, data), reconstructed(second, data))
    other, _ = _fitted(seed=6)
    assert not np.array_equal(reconstructed(first, data), reconstructed(other, data))
    monkeypatch.setattr(maskclass_module, "CACHE_ENTRIES", 0)
    streamed, _ = _fitted(seed=5)
    assert not streamed.info_["scaled_matrix_cached"] and first.info_["scaled_matrix_cached"]
    np.testing.assert_array_equal(reconstructed(streamed, data), reconstructed(first, data))


def test_save_load_round_trip(tmp_path):
    model, data = _fitted()
    model.save(tmp_path / "model")
    loaded = MaskClass.load(tmp_path / "model")
    np.testing.assert_array_equal(reconstructed(loaded, data), reconstructed(model, data))
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_
    with pytest.raises(InputError, match="trained on 60 genes but the data has 59"):
        loaded.reconstruct(_prepared(n_genes=N_GENES - 1))
    with pytest.raises(InputError, match="already exists and is not empty"):
        model.save(tmp_path / "model")
    config = tmp_path / "model" / "config.json"
    config.write_text(config.read_text().replace('"maskclass"', '"knn"'))
    with pytest.raises(InputError, match="holds a 'knn' model, not 'maskclass'"):
        MaskClass.load(tmp_path / "model")


def test_fit_computes_biozero_probabilities_when_not_given():
    """Without probabilities, fit uses the shared ZINB model's: the same training as when
    they are given, and not the training with all-zero probabilities."""
    from scfill.dropout import FixedDropout, estimate

    data = _prepared()
    zinb = estimate("zinb", data.counts, data.library_size).matrix()
    assert zinb.nnz and 0 < zinb.data.mean() < 1  # a real estimate, not all 0 or all 1
    histories = {}
    for name, given in (("computed", None), ("given", FixedDropout(zinb)),
                        ("zero", FixedDropout(sp.csr_matrix(zinb.shape, dtype=np.float32)))):
        data.dropout = given
        histories[name] = MaskClass(epochs=2).fit(data).history_
    assert histories["computed"] == histories["given"]
    assert histories["computed"]["bio_loss"] != histories["zero"]["bio_loss"]
    assert np.isfinite(histories["computed"]["bio_loss"]).all()


def test_unfitted_and_mismatched_models_raise(tmp_path):
    data = _prepared()
    with pytest.raises(NotFittedError, match="has not been fitted"):
        MaskClass().reconstruct(data)
    with pytest.raises(NotFittedError, match="has not been fitted"):
        MaskClass().save(tmp_path / "m")
    model, _ = _fitted()
    data.var_names = data.var_names[::-1]
    with pytest.raises(InputError, match="or the order differs"):
        model.reconstruct(data)


@pytest.mark.parametrize(("params", "message"), [
    ({"epochs": 0}, r"epochs=0 is out of range.*>= 1"),
    ({"epochs": 2.5}, r"epochs=2.5 must be an integer"),
    ({"lr": 0.0}, r"lr=0.0 is out of range.*> 0"),
    ({"batch_size": 0}, r"batch_size=0 is out of range"),
    ({"variant": "fast"}, r"variant='fast' is not allowed.*'balanced', 'best'"),
    ({"p_nonzero": 1.5}, r"p_nonzero=1.5 is out of range.*<= 1"),
    ({"noise_scale": -0.1}, r"noise_scale=-0.1 is out of range"),
    ({"zero_weight": 0}, r"zero_weight=0 is out of range"),
])
def test_bad_parameters_raise(params, message):
    with pytest.raises(InputError, match=message):
        MaskClass(**params).check_params()
    with pytest.raises(InputError, match="maskclass: parameter"):
        MaskClass(**params).fit(_prepared())


# ----------------------------------------------------------------------------- pipeline
def test_impute_keeps_observed_non_zeros():
    adata = make_counts(N_CELLS, N_GENES, seed=3)
    scfill.impute(adata, method="maskclass", seed=0, params={"epochs": 2})
    observed = LogNormalizer.median(library_size(adata.X)).transform(adata.X,
                                                                     library_size(adata.X))
    imputed = adata.layers["imputed"].toarray()
    nonzero = observed.toarray() > 0
    np.testing.assert_allclose(imputed[nonzero], observed.toarray()[nonzero], rtol=1e-6)
    assert (imputed[~nonzero] > 0).mean() > 0.5  # zeros take the reconstruction
    info = adata.uns["scfill"]
    assert info["method"] == "maskclass" and info["combine_rule"] == "zeros"
    assert info["info"]["epochs_run"] == 2
    again = make_counts(N_CELLS, N_GENES, seed=3)
    scfill.impute(again, method="maskclass", seed=0, params={"epochs": 2})
    np.testing.assert_array_equal(again.layers["imputed"].toarray(), imputed)
