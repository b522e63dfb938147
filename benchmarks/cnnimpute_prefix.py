"""cnnImpute's training step: the plain network vs the prefix computation, side by side.

The same :class:`~scfill.methods.cnnimpute.module.CoexpressionCNN` (2560 inputs, 512 outputs,
flatten head, same weights) computed on every input (``n_real=None``) and on the real
prefix only (``n_real``: 340, the middle of the 325–355 unique inputs of the subsets at 5,000
× 2,000), a full step each (forward, masked MSE, backward, fused Adam), the two
alternating step by step so that load on a shared machine hits both alike. Under
bfloat16 the plain network runs as the method did before (autocast over the whole
forward) and the prefix one as it does now (autocast over the dense layers only, the
convolutional part in float32), and a third column times the prefix computation under
autocast over the whole forward. Reports the median ms per step and cell, the ratio, and
the load average.

Usage::

    python benchmarks/cnnimpute_prefix.py --threads 1 2 --batch 128 256 --steps 20
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine
from scfill.methods.cnnimpute.module import CoexpressionCNN, masked_mse

#: The paper's network: 5 inputs for each of 512 targets.
N_INPUTS, N_OUTPUTS = 2560, 512
#: Unique inputs of a subset (5,000 × 2,000 simulation: 325, 340, 342, 355).
N_REAL = 340


class _Step:
    """One network, its fused Adam and a fixed batch; ``__call__`` times one step."""

    def __init__(self, net: CoexpressionCNN, batch: int, dtype: torch.dtype,
                 dense_only: bool) -> None:
        self.net, self.dtype, self.dense_only = net, dtype, dense_only
        self.optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
        generator = torch.Generator().manual_seed(1)
        self.x = torch.zeros(batch, N_INPUTS)
        self.x[:, :N_REAL] = 3 * torch.rand(batch, N_REAL, generator=generator)
        self.y = torch.rand(batch, N_OUTPUTS, generator=generator)
        self.mask = torch.rand(batch, N_OUTPUTS, generator=generator) > 0.3

    def __call__(self) -> float:
        start = time.perf_counter()
        autocast = torch.autocast("cpu", dtype=self.dtype,
                                  enabled=self.dtype != torch.float32)
        if self.dense_only:
            features = self.net.embed(self.x)
            with autocast:
                pred = self.net.head(features).float()
        else:
            with autocast:
                pred = self.net(self.x).float()
        loss = masked_mse(pred, self.y, self.mask)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def compare(batch: int, dtype: torch.dtype, steps: int, warmup: int = 3) -> list[float]:
    """Median seconds per step: the plain network (autocast over the whole forward), the
    prefix computation (autocast over the dense layers) and the prefix computation under
    autocast over the whole forward."""
    torch.manual_seed(0)
    plain = CoexpressionCNN(N_INPUTS, N_OUTPUTS)
    fast = copy.deepcopy(plain)
    fast.n_real = N_REAL
    whole = copy.deepcopy(fast)
    runs = [_Step(plain, batch, dtype, False), _Step(fast, batch, dtype, True),
            _Step(whole, batch, dtype, False)]
    times: list[list[float]] = [[], [], []]
    for step in range(warmup + steps):
        for run, kept in zip(runs, times, strict=True):
            elapsed = run()
            if step >= warmup:
                kept.append(elapsed)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "cnnimpute_prefix.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch:
            for dtype in (torch.bfloat16, torch.float32):
                plain, fast, whole = compare(batch, dtype, args.steps)
                rows.append(f"| {threads} | {batch} | {str(dtype).removeprefix('torch.')} "
                            f"| {1000 * plain:.1f} | {1000 * fast:.1f} | {1000 * whole:.1f} "
                            f"| {1000 * plain / batch:.2f} | {1000 * fast / batch:.2f} "
                            f"| {fast / plain:.2f} |")
                print(rows[-1], flush=True)
    lines = ["# cnnImpute: training step of the plain network vs the prefix computation", "",
             f"Command: `python benchmarks/cnnimpute_prefix.py {' '.join(sys.argv[1:])}`",
             f"Machine: {machine()}; torch {torch.__version__}. Load average (1 min) "
             f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after: the machine is "
             "shared, compare the two columns of a row (measured alternately), not rows "
             "of other runs.", "",
             f"{N_INPUTS} inputs of which the first {N_REAL} are real, {N_OUTPUTS} outputs, "
             "flatten head, same weights; a step = forward, masked MSE, backward, fused "
             f"Adam; median over {args.steps} steps after 3 warm-up steps. bfloat16: plain = "
             "autocast over the whole forward (the method before), prefix = autocast over "
             "the dense layers only (the method now), prefix whole = the prefix computation "
             "under autocast over the whole forward.", "",
             "| threads | batch | precision | plain ms/step | prefix ms/step | prefix whole "
             "ms/step | plain ms/cell | prefix ms/cell | prefix / plain |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|", *rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
