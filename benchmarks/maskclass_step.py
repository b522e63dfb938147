"""MaskClass's training cost per epoch: an older commit beside this tree, in CPU seconds.

At the bar's size (``benchmarks/speed.py``'s 5,000 × 2,000 simulation) each tree fits
MaskClass for 1 and for 11 epochs on the same prepared data, in its own fresh process with
one thread; an epoch's cost is the difference divided by 10. Process CPU time is counted,
not wall time, so a shared machine's load changes the figures far less than it changes
wall times (it still costs cache and memory bandwidth: compare trees only within one
run). Each tree is measured ``--repeats`` times, interleaved; the table gives the least
and the median.

Usage::

    python benchmarks/maskclass_step.py --old a85669a   # writes results/maskclass_step.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, write_report
from speed import make_data

ROOT = Path(__file__).resolve().parents[1]
#: What the child process runs: CPU seconds of fit(1) and fit(11) on the same data.
CHILD = """
import json, sys, time
import scfill
from scfill.methods.maskclass import MaskClass
data = scfill.prepare(scfill.read(sys.argv[1]), "maskclass", seed=0)
cost = {}
for epochs in (1, 11):
    start = time.process_time()
    MaskClass(epochs=epochs).fit(data)
    cost[epochs] = time.process_time() - start
print(json.dumps({"per_epoch": (cost[11] - cost[1]) / 10, "one_epoch_fit": cost[1]}))
"""


def per_epoch(tree: Path, path: str) -> dict:
    """One measurement of ``tree``'s source (a fresh process, one thread)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, path], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/maskclass_step.md"))
    args = parser.parse_args()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree),
                        args.old], check=True, capture_output=True)
        try:
            path = str(Path(tmp) / "counts.h5ad")
            make_data(path, args.cells, args.genes)
            load = os.getloadavg()
            runs: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.repeats):
                for label, tree in (("old", old_tree), ("new", ROOT)):
                    runs[label].append(per_epoch(tree, path)["per_epoch"])
                    print(label, round(runs[label][-1], 4), flush=True)
            load_after = os.getloadavg()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(old_tree)], check=False, capture_output=True)
    best = {label: min(values) for label, values in runs.items()}
    lines = [
        "# MaskClass: CPU cost of a training epoch, before and after the lean step", "",
        f"Command: `python benchmarks/maskclass_step.py --old {args.old} --repeats "
        f"{args.repeats}`; old `{args.old}`, new `{head}`.",
        f"Machine: {machine()}; one thread per process; load average {load[0]:.1f} before, "
        f"{load_after[0]:.1f} after (CPU seconds are counted, see the script).",
        f"Data: `benchmarks/speed.py`'s simulation, {args.cells:,} cells × {args.genes:,} "
        "genes; MaskClass's defaults (fast profile: batch 256, 20 steps an epoch).", "",
        "| tree | CPU s / epoch (least) | median | all runs | old / tree |",
        "|---|---:|---:|---|---:|",
    ]
    for label in ("old", "new"):
        values = runs[label]
        lines.append(f"| {label} | {best[label]:.4f} | {statistics.median(values):.4f} | "
                     f"{', '.join(f'{v:.4f}' for v in values)} | "
                     f"{best['old'] / best[label]:.2f} |")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
