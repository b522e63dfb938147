"""``scfill evaluate`` end to end: tidy CSV, summary table, exit codes."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import make_counts
from scfill.cli import main
from scfill.evaluate import COLUMNS


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "counts.h5ad"
    make_counts().write_h5ad(path)
    return path


def test_evaluate_writes_one_row_per_repeat_and_metric(dataset, tmp_path, capsys):
    out = tmp_path / "results.csv"
    code = main(["-q", "evaluate", "--method", "knn", "--dataset", str(dataset),
                 "--protocol", "mask-nonzero:0.3", "--repeats", "2", "--seed", "1",
                 "--param", "k=5", "-o", str(out)])
    assert code == 0
    results = pd.read_csv(out)
    assert list(results.columns) == COLUMNS
    per_repeat = results.groupby("repeat")["metric"].apply(list)
    assert list(per_repeat.index) == [0, 1]
    assert per_repeat[0] == per_repeat[1] and "mse" in per_repeat[0]
    assert set(results["dataset"]) == {"counts"}
    assert set(results["protocol"]) == {"mask-nonzero:0.3"}
    printed = capsys.readouterr().out
    assert "counts | knn | mask-nonzero:0.3" in printed
    assert "±" in printed and "(n=2)" in printed


def test_evaluate_preset_truth(tmp_path):
    out = tmp_path / "sim.csv"
    code = main(["-q", "evaluate", "--method", "none", "--dataset", "preset:scgacl-1",
                 "--cells", "100", "--genes", "60", "--protocol", "truth", "--repeats", "1",
                 "-o", str(out)])
    assert code == 0
    metrics = set(pd.read_csv(out)["metric"])
    assert {"mse", "dropout_mse", "biozero_mse", "dropout_f1", "ari"} <= metrics


@pytest.mark.parametrize(("args", "message"), [
    (["--protocol", "mask-nonzero:2"], "fraction 2 is not between 0 and 1"),
    (["--protocol", "truth"], "needs layers['true_counts']"),
    (["--repeats", "0"], "repeats=0 is out of range"),
    (["--param", "nope=1"], "has no parameter 'nope'"),
])
def test_evaluate_bad_input_exits_2(dataset, tmp_path, capsys, args, message):
    code = main(["-q", "evaluate", "--method", "knn", "--dataset", str(dataset),
                 "-o", str(tmp_path / "r.csv"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def test_evaluate_missing_dataset_and_existing_output(dataset, tmp_path, capsys):
    assert main(["-q", "evaluate", "--method", "none", "--dataset", "nowhere.h5ad",
                 "-o", str(tmp_path / "r.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    existing = tmp_path / "done.csv"
    existing.write_text("keep me")
    assert main(["-q", "evaluate", "--method", "none", "--dataset", str(dataset),
                 "-o", str(existing)]) == 2
    assert "output already exists" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
