"""How honest is ``method="auto"``? Its pick against the truly best method on simulations.

Usage::

    python benchmarks/auto_selection.py [--presets scgacl-1 ...] [--seeds 0]
        [--candidates knn alra magic maskclass] [--holdouts mcv:0.1 mask-nonzero:0.1]
    python benchmarks/auto_selection.py report

For each Splatter preset (ground truth known) and seed:

- every candidate and ``none`` is scored against the true counts (``scfill.evaluate``'s
  ``truth`` protocol, MSE over all entries, common space): the truly best candidate is the
  one with the lowest true MSE;
- :func:`scfill.select.select_method` scores them on each hold-out of the observed counts
  only (no truth), as ``scfill impute --method auto`` does, and picks one.

Reported per hold-out: how often the pick is the truly best, the pick's true MSE relative
to the best's (regret), and the rank correlation of held-out and true scores. Rows go to
``results/auto_selection.csv`` as they are produced (finished rows are skipped on rerun);
``report`` writes ``results/auto_selection.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, write_report

RESULTS = Path(__file__).parent / "results"
CSV = RESULTS / "auto_selection.csv"
REPORT = RESULTS / "auto_selection.md"
PRESETS = ("scgacl-1", "scgacl-4", "scgacl-8", "maskclass-equal", "maskclass-rare")
#: Cells per simulation (the MaskClass presets are made smaller than their Table-2 size so
#: the whole grid runs on the shared CPU machine).
N_CELLS = {"maskclass-equal": 1000, "maskclass-rare": 1000}
#: Fast candidates by default (MaskClass's 300 epochs per run do not fit the shared machine
#: three times per preset); ``--candidates`` adds others.
CANDIDATES = ("knn", "alra", "magic")
HOLDOUTS = ("mcv:0.1", "mask-nonzero:0.1")
#: Generous budget: the benchmark measures the choice, not the budget.
TIME_BUDGET = 3600.0


def _done(preset: str, seed: int, kind: str) -> bool:
    if not CSV.exists():
        return False
    table = pd.read_csv(CSV)
    return bool(((table["preset"] == preset) & (table["seed"] == seed)
                 & (table["kind"] == kind)).any())


def _append(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    frame.to_csv(CSV, mode="a", header=not CSV.exists(), index=False)


def measure(presets: list[str], seeds: list[int], candidates: list[str],
            holdouts: list[str]) -> None:
    """True and held-out scores of every candidate on every preset and seed."""
    import anndata as ad
    import torch

    import scfill
    from scfill.evaluate.run import evaluate_method
    from scfill.select import select_method

    torch.set_num_threads(1)
    for seed in seeds:
        for preset in presets:
            adata = scfill.simulate(preset=preset, n_cells=N_CELLS.get(preset), seed=seed)
            if not _done(preset, seed, "truth"):
                rows = []
                for method in ["none", *candidates]:
                    scores = evaluate_method(adata, method, protocol="truth", seed=seed,
                                             dataset=preset)
                    values = dict(zip(scores["metric"], scores["value"], strict=True))
                    rows.append({"preset": preset, "seed": seed, "kind": "truth",
                                 "method": method, "score": values["mse"],
                                 "seconds": values["runtime_s"], "status": "ok",
                                 "winner": ""})
                    print(rows[-1], flush=True)
                _append(rows)
            observed = ad.AnnData(adata.X, obs=pd.DataFrame(index=adata.obs_names),
                                  var=pd.DataFrame(index=adata.var_names))
            for holdout in holdouts:
                if _done(preset, seed, holdout):
                    continue
                sel = select_method(observed, candidates=candidates, holdout=holdout,
                                    seed=seed, time_budget=TIME_BUDGET, device="cpu")
                rows = [{"preset": preset, "seed": seed, "kind": holdout,
                         "method": r["method"], "score": r["score"], "seconds": r["seconds"],
                         "status": r["status"], "winner": sel.winner}
                        for r in sel.scores.to_dict("records")]
                print(sel.format_table(), flush=True)
                _append(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per preset, seed and hold-out: the pick, the truly best, regret, rank agreement."""
    from scipy.stats import spearmanr

    truth = table[table["kind"] == "truth"].set_index(["preset", "seed", "method"])["score"]
    out = []
    for (preset, seed, kind), part in table[table["kind"] != "truth"].groupby(
            ["preset", "seed", "kind"]):
        ok = part[part["status"] == "ok"]
        true_scores = truth.loc[preset, seed]
        candidates = true_scores.drop("none", errors="ignore")
        best = candidates.idxmin()
        pick = part["winner"].iloc[0]
        both = ok.set_index("method")["score"].to_frame("heldout").join(
            true_scores.rename("truth"), how="inner")
        rho = spearmanr(both["heldout"], both["truth"]).statistic if len(both) > 2 else np.nan
        out.append({"preset": preset, "seed": seed, "holdout": kind, "pick": pick,
                    "truly_best": best, "pick_is_best": pick == best,
                    "regret": candidates[pick] / candidates[best] - 1,
                    "pick_vs_none": candidates[pick] / true_scores["none"],
                    "best_vs_none": candidates[best] / true_scores["none"],
                    "spearman": rho})
    return pd.DataFrame(out)


def report() -> None:
    """``results/auto_selection.md`` from the CSV."""
    table = pd.read_csv(CSV)
    summary = summarise(table)
    truth = table[table["kind"] == "truth"].pivot_table(index=["preset", "seed"],
                                                        columns="method", values="score")
    held = table[table["kind"] != "truth"].pivot_table(index=["preset", "seed", "kind"],
                                                       columns="method", values="score")
    lines = ["# Honesty of method=\"auto\" on simulations", "",
             "Command: `OMP_NUM_THREADS=1 python benchmarks/auto_selection.py` (arguments in "
             f"the tables) then `report`. Machine: {machine()}; load average when written "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.", "",
             "The true MSE is over all entries against the true counts (common space, "
             "`truth` protocol); the held-out score is what `auto` sees (MCV: normalised "
             "log1p MSE against the held-out molecules; mask-nonzero: MSE at the hidden "
             "non-zeros). Regret = true MSE of the pick / true MSE of the truly best − 1.",
             "", "## Picks", "", summary.to_markdown(index=False, floatfmt=".3f"), "",
             "## Per hold-out", ""]
    agg = summary.groupby("holdout").agg(runs=("pick", "size"),
                                         pick_is_best=("pick_is_best", "mean"),
                                         mean_regret=("regret", "mean"),
                                         max_regret=("regret", "max"),
                                         mean_spearman=("spearman", "mean"))
    lines += [agg.to_markdown(floatfmt=".3f"), "", "## True MSE (all entries)", "",
              truth.to_markdown(floatfmt=".4f"), "", "## Held-out scores", "",
              held.to_markdown(floatfmt=".5f"), ""]
    write_report(REPORT, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="measure", choices=("measure", "report"))
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--holdouts", nargs="+", default=list(HOLDOUTS))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.command == "measure":
        measure(args.presets, args.seeds, args.candidates, args.holdouts)
    report()


if __name__ == "__main__":
    main()
