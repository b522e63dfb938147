"""The command line end to end: outputs, exit codes, the input left untouched."""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scfill
from conftest import make_counts
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


# -- issue 18: startup, verbosity, memory, interrupts -------------------------------------

HEAVY_MODULES = ("torch", "scanpy", "anndata", "pandas", "sklearn")


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["impute", "--help"],
    ["impute", "missing.h5ad", "-o", "out.h5ad"],
    ["impute", "counts.h5ad", "-o", "out.parquet"],
    ["evaluate", "--method", "knn", "--dataset", "missing.h5ad", "-o", "r.csv"],
    ["simulate", "-o", "exists.h5ad"],
])
def test_help_and_path_errors_import_nothing_heavy(tmp_path, argv):
    """--help and a wrong path answer before torch, scanpy or anndata load (defect 21)."""
    (tmp_path / "counts.h5ad").write_bytes(b"not empty")
    (tmp_path / "exists.h5ad").write_bytes(b"x")
    script = ("import sys; from scfill.cli import main; code = main(sys.argv[1:]); "
              f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules]); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, *argv], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == (0 if "--help" in argv else 2), done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_quiet_and_verbose_after_the_subcommand(tmp_path, h5ad_input, capsys):
    """-q/-v are accepted after the subcommand too, as the README lists them (defect 17)."""
    assert main(["impute", str(h5ad_input), "-o", str(tmp_path / "a.h5ad"), "--method",
                 "knn", "-q"]) == 0
    assert logging.getLogger("scfill").level == logging.WARNING
    assert "INFO" not in capsys.readouterr().err
    assert main(["simulate", "-o", str(tmp_path / "s.h5ad"), "--cells", "50", "--genes",
                 "20", "-v"]) == 0
    assert logging.getLogger("scfill").level == logging.DEBUG
    assert main(["-q", "methods"]) == 0
    assert "k=10" not in capsys.readouterr().out
    assert main(["methods", "--verbose"]) == 0
    assert "k=10" in capsys.readouterr().out


def test_out_of_device_memory_is_one_line(tmp_path, h5ad_input, capsys, monkeypatch):
    """A CUDA out-of-memory error says what to try, not a traceback (defect 14)."""
    import torch

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(scfill, "impute", out_of_memory)
    assert main(["-q", "impute", str(h5ad_input), "-o", str(tmp_path / "o.h5ad")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "out of device memory (CUDA out of memory" in err
    assert "--param batch_size" in err and "--device cpu" in err
    assert not (tmp_path / "o.h5ad").exists()


def test_output_path_checked_before_any_work(tmp_path, h5ad_input, capsys, monkeypatch):
    """A bad output path is reported before reading or fitting (defect 10)."""
    def never(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(scfill, "read", never)
    monkeypatch.setattr(scfill, "impute", never)
    (tmp_path / "file").write_text("x")
    for out, message in ((tmp_path / "out.xlsx", "unknown output format"),
                         (tmp_path / "file" / "o.h5ad", "is a file, not a folder"),
                         (tmp_path, "is an existing folder"),
                         (h5ad_input, "the output is the input file")):
        assert main(["-q", "impute", str(h5ad_input), "-o", str(out), "--force"]) == 2
        assert message in capsys.readouterr().err
    monkeypatch.setattr("scfill.paths.os.access", lambda *_: False)  # root ignores modes
    assert main(["-q", "impute", str(h5ad_input), "-o", str(tmp_path / "o.h5ad")]) == 2
    assert "permission denied" in capsys.readouterr().err


def test_cells_as_rows_csv_through_the_cli(tmp_path, counts_adata, capsys):
    """A cells x genes CSV without --transpose: detected, said, and written back the same
    way (defect 3); --no-transpose forces genes x cells."""
    path = tmp_path / "cells_by_genes.csv"
    counts_adata.to_df().to_csv(path)
    out = tmp_path / "out.csv"
    assert main(["impute", str(path), "-o", str(out), "--method", "knn"]) == 0
    assert "the rows look like cells" in capsys.readouterr().err
    written = pd.read_csv(out, index_col=0)
    assert list(written.index) == list(counts_adata.obs_names)
    forced = tmp_path / "forced.csv"
    assert main(["-q", "impute", str(path), "-o", str(forced), "--method", "none",
                 "--no-transpose"]) == 0
    assert list(pd.read_csv(forced, index_col=0).index) == list(counts_adata.obs_names)
    assert scfill.read(path, cells_axis=1).n_obs == counts_adata.n_vars


#: Runs ``scfill`` in a child process that stops (prints PAUSED, sleeps) inside one phase.
PAUSING_DRIVER = """
import sys, time
import anndata as ad
import scfill.io
from scfill.cli import main
from scfill.methods.baselines import KNNImpute

phase, argv = sys.argv[1], sys.argv[2:]

def pausing(function, after):
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs) if after else None
        print("PAUSED", flush=True)
        time.sleep(120)
        return result
    return wrapper

if phase == "read":
    scfill.io._read_h5ad = pausing(scfill.io._read_h5ad, after=True)
elif phase == "fit":
    KNNImpute.fit = pausing(KNNImpute.fit, after=False)
elif phase == "write":  # the temporary file is on disk, complete but not yet renamed
    ad.AnnData.write_h5ad = pausing(ad.AnnData.write_h5ad, after=True)
sys.exit(main(argv))
"""


def _impute_argv(folder, source) -> list[str]:
    return ["-q", "impute", str(source), "-o", str(folder / "out" / "imputed.h5ad"),
            "--method", "knn"]


@pytest.mark.parametrize(("phase", "signum"), [
    ("read", signal.SIGINT), ("fit", signal.SIGTERM), ("write", signal.SIGTERM),
    ("write", signal.SIGINT),
])
def test_interrupt_leaves_nothing(tmp_path, counts_adata, phase, signum):
    """SIGINT/SIGTERM in any phase, the write included: one line on stderr, exit
    128 + signal, no output, no temporary file, no folder made for it (defect 8)."""
    source = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(source)
    child = subprocess.Popen([sys.executable, "-c", PAUSING_DRIVER, phase,
                              *_impute_argv(tmp_path, source)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "PAUSED"
        if phase == "write":
            assert next(p.name for p in (tmp_path / "out").iterdir()).endswith(".tmp")
        child.send_signal(signum)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    name = signal.Signals(signum).name
    assert child.returncode == 128 + signum, err
    assert err.strip().splitlines() == [f"scfill impute: interrupted ({name}); stopped."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.h5ad"]


def test_sigterm_while_writing_for_real(tmp_path):
    """The real command, signalled as soon as its temporary output appears: it either
    finished (complete output) or left nothing (no output, no temporary file)."""
    source = tmp_path / "big.h5ad"
    make_counts(3000, 400, seed=1).write_h5ad(source)
    out_dir = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "scfill.cli",
                              *_impute_argv(tmp_path, source)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while child.poll() is None and time.monotonic() < deadline:
            if out_dir.exists() and any(p.name.endswith(".tmp") for p in out_dir.iterdir()):
                child.send_signal(signal.SIGTERM)
                break
            time.sleep(0.001)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode in (0, 128 + signal.SIGTERM), err
    out = out_dir / "imputed.h5ad"
    if child.returncode == 0 or err.strip().endswith(f"after {out} was complete."):
        # the signal came after the rename: the output is whole
        assert ad.read_h5ad(out).layers["imputed"].shape == (3000, 400)
        assert [p.name for p in out_dir.iterdir()] == ["imputed.h5ad"]
    else:
        assert err.strip().splitlines() == ["scfill impute: interrupted (SIGTERM); stopped."]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big.h5ad"]


def test_demo_fits_the_method_once(tmp_path, monkeypatch):
    """`make demo` trained the method twice, to score and to write (defect 19); the written
    result is still the method's output on the observed counts."""
    from scfill.methods.baselines import KNNImpute

    fits = []
    fit = KNNImpute.fit
    monkeypatch.setattr(KNNImpute, "fit", lambda self, data: fits.append(1) or fit(self, data))
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--out", str(out), "--cells", "150", "--genes", "60",
                 "--method", "knn", "--seed", "3"]) == 0
    assert len(fits) == 1
    written = ad.read_h5ad(out / "imputed.h5ad")
    observed = ad.read_h5ad(out / "simulated.h5ad")
    direct = scfill.impute(ad.AnnData(observed.X, obs=observed.obs[[]], var=observed.var[[]]),
                           "knn", seed=3, copy=True)
    np.testing.assert_array_equal(written.layers["imputed"].toarray(),
                                  direct.layers["imputed"].toarray())
    assert "simulation" in written.uns and "true_counts" not in written.layers


def _timed_starts(records) -> list[str]:
    from scfill._logging import STARTED

    return [r.args[0] for r in records if r.msg == STARTED]


def test_log_lines_read_as_steps(tmp_path, h5ad_input, caplog):
    """Timed lines read "fitting maskclass …", not "computing fitting maskclass" (defect
    20): every step starts with a verb in -ing and ends with "finished <step> (s)"."""
    with caplog.at_level(logging.INFO, logger="scfill"):
        assert main(["impute", str(h5ad_input), "-o", str(tmp_path / "o.h5ad"),
                     "--param", "epochs=1"]) == 0
        assert main(["simulate", "-o", str(tmp_path / "s.h5ad"), "--cells", "40",
                     "--genes", "20"]) == 0
    steps = _timed_starts(caplog.records)
    assert "fitting maskclass" in steps and any(s.startswith("simulating") for s in steps)
    assert any(s.startswith("estimating dropout probabilities") for s in steps)
    assert all(step.split()[0].endswith("ing") for step in steps), steps
    assert "computing" not in caplog.text
    assert "finished fitting maskclass (" in caplog.text


def test_no_progress_bars_without_a_terminal(tmp_path, h5ad_input, capsys, caplog):
    """With stderr in a file or CI, no bar is redrawn into the log (defect 18): one
    summary line per training phase instead."""
    with caplog.at_level(logging.INFO, logger="scfill"):
        assert main(["impute", str(h5ad_input), "-o", str(tmp_path / "o.csv"), "--method",
                     "cnnimpute", "--param", "epochs=2", "--param", "subset_size=16"]) == 0
    err = capsys.readouterr().err  # where tqdm draws
    assert "\r" not in err and "it/s" not in err and "subset/s" not in err
    summaries = [m for m in (r.getMessage() for r in caplog.records)
                 if re.search(r"subset \d/\d \[train\]: 2 epochs", m)]
    assert len(summaries) == 3, summaries  # one per trained subset


def test_progress_bars_on_a_terminal(monkeypatch):
    from scfill._logging import progress_enabled, set_verbosity

    set_verbosity("INFO")
    monkeypatch.setattr(sys, "stderr", type("Tty", (), {"isatty": lambda self: True})())
    assert progress_enabled()
    set_verbosity("WARNING")  # --quiet
    assert not progress_enabled()


def test_streamed_impute_copies_input_layers_file_to_file(tmp_path, counts_adata, monkeypatch):
    """From STREAM_CELLS cells an .h5ad input is read without its layers, which (and X, once
    the data are prepared) are copied file to file into the output: the same file contents
    as the in-memory path."""
    import scipy.sparse as sp

    import scfill.io
    import scfill.pipeline

    adata = counts_adata.copy()
    adata.layers["spliced"] = adata.X.copy() * 2
    adata.obsm["coords"] = np.arange(2 * adata.n_obs, dtype=float).reshape(-1, 2)
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    argv = ["-q", "impute", str(path), "--method", "knn", "--seed", "0", "-o"]
    assert main([*argv, str(tmp_path / "memory.h5ad")]) == 0
    lean = []
    real = scfill.io.read_h5ad_without_layers
    monkeypatch.setattr(scfill.io, "read_h5ad_without_layers",
                        lambda *a, **k: lean.append(real(*a, **k)) or lean[-1])
    monkeypatch.setattr(scfill.pipeline, "STREAM_CELLS", 10)
    assert main([*argv, str(tmp_path / "streamed.h5ad")]) == 0
    assert lean and not lean[0][0].layers and lean[0][1] == ["spliced"]
    assert lean[0][0].X is None  # released once prepared: the output's X came from the file
    memory, streamed = (ad.read_h5ad(tmp_path / f"{n}.h5ad") for n in ("memory", "streamed"))
    assert set(streamed.layers) == set(memory.layers) and \
        {"spliced", "imputed"} <= set(memory.layers)
    for name in memory.layers:
        a, b = memory.layers[name], streamed.layers[name]
        a, b = (m.toarray() if sp.issparse(m) else np.asarray(m) for m in (a, b))
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(streamed.obsm["coords"], adata.obsm["coords"])
    assert (streamed.X != memory.X).nnz == 0


def test_param_strings_follow_the_defaults_type():
    from scfill.methods.scmaskgan import ScMaskGan
    from scfill.utils import parse_param_strings

    parsed = parse_param_strings(ScMaskGan, ["tune_k=false", "epochs=3", "lr=0.01",
                                             "profile=fast", "batch_size=none"])
    assert parsed == {"tune_k": False, "epochs": 3, "lr": 0.01, "profile": "fast",
                      "batch_size": None}
    assert parse_param_strings(ScMaskGan, ["tune_k=True"]) == {"tune_k": True}
