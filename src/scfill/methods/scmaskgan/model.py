"""scMASKGAN: a masked conditional GAN on gene images, imputing from generated candidates
(seeds/scmaskgan.md, Wu et al. 2025).

The model facing the pipeline. The image layout, masks and scaling are in :mod:`.layout`,
the networks and losses in :mod:`.module`, the training plan in :mod:`.plan`, the
candidate screening and kNN fill in :mod:`.impute`, the choice of k in :mod:`.tuning`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from scfill._logging import logger
from scfill.methods.base import Method, PreparedData, register
from scfill.methods.scmaskgan.impute import OUTLIER_THRESHOLD, CandidateFill, remove_outliers
from scfill.methods.scmaskgan.layout import GeneImage, UnitScaler
from scfill.methods.scmaskgan.module import CHANNELS, Discriminator, Generator
from scfill.methods.scmaskgan.plan import ScMaskGanPlan
from scfill.methods.scmaskgan.tuning import (
    MAX_K,
    N_TRIALS,
    Holdout,
    KObjective,
    choose_holdout,
    ranked_means,
    tune_k,
)
from scfill.nn import (
    EarlyStopping,
    Phase,
    RowDataset,
    RowLoader,
    Trainer,
    dense_rows,
    seed_everything,
)
from scfill.utils import check_choice, check_number, missing_package

#: Training schedules; both stop early on the reconstruction loss's plateau (Algorithm 3
#: step 23), so ``epochs`` is a cap. ``paper``: the paper gives Adam, "lr 0.001 or 0.0001"
#: and 32 channels but no epochs or batch size; those are the authors' script's (500 epochs,
#: batch 32, lr 2e-4, β = (0.5, 0.999)). ``fast``: batch 64, lr 1e-3, 16 channels (a step
#: costs a fifth of the paper's: ``benchmarks/results/scmaskgan_profile.csv``), at most 150
#: epochs. Measured against ``paper`` on the same masks
#: (``benchmarks/results/scmaskgan.md``): ERCC, 2 seeds, Pearson at hidden non-zeros
#: paper − fast = −0.001 (both stop at the plateau within 35–70 epochs); Drop-seq, seed 0,
#: paper 0.744 (210 epochs) vs 0.706 with the earlier 40-epoch cap and 0.747 with 140
#: epochs: the 40-epoch cap stopped the small sets (4 steps an epoch) before the plateau.
#: ``paper`` stays the default: ``fast`` at 150 epochs was compared with it on those two sets
#: only.
PROFILES = {
    "paper": {"epochs": 500, "batch_size": 32, "lr": 2e-4, "channels": CHANNELS},
    "fast": {"epochs": 150, "batch_size": 64, "lr": 1e-3, "channels": 16},
}
#: Adam's β (the authors' script; the DCGAN setting).
BETAS = (0.5, 0.999)
#: k when Optuna does not choose it: the authors' script's k = 9.
FIXED_K = 9
#: Candidates generated per label (paper: "e.g. 200"; the authors' script: 200).
N_CANDIDATES = 200
#: λ, the weight of the masked reconstruction loss (not given by the paper; pix2pix's
#: λ = 100 for its conditional-GAN reconstruction term; 10 and 1 measured lower, see the
#: ``reconstruction_weight`` parameter).
RECONSTRUCTION_WEIGHT = 100.0
#: θ = μ + k_σ·σ (the paper: "a certain multiple of the standard deviation").
K_SIGMA = 1.0
#: Early stop when the reconstruction loss has not improved by this much in this many
#: epochs (Algorithm 3 step 23: "loss plateau").
PATIENCE, MIN_DELTA = 10, 1e-4
#: Epochs between training checkpoints when ``checkpoint_dir`` is given.
CHECKPOINT_EVERY = 10
#: Rows per block when filling.
ROW_BLOCK = 1024
_STREAM_HOLDOUT, _STREAM_ORDER = 21, 22


@register
class ScMaskGan(Method):
    """scMASKGAN (Wu et al. 2025): masked conditional GAN, Isolation Forest, tuned kNN fill.

    Each cell's log expression (the common space: ln of median-scaled counts) is scaled per
    gene to [0, 1] and laid out row-wise on an N × N image, N = ceil(sqrt(genes)), with an
    observation mask (1 observed, 0 zero or padding). A conditional generator (Algorithm 1)
    and a patch discriminator (Algorithm 2), both with self-attention at N/4, are trained
    adversarially (BCE) with λ × the masked reconstruction error (Algorithm 3,
    :mod:`.plan`); only observed pixels enter any loss. Then, per label, ``n_candidates``
    generated cells are screened by an Isolation Forest, and each zero takes the mean of
    its cell's k nearest eligible candidates (:mod:`.impute`, eq. 6). Optuna chooses k by
    the MSE at held-out observed non-zeros hidden from training and from the distances
    (:mod:`.tuning`).

    Labels are the user's (``labels_key``) or k-means pre-clusters; an evaluation never
    passes true labels. ``combine_rule = "zeros"``: eq. 6 fills every zero and keeps the
    non-zeros. The method is **transductive**: the candidates and the threshold belong to
    the cells it was fitted on, so :meth:`reconstruct` accepts only those cells (a new
    dataset is imputed by fitting on it); a saved model (:meth:`save`: the screened
    candidates, the scaler, the labels and k) reloads to impute those same cells again.

    Size (:mod:`.module`): at 20,000 genes, 6.2 M generator and 0.03 M discriminator
    parameters; no dense layer reaches the full resolution and attention runs at N/4.

    Parameters
    ----------
    profile
        ``"paper"`` (default: at most 500 epochs, batch 32, lr 2e-4, 32 channels) or
        ``"fast"`` (at most 150 epochs, batch 64, lr 1e-3, 16 channels: a fifth of the
        paper's cost per step); both stop early when the reconstruction loss plateaus.
        ``epochs``, ``batch_size``, ``lr`` and ``channels`` override it. See
        :data:`PROFILES` for how far ``fast`` is from ``paper``.
    epochs, batch_size, lr
        Training schedule (None: the profile's).
    latent_dim
        Size of z (None: N, the paper's "latent_dim equal to img_size").
    channels
        Channels of the first convolutional block (None: the profile's; paper: 32).
    reconstruction_weight
        λ (default 100; the paper gives no value, pix2pix uses 100). Measured on the same
        masks with ``profile="fast"`` (``benchmarks/results/scmaskgan_sweep_lambda.csv``):
        λ = 10 changes the Pearson at hidden non-zeros by −0.020 ± 0.007 (ERCC, 2 seeds) and
        −0.002 ± 0.002 (Drop-seq, 2 seeds), λ = 1 (without the early stop, which watches
        the reconstruction) by −0.029 ± 0.022 and −0.134 ± 0.012: the adversarial term
        alone does not keep the candidates near the real cells, so λ = 100 stays.
    n_candidates
        Generated cells per label (paper: 200).
    outlier_threshold
        τ of the Isolation Forest on s(x) (0.5).
    k
        Neighbours when not tuned (default 9, the authors' script).
    tune_k
        Choose k with Optuna: None (default) when it is installed, True (an error with the
        install hint when it is not), False never.
    k_sigma
        θ = μ + k_σ·σ (default 1).
    patience
        Epochs without improvement of the reconstruction loss before stopping.
    checkpoint_dir, checkpoint_every
        Training checkpoints (the engine's ``last.pt``) every ``checkpoint_every`` epochs and
        at the end, in ``checkpoint_dir`` (None: none).
    resume_from
        A training checkpoint of the same run to continue from.

    Attributes
    ----------
    generator_, discriminator_
        The trained networks.
    scaler_
        The [0, 1] scaling.
    candidates_
        Screened candidates per label code (scaled genes).
    k_
        The k used.
    history_
        Per-epoch means of ``loss_d``, ``loss_g``, ``adversarial``, ``reconstruction``.
    """

    name = "scmaskgan"
    description = ("scMASKGAN: masked conditional GAN with attention; Isolation Forest and "
                   "tuned kNN fill from generated cells.")
    dropout_model = None
    combine_rule = "zeros"
    preclustering = "kmeans"
    transductive = True

    def __init__(
        self,
        profile: str = "paper",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        latent_dim: int | None = None,
        channels: int | None = None,
        reconstruction_weight: float = RECONSTRUCTION_WEIGHT,
        n_candidates: int = N_CANDIDATES,
        outlier_threshold: float = OUTLIER_THRESHOLD,
        k: int = FIXED_K,
        tune_k: bool | None = None,
        k_sigma: float = K_SIGMA,
        patience: int = PATIENCE,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        resume_from: str | None = None,
    ) -> None:
        self.profile = profile
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.latent_dim = latent_dim
        self.channels = channels
        self.reconstruction_weight = reconstruction_weight
        self.n_candidates = n_candidates
        self.outlier_threshold = outlier_threshold
        self.k = k
        self.tune_k = tune_k
        self.k_sigma = k_sigma
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume_from = resume_from
        self.info_ = {}

    def check_params(self) -> None:
        """Raise :class:`InputError` for a parameter out of range."""
        name = self.name
        check_choice("profile", self.profile, PROFILES, method=name)
        for key in ("epochs", "batch_size", "latent_dim", "channels"):
            if getattr(self, key) is not None:
                check_number(key, getattr(self, key), integer=True, low=1, method=name)
        if self.lr is not None:
            check_number("lr", self.lr, low=0, low_open=True, method=name)
        for key in ("n_candidates", "k", "patience", "checkpoint_every"):
            check_number(key, getattr(self, key), integer=True, low=1, method=name)
        check_number("reconstruction_weight", self.reconstruction_weight, low=0, method=name)
        check_number("outlier_threshold", self.outlier_threshold, low=0, high=1,
                     low_open=True, method=name)
        check_number("k_sigma", self.k_sigma, low=0, method=name)
        check_choice("tune_k", self.tune_k, (None, True, False), method=name)
        if self.tune_k is True:
            from scfill.utils import import_optional

            import_optional("optuna", "optuna>=3.5", needed_by="scmaskgan's tune_k=True",
                            extra="pip install 'scfill[tune]'")

    def schedule(self) -> dict[str, float]:
        """Epochs, batch size, learning rate and channels: the profile's, overridden by
        parameters."""
        chosen = dict(PROFILES[self.profile])
        for key in ("epochs", "batch_size", "lr", "channels"):
            if getattr(self, key) is not None:
                chosen[key] = getattr(self, key)
        return chosen

    # ------------------------------------------------------------------------ fit
    def fit(self, data: PreparedData) -> ScMaskGan:
        """Train the GAN, generate and screen candidates, choose k; returns self."""
        self.check_params()
        seed_everything(data.seed)
        start = time.perf_counter()
        labels = _labels(data)
        n_classes = int(labels.max()) + 1
        tuning = self._tuning_mode()
        holdout = choose_holdout(data.logcounts, data.rng(_STREAM_HOLDOUT)) if tuning \
            else None
        visible = data.logcounts if holdout is None else holdout.hide(data.logcounts)
        self.scaler_ = UnitScaler.fit(visible)
        scaled = _scale_csr(visible, self.scaler_)
        layout = GeneImage(data.n_genes)
        latent = self.latent_dim or layout.side
        schedule = self.schedule()
        channels = int(schedule["channels"])
        self.generator_ = Generator(layout.side, n_classes, latent, channels)
        self.discriminator_ = Discriminator(layout.side, n_classes, channels)
        plan = ScMaskGanPlan(self.generator_, self.discriminator_, layout,
                             n_classes=n_classes, latent_dim=latent, lr=schedule["lr"],
                             betas=BETAS, reconstruction_weight=self.reconstruction_weight,
                             seed=int(data.rng(_STREAM_ORDER).integers(2**62)))
        history = self._train(plan, scaled, labels, data, schedule)
        train_seconds = time.perf_counter() - start

        self.candidates_, kept = self._candidates(plan, n_classes, data)
        self.k_, k_source, tried = self.k, "fixed", {}
        if tuning:
            self.k_, tried = self._tune(holdout, scaled, labels, data)
            k_source = "optuna"
        self.labels_ = labels
        self.info_ = {
            "profile": self.profile, **schedule,
            "reconstruction_weight": self.reconstruction_weight, "betas": list(BETAS),
            "patience": self.patience, "min_delta": MIN_DELTA,
            "n_candidates": self.n_candidates, "outlier_threshold": self.outlier_threshold,
            "k_sigma": self.k_sigma,
            "epochs_run": history.epochs, "stopped_early": history.stopped_early,
            "best_epoch": history.best_epoch,
            "image_side": layout.side, "latent_dim": latent, "n_classes": n_classes,
            "generator_parameters": _n_parameters(self.generator_),
            "discriminator_parameters": _n_parameters(self.discriminator_),
            "candidates_kept": kept, "k": self.k_, "k_source": k_source,
            "k_objective": {str(k): v for k, v in sorted(tried.items())},
            "holdout_entries": 0 if holdout is None else len(holdout.rows),
            "reconstruction_last": self.history_["reconstruction"][-1],
            "reconstruction_history": [round(v, 6) for v in self.history_["reconstruction"]],
            "train_seconds": round(train_seconds, 3),
            "fit_seconds": round(time.perf_counter() - start, 3),
        }
        return self

    def _tuning_mode(self) -> bool:
        if self.tune_k is not None:
            return self.tune_k
        hint = missing_package("optuna", "optuna>=3.5", extra="pip install 'scfill[tune]'")
        if hint is not None:
            logger.info("scmaskgan: k = %d (fixed); Optuna would choose it: %s", self.k, hint)
        return hint is None

    def _train(self, plan: ScMaskGanPlan, scaled: sp.csr_matrix, labels: np.ndarray,
               data: PreparedData, schedule: dict):
        rows = RowDataset({"x": scaled, "label": labels}, device=data.device)
        loader = RowLoader(rows, int(schedule["batch_size"]), shuffle=True,
                           rng=data.rng(_STREAM_ORDER), min_batch=2)  # BN needs 2 cells
        every = self.checkpoint_every if self.checkpoint_dir is not None else None
        trainer = Trainer(device=data.device, description=self.name,
                          checkpoint_dir=self.checkpoint_dir, checkpoint_every=every,
                          resume_from=self.resume_from)
        stop = EarlyStopping("reconstruction", self.patience, min_delta=MIN_DELTA)
        history = trainer.fit([Phase("train", plan, loader, int(schedule["epochs"]),
                                     early_stopping=stop)])["train"]
        self.history_ = dict(history.losses)
        return history

    def _candidates(self, plan: ScMaskGanPlan, n_classes: int, data: PreparedData
                    ) -> tuple[dict[int, torch.Tensor], dict[str, int]]:
        candidates, kept = {}, {}
        for code in range(n_classes):
            generated = plan.generate(code, self.n_candidates, device=data.device)
            keep = remove_outliers(generated.cpu().numpy(), threshold=self.outlier_threshold,
                                   seed=data.seed)
            candidates[code] = generated[torch.as_tensor(keep, device=data.device)]
            kept[str(code)] = int(keep.sum())
        return candidates, kept

    def _tune(self, holdout: Holdout, scaled: sp.csr_matrix, labels: np.ndarray,
              data: PreparedData) -> tuple[int, dict[int, float]]:
        """Optuna's k on the held-out entries (absent from ``scaled``)."""
        cells, rows = np.unique(holdout.rows, return_inverse=True)
        values = dense_rows(scaled, cells, data.device)
        mask = (values != 0).to(values.dtype)
        fill = CandidateFill(self.candidates_, k=self.k, k_sigma=self.k_sigma)
        ranked = ranked_means(fill, values, mask, labels[cells], rows, holdout.cols)
        truth = holdout.values / self.scaler_.maxima[holdout.cols]
        max_k = min(MAX_K, max(len(c) for c in self.candidates_.values()))
        return tune_k(KObjective(ranked, truth), max_k=max_k, n_trials=N_TRIALS,
                      seed=data.seed)

    # ---------------------------------------------------------------- reconstruct
    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """The neighbours' mean of every gene of every cell (common space, float32), yielded
        as ``(rows, block)`` in row order, ``ROW_BLOCK`` cells at a time.

        Two passes over the cells: the distance moments that set θ, then the fill.
        """
        fill = CandidateFill(self.candidates_, k=self.k_, k_sigma=self.k_sigma)
        scaled = _scale_csr(data.logcounts, self.scaler_)
        blocks = [slice(a, min(a + ROW_BLOCK, data.n_cells))
                  for a in range(0, data.n_cells, ROW_BLOCK)]
        for rows in blocks:
            values = dense_rows(scaled, np.arange(rows.start, rows.stop), data.device)
            fill.add_moments(values, (values != 0).to(values.dtype), self.labels_[rows])
        for rows in blocks:
            values = dense_rows(scaled, np.arange(rows.start, rows.stop), data.device)
            block = fill.fill(values, (values != 0).to(values.dtype), self.labels_[rows])
            yield rows, self.scaler_.inverse(block).cpu().numpy()

    # ---------------------------------------------------------------- saving hooks
    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the fill needs: the screened candidates per label, the scaler, the cells'
        labels and k (the networks are not needed once the candidates exist)."""
        tensors = {f"candidates.{code}": c.cpu() for code, c in self.candidates_.items()}
        tensors |= {f"scaler.{k}": v for k, v in self.scaler_.state().items()}
        tensors["labels"] = torch.as_tensor(self.labels_)
        return tensors, {"k": int(self.k_), "history": self.history_}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        self.candidates_ = {int(k.removeprefix("candidates.")): v for k, v in tensors.items()
                            if k.startswith("candidates.")}
        self.scaler_ = UnitScaler.from_state({k.removeprefix("scaler."): v
                                              for k, v in tensors.items()
                                              if k.startswith("scaler.")})
        self.labels_ = tensors["labels"].numpy()
        self.k_, self.history_ = int(extra["k"]), extra["history"]


def _labels(data: PreparedData) -> np.ndarray:
    """The cells' label codes: the pipeline's, else k-means pre-clusters."""
    if data.labels is not None:
        return np.asarray(data.labels, dtype=np.int64)
    from scfill.cluster import precluster

    return np.asarray(precluster(data.logcounts, method="kmeans", seed=data.seed),
                      dtype=np.int64)


def _scale_csr(values: sp.csr_matrix, scaler: UnitScaler) -> sp.csr_matrix:
    """``values / max_j`` column-wise, still sparse."""
    scaled = sp.csr_matrix(values, dtype=np.float32, copy=True)
    scaled.data /= scaler.maxima[scaled.indices]
    return scaled


def _n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
