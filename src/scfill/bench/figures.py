"""Benchmark figures (matplotlib, Agg backend): metric bars, cost bars, UMAPs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

#: Figure resolution (dots per inch).
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_bars(ax, part: pd.DataFrame, methods: list[str], *, log: bool = False) -> None:
    """Bars of ``mean`` ± ``std`` per dataset (groups) and method (colours)."""
    datasets = list(dict.fromkeys(part["dataset"]))
    shown = [m for m in methods if m in set(part["method"])]
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(datasets))
    for i, method in enumerate(shown):
        rows = part[part["method"] == method].set_index("dataset").reindex(datasets)
        ax.bar(x + i * width, rows["mean"], width, yerr=rows["std"].fillna(0), capsize=2,
               label=method)
    ax.set_xticks(x + width * (len(shown) - 1) / 2)
    ax.set_xticklabels(datasets, rotation=45, ha="right", fontsize=7)
    if log:
        ax.set_yscale("log")


def metric_bars(summary: pd.DataFrame, protocol: str, metrics: list[str], methods: list[str],
                folder: Path) -> str:
    """One panel per metric; returns the file name written in ``folder``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        part = summary[(summary["protocol"] == protocol) & (summary["metric"] == metric)]
        _grouped_bars(ax, part, methods)
        ax.set_title(metric)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(f"protocol {protocol} (mean ± sd over repeats)")
    fig.tight_layout()
    name = f"metrics_{protocol.replace(':', '_')}.png"
    fig.savefig(folder / name, dpi=DPI)
    plt.close(fig)
    return name


def cost_bars(summary: pd.DataFrame, methods: list[str], folder: Path) -> str:
    """Runtime and peak memory per dataset and method (log scale), pooled over protocols."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in zip(axes, ("runtime_s", "peak_rss_mb"),
                                 ("method runtime (s)", "peak memory of the run (MiB)"),
                                 strict=True):
        part = summary[summary["metric"] == metric]
        pooled = part.groupby(["dataset", "method"], sort=False)["mean"].agg(["mean", "std"])
        _grouped_bars(ax, pooled.reset_index(), methods, log=True)
        ax.set_title(label)
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    name = "cost.png"
    fig.savefig(folder / name, dpi=DPI)
    plt.close(fig)
    return name


def _umap(matrix, seed: int = 0) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    from scfill.bench.report import UMAP_NEIGHBORS, UMAP_PCS

    adata = ad.AnnData(matrix)
    n_pcs = max(2, min(UMAP_PCS, min(adata.shape) - 1))
    sc.pp.pca(adata, n_comps=n_pcs, random_state=seed)
    sc.pp.neighbors(adata, n_neighbors=UMAP_NEIGHBORS, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    return adata.obsm["X_umap"]


def umaps(dataset_path: Path, imputed: Mapping[str, Path], dataset: str,
          folder: Path) -> str:
    """UMAP of the original (common space) and of each method's output, by label."""
    import anndata as ad
    import scipy.sparse as sp

    from scfill.bench.report import LABEL_COLUMNS
    from scfill.preprocess import LogNormalizer, library_size

    plt = _pyplot()
    adata = ad.read_h5ad(dataset_path)
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    lib = library_size(counts)
    panels = {"original": LogNormalizer.median(lib).transform(counts, lib)}
    panels.update({m: sp.load_npz(p) for m, p in imputed.items()})
    column = next((c for c in LABEL_COLUMNS if c in adata.obs), None)
    labels = (adata.obs[column].astype(str).to_numpy() if column else
              np.zeros(adata.n_obs, dtype=str))
    names = sorted(set(labels))
    colours = {n: plt.get_cmap("tab20")(i % 20) for i, n in enumerate(names)}
    n_cols = min(4, len(panels))
    n_rows = int(np.ceil(len(panels) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.4 * n_rows),
                             squeeze=False)
    for ax, (name, matrix) in zip(axes.ravel(), panels.items(), strict=False):
        xy = _umap(matrix)
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c=[colours[v] for v in labels], linewidths=0)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[n], label=n)
               for n in names[:20]]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7)
    fig.suptitle(f"{dataset}: UMAP before and after imputation"
                 + (f" (colour: obs['{column}'])" if column else ""))
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    name = f"umap_{dataset}.png"
    fig.savefig(folder / name, dpi=DPI)
    plt.close(fig)
    return name
