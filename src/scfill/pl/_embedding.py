"""The same cells embedded from the observed and from the imputed data, side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.pl._common import (
    finish,
    get_layer,
    obs_column,
    observed_logcounts,
    pyplot,
    scfill_info,
    shared_docs,
)
from scfill.utils import check_choice, missing_package

#: Embeddings :func:`embedding` can compute.
BASES = ("umap", "tsne", "pca")
#: Install command of the extra that brings umap-learn.
CLUSTER_EXTRA = "pip install 'scfill[cluster]'"
#: Categories beyond this many share the colours of the qualitative palette.
PALETTE_SIZE = 20


def has_umap() -> bool:
    """Whether umap-learn is installed (``basis="umap"`` needs it)."""
    return missing_package("umap", "umap-learn") is None


def embedding_coordinates(matrix, *, basis: str = "umap", n_pcs: int = 50,
                          n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """2-D coordinates of the rows of ``matrix`` (cells × genes, sparse or dense).

    PCA (scanpy's, sparse-aware) to ``n_pcs`` components, then UMAP on the ``n_neighbors``
    neighbour graph, or t-SNE, or the first two components (``basis="pca"``).
    """
    import scanpy as sc

    check_choice("basis", basis, BASES)
    if basis == "umap" and not has_umap():
        raise InputError("a UMAP embedding needs the package umap-learn, which is not "
                         "installed.", fix=f"run {CLUSTER_EXTRA}, or pass basis='pca' or "
                         "basis='tsne'.")
    adata = ad.AnnData(sp.csr_matrix(matrix, dtype=np.float32))
    n_comps = max(2, min(n_pcs, min(adata.shape) - 1))
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    if basis == "pca":
        return np.asarray(adata.obsm["X_pca"][:, :2])
    if basis == "tsne":
        sc.tl.tsne(adata, n_pcs=n_comps, random_state=seed)
        return np.asarray(adata.obsm["X_tsne"])
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, n_pcs=n_comps, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    return np.asarray(adata.obsm["X_umap"])


def draw_embeddings(coordinates: Mapping[str, np.ndarray], values: pd.Series | None = None,
                    *, basis: str = "umap", ncols: int = 4,
                    panel_size: tuple[float, float] = (3.6, 3.4), point_size: float = 4.0,
                    title: str | None = None):
    """One scatter panel per entry of ``coordinates``, all coloured by ``values``.

    Categorical ``values`` get a shared legend below the panels, numeric ones a colour bar;
    ``title`` goes above the panels. Returns the Figure and the list of panel Axes.
    """
    plt = pyplot()
    ncols = max(1, min(ncols, len(coordinates)))
    nrows = int(np.ceil(len(coordinates) / ncols))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.6))
    numeric = values is not None and pd.api.types.is_numeric_dtype(values) and not (
        isinstance(values.dtype, pd.CategoricalDtype))
    if values is None:
        colours, names, cmap = "tab:blue", [], None
    elif numeric:
        colours, names, cmap = values.to_numpy(dtype=float), [], "viridis"
    else:
        labels = values.astype(str).to_numpy()
        names = sorted(set(labels))
        palette = {n: plt.get_cmap("tab20")(i % PALETTE_SIZE) for i, n in enumerate(names)}
        colours, cmap = [palette[v] for v in labels], None
    panels = list(axes.ravel()[:len(coordinates)])
    for ax, (name, xy) in zip(panels, coordinates.items(), strict=True):
        drawn = ax.scatter(xy[:, 0], xy[:, 1], s=point_size, c=colours, cmap=cmap,
                           linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{basis.upper()} 1", fontsize=8)
        ax.set_ylabel(f"{basis.upper()} 2", fontsize=8)
    for ax in axes.ravel()[len(coordinates):]:
        ax.axis("off")
    top = 1.0
    if title:
        fig.suptitle(title, fontsize=11)
        top = 1 - 0.5 / fig.get_figheight()
    bottom = 0.0
    if names:
        handles = [plt.Line2D([], [], marker="o", ls="", color=palette[n], label=n)
                   for n in names[:PALETTE_SIZE]]
        fig.legend(handles=handles, loc="lower center", fontsize=7, frameon=False,
                   ncol=min(len(handles), 6), title=values.name, title_fontsize=8)
        bottom = (0.45 + 0.2 * ((len(handles) - 1) // 6)) / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, top))
    if numeric:
        fig.colorbar(drawn, ax=panels, shrink=0.8, label=values.name)
    return fig, panels


@shared_docs
def embedding(
    adata: ad.AnnData,
    *,
    basis: str = "umap",
    layers: Sequence[str] = ("X", "imputed"),
    color: str | None = None,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    max_cells: int | None = None,
    seed: int = 0,
    ncols: int = 4,
    panel_size: tuple[float, float] = (3.6, 3.4),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
):
    """The cells embedded once from each layer (observed, imputed), side by side.

    Each layer gets its own PCA and embedding (scanpy's ``pca``, ``neighbors`` and
    ``umap``/``tsne``), so the panels show how imputation changed the structure the usual
    downstream analysis sees. ``adata`` is not modified.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute`.
    basis
        ``"umap"`` (needs umap-learn: ``pip install 'scfill[cluster]'``), ``"tsne"`` or
        ``"pca"``.
    layers
        What to embed: ``"X"`` is the observed counts (``X``, or the counts layer the method
        read) put in the output's space exactly as the pipeline did; any other name is a
        layer in that space, used as it is (``"imputed"``).
    color
        ``obs`` column to colour by (categorical: legend; numeric: colour bar). Default:
        ``obs["scfill_cluster"]`` when the method pre-clustered, else one colour.
    n_pcs, n_neighbors
        PCA components and neighbours of the UMAP graph (scanpy's defaults).
    max_cells
        Embed a random subset of this many cells (the same cells in every panel).
    seed
        Seed of the subset, the PCA and the embedding.
    ncols, panel_size
        Panels per row and the size of one panel in inches.
    {show_save}

    Returns
    -------
    The list of Axes (one per layer), the Figure, or None when shown.
    """
    info = scfill_info(adata, "embedding")
    check_choice("basis", basis, BASES)
    if not layers:
        raise InputError("pl.embedding: no layers given.", fix="pass layers=('X', 'imputed').")
    if color is None and "scfill_cluster" in adata.obs:
        color = "scfill_cluster"
    if color is not None:
        obs_column(adata, color, "embedding")
    matrices = {}
    for name in layers:
        if name in ("X", info.get("layer")):
            matrices["observed" if name == "X" else name] = observed_logcounts(
                adata, info, "embedding")
        else:
            title = f"{name} ({info['method']})" if name == info["key_added"] else name
            matrices[title] = get_layer(adata, name, "embedding")
    cells = np.arange(adata.n_obs)
    if max_cells is not None and max_cells < adata.n_obs:
        cells = np.sort(np.random.default_rng(seed).choice(adata.n_obs, max_cells,
                                                           replace=False))
    coordinates = {title: embedding_coordinates(matrix[cells], basis=basis, n_pcs=n_pcs,
                                                n_neighbors=n_neighbors, seed=seed)
                   for title, matrix in matrices.items()}
    values = adata.obs[color].iloc[cells] if color is not None else None
    fig, panels = draw_embeddings(coordinates, values, basis=basis, ncols=ncols,
                                  panel_size=panel_size)
    return finish(fig, panels, show=show, save=save, return_fig=return_fig)
