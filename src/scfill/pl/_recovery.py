"""True against imputed expression at the entries dropout (or a mask) removed."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.pl._common import finish, get_layer, observed_counts, pyplot, scfill_info, shared_docs


def removed_entries(adata: ad.AnnData, truth: sp.csr_matrix, *, mask_layer: str | None,
                    info: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the entries that are non-zero in the truth but zero as observed.

    With ``mask_layer``, its non-zeros (the simulator's ``dropout`` layer marks exactly the
    entries it zeroed); without, the difference of the truth's and the observed patterns.
    """
    if mask_layer is not None:
        mask = sp.coo_matrix(get_layer(adata, mask_layer, "recovery", what="mask layer"))
        keep = mask.data != 0
        return mask.row[keep], mask.col[keep]
    observed = observed_counts(adata, info, "recovery")
    removed = sp.coo_matrix((truth != 0).astype(np.int8)
                            - (truth.multiply(observed) != 0).astype(np.int8))
    keep = removed.data > 0
    return removed.row[keep], removed.col[keep]


@shared_docs
def recovery(
    adata: ad.AnnData,
    *,
    truth_layer: str = "true_counts",
    mask_layer: str | None = "dropout",
    layer: str | None = None,
    max_points: int = 5000,
    seed: int = 0,
    ax=None,
    figsize: tuple[float, float] = (4.5, 4.5),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
):
    """True against imputed expression at the entries zeroed by dropout (or a mask).

    For simulated data (``scfill.simulate``: ``layers["true_counts"]`` and the
    ``layers["dropout"]`` mask) or any data with known values behind its zeros. The truth
    is put in the common space with its own library sizes and the imputed values scaled to
    the truth's median library size (:mod:`scfill.evaluate.space`), as the evaluation does,
    so the diagonal means a perfect recovery.

    Parameters
    ----------
    adata
        The output of :func:`scfill.impute` on data with a truth layer.
    truth_layer
        Layer of the true counts.
    mask_layer
        Layer whose non-zeros mark the removed entries. None, or a name that is not in
        ``adata.layers`` when it is the default: the entries non-zero in the truth and zero
        as observed.
    layer
        The imputed layer (default: the one recorded in ``uns["scfill"]``).
    max_points
        Draw at most this many entries (a random subset); the correlation in the title
        uses all of them.
    seed
        Seed of the subset.
    ax
        Draw into this Axes instead of a new figure.
    figsize
        Figure size in inches (new figure only).
    {show_save}

    Returns
    -------
    The Axes, the Figure, or None when shown.
    """
    from scfill.evaluate.space import reference_space, retarget

    info = scfill_info(adata, "recovery")
    layer = layer or info["key_added"]
    imputed = sp.csr_matrix(get_layer(adata, layer, "recovery"))
    true_counts = sp.csr_matrix(get_layer(adata, truth_layer, "recovery", what="truth layer"))
    if mask_layer == "dropout" and "dropout" not in adata.layers:
        mask_layer = None
    rows, cols = removed_entries(adata, true_counts, mask_layer=mask_layer, info=info)
    truth, target = reference_space(true_counts)
    imputed = retarget(imputed, info["normalizer"]["target"], target)
    true_values = np.asarray(truth[rows, cols], dtype=np.float64).ravel()
    imputed_values = np.asarray(imputed[rows, cols], dtype=np.float64).ravel()

    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize) if ax is None else (ax.figure, ax)
    shown = np.random.default_rng(seed).permutation(true_values.size)[:max_points]
    ax.scatter(true_values[shown], imputed_values[shown], s=3, alpha=0.4, linewidths=0)
    top = float(max(true_values.max(initial=1.0), imputed_values.max(initial=1.0)))
    ax.plot([0, top], [0, top], color="grey", lw=1)
    ax.set_xlabel("true expression (log-normalised)")
    ax.set_ylabel(f"imputed ({info['method']})")
    title = f"{true_values.size} entries zeroed by dropout"
    if true_values.size > 1 and np.ptp(imputed_values) > 0:
        title += f"\nPearson r = {np.corrcoef(true_values, imputed_values)[0, 1]:.2f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return finish(fig, ax, show=show, save=save, return_fig=return_fig)
