"""The one data flow every method runs (DESIGN.md):

validate → prepare → labels → dropout model → fit → reconstruct → combine → write.

:func:`scfill.prepare` does the steps up to the dropout model; here a method is fitted (or
a fitted one reused), its reconstruction is combined with the observed data row block by
row block, and each output layer is assembled once from the blocks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger, timed
from scfill.combine import combine
from scfill.errors import InputError
from scfill.io import write_h5ad_blocks
from scfill.methods.base import Method, PreparedData, get
from scfill.paths import check_output
from scfill.preparation import prepare
from scfill.preprocess import COMMON_SPACE
from scfill.utils import plain
from scfill.validate import validate_impute_options

#: The method used when none is named (``scfill impute``, ``scfill demo``).
DEFAULT_METHOD = "maskclass"
#: Name of the layer of dropout probabilities.
DROPOUT_LAYER = "dropout_probability"
#: From this many cells, ``scfill impute`` writes an .h5ad output in row blocks
#: (:func:`impute_to_file`) instead of assembling it in memory.
STREAM_CELLS = 100_000


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
    dropout_layer: bool = True,
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
        data. An instance that is already fitted (or loaded with :func:`scfill.load_model`)
        is used as it is, without refitting: the data must hold its genes (the others are
        returned as observed) and is put in the training data's space.
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
    dropout_layer
        Write ``layers["dropout_probability"]`` (methods with a dropout model).
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
        model, unless ``dropout_layer=False``).
    ``layers[f"{key_added}_counts"]``
        With ``counts_layer``.
    ``obs["scfill_cluster"]``
        Pre-clusters, when the method needed groups and none were given.
    ``uns["scfill"]``
        Method, parameters, seed, version, device, runtime, output space, layer storage
        and run facts; every value can be written to h5ad. With ``method="auto"`` also
        ``uns["scfill"]["auto"]``: the score table, the winner, the hold-out and the time
        budget used (:meth:`scfill.select.Selection.to_uns`).
    """
    start = time.perf_counter()
    adata = adata.copy() if copy else adata
    model, data, refit, selection = _fit(adata, method, params, key_added=key_added,
                                         counts_layer=counts_layer, layer=layer,
                                         labels_key=labels_key, n_top_genes=n_top_genes,
                                         seed=seed, device=device)
    with timed(f"reconstructing with {model.name}"):
        blocks = output_blocks(model, data, key_added=key_added, dropout_layer=dropout_layer,
                               counts_layer=counts_layer)
        layers = assemble(blocks, data.layout.shape)
    adata.layers.update(layers)
    _write_clusters(adata, data)
    adata.uns["scfill"] = _provenance(model, data, key_added=key_added, refit=refit,
                                      start=start,
                                      storage={name: {"format": "csr"} for name in layers})
    if selection is not None:
        adata.uns["scfill"]["auto"] = selection.to_uns()
    logger.info("imputed %d cells x %d genes with %s in %.1f s", data.n_cells, data.n_genes,
                model.name, adata.uns["scfill"]["runtime_s"])
    return adata if copy else None


def impute_to_file(
    adata: ad.AnnData,
    path: str | os.PathLike,
    method: str | Method = DEFAULT_METHOD,
    *,
    force: bool = False,
    params: Mapping[str, Any] | None = None,
    key_added: str = "imputed",
    counts_layer: bool = False,
    dropout_layer: bool = True,
    copy_layers_from: tuple[str | os.PathLike, list[str]] | None = None,
    x_from: str | None = None,
    **options: Any,
) -> Path:
    """:func:`impute`, writing ``adata`` and the new layers to ``path`` (.h5ad) in row blocks.

    For large data (the CLI does this from :data:`STREAM_CELLS` cells): no output layer is
    held in memory whole. Each layer is stored dense when mostly filled, else as CSR
    (:func:`scfill.io.write_h5ad_blocks`); ``uns["scfill"]["storage"]`` says which.
    ``adata`` gets ``uns["scfill"]`` (and ``obs["scfill_cluster"]``) but not the layers.
    ``copy_layers_from`` (input path, layer names) adds input layers that were left on disk
    (:func:`scfill.io.read_h5ad_without_layers`), copied file to file. ``x_from`` (with
    ``copy_layers_from``): the key of that file holding the counts read as ``X`` (``"X"`` or
    ``"layers/NAME"``); ``adata.X`` is then released once the data are prepared (the
    caller's ``adata`` loses ``X``) and the output's ``X`` is copied from the file, so the
    input's values are not held while the method trains.
    ``force`` overwrites an existing file; the other arguments, and ``options`` (``layer``,
    ``labels_key``, ``seed``, ``device``, ``n_top_genes``), are those of :func:`impute`.
    """
    start = time.perf_counter()
    path = check_output(path, force=force, suffixes=(".h5ad",))
    model, data, refit, selection = _fit(adata, method, params, key_added=key_added,
                                         counts_layer=counts_layer,
                                         release_x=x_from is not None, **options)
    _write_clusters(adata, data)
    blocks = output_blocks(model, data, key_added=key_added, dropout_layer=dropout_layer,
                           counts_layer=counts_layer)

    def provenance(storage: dict[str, dict]) -> dict[str, Any]:
        adata.uns["scfill"] = _provenance(model, data, key_added=key_added, refit=refit,
                                          start=start, storage=storage)
        if selection is not None:
            adata.uns["scfill"]["auto"] = selection.to_uns()
        return {"scfill": adata.uns["scfill"]}

    with timed(f"reconstructing with {model.name} and writing {path}"):
        write_h5ad_blocks(adata, path, blocks, finish=provenance, force=force,
                          copy_layers_from=copy_layers_from, x_from=x_from)
    return path


def _fit(adata: ad.AnnData, method: str | Method, params: Mapping[str, Any] | None, *,
         key_added: str, counts_layer: bool, release_x: bool = False, **options
         ) -> tuple[Method, PreparedData, bool, Any]:
    """The method (fitted here unless it already was), the prepared data, whether it was
    fitted here, and the selection of ``method="auto"`` (else None). The options are
    checked first, before any work; ``release_x`` drops ``adata.X`` once prepared."""
    source = adata.uns.get("scfill_input", {}).get("path") if "scfill_input" in adata.uns else None
    validate_impute_options(adata, layer=options.get("layer"), key_added=key_added,
                            n_top_genes=options.get("n_top_genes"), seed=options.get("seed", 0),
                            counts_layer=counts_layer, source=source)
    selection = None
    if isinstance(method, str) and method.lower() == "auto":  # choose on held-out data
        from scfill.select import select_method

        selection = select_method(adata, layer=options.get("layer"),
                                  labels_key=options.get("labels_key"),
                                  seed=options.get("seed", 0),
                                  device=options.get("device", "auto"), **(params or {}))
        method, params = selection.winner, None
    model = _make_method(method, params)
    model.check_params()
    data = prepare(adata, model, **options)
    if release_x:
        adata.X = None
    refit = not model.is_fitted
    if refit:
        with timed(f"fitting {model.name}"):
            model.fit(data)
    else:
        model.check_data(data)
        logger.info("using the fitted %s model (no refit)", model.name)
    return model, data, refit, selection


def output_blocks(model: Method, data: PreparedData, *, key_added: str = "imputed",
                  dropout_layer: bool = True, counts_layer: bool = False
                  ) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Reconstruct, combine and embed, one row block at a time, in input row order.

    Yields ``(input rows, {layer name: block})``: dense float32 blocks over every input
    gene, for ``key_added``, ``"dropout_probability"`` (when the method has a dropout model
    and ``dropout_layer``) and ``f"{key_added}_counts"`` (with ``counts_layer``).
    """
    layout = data.layout
    use_dropout = model.combine_rule == "dropout" or dropout_layer
    combined = combine(data.logcounts, model.reconstruct(data), rule=model.combine_rule,
                       dropout=data.dropout if use_dropout else None,
                       threshold=model.dropout_threshold())
    for rows, imputed, probability in combined:
        out_rows, block = layout.embed(rows, imputed, fill=layout.observed)
        layers = {key_added: block}
        if dropout_layer and probability is not None:
            layers[DROPOUT_LAYER] = layout.embed(rows, probability, fill=None)[1]
        if counts_layer:
            layers[f"{key_added}_counts"] = data.normalizer.inverse(
                block, layout.library_size[out_rows])
        yield out_rows, layers


def assemble(blocks: Iterator[tuple[slice, dict[str, np.ndarray]]], shape: tuple[int, int]
             ) -> dict[str, sp.csr_matrix]:
    """Each layer of :func:`output_blocks` as one CSR float32, built once from its blocks."""
    parts: dict[str, list[sp.csr_matrix]] = {}
    for _, layers in blocks:
        for name, block in layers.items():
            parts.setdefault(name, []).append(sp.csr_matrix(block, dtype=np.float32))
    out = {}
    for name in list(parts):
        matrix = sp.vstack(parts.pop(name), format="csr", dtype=np.float32)
        if matrix.shape != shape:
            raise ValueError(f"layer {name} assembled to {matrix.shape}, expected {shape}")
        out[name] = matrix
    return out


def _make_method(method: str | Method, params: Mapping[str, Any] | None) -> Method:
    if isinstance(method, Method):
        if params:
            raise ValueError("pass params to the Method's constructor, not to impute()")
        return method
    cls = get(method)
    try:
        return cls(**(params or {}))
    except TypeError as err:
        raise InputError(f"bad parameters for method {cls.name!r}: {err}.",
                         fix="see `scfill methods` for its parameters.") from err


def _write_clusters(adata: ad.AnnData, data: PreparedData) -> None:
    """``obs["scfill_cluster"]`` when the labels came from pre-clustering."""
    if not data.layout.labels_source.startswith("pre-clustering"):
        return
    column = np.full(adata.n_obs, -1, dtype=np.int64)
    column[data.layout.cells] = data.labels
    adata.obs["scfill_cluster"] = pd.Categorical(
        np.where(column >= 0, column.astype(str), "unassigned"))


def _provenance(model: Method, data: PreparedData, *, key_added: str, refit: bool,
                start: float, storage: dict[str, dict]) -> dict[str, Any]:
    """``uns["scfill"]``: every value writable to h5ad."""
    from scfill import __version__

    layout = data.layout
    n_cells, n_genes = layout.shape
    return plain({
        "method": model.name,
        "params": model.get_params(),
        "seed": data.seed,
        "version": __version__,
        "device": str(data.device),
        "runtime_s": round(time.perf_counter() - start, 3),
        "space": COMMON_SPACE,
        "normalizer": data.normalizer.to_dict(),
        "layer": layout.layer,
        "key_added": key_added,
        "fitted_here": refit,
        "n_cells_imputed": data.n_cells,
        "n_genes_imputed": data.n_genes,
        "n_cells_set_aside": n_cells - data.n_cells,
        "n_genes_not_imputed": n_genes - data.n_genes,
        "labels": layout.labels_source,
        "dropout_model": model.dropout_model or "none",
        "dropout_summary": {} if data.dropout is None else data.dropout.summary,
        "combine_rule": model.combine_rule,
        "dropout_threshold": model.dropout_threshold(),
        "storage": storage,
        "info": getattr(model, "info_", {}),
    }, h5ad=True)
