"""The benchmark runner: grid, isolation, resume, skipped peers, tables and report.

Most tests run a fake job (tests/bench_fakes.py) whose behaviour follows the method name,
so the child processes start fast; one test runs the real evaluation on a fake peer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scfill
from bench_fakes import calls
from conftest import make_counts
from scfill.bench import runner
from scfill.bench.isolate import run_isolated
from scfill.bench.report import metric_table, summarize
from scfill.errors import InputError
from scfill.external.peers import Peer
from scfill.methods.base import _REGISTRY, Method, PreparedData

FAKE_JOB = "bench_fakes:fake_job"
#: Set in the environment of child processes that must see the fake methods registered.
CHILD_FLAG = "SCFILL_TEST_BENCH_FAKES"


class _Fake(Method):
    description = "test method"
    dropout_model = None
    combine_rule = "zeros"

    def __init__(self) -> None:
        self.info_ = {}

    def fit(self, data: PreparedData) -> _Fake:
        return self

    def reconstruct(self, data: PreparedData):
        """Every entry takes its gene's mean."""
        means = np.asarray(data.logcounts.mean(axis=0), dtype=np.float32)
        yield slice(0, data.n_cells), np.repeat(means, data.n_cells, axis=0)


class _Absent(Peer):
    name = "fake-absent"
    description = "test peer whose package is missing"
    module = "scfill_test_no_such_module"
    distribution = "no-such-package==0.0"

    def __init__(self) -> None:
        self.info_ = {}

    def fit(self, data: PreparedData) -> _Absent:
        self._package()
        return self

    def reconstruct(self, data: PreparedData) -> np.ndarray:
        raise AssertionError("never reached")


FAKE_NAMES = ("fake-good", "fake-bad", "fake-raise", "fake-exit", "fake-sleep", "fakepeer")
FAKES = [type(f"Fake{i}", (_Fake,), {"name": n}) for i, n in enumerate(FAKE_NAMES)] + [_Absent]


def _register() -> None:
    for cls in FAKES:
        _REGISTRY[cls.name] = cls


if os.environ.get(CHILD_FLAG):  # imported by a benchmark child process (preload)
    _register()


@pytest.fixture(autouse=True)
def fakes():
    _register()
    yield
    for cls in FAKES:
        _REGISTRY.pop(cls.name, None)


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "tiny.h5ad"
    adata = make_counts(80, 30, seed=1)
    adata.obs["label"] = adata.obs["group"]
    adata.write_h5ad(path)
    return path


def config(tmp_path, dataset, methods, **kwargs) -> runner.BenchmarkConfig:
    options = {"protocols": ["mask-nonzero:0.1"], "repeats": 1, "job": FAKE_JOB,
               "timeout_s": 60.0, "umap_dataset": ""} | kwargs
    return runner.BenchmarkConfig(methods=methods, datasets=[str(dataset)],
                                  out=tmp_path / "run", **options)


def test_grid_runs_every_combination(tmp_path, dataset):
    other = tmp_path / "other.h5ad"
    make_counts(60, 25, seed=2).write_h5ad(other)
    cfg = config(tmp_path, dataset, ["fake-good", "fake-bad"], repeats=2,
                 protocols=["mask-nonzero:0.1", "mask-nonzero:0.3"])
    cfg.datasets = [str(dataset), str(other)]
    results, runs, paths = runner.run_grid(cfg)
    assert len(runs) == 2 * 2 * 2 * 2
    assert set(runs["status"]) == {"ok"}
    assert sorted(paths) == ["other", "tiny"]
    assert len(calls(cfg.out / "datasets")) == 16
    combos = runs[["dataset", "method", "protocol", "repeat"]].drop_duplicates()
    assert len(combos) == 16
    # tidy rows: the job's metrics plus wall time and peak memory of each run
    assert list(results.columns) == runner.RESULT_COLUMNS
    per_run = results.groupby(["dataset", "method", "protocol", "repeat"]).size()
    assert (per_run == 5).all()
    rss = results.loc[results["metric"] == "peak_rss_mb", "value"]
    assert (rss > 1).all()


def test_rerun_skips_finished_cells_and_force_redoes_them(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-good"], repeats=2)
    runner.run_grid(cfg)
    assert len(calls(cfg.out / "datasets")) == 2
    cfg.repeats = 3
    _, runs, _ = runner.run_grid(cfg)
    assert len(calls(cfg.out / "datasets")) == 3  # only the new repeat ran
    assert len(runs) == 3
    cfg.force = True
    runner.run_grid(cfg)
    assert len(calls(cfg.out / "datasets")) == 6  # force ran all three again


def test_changed_settings_need_force(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-good"])
    runner.run_grid(cfg)
    cfg.max_cells = 50
    with pytest.raises(InputError, match=r"results made with other settings \(max_cells\)"):
        runner.run_grid(cfg)


def test_streams_of_methods_share_a_folder_but_not_changed_parameters(tmp_path, dataset):
    first = config(tmp_path, dataset, ["fake-good"], params={"fake-good": {"k": 1}})
    runner.run_grid(first)
    second = config(tmp_path, dataset, ["none"], params={"none": {}})
    runner.run_grid(second)  # another method's stream adds its parameters
    settings = json.loads((first.out / "settings.json").read_text())
    assert settings["params"] == {"fake-good": {"k": 1}, "none": {}}
    first.params = {"fake-good": {"k": 2}}
    with pytest.raises(InputError, match=r"other settings \(params of fake-good\)"):
        runner.run_grid(first)


def test_a_crash_or_an_exception_or_a_hang_does_not_stop_the_grid(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-raise", "fake-exit", "fake-sleep", "fake-good"],
                 timeout_s=5.0)
    results, runs, _ = runner.run_grid(cfg)
    status = dict(zip(runs["method"], runs["status"], strict=True))
    assert status == {"fake-raise": "failed", "fake-exit": "crashed",
                      "fake-sleep": "timeout", "fake-good": "ok"}
    message = dict(zip(runs["method"], runs["message"], strict=True))
    assert message["fake-raise"] == "RuntimeError: boom"
    assert "exited with code 3" in message["fake-exit"]
    assert "time limit of 5 s" in message["fake-sleep"]
    assert set(results["method"]) == {"fake-good"}
    record = json.loads(next((cfg.out / "runs").glob("*fake-raise*")).read_text())
    assert "RuntimeError: boom" in record["traceback"]


def test_retry_failed_reruns_only_failures(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-raise", "fake-good"])
    runner.run_grid(cfg)
    cfg.retry_failed = True
    runner.run_grid(cfg)
    ran = [line.split()[1] for line in calls(cfg.out / "datasets")]
    assert ran == ["fake-raise", "fake-good", "fake-raise"]


def test_missing_peer_is_skipped_with_the_install_hint(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-absent", "fake-good"])
    _, runs, _ = runner.run_grid(cfg)
    absent = runs[runs["method"] == "fake-absent"].iloc[0]
    assert absent["status"] == "skipped"
    assert "pip install 'scfill[peers]'" in absent["message"]
    assert [line.split()[1] for line in calls(cfg.out / "datasets")] == ["fake-good"]


def test_isolated_call_reports_its_result_and_memory():
    outcome = run_isolated("json:loads", {"s": "[1, 2]"}, timeout_s=30)
    assert outcome.status == "ok"
    assert outcome.result == [1, 2]
    assert outcome.peak_rss_mb > 1


def test_metric_table_marks_the_best_per_column():
    rows = [("d1", "a", 0.1), ("d1", "a", 0.3), ("d1", "b", 0.5), ("d1", "b", 0.7),
            ("d2", "a", 0.9), ("d2", "b", 0.2)]
    results = pd.DataFrame([{"dataset": d, "method": m, "protocol": "p", "repeat": i,
                             "seed": 0, "metric": "rmse", "value": v}
                            for i, (d, m, v) in enumerate(rows)])
    table = metric_table(summarize(results), "p", "rmse", ["b", "a"])
    assert list(table.index) == ["b", "a"]
    assert table.loc["a", "d1"] == "**0.200 ± 0.141**"  # lower rmse is better
    assert table.loc["b", "d1"] == "0.600 ± 0.141"
    assert table.loc["b", "d2"] == "**0.200**"  # one repeat: no sd
    pearson = summarize(results.assign(metric="pearson"))
    assert metric_table(pearson, "p", "pearson", ["a", "b"]).loc["a", "d2"].startswith("**")


def test_report_is_written_from_the_grid(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-good", "fake-bad", "fake-raise"], repeats=2)
    report = runner.run_benchmark(cfg, command="scfill benchmark ...")
    text = report.read_text()
    assert "- Command: `scfill benchmark ...`" in text
    assert "| fake-good | **0.105 ± 0.007** |" in text
    assert "| fake-raise | failed | 2 | tiny | RuntimeError: boom |" in text
    assert (cfg.out / "figures" / "metrics_mask-nonzero_0.1.png").stat().st_size > 0
    assert (cfg.out / "figures" / "cost.png").exists()
    assert len(pd.read_csv(cfg.out / "runs.csv")) == 6


@pytest.mark.parametrize(("change", "message"), [
    ({"methods": ["nope"]}, "unknown method 'nope'"),
    ({"protocols": ["mask-nonzero:2"]}, "mask-nonzero"),
    ({"repeats": 0}, "parameter repeats=0 is out of range"),
    ({"datasets": ["preset:nope"]}, "unknown simulator preset 'nope'"),
    ({"datasets": ["/no/such/file.h5ad"]}, "dataset not found"),
    ({"params": {"knnn": {"k": 3}}}, "parameters given for unknown method\\(s\\): knnn"),
])
def test_bad_settings_are_rejected(tmp_path, dataset, change, message):
    cfg = config(tmp_path, dataset, ["fake-good"])
    for key, value in change.items():
        setattr(cfg, key, value)
    with pytest.raises(InputError, match=message):
        runner.run_grid(cfg)


def _fake_peer_through_a_child(tmp_path, dataset, monkeypatch, **options):
    """The default job on a registered test method, in a child process: the mask protocol
    runs, truth (no true counts in real data) is skipped with its reason, not failed."""
    monkeypatch.setenv(CHILD_FLAG, "1")
    cfg = config(tmp_path, dataset, ["fakepeer"], job=runner.EVALUATE_JOB,
                 protocols=["mask-nonzero:0.2", "truth"], preload=("test_bench",),
                 timeout_s=300.0, **options)
    report = runner.run_benchmark(cfg, command="test")
    runs = pd.read_csv(cfg.out / "runs.csv").set_index("protocol")
    assert runs.loc["mask-nonzero:0.2", "status"] == "ok"
    assert runs.loc["truth", "status"] == "skipped"
    assert "needs layers['true_counts']" in runs.loc["truth", "message"]
    results = pd.read_csv(cfg.out / "results.csv")
    assert {"rmse", "pearson", "runtime_s", "wall_s", "peak_rss_mb"} <= set(results["metric"])
    return cfg, report, results


def test_fake_peer_through_the_real_evaluation_fast(tmp_path, dataset, monkeypatch):
    """Without the UMAP (the slow part): the child's scores are those of the same
    evaluation run in this process."""
    from scfill.evaluate.run import evaluate_method

    _, _, results = _fake_peer_through_a_child(tmp_path, dataset, monkeypatch)
    child = results.set_index("metric")["value"]
    here = evaluate_method(scfill.read(dataset), "fakepeer", protocol="mask-nonzero:0.2",
                           seed=int(results["seed"].iloc[0])).set_index("metric")["value"]
    for metric in ("mse", "rmse", "pearson", "cosine"):
        assert child[metric] == pytest.approx(here[metric], rel=1e-6), metric


@pytest.mark.slow
def test_fake_peer_through_the_real_evaluation(tmp_path, dataset, monkeypatch):
    """With the UMAP of the dataset in the report."""
    cfg, report, _ = _fake_peer_through_a_child(tmp_path, dataset, monkeypatch,
                                                umap_dataset="tiny")
    assert (cfg.out / "figures" / "umap_tiny.png").exists()
    assert "## UMAP of `tiny`" in report.read_text()


def test_cli_rejects_a_malformed_method_parameter(tmp_path, dataset, capsys):
    from scfill.cli import main

    code = main(["benchmark", "--datasets", str(dataset), "--out", str(tmp_path / "r"),
                 "--methods", "fake-good", "--param", "epochs=3"])
    assert code == 2
    assert "parameter 'epochs=3' is not of the form METHOD.KEY=VALUE" in capsys.readouterr().err


def test_cli_runs_the_grid(tmp_path, dataset, monkeypatch, capsys):
    from scfill.cli import main

    original = runner.BenchmarkConfig.__init__

    def with_fake_job(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.job = FAKE_JOB

    monkeypatch.setattr(runner.BenchmarkConfig, "__init__", with_fake_job)
    code = main(["benchmark", "--datasets", str(dataset), "--out", str(tmp_path / "r"),
                 "--methods", "fake-good,fake-bad", "--repeats", "1", "--umap-dataset",
                 "none"])
    assert code == 0
    assert "report.md" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "r" / "runs.csv")) == 2


def test_report_only_runs_nothing_and_shows_unfinished_runs(tmp_path, dataset):
    cfg = config(tmp_path, dataset, ["fake-good"])
    runner.run_grid(cfg)
    cfg.methods = ["fake-good", "fake-bad"]
    cfg.report_only = True
    report = runner.run_benchmark(cfg)
    assert [line.split()[1] for line in calls(cfg.out / "datasets")] == ["fake-good"]
    assert "| fake-bad | not run | 1 | tiny | not run yet |" in report.read_text()
