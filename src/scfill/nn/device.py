"""Choose the torch device: ``auto`` is CUDA when present, else the CPU.

Under torchrun, ``auto`` and ``cuda`` mean this process's own GPU (``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import torch

from scfill.errors import InputError
from scfill.nn import distributed

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    Raises
    ------
    InputError
        For an unknown name, or ``cuda`` on a machine without a CUDA device.
    """
    if isinstance(device, torch.device):
        if device.type == "cuda" and device.index is None and distributed.launched():
            return torch.device("cuda", distributed.local_rank())
        return device
    name = str(device).lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} was asked for but no CUDA device is available.",
                             fix="use --device cpu or --device auto.")
        if name == "cuda" and distributed.launched():
            return torch.device("cuda", distributed.local_rank())
        return torch.device(name)
    raise InputError(f"unknown device {device!r}.", fix=f"use one of {', '.join(DEVICE_CHOICES)}.")
