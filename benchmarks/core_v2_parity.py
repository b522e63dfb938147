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
#: Columns of both tables after the row's key.
COMPARED = "committed | pre-port rerun | engine | engine − committed | engine − pre-port |"
ALIGN = "---:|" * 5
#: The reruns, then this report.
COMMANDS = [
    "python benchmarks/maskclass.py accuracy --seeds 0 --epochs 300 --presets maskclass-equal "
    "--methods none maskclass --csv benchmarks/results/core_v2_parity/maskclass_accuracy.csv",
    "python benchmarks/cnnimpute.py --datasets ercc_spikein_288 "
    "pbmc68k_reduced_reconstructed_counts --repeats 2 --max-genes 2000 --configs none "
    "'cnnimpute (flatten, paper)' \"cnnimpute (gap, authors' code)\" "
    "--out benchmarks/results/core_v2_parity/cnnimpute",
    "(pre-port code: PYTHONPATH=<worktree of 688d02e>/src) python benchmarks/maskclass.py "
    "accuracy --seeds 0 --epochs 300 --presets maskclass-equal --methods maskclass --csv "
    "benchmarks/results/core_v2_parity/maskclass_accuracy_preport.csv",
    "(pre-port code, main at 688d02e, in its own worktree) python benchmarks/cnnimpute.py "
    "--datasets ercc_spikein_288 --repeats 2 --max-genes 2000 --configs "
    "'cnnimpute (flatten, paper)' \"cnnimpute (gap, authors' code)\" "
    "--out benchmarks/results/core_v2_parity/cnnimpute_preport",
    "python benchmarks/core_v2_parity.py",
]


def maskclass_table() -> list[str]:
    """Committed vs rerun MaskClass Table-2 rows (same preset, seed, method, epochs), and the
    pre-port code rerun on this machine when its CSV exists."""
    before = pd.read_csv(RESULTS / "maskclass_accuracy.csv")
    after = pd.read_csv(PARITY / "maskclass_accuracy.csv")
    keys = ["preset", "seed", "method", "epochs"]
    merged = after.merge(before, on=keys, suffixes=("", "_before"))
    preport_csv = PARITY / "maskclass_accuracy_preport.csv"
    if preport_csv.exists():
        preport = pd.read_csv(preport_csv)[[*keys, *MASKCLASS_METRICS]]
        merged = merged.merge(preport.add_suffix("_preport").rename(
            columns={f"{k}_preport": k for k in keys}), on=keys, how="left")
    spread = before[before["method"] == "maskclass"].groupby("preset")["mse"].std()
    lines = ["| preset | seed | method | metric | " + COMPARED, "|---|---|---|---|" + ALIGN]
    for row in merged.to_dict("records"):
        for metric in MASKCLASS_METRICS:
            a, b = row[f"{metric}_before"], row[metric]
            pre = row.get(f"{metric}_preport", float("nan"))
            pre_text = "–" if pd.isna(pre) else f"{pre:.6g}"
            vs_pre = "–" if pd.isna(pre) else f"{b - pre:+.3g}"
            lines.append(f"| {row['preset']} | {row['seed']} | {row['method']} | {metric} | "
                         f"{a:.6g} | {pre_text} | {b:.6g} | {b - a:+.3g} | {vs_pre} |")
    noise = "; ".join(f"{p} {s:.3f}" for p, s in spread.items())
    return [*lines, "", f"Run-to-run noise for scale: the sd of MaskClass's MSE over the "
            f"committed seeds 0–2 is {noise} (log2 space)."]


def cnnimpute_table() -> list[str]:
    """Committed vs rerun cnnImpute records, per dataset × configuration × repeat, and the
    pre-port code rerun on this machine where its records exist."""
    lines = ["| dataset | configuration | repeat | metric | " + COMPARED,
             "|---|---|---|---|" + ALIGN]
    keys = ["dataset", "config", "repeat", "metric"]
    spread = []
    for path in sorted((PARITY / "cnnimpute" / "runs").glob("*.csv")):
        after = pd.read_csv(path)
        before = pd.read_csv(RESULTS / "cnnimpute" / "runs" / path.name)
        merged = after.merge(before[[*keys, "value"]], on=keys, suffixes=("", "_before"))
        preport_path = PARITY / "cnnimpute_preport" / "runs" / path.name
        if preport_path.exists():
            preport = pd.read_csv(preport_path)[[*keys, "value"]]
            merged = merged.merge(preport.rename(columns={"value": "value_preport"}), on=keys,
                                  how="left")
        else:
            merged["value_preport"] = float("nan")
        merged = merged[merged["metric"].isin(CNN_METRICS)]
        for row in merged.itertuples():
            pre = "–" if pd.isna(row.value_preport) else f"{row.value_preport:.6g}"
            vs_pre = "–" if pd.isna(row.value_preport) else f"{row.value - row.value_preport:+.3g}"
            lines.append(f"| {row.dataset} | {row.config} | {row.repeat} | {row.metric} | "
                         f"{row.value_before:.6g} | {pre} | {row.value:.6g} | "
                         f"{row.value - row.value_before:+.3g} | {vs_pre} |")
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
             "\"pre-port rerun\": the code of main just before the port (688d02e), rerun "
             "on this machine now; it separates what the port changed (engine − pre-port) "
             "from what other commits changed since the committed runs (pre-port − "
             "committed).", "",
             "## MaskClass, Table-2 protocol (`maskclass-equal`, seed 0, 300 epochs)", "",
             *maskclass_table(), "",
             "## cnnImpute, paper protocol (`mask-expressed:0.1`, repeats 0–1)", "",
             *cnnimpute_table(), ""]
    REPORT.write_text("\n".join(lines))
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
