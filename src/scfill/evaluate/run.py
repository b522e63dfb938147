"""Run one method on one dataset under one protocol and score it: tidy rows.

This is the one entry point the benchmark runner calls per grid cell
(:func:`evaluate_method`) and the ``scfill evaluate`` command repeats.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger
from scfill.errors import InputError
from scfill.evaluate import downstream, metrics
from scfill.evaluate.masking import Degraded, Protocol, degrade, parse_protocol
from scfill.evaluate.space import reference_space, retarget
from scfill.preprocess import LogNormalizer, library_size
from scfill.validate import validate_labels

#: Columns of every result table.
COLUMNS = ["dataset", "method", "protocol", "repeat", "seed", "metric", "value"]
#: obs columns tried, in order, for the true labels that clustering is scored against.
LABEL_COLUMNS = ("label", "group", "cell_type")


def evaluate_method(
    adata: ad.AnnData,
    method: str,
    *,
    protocol: str | Protocol,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    labels_key: str | None = None,
    repeat: int = 0,
    truth_key: str | None = None,
    time_key: str | None = None,
    clustering: str = "kmeans",
    resolution: float | str = 1.0,
    dataset: str | None = None,
    device: str = "cpu",
    n_top_genes: int | None = None,
    return_imputed: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, ad.AnnData]:
    """Degrade ``adata`` by ``protocol``, impute with ``method``, score: tidy rows.

    The method runs through :func:`scfill.impute` on a fresh AnnData holding only the
    degraded counts and the cell/gene names (plus ``obs[labels_key]`` when it is given on
    purpose): no true counts, masked values, dropout indicator or true labels reach it.

    Parameters
    ----------
    adata
        Raw counts in ``X``; for ``truth``, ``layers["true_counts"]`` too (a simulation).
    method
        Registered method name (``scfill methods``).
    protocol
        ``"truth"``, ``"mask-nonzero:0.3"``, ``"mask-expressed:0.1"``, ``"downstream"`` or
        ``"mcv"`` (:mod:`scfill.evaluate.masking`).
    seed, repeat
        The masking draws from ``default_rng([seed, repeat])``; the method runs with seed
        ``seed + repeat``. Repeats of one evaluation differ by ``repeat`` only.
    params
        Method parameters.
    labels_key
        ``obs`` column handed to the method as its cell groups. Leave None in evaluations
        that score clustering: the method then pre-clusters (the seeds' warning on label
        leakage).
    truth_key
        ``obs`` column of the true labels clustering and DE genes are scored against
        (default: the first of ``label``, ``group``, ``cell_type`` present; none → no
        clustering metrics).
    time_key
        Numeric ``obs`` column of true time points; adds POS and Kendall's tau of DPT
        pseudotime (``truth`` and ``downstream``).
    clustering
        ``"kmeans"`` (true k; MaskClass, scGACL), ``"leiden"`` or ``"louvain"``
        (scMASKGAN).
    resolution
        Leiden/Louvain resolution: a number (scanpy's default 1), or ``"n_labels"`` for the
        resolution that yields as many clusters as true labels
        (:func:`scfill.evaluate.downstream.matching_resolution`).
    dataset
        Name in the ``dataset`` column (default: the input file's stem, or ``"data"``).
    device
        Torch device for the method.
    n_top_genes
        The method imputes only this many most variable genes (:func:`scfill.impute`); the
        others are returned, and scored, as observed. None: the method's default.
    return_imputed
        Also return the AnnData the method imputed (what it saw, with its output layers and
        ``uns["scfill"]``), so a caller that wants the result need not fit again.

    Returns
    -------
    DataFrame with columns ``dataset, method, protocol, repeat, seed, metric, value``, one
    row per metric. Metrics by protocol (all in the common space; see
    :mod:`scfill.evaluate.space` for which library sizes normalise what):

    - ``truth``: ``mse, rmse, pearson, cosine`` over all entries; ``dropout_*`` of the
      same over dropout entries (observed 0, true > 0); ``biozero_mse`` (true 0);
      ``dropout_accuracy, dropout_f1, dropout_precision, dropout_fpr`` (zeros filled vs
      true dropouts); the distribution metrics; clustering and ``deg_f1, deg_jaccard,
      deg_auc`` (DE genes of the true counts as reference) when true labels exist.
    - ``mask-*``: ``mse, rmse, pearson, cosine`` at the hidden entries against their values
      before masking; the distribution metrics.
    - ``downstream``: clustering; ``pearson_original``; the distribution metrics.
    - ``mcv``: ``mse`` and ``poisson_loss`` of the output (back on the count scale with the
      training part's library sizes) against the held-out test part
      (:func:`scfill.evaluate.metrics.mcv_mse`, :func:`~scfill.evaluate.metrics.poisson_loss`).
    - Distribution metrics (vs the reference): ``js_distance``, ``wasserstein``, ``cv``
      and ``gini`` (means over genes of the imputed data), ``gini_mse`` (per-gene Gini vs
      the reference's).
    - Clustering: ``ari, nmi, purity, entropy, asw, acc, f1, auc, n_clusters``.
    - Always ``runtime_s`` (the method's own run, from ``uns["scfill"]``).
    """
    import scfill

    protocol = parse_protocol(protocol)
    truth_key = _truth_key(adata, truth_key)
    if labels_key is not None:
        validate_labels(adata, labels_key)
    rng = np.random.default_rng([seed, repeat])
    degraded = degrade(adata, protocol, rng)
    shown = _method_input(adata, degraded, labels_key)
    logger.info("evaluating %s on %s (%d cells x %d genes), protocol %s, repeat %d", method,
                dataset, shown.n_obs, shown.n_vars, protocol, repeat)
    start = time.perf_counter()
    scfill.impute(shown, method, labels_key=labels_key, seed=seed + repeat, params=params,
                  device=device, n_top_genes=n_top_genes)
    elapsed = time.perf_counter() - start
    info = shown.uns["scfill"]

    if protocol.kind == "mcv":
        scores = _mcv_scores(degraded, shown.layers["imputed"], info["normalizer"])
    else:
        reference, target = reference_space(degraded.reference)
        predicted = retarget(shown.layers["imputed"], info["normalizer"]["target"], target)
        scores = _score(protocol, degraded, predicted, reference)
    labels = None if truth_key is None else \
        np.asarray(adata.obs[truth_key].astype(str))[degraded.cells]
    if labels is not None and protocol.kind in ("truth", "downstream"):
        scores.update(downstream.clustering_scores(predicted, labels, algorithm=clustering,
                                                   seed=seed + repeat,
                                                   resolution=resolution))
        if protocol.kind == "truth":
            scores.update(downstream.deg_agreement(predicted, reference, labels))
    if time_key is not None and protocol.kind in ("truth", "downstream"):
        true_time = _true_time(adata, time_key)[degraded.cells]
        scores.update(downstream.trajectory_scores(predicted, true_time, seed=seed + repeat))
    scores["runtime_s"] = float(info.get("runtime_s", elapsed))
    name = dataset or _dataset_name(adata)
    rows = pd.DataFrame([{"dataset": name, "method": method, "protocol": str(protocol),
                          "repeat": repeat, "seed": seed, "metric": metric,
                          "value": float(value)} for metric, value in scores.items()],
                        columns=COLUMNS)
    return (rows, shown) if return_imputed else rows


def _truth_key(adata: ad.AnnData, truth_key: str | None) -> str | None:
    if truth_key is not None:
        validate_labels(adata, truth_key)
        return truth_key
    return next((c for c in LABEL_COLUMNS if c in adata.obs.columns), None)


def _true_time(adata: ad.AnnData, time_key: str) -> np.ndarray:
    """``obs[time_key]`` as numbers, or an :class:`InputError` naming the fix."""
    if time_key not in adata.obs.columns:
        raise InputError(f"time column {time_key!r} not found in obs (columns: "
                         f"{', '.join(map(str, adata.obs.columns)) or 'none'}).",
                         fix="name an obs column of true time points, or drop --time-key.")
    values = pd.to_numeric(adata.obs[time_key], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"time column {time_key!r} holds values that are not numbers.",
                         fix="give numeric time points (e.g. 0, 1, 2 or hours).")
    return values


def _dataset_name(adata: ad.AnnData) -> str:
    from pathlib import Path

    path = adata.uns.get("scfill_input", {}).get("path")
    return Path(str(path)).name.split(".")[0] if path else "data"


def _method_input(adata: ad.AnnData, degraded: Degraded, labels_key: str | None) -> ad.AnnData:
    """A fresh AnnData with only what the method may see."""
    obs = pd.DataFrame(index=pd.Index(adata.obs_names[degraded.cells]).astype(str))
    if labels_key is not None:
        obs[labels_key] = adata.obs[labels_key].to_numpy()[degraded.cells]
    var = pd.DataFrame(index=pd.Index(adata.var_names[degraded.genes]).astype(str))
    return ad.AnnData(sp.csr_matrix(degraded.counts, copy=True), obs=obs, var=var)


def _score(protocol: Protocol, degraded: Degraded, predicted: sp.csr_matrix,
           reference: sp.csr_matrix) -> dict[str, float]:
    scores: dict[str, float] = {}
    if protocol.kind == "truth":
        scores.update(metrics.entry_errors(predicted, reference))
        observed_nz = degraded.counts != 0
        true_nz = reference != 0
        dropout = true_nz - true_nz.multiply(observed_nz)
        at_dropout = metrics.entry_errors(metrics.restrict(predicted, dropout),
                                          metrics.restrict(reference, dropout), n=dropout.nnz)
        scores.update({f"dropout_{k}": v for k, v in at_dropout.items()})
        scores["biozero_mse"] = _biozero_mse(predicted, true_nz)
        scores.update(metrics.dropout_identification(degraded.counts, degraded.reference,
                                                     predicted))
    elif protocol.masks:
        hidden = degraded.hidden
        scores.update(metrics.entry_errors(metrics.restrict(predicted, hidden),
                                           metrics.restrict(reference, hidden), n=hidden.nnz))
    else:
        scores["pearson_original"] = metrics.entry_errors(predicted, reference)["pearson"]
    scores["js_distance"] = metrics.js_distance(predicted, reference)
    scores["wasserstein"] = metrics.wasserstein(predicted, reference)
    scores["cv"] = float(np.nanmean(metrics.gene_cv(predicted)))
    gini, gini_reference = metrics.gene_gini(predicted), metrics.gene_gini(reference)
    scores["gini"] = float(np.nanmean(gini))
    both = np.isfinite(gini) & np.isfinite(gini_reference)
    scores["gini_mse"] = float(np.mean((gini[both] - gini_reference[both]) ** 2))
    return scores


def _mcv_scores(degraded: Degraded, imputed, normalizer: Mapping[str, float]) -> dict[str, float]:
    """MCV's MSE and Poisson loss of the output, back on the count scale of the training
    part (the input's library sizes), against the test part."""
    train_lib = library_size(degraded.counts)
    denoised = LogNormalizer(**normalizer).inverse(imputed, np.where(train_lib > 0, train_lib,
                                                                     1.0))
    return {"mse": metrics.mcv_mse(denoised, degraded.reference),
            "poisson_loss": metrics.poisson_loss(denoised, degraded.reference,
                                                 train_total=float(train_lib.sum()))}


def _biozero_mse(predicted: sp.csr_matrix, true_nz: sp.csr_matrix) -> float:
    """MSE over entries whose true count is 0 (the reference is 0 there), sparse."""
    n = int(np.prod(predicted.shape)) - true_nz.nnz
    if n == 0:
        return float("nan")
    total = float(np.sum(np.square(predicted.data, dtype=np.float64)))
    inside = float(np.sum(np.square(metrics.restrict(predicted, true_nz).data)))
    return (total - inside) / n


def evaluate_repeats(adata: ad.AnnData, method: str, *, protocol: str | Protocol,
                     repeats: int, seed: int = 0, **options: Any) -> pd.DataFrame:
    """:func:`evaluate_method` for ``repeat = 0 .. repeats − 1``, rows concatenated.

    ``options`` are :func:`evaluate_method`'s keyword arguments.
    """
    from scfill.utils import check_number

    check_number("repeats", repeats, integer=True, low=1)
    return pd.concat([evaluate_method(adata, method, protocol=protocol, seed=seed, repeat=r,
                                      **options) for r in range(repeats)], ignore_index=True)


def load_dataset(spec: str, *, seed: int = 0, n_cells: int | None = None,
                 n_genes: int | None = None) -> tuple[ad.AnnData, str]:
    """A dataset and its name: ``preset:NAME`` simulates (:func:`scfill.simulate`) with
    ``seed``, ``n_cells`` and ``n_genes``; anything else is a file read by
    :func:`scfill.read`."""
    import scfill

    kind, sep, name = spec.partition(":")
    if sep and kind == "preset":
        return scfill.simulate(preset=name, seed=seed, n_cells=n_cells, n_genes=n_genes), name
    adata = scfill.read(spec)
    return adata, _dataset_name(adata)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and count over repeats of each dataset × method × protocol × metric."""
    keys = ["dataset", "method", "protocol", "metric"]
    summary = results.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"])
    return summary.reset_index()


def format_summary(summary: pd.DataFrame) -> str:
    """A plain-text table: one line per metric with ``mean ± sd (n)``."""
    lines = []
    for (dataset, method, protocol), block in summary.groupby(
            ["dataset", "method", "protocol"], sort=False):
        lines.append(f"{dataset} | {method} | {protocol}")
        width = max(len(m) for m in block["metric"])
        for row in block.itertuples():
            sd = "" if np.isnan(row.std) else f" ± {row.std:.4g}"
            lines.append(f"  {row.metric:<{width}}  {row.mean:.4g}{sd}  (n={row.count})")
    return "\n".join(lines)

