"""The ZINB-ML dropout model fitted on a subset of cells against the fit on every cell.

Usage::

    python benchmarks/zinb_fit_cells.py [--presets ...] [--seeds 0 1] [--sizes 0 2000 1000]

``scfill.dropout.zinb_mle`` fits each group of cells on at most ``max_cells`` of them (a
seeded random subset; default :data:`~scfill.dropout.zinb_mle.FIT_CELLS`). For each
Splatter preset and seed (all-zero cells and genes removed), the fit on every cell
(size 0) and on subsets of each size score the dropout calls against the ground truth with
the scores of ``dropout_models.py`` (ROC AUC, accuracy, F1, Brier, calibration error) and
time the fit. Writes ``results/zinb_fit_cells.csv`` and ``results/zinb_fit_cells.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, write_report
from dropout_models import at_zeros, load, scores

RESULTS = Path(__file__).parent / "results"
CSV = RESULTS / "zinb_fit_cells.csv"
REPORT = RESULTS / "zinb_fit_cells.md"
PRESETS = ("maskclass-equal", "maskclass-rare", "scgacl-4", "cnnimpute")
COLUMNS = ("auc", "accuracy", "f1", "brier", "ece", "seconds")


def run(presets: list[str], seeds: list[int], sizes: list[int]) -> pd.DataFrame:
    from scfill.dropout import estimate

    rows = []
    for seed in seeds:
        for preset in presets:
            counts, lib, _, zero, is_dropout = load(preset, seed)
            for size in sizes:
                start = time.perf_counter()
                model = estimate("zinb-ml", counts, lib, max_cells=size or None)
                seconds = time.perf_counter() - start
                row, _ = scores(at_zeros(model.matrix(), zero), is_dropout)
                rows.append({"preset": preset, "seed": seed, "cells": counts.shape[0],
                             "genes": counts.shape[1], "fit_cells": model.summary["fit_cells"],
                             "max_cells": size or "every cell", **row,
                             "seconds": round(seconds, 2)})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def report(table: pd.DataFrame, command: str) -> list[str]:
    lines = ["# ZINB-ML dropout model: fit on a subset of cells", "",
             f"Command: `{command}`. Machine: {machine()}; load average "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} when written.", "",
             "Dropout calls (> 0.5) and ranking of the observed zeros against the simulator's "
             "ground truth, by the cells the ZINB-ML fit used; mean over seeds "
             f"{sorted(table['seed'].unique().tolist())}. `seconds`: the fit and the "
             "probabilities, on a shared machine (compare within a preset).", ""]
    for preset, part in table.groupby("preset", sort=False):
        lines += [f"## {preset}: {part['cells'].iloc[0]} cells × {part['genes'].iloc[0]} genes",
                  "", "| fit on | " + " | ".join(COLUMNS) + " |",
                  "|---|" + "---:|" * len(COLUMNS)]
        for size, rows in part.groupby("max_cells", sort=False):
            values = " | ".join(f"{rows[c].mean():.3f}" for c in COLUMNS)
            lines.append(f"| {size} | {values} |")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--sizes", nargs="+", type=int, default=[0, 2000, 1000],
                        help="cells the fit uses per group; 0: every cell")
    args = parser.parse_args()
    table = run(args.presets, args.seeds, args.sizes)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(CSV, index=False)
    command = "python benchmarks/zinb_fit_cells.py " + " ".join(sys.argv[1:])
    write_report(REPORT, report(table, command))


if __name__ == "__main__":
    main()
