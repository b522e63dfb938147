"""Core v2 parity: MaskClass and cnnImpute on the training engine against their committed
figures from before the port (issue 12: "this changes no method's results").

The reruns are made by the methods' own benchmark scripts into ``results/core_v2_parity/``
(:data:`COMMANDS`, also written into the report); this script only reads them beside the
committed results and writes ``results/core_v2_parity.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine

RESULTS = Path(__file__).parent / "results"
PARITY = RESULTS / "core_v2_parity"
REPORT = RESULTS / "core_v2_parity.md"
MASKCLASS_METRICS = ("mse", "dropout_mse", "biozero_mse", "ari")
CNN_METRICS = ("mse", "pearson")
#: The reruns, then this report.
COMMANDS = [
    "python benchmarks/maskclass.py accuracy --seeds 0 --epochs 300 --presets maskclass-equal "
    "--methods none maskclass --csv benchmarks/results/core_v2_parity/maskclass_accuracy.csv",
    "python benchmarks/cnnimpute.py --datasets ercc_spikein_288 "
    "pbmc68k_reduced_reconstructed_counts --repeats 2 --max-genes 2000 --configs none "
    "'cnnimpute (flatten, paper)' \"cnnimpute (gap, authors' code)\" "
    "--out benchmarks/results/core_v2_parity/cnnimpute",
    "python benchmarks/core_v2_parity.py",
]


def maskclass_table() -> list[str]:
    """Committed vs rerun MaskClass Table-2 rows (same preset, seed, method, epochs)."""
    before = pd.read_csv(RESULTS / "maskclass_accuracy.csv")
    after = pd.read_csv(PARITY / "maskclass_accuracy.csv")
    keys = ["preset", "seed", "method", "epochs"]
    merged = after.merge(before, on=keys, suffixes=("_after", "_before"))
    spread = before[before["method"] == "maskclass"].groupby("preset")["mse"].std()
    lines = ["| preset | seed | method | metric | committed | engine | difference |",
             "|---|---|---|---|---:|---:|---:|"]
    for row in merged.itertuples():
        for metric in MASKCLASS_METRICS:
            a, b = getattr(row, f"{metric}_before"), getattr(row, f"{metric}_after")
            lines.append(f"| {row.preset} | {row.seed} | {row.method} | {metric} | {a:.6g} | "
                         f"{b:.6g} | {b - a:+.3g} |")
    noise = "; ".join(f"{p} {s:.3f}" for p, s in spread.items())
    return [*lines, "", f"Run-to-run noise for scale: the sd of MaskClass's MSE over the "
            f"committed seeds 0–2 is {noise} (log2 space)."]


def cnnimpute_table() -> list[str]:
    """Committed vs rerun cnnImpute records, per dataset × configuration × repeat."""
    lines = ["| dataset | configuration | repeat | metric | committed | engine | difference "
             "|", "|---|---|---|---|---:|---:|---:|"]
    spread = []
    for path in sorted((PARITY / "cnnimpute" / "runs").glob("*.csv")):
        after = pd.read_csv(path)
        before = pd.read_csv(RESULTS / "cnnimpute" / "runs" / path.name)
        keys = ["dataset", "config", "repeat", "metric"]
        merged = after.merge(before[[*keys, "value"]], on=keys, suffixes=("_after", "_before"))
        merged = merged[merged["metric"].isin(CNN_METRICS)]
        for row in merged.itertuples():
            lines.append(f"| {row.dataset} | {row.config} | {row.repeat} | {row.metric} | "
                         f"{row.value_before:.6g} | {row.value_after:.6g} | "
                         f"{row.value_after - row.value_before:+.3g} |")
        mse = before[before["metric"] == "mse"]
        if mse["config"].iloc[0] != "none":
            spread.append(f"{mse['dataset'].iloc[0]} {mse['config'].iloc[0]} "
                          f"{mse['value'].std():.4f}")
    return [*lines, "", "Run-to-run noise for scale: the sd of the MSE over the committed "
            "5 repeats is " + "; ".join(spread) + "."]


def main() -> None:
    lines = ["# Core v2 parity: the methods on the training engine", "",
             "MaskClass and cnnImpute `fit` now run on `scfill.nn.Trainer` (issue 12). Their "
             "protocols were rerun with the benchmark scripts and compared with the "
             "committed figures made before the port.", "",
             "Commands:", "", *[f"    {command}" for command in COMMANDS], "",
             f"Machine: {machine()} (shared with other developers, heavily loaded; timings "
             "are not compared).", "",
             "## MaskClass, Table-2 protocol (`maskclass-equal`, seed 0, 300 epochs)", "",
             *maskclass_table(), "",
             "## cnnImpute, paper protocol (`mask-expressed:0.1`, repeats 0–1)", "",
             *cnnimpute_table(), ""]
    REPORT.write_text("\n".join(lines))
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
