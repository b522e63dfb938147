"""cnnImpute's accuracy protocol: MSE and Pearson at hidden non-zeros, beside the baselines.

The paper (Zhang et al. 2024, "cnnImpute accurately recovers missing value"): keep the genes
expressed in at least half of the cells, hide 10 % of the non-zeros, impute, and score the
hidden entries against their values; 5 random seeds. Here that is
:mod:`scfill.evaluate`'s ``mask-expressed:0.1`` protocol (scored in the common space), run
for cnnImpute with the paper's head (``flatten``) and the authors' code's head (``gap``),
and for ``none``, ``knn`` and MAGIC (when installed).

Each dataset × configuration runs all its repeats in one fresh process, which gives the
wall time per run and the peak resident memory (imports included), and is recorded in its
own file under ``<out>/runs/``: re-running skips finished records (``--force`` redoes
them), so the grid can be split into parallel streams over datasets and resumed. A
dataset the protocol cannot run on (no gene expressed in half of the cells) is recorded
with the error. ``--report-only`` writes the report from the records.

Usage::

    python benchmarks/cnnimpute.py --datasets all --repeats 5 --sim-cells 500
    python benchmarks/cnnimpute.py --datasets grun_mesc_2i_serum_4000genes preset:cnnimpute
    python benchmarks/cnnimpute.py --report-only

A dataset is a file stem under ``--data``, ``preset:NAME`` (``scfill.simulate``, a new
simulation per repeat, seeded by the repeat) or ``all`` (every file plus
``preset:cnnimpute``). Writes ``<out>.md`` and ``<out>.csv`` (default
``benchmarks/results/cnnimpute``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure

PROTOCOL = "mask-expressed:0.1"
#: Label of each compared configuration → (method, parameters).
CONFIGS = {
    "none": ("none", {}),
    "knn": ("knn", {}),
    "magic": ("magic", {}),
    "cnnimpute (flatten, paper)": ("cnnimpute", {"head": "flatten"}),
    "cnnimpute (gap, authors' code)": ("cnnimpute", {"head": "gap"}),
    "cnnimpute (flatten, per cluster)": ("cnnimpute", {"head": "flatten", "per_cluster": True}),
}
#: Configurations run unless ``--configs`` says otherwise.
DEFAULT_CONFIGS = list(CONFIGS)[:5]
FLATTEN, GAP = "cnnimpute (flatten, paper)", "cnnimpute (gap, authors' code)"


def load(dataset: str, data_dir: str, repeat: int, sim_cells: int | None,
         max_genes: int | None):
    """The AnnData of ``dataset`` for ``repeat`` (a fresh simulation per repeat).

    With ``max_genes``, a dataset whose protocol genes (expressed in at least half of the
    cells) outnumber it keeps only those genes' ``max_genes`` most variable ones; the
    others are untouched. Every kept gene stays in the protocol.
    """
    import anndata as ad

    import scfill
    from scfill.bench.datasets import subsample
    from scfill.evaluate.masking import expressed_genes

    if dataset.startswith("preset:"):
        adata = scfill.simulate(preset=dataset.split(":", 1)[1], seed=repeat,
                                n_cells=sim_cells)
    else:
        adata = ad.read_h5ad(Path(data_dir) / f"{dataset}.h5ad")
    genes = expressed_genes(adata.X)
    if max_genes is None or genes.size <= max_genes:
        return adata
    return subsample(adata[:, genes], max_cells=None, max_genes=max_genes)


def run_config(dataset: str, data_dir: str, method: str, params: dict, repeats: int,
               sim_cells: int | None, max_genes: int | None, labels_key: str | None,
               threads: int) -> list[dict]:
    """All repeats of one dataset × method (runs in a fresh process).

    Besides the scores, each repeat records the epochs each cnnImpute model trained
    (``model_epochs_mean``, ``model_epochs_max``) and the number of models (``models``),
    read from the Trainer the method calls.
    """
    import torch

    import scfill.methods.cnnimpute.model as cnnimpute
    from scfill.evaluate import evaluate_method

    torch.set_num_threads(threads)
    trained: list[int] = []

    class CountingTrainer(cnnimpute.Trainer):
        def fit(self, phases):
            history = super().fit(phases)
            trained.append(history["train"].epochs)
            return history

    cnnimpute.Trainer = CountingTrainer
    rows = []
    for repeat in range(repeats):
        adata = load(dataset, data_dir, repeat, sim_cells, max_genes)
        trained.clear()
        frame = evaluate_method(adata, method, protocol=PROTOCOL, seed=0, repeat=repeat,
                                params=params, labels_key=labels_key, dataset=dataset,
                                device="cpu")
        records = frame.to_dict("records")
        if trained:
            base = records[0]
            records += [{**base, "metric": "models", "value": float(len(trained))},
                        {**base, "metric": "model_epochs_mean",
                         "value": sum(trained) / len(trained)},
                        {**base, "metric": "model_epochs_max", "value": float(max(trained))}]
        rows += records
    return rows


def record_path(out: Path, dataset: str, config: str) -> Path:
    """The record file of one dataset × configuration."""
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{dataset}__{config}")
    return out / "runs" / f"{slug}.csv"


def run_grid(args: argparse.Namespace, out: Path, command: str) -> None:
    """Run every dataset × configuration without a record (all of them with ``--force``)."""
    from scfill.errors import InputError

    configs = [c for c in args.configs
               if CONFIGS[c][0] != "magic" or importlib.util.find_spec("magic") is not None]
    settings = json.dumps({"repeats": args.repeats, "epochs": args.epochs,
                           "sim_cells": args.sim_cells, "max_genes": args.max_genes,
                           "labels_key": args.labels_key,
                           "threads": args.threads})
    for dataset in expand(args.datasets, args.data):
        for config in configs:
            path = record_path(out, dataset, config)
            if path.exists() and not args.force:
                continue
            method, params = CONFIGS[config]
            if method == "cnnimpute" and args.epochs is not None:
                params = {**params, "epochs": args.epochs}
            base = {"dataset": dataset, "config": config, "settings": settings,
                    "command": command}
            try:
                seconds, peak, rows = measure(run_config, dataset, args.data, method, params,
                                              args.repeats, args.sim_cells, args.max_genes,
                                              args.labels_key, args.threads)
            except InputError as error:
                frame = pd.DataFrame([{**base, "error": str(error).splitlines()[0]}])
                print(f"{dataset} {config}: cannot run: {error}", flush=True)
            else:
                frame = pd.DataFrame(rows).assign(**base, total_s=seconds, peak_mib=peak)
                print(f"{dataset} {config}: {seconds:.0f} s, peak {peak:.0f} MiB", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            frame.to_csv(partial, index=False)
            partial.replace(path)


def expand(datasets: list[str], data_dir: str) -> list[str]:
    """Dataset names, with ``all`` replaced by every file stem in ``data_dir`` and the preset."""
    names: list[str] = []
    for name in datasets:
        if name == "all":
            names += sorted(p.stem for p in Path(data_dir).glob("*.h5ad"))
            names.append("preset:cnnimpute")
        else:
            names.append(name)
    return names


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × configuration: mean ± sd of the scores, cost, ratio to none."""
    wide = results.pivot_table(index=["dataset", "config", "repeat"], columns="metric",
                          values="value").reset_index()
    for column in ("model_epochs_mean", "model_epochs_max", "models"):
        if column not in wide:
            wide[column] = float("nan")
    stats = wide.groupby(["dataset", "config"], sort=False).agg(
        mse=("mse", "mean"), mse_sd=("mse", "std"), pearson=("pearson", "mean"),
        pearson_sd=("pearson", "std"), seconds=("runtime_s", "mean"), runs=("repeat", "count"),
        models=("models", "mean"), epochs=("model_epochs_mean", "mean"),
        epochs_max=("model_epochs_max", "max")).reset_index()
    peaks = results.groupby(["dataset", "config"])["peak_mib"].max().rename("peak_mib")
    stats = stats.merge(peaks.reset_index(), on=["dataset", "config"])
    floor = stats[stats.config == "none"].set_index("dataset")["mse"]
    stats["mse_vs_none"] = stats["mse"] / stats["dataset"].map(floor)
    return stats


def markdown(stats: pd.DataFrame, errors: pd.DataFrame, commands: list[str],
             notes: list[str]) -> str:
    """The report: an overview across datasets, then one table per dataset."""
    lines = ["# cnnImpute: accuracy at hidden non-zeros (paper's protocol)", "",
             "Commands (the report, then the runs of its records):", "",
             *[f"    {command}" for command in dict.fromkeys(commands)], "",
             f"Machine: {machine()}", "",
             f"Protocol: `{PROTOCOL}` ({'; '.join(notes)}). Scores in the common space "
             "ln(1 + count · median / library size), at the hidden entries only; mean ± sd "
             "over repeats. Time: the method's wall seconds per run (pre-clustering, "
             "dropout model, fit, combine); peak RSS: the whole process running all "
             "repeats of that row (imports included); epochs: mean over cnnImpute's models "
             "(maximum in brackets). Each command above may have run beside the others as a "
             "parallel stream sharing the machine, so times compare only roughly.", ""]
    lines += overview(stats)
    if not errors.empty:
        lines += ["## Not run", "", "| dataset | configuration | why |", "|---|---|---|"]
        lines += [f"| {row.dataset} | {row.config} | {row.error} |"
                  for row in errors.itertuples()]
        lines.append("")
    for dataset, block in stats.groupby("dataset", sort=False):
        lines += [f"## {dataset}", "",
                  "| method | MSE | Pearson | MSE / none | s per run | peak RSS MiB | models "
                  "| epochs |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in block.itertuples():
            cnn = row.config.startswith("cnnimpute")
            models = f"{row.models:.0f}" if cnn else ""
            epochs = f"{row.epochs:.1f} ({row.epochs_max:.0f})" if cnn else ""
            lines.append(f"| {row.config} | {row.mse:.4f} ± {row.mse_sd:.4f} | "
                         f"{row.pearson:.4f} ± {row.pearson_sd:.4f} | {row.mse_vs_none:.3f} | "
                         f"{row.seconds:.1f} | {row.peak_mib:.0f} | {models} | {epochs} |")
        lines.append("")
    return "\n".join(lines)


def overview(stats: pd.DataFrame) -> list[str]:
    """Across datasets: MSE / none per configuration, wins, and gap vs flatten ratios."""
    table = stats.pivot_table(index="dataset", columns="config", values="mse_vs_none",
                              sort=False)
    lines = ["## Overview", "", "MSE / no imputation per dataset (lower is better; best "
             "in bold):", "", "| dataset | " + " | ".join(table.columns) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for dataset, row in table.iterrows():
        best = row.drop("none", errors="ignore").min()
        cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in row]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines.append("| median | " + " | ".join(f"{v:.3f}" for v in table.median()) + " |")
    lines.append("")
    if FLATTEN in table and GAP in table:
        wide = stats.pivot_table(index="dataset", columns="config",
                                 values=["mse", "pearson", "seconds"], sort=False)
        mse = (wide["mse"][GAP] / wide["mse"][FLATTEN]).dropna()
        pearson = (wide["pearson"][GAP] / wide["pearson"][FLATTEN]).dropna()
        seconds = (wide["seconds"][GAP] / wide["seconds"][FLATTEN]).dropna()
        lines += [f"Authors' head (gap) / paper's head (flatten) over {mse.size} datasets: "
                  f"MSE median {mse.median():.2f} (range {mse.min():.2f}–{mse.max():.2f}), "
                  f"Pearson median {pearson.median():.2f}, time median "
                  f"{seconds.median():.2f}; gap has the lower MSE on "
                  f"{int((mse < 1).sum())} of {mse.size}.", ""]
    return lines


def report(out: Path, command: str) -> None:
    """Write ``<out>.csv`` (every record's rows) and ``<out>.md`` from the records."""
    frames = [pd.read_csv(path) for path in sorted((out / "runs").glob("*.csv"))]
    if not frames:
        raise SystemExit(f"no records under {out / 'runs'}")
    records = pd.concat(frames, ignore_index=True)
    order = {name: i for i, name in enumerate(CONFIGS)}
    records = records.sort_values(["dataset", "config"], key=lambda c: c.map(order)
                                  if c.name == "config" else c, kind="stable")
    errors = records[records["error"].notna()] if "error" in records else records.iloc[:0]
    results = records.drop(errors.index).drop(columns=["error"], errors="ignore")
    results.drop(columns=["settings", "command"]).to_csv(out.with_suffix(".csv"), index=False)
    notes = [f"settings {s}" for s in sorted(records["settings"].unique())]
    commands = sorted(records["command"].unique())
    text = markdown(summarise(results), errors, [command, *commands], notes)
    out.with_suffix(".md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["all"])
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--sim-cells", type=int, default=None,
                        help="cells per simulation (default: the preset's)")
    parser.add_argument("--max-genes", type=int, default=None,
                        help="keep at most this many protocol genes (the most variable of "
                        "those expressed in half of the cells; default: all)")
    parser.add_argument("--labels-key", default=None,
                        help="obs column given to the methods as groups (default: none, "
                        "cnnImpute pre-clusters as in the paper)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="cap cnnImpute's epochs (default: the paper's 150)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="redo finished records")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cnnimpute"))
    args = parser.parse_args()
    out = Path(args.out)
    command = "python benchmarks/cnnimpute.py " + " ".join(sys.argv[1:])
    start = time.perf_counter()
    if not args.report_only:
        run_grid(args, out, command)
        print(f"grid: {time.perf_counter() - start:.0f} s", flush=True)
    report(out, command)


if __name__ == "__main__":
    main()
