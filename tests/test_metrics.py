"""Evaluation metrics against hand-computed values, and the downstream analyses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import wasserstein_distance

from scfill.errors import InputError
from scfill.evaluate import downstream, metrics


# ------------------------------------------------------------------------ entries
def test_entry_errors_hand_computed():
    scores = metrics.entry_errors(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert scores["mse"] == pytest.approx(4 / 3)
    assert scores["rmse"] == pytest.approx(np.sqrt(4 / 3))
    # deviations (-1, 0, 1) and (-5/3, -2/3, 7/3): r = 4 / sqrt(2 · 78/9)
    assert scores["pearson"] == pytest.approx(4 / np.sqrt(2 * 78 / 9))
    assert scores["cosine"] == pytest.approx(20 / np.sqrt(14 * 30))


def test_entry_errors_sparse_equals_dense():
    rng = np.random.default_rng(0)
    a = sp.random(30, 20, density=0.3, random_state=1, format="csr")
    b = sp.random(30, 20, density=0.3, random_state=2, format="csr")
    sparse = metrics.entry_errors(a, b)
    x, y = a.toarray().ravel(), b.toarray().ravel()
    assert sparse["mse"] == pytest.approx(np.mean((x - y) ** 2))
    assert sparse["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert metrics.entry_errors(a, b.toarray()) == pytest.approx(sparse)
    # a subset: restrict both and pass the entry count
    pattern = sp.csr_matrix(rng.random((30, 20)) < 0.2)
    subset = metrics.entry_errors(metrics.restrict(a, pattern), metrics.restrict(b, pattern),
                                  n=pattern.nnz)
    keep = pattern.toarray().ravel()
    assert subset["mse"] == pytest.approx(np.mean((x[keep] - y[keep]) ** 2))
    assert subset["cosine"] == pytest.approx(
        x[keep] @ y[keep] / np.linalg.norm(x[keep]) / np.linalg.norm(y[keep]))


def test_entry_errors_constant_side_and_shape_mismatch():
    scores = metrics.entry_errors(np.zeros(3), np.array([1.0, 2.0, 3.0]))
    assert np.isnan(scores["pearson"]) and np.isnan(scores["cosine"])
    assert scores["mse"] == pytest.approx(14 / 3)
    with pytest.raises(InputError, match="shapes differ.*same cells and genes"):
        metrics.entry_errors(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------ dropout calling
def test_binary_scores_hand_computed():
    scores = metrics.binary_scores(tp=2, fp=1, fn=1, tn=4)
    assert scores == pytest.approx({"accuracy": 6 / 8, "f1": 4 / 6, "precision": 2 / 3,
                                    "fpr": 1 / 5})


def test_dropout_identification_hand_computed():
    observed = sp.csr_matrix(np.array([[0, 0, 0, 5], [0, 0, 1, 0]]))
    true = sp.csr_matrix(np.array([[2, 0, 3, 5], [0, 4, 1, 0]]))
    # observed zeros: (0,0) dropout, (0,1) bio, (0,2) dropout, (1,0) bio, (1,1) dropout,
    # (1,3) bio; the method filled (0,0), (0,1), (1,1)
    imputed = sp.csr_matrix(np.array([[1.0, 0.5, 0, 5], [0, 2.0, 1, 0]]))
    scores = metrics.dropout_identification(observed, true, imputed)
    # tp 2, fp 1, fn 1, tn 2
    assert scores == pytest.approx({"dropout_accuracy": 4 / 6, "dropout_f1": 4 / 6,
                                    "dropout_precision": 2 / 3, "dropout_fpr": 1 / 3})
    nothing = metrics.dropout_identification(observed, true, observed)
    assert nothing["dropout_f1"] == 0.0 and np.isnan(nothing["dropout_precision"])


# --------------------------------------------------------------------- clustering
LABELS = np.array([0, 0, 0, 1, 1, 1])
CLUSTERS = np.array([5, 5, 7, 7, 7, 7])


def test_purity_and_entropy_hand_computed():
    assert metrics.purity(LABELS, CLUSTERS) == pytest.approx(5 / 6)
    # cluster 7 holds types (1, 3) of 4 cells: −[log2(1/4) + 3 log2(3/4)] / (6 log2 2)
    expected = -(np.log2(1 / 4) + 3 * np.log2(3 / 4)) / 6
    assert metrics.cluster_entropy(LABELS, CLUSTERS) == pytest.approx(expected)
    assert metrics.cluster_entropy(LABELS, LABELS) == 0.0
    assert metrics.purity(LABELS, LABELS) == 1.0


def test_matched_classification_hand_computed():
    scores = metrics.matched_classification(LABELS, CLUSTERS)
    # cluster 5 → type 0 (2 cells right), cluster 7 → type 1 (3 right)
    assert scores["acc"] == pytest.approx(5 / 6)
    assert scores["f1"] == pytest.approx((0.8 + 6 / 7) / 2)
    # type 0: TPR 2/3, TNR 1; type 1: TPR 1, TNR 2/3
    assert scores["auc"] == pytest.approx(5 / 6)
    # a third cluster has no type to match: its cells count as wrong
    extra = metrics.matched_classification(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2]))
    assert extra["acc"] == pytest.approx(0.75)


def test_clustering_agreement_uses_library_scores():
    scores = metrics.clustering_agreement(LABELS, CLUSTERS)
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    assert scores["ari"] == pytest.approx(adjusted_rand_score(LABELS, CLUSTERS))
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(LABELS, CLUSTERS))
    assert set(scores) == {"ari", "nmi", "purity", "entropy", "acc", "f1", "auc"}


# ----------------------------------------------------------------- distributions
def test_gini_hand_computed_and_against_brute_force():
    # column 0: (0, 0, 1, 3): Σ|xi − xj| over ordered pairs 20, 2 N² mean = 32
    matrix = sp.csr_matrix(np.array([[0, 2, 0], [0, 2, 0], [1, 2, 0], [3, 2, 0]], float))
    gini = metrics.gene_gini(matrix)
    assert gini[0] == pytest.approx(20 / 32)
    assert gini[1] == pytest.approx(0.0)
    assert np.isnan(gini[2])
    rng = np.random.default_rng(3)
    dense = rng.poisson(0.7, (25, 6)).astype(float)
    brute = np.abs(dense[:, None, :] - dense[None, :, :]).sum(axis=(0, 1)) / (
        2 * 25**2 * dense.mean(axis=0))
    assert metrics.gene_gini(sp.csr_matrix(dense)) == pytest.approx(brute)
    assert metrics.gene_gini(dense) == pytest.approx(brute)


def test_gene_cv_hand_computed():
    cv = metrics.gene_cv(sp.csr_matrix(np.array([[1.0, 0.0], [3.0, 0.0]])))
    assert cv[0] == pytest.approx(0.5)
    assert np.isnan(cv[1])


def test_wasserstein_hand_computed_and_sparse_zeros():
    a = sp.csr_matrix(np.array([[0.0, 0.0], [1.0, 1.0]]))
    b = sp.csr_matrix(np.array([[0.0, 0.0], [0.0, 2.0]]))
    # CDFs differ by 1/4 on [0, 1) and on [1, 2)
    assert metrics.wasserstein(a, b) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    x = sp.random(20, 10, density=0.3, random_state=4, format="csr")
    y = rng.random((20, 10))
    assert metrics.wasserstein(x, y) == pytest.approx(
        wasserstein_distance(x.toarray().ravel(), y.ravel()))


def test_js_distance_bounds():
    a = sp.random(20, 10, density=0.3, random_state=4, format="csr")
    assert metrics.js_distance(a, a.toarray()) == pytest.approx(0.0, abs=1e-12)
    zeros, ones = np.zeros((4, 4)), np.ones((4, 4))
    assert metrics.js_distance(zeros, ones) == pytest.approx(1.0)


# ------------------------------------------------------------------ DE, trajectory
def test_set_agreement_and_ranking_auc_hand_computed():
    assert metrics.set_agreement({1, 2, 3}, {2, 3, 4, 5}) == pytest.approx(
        {"f1": 4 / 7, "jaccard": 2 / 5})
    # positives score 0.9 and 0.1, negatives 0.8 and 0.2: 2 of 4 pairs ordered right
    assert metrics.ranking_auc([0.9, 0.8, 0.1, 0.2], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert np.isnan(metrics.ranking_auc([0.1, 0.2], [1, 1]))


def test_pos_hand_computed():
    pos = metrics.pseudotemporal_ordering_score
    assert pos([0.1, 0.2, 0.3], [1, 2, 3]) == pytest.approx(1.0)
    assert pos([0.3, 0.2, 0.1], [1, 2, 3]) == pytest.approx(-1.0)
    # order by pseudotime gives times (1, 3, 2): (2 + 1 − 1) / (1 + 2 + 1)
    assert pos([0.1, 0.3, 0.2], [1, 2, 3]) == pytest.approx(0.5)
    # ties in true time: order (2, 1, 1) gives (−1 − 1 + 0) / (0 + 1 + 1)
    assert pos([0.1, 0.2, 0.3], [2, 1, 1]) == pytest.approx(-1.0)
    assert metrics.kendall_tau([0.1, 0.3, 0.2], [1, 3, 2]) == pytest.approx(1.0)


# -------------------------------------------------------------------- downstream
def _blobs(n_per: int = 40, n_genes: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b", "c"], n_per)
    centres = rng.gamma(1.0, 2.0, (3, n_genes))
    centres[np.arange(3), np.arange(3)] += 8  # one strong marker per group
    codes = np.repeat(np.arange(3), n_per)
    values = np.log1p(rng.poisson(centres[codes]))
    return sp.csr_matrix(values), labels


@pytest.mark.parametrize("algorithm", ["kmeans", "leiden", "louvain"])
def test_clustering_recovers_separated_groups(algorithm):
    matrix, labels = _blobs()
    scores = downstream.clustering_scores(matrix, labels, algorithm=algorithm)
    # purity alone is reached by over-clustering (one cell per cluster has purity 1):
    # the three groups must come back as three clusters, each one group
    assert scores["n_clusters"] == 3
    assert scores["ari"] == pytest.approx(1.0) and scores["nmi"] == pytest.approx(1.0)
    assert scores["purity"] == pytest.approx(1.0) and scores["entropy"] == pytest.approx(0.0)
    assert -1 <= scores["asw"] <= 1


def test_purity_is_fooled_by_over_clustering_ari_is_not():
    """Why the test above pins ARI and the cluster count: singletons have purity 1."""
    labels = np.repeat(["a", "b", "c"], 40)
    singletons = np.arange(labels.size).astype(str)
    assert metrics.purity(labels, singletons) == pytest.approx(1.0)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels, singletons) < 0.05


def test_clustering_bad_input_messages():
    with pytest.raises(InputError, match="unknown clustering 'spectral'.*kmeans, leiden"):
        downstream.cluster(np.zeros((5, 2)), algorithm="spectral")
    with pytest.raises(InputError, match="k-means clustering needs the number of clusters"):
        downstream.cluster(np.zeros((5, 2)), algorithm="kmeans")
    with pytest.raises(InputError, match="PCA needs at least 3"):
        downstream.pca(np.ones((2, 5)))


def test_deg_agreement_perfect_on_itself_and_lower_when_shuffled():
    matrix, labels = _blobs(n_per=30)
    same = downstream.deg_agreement(matrix, matrix, labels)
    assert same["deg_f1"] == 1.0 and same["deg_jaccard"] == 1.0
    # the ranking (|test statistic|) need not put every |logFC| ≥ 1 gene first
    assert same["deg_auc"] > 0.95
    rng = np.random.default_rng(0)
    shuffled = sp.csr_matrix(matrix.toarray()[:, rng.permutation(matrix.shape[1])])
    assert downstream.deg_agreement(shuffled, matrix, labels)["deg_f1"] < 1.0


def test_trajectory_scores_follow_a_linear_path():
    rng = np.random.default_rng(0)
    time = np.repeat(np.arange(5), 30).astype(float)
    genes = np.linspace(0, 1, 20)
    rates = np.exp(2 * np.outer(time / 4, genes) + 2 * np.outer(1 - time / 4, 1 - genes))
    matrix = sp.csr_matrix(np.log1p(rng.poisson(rates)))
    scores = downstream.trajectory_scores(matrix, time)
    assert scores["pos"] > 0.8
    assert scores["kendall_tau"] > 0.6
