"""Training profiles of the deep methods: ``"paper"`` (the paper's schedule) and ``"fast"``.

A profile is a table of settings (epochs, batch size, learning rate, early stopping,
precision, ...). A method's constructor takes ``profile`` and the same settings as
parameters defaulting to None; :func:`resolve_profile` fills the None ones from the
profile, so an explicit parameter always wins. The method records the profile, the settings
it ran with and where each came from in ``info_`` (``uns["scfill"]["info"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

#: Precisions a profile may ask for: ``"auto"`` picks bfloat16 where the device runs it
#: natively (:func:`bfloat16_native`), float32 elsewhere.
PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_profile(profiles: Mapping[str, Mapping[str, Any]], profile: str,
                    overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings of ``profile`` with every non-None value of ``overrides`` in its place.

    Returns
    -------
    The settings, and for each one ``"profile"`` or ``"user"`` (where its value came from).
    """
    settings = dict(profiles[profile])
    source = dict.fromkeys(settings, "profile")
    for key, value in overrides.items():
        if value is not None:
            settings[key] = value
            source[key] = "user"
    return settings, source


def bfloat16_native(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware.

    CUDA: compute capability 8.0 or later (Ampere). CPU: AMX tiles or AVX-512 BF16
    (Intel Sapphire Rapids and later, AMD Zen 4 and later); other CPUs emulate bfloat16 and
    are slower in it than in float32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype for ``precision`` on ``device`` (float32: no autocast)."""
    if precision == "bfloat16" or (precision == "auto" and bfloat16_native(device)):
        return torch.bfloat16
    return torch.float32
