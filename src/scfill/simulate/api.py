"""``simulate()``: parameters and presets in, an AnnData with ground truth out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scfill._logging import logger, timed
from scfill.errors import InputError
from scfill.simulate.model import Design, run
from scfill.simulate.params import SplatParams, dropout_units
from scfill.simulate.presets import PRESETS, Preset
from scfill.utils import check_number


def simulate(*, preset: str | None = None, n_cells: int | None = None,
             n_genes: int | None = None, seed: int = 0, **params: Any) -> ad.AnnData:
    """Simulate a count matrix with Splatter's model, with its ground truth.

    Parameters
    ----------
    preset
        A name in :data:`PRESETS` (the seed papers' simulations); ``params`` override it.
    n_cells
        Number of cells. With several batches from a preset, the batches are scaled to it;
        with ``batch_cells`` given too, they must add up to it.
    n_genes
        Number of genes.
    seed
        Seed of numpy's Generator; the same seed gives identical matrices.
    **params
        Any :class:`SplatParams` field (``group_prob``, ``de_prob``, ``dropout_type``,
        ``dropout_mid``, ...); ``simulate(**SplatParams(...).to_dict())`` runs a given set.

    Returns
    -------
    AnnData
        Cells × genes with

        - ``X``: observed counts (CSR int32, after dropout);
        - ``layers["true_counts"]``: counts before dropout (CSR int32);
        - ``layers["dropout"]``: True where dropout zeroed a non-zero true count (CSR bool;
          Splatter's ``Dropout`` assay also flags already-zero entries, which change nothing);
        - ``obs``: ``group``, ``batch``, ``library_size`` (the drawn expected library size)
          and, for paths, ``step`` (1-based);
        - ``var``: ``base_gene_mean``, ``outlier_factor``, ``gene_mean``,
          ``de_factor_group1``... (``de_factor_path1``... and ``sigma_factor_path1``... for
          paths), ``batch_factor_batch1``... (several batches);
        - ``uns["simulation"]``: ``params`` (all, plain types), ``preset``, ``seed`` and the
          zero fractions of the truth and the observed counts.

    Raises
    ------
    InputError
        Unknown preset or parameter, or a parameter out of range (probabilities that do not
        sum to 1, negative sizes, unknown dropout type, wrong number of per-unit values...).

    Notes
    -----
    Where this differs from Splatter's R code, and why:

    - ``layers["dropout"]`` marks only the entries dropout changed (true count > 0), and the
      per-entry dropout probability (Splatter's ``DropProb``) is not kept: both would be
      dense cells × genes matrices (1.6 GB of float64 at 100k × 2k), against the 4 GB budget
      of benchmarks/results/simulate.md.
    - Dropout is only drawn for entries with a non-zero true count; the others cannot change.
    - ``dropout_type="group"`` with one group (``"single"``) is allowed (Splatter stops).
    - Random numbers come from numpy streams: one for the design (groups, library sizes, gene
      means, factors, paths, χ²), one for a preset's random dropout parameters, and one per
      chunk of cells, so the same seed gives identical matrices on any machine.
    """
    check_number("seed", seed, integer=True, low=0, method="simulate")
    known = {f.name for f in dataclasses.fields(SplatParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"simulate: unknown parameter(s) {', '.join(unknown)}.",
                         fix=f"use preset, n_cells, n_genes, seed or one of: "
                         f"{', '.join(sorted(known))}.")
    spec = _preset(preset)
    merged: dict[str, Any] = dict(spec.params) if spec else {}
    merged.update(params)
    if n_genes is not None:
        merged["n_genes"] = n_genes
    if n_cells is not None:
        merged["batch_cells"] = _batch_cells(n_cells, merged.get("batch_cells"),
                                             given="batch_cells" in params)
    design_seed, preset_seed, cells_seed = np.random.SeedSequence(seed).spawn(3)
    if spec is not None and spec.dropout_mid_range is not None:
        _draw_preset_dropout(np.random.default_rng(preset_seed), spec, merged, params)
    p = SplatParams(**merged)
    label = f"simulating {p.n_cells} cells x {p.n_genes} genes ({p.resolved_method}"
    with timed(label + (f", preset {preset})" if preset else ")")):
        design, matrices = run(p, design_seed, cells_seed)
    return _to_anndata(p, design, matrices, preset=preset, seed=seed)


def _preset(name: str | None) -> Preset | None:
    if name is None:
        return None
    if name not in PRESETS:
        raise InputError(f"simulate: unknown preset {name!r}.",
                         fix=f"use one of: {', '.join(PRESETS)}.")
    return PRESETS[name]


def _batch_cells(n_cells: Any, base: Any, *, given: bool) -> tuple[int, ...]:
    """Cells per batch for ``n_cells``: the given split, or ``base`` scaled to ``n_cells``."""
    check_number("n_cells", n_cells, integer=True, low=1, method="simulate")
    if base is not None and not isinstance(base, list | tuple | np.ndarray):
        base = (base,)
    if base is None or (not given and len(base) == 1):
        return (n_cells,)
    if given:
        if sum(base) != n_cells:
            raise InputError(f"simulate: batch_cells {list(base)} add up to {sum(base)}, not "
                             f"n_cells={n_cells}.", fix="drop n_cells or make batch_cells "
                             "add up to it.")
        return tuple(base)
    share = np.asarray(base, dtype=np.float64) / sum(base) * n_cells
    cells = np.floor(share).astype(np.int64)
    cells[np.argsort(cells - share)[: n_cells - cells.sum()]] += 1
    if np.any(cells == 0):
        raise InputError(f"simulate: n_cells={n_cells} is too few for {len(base)} batches.",
                         fix=f"use at least {len(base)} cells.")
    return tuple(int(c) for c in cells)


def _draw_preset_dropout(rng: np.random.Generator, spec: Preset, merged: dict[str, Any],
                         given: Mapping[str, Any]) -> None:
    """Draw a preset's per-unit dropout midpoints and shapes (unless the user gave them)."""
    dropout_type = merged.get("dropout_type", "none")
    n_groups = len(merged.get("group_prob", (1.0,)))
    batches = merged.get("batch_cells", (100,))
    if isinstance(batches, int | np.integer):
        batches = (batches,)
    units = dropout_units(dropout_type, n_groups, len(batches), int(sum(batches)))
    mid = rng.uniform(*spec.dropout_mid_range, units)
    shape = rng.uniform(*spec.dropout_shape_range, units)
    if "dropout_mid" not in given:
        merged["dropout_mid"] = tuple(mid.tolist())
    if "dropout_shape" not in given:
        merged["dropout_shape"] = tuple(shape.tolist())


def _to_anndata(p: SplatParams, design: Design, matrices: dict[str, sp.csr_matrix], *,
                preset: str | None, seed: int) -> ad.AnnData:
    prefix = "Path" if p.resolved_method == "paths" else "Group"
    obs = pd.DataFrame(
        {"group": pd.Categorical.from_codes(design.group,
                                            [f"{prefix}{g + 1}" for g in range(p.n_groups)]),
         "batch": pd.Categorical.from_codes(design.batch,
                                            [f"Batch{b + 1}" for b in range(p.n_batches)]),
         "library_size": design.library_size},
        index=pd.Index([f"Cell{i + 1}" for i in range(p.n_cells)]))
    if design.step is not None:
        obs["step"] = design.step
    var = pd.DataFrame(design.var, index=pd.Index([f"Gene{j + 1}" for j in range(p.n_genes)]))
    true, observed = matrices["true_counts"], matrices["X"]
    entries = float(p.n_cells) * p.n_genes
    summary = {"model": "Splatter splatSimulate (Zappia et al. 2017)", "preset": preset or "",
               "seed": int(seed), "params": p.to_dict(),
               "zero_fraction_true": 1.0 - true.nnz / entries,
               "zero_fraction_observed": 1.0 - observed.nnz / entries}
    logger.info("simulated zeros: %.1f %% true, %.1f %% observed",
                100 * summary["zero_fraction_true"], 100 * summary["zero_fraction_observed"])
    return ad.AnnData(X=observed, obs=obs, var=var,
                      layers={"true_counts": true, "dropout": matrices["dropout"]},
                      uns={"simulation": summary})
