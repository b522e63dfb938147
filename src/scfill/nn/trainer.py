"""The Trainer: runs a schedule of phases, each a training plan with its data and epochs.

It owns what no method should write itself: device placement, the epoch and step loops,
backward and optimiser steps (one optimiser automatically, or several through
``ctx.optimize`` for alternating GAN updates), gradient clipping, mixed precision on CUDA,
a non-finite-loss check at every step, the per-epoch history of every named loss, early
stopping with the best weights restored, a progress bar per phase, checkpoints with
bit-identical resume, and data-parallel training under torchrun.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from scfill._logging import logger, progress_enabled
from scfill.errors import TrainingError
from scfill.nn import distributed
from scfill.nn.device import resolve_device
from scfill.nn.early_stopping import EarlyStopping
from scfill.nn.history import History, PhaseHistory
from scfill.nn.plan import Batch, Losses, TrainingPlan
from scfill.nn.seed import seed_everything
from scfill.nn.training_state import (
    load_training_state,
    rng_state,
    save_training_state,
    set_rng_state,
)

#: What a non-finite loss message suggests.
NONFINITE_HINT = ("Try a lower learning rate or gradient clipping (grad_clip), check the input "
                  "for extreme values, or change the seed.")


@dataclass
class Phase:
    """One stage of a schedule: a plan trained on its data for up to ``epochs`` epochs.

    Parameters
    ----------
    name
        Unique within the schedule; the key of its history.
    plan
        The training plan; its optimisers are created when the phase starts.
    train_data
        Iterable of dict batches, re-iterated every epoch (a
        :class:`~scfill.nn.data.RowLoader`, whose state checkpoints keep).
    epochs
        Maximum number of epochs.
    val_data
        Batches for ``plan.validation_step`` after each epoch.
    early_stopping
        Stops the phase on a plateau of a named metric and restores the best weights.
    """

    name: str
    plan: TrainingPlan
    train_data: Iterable[Batch]
    epochs: int
    val_data: Iterable[Batch] | None = None
    early_stopping: EarlyStopping | None = None


class StepContext:
    """What a training step can see and do (``ctx`` in :meth:`TrainingPlan.training_step`).

    Attributes
    ----------
    phase
        Name of the running phase.
    epoch
        Epoch within the phase (0-based).
    step
        Steps done in the phase so far.
    device
        The training device.
    rank, world_size
        This process and the number of processes (1 outside torchrun).
    optimizers
        The phase's optimisers by name.
    """

    def __init__(self, *, phase: str, optimizers: dict[str, torch.optim.Optimizer],
                 device: torch.device, scaler: torch.amp.GradScaler, grad_clip: float | None,
                 manual: bool, average_gradients: bool, description: str) -> None:
        self.phase = phase
        self.epoch = 0
        self.step = 0
        self.device = device
        self.rank, self.world_size = distributed.rank_and_world()
        self.optimizers = optimizers
        self._scaler = scaler
        self._grad_clip = grad_clip
        self._manual = manual
        self._average = average_gradients
        self._description = description

    def optimize(self, name: str, loss: torch.Tensor, *, retain_graph: bool = False) -> None:
        """Backpropagate ``loss`` and step the optimiser ``name`` (manual optimisation).

        Zeroes that optimiser's gradients first, so a step can update several optimisers
        in turn (each at most once per step). Checks ``loss`` is finite, scales it under
        mixed precision, and clips the optimiser's gradients when the Trainer has
        ``grad_clip``.
        """
        if not self._manual:
            raise TypeError("ctx.optimize is for plans with automatic_optimization = False; "
                            "an automatic plan returns {'loss': ...} and the Trainer steps.")
        if name not in self.optimizers:
            raise KeyError(f"no optimiser {name!r}; configure_optimizers returned "
                           f"{sorted(self.optimizers)}")
        self.check_finite({name: loss}, "loss passed to ctx.optimize for")
        self._update(name, loss, retain_graph=retain_graph)

    def check_finite(self, losses: Losses, kind: str = "loss") -> None:
        """Raise :class:`TrainingError` naming the step and the loss when one is not finite.

        The message reads "the <kind> '<name>' became nan at step ...".
        """
        values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        finite = torch.isfinite(values)
        if bool(finite.all()):
            return
        bad = int((~finite).nonzero()[0, 0])
        name, value = list(losses)[bad], float(values[bad])
        raise TrainingError(
            f"{self._description} [{self.phase}]: the {kind} {name!r} became {value} at step "
            f"{self.step + 1} (epoch {self.epoch + 1}). {NONFINITE_HINT}")

    def _update(self, name: str, loss: torch.Tensor, *, retain_graph: bool = False) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        self._scaler.scale(loss).backward(retain_graph=retain_graph)
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if self._average:
            distributed.average_gradients(parameters)
        if self._grad_clip is not None:
            self._scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(parameters, self._grad_clip)
        self._scaler.step(optimizer)


class _PlanStep(nn.Module):
    """The plan's training step as a module, so DDP can wrap it (its forward is the step)."""

    def __init__(self, plan: TrainingPlan) -> None:
        super().__init__()
        self.module = plan.module
        self.plan = plan

    def forward(self, batch: Batch, ctx: StepContext) -> Losses:
        return self.plan.training_step(batch, ctx)


class _Means:
    """Per-epoch means of named losses, weighted by the plan's batch weights."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.weighted: dict[str, torch.Tensor] = {}
        self.plain: dict[str, torch.Tensor] = {}
        self.weight = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0

    def add(self, losses: Losses, weight: float | torch.Tensor) -> None:
        w = torch.as_tensor(weight, dtype=torch.float64, device=self.device)
        for name, value in losses.items():
            v = value.detach().to(torch.float64)
            self.weighted[name] = self.weighted.get(name, 0.0) + v * w
            self.plain[name] = self.plain.get(name, 0.0) + v
        self.weight = self.weight + w
        self.count += 1

    def means(self) -> dict[str, float]:
        """The means over steps of all processes (weighted; plain when all weights are 0)."""
        names = list(self.weighted)
        totals = torch.stack([*(self.weighted[n] for n in names), *(self.plain[n] for n in names),
                              self.weight, torch.tensor(float(self.count), dtype=torch.float64,
                                                        device=self.device)])
        totals = distributed.all_reduce_sum(totals).tolist()
        k = len(names)
        weight, count = totals[2 * k], totals[2 * k + 1]
        if weight > 0:
            return {n: totals[i] / weight for i, n in enumerate(names)}
        return {n: totals[k + i] / max(count, 1.0) for i, n in enumerate(names)}


class Trainer:
    """Runs phases of training plans (see :class:`Phase` and :class:`TrainingPlan`).

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when present; this process's GPU under torchrun), ``"cpu"``,
        ``"cuda"`` or a :class:`torch.device`. Modules and batches are moved there.
    grad_clip
        Clip each optimiser's gradients to this total norm before its step (None: off).
    mixed_precision
        On CUDA, run steps under float16 autocast with a gradient scaler; ignored on the
        CPU (where autocast would change results and gains little). Off by default.
    checkpoint_dir
        Folder for ``last.pt``, written every ``checkpoint_every`` epochs and at the end
        of each phase (by rank 0 under torchrun).
    checkpoint_every
        Epochs between checkpoints (None: only at phase ends, when ``checkpoint_dir``).
    resume_from
        A checkpoint (file or folder) of an earlier run of the same schedule: training
        continues from it and ends with the weights an uninterrupted run with the same
        seed would have (bit for bit on the CPU, when the data are RowLoaders).
    seed
        Seeds torch, numpy and Python when ``fit`` starts; None leaves the random state as
        it is (methods seed once, in the pipeline).
    description
        Label of progress bars, log lines and error messages.

    Notes
    -----
    Under torchrun with more than one process, automatically optimised plans train
    through :class:`torch.nn.parallel.DistributedDataParallel` (its forward is the plan's
    step); manually optimised ones (several optimisers and backward passes in a step, which
    DDP's reducer cannot follow) have each optimiser's gradients averaged across processes
    by ``ctx.optimize``, the same mean DDP computes. Epoch means are over all processes, so
    every process makes the same early-stopping decision.
    """

    def __init__(
        self,
        *,
        device: str | torch.device = "auto",
        grad_clip: float | None = None,
        mixed_precision: bool = False,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume_from: str | Path | None = None,
        seed: int | None = None,
        description: str = "training",
    ) -> None:
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 or None, got {checkpoint_every}")
        if checkpoint_every is not None and checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir")
        self.device = device
        self.grad_clip = grad_clip
        self.mixed_precision = mixed_precision
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.resume_from = resume_from
        self.seed = seed
        self.description = description

    # -- the schedule --------------------------------------------------------------------

    def fit(self, phases: Sequence[Phase]) -> History:
        """Train every phase in order; return the history (per phase, loss and epoch)."""
        phases = list(phases)
        _check_phases(phases)
        device = resolve_device(self.device)
        parallel = distributed.setup(device)
        if self.seed is not None:
            seed_everything(self.seed)
        history, start_phase, resume = History(), 0, None
        if self.resume_from is not None:
            resume = load_training_state(self.resume_from)
            history = History.from_dict(json.loads(resume["history"]))
            start_phase = resume["phase_index"]
            _load_plans(phases, resume)
            set_rng_state(resume["rng"])
            logger.info("%s: resuming at phase %d, epoch %d", self.description,
                        start_phase + 1, resume["epochs_done"] + 1)
        for index in range(start_phase, len(phases)):
            carried = resume if resume is not None and index == start_phase else None
            self._run_phase(phases, index, history, carried, parallel, device)
        return history

    def _run_phase(self, phases: list[Phase], index: int, history: History,
                   resume: dict[str, Any] | None, parallel: bool, device: torch.device) -> None:
        phase = phases[index]
        plan = phase.plan
        plan.module.to(device)
        optimizers = plan.configure_optimizers()
        _check_optimizers(plan, optimizers)
        amp = self.mixed_precision and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        record = history.phases.setdefault(phase.name, PhaseHistory())
        start_epoch = 0
        if resume is not None and resume["epochs_done"] > 0:
            start_epoch = resume["epochs_done"]
            _load_phase_state(phase, optimizers, scaler, resume)
        manual = not plan.automatic_optimization
        step_module: nn.Module = _PlanStep(plan)
        if parallel and not manual:
            step_module = nn.parallel.DistributedDataParallel(
                step_module, device_ids=[device.index] if device.type == "cuda" else None)
        elif parallel:
            distributed.broadcast_module(plan.module)
        ctx = StepContext(phase=phase.name, optimizers=optimizers, device=device, scaler=scaler,
                          grad_clip=self.grad_clip, manual=manual,
                          average_gradients=parallel and manual,
                          description=self.description)
        autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if amp else nullcontext
        bar = tqdm(total=phase.epochs, initial=start_epoch, unit="epoch", leave=False,
                   desc=f"{self.description} [{phase.name}]",
                   disable=not (progress_enabled() and sys.stderr.isatty()))
        only = next(iter(optimizers))
        for epoch in range(start_epoch, phase.epochs):
            ctx.epoch = epoch
            plan.module.train()
            plan.on_epoch_start(ctx)
            means = _Means(device)
            for batch in phase.train_data:
                batch = _to_device(batch, device)
                with autocast():
                    losses = step_module(batch, ctx)
                _check_losses(plan, losses)
                ctx.check_finite(losses)
                if not manual:
                    ctx._update(only, losses["loss"])
                scaler.update()
                means.add(losses, plan.batch_weight(batch))
                ctx.step += 1
            if not means.count:
                raise TrainingError(f"{self.description} [{phase.name}]: the training data "
                                    "gave no batch.")
            metrics = means.means()
            if phase.val_data is not None:
                metrics |= self._validate(phase, ctx, device, autocast, set(metrics))
            record.append(metrics)
            stop = bool(phase.early_stopping and
                        phase.early_stopping.step(metrics, epoch, plan.module))
            if parallel and manual:
                distributed.broadcast_module(plan.module)
            plan.on_epoch_end(ctx, metrics)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:3]})
            if stop:
                record.stopped_early = True
                break
            every = self.checkpoint_every
            if every and (epoch + 1) % every == 0 and epoch + 1 < phase.epochs:
                self._checkpoint(phases, history, index, epoch + 1, optimizers, scaler)
        bar.close()
        plan.module.eval()
        if phase.early_stopping is not None:
            phase.early_stopping.restore(plan.module)
            record.best_epoch = phase.early_stopping.best_epoch
        if self.checkpoint_dir is not None:
            self._checkpoint(phases, history, index + 1, 0, None, None)
        last = {k: v[-1] for k, v in record.losses.items()}
        logger.info("%s [%s]: %d epochs, %s%s", self.description, phase.name, record.epochs,
                    ", ".join(f"{k} {v:.4g}" for k, v in last.items()),
                    f" (stopped early; best epoch {record.best_epoch + 1})"
                    if record.stopped_early and record.best_epoch is not None else "")

    def _validate(self, phase: Phase, ctx: StepContext, device: torch.device, autocast,
                  training_names: set[str]) -> dict[str, float]:
        plan = phase.plan
        plan.module.eval()
        means = _Means(device)
        with torch.no_grad():
            for batch in phase.val_data:
                batch = _to_device(batch, device)
                with autocast():
                    metrics = plan.validation_step(batch, ctx)
                ctx.check_finite(metrics, "validation metric")
                means.add(metrics, plan.batch_weight(batch))
        clash = training_names & set(means.weighted)
        if clash:
            raise ValueError(f"validation_step returns {sorted(clash)}, names its training "
                             "step uses too; name validation metrics apart (e.g. 'val_loss').")
        return means.means() if means.count else {}

    # -- checkpoints ---------------------------------------------------------------------

    def _checkpoint(self, phases: list[Phase], history: History, phase_index: int,
                    epochs_done: int, optimizers: dict[str, torch.optim.Optimizer] | None,
                    scaler: torch.amp.GradScaler | None) -> None:
        """Save the run at a boundary: ``epochs_done`` epochs into phase ``phase_index``."""
        if self.checkpoint_dir is None or not distributed.is_main_process():
            return
        modules, extras, seen_modules, seen_plans = {}, {}, set(), set()
        for i, phase in enumerate(phases):  # a module or plan shared by phases is kept once
            if id(phase.plan.module) not in seen_modules:
                modules[str(i)] = phase.plan.module.state_dict()
                seen_modules.add(id(phase.plan.module))
            if id(phase.plan) not in seen_plans:
                extras[str(i)] = phase.plan.extra_state()
                seen_plans.add(id(phase.plan))
        state: dict[str, Any] = {
            "phase_index": phase_index, "epochs_done": epochs_done, "modules": modules,
            "plan_extra": extras, "history": json.dumps(history.to_dict()),
            "rng": rng_state()}
        if optimizers is not None:
            phase = phases[phase_index]
            state["optimizers"] = {name: opt.state_dict() for name, opt in optimizers.items()}
            state["scaler"] = scaler.state_dict() if scaler is not None else {}
            state["early_stopping"] = (phase.early_stopping.state_dict()
                                       if phase.early_stopping is not None else None)
            state["loaders"] = {key: data.state_dict() for key, data in
                                (("train", phase.train_data), ("val", phase.val_data))
                                if hasattr(data, "state_dict")}
        save_training_state(self.checkpoint_dir, state)


def _check_phases(phases: list[Phase]) -> None:
    if not phases:
        raise ValueError("Trainer.fit needs at least one Phase")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    for phase in phases:
        if not isinstance(phase.epochs, int) or phase.epochs < 1:
            raise ValueError(f"phase {phase.name!r}: epochs must be an integer >= 1, got "
                             f"{phase.epochs!r}")
        if phase.val_data is not None and not phase.plan.has_validation:
            raise ValueError(f"phase {phase.name!r} has val_data but "
                             f"{type(phase.plan).__name__} defines no validation_step")


def _check_optimizers(plan: TrainingPlan, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    if not isinstance(optimizers, dict) or not optimizers or not all(
            isinstance(o, torch.optim.Optimizer) for o in optimizers.values()):
        raise TypeError(f"{type(plan).__name__}.configure_optimizers must return a non-empty "
                        "dict of name -> torch.optim.Optimizer")
    if plan.automatic_optimization and len(optimizers) != 1:
        raise ValueError(f"{type(plan).__name__} has automatic_optimization = True but "
                         f"{len(optimizers)} optimisers; set it to False and call "
                         "ctx.optimize(name, loss) for each.")


def _check_losses(plan: TrainingPlan, losses: Losses) -> None:
    if not isinstance(losses, dict) or not losses:
        raise TypeError(f"{type(plan).__name__}.training_step must return a non-empty dict of "
                        "name -> scalar tensor")
    if plan.automatic_optimization and "loss" not in losses:
        raise KeyError(f"{type(plan).__name__}.training_step must return the optimised loss "
                       f"as 'loss' (got {sorted(losses)})")


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def _load_plans(phases: list[Phase], state: dict[str, Any]) -> None:
    """Every phase's module weights and plan state from a checkpoint."""
    for key, weights in state["modules"].items():
        phases[int(key)].plan.module.load_state_dict(weights)
    for key, extra in state["plan_extra"].items():
        phases[int(key)].plan.load_extra_state(extra)


def _load_phase_state(phase: Phase, optimizers: dict[str, torch.optim.Optimizer],
                      scaler: torch.amp.GradScaler, state: dict[str, Any]) -> None:
    """Optimisers, scaler, early stopping and loaders of the phase a checkpoint is inside."""
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    if phase.early_stopping is not None and state["early_stopping"] is not None:
        phase.early_stopping.load_state_dict(state["early_stopping"])
    for key, data in (("train", phase.train_data), ("val", phase.val_data)):
        if key in state["loaders"] and hasattr(data, "load_state_dict"):
            data.load_state_dict(state["loaders"][key])
