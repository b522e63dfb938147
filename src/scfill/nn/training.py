"""The epoch loop every neural method uses: progress bar, loss checks, early stopping."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from scfill._logging import logger, progress_enabled
from scfill.errors import TrainingError


@dataclass
class TrainingHistory:
    """Per-epoch losses of one training run.

    Attributes
    ----------
    train_loss
        Mean training loss of each epoch.
    val_loss
        Validation loss of each epoch (empty when there is no validation set).
    best_epoch
        Epoch (0-based) whose weights were kept, when early stopping restored them.
    stopped_early
        Whether early stopping ended the run before ``epochs``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict:
        """Plain-JSON form, for ``uns`` and saved configs."""
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }


class EarlyStopping:
    """Stop when the monitored loss has not improved for ``patience`` epochs.

    Keeps a copy of the best weights and puts them back with :meth:`restore`
    (Keras' ``restore_best_weights=True``).

    Parameters
    ----------
    patience
        Epochs without improvement before stopping.
    min_delta
        Smallest decrease that counts as an improvement.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.best_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._waited = 0

    def step(self, value: float, epoch: int, module: torch.nn.Module) -> bool:
        """Record ``value`` for ``epoch``; return True when training should stop."""
        if value < self.best - self.min_delta:
            self.best = value
            self.best_epoch = epoch
            self._best_state = copy.deepcopy(module.state_dict())
            self._waited = 0
            return False
        self._waited += 1
        return self._waited >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best weights seen into ``module`` (no-op before the first step)."""
        if self._best_state is not None:
            module.load_state_dict(self._best_state)


def fit_epochs(
    module: torch.nn.Module,
    *,
    epochs: int,
    train_epoch: Callable[[int], float],
    validate: Callable[[], float] | None = None,
    early_stopping: EarlyStopping | None = None,
    description: str = "training",
) -> TrainingHistory:
    """Run ``train_epoch`` for up to ``epochs`` epochs with a progress bar.

    Parameters
    ----------
    module
        The network; put in train mode for ``train_epoch`` and eval mode for ``validate``.
    epochs
        Maximum number of epochs.
    train_epoch
        Trains one epoch (given its index) and returns its mean loss.
    validate
        Returns the validation loss; monitored by ``early_stopping`` when both are given.
    early_stopping
        Stops on a validation plateau (or a training plateau without ``validate``) and
        restores the best weights.
    description
        Label of the progress bar and log lines.

    Raises
    ------
    TrainingError
        When a loss becomes NaN or infinite; the message names the epoch and what to try.
    """
    history = TrainingHistory()
    bar = tqdm(range(epochs), desc=description, unit="epoch", disable=not progress_enabled(),
               leave=False)
    for epoch in bar:
        module.train()
        loss = float(train_epoch(epoch))
        _check_finite(loss, "training", epoch, description)
        history.train_loss.append(loss)
        monitored = loss
        if validate is not None:
            module.eval()
            with torch.no_grad():
                monitored = float(validate())
            _check_finite(monitored, "validation", epoch, description)
            history.val_loss.append(monitored)
        bar.set_postfix(loss=f"{loss:.4g}", **({"val": f"{monitored:.4g}"} if validate else {}))
        if early_stopping is not None and early_stopping.step(monitored, epoch, module):
            history.stopped_early = True
            break
    module.eval()
    if early_stopping is not None:
        early_stopping.restore(module)
        history.best_epoch = early_stopping.best_epoch
    logger.info("%s: %d epochs, final loss %.4g%s", description, len(history.train_loss),
                history.train_loss[-1] if history.train_loss else float("nan"),
                " (stopped early)" if history.stopped_early else "")
    return history


def _check_finite(value: float, kind: str, epoch: int, description: str) -> None:
    if not math.isfinite(value):
        raise TrainingError(
            f"{description}: the {kind} loss became {value} at epoch {epoch + 1}. "
            "Try a lower learning rate, check the input for extreme values, or change the seed."
        )
