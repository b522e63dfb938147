"""Time and peak memory against the number of cells (2,000 genes), one figure.

Each (method, cells) runs ``scfill.impute`` with the method's defaults (``NAME:paper``: the
paper profile) on the simulation of ``benchmarks/speed.py`` at that size, in a fresh
process with a time limit; the method's own time (``uns['scfill']['runtime_s']``) and the
process's peak RSS are kept. Records accumulate in ``benchmarks/results/scaling.csv`` (a
re-run skips the pairs it has; ``--force`` redoes them), so the grid can be filled in
several sittings; the load average at each run is recorded beside it.

Usage::

    python benchmarks/scaling.py [--methods knn,alra,magic,maskclass,cnnimpute]
        [--cells 1000 5000 20000 100000] [--timeout 900]
    python benchmarks/scaling.py --plot     # the figure and table from the CSV only
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
from speed import impute_job, make_data

RESULTS = Path(__file__).parent / "results"
CSV = RESULTS / "scaling.csv"
COLUMNS = ["method", "cells", "genes", "status", "runtime_s", "wall_s", "peak_rss_mb",
           "load_1min", "machine"]


def from_speed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``speed.csv`` (the same job at its size) that the table lacks."""
    speed_csv = RESULTS / "speed.csv"
    if not speed_csv.exists():
        return table
    speed = pd.read_csv(speed_csv)
    if "cells" not in speed:
        return table
    rows = [[r["method"], r["cells"], r["genes"],
             "ok" if pd.notna(r["runtime_s"]) else "stopped", r["runtime_s"], r["wall_s"],
             r["peak_rss_mb"], r["load_before"], "speed.py run"]
            for _, r in speed.iterrows()
            if not ((table["method"] == r["method"]) & (table["cells"] == r["cells"])).any()]
    return pd.concat([table, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True)


def run(args: argparse.Namespace) -> None:
    table = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame(columns=COLUMNS)
    if args.with_speed:
        table = from_speed(table)
    with tempfile.TemporaryDirectory() as tmp:
        for cells in args.cells:
            path = None
            for method in args.methods.split(","):
                done = (table["method"] == method) & (table["cells"] == cells)
                if done.any() and not args.force:
                    continue
                if path is None:
                    path = str(Path(tmp) / f"counts_{cells}.h5ad")
                    make_data(path, cells, args.genes)
                load = os.getloadavg()[0]
                try:
                    wall, peak, result = measure(impute_job, path, method,
                                                 timeout_s=args.timeout)
                    row = ["ok", result["runtime_s"], wall, peak]
                except TimeoutError:
                    row = ["stopped", None, None, None]
                table = pd.concat([table[~done], pd.DataFrame(
                    [[method, cells, args.genes, *row, load, machine()]], columns=COLUMNS)],
                    ignore_index=True)
                table.to_csv(CSV, index=False)
                print(method, cells, row, flush=True)
    plot(args)


def plot(args: argparse.Namespace) -> None:
    """``scaling.png`` (time and peak RSS against cells) and ``scaling.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.read_csv(CSV).sort_values(["method", "cells"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, rows in table.groupby("method", sort=False):
        ok = rows[rows["status"] == "ok"]
        for ax, column in zip(axes, ("runtime_s", "peak_rss_mb"), strict=True):
            line, = ax.plot(ok["cells"], ok[column], marker="o", label=method)
            stopped = rows[rows["status"] == "stopped"]
            if column == "runtime_s" and len(stopped):
                ax.scatter(stopped["cells"], [args.timeout] * len(stopped), marker="^",
                           color=line.get_color())
    for ax, label in zip(axes, ("method time (s)", "peak RSS (MiB)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="cells (2,000 genes)", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("time (▲: stopped at the limit)")
    axes[1].set_title("peak memory of the process")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "scaling.png", dpi=120)
    lines = [
        "# Scaling: time and peak memory against cells", "",
        "Command: `python benchmarks/scaling.py` (grid filled in sittings; figure "
        "`scaling.png`). Data: the simulation of `benchmarks/speed.py` (4 groups, "
        "experiment dropout) at each size, 2,000 genes; each method with its defaults "
        "(`:paper`: the paper profile), in its own process. Machine: shared 2-core VM; the "
        "1-minute load average at the start of each run is in the table: compare within "
        "rows of similar load.", "",
        "![scaling](scaling.png)", "",
        "| method | cells | status | method time (s) | peak RSS (MiB) | load |",
        "|---|---:|---|---:|---:|---:|"]
    for _, r in table.iterrows():
        time_s = f"{r['runtime_s']:.1f}" if r["status"] == "ok" else f"> {args.timeout:g}"
        rss = f"{r['peak_rss_mb']:.0f}" if r["status"] == "ok" else ""
        lines.append(f"| {r['method']} | {r['cells']:,} | {r['status']} | {time_s} | {rss} | "
                     f"{r['load_1min']:.1f} |")
    (RESULTS / "scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default="knn,alra,magic,maskclass,cnnimpute")
    parser.add_argument("--cells", type=int, nargs="+", default=[1000, 5000, 20000, 100000])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--plot", action="store_true", help="only redraw from the CSV")
    parser.add_argument("--with-speed", action="store_true",
                        help="take the pairs speed.csv has (its run) instead of rerunning them")
    args = parser.parse_args()
    plot(args) if args.plot else run(args)


if __name__ == "__main__":
    main()
