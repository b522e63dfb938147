"""The dropout / biozero models against the simulator's ground truth.

Usage::

    python benchmarks/dropout_models.py [--presets maskclass-equal ...] [--seeds 0]
    python benchmarks/dropout_models.py report

For each Splatter preset (``scfill.simulate``, all-zero cells and genes removed) every
observed zero is either a dropout (``layers["true_counts"] > 0``) or a biological zero
(true count 0). Each model gives every zero a dropout probability (``1 − p_bio`` for the
ZINB models); scored over the zeros, dropouts as positives:

- ``auc``: ROC AUC of the probability (ranking; the quantity MaskClass's masking and
  L_bio weights use);
- ``accuracy``, ``f1``, ``precision``, ``fpr`` of the call "dropout" at probability > 0.5
  (the threshold of cnnImpute and scGACL);
- ``brier``: mean squared error of the probability; ``ece``: expected calibration error
  over :data:`CAL_BINS` equal-width bins; and the calibration curve itself (mean
  probability vs share of dropouts per bin, ``results/dropout_models_calibration.csv``);
- mean probability at biological zeros and at dropouts; fit seconds (shared machine).

Models: ``zinb-paper`` (MaskClass §2.6 as published), the same fit with the posterior
``Pr(t = 0 | c = 0)`` in place of the paper's formula (an ablation), ``zinb-ml``
(:mod:`scfill.dropout.zinb_mle`, one model over all cells), ``zinb-ml`` without dispersion
shrinkage and fitted per true group (ablations), and the Gamma–Normal mixture (scImpute
variant, ``log10_cpm``, true groups: the most favourable grouping) alone and with its
zeros scored by ``zinb-ml`` fitted in the same groups (``gamma_normal+zinb-ml``, the
``gamma_normal-zinb`` model of :mod:`scfill.dropout.gamma_normal_zinb`).

Writes ``results/dropout_models.csv``, ``results/dropout_models_calibration.csv``,
``results/dropout_models_calibration.png`` and ``results/dropout_models.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, write_report

RESULTS = Path(__file__).parent / "results"
SCORES_CSV = RESULTS / "dropout_models.csv"
CALIBRATION_CSV = RESULTS / "dropout_models_calibration.csv"
FIGURE = RESULTS / "dropout_models_calibration.png"
REPORT = RESULTS / "dropout_models.md"
PRESETS = ("maskclass-equal", "maskclass-unequal", "maskclass-rare", "maskclass-batch",
           "scgacl-1", "scgacl-4", "scgacl-8", "cnnimpute")
#: Table 2 size of the MaskClass presets; the others use their preset's size.
MASKCLASS_CELLS = 5000
THRESHOLD = 0.5
CAL_BINS = 10
MODELS = ("zinb-paper", "zinb-paper, posterior Pr(t=0|c=0)", "zinb-ml",
          "zinb-ml, no shrinkage", "zinb-ml, per true group", "gamma_normal (true groups)",
          "gamma_normal+zinb-ml (true groups)")


def load(preset: str, seed: int):
    """Observed counts (CSR float32), library sizes, true groups, dropout flag of each zero."""
    import scfill
    from scfill.preprocess import library_size, nonempty

    n_cells = MASKCLASS_CELLS if preset.startswith("maskclass") else None
    adata = scfill.simulate(preset=preset, n_cells=n_cells, seed=seed)
    cells, genes = nonempty(adata.X)
    adata = adata[cells][:, genes]
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    zero = _zero_mask(counts)
    truth = sp.csr_matrix(adata.layers["true_counts"])
    is_dropout = np.asarray(truth[zero.nonzero()]).ravel() > 0
    groups = np.asarray(adata.obs["group"].cat.codes, dtype=np.int64)
    return counts, library_size(counts), groups, zero, is_dropout


def _zero_mask(counts: sp.csr_matrix) -> sp.csr_matrix:
    """CSR of True at every zero count."""
    dense = counts.toarray() == 0
    return sp.csr_matrix(dense)


def at_zeros(probability: sp.csr_matrix, zero: sp.csr_matrix) -> np.ndarray:
    """The probability at each zero, in the order of ``zero.nonzero()``."""
    rows, cols = zero.nonzero()
    return np.asarray(probability[rows, cols]).ravel()


def scores(p: np.ndarray, is_dropout: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """Ranking, threshold and calibration scores, and the calibration curve."""
    from sklearn.metrics import roc_auc_score

    from scfill.evaluate.metrics import binary_scores

    called = p > THRESHOLD
    tp = int(np.sum(called & is_dropout))
    fp = int(np.sum(called & ~is_dropout))
    fn = int(np.sum(~called & is_dropout))
    tn = int(np.sum(~called & ~is_dropout))
    binary = binary_scores(tp=tp, fp=fp, fn=fn, tn=tn)
    bins = np.minimum((p * CAL_BINS).astype(int), CAL_BINS - 1)
    count = np.bincount(bins, minlength=CAL_BINS)
    mean_p = np.bincount(bins, p, minlength=CAL_BINS) / np.maximum(count, 1)
    share = np.bincount(bins, is_dropout, minlength=CAL_BINS) / np.maximum(count, 1)
    curve = pd.DataFrame({"bin": np.arange(CAL_BINS), "n": count, "mean_probability": mean_p,
                          "dropout_share": share})
    row = {"auc": roc_auc_score(is_dropout, p), "accuracy": binary["accuracy"],
           "f1": binary["f1"], "precision": binary["precision"], "fpr": binary["fpr"],
           "brier": float(np.mean((p - is_dropout) ** 2)),
           "ece": float(np.sum(count * np.abs(mean_p - share)) / p.size),
           "mean_p_biozero": float(p[~is_dropout].mean()),
           "mean_p_dropout": float(p[is_dropout].mean())}
    return row, curve


def paper_posterior(counts: sp.csr_matrix, params: dict) -> sp.csr_matrix:
    """The paper's fitted ZINB with ``1 − Pr(t=0|c=0) = δ(1−f0)/(δ + (1−δ)f0)``, adjusted."""
    from scfill.dropout._shared import fill_zeros
    from scfill.dropout.zinb import SPARSITY_WEIGHT

    a, b = params["dropout_curve"]

    def block(rows):
        mu = np.maximum(params["size_factor"][rows, None] * params["mean"][None, :], 1e-300)
        phi = params["dispersion"][None, :]
        f0 = np.exp(-np.log1p(phi * mu) / phi)
        delta = expit(a + b * np.log(mu))
        p_bio = f0 / (delta + (1 - delta) * f0)
        return 1 - p_bio * (1 - SPARSITY_WEIGHT * params["sparsity"][rows, None])

    return fill_zeros(counts, block)


def run_models(counts, lib, groups) -> dict[str, tuple[sp.csr_matrix, float]]:
    """Each model's dropout probabilities (CSR at zeros) and fit seconds."""
    from scfill.dropout import estimate, zinb_mle

    out = {}

    def timed(name, func):
        start = time.perf_counter()
        result = func()
        out[name] = (result, time.perf_counter() - start)
        return result

    paper = timed("zinb-paper", lambda: estimate("zinb-paper", counts, lib))
    out["zinb-paper"] = (paper.matrix(), out["zinb-paper"][1])
    timed("zinb-paper, posterior Pr(t=0|c=0)", lambda: paper_posterior(counts, paper.params))
    timed("zinb-ml", lambda: estimate("zinb-ml", counts, lib).matrix())
    timed("zinb-ml, no shrinkage", lambda: zinb_mle.dropout_probability(
        counts, lib, shrink_dispersion=False).matrix())
    timed("zinb-ml, per true group", lambda: zinb_mle.dropout_probability(
        counts, lib, labels=groups, by_group=True).matrix())
    timed("gamma_normal (true groups)",
          lambda: estimate("gamma_normal", counts, lib, labels=groups).matrix())
    timed("gamma_normal+zinb-ml (true groups)",
          lambda: estimate("gamma_normal-zinb", counts, lib, labels=groups).matrix())
    return out


def measure_presets(presets: list[str], seeds: list[int]) -> None:
    """Score every model on every preset and seed; rows appended to the CSVs."""
    for seed in seeds:
        for preset in presets:
            counts, lib, groups, zero, is_dropout = load(preset, seed)
            for model, (prob, seconds) in run_models(counts, lib, groups).items():
                row, curve = scores(at_zeros(prob, zero), is_dropout)
                row = {"preset": preset, "seed": seed, "model": model,
                       "cells": counts.shape[0], "genes": counts.shape[1],
                       "dropout_share": float(is_dropout.mean()), **row,
                       "seconds": round(seconds, 2)}
                print({k: (round(v, 3) if isinstance(v, float) else v)
                       for k, v in row.items()}, flush=True)
                _append(SCORES_CSV, pd.DataFrame([row]))
                _append(CALIBRATION_CSV, curve.assign(preset=preset, seed=seed, model=model))


def _append(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


def figure(curves: pd.DataFrame, presets: list[str]) -> None:
    """Calibration curves: one panel per preset, one line per model (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("zinb-paper", "zinb-ml", "gamma_normal (true groups)",
             "gamma_normal+zinb-ml (true groups)")
    n_cols = 4
    n_rows = -(-len(presets) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 3.2 * n_rows),
                             squeeze=False, sharex=True, sharey=True)
    first_seed = curves["seed"].min()
    for ax, preset in zip(axes.ravel(), presets, strict=False):
        part = curves[(curves["preset"] == preset) & (curves["seed"] == first_seed)]
        for model in shown:
            c = part[(part["model"] == model) & (part["n"] > 0)]
            ax.plot(c["mean_probability"], c["dropout_share"], marker="o", ms=3, label=model)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_title(preset, fontsize=9)
        ax.set_xlabel("predicted dropout probability", fontsize=8)
        ax.set_ylabel("share of zeros that are dropouts", fontsize=8)
    for ax in axes.ravel()[len(presets):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=110)


def _cell(text: str) -> str:
    """A markdown table cell (``|`` escaped)."""
    return text.replace("|", "\\|")


def report() -> None:
    """``results/dropout_models.md`` from the CSVs (keeps the hand-written findings)."""
    table = pd.read_csv(SCORES_CSV)
    presets = [p for p in PRESETS if p in set(table["preset"])]
    figure(pd.read_csv(CALIBRATION_CSV), presets)
    seeds = sorted(set(table["seed"]))
    lines = ["# Dropout models on the simulator's ground truth", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/dropout_models.py "
             f"--seeds {' '.join(map(str, seeds))}` then `report`. Machine: {machine()}; "
             f"load average when written {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
             "(shared: seconds include contention; compare them within a preset).", "",
             "Scored over the observed zeros; a dropout (true count > 0) is a positive. "
             "AUC ranks the probabilities; accuracy, F1 and FPR call a dropout at > 0.5; "
             f"Brier and ECE ({CAL_BINS} bins) measure calibration. MaskClass presets at "
             "N = 5,000 cells (Table 2), the others at their preset size. Figure: "
             "`dropout_models_calibration.png` (seed "
             f"{min(seeds)}).", "", "![calibration](dropout_models_calibration.png)", ""]
    cols = ["auc", "accuracy", "f1", "fpr", "brier", "ece", "mean_p_biozero",
            "mean_p_dropout", "seconds"]
    for preset in presets:
        part = table[table["preset"] == preset]
        shape = part.iloc[0]
        lines += [f"## {preset}: {shape['cells']} cells × {shape['genes']} genes", "",
                  f"Dropouts among the observed zeros: {part['dropout_share'].mean():.3f} "
                  f"(seeds {sorted(set(part['seed']))}; mean over seeds below).", "",
                  "| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for model in MODELS:
            rows = part[part["model"] == model]
            if rows.empty:
                continue
            lines.append(f"| {_cell(model)} | "
                         + " | ".join(f"{rows[c].mean():.3f}" for c in cols) + " |")
        lines.append("")
    summary = table.groupby("model")[["auc", "brier", "ece", "f1", "accuracy"]].mean()
    lines += ["## Mean over presets and seeds", "", "| model | AUC | Brier | ECE | F1 | "
              "accuracy |", "|---|---:|---:|---:|---:|---:|"]
    for model in MODELS:
        if model in summary.index:
            r = summary.loc[model]
            lines.append(f"| {_cell(model)} | {r['auc']:.3f} | {r['brier']:.3f} | {r['ece']:.3f} | "
                         f"{r['f1']:.3f} | {r['accuracy']:.3f} |")
    lines.append("")
    write_report(REPORT, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="measure", choices=("measure", "report"))
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.command == "measure":
        measure_presets(args.presets, args.seeds)
    report()


if __name__ == "__main__":
    main()
