"""Seeded uniform random numbers for per-entry corruption, fast on the CPU.

``torch.rand`` on the CPU draws from a Mersenne Twister, one number at a time on one core:
for a 256 × 2,000 batch it took 1.3 ms, a sixth of MaskClass's whole training step on two
cores. numpy's PCG64 fills the same batch in 0.8 ms (measured alone; 1.0 ms inside the
step, where two numpy streams on two threads were no faster). :class:`UniformStream` draws
from PCG64 on the CPU and from ``torch.rand`` with a CUDA generator on the GPU; either way
the draws depend only on the seed and the sequence of shapes asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class UniformStream:
    """``U[0, 1)`` float32 tensors on ``device``, reproducible from ``seed``.

    Parameters
    ----------
    seed
        Seeds the stream (numpy ``PCG64(seed)`` on the CPU, a torch generator elsewhere).
    device
        Where the draws are returned.
    """

    def __init__(self, seed: int, device: torch.device | str) -> None:
        self.device = torch.device(device)
        if self.device.type == "cpu":
            self._numpy = np.random.Generator(np.random.PCG64(seed))
        else:
            self._torch = torch.Generator(device=self.device).manual_seed(seed)

    def draw(self, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
        """A new tensor of ``shape`` with independent uniform entries."""
        if self.device.type != "cpu":
            return torch.rand(shape, generator=self._torch, device=self.device)
        return torch.from_numpy(self._numpy.random(tuple(shape), dtype=np.float32))

    def state(self) -> dict[str, Any]:
        """Plain-value state (for a training checkpoint)."""
        if self.device.type != "cpu":
            return {"torch": self._torch.get_state()}
        return {"numpy": self._numpy.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        if self.device.type != "cpu":
            self._torch.set_state(state["torch"])
        else:
            self._numpy.bit_generator.state = state["numpy"]
