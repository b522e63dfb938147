"""The training-plan interface: the method's part of training (scvi-tools' TrainingPlan).

A plan says what one step computes; the :class:`~scfill.nn.Trainer` does everything else
(epochs, devices, backward and optimiser steps, checks, history, checkpoints, DDP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from scfill.nn.trainer import StepContext

Batch = dict[str, torch.Tensor]
Losses = dict[str, torch.Tensor]


class TrainingPlan:
    """Base class of a method's training plan.

    A subclass sets ``module`` (the network(s) to train: one :class:`torch.nn.Module`, a
    container module for several) and implements :meth:`configure_optimizers` and
    :meth:`training_step`; the rest is optional.

    With ``automatic_optimization = True`` (the default) :meth:`configure_optimizers`
    returns exactly one optimiser and the Trainer backpropagates ``losses["loss"]`` through
    it after each step. With False the step optimises itself, calling
    ``ctx.optimize(name, loss)`` once per optimiser it updates (a GAN: the discriminator,
    then the generator), and the returned losses are only recorded.

    Attributes
    ----------
    module
        The trained network; the Trainer moves it to the device, switches train/eval mode,
        checkpoints it and wraps it for data-parallel training.
    automatic_optimization
        See above.
    """

    module: nn.Module
    automatic_optimization: bool = True

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimisers by name; called when the phase that uses this plan starts."""
        raise NotImplementedError

    def training_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """One step on ``batch``: named scalar losses (``"loss"`` is the one optimised)."""
        raise NotImplementedError

    def validation_step(self, batch: Batch, ctx: StepContext) -> Losses:
        """Named scalar metrics of a validation batch (runs under no_grad, eval mode).

        Only called when the phase has ``val_data``; the names must differ from the
        training losses' (for example ``"val_loss"``).
        """
        raise NotImplementedError(f"{type(self).__name__} has no validation_step")

    def batch_weight(self, batch: Batch) -> float | torch.Tensor:
        """Weight of a batch in the epoch means of its losses (default 1: mean over steps).

        A plan whose loss is a mean over some entries can return their number, so an
        epoch's mean is over entries rather than over batches.
        """
        return 1.0

    def on_epoch_start(self, ctx: StepContext) -> None:
        """Called before each training epoch (``ctx.epoch`` is set)."""

    def on_epoch_end(self, ctx: StepContext, metrics: dict[str, float]) -> None:
        """Called after each epoch with its mean losses and validation metrics."""

    def extra_state(self) -> dict[str, Any]:
        """State outside ``module`` that a checkpoint must keep (tensors or plain values:
        a generator's state, BEGAN's k_t); restored by :meth:`load_extra_state`."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    @property
    def has_validation(self) -> bool:
        """Whether the subclass defines :meth:`validation_step`."""
        return type(self).validation_step is not TrainingPlan.validation_step
