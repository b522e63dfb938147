"""MaskClass's training plan: one masked-denoising step (paper §2.5, Algorithm 1).

Each step hides entries of the batch and draws their noise (:func:`sample_mask`),
corrupts them (:func:`corrupt`, :func:`zero_noise`), reconstructs and returns
``L = L_mask + γ·L_bio`` with its two parts; the Trainer does the rest.
"""

from __future__ import annotations

from typing import Any

import torch

from scfill.methods.maskclass.module import (
    MaskClassAutoencoder,
    corrupt,
    mask_weight,
    masked_losses,
    sample_mask,
    zero_noise,
)
from scfill.methods.maskclass.scaler import GeneScaler
from scfill.nn import EarlyStopping, StepContext, TrainingPlan
from scfill.nn.plan import Batch, Losses
from scfill.nn.uniform import UniformStream


class MaskClassPlan(TrainingPlan):
    """Adam (no weight decay, fused) on the masked and biozero losses.

    Parameters
    ----------
    module
        The autoencoder.
    scaler
        The fitted gene scaling (noise for masked zeros is scaled with it).
    c_max
        Each gene's largest count (the noise scale, paper §2.5).
    s_zero
        Each gene's scaled zero ``s0_j`` (the target of ``L_bio``).
    uniform
        Draws the masks and the noise; its state is the plan's checkpointed extra state.
    gamma, lr, noise_scale, zero_weight, nonzero_weight
        As in :class:`~scfill.methods.maskclass.MaskClass`; the masking rates come with the
        batches (their ``rate`` field, :func:`~scfill.methods.maskclass.module.mask_rate`).

    Attributes
    ----------
    validation_seed
        Seed of the validation corruption: every validation pass redraws the same masks and
        noise from it (set by the model when it stops early).
    """

    validation_seed: int = 0

    def __init__(self, module: MaskClassAutoencoder, *, scaler: GeneScaler,
                 c_max: torch.Tensor, s_zero: torch.Tensor, uniform: UniformStream,
                 gamma: float, lr: float, noise_scale: float, zero_weight: float,
                 nonzero_weight: float) -> None:
        super().__init__(module)
        self.scaler = scaler
        self.c_max, self.s_zero, self.uniform = c_max, s_zero, uniform
        self.gamma, self.lr = gamma, lr
        self.noise_scale = noise_scale
        self.zero_weight, self.nonzero_weight = zero_weight, nonzero_weight

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam, no weight decay (paper §2.7)."""
        return {"adam": torch.optim.Adam(self.module.parameters(), lr=self.lr,
                                         weight_decay=0.0, fused=True)}

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """``loss = mask_loss + γ·bio_loss`` on one batch of ``s``, ``is_zero``, ``p_bio``."""
        loss_mask, loss_bio = self._losses(batch, self.uniform)
        return {"loss": loss_mask + self.gamma * loss_bio, "mask_loss": loss_mask,
                "bio_loss": loss_bio}

    def on_epoch_start(self, ctx: StepContext) -> None:
        """Rewind the validation corruption, so every epoch is scored on the same draws."""
        self._validation_uniform = UniformStream(self.validation_seed, self.c_max.device)

    def validation_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """The masked-entry loss of the validation cells' fixed corruption."""
        loss_mask, _ = self._losses(batch, self._validation_uniform)
        return {"val_mask_loss": loss_mask}

    def _losses(self, batch: Batch, uniform: UniformStream
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``L_mask`` and ``L_bio`` of one batch corrupted with draws from ``uniform``
        (the batch's ``rate`` is the masking probability, see :func:`mask_rate`)."""
        s, is_zero, p_bio = batch["s"], batch["is_zero"], batch["p_bio"]
        rate = batch["rate"]
        mask, eta = sample_mask(rate, uniform.draw(rate.shape).to(rate.device))
        noise = self.scaler.transform_(zero_noise(self.c_max, eta, scale=self.noise_scale))
        s_hat = self.module(corrupt(s, is_zero, mask, noise))
        weight = mask_weight(mask, is_zero, zero_weight=self.zero_weight,
                             nonzero_weight=self.nonzero_weight)
        return masked_losses(s_hat, s, weight, self.s_zero, p_bio)

    def extra_state(self) -> dict[str, Any]:
        """The mask stream's state."""
        return {"uniform": self.uniform.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the mask stream."""
        self.uniform.set_state(state["uniform"])


class EarlyStoppingAfter(EarlyStopping):
    """:class:`~scfill.nn.EarlyStopping` that starts watching after ``warmup`` epochs.

    MaskClass's masked-entry loss rises for a few epochs before it falls (measured at a
    large learning rate), so the first epochs neither count as the best nor use patience.
    """

    def __init__(self, warmup: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warmup = warmup

    def step(self, metrics: dict[str, float], epoch: int, module: torch.nn.Module) -> bool:
        """As :meth:`EarlyStopping.step`, from epoch ``warmup`` on."""
        if epoch < self.warmup:
            return False
        return super().step(metrics, epoch, module)
