"""Plotting of a user's result (matplotlib), in the manner of ``scanpy.pl``.

Each function takes the imputed ``adata`` first (:func:`benchmark`: a benchmark summary)
and keyword-only options, and returns its Axes (a list for several panels), or the Figure
with ``return_fig=True``; ``save=PATH`` writes the figure; ``show=None`` shows it when the
backend can (a notebook) and nothing is saved, and then returns None. They work on the
non-interactive Agg backend (scripts, servers) and never change ``adata``.

- :func:`dropout_probability`: how the dropout model judged the observed zeros.
- :func:`imputed_vs_observed`: genes before and after imputation.
- :func:`embedding`: cells embedded from the observed and the imputed data, side by side.
- :func:`recovery`: true against imputed values at the entries dropout removed.
- :func:`benchmark`: the benchmark's metric bars from its ``summary.csv``.
"""

from scfill.pl._benchmark import benchmark, read_summary
from scfill.pl._dropout import dropout_probability
from scfill.pl._embedding import embedding, embedding_coordinates
from scfill.pl._files import IMPUTE_PLOTS, check_plot_folder, save_impute_plots
from scfill.pl._genes import imputed_vs_observed, most_filled_genes
from scfill.pl._recovery import recovery

__all__ = [
    "IMPUTE_PLOTS",
    "benchmark",
    "check_plot_folder",
    "dropout_probability",
    "embedding",
    "embedding_coordinates",
    "imputed_vs_observed",
    "most_filled_genes",
    "read_summary",
    "recovery",
    "save_impute_plots",
]
