"""The command line end to end: outputs, exit codes, the input left untouched."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pytest

import scfill
from scfill.cli import main


@pytest.fixture
def h5ad_input(tmp_path, counts_adata):
    path = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(path)
    return path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_impute_end_to_end(tmp_path, h5ad_input, capsys):
    before = _digest(h5ad_input)
    out = tmp_path / "imputed.h5ad"
    code = main(["-q", "impute", str(h5ad_input), "-o", str(out), "--method", "knn",
                 "--param", "k=5", "--seed", "2", "--counts"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    result = ad.read_h5ad(out)
    assert {"imputed", "imputed_counts"} <= set(result.layers)
    assert result.uns["scfill"]["params"]["k"] == 5 and result.uns["scfill"]["seed"] == 2
    assert _digest(h5ad_input) == before  # the input file is never modified


def test_impute_same_seed_identical_files(tmp_path, h5ad_input):
    outputs = []
    for name in ("a.h5ad", "b.h5ad"):  # the default method (a neural net), shortened
        assert main(["-q", "impute", str(h5ad_input), "-o", str(tmp_path / name),
                     "--param", "epochs=3"]) == 0
        outputs.append(ad.read_h5ad(tmp_path / name).layers["imputed"].toarray())
    np.testing.assert_array_equal(*outputs)


def test_csv_in_csv_out(tmp_path, counts_adata):
    path = tmp_path / "counts.csv"
    counts_adata.to_df().T.to_csv(path)
    out = tmp_path / "imputed.csv"
    assert main(["-q", "impute", str(path), "-o", str(out), "--method", "knn"]) == 0
    assert scfill.read(out).shape == counts_adata.shape  # genes x cells, as given


def test_existing_output_needs_force(tmp_path, h5ad_input, capsys):
    out = tmp_path / "imputed.h5ad"
    out.write_text("keep me")
    assert main(["-q", "impute", str(h5ad_input), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["-q", "impute", str(h5ad_input), "-o", str(out), "--force",
                 "--method", "knn"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["impute", "missing.h5ad", "-o", "x.h5ad"], "file not found"),
    (["impute", "{input}", "-o", "x.h5ad", "--method", "nope"], "unknown method 'nope'"),
    (["impute", "{input}", "-o", "x.h5ad", "--param", "k"], "not of the form key=value"),
    (["impute", "{input}", "-o", "x.h5ad", "--param", "kk=3"], "has no parameter 'kk'"),
    (["impute", "{input}", "-o", "x.h5ad", "--method", "knn", "--param", "k=-1"],
     "out of range"),
    (["impute", "{input}", "-o", "x.h5ad", "--labels-key", "nope"], "label column 'nope'"),
    (["impute", "{input}", "-o", "x.h5ad", "--layer", "nope"], "layer 'nope' not found"),
])
def test_bad_input_exit_code_2(tmp_path, h5ad_input, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{input}", str(h5ad_input)) for a in argv]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Fix:" in err
    assert not (tmp_path / "x.h5ad").exists()


def test_methods_lists_knn(capsys):
    assert main(["methods", "-v"]) == 0
    out = capsys.readouterr().out
    assert "knn" in out and "k=10" in out and "none" in out


def test_demo_writes_report_figure_and_data(tmp_path):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--out", str(out), "--cells", "200", "--genes", "80",
                 "--method", "knn"]) == 0
    report = (out / "report.md").read_text()
    assert "| knn" in report and "MSE / no imputation" in report
    assert (out / "dropout_recovery.png").stat().st_size > 0
    assert "imputed" in ad.read_h5ad(out / "imputed.h5ad").layers
    assert main(["-q", "demo", "--out", str(out)]) == 2  # an existing folder needs --force
