"""MaskClass: a masked denoising autoencoder with a biozero regulariser (seeds/maskclass.md).

The model facing the pipeline. The network, masks and losses are in
:mod:`scfill.methods.maskclass.module`, the gene scaling in
:mod:`scfill.methods.maskclass.scaler`, the biozero probabilities come from the shared ZINB
model (:mod:`scfill.dropout.zinb`, ``specs/dropout.md``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from scfill.dropout import DropoutModel
from scfill.methods.base import Method, PreparedData, register
from scfill.methods.maskclass.module import MaskClassAutoencoder, mask_rate
from scfill.methods.maskclass.plan import EarlyStoppingAfter, MaskClassPlan
from scfill.methods.maskclass.scaler import GeneScaler
from scfill.methods.profiles import resolve_profile
from scfill.nn import (
    Phase,
    RowDataset,
    RowLoader,
    Trainer,
    distributed,
    predict_blocks,
    seed_everything,
)
from scfill.nn.uniform import UniformStream
from scfill.rows import column_max
from scfill.utils import check_choice, check_number

#: Biozero weight γ of each variant (paper §2.5: MaskClass_best γ = 0, _balanced γ = 1).
VARIANTS = {"balanced": 1.0, "best": 0.0}
#: The space the network works in (paper §2.2).
NETWORK_SPACE = "log2(1 + count * median_library_size / library_size)"
#: Cache the whole scaled matrix on the device when it has at most this many entries
#: (four cells × genes float32 arrays: scaled values, zero mask, p_bio, masking rate: 16
#: bytes an entry, at most 1.5 GiB; 50k cells × 2,000 genes fit).
#: Larger data is scaled one minibatch at a time from the sparse input.
CACHE_ENTRIES = 100 * 2**20
_CACHE_BYTES_PER_ENTRY = 16
#: Rows per block when scaling the cache and when reconstructing.
ROW_BLOCK = 2048
_STREAM_ORDER, _STREAM_MASK, _STREAM_VALIDATION = 11, 12, 13
#: Training schedules. ``paper``: §2.7 exactly (Adam 1e-4, batch 32, 300 epochs, no early
#: stop). ``fast``: 8 × the batch at 30 × the learning rate for 100 epochs (64 × fewer
#: steps): same network and loss. Measured on the 1,000-cell PBMC subset, seed 0
#: (masked-entry MSE / Pearson): paper 0.251 / 0.769; fast 0.240 / 0.764, 200 epochs
#: 0.265 / 0.769; early stopping on the validation masked-entry loss (patience 10,
#: min_delta 1e-3, warm-up 20) stopped at epoch 69 and kept epoch 58: 0.253 / 0.743, and
#: with patience 5 from the start (that loss rises over epochs 3–12 before it falls) it
#: stopped at epoch 7 (CellBench 10x: MSE 0.515 against 0.317). So the fast profile trains
#: a fixed count; ``patience`` turns the early stop on. On CellBench 10x, 100 epochs at
#: lr 8e-4 (linear scaling) gave 0.316, at 3e-3 0.301. At 1,000 cells 100 epochs are
#: only 400 steps, yet neither more nor gentler training helped on the guard's 5 sets
#: (3 seeds): 500 epochs improved Baron (MSE 0.452 vs 0.469) but worsened the other four
#: (CellBench 0.375 vs 0.309, PBMC 0.315 vs 0.244); a cosine decay of the learning rate
#: over the 100 epochs was worse on all 5 (Baron 0.509), lr 5e-3 no better. The accuracy
#: guard on 5 datasets:
#: ``benchmarks/results/profiles.md``.
PROFILES = {
    "paper": {"epochs": 300, "batch_size": 32, "lr": 1e-4, "patience": 0, "min_delta": 0.0,
              "warmup": 0},
    "fast": {"epochs": 100, "batch_size": 256, "lr": 3e-3, "patience": 0, "min_delta": 1e-3,
             "warmup": 20},
}
#: Cells whose fixed corruption is the early-stopping validation (a seeded sample).
VALIDATION_CELLS = 1024


@register
class MaskClass(Method):
    """Masked denoising autoencoder (MaskClass, paper §2.3–2.7).

    Training data are the log2 median-scaled counts ``X = log2(1 + count·median/library)``,
    put through a robust per-gene scaling to [−1, 1] (:class:`GeneScaler`). Each minibatch
    hides entries (non-zeros with probability ``p_nonzero``, zeros with ``p_zero·p_bio``),
    replaces hidden non-zeros by 0 and hidden zeros by scaled noise ``log2(1 + η·c_max_j)``,
    ``η ~ U(0, noise_scale)``, and learns to reconstruct the hidden entries:
    ``L = L_mask + γ·L_bio`` with ``L_mask`` the squared error over masked entries (weight
    ``zero_weight`` on zeros, ``nonzero_weight`` on non-zeros) and ``L_bio`` the
    ``p_bio``-weighted squared distance of every zero's reconstruction from the gene's scaled
    zero ``s0_j``. Training is transductive (all cells). The reconstruction is
    ``invscale(ŝ)`` of the uncorrupted input, returned in the common space (ln instead of
    log2, same median scaling: a factor ln 2).

    ``combine_rule = "zeros"``: Algorithm 1 step 13 keeps the observed non-zeros and gives
    every zero its reconstruction; biological zeros are handled inside the model by
    ``L_bio`` (γ = 1), not by a threshold. ``p_bio`` is ``1 − dropout_probability`` of the
    shared ZINB model, which includes the paper's cell-sparsity adjustment (α = 0.3).

    Genes: the pipeline drops only all-zero genes, where the paper drops genes seen in fewer
    than 3 cells; such genes have a 99.5th percentile of 0, so the scaling makes them
    constant and their reconstruction is 0 (the same outcome as leaving them out). The
    paper's top-1000-HVG selection on real data is ``impute(..., n_top_genes=1000)``.
    Adam runs fused (the same update in one kernel; its step measured 4× faster on our CPU).
    The training step is written for the CPU's memory bandwidth, with the paper's
    distributions unchanged: the mask and the noise level come from one uniform draw (see
    :func:`~scfill.methods.maskclass.module.sample_mask`), the masking rate is computed once
    with the cached matrix, and the two losses and their gradient in one pass
    (``benchmarks/results/maskclass_step.md``: 1.5 × less CPU an epoch; 6 seeds × 5 guard
    sets within seed noise of the previous step).

    Parameters
    ----------
    profile
        ``"fast"`` (default) or ``"paper"``: the training schedule (:data:`PROFILES`).
        ``epochs``, ``batch_size``, ``lr``, ``patience`` and ``min_delta`` override it.
    variant
        ``"balanced"`` (γ = 1, the paper's default) or ``"best"`` (γ = 0).
    epochs
        Training epochs, the most with early stopping (None: the profile's; paper §2.7:
        300).
    batch_size
        Cells per minibatch (None: the profile's; paper: 32).
    lr
        Adam learning rate, no weight decay (None: the profile's; paper: 1e-4).
    patience
        Stop when the validation masked-entry loss has not improved for this many epochs;
        0 trains all ``epochs`` (None: the profile's; paper: 0). MaskClass is transductive,
        so the validation is not held-out cells but a fixed corruption (masks and noise
        drawn once, from their own stream) of up to :data:`VALIDATION_CELLS` cells: the
        loss of reconstructing entries the network does not see.
    min_delta
        Smallest decrease of that loss that counts as an improvement (None: the
        profile's).
    warmup
        Epochs before early stopping starts to watch (None: the profile's).
    hidden_dim, latent_dim
        Width of the hidden layers and of the bottleneck (paper §2.3: 64 and 32).
    p_zero, p_nonzero
        Masking rates (paper §2.5: 0.01 × p_bio on zeros, 0.30 on non-zeros).
    noise_scale
        ν, the upper bound of η for the noise put into masked zeros (paper: 0.2).
    zero_weight, nonzero_weight
        Loss weights of masked zeros and non-zeros (paper: w_bio = 2, w_nz = 1).

    Attributes
    ----------
    module_
        The trained :class:`MaskClassAutoencoder`.
    scaler_
        The fitted :class:`GeneScaler`.
    var_names_
        Genes the model was trained on.
    history_
        Per-epoch means of the total, masked and biozero losses (``loss``, ``mask_loss``,
        ``bio_loss``).
    info_
        Summary for ``uns["scfill"]["info"]``.
    """

    name = "maskclass"
    description = "MaskClass: masked denoising autoencoder with a ZINB biozero regulariser."
    dropout_model = "zinb"
    combine_rule = "zeros"
    preclustering = None

    def __init__(
        self,
        profile: str = "fast",
        variant: str = "balanced",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        patience: int | None = None,
        min_delta: float | None = None,
        warmup: int | None = None,
        hidden_dim: int = 64,
        latent_dim: int = 32,
        p_zero: float = 0.01,
        p_nonzero: float = 0.30,
        noise_scale: float = 0.2,
        zero_weight: float = 2.0,
        nonzero_weight: float = 1.0,
    ) -> None:
        self.profile = profile
        self.variant = variant
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.min_delta = min_delta
        self.warmup = warmup
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.p_zero = p_zero
        self.p_nonzero = p_nonzero
        self.noise_scale = noise_scale
        self.zero_weight = zero_weight
        self.nonzero_weight = nonzero_weight
        self.info_ = {}

    def check_params(self) -> None:
        """Raise :class:`InputError` for a parameter out of range."""
        name = self.name
        check_choice("profile", self.profile, PROFILES, method=name)
        check_choice("variant", self.variant, VARIANTS, method=name)
        settings = self.settings()[0]
        for key in ("epochs", "batch_size", "hidden_dim", "latent_dim"):
            check_number(key, settings.get(key, getattr(self, key)), integer=True, low=1,
                         method=name)
        check_number("lr", settings["lr"], low=0, low_open=True, method=name)
        check_number("patience", settings["patience"], integer=True, low=0, method=name)
        check_number("warmup", settings["warmup"], integer=True, low=0, method=name)
        check_number("min_delta", settings["min_delta"], low=0, method=name)
        for key in ("p_zero", "p_nonzero"):
            check_number(key, getattr(self, key), low=0, high=1, method=name)
        check_number("noise_scale", self.noise_scale, low=0, method=name)
        for key in ("zero_weight", "nonzero_weight"):
            check_number(key, getattr(self, key), low=0, low_open=True, method=name)

    def settings(self) -> tuple[dict, dict]:
        """The schedule this model trains with (the profile's, overridden by parameters),
        and where each setting came from (``"profile"`` or ``"user"``)."""
        return resolve_profile(PROFILES, self.profile, {
            key: getattr(self, key) for key in PROFILES[self.profile]})

    @property
    def gamma(self) -> float:
        """Weight γ of the biozero regulariser."""
        return VARIANTS[self.variant]

    def fit(self, data: PreparedData) -> MaskClass:
        """Train on every cell of ``data``; returns self."""
        self.check_params()
        seed_everything(data.seed)
        device = data.device
        to_log2 = log2_factor(data)
        self.scaler_ = GeneScaler.fit(data.logcounts, scale=to_log2)
        self.var_names_ = [str(g) for g in data.var_names]
        rows = scaled_rows(data.logcounts, to_log2, _dropout(data), self.scaler_, device,
                           cache_bytes=CACHE_ENTRIES * _CACHE_BYTES_PER_ENTRY,
                           rates=(self.p_zero, self.p_nonzero))
        c_max = torch.as_tensor(column_max(data.counts), dtype=torch.float32, device=device)
        s_zero = torch.as_tensor(self.scaler_.zero_point(), device=device)
        self.module_ = MaskClassAutoencoder(data.n_genes, (self.hidden_dim, self.latent_dim))
        self.module_.to(device)
        settings, source = self.settings()
        # under torchrun each process masks its own rows with its own stream (rank 0: the
        # one-process stream)
        uniform = UniformStream(
            int(data.rng(_STREAM_MASK).integers(2**62)) + distributed.rank_and_world()[0],
            device)
        plan = MaskClassPlan(
            self.module_, scaler=self.scaler_, c_max=c_max, s_zero=s_zero,
            uniform=uniform, gamma=self.gamma, lr=settings["lr"],
            noise_scale=self.noise_scale,
            zero_weight=self.zero_weight, nonzero_weight=self.nonzero_weight)
        loader = RowLoader(rows, settings["batch_size"], shuffle=True,
                           rng=data.rng(_STREAM_ORDER))
        start = time.perf_counter()
        history = Trainer(device=device, description=self.name).fit(
            [self._phase(plan, loader, rows, data, settings)])["train"]
        seconds = time.perf_counter() - start
        self.history_ = {name: history[name] for name in
                         ("loss", "mask_loss", "bio_loss", "val_mask_loss")
                         if name in history.losses}
        self.info_ = {
            "profile": self.profile,
            "settings": settings,
            "settings_source": source,
            "stopped_early": history.stopped_early,
            "best_epoch": history.best_epoch,
            "variant": self.variant,
            "gamma": self.gamma,
            "epochs_run": history.epochs,
            "steps_per_epoch": len(loader),
            "loss_first": self.history_["loss"][0],
            "loss_last": self.history_["loss"][-1],
            "mask_loss_last": self.history_["mask_loss"][-1],
            "bio_loss_last": self.history_["bio_loss"][-1],
            "train_seconds": round(seconds, 3),
            "seconds_per_epoch": round(seconds / history.epochs, 4),
            "scaled_matrix_cached": rows.cached,
            "network_space": NETWORK_SPACE,
            "processes": distributed.rank_and_world()[1],
        }
        return self

    @staticmethod
    def _phase(plan: MaskClassPlan, loader: RowLoader, rows: RowDataset, data: PreparedData,
               settings: dict) -> Phase:
        """The training phase: fixed epochs, or early stopping on the validation draws."""
        if not settings["patience"]:
            return Phase("train", plan, loader, settings["epochs"])
        cells = np.sort(data.rng(_STREAM_VALIDATION).permutation(data.n_cells)
                        [:VALIDATION_CELLS])
        plan.validation_seed = int(data.rng(_STREAM_VALIDATION).integers(2**62))
        return Phase("train", plan, loader, settings["epochs"],
                     val_data=RowLoader(rows, ROW_BLOCK, rows=cells, shard=False),
                     early_stopping=EarlyStoppingAfter(
                         settings["warmup"], "val_mask_loss", settings["patience"],
                         min_delta=settings["min_delta"]))

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """``invscale(ŝ)`` of every cell in the common space, in row blocks (dense float32)."""
        module = self.module_.to(data.device).eval()
        to_common = float(np.log(2.0) / np.log(data.normalizer.base))
        rows = scaled_rows(data.logcounts, log2_factor(data), None, self.scaler_, data.device,
                           cache_bytes=0)
        yield from predict_blocks(
            lambda batch: self.scaler_.inverse(module(batch["s"])) * to_common, rows,
            block_rows=ROW_BLOCK)

    def _get_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        state = {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        state |= {f"scaler.{k}": v for k, v in self.scaler_.state().items()}
        return state, {"n_genes": len(self.fitted_.var_names), "history": self.history_}

    def _set_state(self, tensors: dict[str, torch.Tensor], extra: dict) -> None:
        """Rebuild the network and the scaler from saved weights."""
        self.module_ = MaskClassAutoencoder(extra["n_genes"], (self.hidden_dim, self.latent_dim))
        self.module_.load_state_dict({k.removeprefix("module."): v for k, v in tensors.items()
                                      if k.startswith("module.")})
        self.module_.eval()
        self.scaler_ = GeneScaler.from_state({k.removeprefix("scaler."): v
                                              for k, v in tensors.items()
                                              if k.startswith("scaler.")})
        self.history_ = extra["history"]


def log2_factor(data: PreparedData) -> float:
    """The paper's ``X = log2(1 + count·median/library)`` is the common space times this.

    The common space is ``log_base`` of the same median-scaled counts, so the factor is
    ``ln(base)/ln 2``; batches are scaled by it as they are densified (no log2 copy of the
    matrix).
    """
    return float(np.float32(np.log(data.normalizer.base) / np.log(2.0)))


def _dropout(data: PreparedData) -> DropoutModel:
    """The ZINB dropout model (``1 − p_bio`` at zeros), fitted here if not given."""
    if data.dropout is not None:
        return data.dropout
    from scfill.dropout import estimate

    return estimate("zinb", data.counts, data.library_size)


def scaled_rows(logcounts: sp.csr_matrix, to_log2: float, dropout: DropoutModel | None,
                scaler: GeneScaler, device: torch.device, *, cache_bytes: int,
                rates: tuple[float, float] | None = None) -> RowDataset:
    """Rows of ``s`` (scaled), ``is_zero`` and, with ``dropout``, ``p_bio`` and the masking
    rate ``rate`` as a dataset.

    Parameters
    ----------
    logcounts, to_log2
        Common-space expression (CSR) and the factor to the network's log2 space
        (:func:`log2_factor`).
    dropout
        The dropout model (``1 − p_bio`` at zeros; rows computed per batch), or None when
        p_bio is not needed (reconstruction).
    cache_bytes
        Keep every row's tensors on the device when they fit (see :class:`RowDataset`).
    rates
        ``(p_zero, p_nonzero)`` of :func:`~scfill.methods.maskclass.module.mask_rate`,
        with ``dropout``.
    """
    fields = {"x": logcounts} if dropout is None else {"x": logcounts, "dropout": dropout}
    return RowDataset(fields, transform=partial(_scale_batch, scaler=scaler, to_log2=to_log2,
                                                rates=rates),
                      device=device, cache_bytes=cache_bytes)


def _scale_batch(batch: dict[str, torch.Tensor], *, scaler: GeneScaler, to_log2: float,
                 rates: tuple[float, float] | None) -> dict[str, torch.Tensor]:
    x = batch["x"].mul_(to_log2)
    is_zero = (x == 0).to(x.dtype)
    out = {"s": scaler.transform_(x), "is_zero": is_zero}
    if "dropout" in batch:
        p_bio = is_zero * (1 - batch["dropout"])
        p_zero, p_nonzero = rates
        out |= {"p_bio": p_bio,
                "rate": mask_rate(is_zero, p_bio, p_zero=p_zero, p_nonzero=p_nonzero)}
    return out
