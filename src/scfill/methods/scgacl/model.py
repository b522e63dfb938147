"""scGACL (Jiang et al., Brief. Bioinform. 2026; seeds/scgacl.md): a VaDE generator trained
against a multi-task discriminator with multi-scale contrastive learning.

The model facing the pipeline. Its networks are in :mod:`scfill.methods.scgacl.module`, the
losses in :mod:`scfill.methods.scgacl.losses`, the three training phases in
:mod:`scfill.methods.scgacl.plan`; the dropout probabilities come from the shared
Gamma–Normal model (:mod:`scfill.dropout.gamma_normal`, ``specs/dropout.md``) on the cell
groups of the pipeline (``labels_key`` or k-means elbow + silhouette pre-clusters,
:mod:`scfill.cluster`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from scfill.errors import InputError
from scfill.methods.base import Method, PreparedData, register
from scfill.methods.scgacl.module import ENCODER_WIDTHS, LATENT_DIM, Discriminator, VaDE
from scfill.methods.scgacl.plan import AdamSettings, JointPlan, PretrainPlan, VaDEPlan
from scfill.nn import (
    Phase,
    RowDataset,
    RowLoader,
    Trainer,
    predict_blocks,
    seed_everything,
)
from scfill.utils import check_choice, check_number

#: ``GaussianMixture(covariance_type="diag", reg_covar=1e-5)`` (code ``pretrain_VAE``).
GMM_REG_COVAR = 1e-5
PRIORS = ("mixture", "normal")
DROPOUT_VARIANTS = ("scgacl", "scimpute")
DROPOUT_TRANSFORMS = ("ln_counts", "log10_cpm")
#: Seed streams (``PreparedData.rng``): the three phases' loaders and plans, the GMM.
_LOADER_STREAMS, _PLAN_STREAMS, _STREAM_GMM = (21, 22, 23), (31, 32, 33), 24


#: Learning rates of the three phases in the code (``config.py``: 1e-3, 1e-3, 1e-4).
CODE_LEARNING_RATES = {"pretrain": 1e-3, "vade": 1e-3, "joint": 1e-4}


@dataclass(frozen=True)
class Profile:
    """A training schedule: epochs of the three phases and the minibatch size."""

    pretrain_epochs: int
    vade_epochs: int
    joint_epochs: int
    batch_size: int


#: ``paper``: the code's schedule (``config.py``: 100 + 100 + 100 epochs, batch 32).
#: ``fast``: 20 + 40 + 20 epochs at batch 64, the code's learning rates: on ``scgacl-4``
#: its RMSE and Pearson against the truth equal ``paper``'s at a fourteenth of the time;
#: batch 128 (learning rates × 2 or × 4) or fewer joint epochs lost up to 0.01 in
#: Pearson (benchmarks/results/scgacl.md, "Profiles").
PROFILES = {
    "paper": Profile(100, 100, 100, 32),
    "fast": Profile(20, 40, 20, 64),
}
#: The profile a model trains with when none is given.
DEFAULT_PROFILE = "fast"


@register
class ScGACL(Method):
    """VaDE generator + adversarial, contrastive discriminator (scGACL, paper §Methods).

    Input: the pipeline's log-normalised matrix ``ln(1 + count·median/library)`` (the code's
    ``normalize_per_cell`` + ``log1p``), which is also the network's space and the output's.
    The spec's "top 5,000 HVGs when there are more genes" is the pipeline's
    ``n_top_genes`` (:attr:`default_n_top_genes`).

    Training (:mod:`scfill.methods.scgacl.plan`): (a) autoencoder pretraining of the
    encoder mean and decoder on observed non-zeros; a diagonal Gaussian mixture (K = number
    of cell groups) fitted to the latent means initialises the prior, and the log-variance
    head starts as a copy of the mean head (both as the code does); (b) VaDE on the ELBO;
    (c) joint training with the discriminator: ELBO, adversarial, cell-level NT-Xent over
    the 2N embeddings (a cell and its generated counterpart are the positive pair) and the
    supervised contrastive loss over the groups.

    Imputation: the reconstruction is the decoder at the posterior mean, ``decode(μ(x))``
    (deterministic; the code decodes a sampled z, so its output is random). The pipeline's
    combine rule ``"dropout"`` gives it to zeros whose Gamma–Normal dropout probability
    exceeds ρ = 0.5 and keeps every other entry (paper: "greater than ρ"; the code's
    ``main.py`` uses ≥, which differs only at exactly 0.5).

    Inductive: a fitted (or loaded) model reconstructs new cells with the same genes.

    Parameters
    ----------
    profile
        ``"fast"`` (20 + 40 + 20 epochs, batch 64; the default, as accurate as ``paper``
        where measured) or ``"paper"`` (the code's 100 + 100 + 100 epochs, batch 32).
    pretrain_epochs, vade_epochs, joint_epochs, batch_size
        Override the profile's values.
    pretrain_lr, vade_lr, joint_lr
        Adam learning rates of the three phases; None: the code's 1e-3, 1e-3, 1e-4 (both
        profiles).
    beta1, beta2, weight_decay
        Adam's β and weight decay in every phase (code: 0.5, 0.99, 2.5e-5).
    lambda_adv, lambda_cell, lambda_type
        Loss weights (paper: all 1).
    temperature
        τ of both contrastive losses (code: 0.9).
    adversarial, cell_contrast, type_contrast
        Train the adversarial, cell-level and type-level heads (the paper's ablations
        i–iii); all three False is ablation iv.
    discriminator
        False: no discriminator at all (ablation iv; the joint phase keeps its ELBO
        updates only).
    prior
        ``"mixture"`` (VaDE) or ``"normal"`` (the scGACL-VAE ablation: N(0, I), no mixture).
    soft_labels
        The code's noisy discriminator targets U(0.9, 1) / U(0, 0.1).
    anneal_generated
        The code's share of generated cells in the type-level loss, 0.1 → 1.
    dropout_variant, dropout_transform
        The shared Gamma–Normal model's variant and transform (``specs/dropout.md``):
        scGACL's code fits ``ln(count + 1.01)`` with its variant (α0 = 1.5, σ with n, genes
        > 95 % zero in a group not fitted), the defaults here.
    threshold
        ρ, the dropout probability above which a zero is imputed (paper: 0.5).
    hidden_dims
        Widths of the encoder and of the discriminator trunk, mirrored by the decoder
        (code ``EN_SIZE``/``DI_SIZE``/``DE_SIZE``: 500, 500, 2000); from Python only.
    latent_dim
        Dimension of z (code ``Z_SIZE``: 10).

    Attributes
    ----------
    vade_, discriminator_
        The trained networks (``discriminator_`` is None without one).
    var_names_
        Genes the model was trained on.
    history_
        Per phase, per loss, the mean of each epoch.
    info_
        Summary for ``uns["scfill"]["info"]``.
    """

    name = "scgacl"
    description = "scGACL: VaDE generator with an adversarial, contrastive discriminator."
    dropout_model = "gamma_normal"
    combine_rule = "dropout"
    preclustering = "kmeans"
    default_n_top_genes: ClassVar[int | None] = 5000

    def __init__(
        self,
        profile: str = DEFAULT_PROFILE,
        pretrain_epochs: int | None = None,
        vade_epochs: int | None = None,
        joint_epochs: int | None = None,
        batch_size: int | None = None,
        pretrain_lr: float | None = None,
        vade_lr: float | None = None,
        joint_lr: float | None = None,
        beta1: float = 0.5,
        beta2: float = 0.99,
        weight_decay: float = 2.5e-5,
        lambda_adv: float = 1.0,
        lambda_cell: float = 1.0,
        lambda_type: float = 1.0,
        temperature: float = 0.9,
        adversarial: bool = True,
        cell_contrast: bool = True,
        type_contrast: bool = True,
        discriminator: bool = True,
        prior: str = "mixture",
        soft_labels: bool = True,
        anneal_generated: bool = True,
        dropout_variant: str = "scgacl",
        dropout_transform: str = "ln_counts",
        threshold: float = 0.5,
        hidden_dims: tuple[int, int, int] = ENCODER_WIDTHS,
        latent_dim: int = LATENT_DIM,
    ) -> None:
        self.profile = profile
        self.pretrain_epochs = pretrain_epochs
        self.vade_epochs = vade_epochs
        self.joint_epochs = joint_epochs
        self.batch_size = batch_size
        self.pretrain_lr = pretrain_lr
        self.vade_lr = vade_lr
        self.joint_lr = joint_lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.weight_decay = weight_decay
        self.lambda_adv = lambda_adv
        self.lambda_cell = lambda_cell
        self.lambda_type = lambda_type
        self.temperature = temperature
        self.adversarial = adversarial
        self.cell_contrast = cell_contrast
        self.type_contrast = type_contrast
        self.discriminator = discriminator
        self.prior = prior
        self.soft_labels = soft_labels
        self.anneal_generated = anneal_generated
        self.dropout_variant = dropout_variant
        self.dropout_transform = dropout_transform
        self.threshold = threshold
        self.hidden_dims = tuple(hidden_dims) if isinstance(hidden_dims, list) else hidden_dims
        self.latent_dim = latent_dim
        self.info_ = {}

    # ------------------------------------------------------------------ parameters
    def check_params(self) -> None:
        """Raise :class:`InputError` for a parameter out of range."""
        name = self.name
        check_choice("profile", self.profile, PROFILES, method=name)
        for key in ("pretrain_epochs", "vade_epochs", "joint_epochs"):
            if getattr(self, key) is not None:
                check_number(key, getattr(self, key), integer=True, low=0, method=name)
        if self.batch_size is not None:
            check_number("batch_size", self.batch_size, integer=True, low=2, method=name)
        for key in ("pretrain_lr", "vade_lr", "joint_lr"):
            if getattr(self, key) is not None:
                check_number(key, getattr(self, key), low=0, low_open=True, method=name)
        check_number("temperature", self.temperature, low=0, low_open=True, method=name)
        for key in ("beta1", "beta2"):
            check_number(key, getattr(self, key), low=0, high=1, method=name)
            if getattr(self, key) == 1:
                raise InputError(f"{name}: parameter {key}=1 makes Adam divide by zero.",
                                 fix=f"use {key} < 1 (the code: 0.5 and 0.99).")
        for key in ("weight_decay", "lambda_adv", "lambda_cell", "lambda_type"):
            check_number(key, getattr(self, key), low=0, method=name)
        for key in ("adversarial", "cell_contrast", "type_contrast", "discriminator",
                    "soft_labels", "anneal_generated"):
            if not isinstance(getattr(self, key), bool):
                raise InputError(f"{name}: parameter {key}={getattr(self, key)!r} must be "
                                 "True or False.", fix=f"pass {key}=True or {key}=False.")
        check_choice("prior", self.prior, PRIORS, method=name)
        check_choice("dropout_variant", self.dropout_variant, DROPOUT_VARIANTS, method=name)
        check_choice("dropout_transform", self.dropout_transform, DROPOUT_TRANSFORMS,
                     method=name)
        check_number("threshold", self.threshold, low=0, high=1, method=name)
        check_number("latent_dim", self.latent_dim, integer=True, low=1, method=name)
        dims = self.hidden_dims
        if not (isinstance(dims, tuple) and len(dims) == len(ENCODER_WIDTHS) and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)):
            raise InputError(f"{name}: parameter hidden_dims={dims!r} must be three positive "
                             "integers.", fix="pass e.g. hidden_dims=(500, 500, 2000).")

    def schedule(self) -> Profile:
        """The profile with this model's overrides (explicit parameters win)."""
        base = PROFILES[self.profile]
        return Profile(*(base_value if value is None else value for base_value, value in (
            (base.pretrain_epochs, self.pretrain_epochs), (base.vade_epochs, self.vade_epochs),
            (base.joint_epochs, self.joint_epochs), (base.batch_size, self.batch_size))))

    def learning_rates(self) -> dict[str, float]:
        """Adam's learning rate per phase: an explicit one, else the code's."""
        given = {"pretrain": self.pretrain_lr, "vade": self.vade_lr, "joint": self.joint_lr}
        return {phase: CODE_LEARNING_RATES[phase] if lr is None else lr
                for phase, lr in given.items()}

    def dropout_threshold(self) -> float:
        """ρ: zeros with a dropout probability above it are imputed."""
        return self.threshold

    def dropout_options(self) -> dict[str, Any]:
        """The Gamma–Normal variant and transform this method asks the pipeline for."""
        return {"variant": self.dropout_variant, "transform": self.dropout_transform}

    @property
    def uses_discriminator(self) -> bool:
        """Whether a discriminator is built (some head trains and it is not ablated)."""
        return self.discriminator and (self.adversarial or self.cell_contrast
                                       or self.type_contrast)

    # ------------------------------------------------------------------ training
    def fit(self, data: PreparedData) -> ScGACL:
        """Train the three phases on every cell of ``data``; returns self."""
        self.check_params()
        seed_everything(data.seed)
        schedule = self.schedule()
        labels = _labels(data)
        n_groups = int(labels.max()) + 1
        device = data.device
        self.var_names_ = [str(g) for g in data.var_names]
        self.vade_ = self._vade(data.n_genes, n_groups if self.prior == "mixture" else None)
        self.discriminator_ = (Discriminator(data.n_genes, self.hidden_dims)
                               if self.uses_discriminator else None)
        rows = RowDataset({"x": data.logcounts, "label": labels}, device=device)
        seeds = [int(data.rng(s).integers(2**62)) for s in _PLAN_STREAMS]

        def loader(stream: int) -> RowLoader:
            # BatchNorm needs two rows: a last batch of one is skipped
            return RowLoader(rows, schedule.batch_size, shuffle=True, rng=data.rng(stream),
                             min_batch=2)

        betas = (self.beta1, self.beta2)
        learning_rates = self.learning_rates()
        adam = {phase: AdamSettings(lr, betas, self.weight_decay)
                for phase, lr in learning_rates.items()}
        trainer = Trainer(device=device, description=self.name)
        start = time.perf_counter()
        history = {}
        if schedule.pretrain_epochs:
            pretrain = Phase("pretrain", PretrainPlan(self.vade_, adam["pretrain"]),
                             loader(_LOADER_STREAMS[0]), schedule.pretrain_epochs)
            history |= trainer.fit([pretrain]).to_dict()
        self.vade_.copy_mean_head_to_logvar()
        gmm_summary = self._initialise_prior(rows, data) if self.prior == "mixture" else {}
        joint = JointPlan(
            self.vade_, self.discriminator_, adam["joint"], seeds[2],
            epochs=schedule.joint_epochs, adversarial=self.adversarial,
            cell_contrast=self.cell_contrast, type_contrast=self.type_contrast,
            lambda_adv=self.lambda_adv, lambda_cell=self.lambda_cell,
            lambda_type=self.lambda_type, temperature=self.temperature,
            soft_labels=self.soft_labels, anneal_generated=self.anneal_generated)
        phases = [Phase("vade", VaDEPlan(self.vade_, adam["vade"], seeds[1]),
                        loader(_LOADER_STREAMS[1]), schedule.vade_epochs),
                  Phase("joint", joint, loader(_LOADER_STREAMS[2]), schedule.joint_epochs)]
        phases = [p for p in phases if p.epochs]
        if phases:
            history |= trainer.fit(phases).to_dict()
        self.vade_.eval()
        seconds = time.perf_counter() - start
        self.history_ = history
        self.info_ = {
            "profile": self.profile,
            "schedule": asdict(schedule),
            "learning_rates": learning_rates,
            "n_groups": n_groups,
            "prior": self.prior,
            "discriminator": self.discriminator_ is not None,
            "train_seconds": round(seconds, 3),
            **gmm_summary,
        }
        return self

    def _initialise_prior(self, rows: RowDataset, data: PreparedData) -> dict[str, Any]:
        """Fit a diagonal GaussianMixture to the pretrained latent means; copy it to the prior.

        The code fits ``GaussianMixture(n_cluster, covariance_type="diag",
        reg_covar=1e-5)`` to the encoder means of every cell; we seed it and encode with
        the BatchNorm running statistics (eval mode), so it is deterministic.
        """
        from sklearn.mixture import GaussianMixture

        vade = self.vade_.eval()
        means = np.concatenate([block for _, block in predict_blocks(
            lambda batch: vade.encode(batch["x"])[0], rows)])
        gmm = GaussianMixture(n_components=vade.prior.n_components, covariance_type="diag",
                              reg_covar=GMM_REG_COVAR,
                              random_state=int(data.rng(_STREAM_GMM).integers(2**31)))
        gmm.fit(means.astype(np.float64))
        vade.prior.initialise(gmm.weights_, gmm.means_, gmm.covariances_)
        return {"gmm_converged": bool(gmm.converged_), "gmm_iterations": int(gmm.n_iter_)}

    # ------------------------------------------------------------------ prediction
    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """``decode(μ(x))`` of every cell in the common space, in row blocks (float32)."""
        vade = self.vade_.to(data.device).eval()
        rows = RowDataset({"x": data.logcounts}, device=data.device, cache_bytes=0)
        yield from predict_blocks(lambda batch: vade.reconstruct(batch["x"]), rows)

    # ------------------------------------------------------------------ saving
    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"vade.{k}": v for k, v in self.vade_.state_dict().items()}
        if self.discriminator_ is not None:
            tensors |= {f"discriminator.{k}": v
                        for k, v in self.discriminator_.state_dict().items()}
        prior = self.vade_.prior
        extra = {"n_genes": len(self.fitted_.var_names),
                 "n_components": None if prior is None else prior.n_components,
                 "history": self.history_}
        return tensors, extra

    def _vade(self, n_genes: int, n_components: int | None) -> VaDE:
        return VaDE(n_genes, n_components, self.hidden_dims, self.latent_dim)

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self.vade_ = self._vade(extra["n_genes"], extra["n_components"])
        self.vade_.load_state_dict(_prefixed(tensors, "vade."))
        self.vade_.eval()
        disc = _prefixed(tensors, "discriminator.")
        self.discriminator_ = None
        if disc:
            self.discriminator_ = Discriminator(extra["n_genes"], self.hidden_dims)
            self.discriminator_.load_state_dict(disc)
            self.discriminator_.eval()
        self.history_ = extra["history"]


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _labels(data: PreparedData) -> np.ndarray:
    """Group codes 0..K−1: the pipeline's, else k-means pre-clusters of ``data``."""
    if data.labels is not None:
        codes = np.unique(np.asarray(data.labels), return_inverse=True)[1]
        return codes.astype(np.int64)
    from scfill.cluster import precluster

    return precluster(data.logcounts, method="kmeans", seed=data.seed)
