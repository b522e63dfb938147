"""What every plotting function shares: pyplot, the show/save/return rule, input checks.

The rule follows scanpy's plotting functions: ``show=None`` shows the figure when the
backend can (a notebook, a desktop window) and nothing is saved; a shown figure returns
None; otherwise the function returns its Axes (a list for several panels), or the Figure
with ``return_fig=True``. ``save`` writes the figure to that path first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill.errors import InputError

#: Resolution of saved figures (dots per inch).
DPI = 120

#: Backends that draw to files only; ``plt.show()`` would only warn on them.
FILE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


#: The docstring entry of the options every plotting function shares (see
#: :func:`shared_docs`).
SHOW_SAVE_DOC = """show, save, return_fig
        Show the figure (default: when the backend can and nothing is saved), save it to
        this path, return the Figure instead of the Axes."""


def shared_docs(function):
    """Decorator: put :data:`SHOW_SAVE_DOC` where the docstring says ``{show_save}``."""
    function.__doc__ = function.__doc__.replace("{show_save}", SHOW_SAVE_DOC)
    return function


def pyplot():
    """``matplotlib.pyplot``, imported when a figure is drawn (the backend is left as set)."""
    import matplotlib.pyplot as plt

    return plt


def can_show() -> bool:
    """Whether the current matplotlib backend displays figures."""
    import matplotlib

    return matplotlib.get_backend().lower() not in FILE_BACKENDS


def finish(fig, axes: Any, *, show: bool | None, save: str | Path | None,
           return_fig: bool):
    """Save, show and return per the module's rule (see the module docstring)."""
    if save is not None:
        path = Path(save)
        if not path.parent.exists():
            raise InputError(f"cannot save the figure: folder {path.parent} does not exist.",
                             fix="create the folder or give another path.", source=str(path))
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    if show is None:
        show = save is None and can_show()
    if show:
        pyplot().show()
        return None
    return fig if return_fig else axes


def scfill_info(adata: ad.AnnData, function: str) -> dict:
    """``adata.uns["scfill"]``, or an :class:`InputError` saying to impute first."""
    info = adata.uns.get("scfill")
    if not isinstance(info, dict) or "key_added" not in info:
        raise InputError(f"pl.{function} needs the result of scfill.impute, but "
                         "adata.uns['scfill'] is missing.",
                         fix="run scfill.impute(adata) first (or read its output h5ad).")
    return info


def get_layer(adata: ad.AnnData, key: str, function: str, *, what: str = "layer"):
    """``adata.layers[key]`` (``"X"``: ``adata.X``), or an :class:`InputError` listing them."""
    if key == "X":
        return adata.X
    if key not in adata.layers:
        known = ", ".join(repr(k) for k in adata.layers) or "(none)"
        raise InputError(f"pl.{function}: {what} {key!r} is not in adata.layers.",
                         fix=f"use one of {known}, or 'X'.")
    return adata.layers[key]


def observed_counts(adata: ad.AnnData, info: dict, function: str) -> sp.csr_matrix:
    """The counts the method read (``X`` or the layer recorded in ``uns``), CSR float32."""
    counts = get_layer(adata, info.get("layer", "X"), function, what="counts layer")
    return sp.csr_matrix(counts, dtype=np.float32)


def observed_logcounts(adata: ad.AnnData, info: dict, function: str) -> sp.csr_matrix:
    """The observed counts in the output's space, normalised exactly as the pipeline did."""
    from scfill.preprocess import LogNormalizer, library_size

    counts = observed_counts(adata, info, function)
    lib = library_size(counts)
    normalizer = LogNormalizer(**info["normalizer"])
    return normalizer.transform(counts, np.where(lib > 0, lib, 1.0))


def obs_column(adata: ad.AnnData, key: str, function: str) -> np.ndarray:
    """``adata.obs[key]`` as strings, or an :class:`InputError` naming the columns."""
    if key not in adata.obs:
        known = ", ".join(repr(k) for k in adata.obs.columns) or "(none)"
        raise InputError(f"pl.{function}: color key {key!r} is not a column of adata.obs.",
                         fix=f"use one of {known}.")
    return adata.obs[key].astype(str).to_numpy()


def gene_indices(adata: ad.AnnData, genes: str | Sequence[str], function: str) -> list[int]:
    """Column positions of ``genes``, or an :class:`InputError` naming the unknown ones."""
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise InputError(f"pl.{function}: no genes given.", fix="pass genes=['GENE', ...].")
    position = adata.var_names.get_indexer(genes)
    unknown = [g for g, p in zip(genes, position, strict=True) if p < 0]
    if unknown:
        raise InputError(f"pl.{function}: genes {unknown} are not in adata.var_names.",
                         fix=f"use names such as {list(adata.var_names[:3])}.")
    return [int(p) for p in position]
