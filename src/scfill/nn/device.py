"""Choose the torch device: ``auto`` is CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from scfill.errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    Raises
    ------
    InputError
        For an unknown name, or ``cuda`` on a machine without a CUDA device.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} was asked for but no CUDA device is available.",
                             fix="use --device cpu or --device auto.")
        return torch.device(name)
    raise InputError(f"unknown device {device!r}.", fix=f"use one of {', '.join(DEVICE_CHOICES)}.")
