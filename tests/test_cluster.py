"""Tests of scfill.cluster (pre-clustering)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from scfill import cluster
from scfill.errors import InputError


def blobs(n_cells=240, n_genes=60, n_groups=4, seed=0, sparse=True):
    """Log-normalised-like data: groups with distinct mean profiles, many zeros."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(n_groups, size=n_cells)
    profiles = rng.gamma(0.5, 2.0, size=(n_groups, n_genes)) * (
        rng.random((n_groups, n_genes)) < 0.5) * 3
    counts = rng.poisson(profiles[truth] + 0.05)
    logcounts = np.log1p(counts.astype(np.float32))
    return (sp.csr_matrix(logcounts) if sparse else logcounts), truth


@pytest.mark.parametrize("method", cluster.METHODS)
def test_recovers_well_separated_groups(method):
    data, truth = blobs()
    labels = cluster.precluster(data, method=method, seed=0)
    assert labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(labels.max() + 1))
    assert adjusted_rand_score(truth, labels) > 0.9


@pytest.mark.parametrize("method", cluster.METHODS)
def test_deterministic_by_seed(method):
    data, _ = blobs(n_cells=150, seed=1)
    a = cluster.precluster(data, method=method, seed=3)
    b = cluster.precluster(data, method=method, seed=3)
    np.testing.assert_array_equal(a, b)


def test_dense_and_sparse_input_agree():
    data, _ = blobs(n_cells=120, seed=2)
    a = cluster.precluster(data, method="kmeans", seed=0)
    b = cluster.precluster(data.toarray(), method="kmeans", seed=0)
    assert adjusted_rand_score(a, b) == 1.0


@pytest.mark.parametrize("method", cluster.METHODS)
@pytest.mark.parametrize("n_cells", [1, 2, 3, 6])
def test_tiny_inputs(method, n_cells):
    data, _ = blobs(n_cells=n_cells, n_genes=8, n_groups=2, seed=3)
    labels = cluster.precluster(data, method=method, seed=0)
    assert labels.shape == (n_cells,)
    assert labels.min() == 0 and labels.max() < max(n_cells - 1, 1)


def test_fixed_number_of_clusters():
    data, _ = blobs(n_cells=150, seed=4)
    for method in cluster.METHODS:
        labels = cluster.precluster(data, method=method, seed=0, n_clusters=3)
        assert np.unique(labels).size == 3
    assert np.all(cluster.precluster(data, n_clusters=1) == 0)


def test_higher_density_distance_matches_brute_force():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(300, 3))
    density = rng.random(300)
    delta = cluster.higher_density_distance(points, density)
    d = np.linalg.norm(points[:, None] - points[None], axis=2)
    d[density[None, :] <= density[:, None]] = np.inf
    expected = d.min(axis=1)
    top = np.argmax(density)
    expected[top] = np.max(np.delete(expected, top))
    np.testing.assert_allclose(delta, expected)


def test_density_peaks_find_blob_centres():
    rng = np.random.default_rng(6)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0]], float)
    points = np.vstack([c + rng.normal(size=(100, 3)) for c in centres])
    peaks = cluster.density_peaks(points, seed=0)
    assert len(peaks.centers) == 3
    nearest = np.linalg.norm(points[peaks.centers][:, None] - centres[None], axis=2).argmin(1)
    assert sorted(nearest) == [0, 1, 2]


def test_bad_inputs_raise_input_error():
    data, _ = blobs(n_cells=20)
    with pytest.raises(InputError, match="parameter method='leiden' is not allowed"):
        cluster.precluster(data, method="leiden")
    with pytest.raises(InputError, match="parameter n_clusters=21 is out of range"):
        cluster.precluster(data, n_clusters=21)
    with pytest.raises(InputError, match="must be a 2-D cells × genes array"):
        cluster.precluster([[1, 2], [3, 4]])
    with pytest.raises(InputError, match="logcounts has no cells"):
        cluster.precluster(np.zeros((0, 5)))


def test_numpy_integer_seed_is_accepted():
    data, _ = blobs(n_cells=60, seed=7)
    a = cluster.precluster(data, seed=np.int64(2), n_clusters=np.int64(3))
    b = cluster.precluster(data, seed=2, n_clusters=3)
    np.testing.assert_array_equal(a, b)
