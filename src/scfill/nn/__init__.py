"""Torch parts shared by the methods: seeding, devices, the training loop, checkpoints."""

from scfill.nn.checkpoint import load_checkpoint, save_checkpoint
from scfill.nn.data import batch_indices, dense_rows
from scfill.nn.device import resolve_device
from scfill.nn.seed import seed_everything
from scfill.nn.training import EarlyStopping, TrainingHistory, fit_epochs

__all__ = [
    "EarlyStopping",
    "TrainingHistory",
    "batch_indices",
    "dense_rows",
    "fit_epochs",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
