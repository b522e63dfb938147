"""Training checkpoints: everything needed to resume a run bit for bit, in one ``.pt`` file.

A checkpoint is taken between epochs and holds the position (phase, epochs done), the
modules, optimisers, gradient scaler, early-stopping progress, the loaders' generators, the
plan's extra state, the history and every random state (torch CPU and CUDA, numpy's global
state, Python's ``random``). It contains tensors and plain values only and is read back with
``torch.load(weights_only=True)``; generator states that are not tensors travel as JSON
text.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scfill.errors import InputError

#: File name of the latest checkpoint inside ``checkpoint_dir``.
CHECKPOINT_FILE = "last.pt"
#: Version of the layout below.
FORMAT = 1


def rng_state() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy's global and Python's random states."""
    legacy = np.random.get_state()  # noqa: NPY002  (the global state libraries use)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": json.dumps([legacy[0], legacy[1].tolist(), *legacy[2:]]),
        "python": json.dumps(random.getstate()),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))


def save_training_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/last.pt`` atomically (a crash keeps the previous one)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_FILE
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_training_state` (a file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise InputError(f"no training checkpoint at {path}.",
                         fix="pass resume_from= the checkpoint_dir of an earlier run (or its "
                         f"{CHECKPOINT_FILE}).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise InputError(f"{path} is a checkpoint of another layout ({state.get('format')}).",
                         fix="resume with the scfill version that wrote it.")
    return state
