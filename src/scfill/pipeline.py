"""The one data flow every method runs (DESIGN.md):

validate → prepare → labels → dropout model → fit → reconstruct → combine → write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger, timed
from scfill.combine import combine
from scfill.methods.base import Method, PreparedData, get
from scfill.nn.device import resolve_device
from scfill.nn.seed import seed_everything
from scfill.preprocess import COMMON_SPACE, LogNormalizer, highly_variable, library_size, nonempty
from scfill.validate import (
    validate_counts,
    validate_impute_options,
    validate_labels,
    validate_size,
)

#: The method used when none is named (``scfill impute``, ``scfill demo``).
DEFAULT_METHOD = "maskclass"


def impute(
    adata: ad.AnnData,
    method: str | Method = DEFAULT_METHOD,
    *,
    layer: str | None = None,
    labels_key: str | None = None,
    seed: int = 0,
    device: str = "auto",
    params: Mapping[str, Any] | None = None,
    n_top_genes: int | None = None,
    key_added: str = "imputed",
    counts_layer: bool = False,
    copy: bool = False,
) -> ad.AnnData | None:
    """Impute dropouts in ``adata`` with one of scfill's methods.

    Parameters
    ----------
    adata
        Cells × genes raw counts in ``X`` (or ``layer``). Not modified unless ``copy`` is
        False, and then only by adding the fields below.
    method
        A registered name (``scfill.list_methods()``), a configured :class:`Method`
        instance (then ``params`` must be empty), or ``"auto"``: choose the method on
        held-out data (:func:`scfill.select.select_method`, whose options ``candidates``,
        ``time_budget``, ``holdout`` are then given in ``params``) and refit it on all the
        data.
    layer
        Read counts from this layer instead of ``X``.
    labels_key
        ``obs`` column of cell groups the method conditions on. Without it, methods that need
        groups pre-cluster the data (``obs["scfill_cluster"]``).
    seed
        Seeds numpy, torch and Python; the same seed gives the same result on the CPU.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    params
        Keyword arguments of the method (``scfill methods`` lists them).
    n_top_genes
        Impute only the most variable genes; the others are returned as observed. None:
        the method's default (``Method.default_n_top_genes``, e.g. scGACL's 5,000).
    key_added
        Name of the output layer.
    counts_layer
        Also write ``layers[f"{key_added}_counts"]``: the result back on the count scale.
    copy
        Return a new AnnData instead of writing into ``adata``.

    Returns
    -------
    None, or a new AnnData when ``copy``. Fields added:

    ``layers[key_added]``
        Imputed expression (CSR float32) in the common space
        ``ln(1 + count · median library size / library size)`` for every cell and gene;
        cells and genes without counts keep their observed values (zero).
    ``layers["dropout_probability"]``
        Probability that each observed zero is a technical dropout (methods with a dropout
        model).
    ``layers[f"{key_added}_counts"]``
        With ``counts_layer``.
    ``obs["scfill_cluster"]``
        Pre-clusters, when the method needed groups and none were given.
    ``uns["scfill"]``
        Method, parameters, seed, version, device, runtime, output space and run facts;
        with ``method="auto"`` also ``uns["scfill"]["auto"]``: the score table, the winner,
        the hold-out and the time budget used (:meth:`scfill.select.Selection.to_uns`).
    """
    from scfill import __version__

    start = time.perf_counter()
    adata = adata.copy() if copy else adata
    selection = None
    if isinstance(method, str) and method.lower() == "auto":  # choose on held-out data
        from scfill.select import select_method

        selection = select_method(adata, layer=layer, labels_key=labels_key, seed=seed,
                                  device=device, **(params or {}))
        method, params = selection.winner, None
    model = _make_method(method, params)
    source = adata.uns.get("scfill_input", {}).get("path") if "scfill_input" in adata.uns else None
    validate_impute_options(adata, layer=layer, key_added=key_added, n_top_genes=n_top_genes,
                            seed=seed, counts_layer=counts_layer, source=source)
    raw = adata.layers[layer] if layer is not None else adata.X
    checked = ad.AnnData(raw, obs=pd.DataFrame(index=adata.obs_names),
                         var=pd.DataFrame(index=adata.var_names))
    validate_counts(checked, source=source)
    if labels_key is not None:
        validate_labels(adata, labels_key, source=source)
    model.check_params()

    counts_all = sp.csr_matrix(raw, dtype=np.float32)
    lib_all = library_size(counts_all)
    cells, genes = nonempty(counts_all)
    if (~cells).any() or (~genes).any():
        logger.info("setting aside %d all-zero cells and %d all-zero genes (returned unchanged)",
                    int((~cells).sum()), int((~genes).sum()))
    normalizer = LogNormalizer.median(lib_all[cells])
    # all-zero cells (library size 0) stay all zero in every space
    safe_lib = np.where(cells, lib_all, 1.0)
    observed_all = normalizer.transform(counts_all, safe_lib)
    if n_top_genes is None:
        n_top_genes = model.default_n_top_genes
    if n_top_genes is not None:
        genes_idx = np.flatnonzero(genes)
        keep = highly_variable(observed_all[cells][:, genes_idx], n_top_genes)
        genes = np.zeros_like(genes)
        genes[genes_idx[keep]] = True
    validate_size(int(cells.sum()), int(genes.sum()), min_cells=model.min_cells,
                  min_genes=model.min_genes, method=model.name, source=source)

    seed_everything(seed)
    counts = counts_all[cells][:, genes]
    data = PreparedData(
        counts=counts,
        library_size=lib_all[cells],
        normalizer=normalizer,
        logcounts=observed_all[cells][:, genes],
        var_names=np.asarray(adata.var_names[genes]),
        obs_names=np.asarray(adata.obs_names[cells]),
        device=resolve_device(device),
        seed=seed,
    )
    labels_source = _assign_labels(adata, data, model, labels_key, cells)
    dropout_summary = _assign_dropout(data, model)

    with timed(f"fitting {model.name}"):
        model.fit(data)
    with timed(f"reconstructing with {model.name}"):
        reconstruction = model.reconstruct(data)
    imputed = combine(data.logcounts, reconstruction, rule=model.combine_rule,
                      dropout_probability=data.dropout_probability,
                      threshold=model.dropout_threshold())

    adata.layers[key_added] = _embed(imputed, observed_all, cells, genes)
    if data.dropout_probability is not None:
        empty = sp.csr_matrix(counts_all.shape, dtype=np.float32)
        adata.layers["dropout_probability"] = _embed(data.dropout_probability, empty, cells,
                                                     genes)
    if counts_layer:
        adata.layers[f"{key_added}_counts"] = normalizer.inverse(adata.layers[key_added],
                                                                 safe_lib)
    adata.uns["scfill"] = {
        "method": model.name,
        "params": _jsonable(model.get_params()),
        "seed": seed,
        "version": __version__,
        "device": str(data.device),
        "runtime_s": round(time.perf_counter() - start, 3),
        "space": COMMON_SPACE,
        "normalizer": normalizer.to_dict(),
        "layer": layer or "X",
        "key_added": key_added,
        "n_cells_imputed": int(cells.sum()),
        "n_genes_imputed": int(genes.sum()),
        "n_cells_set_aside": int((~cells).sum()),
        "n_genes_not_imputed": int((~genes).sum()),
        "labels": labels_source,
        "dropout_model": model.dropout_model or "none",
        "dropout_summary": dropout_summary,
        "combine_rule": model.combine_rule,
        "dropout_threshold": model.dropout_threshold(),
        "info": _jsonable(getattr(model, "info_", {})),
    }
    if selection is not None:
        adata.uns["scfill"]["auto"] = selection.to_uns()
    logger.info("imputed %d cells x %d genes with %s in %.1f s", int(cells.sum()),
                int(genes.sum()), model.name, adata.uns["scfill"]["runtime_s"])
    return adata if copy else None


def _make_method(method: str | Method, params: Mapping[str, Any] | None) -> Method:
    if isinstance(method, Method):
        if params:
            raise ValueError("pass params to the Method's constructor, not to impute()")
        return method
    cls = get(method)
    try:
        return cls(**(params or {}))
    except TypeError as err:
        from scfill.errors import InputError

        raise InputError(f"bad parameters for method {cls.name!r}: {err}.",
                         fix="see `scfill methods` for its parameters.") from err


def _assign_labels(adata: ad.AnnData, data: PreparedData, model: Method,
                   labels_key: str | None, cells: np.ndarray) -> str:
    """Fill ``data.labels`` from the user's column or pre-clustering; say where they came from."""
    if labels_key is not None:
        categories = validate_labels(adata, labels_key)[cells]
        categories = categories.remove_unused_categories()
        data.labels = np.asarray(categories.codes, dtype=np.int64)
        data.label_names = [str(c) for c in categories.categories]
        return f"obs[{labels_key!r}]"
    if model.preclustering is None:
        return "none"
    from scfill.cluster import precluster

    with timed(f"pre-clustering ({model.preclustering})"):
        codes = precluster(data.logcounts, method=model.preclustering, seed=data.seed)
    data.labels = np.asarray(codes, dtype=np.int64)
    data.label_names = [str(c) for c in range(int(codes.max()) + 1)]
    column = np.full(adata.n_obs, -1, dtype=np.int64)
    column[cells] = codes
    adata.obs["scfill_cluster"] = pd.Categorical(
        np.where(column >= 0, column.astype(str), "unassigned"))
    return f"pre-clustering ({model.preclustering})"


def _assign_dropout(data: PreparedData, model: Method) -> dict:
    if model.dropout_model is None:
        return {}
    from scfill.dropout import estimate

    with timed(f"estimating dropout probabilities ({model.dropout_model})"):
        result = estimate(model.dropout_model, data.counts, data.library_size,
                          labels=data.labels, **model.dropout_options())
    data.dropout_probability = result.probability
    return _jsonable(result.summary)


def _embed(block: sp.csr_matrix, full: sp.csr_matrix, cells: np.ndarray,
           genes: np.ndarray) -> sp.csr_matrix:
    """``full`` with its ``cells`` × ``genes`` submatrix replaced by ``block``."""
    full = sp.csr_matrix(full, dtype=np.float32)
    cell_idx, gene_idx = np.flatnonzero(cells), np.flatnonzero(genes)
    other_genes = np.flatnonzero(~genes)
    rows = sp.hstack([sp.csr_matrix(block, dtype=np.float32),
                      full[cell_idx][:, other_genes]], format="csr")
    order = np.argsort(np.concatenate([gene_idx, other_genes]), kind="stable")
    rows = rows[:, order]
    other_cells = np.flatnonzero(~cells)
    stacked = sp.vstack([rows, full[other_cells]], format="csr")
    return stacked[np.argsort(np.concatenate([cell_idx, other_cells]), kind="stable")]


def _jsonable(value: Any) -> Any:
    """Turn a result summary into values h5ad can store in ``uns``.

    Numpy scalars and arrays become plain numbers and lists, None becomes ``"None"``; a
    list is kept as a list only when its items are all numbers or all strings (h5ad writes
    it as one array); any other list (of dicts, of lists, mixed) becomes a dict keyed by
    position (``"0"``, ``"1"``, …), which h5ad writes as a group.
    """
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        items = [_jsonable(v) for v in value]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in items)
        if numbers or all(isinstance(v, str) for v in items) or \
                all(isinstance(v, bool) for v in items):
            return items
        return {str(i): v for i, v in enumerate(items)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None:
        return "None"
    return value
