"""Write README's benchmark summary block from the committed results.

Usage: ``python benchmarks/readme_summary.py [--readme README.md] [RUN_FOLDER ...]``; the
default folders are the committed runs (``benchmarks/results/benchmark`` and
``benchmarks/results/benchmark_mcv``) and ``benchmarks/results/speed.csv``. Every figure
in the block comes from their ``summary.csv`` / ``speed.csv`` (:mod:`scfill.bench.readme`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scfill.bench.readme import summary_block, update_readme

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = (RESULTS / "benchmark", RESULTS / "benchmark_mcv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, default=list(RUNS))
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--speed", type=Path, default=RESULTS / "speed.csv")
    args = parser.parse_args()
    folders = [f.resolve() for f in args.folders if (f / "summary.csv").exists()]
    block = summary_block(folders, speed_csv=args.speed.resolve(),
                          root=args.readme.resolve().parent)
    update_readme(args.readme, block)
    print(block)


if __name__ == "__main__":
    main()
