"""Early stopping on a named metric, keeping the best weights (Keras' restore_best_weights)."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch


class EarlyStopping:
    """Stop a phase when ``monitor`` has not improved for ``patience`` epochs.

    Keeps a copy of the module's weights at the best epoch; the Trainer puts them back when
    the phase ends (``restore_best=True``).

    Parameters
    ----------
    monitor
        Name of the metric: a training loss (``"loss"``) or a validation metric
        (``"val_loss"``) of the phase's plan.
    patience
        Epochs without improvement before stopping.
    min_delta
        Smallest change that counts as an improvement.
    mode
        ``"min"`` (lower is better) or ``"max"``.
    restore_best
        Load the best epoch's weights when the phase ends.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, *, min_delta: float = 0.0,
                 mode: str = "min", restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.waited = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, metrics: dict[str, float], epoch: int, module: torch.nn.Module) -> bool:
        """Record the epoch's ``metrics``; return True when the phase should stop."""
        if self.monitor not in metrics:
            raise KeyError(f"early stopping monitors {self.monitor!r}, but the epoch's metrics "
                           f"are {sorted(metrics)}")
        value = metrics[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best:
                self._best_state = copy.deepcopy(module.state_dict())
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best weights seen into ``module`` (no-op before the first improvement)."""
        if self.restore_best and self._best_state is not None:
            module.load_state_dict(self._best_state)

    def state_dict(self) -> dict[str, Any]:
        """Progress and best weights, for a training checkpoint."""
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited,
                "best_state": self._best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.waited, self._best_state = state["waited"], state["best_state"]
