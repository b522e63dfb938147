"""Input checks. Each failure raises :class:`~scfill.errors.InputError` naming the fix."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill.errors import InputError

#: A non-integer matrix whose largest value is below this looks log-transformed.
LOG_LIKE_MAX = 30.0


def stored_values(matrix) -> np.ndarray:
    """The explicitly stored values of a sparse matrix, or all values of a dense one."""
    return matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()


def validate_counts(
    adata: ad.AnnData, *, source: str | None = None, require_integer: bool = True
) -> None:
    """Check that ``adata.X`` is a usable count matrix.

    Checks, in order: not empty, unique cell and gene names, finite, non-negative and (when
    ``require_integer``) whole numbers. Only stored values are read, so a sparse matrix is
    never densified.

    Raises
    ------
    InputError
        Naming the first problem found and how to fix it.
    """
    source = source or adata.uns.get("scfill_input", {}).get("path")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"the matrix is empty ({adata.n_obs} cells x {adata.n_vars} genes).",
                         fix="check that the file holds counts and the right layer was read.",
                         source=source)
    for axis, names in (("cell", adata.obs_names), ("gene", adata.var_names)):
        duplicated = pd.Index(names)[pd.Index(names).duplicated()]
        if len(duplicated):
            shown = ", ".join(map(repr, duplicated[:3].tolist()))
            raise InputError(f"{len(duplicated)} duplicate {axis} name(s), e.g. {shown}.",
                             fix=f"make the {axis} names unique (e.g. adata."
                             f"{'obs' if axis == 'cell' else 'var'}_names_make_unique()).",
                             source=source)
    values = stored_values(adata.X)
    if values.size and not np.issubdtype(values.dtype, np.number):
        raise InputError(f"values are of type {values.dtype}, not numbers.",
                         fix="give a numeric count matrix.", source=source)
    if not np.isfinite(values).all():
        n_bad = int((~np.isfinite(values)).sum())
        raise InputError(f"{n_bad} value(s) are NaN or infinite.",
                         fix="replace missing values by 0 (not measured = no count) or remove "
                         "those cells/genes before imputing.", source=source)
    if values.size and values.min() < 0:
        raise InputError(f"{int((values < 0).sum())} value(s) are negative (min "
                         f"{values.min():.4g}); counts cannot be negative.",
                         fix="give raw counts, not scaled or centred data.", source=source)
    if not np.any(values):
        raise InputError("every value is zero: nothing to impute from.",
                         fix="check that the right matrix or layer was read.", source=source)
    if require_integer and not np.array_equal(values, np.round(values)):
        hint = (" The values look log-normalised (largest "
                f"{values.max():.3g}); pass the raw counts, e.g. adata.raw or a counts layer."
                if values.max() < LOG_LIKE_MAX else "")
        raise InputError(f"values are not whole numbers but counts are required.{hint}",
                         fix="give raw integer counts (--layer counts, or adata.layers['counts']).",
                         source=source)


def validate_labels(
    adata: ad.AnnData, labels_key: str, *, source: str | None = None
) -> pd.Categorical:
    """Return ``adata.obs[labels_key]`` as a categorical after checking it is usable."""
    if labels_key not in adata.obs.columns:
        raise InputError(f"label column {labels_key!r} not found in obs (columns: "
                         f"{', '.join(map(str, adata.obs.columns)) or 'none'}).",
                         fix="name an existing obs column, or omit the labels to pre-cluster.",
                         source=source)
    column = adata.obs[labels_key]
    if len(column) != adata.n_obs:
        raise InputError(f"label column {labels_key!r} has {len(column)} values for "
                         f"{adata.n_obs} cells.", fix="give one label per cell.", source=source)
    missing = int(column.isna().sum())
    if missing:
        raise InputError(f"label column {labels_key!r} has {missing} missing value(s).",
                         fix="fill them (e.g. 'unknown') or drop those cells.", source=source)
    return pd.Categorical(column.astype(str))


def validate_size(
    n_cells: int, n_genes: int, *, min_cells: int, min_genes: int, method: str,
    source: str | None = None,
) -> None:
    """Refuse data with fewer cells or genes (after removing empty ones) than a method needs."""
    if n_cells < min_cells or n_genes < min_genes:
        raise InputError(f"method {method!r} needs at least {min_cells} cells and {min_genes} "
                         f"genes with counts; the data has {n_cells} cells and {n_genes} "
                         "genes after removing all-zero ones.",
                         fix="give more cells/genes or choose another method (scfill methods).",
                         source=source)
