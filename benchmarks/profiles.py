"""Accuracy guard of the training profiles: ``fast`` beside ``paper``, paired seeds.

For every dataset × method × seed, both profiles run on the same degraded data (the same
masking draw and method seed), each in its own process (one thread), through
:func:`scfill.evaluate.evaluate_method`. The table gives mean ± sd over seeds of each
profile and of the paired difference (fast − paper), and a verdict: ``fast`` is *within
noise* of ``paper`` when its mean is no worse than the paper's by more than the paper's own
seed-to-seed standard deviation.

Usage::

    python benchmarks/profiles.py run [--methods maskclass,cnnimpute] [--seeds 0 1 2]
        [--cells 1000] [--genes 1000] [--protocol mask-nonzero:0.1] [--datasets NAME ...]
    python benchmarks/profiles.py report [--out FOLDER ...] [--name profiles]

``run`` keeps one JSON record per run under ``--out`` (a re-run skips finished ones);
``report`` writes ``benchmarks/results/NAME.md`` and ``NAME.csv`` (default ``profiles``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
DATA = HERE.parent.parent / "shared" / "data"
#: Simulator presets and real datasets of the guard (real ones subsampled to ``--cells``).
DATASETS = ("preset:maskclass-equal", "preset:cnnimpute",
            "cellbench_sc_10x_3cl_subset", "pbmc68k_reduced_reconstructed_counts",
            "baron_human_pancreas_1000hvg")
PROFILES = ("paper", "fast")
#: Metrics reported, and whether higher is better.
METRICS = {"mse": False, "pearson": True, "runtime_s": False}


def _source(name: str) -> str:
    return name if name.startswith("preset:") else str(DATA / f"{name}.h5ad")


def prepare(out: Path, cells: int, genes: int, datasets: list[str]) -> dict[str, Path]:
    """Each dataset as the methods see it (subsampled once, seed 0)."""
    from scfill.bench.datasets import prepare_dataset, resolve_datasets

    folder = out / "datasets"
    return {source.name: prepare_dataset(source, folder, max_cells=cells, max_genes=genes)
            for source in resolve_datasets([_source(d) for d in datasets])}


def run(args: argparse.Namespace) -> None:
    from scfill.bench.isolate import run_isolated

    out = Path(args.out[0])
    paths = prepare(out, args.cells, args.genes, args.datasets)
    for sub in ("runs", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for method in args.methods.split(","):
        for name, path in paths.items():
            for seed in args.seeds:
                for profile in args.profiles:
                    key = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}__{method}__{profile}__{seed}")
                    record = out / "runs" / f"{key}.json"
                    if record.exists():
                        continue
                    outcome = run_isolated(
                        "scfill.bench.runner:evaluate_job",
                        {"path": str(path), "method": method, "protocol": args.protocol,
                         "repeat": 0, "seed": seed, "params": {"profile": profile},
                         "dataset": name, "device": "cpu"},
                        timeout_s=args.timeout, threads=1, log_path=out / "logs" / f"{key}.log")
                    rows = outcome.result if outcome.status == "ok" else []
                    record.write_text(json.dumps({
                        "dataset": name, "method": method, "profile": profile, "seed": seed,
                        "cells": args.cells, "genes": args.genes,
                        "status": outcome.status, "message": outcome.message,
                        "wall_s": outcome.wall_s, "rows": rows}))
                    print(key, outcome.status, round(outcome.wall_s, 1), flush=True)


def _table(folders: list[Path]) -> pd.DataFrame:
    rows = []
    for record in sorted(r for out in folders for r in (out / "runs").glob("*.json")):
        rec = json.loads(record.read_text())
        for row in rec["rows"]:
            if row["metric"] in METRICS:
                rows.append({"dataset": rec["dataset"], "method": rec["method"],
                             "cells": rec["cells"], "genes": rec["genes"],
                             "profile": rec["profile"], "seed": rec["seed"],
                             "metric": row["metric"], "value": row["value"]})
    return pd.DataFrame(rows)


def _cell(values: pd.Series) -> str:
    return f"{values.mean():.4g} ± {values.std(ddof=1):.2g}" if len(values) > 1 \
        else f"{values.mean():.4g}"


def report(args: argparse.Namespace) -> None:
    tidy = _table([Path(out) for out in args.out])
    tidy.to_csv(HERE / "results" / f"{args.name}.csv", index=False)
    wide = tidy.pivot_table(index=["method", "dataset", "cells", "metric", "seed"],
                            columns="profile", values="value").dropna().reset_index()
    lines = [
        "# Training profiles: fast beside paper (accuracy guard)", "",
        "Commands: `python benchmarks/profiles.py run --methods maskclass --cells 1000`, "
        "`python benchmarks/profiles.py run --methods cnnimpute --cells 500`, then `python "
        "benchmarks/profiles.py report --out /tmp/scfill_profiles_1000 "
        "/tmp/scfill_profiles_500` (seeds 0 1 2, 1,000 genes). This report: `python "
        f"benchmarks/profiles.py {' '.join(sys.argv[1:])}`.",
        "Each dataset subsampled to at most the table's cells and its "
        f"{args.genes:,} most variable genes (presets simulated at that size); protocol "
        f"`{args.protocol}` (scores at the hidden entries, common space); both profiles of a "
        "seed see the same masked data and the same method seed; one thread per run on the "
        "shared 2-core machine (runtime is the method's own and noisy). Mean ± sd over "
        "seeds; `fast − paper` is the paired difference. Verdict: `within noise` when fast's "
        "mean is no worse than paper's by more than paper's seed-to-seed sd, `better` when "
        "it is better by more than that, otherwise `worse by X` (X in paper sds).", "",
        "| method | dataset | cells | metric | paper | fast | fast − paper | verdict |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for (method, dataset, cells, metric), group in wide.groupby(
            ["method", "dataset", "cells", "metric"], sort=False):
        paper, fast = group["paper"], group["fast"]
        diff = fast - paper
        verdict = ""
        if metric != "runtime_s":
            sign = -1 if METRICS[metric] else 1  # > 0: fast worse
            worse = sign * diff.mean()
            noise = paper.std(ddof=1) if len(paper) > 1 else 0.0
            if worse <= noise and -worse <= noise:
                verdict = "within noise"
            elif worse < 0:
                verdict = "better"
            else:
                verdict = f"worse by {worse / noise:.1f} sd" if noise > 0 else "worse"
        else:
            verdict = f"{paper.mean() / fast.mean():.1f}× faster"
        lines.append(f"| {method} | {dataset} | {cells} | {metric} | {_cell(paper)} | "
                     f"{_cell(fast)} | "
                     f"{_cell(diff)} | {verdict} |")
    lines += ["", f"Seeds with both profiles finished: {sorted(wide['seed'].unique().tolist())}; "
              f"load average when reported: {os.getloadavg()[0]:.1f}."]
    path = HERE / "results" / f"{args.name}.md"
    from _measure import write_report

    write_report(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("--methods", default="maskclass,cnnimpute")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=PROFILES)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--protocol", default="mask-nonzero:0.1")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--name", default="profiles",
                        help="report: results/NAME.md and NAME.csv (default profiles)")
    parser.add_argument("--out", nargs="+", default=None,
                        help="run folder (default /tmp/scfill_profiles_CELLS); report: "
                        "one or more")
    args = parser.parse_args()
    args.out = args.out or [f"/tmp/scfill_profiles_{args.cells}"]
    sys.path.insert(0, str(HERE))
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
