"""Evaluation protocols: what the method sees, where it is scored, no ground-truth leak."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scfill
from conftest import make_counts
from scfill.errors import InputError
from scfill.evaluate import evaluate_method, parse_protocol, summarize
from scfill.evaluate.masking import Protocol, degrade, expressed_genes, hide_nonzeros
from scfill.evaluate.space import reference_space, retarget
from scfill.methods.base import _REGISTRY, Method, PreparedData, register


def simulated(seed: int = 0):
    """Counts with a ``true_counts`` layer: observed = truth with 30 % of entries dropped."""
    adata = make_counts(120, 40, seed=seed)
    rng = np.random.default_rng(seed + 1)
    true = adata.X.toarray() + rng.poisson(1.0, adata.shape)
    observed = true * (rng.random(true.shape) > 0.3)
    adata.layers["true_counts"] = sp.csr_matrix(true.astype(np.float32))
    adata.X = sp.csr_matrix(observed.astype(np.float32))
    return adata


@pytest.fixture
def spy():
    """A registered method that records what it receives; removed after the test."""

    @register
    class Spy(Method):
        name = "spy"
        description = "test spy"
        dropout_model = None
        combine_rule = "all"
        seen: ClassVar[list[PreparedData]] = []

        def __init__(self) -> None:
            self.info_ = {}

        def fit(self, data: PreparedData) -> Spy:
            Spy.seen.append(data)
            return self

        def reconstruct(self, data: PreparedData):
            yield slice(0, data.n_cells), data.logcounts.toarray() + 1.0

    yield Spy
    _REGISTRY.pop("spy")


# ------------------------------------------------------------------------ parsing
def test_parse_protocol_valid():
    assert parse_protocol("mask-nonzero:0.3") == Protocol("mask-nonzero", 0.3)
    assert parse_protocol(" Truth ") == Protocol("truth")
    assert str(parse_protocol("mask-expressed:0.1")) == "mask-expressed:0.1"


@pytest.mark.parametrize(("text", "message"), [
    ("mask", "unknown protocol 'mask'.*mask-nonzero:FRACTION"),
    ("mask-nonzero", "needs a fraction of non-zeros to hide.*mask-nonzero:0.3"),
    ("mask-nonzero:abc", "needs a fraction"),
    ("mask-nonzero:1.5", "fraction 1.5 is not between 0 and 1"),
    ("truth:0.2", "takes no fraction.*write just truth"),
])
def test_parse_protocol_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_protocol(text)


# ------------------------------------------------------------------------ masking
def test_hide_nonzeros_hides_exactly_the_fraction():
    counts = make_counts().X
    masked, hidden = hide_nonzeros(counts, 0.3, np.random.default_rng(0))
    assert hidden.nnz == round(0.3 * counts.nnz)
    dense, shown, where = counts.toarray(), masked.toarray(), hidden.toarray()
    assert np.all(dense[where] > 0), "only observed non-zeros are hidden"
    assert np.all(shown[where] == 0), "hidden entries are zero in what the method sees"
    assert np.array_equal(shown[~where], dense[~where]), "everything else is unchanged"
    again, _ = hide_nonzeros(counts, 0.3, np.random.default_rng(0))
    assert (again != masked).nnz == 0


def test_mask_expressed_keeps_genes_expressed_in_half_the_cells():
    adata = make_counts()
    expected = np.flatnonzero((adata.X > 0).toarray().mean(axis=0) >= 0.5)
    assert np.array_equal(expressed_genes(adata.X), expected)
    degraded = degrade(adata, parse_protocol("mask-expressed:0.1"), np.random.default_rng(0))
    assert np.array_equal(degraded.genes, expected)
    assert degraded.counts.shape == (len(degraded.cells), len(expected))
    assert degraded.hidden.nnz == round(0.1 * degraded.reference.nnz)


def test_mask_expressed_without_expressed_genes():
    adata = make_counts()
    adata.X = sp.csr_matrix(sp.eye(adata.n_obs, adata.n_vars, dtype=np.float32))
    with pytest.raises(InputError, match="no gene is expressed in at least half.*mask-nonzero"):
        degrade(adata, parse_protocol("mask-expressed:0.1"), np.random.default_rng(0))


def test_truth_needs_true_counts():
    with pytest.raises(InputError, match="needs layers\\['true_counts'\\].*preset:NAME"):
        evaluate_method(make_counts(), "none", protocol="truth")


# ------------------------------------------------------------------ no leakage
def test_method_sees_only_the_degraded_counts(spy, monkeypatch):
    adata = simulated()
    adata.obs["secret"] = "x"
    adata.uns["simulation"] = {"seed": 1}
    given = []
    original = scfill.impute

    def recording_impute(data, *args, **kwargs):
        given.append(data.copy())
        return original(data, *args, **kwargs)

    monkeypatch.setattr(scfill, "impute", recording_impute)
    evaluate_method(adata, "spy", protocol="mask-nonzero:0.3", seed=3, repeat=1)
    shown = given[0]
    assert list(shown.layers) == [] and list(shown.obs.columns) == []
    assert list(shown.uns) == [] and list(shown.var.columns) == []
    degraded = degrade(adata, parse_protocol("mask-nonzero:0.3"), np.random.default_rng([3, 1]))
    assert (shown.X != degraded.counts).nnz == 0
    seen = spy.seen[-1]
    assert seen.labels is None, "no labels unless labels_key is given"
    hidden = degraded.hidden.toarray()
    assert np.all(seen.counts.toarray()[hidden] == 0), "masked values never reach the method"
    assert seen.seed == 4, "method seed is seed + repeat"


def test_truth_protocol_shows_observed_not_true_counts(spy):
    adata = simulated()
    evaluate_method(adata, "spy", protocol="truth")
    seen = spy.seen[-1].counts.toarray()
    assert np.array_equal(seen, adata.X.toarray())
    assert not np.array_equal(seen, adata.layers["true_counts"].toarray())


def test_labels_reach_the_method_only_when_asked(spy):
    adata = simulated()
    evaluate_method(adata, "spy", protocol="mask-nonzero:0.3", labels_key="group")
    assert spy.seen[-1].label_names == sorted(adata.obs["group"].astype(str).unique())


# ---------------------------------------------------------------------- scoring
def test_mask_scores_only_hidden_entries():
    adata = make_counts()
    rows = evaluate_method(adata, "none", protocol="mask-nonzero:0.3", seed=2, repeat=1)
    scores = dict(zip(rows["metric"], rows["value"], strict=True))
    degraded = degrade(adata, parse_protocol("mask-nonzero:0.3"), np.random.default_rng([2, 1]))
    reference, _ = reference_space(degraded.reference)
    # "none" predicts 0 at every hidden entry, so the MSE is the mean square there
    expected = np.mean(reference.toarray()[degraded.hidden.toarray()] ** 2)
    assert scores["mse"] == pytest.approx(expected, rel=1e-5)
    assert np.isnan(scores["pearson"])


def test_mask_scores_are_blind_to_entries_not_hidden(spy):
    adata = make_counts()
    # spy adds 1 everywhere (combine "all"): at hidden entries it predicts ln(1 + e)-ish
    # values; the score must equal a hand computation over the hidden entries only
    rows = evaluate_method(adata, "spy", protocol="mask-nonzero:0.5", seed=0)
    scores = dict(zip(rows["metric"], rows["value"], strict=True))
    degraded = degrade(adata, parse_protocol("mask-nonzero:0.5"), np.random.default_rng([0, 0]))
    reference, target = reference_space(degraded.reference)
    shown, shown_target = reference_space(degraded.counts)
    predicted = retarget(sp.csr_matrix(shown.toarray() + 1.0), shown_target, target)
    where = degraded.hidden.toarray()
    expected = np.mean((predicted.toarray()[where] - reference.toarray()[where]) ** 2)
    assert scores["mse"] == pytest.approx(expected, rel=1e-4)


def test_truth_protocol_metrics_for_no_imputation():
    adata = simulated()
    rows = evaluate_method(adata, "none", protocol="truth", dataset="sim")
    scores = dict(zip(rows["metric"], rows["value"], strict=True))
    assert scores["biozero_mse"] == 0.0, "zeros left as zeros cost nothing at true zeros"
    assert scores["dropout_f1"] == 0.0 and np.isnan(scores["dropout_precision"])
    assert scores["dropout_fpr"] == 0.0
    assert scores["dropout_mse"] > scores["mse"] > 0
    assert {"ari", "nmi", "purity", "entropy", "asw", "acc", "f1", "auc",
            "deg_f1", "deg_jaccard", "deg_auc", "js_distance", "wasserstein", "cv",
            "gini", "gini_mse", "runtime_s"} <= set(scores)
    assert set(rows["dataset"]) == {"sim"} and set(rows["protocol"]) == {"truth"}


def test_knn_beats_no_imputation_at_dropouts():
    adata = simulated()
    scores = {m: dict(zip(*evaluate_method(adata, m, protocol="truth")[["metric", "value"]]
                          .to_numpy().T, strict=True)) for m in ("none", "knn")}
    assert scores["knn"]["dropout_mse"] < scores["none"]["dropout_mse"]
    assert scores["knn"]["dropout_f1"] > 0


def test_repeats_are_reproducible_and_differ():
    adata = make_counts()
    first = evaluate_method(adata, "knn", protocol="mask-nonzero:0.3", seed=0, repeat=0)
    again = evaluate_method(adata, "knn", protocol="mask-nonzero:0.3", seed=0, repeat=0)
    other = evaluate_method(adata, "knn", protocol="mask-nonzero:0.3", seed=0, repeat=1)
    mse = {name: frame.set_index("metric").loc["mse", "value"]
           for name, frame in (("first", first), ("again", again), ("other", other))}
    assert mse["first"] == mse["again"] != mse["other"]
    summary = summarize(pd.concat([first, other]))
    row = summary[summary["metric"] == "mse"].iloc[0]
    assert row["count"] == 2 and row["mean"] == pytest.approx((mse["first"] + mse["other"]) / 2)


def test_downstream_protocol_leaves_data_and_scores_clusters():
    adata = make_counts()
    rows = evaluate_method(adata, "none", protocol="downstream", truth_key="group",
                           clustering="leiden")
    scores = dict(zip(rows["metric"], rows["value"], strict=True))
    assert scores["pearson_original"] == pytest.approx(1.0)
    assert scores["wasserstein"] == pytest.approx(0.0, abs=1e-6)
    assert 0 <= scores["ari"] <= 1


def test_bad_label_columns():
    adata = make_counts()
    with pytest.raises(InputError, match="label column 'nope' not found"):
        evaluate_method(adata, "none", protocol="downstream", truth_key="nope")
    with pytest.raises(InputError, match="label column 'nope' not found"):
        evaluate_method(adata, "none", protocol="downstream", labels_key="nope")


def test_bad_time_column():
    adata = make_counts()
    with pytest.raises(InputError, match="time column 'when' not found"):
        evaluate_method(adata, "none", protocol="downstream", time_key="when")
    adata.obs["when"] = "early"
    with pytest.raises(InputError, match="'when' holds values that are not numbers"):
        evaluate_method(adata, "none", protocol="downstream", time_key="when")
