"""scMASKGAN as a method: tuning without leaks, determinism, transductive errors, pipeline."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scfill
from conftest import make_counts, prepared, reconstructed
from scfill.errors import InputError, MissingDependency, NotFittedError
from scfill.methods.base import PreparedData
from scfill.methods.scmaskgan import ScMaskGan
from scfill.methods.scmaskgan import model as model_module
from scfill.methods.scmaskgan.tuning import choose_holdout

N_CELLS, N_GENES = 60, 30
TINY = {"epochs": 2, "batch_size": 16, "n_candidates": 24, "channels": 4}


def _prepared(seed: int = 0) -> PreparedData:
    return prepared(make_counts(N_CELLS, N_GENES, seed=3), labels_key="group", seed=seed)


@pytest.fixture
def no_optuna(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # find_spec → None: "not installed"


def test_bad_parameters_raise_input_error():
    data = _prepared()
    for params in ({"profile": "slow"}, {"k": 0}, {"outlier_threshold": 1.5},
                   {"tune_k": "yes"}, {"epochs": 0}, {"lr": -1.0}, {"n_candidates": 0},
                   {"reconstruction_weight": -1.0}, {"channels": 0}):
        with pytest.raises(InputError):
            ScMaskGan(**params).fit(data)


def test_profile_sets_the_schedule_and_parameters_override_it():
    assert ScMaskGan().schedule() == {"epochs": 500, "batch_size": 32, "lr": 2e-4,
                                      "channels": 32}
    assert ScMaskGan(profile="fast", epochs=7).schedule()["epochs"] == 7


def test_without_optuna_k_is_fixed(no_optuna):
    model = ScMaskGan(**TINY).fit(_prepared())
    assert model.k_ == model_module.FIXED_K and model.info_["k_source"] == "fixed"
    assert model.info_["holdout_entries"] == 0
    with pytest.raises(MissingDependency, match="scfill\\[tune\\]"):
        ScMaskGan(tune_k=True, **TINY).fit(_prepared())


def test_tuning_never_sees_the_entries_it_is_scored_on(monkeypatch):
    pytest.importorskip("optuna")
    data = _prepared()
    holdout = choose_holdout(data.logcounts, data.rng(model_module._STREAM_HOLDOUT))
    assert len(holdout.rows) > 0 and np.all(holdout.values > 0)
    seen = {"scaled": [], "ranked": []}
    scale, rank = model_module._scale_csr, model_module.ranked_means

    def spy_scale(values, scaler):
        seen["scaled"].append(values.toarray())
        return scale(values, scaler)

    def spy_rank(fill, values, mask, labels, rows, cols):
        seen["ranked"].append((values.clone(), mask.clone(), rows, cols))
        return rank(fill, values, mask, labels, rows, cols)

    monkeypatch.setattr(model_module, "_scale_csr", spy_scale)
    monkeypatch.setattr(model_module, "ranked_means", spy_rank)
    model = ScMaskGan(tune_k=True, **TINY).fit(data)
    assert model.info_["k_source"] == "optuna" and 1 <= model.k_ <= 24
    training = seen["scaled"][0]  # what the GAN trains on
    assert np.all(training[holdout.rows, holdout.cols] == 0)
    (values, mask, rows, cols), = seen["ranked"]
    cells = np.unique(holdout.rows)
    np.testing.assert_array_equal(cells[rows], holdout.rows)
    np.testing.assert_array_equal(cols, holdout.cols)
    assert torch.all(values[rows, cols] == 0) and torch.all(mask[rows, cols] == 0)
    assert float(mask.sum()) > 0  # the other entries are still used


def test_same_seed_same_result_and_observed_kept():
    a = ScMaskGan(**TINY).fit(_prepared(seed=4))
    b = ScMaskGan(**TINY).fit(_prepared(seed=4))
    data = _prepared(seed=4)
    ra, rb = reconstructed(a, data), reconstructed(b, data)
    np.testing.assert_array_equal(ra, rb)
    assert a.k_ == b.k_
    for pa, pb in zip(a.generator_.parameters(), b.generator_.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert ra.shape == (N_CELLS, N_GENES) and np.isfinite(ra).all() and ra.min() >= 0
    c = reconstructed(ScMaskGan(**TINY).fit(_prepared(seed=5)), _prepared(seed=5))
    assert not np.array_equal(ra, c)


def test_transductive_errors_and_save_load(no_optuna, tmp_path):
    model = ScMaskGan(**TINY)
    with pytest.raises(NotFittedError, match="not been fitted"):
        model.reconstruct(_prepared())
    model.fit(_prepared())
    assert ScMaskGan.transductive
    loaded = scfill.load_model(model.save(tmp_path / "model"))
    np.testing.assert_array_equal(reconstructed(loaded, _prepared()),
                                  reconstructed(model, _prepared()))
    other = _prepared()
    other.obs_names = other.obs_names[::-1]
    with pytest.raises(InputError, match="transductive"):
        model.reconstruct(other)


def test_pipeline_keeps_nonzeros_and_fills_zeros(no_optuna):
    adata = make_counts(N_CELLS, N_GENES, seed=1)
    scfill.impute(adata, "scmaskgan", params=TINY, seed=0)
    imputed = adata.layers["imputed"]
    imputed = imputed.toarray() if sp.issparse(imputed) else np.asarray(imputed)
    observed = adata.X.toarray() > 0
    assert np.all(imputed[observed] > 0)
    assert np.mean(imputed[~observed] > 0) > 0.9  # eq. 6: zeros take the neighbours' mean
    info = adata.uns["scfill"]
    assert info["method"] == "scmaskgan"
    assert "pre-clustering" in str(info["labels"])  # no labels given: pre-clusters


def test_training_checkpoints_through_the_engine(tmp_path, no_optuna):
    model = ScMaskGan(checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=1, **TINY)
    model.fit(_prepared())
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    assert set(model.history_) == {"loss_d", "loss_g", "adversarial", "reconstruction"}
    assert len(model.history_["reconstruction"]) == model.info_["epochs_run"] == 2


def test_info_records_the_schedule_and_the_reconstruction_curve(no_optuna):
    model = ScMaskGan(profile="fast", reconstruction_weight=10.0, **TINY).fit(_prepared())
    info = model.info_
    assert info["profile"] == "fast"
    assert {k: info[k] for k in ("epochs", "batch_size", "lr", "channels")} == \
        {**model.schedule(), **{k: TINY[k] for k in ("epochs", "batch_size", "channels")}}
    assert info["lr"] == model_module.PROFILES["fast"]["lr"]
    assert info["reconstruction_weight"] == 10.0
    assert info["patience"] == model_module.PATIENCE
    assert info["min_delta"] == model_module.MIN_DELTA
    assert info["reconstruction_history"] == pytest.approx(model.history_["reconstruction"],
                                                           abs=1e-6)
