"""Molecular cross-validation: the binomial split, the two scores, what the method sees."""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import make_counts
from scfill.cli import main
from scfill.errors import InputError
from scfill.evaluate import evaluate_method, parse_protocol
from scfill.evaluate.masking import MCV_TEST_SHARE, Protocol, degrade, split_molecules
from scfill.evaluate.metrics import mcv_mse, poisson_loss
from scfill.methods.base import _REGISTRY, Method, PreparedData, register
from test_protocols import spy  # noqa: F401  (the method that records what it receives)


# ------------------------------------------------------------------------ parsing
def test_mcv_defaults_to_open_problems_test_share():
    assert MCV_TEST_SHARE == 0.1  # Open Problems trains on train_frac = 0.9
    assert parse_protocol("mcv") == Protocol("mcv", 0.1)
    assert parse_protocol("MCV:0.25") == Protocol("mcv", 0.25)
    assert str(parse_protocol("mcv")) == "mcv:0.1"
    assert not parse_protocol("mcv").masks


@pytest.mark.parametrize("text", ["mcv:0", "mcv:1", "mcv:x"])
def test_bad_test_share_is_refused(text):
    with pytest.raises(InputError, match="fraction"):
        parse_protocol(text)


# -------------------------------------------------------------------------- split
def test_split_is_binomial_and_complete():
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix(rng.poisson(3.0, (300, 50)).astype(np.float32))
    train, test = split_molecules(counts, 0.1, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal((train + test).toarray(), counts.toarray())
    for part in (train, test):
        assert (part.data > 0).all() and np.array_equal(part.data, np.round(part.data))
    assert (train.toarray() <= counts.toarray()).all()
    # Binomial(x, 0.9): 90 % of the molecules in training, within 4 sd
    total, kept = counts.sum(), train.sum()
    assert abs(kept - 0.9 * total) < 4 * math.sqrt(total * 0.09)


def test_split_is_seeded_per_repeat():
    counts = make_counts(80, 30).X
    first = split_molecules(counts, 0.1, np.random.default_rng([0, 0]))[0]
    again = split_molecules(counts, 0.1, np.random.default_rng([0, 0]))[0]
    other = split_molecules(counts, 0.1, np.random.default_rng([0, 1]))[0]
    assert (first != again).nnz == 0
    assert (first != other).nnz > 0


def test_split_refuses_non_integer_counts():
    counts = sp.csr_matrix(np.array([[1.5, 0.0], [2.0, 1.0]], dtype=np.float32))
    with pytest.raises(InputError, match="integer counts"):
        split_molecules(counts, 0.1, np.random.default_rng(0))


def test_degrade_drops_genes_without_training_counts():
    counts = np.zeros((4, 3), dtype=np.float32)
    counts[:, 0] = 50
    counts[0, 1] = 1  # a single molecule: in the test part half of the time
    counts[:, 2] = 40
    adata = ad.AnnData(sp.csr_matrix(counts))
    outcomes = set()
    for seed in range(12):
        degraded = degrade(adata, Protocol("mcv", 0.5), np.random.default_rng(seed))
        kept = degraded.genes
        outcomes.add(tuple(kept))
        assert degraded.counts.getnnz(axis=0).min() > 0
        assert degraded.counts.shape == degraded.reference.shape == (4, len(kept))
        np.testing.assert_array_equal((degraded.counts + degraded.reference).toarray(),
                                      counts[:, kept])
    assert outcomes == {(0, 1, 2), (0, 2)}


# ------------------------------------------------------------------------- scores
TEST = np.array([[1, 0, 3], [0, 2, 2]], dtype=np.float64)
DENOISED = np.array([[2, 2, 4], [1, 1, 2]], dtype=np.float64)


def test_mse_by_hand():
    # test totals 4 and 4: target (median) 4, test unchanged; denoised totals 8 and 4:
    # row 1 halved to (1, 1, 2), row 2 stays (1, 1, 2); then log1p of both
    ln = math.log
    expected = (ln(2) ** 2 + (ln(4) - ln(3)) ** 2 + ln(2) ** 2 + (ln(3) - ln(2)) ** 2) / 6
    assert mcv_mse(DENOISED, TEST) == pytest.approx(expected, rel=1e-12)
    assert mcv_mse(sp.csr_matrix(DENOISED), sp.csr_matrix(TEST)) == pytest.approx(expected)


def test_poisson_loss_by_hand():
    # 8 test molecules, 16 training molecules: mu = denoised / 2 = (1, 1, 2; .5, .5, 1)
    ln, eps = math.log, 1e-6
    terms = [1 - 1 * ln(1 + eps), 1, 2 - 3 * ln(2 + eps),
             0.5, 0.5 - 2 * ln(0.5 + eps), 1 - 2 * ln(1 + eps)]
    expected = sum(terms) / 6
    assert poisson_loss(DENOISED, TEST, train_total=16) == pytest.approx(expected, rel=1e-12)
    assert poisson_loss(sp.csr_matrix(DENOISED), sp.csr_matrix(TEST),
                        train_total=16) == pytest.approx(expected, rel=1e-12)


def test_a_zero_mean_under_a_test_count_costs_log_eps():
    # the identity method's weakness: a training zero where the test part has molecules
    loss = poisson_loss(np.array([[0.0, 2.0]]), np.array([[1.0, 1.0]]), train_total=2)
    assert loss == pytest.approx((2 - math.log(1e-6) - math.log(2 + 1e-6)) / 2)


# ------------------------------------------------------------------ what it sees
def test_the_method_sees_only_the_training_part(spy):  # noqa: F811
    adata = make_counts(100, 30, seed=4)
    rows = evaluate_method(adata, "spy", protocol="mcv", seed=3, repeat=2)
    seen = spy.seen[-1]
    train, test = split_molecules(adata.X, 0.1, np.random.default_rng([3, 2]))
    genes = np.flatnonzero(train.getnnz(axis=0) > 0)
    cells = np.asarray(adata.obs_names.get_indexer(seen.obs_names))
    gene_index = np.asarray(adata.var_names[genes].get_indexer(seen.var_names))
    expected = train[:, genes][cells][:, gene_index]
    assert (seen.counts != expected).nnz == 0
    held_out = test[:, genes][cells][:, gene_index]
    assert held_out.sum() > 0
    # what it saw plus what was held out is the data; it saw nothing of the test part
    original = sp.csr_matrix(adata.X)[:, genes][cells][:, gene_index]
    np.testing.assert_array_equal((seen.counts + held_out).toarray(), original.toarray())
    assert seen.counts.sum() < original.sum()
    metrics = set(rows["metric"])
    assert {"mse", "poisson_loss", "runtime_s"} <= metrics
    assert rows["protocol"].unique().tolist() == ["mcv:0.1"]


# --------------------------------------------------------------- the property
@pytest.fixture
def lowrank():
    """A good smoother for low-rank data: the rank-3 SVD of the training logcounts."""

    @register
    class LowRank(Method):
        name = "lowrank-test"
        description = "test smoother"
        dropout_model = None
        combine_rule = "all"

        def __init__(self) -> None:
            self.info_ = {}

        def fit(self, data: PreparedData) -> LowRank:
            return self

        def reconstruct(self, data: PreparedData):
            u, s, vt = np.linalg.svd(data.logcounts.toarray(), full_matrices=False)
            yield slice(0, data.n_cells), np.maximum((u[:, :3] * s[:3]) @ vt[:3],
                                                     0).astype(np.float32)

    yield LowRank
    _REGISTRY.pop("lowrank-test")


def low_rank_counts(seed: int = 0) -> ad.AnnData:
    """Poisson counts around a rank-2 log-mean (3 groups on a 2-D factor space)."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(3, 2))[rng.integers(0, 3, 240)] + rng.normal(0, .1, (240, 2))
    loadings = rng.normal(0, 0.8, (2, 80))
    means = np.exp(factors @ loadings + rng.normal(0.5, 0.5, 80))
    counts = rng.poisson(means * rng.lognormal(0, 0.2, (240, 1)))
    return ad.AnnData(sp.csr_matrix(counts.astype(np.float32)),
                      obs=pd.DataFrame(index=[f"c{i}" for i in range(240)]),
                      var=pd.DataFrame(index=[f"g{j}" for j in range(80)]))


@pytest.mark.parametrize("smoother", ["lowrank-test", "knn"])
def test_identity_scores_worse_than_a_smoother_on_low_rank_truth(lowrank, smoother):
    adata = low_rank_counts()
    scores = {}
    for method in ("none", smoother):
        rows = evaluate_method(adata, method, protocol="mcv", seed=0)
        scores[method] = rows.set_index("metric")["value"]
    for metric in ("mse", "poisson_loss"):
        assert scores[smoother][metric] < scores["none"][metric], metric


def test_cli_evaluate_mcv(tmp_path, capsys):
    path = tmp_path / "counts.h5ad"
    make_counts(80, 30).write_h5ad(path)
    out = tmp_path / "rows.csv"
    assert main(["evaluate", "--method", "knn", "--dataset", str(path), "--protocol", "mcv",
                 "--repeats", "2", "-o", str(out)]) == 0
    rows = pd.read_csv(out)
    assert set(rows["repeat"]) == {0, 1}
    assert rows["protocol"].unique().tolist() == ["mcv:0.1"]
