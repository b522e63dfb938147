"""Side-by-side speed and memory at the size of the project's bar (5,000 cells × 2,000 genes).

Each method runs ``scfill.impute`` with its defaults on the same simulated counts, one at a
time, each in a fresh process; the time reported is the method's own (``uns['scfill']
['runtime_s']``: dropout model, pre-clustering, fit, reconstruct, combine), beside the
process's wall time and peak RSS (the method process and, for DCA/DeepImpute, the
TensorFlow child it starts). Ratios are against MAGIC and DCA measured in the same run
(DCA and DeepImpute run in their own env: ``scfill peers setup``). The machine's load
average before and after the run is printed beside the figures: on a shared machine
timings are slower than alone, so compare methods only within one run.

A method may name a training profile, ``maskclass:paper``: the method with
``profile="paper"`` (a bare name runs its default, the ``fast`` profile of the deep methods).

Usage: ``python benchmarks/speed.py [--methods knn,alra,magic,dca,maskclass,maskclass:paper,
cnnimpute,cnnimpute:paper] [--timeout 900]``; writes ``benchmarks/results/speed.md`` and
``speed.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pandas as pd

from _measure import machine, measure

#: Methods the ratio columns divide by, when they ran.
REFERENCES = ("magic", "dca")
DEFAULT_METHODS = ("knn,alra,magic,dca,maskclass,maskclass:paper,cnnimpute,cnnimpute:paper")


def make_data(path: str, n_cells: int, n_genes: int) -> str:
    """Simulate the benchmark counts (Splatter, 4 groups, experiment-wide dropout)."""
    import scfill

    adata = scfill.simulate(n_cells=n_cells, n_genes=n_genes, seed=0,
                            group_prob=(0.4, 0.3, 0.2, 0.1), dropout_type="experiment",
                            dropout_mid=3.0, dropout_shape=-1.0)
    observed = adata.copy()
    del observed.layers["true_counts"], observed.layers["dropout"]
    scfill.write(observed, path, force=True)
    return f"{1 - adata.X.nnz / (n_cells * n_genes):.1%} zeros"


def impute_job(path: str, spec: str) -> dict:
    """The measured job: read the counts and impute them with ``spec``'s method (its
    defaults, or the named profile)."""
    import scfill

    method, _, profile = spec.partition(":")
    adata = scfill.read(path)
    scfill.impute(adata, method, seed=0, params={"profile": profile} if profile else None)
    info = adata.uns["scfill"]
    return {"runtime_s": info["runtime_s"], "info": info.get("info", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.md"))
    parser.add_argument("--csv", default=None, help="CSV beside --out (default: .csv)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "counts.h5ad")
        zeros = make_data(path, args.cells, args.genes)
        for method in args.methods.split(","):
            try:
                wall, peak, result = measure(impute_job, path, method, timeout_s=args.timeout)
                rows.append((method, result["runtime_s"], wall, peak, result["info"]))
            except TimeoutError:
                rows.append((method, None, None, None, {}))
            print(rows[-1][:4], flush=True)
    load_after = os.getloadavg()
    times = {r[0]: r[1] for r in rows if r[1]}
    references = [m for m in REFERENCES if m in times]
    lines = [
        "# Speed and memory side by side (the project's bar)",
        "",
        f"Command: `python benchmarks/speed.py --methods {args.methods} --cells {args.cells} "
        f"--genes {args.genes} --timeout {args.timeout:g}`",
        f"Machine: {machine()}; torch and BLAS use their default threads (2). Load average "
        f"(1 min) {load_before[0]:.1f} before and {load_after[0]:.1f} after the run: the "
        "machine is shared, so absolute times are slower than alone; the ratios compare "
        "methods timed in this one run.",
        "",
        f"Data: `scfill.simulate` {args.cells:,} cells x {args.genes:,} genes, 4 groups, "
        f"experiment dropout (mid 3, shape -1), {zeros}. Each method with its defaults "
        "(MaskClass and cnnImpute: the fast profile; `:paper`, the paper profile: "
        "MaskClass 300 epochs, batch 32; cnnImpute <= 150 epochs, batch 32, early stopping "
        "after 5; DCA <= 300 epochs, early stopping after 15; DeepImpute <= 500 epochs, "
        "early stopping after 5). The settings each deep method ran with are below the "
        "table.",
        "",
        "| method | method time (s) | process wall (s) | peak RSS (MiB) | "
        + "".join(f"time / {m} | " for m in references),
        "|---|---:|---:|---:|" + "---:|" * len(references),
    ]
    for method, runtime, wall, peak, _ in rows:
        if runtime is None:
            lines.append(f"| {method} | > {args.timeout:g} (stopped) | | |"
                         + " |" * len(references))
            continue
        lines.append(f"| {method} | {runtime:.1f} | {wall:.1f} | {peak:.0f} | "
                     + "".join(f"{runtime / times[m]:.2f} | " for m in references))
    lines += ["", "Settings and epochs of the deep methods (`uns['scfill']['info']`):", ""]
    for method, runtime, _, _, info in rows:
        if runtime is not None and "settings" in info:
            lines.append(f"- {method}: {info['settings']}, {_epochs(info)}")
    Path(args.out).write_text("\n".join(lines) + "\n")
    pd.DataFrame([{"method": m, "cells": args.cells, "genes": args.genes,
                   "runtime_s": t, "wall_s": w, "peak_rss_mb": p,
                   "load_before": load_before[0], "load_after": load_after[0]}
                  for m, t, w, p, _ in rows]).to_csv(
        args.csv or Path(args.out).with_suffix(".csv"), index=False)
    print("\n".join(lines))


def _epochs(info: dict) -> str:
    """Epochs run, from MaskClass's or cnnImpute's info."""
    if "epochs_run" in info:
        return f"{info['epochs_run']} epochs (best {info.get('best_epoch')})"
    def values(x):  # uns stores lists as {"0": ..., "1": ...}
        return list(x.values()) if isinstance(x, dict) else list(x)

    models = [m for g in values(info.get("groups", [])) for m in values(g.get("models", []))]
    return "epochs per subset model: " + ", ".join(str(m["epochs"]) for m in models)


if __name__ == "__main__":
    main()
