"""How the dropout model judged the observed zeros."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.pl._common import finish, get_layer, observed_counts, pyplot, scfill_info, shared_docs


@shared_docs
def dropout_probability(
    adata: ad.AnnData,
    *,
    layer: str = "dropout_probability",
    threshold: float | None = None,
    bins: int = 40,
    figsize: tuple[float, float] = (9.0, 3.6),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
):
    """Histogram of the dropout probability at observed zeros, and per gene the share of
    zeros judged dropouts against the gene's mean expression.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute` with a method that has a dropout model.
    layer
        Layer of the probabilities (values only at observed zeros; a zero there is a
        probability of 0).
    threshold
        Probability above which a zero is a dropout. Default: the one the method used
        (``uns["scfill"]["dropout_threshold"]``).
    bins
        Histogram bins over [0, 1].
    figsize
        Figure size in inches.
    {show_save}

    Returns
    -------
    The two Axes (histogram, per-gene scatter), the Figure, or None when shown.
    """
    info = scfill_info(adata, "dropout_probability")
    if layer not in adata.layers and info.get("dropout_model") == "none":
        raise InputError(f"pl.dropout_probability: method {info['method']!r} has no dropout "
                         "model, so there are no probabilities to plot.",
                         fix="impute with a method that has one, such as "
                         "maskclass or cnnimpute.")
    probability = sp.csr_matrix(get_layer(adata, layer, "dropout_probability"))
    counts = observed_counts(adata, info, "dropout_probability")
    if threshold is None:
        threshold = float(info.get("dropout_threshold", 0.5))

    n_cells = counts.shape[0]
    zeros_per_gene = n_cells - counts.getnnz(axis=0)
    stored = probability.data
    # entries without a stored value are zeros with probability 0 (sparse layer)
    hist, edges = np.histogram(stored, bins=bins, range=(0.0, 1.0))
    hist[0] += int(zeros_per_gene.sum()) - stored.size
    above = sp.csr_matrix(probability > threshold).getnnz(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = above / zeros_per_gene
    mean_counts = np.asarray(counts.mean(axis=0)).ravel()
    has_zeros = zeros_per_gene > 0

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    left.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color="tab:blue")
    left.axvline(threshold, color="tab:red", lw=1, label=f"threshold {threshold:g}")
    left.set_yscale("log")
    left.set_xlabel("dropout probability")
    left.set_ylabel("observed zeros")
    share_all = above.sum() / max(int(zeros_per_gene.sum()), 1)
    left.set_title(f"{share_all:.0%} of observed zeros judged dropouts", fontsize=10)
    left.legend(fontsize=8)

    right.scatter(np.log1p(mean_counts[has_zeros]), share[has_zeros], s=4, alpha=0.5,
                  linewidths=0)
    right.set_xlabel("gene mean count, ln(1 + x)")
    right.set_ylabel("share of the gene's zeros judged dropouts")
    right.set_ylim(-0.03, 1.03)
    right.set_title(f"{int(has_zeros.sum())} genes with zeros", fontsize=10)
    fig.suptitle(f"dropout model: {info.get('dropout_model', '?')}", fontsize=11)
    fig.tight_layout()
    return finish(fig, [left, right], show=show, save=save, return_fig=return_fig)
