"""Splatter's simulation model (Zappia et al. 2017, ``splatSimulate``) with ground truth.

Three of the four seed papers benchmark on Splatter simulations and there is no maintained
Python implementation, so this package writes the published model in numpy
(``specs/simulator.md``; facts checked against ``R/splat-simulate.R`` of Oshlack/splatter).
R's and numpy's random streams differ: the distributions match Splatter, the numbers do not.

The steps, in Splatter's order:

0. cells are split into batches (``batch_cells``, consecutive) and drawn into groups or paths
   (categorical with ``group_prob``);
1. library size per cell ~ LogNormal(``lib_loc``, ``lib_scale``) (or Normal with ``lib_norm``);
2. gene base means ~ Gamma(``mean_shape``, rate ``mean_rate``); outlier genes (probability
   ``out_prob``) get median(base means) × a log-normal factor;
3. per batch (when there are several), a log-normal factor for every gene (set to 1 after
   drawing with ``batch_rm_effect``);
4. per group, log-normal DE factors (``de_prob``, ``de_down_prob``, ``de_fac_loc``,
   ``de_fac_scale``); for paths, DE factors at each path's end, a smoothed Brownian bridge
   per gene from start to end (non-linear genes only get noise), cells placed on steps;
5. base cell means: each cell's gene means (× batch × DE factors) scaled to sum to its
   library size;
6. biological coefficient of variation ``BCV = (bcv_common + 1/sqrt(base mean)) ·
   sqrt(bcv_df / χ²(bcv_df))`` (one χ² draw per gene), cell means ~ Gamma(1/BCV², scale
   base mean · BCV²);
7. true counts ~ Poisson(cell means);
8. dropout: ``p = 1 / (1 + exp(-shape · (ln(cell mean) - mid)))`` per entry, with ``mid`` and
   ``shape`` per experiment, batch, group or cell; kept entries are Bernoulli(1 - p).

Cells are simulated in chunks of about ``model.CHUNK_ENTRIES`` entries: the dense cells × genes
arrays of one chunk are the only dense arrays alive, and the sparse outputs are built chunk by
chunk. Each chunk draws from its own stream spawned from the seed, so the result depends on
the seed only (not on the machine).

Modules: :mod:`~scfill.simulate.params` (parameters and checks), :mod:`~scfill.simulate.model`
(the steps), :mod:`~scfill.simulate.blocks` (sparse output), :mod:`~scfill.simulate.presets`
(the seed papers' simulations), :mod:`~scfill.simulate.api` (:func:`simulate`).
"""

from scfill.simulate.api import simulate
from scfill.simulate.model import brownian_bridges, gene_means, library_sizes, lognormal_factors
from scfill.simulate.params import DROPOUT_TYPES, METHODS, SplatParams, path_order, per_unit
from scfill.simulate.presets import PRESETS, Preset

__all__ = [
    "DROPOUT_TYPES",
    "METHODS",
    "PRESETS",
    "Preset",
    "SplatParams",
    "brownian_bridges",
    "gene_means",
    "library_sizes",
    "lognormal_factors",
    "path_order",
    "per_unit",
    "simulate",
]
