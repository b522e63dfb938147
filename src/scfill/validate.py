"""Input checks. Each failure raises :class:`~scfill.errors.InputError` naming the fix."""

from __future__ import annotations

import numbers

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill.errors import InputError
from scfill.utils import check_number

#: A non-integer matrix whose largest value is below this looks log-transformed.
LOG_LIKE_MAX = 30.0
#: Largest seed numpy's legacy seeding (used by scanpy and sklearn) accepts.
MAX_SEED = 2**32 - 1
#: A label column with more groups than this share of the cells holds identifiers or
#: continuous values, not cell groups: the per-group dropout model needs several cells
#: per group (with one cell per group it finds no dropouts at all).
MAX_GROUPS_PER_CELL = 0.5
#: Layer the pipeline writes besides ``key_added`` (and ``f"{key_added}_counts"``).
DROPOUT_LAYER = "dropout_probability"


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
    validate_names(adata, source=source)
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


def validate_names(adata: ad.AnnData, *, source: str | None = None) -> None:
    """Refuse repeated cell or gene names (a text header, an h5ad index)."""
    for axis, names in (("cell", adata.obs_names), ("gene", adata.var_names)):
        duplicated = pd.Index(names)[pd.Index(names).duplicated()]
        if len(duplicated):
            shown = ", ".join(map(repr, duplicated[:3].tolist()))
            raise InputError(f"{len(duplicated)} duplicate {axis} name(s), e.g. {shown}.",
                             fix=f"make the {axis} names unique (e.g. adata."
                             f"{'obs' if axis == 'cell' else 'var'}_names_make_unique()).",
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
    groups_fix = ("name a column of cell groups (clusters or cell types), or omit the labels "
                  "to pre-cluster.")
    if pd.api.types.is_float_dtype(column) and not np.array_equal(column, np.round(column)):
        raise InputError(f"label column {labels_key!r} holds non-integer numbers (e.g. "
                         f"{column.iloc[0]!r}), not cell groups.", fix=groups_fix,
                         source=source)
    n_groups = int(column.nunique())
    if adata.n_obs > 1 and n_groups > MAX_GROUPS_PER_CELL * adata.n_obs:
        raise InputError(f"label column {labels_key!r} has {n_groups} distinct values for "
                         f"{adata.n_obs} cells: it looks like an identifier or a measurement, "
                         "not cell groups (each group needs several cells).", fix=groups_fix,
                         source=source)
    return pd.Categorical(column.astype(str))


def validate_seed(seed) -> int:
    """Return ``seed`` as an int after checking it is a whole number in 0 .. 2**32 − 1."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed={seed!r} is not a whole number from 0 to {MAX_SEED}.",
                         fix="give a seed such as 0 or 42.")
    return int(seed)


def validate_impute_options(
    adata: ad.AnnData, *, layer: str | None, key_added: str, n_top_genes: int | None,
    seed: int, counts_layer: bool, source: str | None = None,
) -> None:
    """Check :func:`scfill.impute`'s options before any work: the seed, the input layer,
    the number of genes, and that no output layer replaces the input counts."""
    validate_seed(seed)
    if layer is not None and (not isinstance(layer, str) or layer not in adata.layers):
        raise InputError(f"layer {layer!r} not found (layers: "
                         f"{', '.join(adata.layers) or 'none'}).",
                         fix="name an existing layer, or layer=None to read X.", source=source)
    if not isinstance(key_added, str) or not key_added:
        raise InputError(f"key_added={key_added!r} is not a layer name.",
                         fix="give a non-empty string such as 'imputed'.", source=source)
    written = {key_added, DROPOUT_LAYER} | ({f"{key_added}_counts"} if counts_layer else set())
    if layer in written:
        raise InputError(f"the output layer would replace the input layer {layer!r} "
                         f"(output layers: {', '.join(sorted(written))}).",
                         fix="choose another key_added.", source=source)
    if n_top_genes is not None:
        check_number("n_top_genes", n_top_genes, integer=True, low=1)


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
