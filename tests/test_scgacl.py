"""scGACL: phases and optimisers, labels inside evaluations, determinism, save/load,
ablations, parameters, and the pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfill
from conftest import make_counts, prepared, reconstructed
from scfill.cluster import precluster
from scfill.errors import InputError
from scfill.methods.base import PreparedData
from scfill.methods.scgacl import ScGACL
from scfill.methods.scgacl import plan as plan_module
from scfill.methods.scgacl.model import DEFAULT_PROFILE, PROFILES
from scfill.methods.scgacl.plan import generated_share
from scfill.preprocess import LogNormalizer, library_size

N_CELLS, N_GENES = 96, 30
#: Short schedule and narrow networks (the paper's 500/500/2000 widths are the default).
TINY = {"profile": "paper", "pretrain_epochs": 1, "vade_epochs": 1, "joint_epochs": 2,
        "batch_size": 32, "hidden_dims": (32, 32, 64)}


def _prepared(seed: int = 0, n_cells: int = N_CELLS, labels: bool = True) -> PreparedData:
    return prepared(make_counts(n_cells, N_GENES, seed=5),
                    labels_key="group" if labels else None, seed=seed)


def _fitted(seed: int = 0, **params) -> tuple[ScGACL, PreparedData]:
    data = _prepared(seed)
    return ScGACL(**{**TINY, **params}).fit(data), data


# ------------------------------------------------------------------ phases, optimisers
def test_three_phases_in_order_with_their_optimisers(monkeypatch):
    """A spy on every plan: phase order, the parameters of each optimiser, and the four
    updates of a joint minibatch in the code's order."""
    calls: list[tuple[str, dict[str, set[int]]]] = []
    updates: list[str] = []

    def spy_optimizers(cls):
        original = cls.configure_optimizers

        def configure(self):
            optimizers = original(self)
            calls.append((cls.__name__, {name: {id(p) for group in opt.param_groups
                                                for p in group["params"]}
                                         for name, opt in optimizers.items()}))
            lrs = {name: opt.param_groups[0]["lr"] for name, opt in optimizers.items()}
            calls[-1][1]["lr"] = lrs
            return optimizers
        monkeypatch.setattr(cls, "configure_optimizers", configure)

    for cls in (plan_module.PretrainPlan, plan_module.VaDEPlan, plan_module.JointPlan):
        spy_optimizers(cls)
    original_step = plan_module.JointPlan.training_step

    def joint_step(self, batch, ctx):
        optimize = ctx.optimize

        def recording(name, loss, **kwargs):
            updates.append(name)
            return optimize(name, loss, **kwargs)
        monkeypatch.setattr(ctx, "optimize", recording)
        out = original_step(self, batch, ctx)
        monkeypatch.setattr(ctx, "optimize", optimize)
        return out
    monkeypatch.setattr(plan_module.JointPlan, "training_step", joint_step)

    model, _data = _fitted()
    assert [name for name, _ in calls] == ["PretrainPlan", "VaDEPlan", "JointPlan"]
    vade = {id(p) for p in model.vade_.parameters()}
    prior = {id(p) for p in model.vade_.prior.parameters()}
    disc = {id(p) for p in model.discriminator_.parameters()}
    pretrain, vade_phase, joint = (c[1] for c in calls)
    assert pretrain["vade"] == vade - prior  # the prior is initialised after pretraining
    assert vade_phase["vade"] == vade
    assert joint["vade"] == vade and joint["discriminator"] == disc
    assert pretrain["lr"] == {"vade": 1e-3} and vade_phase["lr"] == {"vade": 1e-3}
    assert joint["lr"] == {"vade": 1e-4, "discriminator": 1e-4}
    steps_per_epoch = -(-N_CELLS // TINY["batch_size"])
    # per minibatch: ELBO, generator adversarial, discriminator adversarial, then the
    # contrastive loss for both networks
    assert updates == ["vade", "vade", "discriminator", "vade", "discriminator"] * (
        steps_per_epoch * TINY["joint_epochs"])
    assert set(model.history_) == {"pretrain", "vade", "joint"}


def test_prior_starts_from_a_gaussian_mixture_of_the_pretrained_means(monkeypatch):
    """Between phases (a) and (b): π, μ_c, σ²_c equal a diagonal GaussianMixture fitted
    to the encoder means, and the log-variance head is a copy of the mean head."""
    seen = {}
    original = plan_module.VaDEPlan.configure_optimizers

    def capture(self):
        prior = self.module.prior
        seen["pi"] = prior.weights().detach().clone()
        seen["var"] = prior.log_sigma2_c.exp().detach().clone()
        seen["same_heads"] = bool((self.module.mu.weight == self.module.logvar.weight).all())
        return original(self)
    monkeypatch.setattr(plan_module.VaDEPlan, "configure_optimizers", capture)
    model, _ = _fitted()
    k = len(np.unique(_prepared().labels))
    assert seen["pi"].shape == (k,) and seen["pi"].sum().item() == pytest.approx(1.0)
    assert seen["same_heads"]
    assert (seen["var"] >= 1e-5).all()  # reg_covar
    assert model.info_["n_groups"] == k


def test_generated_share_follows_the_code():
    """p_gen: 0.1 in epoch 0, +0.09 after epochs 0, 10, …, 1.0 from epoch 91 (100 epochs)."""
    shares = [generated_share(e, 100) for e in range(100)]
    assert shares[0] == pytest.approx(0.1)
    assert shares[1] == shares[10] == pytest.approx(0.19)
    assert shares[11] == pytest.approx(0.28)
    assert shares[90] == pytest.approx(0.91) and shares[91] == pytest.approx(1.0)
    assert generated_share(500, 100) == 1.0


# ------------------------------------------------------------------ ablations
def test_ablations_change_what_trains():
    no_disc, _ = _fitted(discriminator=False)
    assert no_disc.discriminator_ is None
    assert set(no_disc.history_["joint"]["losses"]) == {"loss", "reconstruction", "kl"}
    heads_off, _ = _fitted(adversarial=False, cell_contrast=False, type_contrast=False)
    assert heads_off.discriminator_ is None  # nothing left for it to do
    no_adv, _ = _fitted(adversarial=False)
    assert "generator_adv" not in no_adv.history_["joint"]["losses"]
    assert "cell_contrast" in no_adv.history_["joint"]["losses"]
    vae, data = _fitted(prior="normal")
    assert vae.vade_.prior is None
    assert np.all(np.isfinite(reconstructed(vae, data)))


# ------------------------------------------------------------------ determinism, output
def test_same_seed_same_result_and_deterministic_output():
    a, data = _fitted(seed=3)
    b, _ = _fitted(seed=3)
    c, _ = _fitted(seed=4)
    ra, rb, rc = reconstructed(a, data), reconstructed(b, data), reconstructed(c, data)
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(ra, rc)
    np.testing.assert_array_equal(ra, reconstructed(a, data))  # posterior mean: no sampling
    assert ra.dtype == np.float32 and ra.shape == data.counts.shape and (ra >= 0).all()


def test_fit_without_labels_preclusters():
    data = _prepared(labels=False)
    model = ScGACL(**TINY).fit(data)
    expected = precluster(data.logcounts, method="kmeans", seed=data.seed)
    assert model.info_["n_groups"] == int(expected.max()) + 1


# ------------------------------------------------------------------ save / load
def test_save_load_round_trip_and_new_cells(tmp_path):
    model, data = _fitted()
    model.save(tmp_path / "m")
    loaded = ScGACL.load(tmp_path / "m")
    np.testing.assert_array_equal(reconstructed(loaded, data), reconstructed(model, data))
    assert loaded.get_params() == model.get_params()
    # inductive: other cells, same genes
    new = _prepared(n_cells=40)
    out = reconstructed(loaded, new)
    assert out.shape == (40, N_GENES) and np.all(np.isfinite(out))
    new.var_names = np.array([f"g{j}" for j in range(N_GENES)])
    with pytest.raises(InputError, match="genes"):
        loaded.reconstruct(new)
    with pytest.raises(InputError, match="not empty"):
        model.save(tmp_path / "m")


def test_unfitted_model_refuses_to_reconstruct_or_save(tmp_path):
    with pytest.raises(InputError, match="not been fitted"):
        ScGACL().reconstruct(_prepared())
    with pytest.raises(InputError, match="not been fitted"):
        ScGACL().save(tmp_path / "m")


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize("params", [
    {"profile": "slow"}, {"prior": "student"}, {"joint_epochs": -1}, {"batch_size": 1},
    {"beta1": 1.0}, {"joint_lr": 0.0}, {"temperature": -0.5}, {"adversarial": "yes"},
    {"threshold": 1.5}, {"dropout_variant": "other"}, {"lambda_type": -1.0},
    {"hidden_dims": (10, 10)}, {"hidden_dims": "500,500,2000"}, {"latent_dim": 0},
])
def test_bad_parameters_raise_input_error(params):
    with pytest.raises(InputError):
        ScGACL(**params).check_params()


def test_bad_parameter_stops_impute_before_training():
    adata = make_counts(60, 20)
    with pytest.raises(InputError, match="profile"):
        scfill.impute(adata, "scgacl", params={"profile": "slow"})


def test_profiles_and_overrides():
    paper = ScGACL(profile="paper")
    assert paper.schedule() == PROFILES["paper"]
    assert (paper.schedule().joint_epochs, paper.schedule().batch_size) == (100, 32)
    assert paper.learning_rates() == {"pretrain": 1e-3, "vade": 1e-3, "joint": 1e-4}
    assert ScGACL().profile == DEFAULT_PROFILE == "fast"
    fast = ScGACL(profile="fast", joint_epochs=7, vade_lr=5e-4)
    assert fast.schedule().joint_epochs == 7  # explicit parameters win over the profile
    assert fast.schedule().batch_size == PROFILES["fast"].batch_size == 64
    assert fast.learning_rates() == {"pretrain": 1e-3, "vade": 5e-4, "joint": 1e-4}


def test_info_records_the_profile_and_its_settings(monkeypatch):
    """``info_`` (uns["scfill"]["info"]) names the profile and the schedule and learning
    rates that actually trained, overrides included; the optimisers used those rates."""
    seen = {}
    original = plan_module.AdamSettings.make

    def make(self, params):
        seen.setdefault(self.lr, 0)
        seen[self.lr] += 1
        return original(self, params)
    monkeypatch.setattr(plan_module.AdamSettings, "make", make)
    model, _ = _fitted(profile="fast", joint_lr=3e-4)
    assert model.info_["profile"] == "fast"
    assert model.info_["schedule"] == {"pretrain_epochs": TINY["pretrain_epochs"],
                                       "vade_epochs": TINY["vade_epochs"],
                                       "joint_epochs": TINY["joint_epochs"],
                                       "batch_size": TINY["batch_size"]}
    assert model.info_["learning_rates"] == {"pretrain": 1e-3, "vade": 1e-3, "joint": 3e-4}
    assert seen == {1e-3: 2, 3e-4: 2}  # pretrain, vade; joint's two optimisers


# ------------------------------------------------------------------ pipeline, evaluation
def test_impute_end_to_end_uses_the_scgacl_dropout_variant():
    adata = make_counts(80, 25, seed=2)
    scfill.impute(adata, "scgacl", params=TINY, labels_key="group", seed=0)
    info = adata.uns["scfill"]
    assert info["dropout_summary"]["variant"] == "scgacl"
    assert info["dropout_summary"]["transform"] == "ln_counts"
    assert info["combine_rule"] == "dropout" and info["dropout_threshold"] == 0.5
    observed = adata.X.toarray()
    imputed = adata.layers["imputed"].toarray()
    logged = LogNormalizer.median(library_size(sp.csr_matrix(observed))).transform(
        sp.csr_matrix(observed), library_size(sp.csr_matrix(observed))).toarray()
    np.testing.assert_allclose(imputed[observed > 0], logged[observed > 0], rtol=1e-6)
    p = adata.layers["dropout_probability"].toarray()
    assert np.all(imputed[(observed == 0) & (p <= 0.5)] == 0)


def test_default_gene_selection_is_the_methods(monkeypatch):
    monkeypatch.setattr(ScGACL, "default_n_top_genes", 12)
    adata = make_counts(80, 25, seed=2)
    scfill.impute(adata, "scgacl", params=TINY, labels_key="group")
    assert adata.uns["scfill"]["n_genes_imputed"] == 12
    scfill.impute(adata, "scgacl", params=TINY, labels_key="group", n_top_genes=20)
    assert adata.uns["scfill"]["n_genes_imputed"] == 20


def test_no_true_labels_reach_the_method_inside_evaluate(monkeypatch):
    """Inside scfill.evaluate the method sees pre-clusters, not the planted labels."""
    adata = make_counts(90, 25, seed=7)
    rng = np.random.default_rng(0)
    adata.obs["label"] = pd.Categorical(rng.choice(["a", "b", "c"], adata.n_obs))
    seen = {}
    original = ScGACL.fit

    def spy(self, data):
        seen["labels"] = data.labels.copy()
        seen["logcounts"] = data.logcounts.copy()
        seen["seed"] = data.seed
        return original(self, data)
    monkeypatch.setattr(ScGACL, "fit", spy)
    from scfill.evaluate import evaluate_method

    evaluate_method(adata, "scgacl", protocol="mask-nonzero:0.2", params=TINY, seed=0)
    expected = precluster(seen["logcounts"], method="kmeans", seed=seen["seed"])
    np.testing.assert_array_equal(seen["labels"], expected)


def test_registered():
    assert scfill.get_method("scgacl") is ScGACL
    assert "scgacl" in scfill.list_methods()
