"""Torch parts shared by the methods: the training engine, row data, losses, blocks, devices,
seeds and model checkpoints.

A method writes a :class:`TrainingPlan` (its optimisers and one step) and hands it to a
:class:`Trainer` inside :class:`Phase` objects; data come from a
:class:`~scfill.nn.data.RowDataset` through a :class:`~scfill.nn.data.RowLoader`.
"""

from scfill.nn.checkpoint import load_checkpoint, save_checkpoint
from scfill.nn.data import RowDataset, RowLoader, dense_rows, predict_blocks
from scfill.nn.device import resolve_device
from scfill.nn.distributed import is_main_process
from scfill.nn.early_stopping import EarlyStopping
from scfill.nn.history import History, PhaseHistory
from scfill.nn.plan import TrainingPlan
from scfill.nn.seed import seed_everything
from scfill.nn.trainer import Phase, StepContext, Trainer

__all__ = [
    "EarlyStopping",
    "History",
    "Phase",
    "PhaseHistory",
    "RowDataset",
    "RowLoader",
    "StepContext",
    "Trainer",
    "TrainingPlan",
    "dense_rows",
    "is_main_process",
    "load_checkpoint",
    "predict_blocks",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
