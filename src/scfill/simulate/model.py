"""The model's steps (Splatter's ``splatSim*`` functions) and the chunked simulation of cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.interpolate import Akima1DInterpolator
from scipy.special import expit

from scfill.simulate.blocks import Block, CSRBuilder
from scfill.simulate.params import SplatParams, path_order, per_unit

#: Cells × genes entries simulated at once (32 MiB per float64 array of a chunk).
CHUNK_ENTRIES = 1 << 22
#: Knots of each Brownian bridge along a path (Splatter's ``bridge(N = 5)``).
BRIDGE_KNOTS = 5
#: Path factors below zero are set to this (Splatter's ``BB[BB < 0] <- 1e-6``).
BRIDGE_FLOOR = 1e-6


def lognormal_factors(rng: np.random.Generator, n: int, sel_prob: float, neg_prob: float,
                      loc: float, scale: float) -> np.ndarray:
    """Splatter's ``getLNormFactors``: 1 for unselected genes, ``f^±1`` for selected ones.

    A gene is selected with probability ``sel_prob``; its direction is -1 with probability
    ``neg_prob``; ``f ~ LogNormal(loc, scale)``, and the direction flips when ``f < 1``.
    """
    selected = rng.random(n) < sel_prob
    k = int(selected.sum())
    direction = np.where(rng.random(k) < neg_prob, -1.0, 1.0)
    factors = rng.lognormal(loc, scale, k)
    direction[factors < 1] *= -1.0
    out = np.ones(n)
    out[selected] = factors ** direction
    return out


def gene_means(rng: np.random.Generator, n_genes: int, *, mean_shape: float = 0.6,
               mean_rate: float = 0.3, out_prob: float = 0.05, out_fac_loc: float = 4.0,
               out_fac_scale: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: base means ~ Gamma(shape, rate), outliers at median × log-normal factor.

    Returns
    -------
    base, outlier_factor, mean
        Gamma draws, outlier factors (1 for ordinary genes) and the means used.
    """
    base = rng.gamma(mean_shape, 1.0 / mean_rate, n_genes)
    outlier = lognormal_factors(rng, n_genes, out_prob, 0.0, out_fac_loc, out_fac_scale)
    mean = np.where(outlier != 1.0, np.median(base) * outlier, base)
    return base, outlier, mean


def library_sizes(rng: np.random.Generator, n_cells: int, loc: float, scale: float,
                  normal: bool) -> np.ndarray:
    """Step 1: LogNormal(loc, scale), or Normal with negatives set to half the least positive."""
    if not normal:
        return rng.lognormal(loc, scale, n_cells)
    sizes = rng.normal(loc, scale, n_cells)
    positive = sizes[sizes > 0]
    sizes[sizes < 0] = positive.min() / 2 if positive.size else loc
    return sizes


def brownian_bridges(rng: np.random.Generator, start: np.ndarray, end: np.ndarray,
                     sigma_fac: np.ndarray, n_steps: int) -> np.ndarray:
    """Splatter's ``bridge`` for every gene at once: ``n_steps × n_genes`` factors.

    A random walk on :data:`BRIDGE_KNOTS` knots with ``sd ~ U(0, sigma_fac · mean(start,
    end))`` is pinned to ``start`` and ``end``, interpolated with an Akima spline (as
    ``akima::aspline``) to ``n_steps`` points, and floored at :data:`BRIDGE_FLOOR`. Genes with
    ``sigma_fac == 0`` go in a straight line.
    """
    knots = BRIDGE_KNOTS
    t = np.linspace(0.0, 1.0, knots)[:, None]
    sd = rng.uniform(0.0, 1.0, start.size) * sigma_fac * (start + end) / 2.0
    steps = rng.normal(size=(knots - 1, start.size)) * sd * np.sqrt(1.0 / (knots - 1))
    walk = np.vstack([np.zeros((1, start.size)), np.cumsum(steps, axis=0)])
    bridge = start + walk - t * (walk[-1] - end + start)
    grid = np.linspace(0.0, knots - 1.0, n_steps)
    smooth = Akima1DInterpolator(np.arange(knots, dtype=np.float64), bridge, axis=0)(grid)
    smooth[smooth < 0] = BRIDGE_FLOOR
    return smooth


@dataclass
class Design:
    """Everything drawn once per simulation; cells are then simulated chunk by chunk."""

    batch: np.ndarray                 # cell → batch (0-based)
    group: np.ndarray                 # cell → group or path (0-based)
    step: np.ndarray | None           # cell → step on its path (1-based), paths only
    library_size: np.ndarray          # cell → drawn library size
    batch_means: np.ndarray           # batches × genes: gene mean × batch factor
    unit_factors: np.ndarray          # units × genes: DE (or path step) factors
    unit: np.ndarray                  # cell → row of unit_factors
    chi_factor: np.ndarray            # genes: sqrt(bcv_df / χ²)
    dropout_mid: np.ndarray | None    # cell → dropout midpoint
    dropout_shape: np.ndarray | None  # cell → dropout shape
    var: dict[str, np.ndarray]        # per-gene outputs


def draw_design(rng: np.random.Generator, p: SplatParams) -> Design:
    """Steps 0–4 and the per-gene χ² draw of step 6, in Splatter's order."""
    n_cells, n_genes, method = p.n_cells, p.n_genes, p.resolved_method
    batch = np.repeat(np.arange(p.n_batches), p.batch_cells)
    if method == "single":
        group = np.zeros(n_cells, dtype=np.int64)
    else:
        group = rng.choice(p.n_groups, size=n_cells, p=np.asarray(p.group_prob) /
                           sum(p.group_prob))
    lib = library_sizes(rng, n_cells, p.lib_loc, p.lib_scale, p.lib_norm)
    base, outlier, mean = gene_means(rng, n_genes, mean_shape=p.mean_shape,
                                     mean_rate=p.mean_rate, out_prob=p.out_prob,
                                     out_fac_loc=p.out_fac_loc, out_fac_scale=p.out_fac_scale)
    var = {"base_gene_mean": base, "outlier_factor": outlier, "gene_mean": mean}
    batch_means = mean * _batch_factors(rng, p, var)
    step = None
    if method == "single":
        unit_factors, unit = np.ones((1, n_genes)), group
    elif method == "groups":
        unit_factors, unit = _de_factors(rng, p, var), group
    else:
        unit_factors, unit, step = _draw_paths(rng, p, _de_factors(rng, p, var), group, var)
    if np.isfinite(p.bcv_df):
        chi_factor = np.sqrt(p.bcv_df / rng.chisquare(p.bcv_df, n_genes))
    else:
        chi_factor = np.ones(n_genes)
    mid = shape = None
    if p.dropout_type != "none":
        index = {"experiment": np.zeros(n_cells, dtype=np.int64), "batch": batch,
                 "group": group, "cell": np.arange(n_cells)}[p.dropout_type]
        units = p.ndropout_units
        mid = per_unit("dropout_mid", p.dropout_mid, units, p.dropout_type)[index]
        shape = per_unit("dropout_shape", p.dropout_shape, units, p.dropout_type)[index]
    return Design(batch, group, step, lib, batch_means, unit_factors, unit, chi_factor,
                   mid, shape, var)


def _batch_factors(rng: np.random.Generator, p: SplatParams,
                   var: dict[str, np.ndarray]) -> np.ndarray:
    """Step 3: batches × genes factors (all genes, up or down with probability 1/2)."""
    factors = np.ones((p.n_batches, p.n_genes))
    if p.n_batches == 1:
        return factors
    locs = per_unit("batch_fac_loc", p.batch_fac_loc, p.n_batches, "batch")
    scales = per_unit("batch_fac_scale", p.batch_fac_scale, p.n_batches, "batch")
    for b in range(p.n_batches):
        drawn = lognormal_factors(rng, p.n_genes, 1.0, 0.5, locs[b], scales[b])
        if not p.batch_rm_effect:
            factors[b] = drawn
        var[f"batch_factor_batch{b + 1}"] = factors[b]
    return factors


def _de_factors(rng: np.random.Generator, p: SplatParams,
                var: dict[str, np.ndarray]) -> np.ndarray:
    """Step 4: groups (or paths, origins first) × genes DE factors."""
    de = [per_unit(name, getattr(p, name), p.n_groups, "group")
          for name in ("de_prob", "de_down_prob", "de_fac_loc", "de_fac_scale")]
    paths = p.resolved_method == "paths"
    factors = np.ones((p.n_groups, p.n_genes))
    for g in path_order(p.path_from) if paths else range(p.n_groups):
        factors[g] = lognormal_factors(rng, p.n_genes, de[0][g], de[1][g], de[2][g], de[3][g])
        var[f"de_factor_{'path' if paths else 'group'}{g + 1}"] = factors[g]
    return factors


def _draw_paths(rng: np.random.Generator, p: SplatParams, de_factors: np.ndarray,
                path: np.ndarray, var: dict[str, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 4 for paths: per-step factor tables of all paths and each cell's row and step.

    As in Splatter, a path goes from the DE factors of the path it starts from (1 for the
    origin) to its own DE factors, non-linear genes (``path_nonlinear_prob``) get a noisy
    bridge, and a cell of path ``k`` sits at step ``s`` with probability proportional to
    ``linspace(skew, 1 - skew, n_steps)[s]``.
    """
    n_steps = per_unit("path_n_steps", p.path_n_steps, p.n_groups, "path").astype(np.int64)
    skew = per_unit("path_skew", p.path_skew, p.n_groups, "path")
    tables = []
    for k in range(p.n_groups):
        nonlinear = rng.random(p.n_genes) < p.path_nonlinear_prob
        sigma = np.where(nonlinear, p.path_sigma_fac, 0.0)
        var[f"sigma_factor_path{k + 1}"] = sigma
        origin = p.path_from[k]
        start = np.ones(p.n_genes) if origin == 0 else de_factors[origin - 1]
        tables.append(brownian_bridges(rng, start, de_factors[k], sigma, int(n_steps[k])))
    offsets = np.concatenate([[0], np.cumsum(n_steps)[:-1]])
    step = np.zeros(path.size, dtype=np.int64)
    for k in range(p.n_groups):
        members = np.flatnonzero(path == k)
        probs = np.linspace(skew[k], 1.0 - skew[k], int(n_steps[k]))
        step[members] = rng.choice(int(n_steps[k]), size=members.size, p=probs / probs.sum())
    return np.vstack(tables), offsets[path] + step, step + 1


def _simulate_chunk(rng: np.random.Generator, d: Design, p: SplatParams, lo: int, hi: int
                    ) -> tuple[Block, ...]:
    """Steps 5–8 for cells ``lo:hi``: CSR blocks of the true, observed and dropped entries.

    Without dropout only the true block is returned (the observed counts are the same).
    """
    means = d.batch_means[d.batch[lo:hi]]
    means *= d.unit_factors[d.unit[lo:hi]]
    means *= (d.library_size[lo:hi] / means.sum(axis=1))[:, None]
    bcv2 = np.sqrt(means)
    np.reciprocal(bcv2, out=bcv2)
    bcv2 += p.bcv_common
    bcv2 *= d.chi_factor
    np.square(bcv2, out=bcv2)
    cell_means = rng.standard_gamma(1.0 / bcv2)
    cell_means *= means
    cell_means *= bcv2
    del means, bcv2
    true = rng.poisson(cell_means)
    nonzero = true > 0
    row_counts = np.count_nonzero(nonzero, axis=1)
    cols = np.tile(np.arange(p.n_genes, dtype=np.int32), hi - lo)[nonzero.ravel()]
    counts = true[nonzero].astype(np.int32)
    del true
    truth = Block(row_counts, cols, counts)
    if d.dropout_mid is None:
        return (truth,)
    eta = np.log(cell_means[nonzero])
    del cell_means, nonzero
    eta -= np.repeat(d.dropout_mid[lo:hi], row_counts)
    eta *= np.repeat(d.dropout_shape[lo:hi], row_counts)
    keep = rng.random(eta.size) >= expit(eta)
    kept = np.concatenate([[0], np.cumsum(keep)])
    ends = np.cumsum(row_counts)
    kept_per_row = kept[ends] - kept[ends - row_counts]
    return (truth, Block(kept_per_row, cols[keep], counts[keep]),
            Block(row_counts - kept_per_row, cols[~keep], None))


def run(p: SplatParams, design_seed: np.random.SeedSequence,
         cells_seed: np.random.SeedSequence) -> tuple[Design, dict[str, sp.csr_matrix]]:
    rng = np.random.default_rng(design_seed)
    design = draw_design(rng, p)
    dropout = design.dropout_mid is not None
    builders = [CSRBuilder(p.n_cells, p.n_genes, np.int32)]
    if dropout:
        builders += [CSRBuilder(p.n_cells, p.n_genes, np.int32),
                     CSRBuilder(p.n_cells, p.n_genes, None)]
    chunk = max(1, CHUNK_ENTRIES // p.n_genes)
    starts = range(0, p.n_cells, chunk)
    for seed, lo in zip(cells_seed.spawn(len(starts)), starts, strict=True):
        blocks = _simulate_chunk(np.random.default_rng(seed), design, p, lo,
                                 min(lo + chunk, p.n_cells))
        for builder, block in zip(builders, blocks, strict=False):
            builder.add(block)
    true = builders[0].build()
    if dropout:
        observed, dropped = builders[1].build(), builders[2].build()
    else:
        observed, dropped = true.copy(), sp.csr_matrix(true.shape, dtype=bool)
    return design, {"true_counts": true, "X": observed, "dropout": dropped}
