"""The benchmark's metric bars, from its ``summary.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scfill.errors import InputError
from scfill.pl._common import finish, pyplot, shared_docs

#: Columns of a benchmark summary (``scfill benchmark`` writes them to ``summary.csv``).
SUMMARY_COLUMNS = ("dataset", "method", "protocol", "metric", "mean", "std")
#: Cost metrics: drawn on a log scale, and the default panels when protocols are pooled.
COST_METRICS = {"runtime_s": "method runtime (s)", "peak_rss_mb": "peak memory of the run (MiB)",
                "wall_s": "wall time of the run (s)"}
#: Panels of the pooled figure by default (the report's "Cost" section).
DEFAULT_COST = ("runtime_s", "peak_rss_mb")


def read_summary(summary: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A summary table, from a DataFrame, a ``summary.csv`` or the run folder holding it."""
    if not isinstance(summary, pd.DataFrame):
        path = Path(summary)
        path = path / "summary.csv" if path.is_dir() else path
        if not path.is_file():
            raise InputError("benchmark summary not found.", source=str(path),
                             fix="give the summary.csv of a `scfill benchmark` run folder.")
        summary = pd.read_csv(path)
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise InputError(f"pl.benchmark: the summary has no columns {missing}.",
                         fix="pass the summary.csv that `scfill benchmark` writes.")
    return summary


def _bars(ax, part: pd.DataFrame, methods: list[str], *, log: bool) -> None:
    """Bars of ``mean`` ± ``std`` per dataset (groups) and method (colours)."""
    datasets = list(dict.fromkeys(part["dataset"]))
    shown = [m for m in methods if m in set(part["method"])]
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(datasets))
    for i, method in enumerate(shown):
        rows = part[part["method"] == method].set_index("dataset").reindex(datasets)
        ax.bar(x + i * width, rows["mean"], width, yerr=rows["std"].fillna(0), capsize=2,
               label=method)
    ax.set_xticks(x + width * (len(shown) - 1) / 2)
    ax.set_xticklabels(datasets, rotation=45, ha="right", fontsize=7)
    if log:
        ax.set_yscale("log")


def _pooled(part: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset × method: the mean and sd of the per-protocol means.

    With a single protocol its rows are returned as they are (sd over repeats).
    """
    if part["protocol"].nunique() <= 1:
        return part
    pooled = part.groupby(["dataset", "method"], sort=False)["mean"].agg(["mean", "std"])
    return pooled.reset_index()


@shared_docs
def benchmark(
    summary: pd.DataFrame | str | Path,
    *,
    protocol: str | None = None,
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    panel_size: tuple[float, float] = (4.5, 4.0),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
):
    """Bars of each metric per dataset and method (mean ± sd over repeats).

    Parameters
    ----------
    summary
        The benchmark's summary: a DataFrame, its ``summary.csv``, or the run folder.
    protocol
        The protocol to show (``"truth"``, ``"mask-nonzero:0.1"``, ...). None pools every
        protocol: a bar is the mean of the per-protocol means and its error bar their sd
        (with one protocol, its own mean ± sd).
    metrics
        One panel per metric. Default: the report's headline metrics of the protocol's kind
        (:data:`scfill.bench.report.HEADLINE`), or runtime and peak memory when protocols are
        pooled. Cost metrics are drawn on a log scale.
    methods
        Methods in legend order (default: their order in the summary).
    panel_size
        Size of one panel in inches.
    {show_save}

    Returns
    -------
    The list of Axes (one per metric), the Figure, or None when shown.
    """
    from scfill.bench.report import DIRECTION, HEADLINE

    summary = read_summary(summary)
    if protocol is not None:
        known = list(dict.fromkeys(summary["protocol"]))
        if protocol not in known:
            raise InputError(f"pl.benchmark: protocol {protocol!r} is not in the summary.",
                             fix=f"use one of {known}.")
        summary = summary[summary["protocol"] == protocol]
    if metrics is None:
        metrics = (HEADLINE.get(protocol.split(":")[0], ()) if protocol is not None
                   else DEFAULT_COST)
        metrics = [m for m in metrics if (summary["metric"] == m).any()]
    unknown = [m for m in metrics if not (summary["metric"] == m).any()]
    if unknown or not metrics:
        known = list(dict.fromkeys(summary["metric"]))
        raise InputError(f"pl.benchmark: metrics {unknown or '(none)'} are not in the "
                         "summary" + (f" under protocol {protocol!r}." if protocol else "."),
                         fix=f"pass metrics= from {known}.")
    methods = list(methods) if methods is not None else list(dict.fromkeys(summary["method"]))

    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), squeeze=False,
                             figsize=(panel_size[0] * len(metrics), panel_size[1]))
    panels = list(axes[0])
    for ax, metric in zip(panels, metrics, strict=True):
        part = _pooled(summary[summary["metric"] == metric])
        _bars(ax, part, methods, log=metric in COST_METRICS)
        better = {1: "higher is better", -1: "lower is better"}.get(DIRECTION.get(metric, 0))
        title = COST_METRICS.get(metric, metric)
        ax.set_title(f"{title} ({better})" if better else title, fontsize=10)
    panels[-1].legend(fontsize=7, loc="best")
    if protocol is not None:
        fig.suptitle(f"protocol {protocol} (mean ± sd over repeats)")
    fig.tight_layout()
    return finish(fig, panels, show=show, save=save, return_fig=return_fig)
