"""The benchmark's datasets: h5ad files, folders of them, and simulator presets.

Each dataset is prepared once into the run folder (``datasets/NAME.h5ad``), so every method
sees the same cells and genes: at most ``max_cells`` cells (a seeded random subset) and at
most ``max_genes`` genes (the most variable ones of those cells, scanpy's Seurat flavour via
:func:`scfill.preprocess.highly_variable`; genes without counts in the subset are dropped
first). A preset is simulated at ``max_cells`` cells and ``max_genes`` genes when it is
larger (:func:`scfill.simulate.simulate`), not subsampled, so its ground truth stays whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scfill._logging import logger
from scfill.errors import InputError
from scfill.preprocess import LogNormalizer, highly_variable, library_size, nonempty

PRESET_PREFIX = "preset:"


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from: a file or a simulator preset, and its name in tables."""

    name: str
    path: Path | None = None
    preset: str | None = None


def resolve_datasets(items: list[str]) -> list[DatasetSource]:
    """Turn ``--datasets`` items (h5ad files, folders of h5ad files, ``preset:NAME``) into
    sources with unique names.

    Raises
    ------
    InputError
        A path that does not exist, a folder without h5ad files, a file that is not h5ad,
        an unknown preset, or two datasets with the same name.
    """
    sources: list[DatasetSource] = []
    for item in items:
        if item.startswith(PRESET_PREFIX):
            from scfill.simulate import PRESETS

            preset = item[len(PRESET_PREFIX):]
            if preset not in PRESETS:
                raise InputError(f"unknown simulator preset {preset!r}.",
                                 fix=f"use one of: {', '.join(PRESETS)}.")
            sources.append(DatasetSource(f"sim-{preset}", preset=preset))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(path.glob("*.h5ad"))
            if not files:
                raise InputError("the folder holds no .h5ad files.",
                                 fix="give h5ad files, folders of them, or preset:NAME.",
                                 source=str(path))
            sources.extend(DatasetSource(_stem(f), path=f) for f in files)
        elif path.is_file() and path.name.endswith(".h5ad"):
            sources.append(DatasetSource(_stem(path), path=path))
        elif path.exists():
            raise InputError("benchmark datasets must be .h5ad files.",
                             fix="convert it first (scfill.read + scfill.write).",
                             source=str(path))
        else:
            raise InputError("dataset not found.", fix="check the path.", source=str(path))
    names = [s.name for s in sources]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"two datasets share the name(s) {', '.join(duplicated)}.",
                         fix="give each dataset once, with distinct file names.")
    return sources


def _stem(path: Path) -> str:
    return path.name[: -len(".h5ad")]


def subsample(adata: ad.AnnData, *, max_cells: int | None, max_genes: int | None,
              seed: int = 0) -> ad.AnnData:
    """At most ``max_cells`` random cells and the ``max_genes`` most variable genes.

    Genes and cells without counts (after the cell subset) are dropped. Layers, ``obs`` and
    ``var`` follow the subset.
    """
    rng = np.random.default_rng(seed)
    if max_cells is not None and adata.n_obs > max_cells:
        cells = np.sort(rng.choice(adata.n_obs, size=max_cells, replace=False))
        adata = adata[cells]
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    keep_cells, keep_genes = nonempty(counts)
    if max_genes is not None and keep_genes.sum() > max_genes:
        lib = library_size(counts[keep_cells])
        logs = LogNormalizer.median(lib).transform(counts[keep_cells][:, keep_genes], lib)
        chosen = np.flatnonzero(keep_genes)[highly_variable(logs, max_genes)]
        keep_genes = np.zeros_like(keep_genes)
        keep_genes[chosen] = True
        keep_cells &= (counts[:, keep_genes].getnnz(axis=1) > 0)
    return adata[keep_cells][:, keep_genes].copy()


def prepare_dataset(source: DatasetSource, folder: Path, *, max_cells: int | None,
                    max_genes: int | None, seed: int = 0) -> Path:
    """Write ``folder/NAME.h5ad`` for ``source`` (once; an existing file is reused)."""
    target = folder / f"{source.name}.h5ad"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    if source.preset is not None:
        from scfill.simulate import PRESETS, simulate

        params = PRESETS[source.preset].params
        default_cells = int(sum(params.get("batch_cells", (0,))))
        default_genes = int(params.get("n_genes", 0))
        adata = simulate(preset=source.preset, seed=seed,
                         n_cells=_smaller(default_cells, max_cells),
                         n_genes=_smaller(default_genes, max_genes))
    else:
        from scfill.io import read

        adata = read(source.path)
        adata.uns.pop("scfill_input", None)
    original = adata.shape
    adata = subsample(adata, max_cells=max_cells, max_genes=max_genes, seed=seed)
    adata.uns["benchmark_dataset"] = {
        "source": str(source.path) if source.path else f"{PRESET_PREFIX}{source.preset}",
        "shape_before": list(original), "max_cells": max_cells or 0,
        "max_genes": max_genes or 0, "seed": seed}
    logger.info("dataset %s: %d x %d -> %d cells x %d genes", source.name, *original,
                adata.n_obs, adata.n_vars)
    partial = target.with_suffix(".part.h5ad")
    adata.write_h5ad(partial)
    partial.replace(target)
    return target


def _smaller(default: int, limit: int | None) -> int | None:
    """The preset's size capped by ``limit`` (None leaves the simulator's default)."""
    if default <= 0:
        return limit
    return default if limit is None else min(default, limit)
