"""Downstream analyses of imputed data: clustering, DE genes, pseudotime.

All inputs are cells × genes matrices in the common space (sparse or dense). Each analysis
uses scanpy / scikit-learn the way the seed papers describe:

- Clustering (MaskClass §2.8 (iii), scGACL): PCA with ``D = max(2, min(50, N − 1, G − 1))``
  components (the paper's ``min(50, N, G)``; −1 because the sparse-aware ARPACK PCA needs
  fewer components than the smaller side), then k-means with the true number of labels.
  scMASKGAN clusters a kNN graph with Louvain; Leiden is offered beside it.
- DE genes (cnnImpute: scanpy; scGACL: |logFC| ≥ 1, adjusted p ≤ 0.05): scanpy's
  ``rank_genes_groups`` (Wilcoxon), each group against the rest.
- Pseudotime (scGACL uses Monocle2, not in Python): scanpy's diffusion pseudotime (DPT).
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.evaluate import metrics

CLUSTERINGS = ("kmeans", "leiden", "louvain")
#: PCA components at most (MaskClass: D = max(2, min(50, N, G))).
MAX_PCS = 50
#: k-means restarts (scikit-learn's classic default).
KMEANS_INIT = 10
#: Neighbours of the kNN graph for Leiden/Louvain (scanpy's default).
GRAPH_NEIGHBORS = 15
#: ``resolution`` value asking for the resolution that yields the number of labels.
RESOLUTION_N_LABELS = "n_labels"
#: Bisection bounds and steps of :func:`matching_resolution` (a resolution range in which
#: scanpy's Louvain/Leiden go from one cluster to many on 1,000-cell kNN graphs).
RESOLUTION_RANGE = (0.01, 10.0)
RESOLUTION_STEPS = 12
#: DE thresholds (scGACL, after scGGAN: |logFC| ≥ 1, adjusted p ≤ 0.05).
DE_MAX_PADJ = 0.05
DE_MIN_LOGFC = 1.0


def _anndata(matrix) -> ad.AnnData:
    matrix = sp.csr_matrix(matrix, dtype=np.float32) if sp.issparse(matrix) else \
        np.asarray(matrix, dtype=np.float32)
    adata = ad.AnnData(matrix)
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"g{j}" for j in range(adata.n_vars)]
    return adata


def pca(matrix, *, seed: int = 0) -> np.ndarray:
    """Cells' principal-component scores, ``max(2, min(50, N − 1, G − 1))`` components."""
    import scanpy as sc

    n, g = matrix.shape
    n_comps = max(2, min(MAX_PCS, n - 1, g - 1))
    if min(n, g) <= n_comps:
        raise InputError(f"cannot cluster {n} cells x {g} genes: PCA needs at least 3 of each.",
                         fix="evaluate on more cells and genes.")
    return sc.pp.pca(_anndata(matrix), n_comps=n_comps, svd_solver="arpack",
                     random_state=seed, copy=True).obsm["X_pca"]


def cluster(embedding: np.ndarray, *, algorithm: str = "kmeans", n_clusters: int | None = None,
            seed: int = 0, resolution: float | str = 1.0) -> np.ndarray:
    """Cluster cells from their PCA scores; returns integer cluster codes.

    Parameters
    ----------
    embedding
        PCA scores (:func:`pca`).
    algorithm
        ``"kmeans"`` (needs ``n_clusters``, the true number of labels), ``"leiden"`` or
        ``"louvain"`` (igraph's implementations on scanpy's kNN graph).
    n_clusters
        The true number of labels (k-means; ``resolution="n_labels"``).
    resolution
        Leiden/Louvain resolution: a number (scanpy's default 1), or ``"n_labels"``: the
        resolution found by bisection (:func:`matching_resolution`) whose clustering has
        ``n_clusters`` clusters.
    """
    if algorithm not in CLUSTERINGS:
        raise InputError(f"unknown clustering {algorithm!r}.",
                         fix=f"use one of: {', '.join(CLUSTERINGS)}.")
    if algorithm == "kmeans":
        from sklearn.cluster import KMeans

        if n_clusters is None:
            raise InputError("k-means clustering needs the number of clusters.",
                             fix="give the true labels' column, or use leiden/louvain.")
        return KMeans(n_clusters=n_clusters, n_init=KMEANS_INIT,
                      random_state=seed).fit_predict(embedding)
    graph = _neighbour_graph(embedding, seed)
    if resolution == RESOLUTION_N_LABELS:
        if n_clusters is None:
            raise InputError("resolution='n_labels' needs the number of labels.",
                             fix="give the true labels' column, or a numeric resolution.")
        return matching_resolution(graph, algorithm, n_clusters, seed=seed)[1]
    if isinstance(resolution, str) or not resolution > 0:
        raise InputError(f"clustering resolution must be a positive number or "
                         f"{RESOLUTION_N_LABELS!r}, got {resolution!r}.",
                         fix="use e.g. 1.0 (scanpy's default) or 'n_labels'.")
    return _communities(graph, algorithm, float(resolution), seed)


def _neighbour_graph(embedding: np.ndarray, seed: int) -> ad.AnnData:
    import scanpy as sc

    graph = ad.AnnData(obsm={"X_pca": embedding}, obs=pd.DataFrame(
        index=[f"c{i}" for i in range(len(embedding))]))
    sc.pp.neighbors(graph, n_neighbors=min(GRAPH_NEIGHBORS, len(embedding) - 1),
                    use_rep="X_pca", random_state=seed)
    return graph


def _communities(graph: ad.AnnData, algorithm: str, resolution: float, seed: int
                 ) -> np.ndarray:
    import scanpy as sc

    if algorithm == "louvain":
        return _louvain(graph.obsp["connectivities"], resolution, seed)
    sc.tl.leiden(graph, resolution=resolution, flavor="igraph", n_iterations=2,
                 directed=False, random_state=seed)
    return graph.obs[algorithm].cat.codes.to_numpy()


def _louvain(connectivities: sp.spmatrix, resolution: float, seed: int) -> np.ndarray:
    """igraph's Louvain (multilevel) on the unweighted kNN graph at ``resolution``.

    scanpy's ``tl.louvain(flavor="igraph")`` runs the same algorithm on the same graph but
    ignores both ``resolution`` and ``random_state`` (it warns so), so it is called
    directly here, with igraph's random numbers drawn from a generator seeded by ``seed``.
    """
    import random

    import igraph

    upper = sp.triu(connectivities, k=1).tocoo()
    graph = igraph.Graph(n=connectivities.shape[0], directed=False,
                         edges=np.column_stack([upper.row, upper.col]).tolist())
    igraph.set_random_number_generator(random.Random(seed))
    try:
        membership = graph.community_multilevel(resolution=resolution).membership
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(membership)


def matching_resolution(graph: ad.AnnData, algorithm: str, n_clusters: int, *,
                        seed: int = 0) -> tuple[float, np.ndarray]:
    """The Leiden/Louvain resolution whose clustering of ``graph`` has ``n_clusters``
    clusters, by bisection on a log scale over ``RESOLUTION_RANGE``; returns it and the
    codes.

    The number of clusters grows with the resolution (not strictly: the bisection stops at
    the first resolution that hits ``n_clusters``, else after ``RESOLUTION_STEPS`` steps at
    the one that came closest, fewer clusters winning a tie). scMASKGAN's ACC after
    Hungarian matching (Tables 3–4) can reach 0.999 only when the clusters are about as many
    as the labelled types, so this is the resolution that comparison implies.
    """
    low, high = (np.log(r) for r in RESOLUTION_RANGE)
    best: tuple[tuple[int, int], float, np.ndarray] | None = None
    for _ in range(RESOLUTION_STEPS):
        middle = (low + high) / 2
        codes = _communities(graph, algorithm, float(np.exp(middle)), seed)
        found = len(np.unique(codes))
        rank = (abs(found - n_clusters), found)
        if best is None or rank < best[0]:
            best = (rank, float(np.exp(middle)), codes)
        if found == n_clusters:
            break
        low, high = (middle, high) if found < n_clusters else (low, middle)
    return best[1], best[2]


def clustering_scores(matrix, labels, *, algorithm: str = "kmeans", seed: int = 0,
                      resolution: float | str = 1.0) -> dict[str, float]:
    """Cluster ``matrix`` and compare to ``labels``.

    Returns ARI, NMI, purity, entropy, ACC/F1/AUC (Hungarian-matched; see
    :mod:`scfill.evaluate.metrics`), the number of clusters found, and ASW: the mean
    silhouette of the cells in PCA space under the clusters found (MaskClass §2.8: a(i)
    is the mean distance to the cell's *assigned* cluster; scikit-learn's
    ``silhouette_score``; NaN with a single cluster). ``resolution`` is Leiden/Louvain's
    (:func:`cluster`).
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    embedding = pca(matrix, seed=seed)
    clusters = cluster(embedding, algorithm=algorithm, n_clusters=len(np.unique(labels)),
                       seed=seed, resolution=resolution)
    scores = metrics.clustering_agreement(labels, clusters)
    n_found = len(np.unique(clusters))
    scores["asw"] = float(silhouette_score(embedding, clusters)) if 1 < n_found < len(
        clusters) else float("nan")
    scores["n_clusters"] = float(n_found)
    return scores


def de_genes(matrix, labels, *, max_padj: float = DE_MAX_PADJ,
             min_logfc: float = DE_MIN_LOGFC) -> dict[str, tuple[set[int], np.ndarray]]:
    """DE genes of each label against the rest (scanpy Wilcoxon on common-space data).

    Returns, per label, the set of gene positions with adjusted p ≤ ``max_padj`` and
    |logFC| ≥ ``min_logfc``, and each gene's |score| (the test statistic, for ranking).
    """
    import scanpy as sc

    adata = _anndata(matrix)
    adata.obs["label"] = pd.Categorical(np.asarray(labels).astype(str))
    with warnings.catch_warnings():
        # constant genes within a group give 0/0 in the tie-corrected statistic (p = NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        sc.tl.rank_genes_groups(adata, "label", method="wilcoxon", use_raw=False,
                                key_added="de", tie_correct=True)
    result = {}
    for group in adata.obs["label"].cat.categories:
        frame = sc.get.rank_genes_groups_df(adata, group=group, key="de")
        gene = frame["names"].str.slice(1).astype(int).to_numpy()
        scores = np.zeros(adata.n_vars)
        scores[gene] = np.abs(frame["scores"].to_numpy())
        keep = (frame["pvals_adj"].to_numpy() <= max_padj) & \
            (np.abs(frame["logfoldchanges"].to_numpy()) >= min_logfc)
        result[str(group)] = (set(gene[keep].tolist()), scores)
    return result


def deg_agreement(matrix, reference, labels) -> dict[str, float]:
    """How well DE genes of ``matrix`` match those of ``reference`` (same test, same labels).

    Per label (against the rest): F1 and Jaccard of the DE gene sets (scGACL) and the ROC
    AUC of the |score| ranking against reference membership (cnnImpute); each averaged
    over labels whose reference set is not empty.
    """
    found, truth = de_genes(matrix, labels), de_genes(reference, labels)
    rows = []
    for group, (reference_set, _) in truth.items():
        if not reference_set:
            continue
        predicted_set, scores = found[group]
        membership = np.zeros(len(scores), dtype=bool)
        membership[list(reference_set)] = True
        row = metrics.set_agreement(predicted_set, reference_set)
        row["auc"] = metrics.ranking_auc(scores, membership)
        rows.append(row)
    if not rows:
        nan = float("nan")
        return {"deg_f1": nan, "deg_jaccard": nan, "deg_auc": nan}
    frame = pd.DataFrame(rows)
    return {f"deg_{name}": float(frame[name].mean()) for name in ("f1", "jaccard", "auc")}


def pseudotime(matrix, true_time, *, seed: int = 0) -> np.ndarray:
    """Diffusion pseudotime (scanpy DPT) rooted at an extreme cell of the earliest time.

    The root is the earliest-time cell at the end of the first diffusion component that
    points away from the latest-time cells (the evaluation knows the true times; the
    method never does).
    """
    import scanpy as sc

    true_time = np.asarray(true_time, dtype=np.float64)
    adata = _anndata(matrix)
    adata.obsm["X_pca"] = pca(matrix, seed=seed)
    sc.pp.neighbors(adata, n_neighbors=min(GRAPH_NEIGHBORS, adata.n_obs - 1),
                    use_rep="X_pca", random_state=seed)
    sc.tl.diffmap(adata)
    component = adata.obsm["X_diffmap"][:, 1]
    early, late = true_time == true_time.min(), true_time == true_time.max()
    if component[early].mean() > component[late].mean():
        component = -component
    adata.uns["iroot"] = int(np.flatnonzero(early)[np.argmin(component[early])])
    sc.tl.dpt(adata)
    return adata.obs["dpt_pseudotime"].to_numpy()


def trajectory_scores(matrix, true_time, *, seed: int = 0) -> dict[str, float]:
    """POS and Kendall's tau (scGACL's POS/KOR) between DPT pseudotime and true time."""
    time = pseudotime(matrix, true_time, seed=seed)
    finite = np.isfinite(time)
    return {"pos": metrics.pseudotemporal_ordering_score(time[finite],
                                                         np.asarray(true_time)[finite]),
            "kendall_tau": metrics.kendall_tau(time[finite], np.asarray(true_time)[finite])}
