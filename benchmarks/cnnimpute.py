"""cnnImpute's accuracy protocol: MSE and Pearson at hidden non-zeros, beside the baselines.

The paper (Zhang et al. 2024, "cnnImpute accurately recovers missing value"): keep the genes
expressed in at least half of the cells, hide 10 % of the non-zeros, impute, and score the
hidden entries against their values; 5 random seeds. Here that is
:mod:`scfill.evaluate`'s ``mask-expressed:0.1`` protocol (scored in the common space), run
for cnnImpute with the paper's head (``flatten``) and the authors' code's head (``gap``),
and for ``none``, ``knn`` and MAGIC (when installed).

Each dataset × method runs all its repeats in one fresh process, which gives the wall time
per run and the peak resident memory (imports included).

Usage::

    python benchmarks/cnnimpute.py --datasets grun_mesc_2i_serum_4000genes \
        preset:cnnimpute --repeats 5 [--sim-cells 500] [--labels-key label] [--epochs 20]

A dataset is a file stem under ``--data`` or ``preset:NAME`` (``scfill.simulate``, a new
simulation per repeat, seeded by the repeat). Writes ``benchmarks/results/cnnimpute.md`` and
``.csv``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
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


def load(dataset: str, data_dir: str, repeat: int, sim_cells: int | None):
    """The AnnData of ``dataset`` for ``repeat`` (a fresh simulation per repeat)."""
    import anndata as ad

    import scfill

    if dataset.startswith("preset:"):
        return scfill.simulate(preset=dataset.split(":", 1)[1], seed=repeat, n_cells=sim_cells)
    return ad.read_h5ad(Path(data_dir) / f"{dataset}.h5ad")


def run_config(dataset: str, data_dir: str, method: str, params: dict, repeats: int,
               sim_cells: int | None, labels_key: str | None, threads: int) -> list[dict]:
    """All repeats of one dataset × method (runs in a fresh process)."""
    import torch

    from scfill.evaluate import evaluate_method

    torch.set_num_threads(threads)
    rows = []
    for repeat in range(repeats):
        adata = load(dataset, data_dir, repeat, sim_cells)
        frame = evaluate_method(adata, method, protocol=PROTOCOL, seed=0, repeat=repeat,
                                params=params, labels_key=labels_key, dataset=dataset,
                                device="cpu")
        rows += frame.to_dict("records")
    return rows


def summarise(results: pd.DataFrame, costs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × configuration: mean ± sd of MSE and Pearson, cost, ratios."""
    wide = results.pivot_table(index=["dataset", "config", "repeat"], columns="metric",
                               values="value").reset_index()
    stats = wide.groupby(["dataset", "config"], sort=False).agg(
        mse=("mse", "mean"), mse_sd=("mse", "std"), pearson=("pearson", "mean"),
        pearson_sd=("pearson", "std"), runs=("repeat", "count")).reset_index()
    stats = stats.merge(costs, on=["dataset", "config"])
    floor = stats[stats.config == "none"].set_index("dataset")["mse"]
    stats["mse_vs_none"] = stats["mse"] / stats["dataset"].map(floor)
    return stats


def markdown(stats: pd.DataFrame, command: str, notes: list[str]) -> str:
    """The report: one table per dataset, then the head comparison."""
    lines = ["# cnnImpute: accuracy at hidden non-zeros (paper's protocol)", "",
             f"Command: `{command}`", f"Machine: {machine()}", "",
             f"Protocol: `{PROTOCOL}` ({'; '.join(notes)}). Scores in the common space "
             "ln(1 + count · median / library size), at the hidden entries only; mean ± sd "
             "over repeats. Time: wall seconds per run (pre-clustering, dropout model, fit); "
             "peak RSS: the whole process running all repeats of that row (imports "
             "included).", ""]
    for dataset, block in stats.groupby("dataset", sort=False):
        lines += [f"## {dataset}", "",
                  "| method | MSE | Pearson | MSE / none | s per run | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for row in block.itertuples():
            lines.append(f"| {row.config} | {row.mse:.4f} ± {row.mse_sd:.4f} | "
                         f"{row.pearson:.4f} ± {row.pearson_sd:.4f} | {row.mse_vs_none:.3f} | "
                         f"{row.seconds:.1f} | {row.peak_mib:.0f} |")
        heads = block.set_index("config")
        flat, gap = "cnnimpute (flatten, paper)", "cnnimpute (gap, authors' code)"
        if flat in heads.index and gap in heads.index:
            lines += ["", f"gap / flatten: MSE {heads.mse[gap] / heads.mse[flat]:.3f}, "
                      f"Pearson {heads.pearson[gap] / heads.pearson[flat]:.3f}, time "
                      f"{heads.seconds[gap] / heads.seconds[flat]:.2f}."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--sim-cells", type=int, default=None,
                        help="cells per simulation (default: the preset's)")
    parser.add_argument("--labels-key", default=None,
                        help="obs column given to the methods as groups (default: none, "
                        "cnnImpute pre-clusters as in the paper)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="cap cnnImpute's epochs (default: the paper's 150)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cnnimpute"))
    args = parser.parse_args()

    configs = [c for c in args.configs
               if CONFIGS[c][0] != "magic" or importlib.util.find_spec("magic") is not None]
    results, costs = [], []
    for dataset in args.datasets:
        for config in configs:
            method, params = CONFIGS[config]
            if method == "cnnimpute" and args.epochs is not None:
                params = {**params, "epochs": args.epochs}
            seconds, peak, rows = measure(run_config, dataset, args.data, method, params,
                                          args.repeats, args.sim_cells, args.labels_key,
                                          args.threads)
            frame = pd.DataFrame(rows).assign(config=config)
            per_run = frame[frame.metric == "runtime_s"]["value"].mean()
            results.append(frame)
            costs.append({"dataset": dataset, "config": config, "seconds": per_run,
                          "peak_mib": peak})
            print(f"{dataset} {config}: {seconds:.0f} s, peak {peak:.0f} MiB", flush=True)
    results = pd.concat(results, ignore_index=True)
    stats = summarise(results, pd.DataFrame(costs))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    groups = f"obs[{args.labels_key!r}]" if args.labels_key else "pre-clustering"
    notes = [f"{args.repeats} repeats", f"cnnImpute's groups: {groups}"]
    if args.epochs is not None:
        notes.append(f"cnnImpute epochs capped at {args.epochs} (paper: 150)")
    if args.sim_cells:
        notes.append(f"simulations with {args.sim_cells} cells")
    command = "python benchmarks/cnnimpute.py " + " ".join(sys.argv[1:])
    out.with_suffix(".md").write_text(markdown(stats, command, notes))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
