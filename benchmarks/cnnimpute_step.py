"""One training step of cnnImpute's paper network: where the time goes, plain vs fused Adam.

Times forward, backward and the optimiser step of :class:`CoexpressionCNN` (2560 inputs,
512 outputs, the paper's flatten head; batch 32) with torch's default Adam and with the
fused Adam that :class:`~scfill.methods.cnnimpute.CnnImpute` uses, side by side in one run,
at each thread count asked for. Writes ``benchmarks/results/cnnimpute_step.md``.

Usage::

    python benchmarks/cnnimpute_step.py --threads 1 2 --steps 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine
from scfill.methods.cnnimpute.module import CoexpressionCNN, masked_mse


def time_steps(fused: bool, steps: int, warmup: int = 5) -> dict[str, float]:
    """Milliseconds per step: forward, backward, optimiser, total."""
    torch.manual_seed(0)
    net = CoexpressionCNN(2560, 512)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, fused=fused or None)
    x, y = torch.rand(32, 2560), torch.rand(32, 512)
    mask = torch.rand(32, 512) > 0.2
    parts = {"forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = masked_mse(net(x), y, mask)
        forward = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if step >= warmup:
            parts["forward"] += forward - start
            parts["backward"] += backward - forward
            parts["optimiser"] += end - backward
    ms = {name: 1000 * value / steps for name, value in parts.items()}
    ms["total"] = sum(ms.values())
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "cnnimpute_step.md"))
    args = parser.parse_args()
    lines = ["# cnnImpute: one training step of the paper's network", "",
             f"Command: `python benchmarks/cnnimpute_step.py {' '.join(sys.argv[1:])}`",
             f"Machine: {machine()}; torch {torch.__version__}", "",
             f"2560 inputs → 512 outputs, flatten head (10.5 M parameters), batch 32; mean "
             f"ms per step over {args.steps} steps after 5 warm-up steps.", "",
             "| threads | Adam | forward | backward | optimiser | total | plain / fused |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for threads in args.threads:
        torch.set_num_threads(threads)
        plain, fused = time_steps(False, args.steps), time_steps(True, args.steps)
        for name, ms in (("default", plain), ("fused", fused)):
            ratio = f"{plain['total'] / fused['total']:.2f}" if name == "fused" else ""
            lines.append(f"| {threads} | {name} | {ms['forward']:.1f} | {ms['backward']:.1f} "
                         f"| {ms['optimiser']:.1f} | {ms['total']:.1f} | {ratio} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
