"""One seed for numpy, torch and Python's ``random``."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy's legacy global state and torch (CPU and CUDA) with ``seed``.

    Also switches torch to deterministic algorithms where it can, so that the same seed on
    the CPU gives the same result bit for bit.

    Returns
    -------
    A fresh :class:`numpy.random.Generator` seeded with ``seed``; code should draw from it
    rather than from the global state.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (libraries that use the global state)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)
