"""cnnImpute's training plan: the masked MSE over observed target entries (paper, Methods)."""

from __future__ import annotations

import torch

from scfill.methods.cnnimpute.module import CoexpressionCNN, masked_mse
from scfill.nn import StepContext, TrainingPlan
from scfill.nn.plan import Batch, Losses


class CnnImputePlan(TrainingPlan):
    """Adam (fused) on the MSE over observed target entries; the same MSE on validation.

    Epoch means weight each batch by its number of observed entries, so they are the
    MSE over every observed entry of the epoch.
    """

    def __init__(self, module: CoexpressionCNN, *, lr: float) -> None:
        super().__init__(module)
        self.lr = lr

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam at the paper's learning rate."""
        return {"adam": torch.optim.Adam(self.module.parameters(), lr=self.lr, fused=True)}

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """MSE of the predicted targets at observed entries."""
        return {"loss": masked_mse(self.module(batch["x"]), batch["y"], batch["observed"])}

    def validation_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """The same MSE on held-out cells (monitored by early stopping)."""
        return {"val_loss": masked_mse(self.module(batch["x"]), batch["y"],
                                       batch["observed"])}

    def batch_weight(self, batch: Batch) -> torch.Tensor:
        """The batch's observed target entries."""
        return batch["observed"].sum()
