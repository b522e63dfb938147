"""A gene's expression before and after imputation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.pl._common import (
    finish,
    gene_indices,
    get_layer,
    observed_logcounts,
    pyplot,
    scfill_info,
    shared_docs,
)


def most_filled_genes(adata: ad.AnnData, n: int = 4, *, layer: str | None = None) -> list[str]:
    """The ``n`` genes where imputation filled many zeros and many values were observed.

    A gene's score is the smaller of its number of zeros the imputation made non-zero and
    its number of observed non-zeros, so the genes shown are neither almost never detected
    nor almost never zero: the ones whose before/after comparison says most.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute`.
    n
        Number of genes.
    layer
        The imputed layer (default: the one recorded in ``uns["scfill"]``).
    """
    info = scfill_info(adata, "imputed_vs_observed")
    imputed = sp.csr_matrix(get_layer(adata, layer or info["key_added"], "imputed_vs_observed"))
    observed = observed_logcounts(adata, info, "imputed_vs_observed")
    seen = observed.getnnz(axis=0)
    filled = imputed.getnnz(axis=0) - (imputed.multiply(observed) != 0).getnnz(axis=0)
    order = np.argsort(-np.minimum(filled, seen), kind="stable")[:n]
    return [str(g) for g in adata.var_names[order]]


@shared_docs
def imputed_vs_observed(
    adata: ad.AnnData,
    *,
    genes: str | Sequence[str] | None = None,
    layer: str | None = None,
    bins: int = 30,
    ncols: int = 4,
    panel_size: tuple[float, float] = (3.2, 2.8),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
):
    """Each gene's expression over cells before (observed) and after imputation.

    One panel per gene: histograms of the observed values (the input in the output's space,
    normalised exactly as the pipeline did) and of the imputed values, with the share of
    cells at zero before and after. Counts are on a log scale so the zeros and the rest
    both show.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute`.
    genes
        Gene names (``adata.var_names``). Default: four genes where imputation filled
        many zeros and many values were observed (:func:`most_filled_genes`).
    layer
        The imputed layer (default: the one recorded in ``uns["scfill"]``).
    bins
        Histogram bins.
    ncols
        Panels per row.
    panel_size
        Size of one panel in inches.
    {show_save}

    Returns
    -------
    The list of Axes (one per gene), the Figure, or None when shown.
    """
    info = scfill_info(adata, "imputed_vs_observed")
    layer = layer or info["key_added"]
    imputed = sp.csr_matrix(get_layer(adata, layer, "imputed_vs_observed"))
    if genes is None:
        genes = most_filled_genes(adata, layer=layer)
    columns = gene_indices(adata, genes, "imputed_vs_observed")
    observed = observed_logcounts(adata, info, "imputed_vs_observed")
    before = observed[:, columns].toarray()
    after = imputed[:, columns].toarray()

    plt = pyplot()
    ncols = max(1, min(ncols, len(columns)))
    nrows = int(np.ceil(len(columns) / ncols))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    for k, ax in enumerate(axes.ravel()):
        if k >= len(columns):
            ax.axis("off")
            continue
        top = max(float(before[:, k].max()), float(after[:, k].max()), 1e-6)
        edges = np.linspace(0.0, top, bins + 1)
        for values, label, colour in ((before[:, k], "observed", "tab:grey"),
                                      (after[:, k], info.get("method", layer), "tab:orange")):
            ax.hist(values, bins=edges, histtype="step", lw=1.5, color=colour,
                    label=f"{label}: {np.mean(values == 0):.0%} zero")
        ax.set_yscale("log")
        ax.set_title(str(adata.var_names[columns[k]]), fontsize=10)
        ax.set_xlabel("ln(1 + normalised count)")
        ax.set_ylabel("cells")
        ax.legend(fontsize=7)
    fig.tight_layout()
    shown = list(axes.ravel()[:len(columns)])
    return finish(fig, shown, show=show, save=save, return_fig=return_fig)
