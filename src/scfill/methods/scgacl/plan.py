"""scGACL's three training phases as plans for :class:`scfill.nn.Trainer`.

(a) :class:`PretrainPlan`: the VaDE's encoder mean and decoder as a plain autoencoder,
    squared error at observed non-zeros (code ``pretrain_VAE``).
(b) :class:`VaDEPlan`: the ELBO, reconstruction + KL to the mixture prior (code
    ``train_VAE``; paper eq. 10, stage 1).
(c) :class:`JointPlan`: the generator and the multi-task discriminator together (code
    ``train_model``; paper eq. 11–12). Per minibatch, as the code does, four updates, each
    with a fresh forward pass and a fresh draw of z:

    1. ELBO → VaDE;
    2. λ_adv · L_G → VaDE;
    3. λ_adv · L_Dis → discriminator;
    4. λ_cell · L_cell + λ_type · L_type → VaDE and discriminator together.

    This is the paper's pair of objectives (generator: −ELBO + λ_adv L_G + λ_cell L_cell +
    λ_type L_type; discriminator: λ_adv L_Dis + λ_cell L_cell + λ_type L_type) taken as
    successive steps. The type-level loss sees the batch's observed cells and a random
    share ``p_gen`` of its generated ones, annealed from 0.1 to 1 (code: +0.9/(E/10) after
    every 10th epoch, counting from epoch 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from typing import Any

import torch
from torch import nn

from scfill.methods.scgacl.losses import (
    discriminator_loss,
    generator_loss,
    mixture_kl,
    nonzero_mse,
    normal_kl,
    nt_xent,
    supervised_contrastive,
)
from scfill.methods.scgacl.module import Discriminator, VaDE
from scfill.nn import StepContext, TrainingPlan
from scfill.nn.plan import Batch, Losses

#: First share of generated cells in the type-level loss, and its last (code ``p_gen``).
P_GEN_START, P_GEN_END = 0.1, 1.0
#: Epochs between increases of ``p_gen`` (code: ``if i % 10 == 0``).
P_GEN_EVERY = 10


@dataclass(frozen=True)
class AdamSettings:
    """Adam as the code configures it: β = (0.5, 0.99), weight decay 2.5e-5 (``config.py``).

    The optimiser runs fused (the same update in one kernel per step): with the
    single-tensor loop Adam was a third of a CPU training step at batch 32
    (benchmarks/results/scgacl.md, "Profile").
    """

    lr: float
    betas: tuple[float, float] = (0.5, 0.99)
    weight_decay: float = 2.5e-5

    def make(self, params) -> torch.optim.Adam:
        """An Adam optimiser over ``params``."""
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas,
                                weight_decay=self.weight_decay, fused=True)


def generated_share(epoch: int, epochs: int) -> float:
    """``p_gen`` in ``epoch`` (0-based) of ``epochs``: 0.1, then +0.9/(epochs/10) after
    epochs 0, 10, 20, … (the code's update at the end of every epoch ``i % 10 == 0``),
    capped at 1. For 100 epochs: 0.1, 0.19 in epochs 1–10, …, 1.0 from epoch 91."""
    steps = math.ceil(epoch / P_GEN_EVERY)
    increment = (P_GEN_END - P_GEN_START) / max(epochs / P_GEN_EVERY, 1e-12)
    return min(P_GEN_END, P_GEN_START + steps * increment)


def elbo_loss(vade: VaDE, x: torch.Tensor, generator: torch.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(−ELBO, reconstruction, KL)`` of a batch (code: ``MSEloss + GMMLoss``).

    With a mixture prior the KL is VaDE's (:func:`mixture_kl`), else the plain VAE's.
    """
    x_hat, z, mu, logvar = vade(x, generator=generator)
    recon = nonzero_mse(x, x_hat)
    kl = normal_kl(mu, logvar) if vade.prior is None else mixture_kl(mu, logvar, z, vade.prior)
    return recon + kl, recon, kl


class _SeededPlan(TrainingPlan):
    """A plan that draws from its own seeded generator (kept in checkpoints)."""

    def __init__(self, module: nn.Module, adam: AdamSettings, seed: int):
        super().__init__(module)
        self.adam = adam
        self._seed = seed
        self.generator: torch.Generator | None = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            self.generator = torch.Generator(device=device).manual_seed(self._seed)
        return self.generator

    def extra_state(self) -> dict[str, Any]:
        """The generator's state (z draws, soft labels, generated-cell choice)."""
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""
        if "generator" in state:
            self._generator(torch.device("cpu")).set_state(state["generator"])


class PretrainPlan(_SeededPlan):
    """Phase (a): autoencoder ``decode(μ(x))``, loss :func:`nonzero_mse`, one Adam."""

    def __init__(self, vade: VaDE, adam: AdamSettings, seed: int = 0):
        super().__init__(vade, adam, seed)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam over the encoder and decoder (the prior is not trained yet)."""
        vade = self.module
        return {"vade": self.adam.make(chain(vade.encoder.parameters(), vade.mu.parameters(),
                                             vade.logvar.parameters(),
                                             vade.decoder.parameters()))}

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """Reconstruction error of the deterministic autoencoder."""
        x = batch["x"]
        return {"loss": nonzero_mse(x, self.module.reconstruct(x))}


class VaDEPlan(_SeededPlan):
    """Phase (b): the ELBO over encoder, decoder and prior, one Adam.

    The code keeps three Adam optimisers (encoder, decoder, prior) stepped on the same
    loss; Adam is per parameter, so one optimiser over all three is the same update.
    """

    def __init__(self, vade: VaDE, adam: AdamSettings, seed: int):
        super().__init__(vade, adam, seed)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam over every VaDE parameter."""
        return {"vade": self.adam.make(self.module.parameters())}

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """``−ELBO`` with its two parts logged."""
        x = batch["x"]
        loss, recon, kl = elbo_loss(self.module, x, self._generator(x.device))
        return {"loss": loss, "reconstruction": recon.detach(), "kl": kl.detach()}


class JointPlan(_SeededPlan):
    """Phase (c): VaDE and the multi-task discriminator, four updates per minibatch.

    Update 4 changes both networks with one loss. The engine steps one optimiser per
    ``ctx.optimize``, so the discriminator's copy of the loss is computed on the generated
    cells detached: its gradient for the discriminator is the same, and the generator's
    update comes first from the full graph (the same values as the code's single
    backward; only the discriminator's BatchNorm running statistics see the batch twice).
    The VaDE optimiser steps up to three times per minibatch, as in the code.

    Parameters
    ----------
    vade, discriminator
        The generator and the discriminator (None: the "no discriminator" ablation, which
        leaves the ELBO update only).
    adam
        Settings of both optimisers (code: lr 1e-4).
    seed
        Seeds z draws, soft labels and the choice of generated cells.
    epochs
        Length of the phase (for the ``p_gen`` schedule).
    adversarial, cell_contrast, type_contrast
        Which heads train (the paper's ablations).
    lambda_adv, lambda_cell, lambda_type
        Loss weights (paper, code: all 1).
    temperature
        τ of both contrastive losses (code: 0.9).
    soft_labels
        The code's noisy targets U(0.9, 1) / U(0, 0.1) instead of 1 / 0.
    anneal_generated
        The code's ``p_gen`` schedule; False uses every generated cell from the start (the
        paper's description: all 2N embeddings).
    """

    automatic_optimization = False

    def __init__(self, vade: VaDE, discriminator: Discriminator | None, adam: AdamSettings,
                 seed: int, *, epochs: int, adversarial: bool, cell_contrast: bool,
                 type_contrast: bool, lambda_adv: float, lambda_cell: float,
                 lambda_type: float, temperature: float, soft_labels: bool,
                 anneal_generated: bool):
        modules = {"vade": vade} | ({} if discriminator is None
                                    else {"discriminator": discriminator})
        super().__init__(nn.ModuleDict(modules), adam, seed)
        self.vade, self.discriminator = vade, discriminator
        self.epochs = epochs
        self.adversarial = adversarial and discriminator is not None
        self.cell_contrast = cell_contrast and discriminator is not None
        self.type_contrast = type_contrast and discriminator is not None
        self.lambda_adv, self.lambda_cell, self.lambda_type = lambda_adv, lambda_cell, lambda_type
        self.temperature = temperature
        self.soft_labels = soft_labels
        self.anneal_generated = anneal_generated
        self.p_gen = P_GEN_START if anneal_generated else P_GEN_END

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam for the VaDE, one for the discriminator (code: four, the same update)."""
        optimizers = {"vade": self.adam.make(self.vade.parameters())}
        if self.discriminator is not None:
            optimizers["discriminator"] = self.adam.make(self.discriminator.parameters())
        return optimizers

    def on_epoch_start(self, ctx: StepContext) -> None:
        """Set this epoch's share of generated cells in the type-level loss."""
        self.p_gen = (generated_share(ctx.epoch, self.epochs) if self.anneal_generated
                      else P_GEN_END)

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """The four updates; returns the losses of the batch (detached)."""
        x = batch["x"]
        gen = self._generator(x.device)
        elbo, recon, kl = elbo_loss(self.vade, x, gen)
        ctx.optimize("vade", elbo)
        losses = {"loss": elbo.detach(), "reconstruction": recon.detach(), "kl": kl.detach()}
        if self.adversarial:
            fake_logit, _, _ = self.discriminator(self.vade(x, generator=gen)[0])
            g_loss = self.lambda_adv * generator_loss(fake_logit, soft=self.soft_labels,
                                                      generator=gen)
            ctx.optimize("vade", g_loss)
            real_logit, _, _ = self.discriminator(x)
            with torch.no_grad():
                x_fake = self.vade(x, generator=gen)[0]
            fake_logit, _, _ = self.discriminator(x_fake)
            d_loss = self.lambda_adv * discriminator_loss(real_logit, fake_logit,
                                                          soft=self.soft_labels, generator=gen)
            ctx.optimize("discriminator", d_loss)
            losses |= {"generator_adv": g_loss.detach(), "discriminator_adv": d_loss.detach()}
        if self.cell_contrast or self.type_contrast:
            x_hat = self.vade(x, generator=gen)[0]
            n_gen = int(self.p_gen * len(x))
            chosen = torch.randperm(len(x), generator=gen, device=x.device)[:n_gen]
            for_vade, parts = self._contrastive(x, x_hat, batch["label"], chosen)
            for_discriminator, _ = self._contrastive(x, x_hat.detach(), batch["label"], chosen)
            ctx.optimize("vade", for_vade)
            ctx.optimize("discriminator", for_discriminator)
            losses |= parts
        return losses

    def _contrastive(self, x: torch.Tensor, x_hat: torch.Tensor, labels: torch.Tensor,
                     chosen: torch.Tensor) -> tuple[torch.Tensor, Losses]:
        """``λ_cell L_cell + λ_type L_type`` over the batch's observed and generated cells;
        ``chosen`` are the generated cells the type-level loss sees."""
        _, t, v = self.discriminator(x)
        _, t_hat, v_hat = self.discriminator(x_hat)
        total = x.new_zeros(())
        parts: Losses = {}
        if self.cell_contrast:
            cell = nt_xent(t, t_hat, temperature=self.temperature)
            total = total + self.lambda_cell * cell
            parts["cell_contrast"] = cell.detach()
        if self.type_contrast:
            type_loss = supervised_contrastive(torch.cat([v, v_hat[chosen]]),
                                               torch.cat([labels, labels[chosen]]),
                                               temperature=self.temperature)
            total = total + self.lambda_type * type_loss
            parts["type_contrast"] = type_loss.detach()
        return total, parts
