"""MaskClass against no imputation, kNN and MAGIC on the paper's simulations (Table 2), and
its time and memory from 5k to 100k cells.

Usage::

    python benchmarks/maskclass.py accuracy [--seeds 0 1 2] [--epochs 300]
        [--presets maskclass-equal ...] [--methods none knn magic maskclass] [--csv PATH]
    python benchmarks/maskclass.py scaling [--cells 5000 20000 100000] [--epochs 5 5 2]
    python benchmarks/maskclass.py biozero [--seeds 0]
    python benchmarks/maskclass.py report

``accuracy`` follows Table 2: each preset simulated at N = 5,000 cells (1,100 genes) with
the seed, every method run through ``scfill.evaluate``'s ``truth`` protocol (the method sees
only the observed counts; true counts normalised with their own library sizes). Scores are
converted from the common space (ln) to the paper's log2 median-scaled space: both
matrices are ``log_b(1 + c·m/l)`` with the same ``m``, so an MSE in log2 is the MSE in ln
divided by ``ln(2)²``. Rows are appended to ``results/maskclass_accuracy.csv`` as they are
produced (a run can be resumed: finished rows are skipped). ``scaling`` runs
``scfill.impute(method="maskclass")`` in a fresh process on a simulated ``maskclass-equal``
h5ad (read included) and records wall time, training time per epoch and peak RSS to
``results/maskclass_scaling.csv``. ``report`` writes ``results/maskclass.md`` (keeping its
hand-written ``## Findings`` section).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure

RESULTS = Path(__file__).parent / "results"
ACCURACY_CSV = RESULTS / "maskclass_accuracy.csv"
SCALING_CSV = RESULTS / "maskclass_scaling.csv"
BIOZERO_CSV = RESULTS / "maskclass_biozero.csv"
REPORT = RESULTS / "maskclass.md"
#: Hand-written section of the report that ``report`` keeps when it rewrites the tables.
FINDINGS = "## Findings"
PRESETS = ("maskclass-equal", "maskclass-unequal", "maskclass-rare", "maskclass-batch")
N_CELLS = 5000
METRICS = ("mse", "dropout_mse", "biozero_mse", "runtime_s", "ari")
#: ln → log2 for squared errors.
LOG2_SQUARED = np.log(2.0) ** 2
#: The paper's Table 2 (overall MSE, dropout-MSE), log2 space, for the same presets.
PAPER = {
    "none": [(6.955, 14.009), (6.799, 14.128), (7.596, 15.234), (6.857, 14.399)],
    "magic": [(4.372, 6.198), (4.083, 5.584), (4.454, 5.965), (3.932, 5.263)],
    "DCA": [(1.755, 2.715), (1.498, 2.212), (1.712, 2.602), (1.376, 2.005)],
    "maskclass": [(0.728, 1.417), (0.630, 1.254), (0.688, 1.323), (0.788, 1.600)],
}


def accuracy(seeds: list[int], epochs: int, presets: list[str], methods: list[str],
             csv: Path = ACCURACY_CSV) -> None:
    """Table 2: each preset × seed × method, rows appended to ``csv``."""
    import torch

    import scfill
    from scfill.dropout import ZINB_DEFAULT
    from scfill.evaluate.run import evaluate_method

    torch.set_num_threads(1)
    done = _read_accuracy(csv) if csv.exists() else pd.DataFrame(
        columns=["preset", "seed", "method", "epochs", "dropout_model"])
    for seed in seeds:
        for preset in presets:
            adata = None
            for method in methods:
                method_epochs = epochs if method.startswith("maskclass") else 0
                zinb = ZINB_DEFAULT if method.startswith("maskclass") else ""
                finished = ((done["preset"] == preset) & (done["seed"] == seed)
                            & (done["method"] == method) & (done["epochs"] == method_epochs)
                            & (done["dropout_model"] == zinb))
                if finished.any():
                    continue
                if adata is None:
                    adata = scfill.simulate(preset=preset, n_cells=N_CELLS, seed=seed)
                name, _, variant = method.partition(":")
                params = {"epochs": epochs, **({"variant": variant} if variant else {})} \
                    if name == "maskclass" else None
                start = time.perf_counter()
                rows = evaluate_method(adata, name, protocol="truth", seed=seed,
                                       params=params, dataset=preset)
                scores = dict(zip(rows["metric"], rows["value"], strict=True))
                row = {"preset": preset, "seed": seed, "method": method,
                       "epochs": method_epochs, "dropout_model": zinb,
                       **{m: scores.get(m, np.nan) for m in METRICS},
                       "wall_s": round(time.perf_counter() - start, 2)}
                for key in ("mse", "dropout_mse", "biozero_mse"):
                    row[key] /= LOG2_SQUARED
                print(row, flush=True)
                frame = pd.DataFrame([row])
                if csv.exists():
                    frame = pd.concat([_read_accuracy(csv), frame], ignore_index=True)
                frame.to_csv(csv, index=False)
                done = frame


def _read_accuracy(csv: Path = ACCURACY_CSV) -> pd.DataFrame:
    """An accuracy CSV; rows from before the ``dropout_model`` column ran the paper's ZINB."""
    acc = pd.read_csv(csv)
    if "dropout_model" not in acc:
        acc["dropout_model"] = np.where(acc["method"].str.startswith("maskclass"),
                                        "zinb-paper", "")
    acc["dropout_model"] = acc["dropout_model"].fillna("")
    return acc


def biozero_check(seeds: list[int], presets: list[str]) -> None:
    """How well the ZINB p_bio separates true biological zeros from dropouts."""
    from sklearn.metrics import roc_auc_score

    import scfill
    from scfill.dropout.zinb import biozero_probability
    from scfill.preprocess import library_size

    rows = []
    for seed in seeds:
        for preset in presets:
            adata = scfill.simulate(preset=preset, n_cells=N_CELLS, seed=seed)
            counts = adata.X.tocsr()
            keep = counts.getnnz(axis=0) > 0
            counts, truth = counts[:, keep], adata.layers["true_counts"].tocsr()[:, keep]
            zero = counts.toarray() == 0
            p_bio = biozero_probability(counts, library_size(counts)).toarray()[zero]
            is_biozero = truth.toarray()[zero] == 0
            rows.append({"preset": preset, "seed": seed,
                         "biozero_share_of_zeros": is_biozero.mean(),
                         "mean_p_bio_at_biozeros": p_bio[is_biozero].mean(),
                         "mean_p_bio_at_dropouts": p_bio[~is_biozero].mean(),
                         "auc": roc_auc_score(is_biozero, p_bio)})
            print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(BIOZERO_CSV, index=False)


def impute_file(path: str, epochs: int) -> dict:
    """The measured job: read an h5ad and impute it with MaskClass (1 torch thread)."""
    import torch

    import scfill

    torch.set_num_threads(1)
    adata = scfill.read(path)
    start = time.perf_counter()
    scfill.impute(adata, method="maskclass", seed=0, device="cpu", params={"epochs": epochs})
    info = adata.uns["scfill"]["info"]
    return {"impute_s": time.perf_counter() - start, "train_s": info["train_seconds"],
            "s_per_epoch": info["seconds_per_epoch"],
            "cached": info["scaled_matrix_cached"]}


def scaling(cells: list[int], epochs: list[int]) -> None:
    """Wall time and peak memory of reading + imputing ``cells`` cells."""
    import scfill

    for n_cells, n_epochs in zip(cells, epochs, strict=True):
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "sim.h5ad")
            adata = scfill.simulate(preset="maskclass-equal", n_cells=n_cells, seed=0)
            for key in list(adata.layers):
                del adata.layers[key]
            scfill.write(adata, path)
            del adata
            seconds, peak_mib, result = measure(impute_file, path, n_epochs)
        overhead = result["impute_s"] - result["train_s"]
        row = {"cells": n_cells, "genes": 1100, "epochs": n_epochs,
               "total_s": round(seconds, 1), "impute_s": round(result["impute_s"], 1),
               "s_per_epoch": result["s_per_epoch"],
               "projected_300_epochs_min": round((overhead + 300 * result["s_per_epoch"])
                                                 / 60, 1),
               "peak_rss_mib": round(peak_mib), "cached": result["cached"]}
        print(row, flush=True)
        pd.DataFrame([row]).to_csv(SCALING_CSV, mode="a", header=not SCALING_CSV.exists(),
                                   index=False)


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def report() -> None:
    """Markdown tables from the CSVs."""
    lines = ["# MaskClass benchmark", "",
             f"Machine: {machine()} (shared with other developers; timings are noisy).", ""]
    if ACCURACY_CSV.exists():
        acc = _read_accuracy()
        acc["method"] = np.where(acc["dropout_model"] != "",
                                 acc["method"] + " [" + acc["dropout_model"] + "]",
                                 acc["method"])
        # only simulations where MaskClass (balanced, either ZINB model) finished
        finished = acc.loc[acc["method"].str.startswith("maskclass [")
                           & ~acc["method"].str.contains(":"), ["preset", "seed"]]
        acc = acc.merge(finished.drop_duplicates(), on=["preset", "seed"])
        presets = [p for p in PRESETS if p in set(acc["preset"])]
        lines += _accuracy_tables(acc, presets)
    if BIOZERO_CSV.exists():
        lines += ["## ZINB biozero probabilities on the same simulations", "",
                  "Command: `nice -n 10 python benchmarks/maskclass.py biozero`. Over the "
                  "observed zeros: the share that are biological zeros (true count 0), the "
                  "mean p_bio at biological zeros and at dropouts, and the ROC AUC of p_bio "
                  "for telling them apart (p_bio drives both the masking of zeros and "
                  "L_bio).", "", pd.read_csv(BIOZERO_CSV).to_markdown(index=False,
                                                                      floatfmt=".3f"), ""]
    if SCALING_CSV.exists():
        scale = pd.read_csv(SCALING_CSV)
        lines += ["## Time and memory", "",
                  "Command: `nice -n 10 python benchmarks/maskclass.py scaling` (arguments "
                  "below). `scfill.impute(method=\"maskclass\")` in a fresh process, 1 torch "
                  "thread, on a `maskclass-equal` simulation (1,100 genes) read from h5ad; "
                  "peak RSS is the whole process (Python, torch and the data included). The "
                  "300-epoch projection is the measured non-training time plus 300 × the "
                  "measured seconds per epoch.", "",
                  scale.to_markdown(index=False), ""]
    previous = REPORT.read_text() if REPORT.exists() else ""
    findings = previous[previous.find(FINDINGS):] if FINDINGS in previous else ""
    REPORT.write_text("\n".join(lines) + ("\n" + findings if findings else ""))
    print(REPORT.read_text())


def _accuracy_tables(acc: pd.DataFrame, presets: list[str]) -> list[str]:
    seeds = sorted(set(acc["seed"]))
    epochs = sorted(set(acc.loc[acc["method"].str.startswith("maskclass"), "epochs"]))
    lines = ["## Denoising accuracy (paper Table 2 protocol)", "",
             f"Command: `nice -n 10 python benchmarks/maskclass.py accuracy --seeds "
             f"{' '.join(map(str, seeds))} --epochs {' '.join(map(str, epochs))}` then "
             "`report`. N = 5,000 cells × 1,100 genes per preset and seed "
             f"(seeds {seeds}: simulation and method seed); MaskClass balanced (γ = 1), "
             "batch 32, Adam 1e-4, epochs as in the table. Scores by `scfill.evaluate` "
             "(`truth` protocol), in the paper's log2 median-scaled space. Mean ± sd over "
             "seeds.", "",
             "Seeds scored (simulations where MaskClass balanced finished): " + "; ".join(
                 f"{p} {sorted(set(acc.loc[acc['preset'] == p, 'seed']))}" for p in presets)
             + ".", ""]
    for metric, title in (("mse", "Overall MSE"), ("dropout_mse", "Dropout-MSE (observed 0, "
                          "true > 0)"), ("biozero_mse", "Biozero-MSE (true 0)"),
                          ("ari", "ARI of k-means (true k) on PCA of the imputed data")):
        lines += [f"### {title}", "", "| method | epochs | " + " | ".join(presets) + " |",
                  "|---|---|" + "---|" * len(presets)]
        for (method, ep), part in acc.groupby(["method", "epochs"], sort=False):
            cells = [_cell(part.loc[part["preset"] == p, metric]) for p in presets]
            lines.append(f"| {method} | {ep or ''} | " + " | ".join(cells) + " |")
        if metric in ("mse", "dropout_mse"):
            k = 0 if metric == "mse" else 1
            for method, values in PAPER.items():
                cells = [f"{values[PRESETS.index(p)][k]:.3f}" for p in presets]
                lines.append(f"| paper: {method} | | " + " | ".join(cells) + " |")
        lines.append("")
    base = acc[acc["method"] == "none"].set_index(["preset", "seed"])
    ratio_lines = ["### MSE relative to no imputation (same preset and seed)", "",
                   "| method | epochs | " + " | ".join(presets) + " |",
                   "|---|---|" + "---|" * len(presets)]
    for (method, ep), part in acc.groupby(["method", "epochs"], sort=False):
        part = part.set_index(["preset", "seed"])
        ratio = (part["mse"] / base["mse"].reindex(part.index)).reset_index()
        cells = [_cell(ratio.loc[ratio["preset"] == p, "mse"]) for p in presets]
        ratio_lines.append(f"| {method} | {ep or ''} | " + " | ".join(cells) + " |")
    paper = [f"{PAPER['maskclass'][PRESETS.index(p)][0] / PAPER['none'][PRESETS.index(p)][0]:.3f}"
             for p in presets]
    ratio_lines.append("| paper: maskclass | 300 | " + " | ".join(paper) + " |")
    return lines + ratio_lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    acc.add_argument("--epochs", type=int, default=300)
    acc.add_argument("--presets", nargs="+", default=list(PRESETS))
    acc.add_argument("--methods", nargs="+", default=["none", "knn", "magic", "maskclass"],
                     help="maskclass:best runs the γ = 0 variant")
    acc.add_argument("--csv", type=Path, default=ACCURACY_CSV,
                     help="append rows here (default: the committed results; another file "
                     "skips the report, e.g. for a parity rerun)")
    scale = sub.add_parser("scaling")
    scale.add_argument("--cells", type=int, nargs="+", default=[5000, 20000, 100000])
    scale.add_argument("--epochs", type=int, nargs="+", default=[5, 5, 2])
    bio = sub.add_parser("biozero")
    bio.add_argument("--seeds", type=int, nargs="+", default=[0])
    bio.add_argument("--presets", nargs="+", default=list(PRESETS))
    sub.add_parser("report")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.command == "accuracy":
        accuracy(args.seeds, args.epochs, args.presets, args.methods, args.csv)
        if args.csv != ACCURACY_CSV:
            return
    elif args.command == "biozero":
        biozero_check(args.seeds, args.presets)
    elif args.command == "scaling":
        scaling(args.cells, args.epochs)
    report()


if __name__ == "__main__":
    main()
