"""The figures ``scfill impute --plots DIR`` writes for the user's data."""

from __future__ import annotations

from pathlib import Path

import anndata as ad

from scfill._logging import logger, timed
from scfill.errors import InputError

#: File of each figure, by the :mod:`scfill.pl` function that draws it.
IMPUTE_PLOTS = {
    "dropout_probability": "dropout_probability.png",
    "imputed_vs_observed": "imputed_vs_observed.png",
    "embedding": "embedding.png",
}
#: obs columns tried, in order, to colour the embedding when none is named.
COLOR_COLUMNS = ("scfill_cluster", "cell_type", "celltype", "label", "group", "leiden",
                 "louvain")
#: ``embedding`` uses a random subset of this many cells on larger data (UMAP's cost).
EMBEDDING_MAX_CELLS = 20_000


def check_plot_folder(folder: str | Path, *, force: bool = False) -> Path:
    """Refuse a folder that already holds the figures (unless ``force``), before any work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("the plots folder is a file.", fix="give a folder path to --plots.",
                         source=str(folder))
    existing = [name for name in IMPUTE_PLOTS.values() if (folder / name).exists()]
    if existing and not force:
        raise InputError(f"the plots folder already holds {', '.join(existing)}.",
                         fix="choose another folder or pass --force.", source=str(folder))
    return folder


def save_impute_plots(adata: ad.AnnData, folder: str | Path, *, color: str | None = None,
                      seed: int = 0) -> list[Path]:
    """Write the dropout, before/after and embedding figures of an imputed ``adata``.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute`.
    folder
        Created if missing; existing figures are replaced (see :func:`check_plot_folder`).
    color
        ``obs`` column to colour the embedding by (default: the first of
        :data:`COLOR_COLUMNS` that ``adata`` has).
    seed
        Seed of the embedding.

    Returns
    -------
    The files written. The dropout figure is left out (with a log line) for a method
    without a dropout model; the embedding is a UMAP when umap-learn is installed and a
    PCA otherwise.
    """
    from scfill import pl
    from scfill.pl._common import pyplot
    from scfill.pl._embedding import CLUSTER_EXTRA, has_umap

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    written = []

    def save(name: str, draw) -> None:
        path = folder / IMPUTE_PLOTS[name]
        with timed(f"plotting {path.name}"):
            plt.close(draw(save=path, show=False, return_fig=True))
        written.append(path)

    if "dropout_probability" in adata.layers:
        save("dropout_probability", lambda **kw: pl.dropout_probability(adata, **kw))
    else:
        logger.info("no dropout_probability figure: the result has no "
                    "layers['dropout_probability'] (method %s has no dropout model, or the "
                    "layer was not written)", adata.uns["scfill"]["method"])
    save("imputed_vs_observed", lambda **kw: pl.imputed_vs_observed(adata, **kw))
    if color is None:
        color = next((c for c in COLOR_COLUMNS if c in adata.obs), None)
    basis = "umap" if has_umap() else "pca"
    if basis == "pca":
        logger.info("embedding figure drawn as PCA: umap-learn is not installed (%s)",
                    CLUSTER_EXTRA)
    save("embedding", lambda **kw: pl.embedding(adata, basis=basis, color=color, seed=seed,
                                                max_cells=EMBEDDING_MAX_CELLS, **kw))
    return written
