"""The downstream protocol's Louvain/Leiden resolution (scMASKGAN's clustering protocol)."""

import numpy as np
import pytest
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.evaluate import downstream


def _groups(n_per: int = 60, n_genes: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(3), n_per)
    centres = rng.gamma(2.0, 2.0, (3, n_genes))
    centres[np.arange(3), np.arange(3)] += 6
    return sp.csr_matrix(np.log1p(rng.poisson(centres[codes]))), codes.astype(str)


@pytest.mark.parametrize("algorithm", ["louvain", "leiden"])
def test_n_labels_resolution_gives_the_labelled_number_of_clusters(algorithm):
    matrix, labels = _groups()
    fine = downstream.clustering_scores(matrix, labels, algorithm=algorithm, resolution=8.0)
    matched = downstream.clustering_scores(matrix, labels, algorithm=algorithm,
                                           resolution="n_labels")
    assert fine["n_clusters"] > 3  # a high resolution over-clusters the three groups
    assert matched["n_clusters"] == 3
    assert matched["acc"] == pytest.approx(1.0) and matched["ari"] == pytest.approx(1.0)


def test_matching_resolution_returns_a_resolution_that_reproduces_its_codes():
    matrix, _ = _groups()
    graph = downstream._neighbour_graph(downstream.pca(matrix), 0)
    resolution, codes = downstream.matching_resolution(graph, "louvain", 3)
    assert len(np.unique(codes)) == 3
    again = downstream._communities(graph, "louvain", resolution, 0)
    np.testing.assert_array_equal(again, codes)


def test_resolution_errors_name_the_fix():
    embedding = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(InputError, match="positive number or 'n_labels'"):
        downstream.cluster(embedding, algorithm="louvain", resolution=0)
    with pytest.raises(InputError, match="positive number or 'n_labels'"):
        downstream.cluster(embedding, algorithm="louvain", resolution="many")
    with pytest.raises(InputError, match="needs the number of labels"):
        downstream.cluster(embedding, algorithm="louvain", resolution="n_labels")
