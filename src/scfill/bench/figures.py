"""Benchmark figures: metric bars, cost bars, UMAPs, drawn by :mod:`scfill.pl`.

This module only names the files and chooses what each figure shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from scfill import pl

#: Figure resolution (dots per inch).
DPI = 110


def metric_bars(summary: pd.DataFrame, protocol: str, metrics: list[str], methods: list[str],
                folder: Path) -> str:
    """One panel per metric (:func:`scfill.pl.benchmark`); returns the file name written."""
    name = f"metrics_{protocol.replace(':', '_')}.png"
    _save(pl.benchmark(summary, protocol=protocol, metrics=metrics, methods=methods,
                       show=False, return_fig=True), folder / name)
    return name


def cost_bars(summary: pd.DataFrame, methods: list[str], folder: Path) -> str:
    """Runtime and peak memory per dataset and method (log scale), pooled over protocols."""
    name = "cost.png"
    _save(pl.benchmark(summary, metrics=["runtime_s", "peak_rss_mb"], methods=methods,
                       panel_size=(5.5, 4.0), show=False, return_fig=True), folder / name)
    return name


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def umaps(dataset_path: Path, imputed: Mapping[str, Path], dataset: str,
          folder: Path) -> str:
    """UMAP of the original (common space) and of each method's output, by label."""
    import anndata as ad
    import scipy.sparse as sp

    from scfill.bench.report import LABEL_COLUMNS, UMAP_NEIGHBORS, UMAP_PCS
    from scfill.pl._embedding import draw_embeddings
    from scfill.preprocess import LogNormalizer, library_size

    adata = ad.read_h5ad(dataset_path)
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    lib = library_size(counts)
    panels = {"original": LogNormalizer.median(lib).transform(counts, lib)}
    panels.update({m: sp.load_npz(p) for m, p in imputed.items()})
    column = next((c for c in LABEL_COLUMNS if c in adata.obs), None)
    coordinates = {name: pl.embedding_coordinates(matrix, n_pcs=UMAP_PCS,
                                                  n_neighbors=UMAP_NEIGHBORS)
                   for name, matrix in panels.items()}
    title = (f"{dataset}: UMAP before and after imputation"
             + (f" (colour: obs['{column}'])" if column else ""))
    fig, _ = draw_embeddings(coordinates, adata.obs[column] if column else None,
                             point_size=3.0, title=title)
    name = f"umap_{dataset}.png"
    _save(fig, folder / name)
    return name
