"""Pre-clustering of cells, for methods that condition on cell groups when no labels exist.

Two published procedures (``specs/dropout.md``):

- ``"kmeans"`` (scGACL, following AutoClass): PCA of the log-normalised data, then k-means
  with k in 2..10 chosen by the elbow of the inertia curve and the silhouette coefficient.
- ``"tsne_density_peaks"`` (cnnImpute): 3-D t-SNE, adaptive density-peak clustering
  (ADPclust, Wang & Xu 2017) to find k and the centres, then k-means from those centres.

Neither builds a cells × cells matrix: silhouettes use a sample of at most
:data:`SILHOUETTE_SAMPLE` cells, densities a KD-tree kernel estimate. On more than
:data:`TSNE_MAX_CELLS` cells, ``"tsne_density_peaks"`` clusters a seeded sample of that many
and assigns every other cell to the majority cluster of its :data:`ASSIGN_NEIGHBOURS`
nearest sampled cells in the sample's PCA space (:func:`assign_by_neighbours`): sklearn's
3-D Barnes–Hut t-SNE took 150 s on 5,000 cells on our CPU, and grows faster than the cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.neighbors import KernelDensity

from scfill._logging import logger, timed
from scfill.errors import InputError
from scfill.utils import check_choice, check_number

METHODS = ("kmeans", "tsne_density_peaks")
#: Candidate numbers of clusters (scGACL/AutoClass elbow search; ADPclust ``nclust = 2:10``).
K_MIN, K_MAX = 2, 10
#: PCs for k-means: the first reaching :data:`PCA_VARIANCE` explained variance, at most
#: :data:`MAX_PCS` (AutoClass ``cluster``: 70 %, ``npc = 15``).
MAX_PCS, PCA_VARIANCE = 15, 0.7
#: k-means restarts (fixed, so results depend only on the seed).
N_INIT = 10
#: k must beat the elbow's silhouette by more than this to replace the elbow (ours).
SILHOUETTE_MARGIN = 0.05
#: Silhouettes are computed on at most this many cells (seeded sample).
SILHOUETTE_SAMPLE = 2000
#: t-SNE: PCA to 50 dims first and perplexity 30, 5 for ≤ 30 cells (Rtsne defaults as
#: cnnImpute calls it with ``dims = 3``); Rtsne needs ``3·perplexity < n − 1``.
TSNE_DIMS, TSNE_PCS, PERPLEXITY, SMALL_PERPLEXITY, SMALL_N = 3, 50, 30.0, 5.0, 30
#: Most cells the t-SNE pre-clustering embeds; more are sampled and assigned (ours:
#: measured against the full embedding in ``benchmarks/results/scaling_tsne.md``).
TSNE_MAX_CELLS = 1000
#: Sampled neighbours whose majority cluster an unsampled cell joins.
ASSIGN_NEIGHBOURS = 15
#: ADPclust: 10 bandwidths in [h/3, 3h] around Wand's AMISE h, density percentile cuts.
N_BANDWIDTHS, F_CUTS = 10, (0.1, 0.2, 0.3)
#: Neighbours searched for the nearest point of higher density before brute force.
_DELTA_NEIGHBOURS = 32
#: Relative tolerance of the tree kernel density estimate (ranks are what matter).
_KDE_RTOL = 1e-6


def _check(logcounts, n_clusters):
    if not (sp.issparse(logcounts) or isinstance(logcounts, np.ndarray)) or logcounts.ndim != 2:
        raise InputError("logcounts must be a 2-D cells × genes array or sparse matrix.",
                         fix="pass adata.X or a layer of log-normalised counts.")
    if logcounts.shape[0] == 0:
        raise InputError("logcounts has no cells.", fix="pass a matrix with at least one cell.")
    if n_clusters is not None:
        check_number("n_clusters", n_clusters, integer=True, low=1, high=logcounts.shape[0])


def _float64(logcounts):
    if sp.issparse(logcounts):
        return sp.csr_matrix(logcounts, dtype=np.float64)
    return np.asarray(logcounts, dtype=np.float64)


def _pca(data, n_components: int, seed: int) -> PCA | None:
    """An unfitted sklearn PCA (ARPACK; sparse input centred implicitly), or None when the
    matrix is too small for one PC."""
    n_components = min(n_components, min(data.shape) - 1)
    if n_components < 1:
        return None
    return PCA(n_components=n_components, svd_solver="arpack", random_state=seed)


def principal_components(logcounts, n_components: int, *,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PC scores (sklearn PCA, ARPACK, sparse input centred implicitly) and the explained
    variance ratio of each PC. A matrix too small for one PC is returned as is."""
    data = _float64(logcounts)
    pca = _pca(data, n_components, seed)
    if pca is None:
        dense = data.toarray() if sp.issparse(data) else data
        return dense, np.full(dense.shape[1], 1.0 / max(dense.shape[1], 1))
    return pca.fit_transform(data), pca.explained_variance_ratio_


def _silhouette(points: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Silhouette on a seeded sample of at most :data:`SILHOUETTE_SAMPLE` points."""
    if np.unique(labels).size < 2 or np.unique(labels).size >= len(labels):
        return -1.0
    sample = SILHOUETTE_SAMPLE if len(points) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(points, labels, sample_size=sample, random_state=seed))


def kmeans_elbow_silhouette(points: np.ndarray, *, seed: int = 0,
                            n_clusters: int | None = None) -> tuple[np.ndarray, int]:
    """k-means with k chosen by the elbow and the silhouette (scGACL/AutoClass).

    The elbow is the k in 2..10 whose normalised inertia lies farthest below the chord
    from k = 1 to k = 10 (the "kneedle" point). It is kept unless another k has a
    silhouette higher by more than :data:`SILHOUETTE_MARGIN`; then that k is used.
    ``n_clusters`` fixes k. Returns (labels, k).
    """
    n = len(points)
    k_max = min(K_MAX, n - 1)
    if n_clusters is None and k_max < K_MIN:
        n_clusters = 1
    if n_clusters == 1:
        return np.zeros(n, dtype=np.int64), 1
    if n_clusters is not None:
        model = KMeans(n_clusters=n_clusters, n_init=N_INIT, random_state=seed).fit(points)
        return model.labels_.astype(np.int64), n_clusters
    ks = np.arange(K_MIN, k_max + 1)
    models = [KMeans(n_clusters=int(k), n_init=N_INIT, random_state=seed).fit(points)
              for k in ks]
    inertia = np.r_[np.sum((points - points.mean(axis=0)) ** 2), [m.inertia_ for m in models]]
    span = inertia[0] - inertia.min()
    height = (inertia[1:] - inertia.min()) / span if span > 0 else np.zeros(ks.size)
    width = (ks - 1) / (k_max - 1)
    elbow = int(np.argmax((1 - width) - height))
    scores = np.array([_silhouette(points, m.labels_, seed) for m in models])
    best = int(np.argmax(scores))
    choice = best if scores[best] - scores[elbow] > SILHOUETTE_MARGIN else elbow
    logger.info("k-means pre-clustering: elbow k=%d, best silhouette k=%d (%.3f), chose k=%d",
                ks[elbow], ks[best], scores[best], ks[choice])
    return models[choice].labels_.astype(np.int64), int(ks[choice])


def tsne_embedding(logcounts, *, seed: int = 0,
                   points: np.ndarray | None = None) -> np.ndarray:
    """cnnImpute's 3-D t-SNE of the cells (PCA to 50 dims first, as Rtsne does; or of
    ``points``, PC scores already computed)."""
    n = logcounts.shape[0]
    if points is None:
        points, _ = principal_components(logcounts, TSNE_PCS, seed=seed)
    perplexity = SMALL_PERPLEXITY if n <= SMALL_N else PERPLEXITY
    perplexity = max(min(perplexity, (n - 2) / 3), 1.0)
    if n <= TSNE_DIMS + 1:
        return points
    return TSNE(n_components=TSNE_DIMS, perplexity=perplexity, random_state=seed,
                init="pca").fit_transform(points)


@dataclass
class DensityPeaks:
    """ADPclust's choice: centre indices, bandwidth and silhouette of the winner."""

    centers: np.ndarray
    bandwidth: float
    silhouette: float


def amise_bandwidth(n: int, dims: int) -> float:
    """Wand's AMISE bandwidth for standardised data (ADPclust ``AMISE``)."""
    return (4 / (dims + 2)) ** (1 / (dims + 4)) * n ** (-1 / (dims + 4))


def higher_density_distance(points: np.ndarray, density: np.ndarray) -> np.ndarray:
    """δ_i: distance to the nearest point of higher density (ADPclust ``FindFD``).

    Ties are broken by order as R's ``order(f, decreasing = TRUE)`` does; the densest
    point gets the largest δ of the others. Neighbours come from a KD-tree; the few points
    with no denser point among their nearest neighbours are done by brute force in blocks.
    """
    n = len(points)
    order = np.argsort(-density, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    k = min(n, _DELTA_NEIGHBOURS)
    dist, idx = cKDTree(points).query(points, k=k)
    dist, idx = dist.reshape(n, k), idx.reshape(n, k)
    higher = rank[idx] < rank[:, None]
    found = higher.any(axis=1)
    delta = np.zeros(n)
    delta[found] = dist[found, higher[found].argmax(axis=1)]
    rest = np.flatnonzero(~found & (rank > 0))
    block = max(1, (1 << 22) // n)
    for start in range(0, rest.size, block):
        chunk = rest[start:start + block]
        d = cdist(points[chunk], points)
        d[rank[None, :] >= rank[chunk, None]] = np.inf
        delta[chunk] = d.min(axis=1)
    if n > 1:
        delta[order[0]] = np.max(np.delete(delta, order[0]))
    return delta


def density_peaks(points: np.ndarray, *, seed: int = 0,
                  k_values: np.ndarray | None = None) -> DensityPeaks:
    """ADPclust's automatic centre selection (``centroids = "auto"``, ``ac = 1``).

    On the standardised points, for each of 10 bandwidths in [h/3, 3h] (h: AMISE): the
    Gaussian kernel density f and δ; for each density cut in :data:`F_CUTS` and each k in
    ``k_values`` (2..10) the k points of largest δ among those with f above the cut's
    percentile are centres, every point joins its nearest centre, and the candidate with
    the best silhouette wins.
    """
    n, dims = points.shape
    scale = points.std(axis=0, ddof=1)
    z = (points - points.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    k_values = np.arange(K_MIN, min(K_MAX, n - 1) + 1) if k_values is None else k_values
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False))
    sample_dist = pairwise_distances(z[sample])
    h0 = amise_bandwidth(n, dims)
    best = DensityPeaks(np.array([0]), h0, -np.inf)
    seen: set[tuple[int, ...]] = set()
    for h in np.linspace(h0 / 3, 3 * h0, N_BANDWIDTHS):
        density = KernelDensity(bandwidth=h, rtol=_KDE_RTOL).fit(z).score_samples(z)
        delta = higher_density_distance(z, density)
        for cut in F_CUTS:
            eligible = density >= np.quantile(density, cut)
            ranked = np.argsort(-np.where(eligible, delta, -np.inf), kind="stable")
            for k in k_values:
                if eligible.sum() < k:
                    continue
                centers = ranked[:k]
                key = tuple(sorted(centers.tolist()))
                if key in seen:
                    continue
                seen.add(key)
                labels = cdist(z[sample], z[centers]).argmin(axis=1)
                if np.unique(labels).size < 2:
                    continue
                score = float(silhouette_score(sample_dist, labels, metric="precomputed"))
                if score > best.silhouette:
                    best = DensityPeaks(centers, float(h), score)
    return best


def assign_by_neighbours(points: np.ndarray, sample_points: np.ndarray,
                         sample_labels: np.ndarray, k: int = ASSIGN_NEIGHBOURS) -> np.ndarray:
    """Each point's majority label among its ``k`` nearest sample points (ties: the
    smallest label)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(sample_points))
    _, idx = NearestNeighbors(n_neighbors=k).fit(sample_points).kneighbors(points)
    n_labels = int(sample_labels.max()) + 1
    votes = np.zeros((len(points), n_labels), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(points)), k), sample_labels[idx].ravel()), 1)
    return votes.argmax(axis=1)


def tsne_density_peaks(logcounts, *, seed: int = 0, n_clusters: int | None = None,
                       max_cells: int | None = TSNE_MAX_CELLS) -> tuple[np.ndarray, int]:
    """cnnImpute's pre-clustering: 3-D t-SNE, ADPclust centres, k-means from them.

    k-means runs to convergence (the reference code stops it after 2–10 iterations by
    accident, ``specs/dropout.md``). ``n_clusters`` fixes k. On more than ``max_cells``
    cells (None: never) a seeded sample of ``max_cells`` is clustered (PCA fitted on it)
    and the others join the majority cluster of their nearest sampled cells in its PC
    space. Returns (labels, k).
    """
    n = logcounts.shape[0]
    if n < K_MIN + 1 or n_clusters == 1:
        return np.zeros(n, dtype=np.int64), 1
    if max_cells is not None and n > max_cells:
        sample = np.sort(np.random.default_rng(seed).choice(n, max_cells, replace=False))
        data = _float64(logcounts)
        pca = _pca(data[sample], TSNE_PCS, seed)
        pcs = pca.fit(data[sample]).transform(data) if pca is not None else \
            (data.toarray() if sp.issparse(data) else data)
        labels, k = _tsne_density_peaks(logcounts[sample], pcs[sample], seed, n_clusters)
        out = assign_by_neighbours(pcs, pcs[sample], labels)
        out[sample] = labels
        return out, k
    return _tsne_density_peaks(logcounts, None, seed, n_clusters)


def _tsne_density_peaks(logcounts, pcs: np.ndarray | None, seed: int,
                        n_clusters: int | None) -> tuple[np.ndarray, int]:
    n = logcounts.shape[0]
    points = tsne_embedding(logcounts, seed=seed, points=pcs)
    k_values = None if n_clusters is None else np.array([n_clusters])
    peaks = density_peaks(points, seed=seed, k_values=k_values)
    k = len(peaks.centers)
    if not np.isfinite(peaks.silhouette):  # no candidate split the cells in two
        return np.zeros(n, dtype=np.int64), 1
    logger.info("density peaks: k=%d (bandwidth %.3f, silhouette %.3f)", k, peaks.bandwidth,
                peaks.silhouette)
    model = KMeans(n_clusters=k, init=points[peaks.centers], n_init=1,
                   random_state=seed).fit(points)
    return model.labels_.astype(np.int64), k


def precluster(logcounts, *, method: str = "kmeans", seed: int = 0,
               n_clusters: int | None = None) -> np.ndarray:
    """Cluster codes 0..K−1 of the cells of ``logcounts`` (cells × genes, log-normalised).

    Parameters
    ----------
    logcounts
        Log-normalised expression, dense or sparse (kept sparse for the PCA).
    method
        ``"kmeans"`` (scGACL/AutoClass) or ``"tsne_density_peaks"`` (cnnImpute).
    seed
        Seeds PCA, t-SNE, k-means and the silhouette sample: same seed, same result.
    n_clusters
        Fix K instead of choosing it.

    Returns
    -------
    np.ndarray
        int64 codes, numbered by first appearance.
    """
    check_choice("method", method, METHODS)
    seed = int(seed) if isinstance(seed, np.integer) else seed
    n_clusters = int(n_clusters) if isinstance(n_clusters, np.integer) else n_clusters
    check_number("seed", seed, integer=True, low=0)
    _check(logcounts, n_clusters)
    with timed(f"pre-clustering ({method})"):
        if method == "kmeans":
            points, ratio = principal_components(logcounts, MAX_PCS, seed=seed)
            reached = np.flatnonzero(np.cumsum(ratio) >= PCA_VARIANCE)
            n_pcs = int(reached[0] + 1) if reached.size else points.shape[1]
            labels, k = kmeans_elbow_silhouette(points[:, :n_pcs], seed=seed,
                                                n_clusters=n_clusters)
        else:
            labels, k = tsne_density_peaks(logcounts, seed=seed, n_clusters=n_clusters)
    logger.info("pre-clustering (%s): k=%d", method, k)
    _, first = np.unique(labels, return_index=True)
    renumber = np.empty(labels.max() + 1, dtype=np.int64)
    renumber[labels[np.sort(first)]] = np.arange(first.size)
    return renumber[labels]
