"""Tests of method="auto" (scfill.select): hold-out, scoring, refit, skips, determinism."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfill
from scfill.errors import InputError
from scfill.evaluate import masking
from scfill.methods import base
from scfill.methods.base import Method, PreparedData
from scfill.select import format_uns_table, select_method

#: Hold-out used where the test does not depend on its kind.
HOLDOUT = "mask-nonzero:0.2"


class Spy(Method):
    """Identity reconstruction that records the counts of every fit (as a named frame:
    the pipeline sets all-zero cells and genes aside before the method sees the data)."""

    name = "spy_auto"
    description = "test spy"
    dropout_model = None
    combine_rule = "zeros"
    seen: ClassVar[list[pd.DataFrame]] = []

    def __init__(self) -> None:
        self.info_ = {}

    def fit(self, data: PreparedData) -> Spy:
        Spy.seen.append(pd.DataFrame(data.counts.toarray(), index=data.obs_names,
                                     columns=data.var_names))
        return self

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        yield slice(0, data.n_cells), data.logcounts.toarray()


class Crash(Spy):
    name = "crash_auto"

    def fit(self, data: PreparedData) -> Crash:
        raise RuntimeError("boom")


class Slow(Spy):
    name = "slow_auto"

    def fit(self, data: PreparedData) -> Slow:
        time.sleep(600)
        return self


@pytest.fixture(autouse=True)
def fakes():
    for cls in (Spy, Crash, Slow):
        base.register(cls)
    Spy.seen.clear()
    yield
    for cls in (Spy, Crash, Slow):
        base._REGISTRY.pop(cls.name, None)


@pytest.fixture(scope="module")
def data():
    adata = scfill.simulate(preset="scgacl-4", n_cells=150, n_genes=120, seed=0)
    return ad.AnnData(sp.csr_matrix(adata.X, dtype=np.float32), obs=adata.obs[[]],
                      var=adata.var[[]])


def recording(monkeypatch, name: str) -> list:
    """Replace ``masking.<name>`` by a wrapper that records what it returns."""
    calls = []
    original = getattr(masking, name)

    def record(*args):
        out = original(*args)
        calls.append(out)
        return out

    monkeypatch.setattr(masking, name, record)
    return calls


def test_masked_nonzeros_never_reach_the_method(data, monkeypatch):
    hidden = recording(monkeypatch, "hide_nonzeros")
    select_method(data, candidates=["spy_auto"], holdout=HOLDOUT, time_budget=120)
    # one draw per method scored (none, spy), the same split for both
    assert len(hidden) == 2
    assert (hidden[0][1] != hidden[1][1]).nnz == 0
    mask = hidden[-1][1]
    seen = Spy.seen[0].reindex(index=data.obs_names, columns=data.var_names, fill_value=0)
    rows, cols = sp.csr_matrix(mask).nonzero()
    assert rows.size > 0
    assert np.all(seen.to_numpy()[rows, cols] == 0)
    assert np.all(np.asarray(data.X[rows, cols]).ravel() > 0)
    # everything not hidden is shown as it was
    shown = data.X.toarray()
    shown[rows, cols] = 0
    np.testing.assert_array_equal(seen.to_numpy(), shown)


def test_mcv_training_part_only(data, monkeypatch):
    parts = recording(monkeypatch, "split_molecules")
    select_method(data, candidates=["spy_auto"], holdout="mcv:0.2", time_budget=120)
    assert len(parts) == 2
    train, test = parts[-1]
    seen = Spy.seen[0].reindex(index=data.obs_names, columns=data.var_names, fill_value=0)
    assert test.sum() > 0
    np.testing.assert_array_equal(seen.to_numpy(), train.toarray())
    assert seen.to_numpy().sum() < data.X.sum()


def test_winner_refit_on_full_data(data):
    adata = data.copy()
    scfill.impute(adata, "auto", params={"candidates": ["spy_auto"], "holdout": HOLDOUT,
                                         "time_budget": 120})
    assert adata.uns["scfill"]["method"] == "spy_auto"
    assert adata.uns["scfill"]["auto"]["winner"] == "spy_auto"
    selection_fit, final_fit = Spy.seen
    full = final_fit.reindex(index=data.obs_names, columns=data.var_names, fill_value=0)
    np.testing.assert_array_equal(full.to_numpy(), data.X.toarray())
    assert (selection_fit.to_numpy() > 0).sum() < (full.to_numpy() > 0).sum()


def test_crash_is_skipped_with_reason(data, caplog):
    with caplog.at_level(logging.WARNING, logger="scfill"):
        sel = select_method(data, candidates=["crash_auto", "spy_auto"], holdout=HOLDOUT,
                            time_budget=120)
    row = sel.scores.set_index("method").loc["crash_auto"]
    assert row["status"] == "failed" and "RuntimeError: boom" in row["reason"]
    assert sel.winner == "spy_auto"
    assert any("crash_auto skipped" in r.message for r in caplog.records)


def test_out_of_budget_is_skipped(data):
    start = time.perf_counter()
    sel = select_method(data, candidates=["spy_auto", "slow_auto"], holdout=HOLDOUT,
                        time_budget=15)
    assert time.perf_counter() - start < 120
    table = sel.scores.set_index("method")
    assert table.loc["slow_auto", "status"] == "out_of_budget"
    assert sel.winner == "spy_auto"
    assert sel.budget_used_s >= 0


def test_lower_score_wins_and_none_is_reference(data):
    sel = select_method(data, candidates=["spy_auto", "knn"], holdout=HOLDOUT,
                        time_budget=300)
    table = sel.scores.set_index("method")
    assert table.loc["none", "status"] == "reference"
    ok = table[table["status"] == "ok"]
    assert sel.winner == ok["score"].idxmin()
    assert table.loc["none", "relative_to_none"] == pytest.approx(1.0)


def test_deterministic_and_h5ad_writable(data, tmp_path):
    outs = []
    for _ in range(2):
        adata = data.copy()
        scfill.impute(adata, "auto", seed=3,
                      params={"candidates": "knn,spy_auto", "holdout": HOLDOUT,
                              "time_budget": 300})
        outs.append(adata)
    a, b = (o.uns["scfill"]["auto"] for o in outs)
    assert a["winner"] == b["winner"]
    assert {m: r["score"] for m, r in a["scores"].items()} == \
        {m: r["score"] for m, r in b["scores"].items()}
    np.testing.assert_array_equal(outs[0].layers["imputed"].toarray(),
                                  outs[1].layers["imputed"].toarray())
    path = tmp_path / "auto.h5ad"
    scfill.write(outs[0], path)
    back = ad.read_h5ad(path)
    assert back.uns["scfill"]["auto"]["winner"] == a["winner"]
    assert "chosen" in format_uns_table(back.uns["scfill"]["auto"])


def test_bad_requests_fail_before_work(data):
    with pytest.raises(InputError):
        select_method(data, candidates=["no_such_method"])
    with pytest.raises(InputError):
        select_method(data, candidates=["auto"])
    with pytest.raises(InputError):
        select_method(data, candidates=["knn"], time_budget=0)
    with pytest.raises(InputError):
        select_method(data, candidates=["knn"], holdout="truth")
    fractional = data.copy()
    fractional.X = fractional.X * 0.5
    with pytest.raises(InputError, match="integer"):
        select_method(fractional, candidates=["knn"], holdout="mcv:0.1")
    assert Spy.seen == []


def test_cli_prints_the_table(data, tmp_path, capsys):
    from scfill.cli import main

    path = tmp_path / "in.h5ad"
    scfill.write(data, path)
    out = tmp_path / "out.h5ad"
    code = main(["impute", str(path), "-o", str(out), "--method", "auto", "--candidates",
                 "knn,spy_auto", "--time-budget", "300", "--param", f"holdout={HOLDOUT}"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "method selection" in printed and "<- chosen" in printed
    assert ad.read_h5ad(out).uns["scfill"]["auto"]["candidates"] == "knn,spy_auto"
