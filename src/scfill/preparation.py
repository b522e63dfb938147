"""Building the object every method receives (DESIGN.md: validate → prepare → labels →
dropout model), and remembering where its cells and genes sit in the input."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger, timed
from scfill.errors import InputError
from scfill.methods.base import Method, PreparedData, get
from scfill.nn.device import resolve_device
from scfill.nn.seed import seed_everything
from scfill.preprocess import LogNormalizer, highly_variable, library_size, nonempty
from scfill.validate import validate_counts, validate_labels, validate_size


@dataclass
class InputLayout:
    """Where the prepared cells and genes sit in the input, and what the rest of it holds.

    Attributes
    ----------
    shape
        The input's cells × genes.
    cells
        Input row of each prepared cell (increasing).
    genes
        Input column of each prepared gene (in the prepared order).
    observed
        The whole input in the common space; the very matrix of ``data.logcounts`` when no
        cell or gene was set aside.
    library_size
        Library size of every input cell (1 for all-zero cells, which stay zero).
    labels_source
        Where the labels came from (``obs['key']``, pre-clustering, or none).
    layer
        Where the counts were read (``"X"`` or a layer's name).
    """

    shape: tuple[int, int]
    cells: np.ndarray
    genes: np.ndarray
    observed: sp.csr_matrix
    library_size: np.ndarray
    labels_source: str = "none"
    layer: str = "X"

    @property
    def whole(self) -> bool:
        """True when every cell and gene is prepared, in the input's order."""
        return (self.cells.size == self.shape[0] and self.genes.size == self.shape[1]
                and bool(np.all(np.diff(self.genes) == 1)))

    @property
    def other_genes(self) -> np.ndarray:
        """Input columns not prepared (returned as observed)."""
        return np.setdiff1d(np.arange(self.shape[1]), self.genes)

    def embed(self, rows: slice, block: np.ndarray, *, fill: sp.csr_matrix | None
              ) -> tuple[slice, np.ndarray]:
        """The input rows covered by prepared ``rows``, with ``block`` in place.

        Blocks over consecutive prepared rows cover consecutive input rows: a block also
        holds the set-aside (all-zero) cells before it, and the last block those after it.
        Input columns that were not prepared take ``fill``'s values (0 when None).
        Without set-aside cells or genes, ``block`` itself is returned (no copy).
        """
        if self.whole:
            return rows, block
        start, stop, _ = rows.indices(self.cells.size)
        first = 0 if start == 0 else int(self.cells[start - 1]) + 1
        last = self.shape[0] if stop == self.cells.size else int(self.cells[stop - 1]) + 1
        out = np.zeros((last - first, self.shape[1]), dtype=np.float32)
        inputs = self.cells[start:stop]
        local = inputs - first
        other = self.other_genes
        if fill is not None and other.size:
            out[np.ix_(local, other)] = fill[inputs][:, other].toarray()
        out[np.ix_(local, self.genes)] = block
        return slice(first, last), out


def prepare(
    adata: ad.AnnData,
    method: str | Method | type[Method] | None = None,
    *,
    layer: str | None = None,
    labels_key: str | None = None,
    n_top_genes: int | None = None,
    seed: int = 0,
    device: str = "auto",
) -> PreparedData:
    """Validate ``adata`` and build what :func:`scfill.impute` hands a method.

    Parameters
    ----------
    adata
        Cells × genes raw counts in ``X`` (or ``layer``); not modified.
    method
        The method the data is for (name, class or instance): it decides the pre-clustering,
        the dropout model and the smallest data accepted. A fitted instance also fixes the
        genes (its own, in its order; other genes are not imputed) and the normaliser (the
        training data's). None: no labels unless ``labels_key``, no dropout model.
    layer
        Read counts from this layer instead of ``X``.
    labels_key
        ``obs`` column of cell groups; without it a method that needs groups pre-clusters.
    n_top_genes
        Prepare only the most variable genes.
    seed
        Seeds numpy, torch and Python before pre-clustering and the dropout model.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    PreparedData
        All-zero cells (and genes, unless a fitted model names them) removed, with labels,
        the fitted dropout model and its ``layout`` in the input.
    """
    model = _as_method(method)
    source = adata.uns.get("scfill_input", {}).get("path") if "scfill_input" in adata.uns else None
    raw = adata.layers[layer] if layer is not None else adata.X
    checked = ad.AnnData(raw, obs=pd.DataFrame(index=adata.obs_names),
                         var=pd.DataFrame(index=adata.var_names))
    validate_counts(checked, source=source)
    if labels_key is not None:
        validate_labels(adata, labels_key, source=source)

    counts_all = _canonical(_float32_csr(raw))
    lib_all = library_size(counts_all)
    cells, genes = nonempty(counts_all)
    fitted = isinstance(model, Method) and model.is_fitted
    if fitted:
        if n_top_genes is not None:
            raise InputError("n_top_genes cannot be used with a fitted model: its genes are "
                             "fixed.", fix="drop n_top_genes (--n-top-genes).")
        gene_idx = _model_genes(adata, model)
        normalizer = model.fitted_.normalizer
    else:
        gene_idx = np.flatnonzero(genes)
        normalizer = LogNormalizer.median(lib_all[cells])
    if (~cells).any() or (not fitted and (~genes).any()):
        logger.info("setting aside %d all-zero cells and %d all-zero genes (returned "
                    "unchanged)", int((~cells).sum()), int((~genes).sum()) if not fitted else 0)
    cell_idx = np.flatnonzero(cells)
    safe_lib = np.where(cells, lib_all, 1.0)  # all-zero cells stay zero in every space
    # the common space shares the counts' index arrays (canonical, so never changed in place)
    observed_all = normalizer.transform(counts_all, safe_lib, share_structure=True)
    if n_top_genes is None and not fitted and model is not None:
        n_top_genes = model.default_n_top_genes
    if n_top_genes is not None:
        keep = highly_variable(observed_all[cell_idx][:, gene_idx], n_top_genes)
        gene_idx = gene_idx[keep]
    if model is not None:
        validate_size(cell_idx.size, gene_idx.size, min_cells=model.min_cells,
                      min_genes=model.min_genes, method=model.name, source=source)

    layout = InputLayout(shape=counts_all.shape, cells=cell_idx, genes=gene_idx,
                         observed=observed_all, library_size=safe_lib, layer=layer or "X")
    if layout.whole:
        counts, logcounts = counts_all, observed_all
    else:
        # set aside only because empty (no gene selection, no model's genes): nothing stored
        # is removed, so the subsets share the values instead of copying them
        counts, logcounts = _restrict(counts_all, observed_all, cell_idx, gene_idx,
                                      only_empty=not fitted and n_top_genes is None)
    seed_everything(seed)
    data = PreparedData(
        counts=counts, library_size=lib_all[cell_idx], normalizer=normalizer,
        logcounts=logcounts, var_names=np.asarray(adata.var_names[gene_idx]),
        obs_names=np.asarray(adata.obs_names[cell_idx]), device=resolve_device(device),
        seed=seed, layout=layout)
    layout.labels_source = _assign_labels(adata, data, model, labels_key)
    if model is not None and model.dropout_model is not None:
        from scfill.dropout import estimate

        with timed(f"estimating dropout probabilities ({model.dropout_model})"):
            options = model.dropout_options() if isinstance(model, Method) else {}
            data.dropout = estimate(model.dropout_model, data.counts, data.library_size,
                                    labels=data.labels, **options)
    return data


def _restrict(counts: sp.csr_matrix, observed: sp.csr_matrix, cells: np.ndarray,
              genes: np.ndarray, *, only_empty: bool) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Rows ``cells`` and columns ``genes`` (sorted) of both matrices (same structure).

    With ``only_empty`` (the rows and columns left out hold no stored entry: all-zero cells
    and genes of canonical counts) the results keep every stored value: they share the
    values, and one index array between them, with no copy of the data. Otherwise the
    subsets are copied.
    """
    if not only_empty:
        return counts[cells][:, genes], observed[cells][:, genes]
    indptr = np.append(counts.indptr[cells], counts.indptr[-1]).astype(counts.indptr.dtype)
    indices = counts.indices
    if genes.size != counts.shape[1]:
        remap = np.full(counts.shape[1], -1, dtype=indices.dtype)
        remap[genes] = np.arange(genes.size, dtype=indices.dtype)
        indices = remap[indices]
    shape = (cells.size, genes.size)
    return tuple(sp.csr_matrix((m.data, indices, indptr), shape=shape, copy=False)
                 for m in (counts, observed))


def _float32_csr(raw) -> sp.csr_matrix:
    """The counts as float32 CSR; a CSR input lends its index arrays (only the values are
    converted, or nothing when they are float32 already)."""
    csr = raw if sp.issparse(raw) and raw.format == "csr" else sp.csr_matrix(raw)
    data = csr.data if csr.dtype == np.float32 else csr.data.astype(np.float32)
    return sp.csr_matrix((data, csr.indices, csr.indptr), shape=csr.shape, copy=False)


def _canonical(counts: sp.csr_matrix) -> sp.csr_matrix:
    """``counts`` in canonical form (sorted indices, no duplicates, no stored zeros); a copy
    only when the input is not already so (the input is never changed)."""
    if counts.has_canonical_format and counts.data.all():
        return counts
    counts = counts.copy()
    counts.sum_duplicates()
    counts.eliminate_zeros()
    return counts


def _as_method(method: str | Method | type[Method] | None) -> Method | type[Method] | None:
    if isinstance(method, str):
        return get(method)
    return method


def _model_genes(adata: ad.AnnData, model: Method) -> np.ndarray:
    """Input columns of a fitted model's genes, in the model's order."""
    wanted = pd.Index(model.fitted_.var_names)
    position = pd.Index(adata.var_names).get_indexer(wanted)
    missing = wanted[position < 0]
    if missing.size:
        raise InputError(
            f"the data lacks {missing.size} of the {wanted.size} genes the {model.name} "
            f"model was trained on (first: {', '.join(map(str, missing[:3]))}).",
            fix="give data measured on the model's genes (model.fitted_.var_names), or fit "
            "a new model on this data.")
    return position


def _assign_labels(adata: ad.AnnData, data: PreparedData, model, labels_key: str | None
                   ) -> str:
    """Fill ``data.labels`` from the user's column or pre-clustering; say where they came from."""
    cells = data.layout.cells
    if labels_key is not None:
        categories = validate_labels(adata, labels_key)[cells]
        categories = categories.remove_unused_categories()
        data.labels = np.asarray(categories.codes, dtype=np.int64)
        data.label_names = [str(c) for c in categories.categories]
        return f"obs[{labels_key!r}]"
    if model is None or model.preclustering is None:
        return "none"
    from scfill.cluster import precluster

    with timed(f"pre-clustering ({model.preclustering})"):
        codes = precluster(data.logcounts, method=model.preclustering, seed=data.seed)
    data.labels = np.asarray(codes, dtype=np.int64)
    data.label_names = [str(c) for c in range(int(codes.max()) + 1)]
    return f"pre-clustering ({model.preclustering})"
