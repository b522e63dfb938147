"""The report's comparisons and README's summary: computed from the results, real and
simulated datasets apart, settings that differ from the defaults stated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scfill.bench import compare
from scfill.bench.readme import END, START, summary_block, update_readme
from scfill.bench.report import write_report
from scfill.errors import InputError

#: mse by dataset and method: maskclass wins one real set, scvi the other and the simulation.
MSE = {
    "real-a": {"none": 1.0, "knn": 0.5, "maskclass": 0.2, "scvi": 0.3, "dca": 0.4},
    "real-b": {"none": 2.0, "knn": 1.0, "maskclass": 0.8, "scvi": 0.4, "dca": 0.6},
    "sim-x": {"none": 4.0, "knn": 2.0, "maskclass": 2.0, "scvi": 1.0},
}


def summary(protocol: str = "mcv:0.1") -> pd.DataFrame:
    rows = [{"dataset": d, "method": m, "protocol": protocol, "metric": "mse", "mean": v,
             "std": np.nan, "count": 1} for d, values in MSE.items() for m, v in values.items()]
    return pd.DataFrame(rows)


def test_method_groups_and_dataset_kinds():
    assert [compare.method_group(m) for m in ("maskclass", "cnnimpute", "scvi", "dca",
                                              "alra", "knn", "none", "nothing")] == \
        ["scfill", "scfill", "peer", "peer", "peer", "baseline", "baseline", "other"]
    assert compare.dataset_kind("sim-scgacl-1") == "simulated"
    assert compare.dataset_kind("ercc_spikein_288") == "real"


def test_best_versus_per_dataset():
    table = compare.best_versus(summary(), "mcv:0.1", "mse", -1).set_index("dataset")
    assert table.loc["real-a", ["scfill", "peer", "winner"]].tolist() == \
        ["maskclass", "scvi", "scfill"]
    assert table.loc["real-a", "ratio"] == pytest.approx(0.2 / 0.3)
    assert table.loc["real-b", "winner"] == "peer"
    assert table.loc["sim-x", ["kind", "winner"]].tolist() == ["simulated", "peer"]
    assert compare.tally(table.reset_index(), "real") == (
        "scfill's best method beats the best peer on 1 of 2 real datasets (median of "
        "scfill's best / the best peer's: 1.33)")


def test_leaderboard_counts_real_and_simulated_apart():
    real = compare.leaderboard(summary(), "mcv:0.1", "mse", -1, "real").set_index("method")
    assert real.loc["maskclass", "wins"] == 1 and real.loc["scvi", "wins"] == 1
    assert real.loc["scvi", "median_ratio"] == pytest.approx(np.median([0.3, 0.2]))
    assert real.loc["dca", "datasets"] == 2
    simulated = compare.leaderboard(summary(), "mcv:0.1", "mse", -1, "simulated")
    assert simulated.iloc[0]["method"] == "scvi"
    assert "dca" not in set(simulated.dropna(subset=["median_ratio"])["method"])
    sentence = compare.leader_sentence(simulated, "simulated", top=1)
    assert sentence == "Simulated datasets: scvi best on 1 of 1 (median 0.25 × no imputation)"


def test_report_states_changed_settings_and_compares(tmp_path):
    rows = summary().rename(columns={"mean": "value"}).drop(columns=["std", "count"])
    rows = rows.assign(repeat=0, seed=0)
    runs = rows[["dataset", "method", "protocol"]].drop_duplicates().assign(
        repeat=0, status="ok", message="", wall_s=1.0, peak_rss_mb=100.0)
    (tmp_path / "notes.md").write_text("Run in two parallel streams.")
    settings = {"seed": 0, "max_cells": 1000, "max_genes": 500, "threads": 1,
                "timeout_s": 1800.0, "repeats": 1, "device": "cpu",
                "params": {"scvi": {"epochs": 100}}}
    report = write_report(tmp_path, rows, runs, settings=settings).read_text()
    assert "- `scvi`: `epochs=100` (default `None`)" in report
    assert "at most 1000 random cells and their 500 most variable genes" in report
    assert "1 thread(s) per run" in report and "killed after 1800 s" in report
    assert "## Provenance\n\nRun in two parallel streams." in report
    assert "## Protocol `mcv:0.1`" in report
    assert "### Best peer vs best scfill method (`mse`, lower is better)" in report
    assert "| real-a | real | maskclass | 0.200 | scvi | 0.300 | 1.000 | 0.667 | scfill |" \
        in report


def test_readme_block_is_written_from_the_results(tmp_path):
    folder = tmp_path / "results" / "run"
    folder.mkdir(parents=True)
    summary().to_csv(folder / "summary.csv", index=False)
    (folder / "settings.json").write_text(json.dumps({"params": {"scvi": {"epochs": 100}}}))
    speed = tmp_path / "results" / "speed.csv"
    pd.DataFrame({"method": ["magic", "dca", "maskclass", "cnnimpute"],
                  "runtime_s": [5.0, 40.0, 90.0, None], "wall_s": [7.0, 44.0, 92.0, None],
                  "peak_rss_mb": [900, 950, 1000, None], "load_before": 3.0,
                  "load_after": 4.0}).to_csv(speed, index=False)
    block = summary_block([folder], speed_csv=speed, root=tmp_path)
    assert block.startswith(START) and block.endswith(END)
    assert "[`run`](results/run/report.md)" in block
    assert "parameters changed from the defaults: scvi epochs=100" in block
    assert ("Real datasets: scvi best on 1 of 2 (median 0.25 × no imputation); maskclass "
            "best on 1 of 2 (median 0.3 × no imputation)") in block
    assert "beats the best peer on 1 of 2 real datasets" in block
    assert "beats the best peer on 0 of 1 simulated dataset " in block
    assert "maskclass 90.0 s (18 × magic, 2.2 × dca)" in block
    assert "dca 40.0 s (8 × magic)" in block
    assert "cnnimpute stopped at the time limit" in block

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{START}\nold figures\n{END}\nafter\n")
    update_readme(readme, block)
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n" + START) and text.endswith(END + "\nafter\n")
    assert "old figures" not in text
    readme.write_text("no markers")
    with pytest.raises(InputError, match="needs one"):
        update_readme(readme, block)
