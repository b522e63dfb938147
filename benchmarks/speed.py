"""Side-by-side speed and memory at the size of the project's bar (5,000 cells × 2,000 genes).

Each method runs ``scfill.impute`` with its defaults on the same simulated counts, one at a
time, each in a fresh process; the time reported is the method's own (``uns['scfill']
['runtime_s']``: dropout model, pre-clustering, fit, reconstruct, combine), beside the
process's wall time and peak RSS. Ratios are against MAGIC measured in the same run; the
DCA, DeepImpute and scVI figures quoted in the output were measured on this machine by the
project (DCA cannot be installed on Python 3.11, see specs/peers.md).

Usage: ``python benchmarks/speed.py [--methods knn,alra,magic,maskclass,cnnimpute]
[--timeout 1200]``; writes ``benchmarks/results/speed.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure

#: Figures the project measured for peers on this machine (5,000 × 2,000, seconds).
QUOTED_PEERS = {"kNN smoothing": 1.9, "ALRA": 5.2, "MAGIC": 6.9, "DCA": 39.0,
                "DeepImpute": 43.0, "scVI (400 epochs)": 622.0}


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


def impute_job(path: str, method: str) -> dict:
    """The measured job: read the counts and impute them with ``method``'s defaults."""
    import scfill

    adata = scfill.read(path)
    scfill.impute(adata, method, seed=0)
    info = adata.uns["scfill"]
    return {"runtime_s": info["runtime_s"], "info": info.get("info", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default="knn,alra,magic,maskclass,cnnimpute")
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.md"))
    args = parser.parse_args()
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
    magic = next((r[1] for r in rows if r[0] == "magic" and r[1]), None)
    lines = [
        "# Speed and memory side by side (the project's bar)",
        "",
        f"Command: `python benchmarks/speed.py --methods {args.methods} --cells {args.cells} "
        f"--genes {args.genes} --timeout {args.timeout:g}`",
        f"Machine: {machine()}; torch and BLAS use their default threads (2).",
        "",
        f"Data: `scfill.simulate` {args.cells:,} cells x {args.genes:,} genes, 4 groups, "
        f"experiment dropout (mid 3, shape -1), {zeros}. Each method with its defaults "
        "(MaskClass 300 epochs, batch 32; cnnImpute <= 150 epochs with early stopping).",
        "",
        "| method | method time (s) | process wall (s) | peak RSS (MiB) | time / MAGIC | "
        "time / DCA (39 s, quoted) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, runtime, wall, peak, _ in rows:
        if runtime is None:
            lines.append(f"| {method} | > {args.timeout:g} (stopped) | | | | |")
            continue
        ratio = f"{runtime / magic:.2f}" if magic else ""
        lines.append(f"| {method} | {runtime:.1f} | {wall:.1f} | {peak:.0f} | {ratio} | "
                     f"{runtime / QUOTED_PEERS['DCA']:.2f} |")
    lines += ["", "Peers measured earlier by the project on this machine, same size: "
              + ", ".join(f"{k} {v:g} s" for k, v in QUOTED_PEERS.items()) + ".", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
