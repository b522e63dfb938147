"""scMASKGAN's training plan (paper Algorithm 3): one discriminator update, then one
generator update, per minibatch of real cells.

Per batch of real cells ``x`` (scaled genes) with labels ``y``: ``X_real`` is ``x`` as an
image and ``m`` its observation mask; ``X̂ = G(z, y)`` with ``z ~ N(0, I)`` and the *same*
labels. The discriminator sees every image through ``m`` (``X·m`` and ``m``), real and
generated alike, so it judges the values of the observed pixels only and neither the zeros
nor the padding can give a generated cell away. Real and generated images go through the
discriminator in one call, so its batch normalisation sees one batch.

- ``L_D = −mean[log D(X_real|y) + log(1 − D(X̂|y))]`` over patches holding an observed
  pixel (step 15), then the discriminator's Adam step.
- ``L_G = mean[log(1 − D(X̂|y))] + λ·ReconstructionLoss(X̂, X_real)`` (step 19), the
  reconstruction being the mean squared error over observed pixels; then the generator's
  Adam step.

The reconstruction term is the convergence signal: the adversarial terms of a GAN
oscillate by design, so early stopping watches ``reconstruction`` (Algorithm 3 step 23,
"loss plateau").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scfill.methods.scmaskgan.layout import GeneImage
from scfill.methods.scmaskgan.module import (
    Discriminator,
    Generator,
    adversarial_generator_loss,
    discriminator_loss,
    low_side,
    masked_reconstruction,
    patch_mask,
)
from scfill.nn import StepContext, TrainingPlan


class ScMaskGanPlan(TrainingPlan):
    """Alternating D/G updates of a conditional masked GAN (``automatic_optimization``
    off: the step calls ``ctx.optimize`` for the discriminator, then the generator).

    Parameters
    ----------
    generator, discriminator
        The networks (:mod:`.module`); ``module`` holds both, so the Trainer moves,
        checkpoints and restores them together.
    layout
        The gene-image layout of the data.
    n_classes
        K, the number of labels (width of the one-hot ``y``).
    latent_dim
        Size of z.
    lr
        Adam learning rate of both networks.
    betas
        Adam's β₁, β₂.
    reconstruction_weight
        λ.
    seed
        Seeds the noise z (its generator's state is checkpointed with the plan).
    """

    automatic_optimization = False

    def __init__(self, generator: Generator, discriminator: Discriminator, layout: GeneImage,
                 *, n_classes: int, latent_dim: int, lr: float,
                 betas: tuple[float, float], reconstruction_weight: float, seed: int):
        super().__init__(nn.ModuleDict({"generator": generator,
                                        "discriminator": discriminator}))
        self.generator, self.discriminator, self.layout = generator, discriminator, layout
        self.n_classes, self.latent_dim = n_classes, latent_dim
        self.lr, self.betas, self.reconstruction_weight = lr, betas, reconstruction_weight
        self.seed = seed
        self._noise: torch.Generator | None = None
        self._restored: torch.Tensor | None = None

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per network, discriminator first (the order of the updates)."""
        return {name: torch.optim.Adam(module.parameters(), lr=self.lr, betas=self.betas)
                for name, module in (("discriminator", self.discriminator),
                                     ("generator", self.generator))}

    def noise(self, n: int, device: torch.device) -> torch.Tensor:
        """``z ~ N(0, I)``, ``(n, latent_dim)``, from the plan's own seeded generator."""
        if self._noise is None or self._noise.device != device:
            self._noise = torch.Generator(device=device).manual_seed(self.seed)
            if self._restored is not None:
                self._noise.set_state(self._restored)
                self._restored = None
        return torch.randn(n, self.latent_dim, generator=self._noise, device=device)

    def extra_state(self) -> dict[str, Any]:
        """The noise generator's state (a resumed run draws the same z)."""
        return {} if self._noise is None else {"noise": self._noise.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the noise generator's state (applied when it is next created)."""
        if "noise" in state:
            self._noise, self._restored = None, state["noise"]

    def training_step(self, batch: dict[str, torch.Tensor], ctx: StepContext
                      ) -> dict[str, torch.Tensor]:
        """Update D on real vs generated cells, then G; return the named losses."""
        genes, codes = batch["x"], batch["label"]
        y = F.one_hot(codes.long(), self.n_classes).to(genes.dtype)
        real = self.layout.to_image(genes)
        mask = self.layout.observation_mask(genes)
        weight = patch_mask(mask, low_side(self.layout.side))
        fake = self.generator(self.noise(len(genes), genes.device), y)

        real_logits, fake_logits = self._judge(real, fake.detach(), mask, y)
        loss_d = discriminator_loss(real_logits, fake_logits, weight)
        ctx.optimize("discriminator", loss_d)

        _, fake_logits = self._judge(real, fake, mask, y)
        adversarial = adversarial_generator_loss(fake_logits, weight)
        reconstruction = masked_reconstruction(fake, real, mask)
        loss_g = adversarial + self.reconstruction_weight * reconstruction
        ctx.optimize("generator", loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "adversarial": adversarial.detach(), "reconstruction": reconstruction.detach()}

    def _judge(self, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.discriminator(torch.cat([real, fake]), torch.cat([mask, mask]),
                                    torch.cat([y, y]))
        return logits.chunk(2)

    @torch.no_grad()
    def generate(self, code: int, n: int, *, device: torch.device,
                 block: int = 256) -> torch.Tensor:
        """``n`` candidate cells of label ``code`` as scaled genes ``(n, m)`` (eval mode)."""
        self.generator.eval()
        parts = []
        for start in range(0, n, block):
            size = min(block, n - start)
            y = F.one_hot(torch.full((size,), code, device=device), self.n_classes).float()
            image = self.generator(self.noise(size, device), y)
            parts.append(self.layout.to_genes(image))
        return torch.cat(parts)
