"""What training recorded: every named loss and metric of every phase, per epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PhaseHistory:
    """One phase's record.

    Attributes
    ----------
    losses
        Name → per-epoch mean (training losses and validation metrics).
    best_epoch
        Epoch (0-based) whose weights were kept, when early stopping restored them.
    stopped_early
        Whether early stopping ended the phase before its epochs.
    """

    losses: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Epochs run."""
        return max((len(v) for v in self.losses.values()), default=0)

    def __getitem__(self, name: str) -> list[float]:
        return self.losses[name]

    def append(self, metrics: dict[str, float]) -> None:
        """Add one epoch's metrics."""
        for name, value in metrics.items():
            self.losses.setdefault(name, []).append(value)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"losses": self.losses, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early}


@dataclass
class History:
    """Per phase (by name), per named loss, per epoch: ``history["train"]["loss"][epoch]``."""

    phases: dict[str, PhaseHistory] = field(default_factory=dict)

    def __getitem__(self, phase: str) -> PhaseHistory:
        return self.phases[phase]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for ``uns``, saved configs and checkpoints)."""
        return {name: phase.to_dict() for name, phase in self.phases.items()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls({name: PhaseHistory(**p) for name, p in state.items()})
