"""The benchmark report: markdown tables (mean ± sd, best marked) and figures.

Written from the runner's tidy results (:mod:`scfill.bench.runner`): the settings that
differ from each method's defaults (from ``settings.json``), one table per protocol and
headline metric (methods × datasets), per protocol the leaders and a "best peer vs best
scfill method" table, real and simulated datasets counted apart
(:mod:`scfill.bench.compare`), the runtime and memory of every method with its ratio to a
reference method, the runs that did not finish and why, and figures (metric bars with sd
error bars, runtime and memory bars, UMAPs of one dataset before and after each method).
Every number in the prose is computed here from the results; a run folder's ``notes.md``
(provenance that no setting records, e.g. parallel streams) is quoted as written.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scfill.utils import usable_cpus

#: +1 when higher is better, -1 when lower is better; metrics absent here get no "best".
DIRECTION: dict[str, int] = {
    **dict.fromkeys(("mse", "rmse", "dropout_mse", "dropout_rmse", "biozero_mse",
                     "js_distance", "wasserstein", "gini_mse", "entropy", "dropout_fpr",
                     "runtime_s", "wall_s", "peak_rss_mb", "poisson_loss"), -1),
    **dict.fromkeys(("pearson", "cosine", "dropout_pearson", "dropout_cosine", "ari", "nmi",
                     "purity", "asw", "acc", "f1", "auc", "dropout_accuracy", "dropout_f1",
                     "dropout_precision", "deg_f1", "deg_jaccard", "deg_auc",
                     "pearson_original", "pos", "kendall_tau"), 1),
}
#: Metrics shown as tables and bars, by protocol kind (every metric is in results.csv).
HEADLINE: dict[str, tuple[str, ...]] = {
    "truth": ("rmse", "pearson", "dropout_rmse", "biozero_mse", "ari", "nmi"),
    "mask-nonzero": ("rmse", "pearson", "cosine"),
    "mask-expressed": ("rmse", "pearson", "cosine"),
    "downstream": ("ari", "nmi", "asw"),
    "mcv": ("mse", "poisson_loss"),
}
#: Metric of the "best peer vs best scfill method" comparison, by protocol kind.
COMPARED: dict[str, str] = {"truth": "mse", "mask-nonzero": "mse", "mask-expressed": "mse",
                            "mcv": "mse", "downstream": "ari"}
#: What each protocol kind scores, for the comparison's heading.
SCORED: dict[str, str] = {
    "truth": "against the simulation's true counts, all entries",
    "mask-nonzero": "at the hidden non-zeros, against their values before masking",
    "mask-expressed": "at the hidden non-zeros of genes expressed in half of the cells",
    "mcv": "against the held-out molecules (molecular cross-validation, all entries)",
    "downstream": "clustering agreement with the labels",
}
#: A run folder's hand-written provenance, quoted in the report.
NOTES_FILE = "notes.md"
#: obs columns tried, in order, to colour the UMAPs.
LABEL_COLUMNS = ("label", "group", "cell_type")
#: UMAP settings: PCA components and neighbours (scanpy defaults: 50, 15).
UMAP_PCS = 30
UMAP_NEIGHBORS = 15


def machine_description() -> str:
    """CPU cores usable by this process, platform and GPU (or its absence)."""
    cores = usable_cpus()
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    return f"{cores}-core CPU ({platform.machine()}, {platform.system()}), {gpu}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("scfill", "torch", "scanpy", "scikit-learn", "magic-impute", "scvi-tools"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found) + _tf_versions()


def _tf_versions() -> str:
    """The TensorFlow peers' versions, from their env's setup record."""
    import json

    from scfill.external import tensorflow_env

    ready = tensorflow_env.env_path() / tensorflow_env.READY_FILE
    if not ready.exists():
        return "; the DCA/DeepImpute env is not installed"
    versions = json.loads(ready.read_text())
    return "; DCA/DeepImpute env: " + ", ".join(f"{k} {v}" for k, v in versions.items())


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and number of repeats per dataset × method × protocol × metric."""
    keys = ["dataset", "method", "protocol", "metric"]
    return (results.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"])
            .reset_index())


def metric_table(summary: pd.DataFrame, protocol: str, metric: str,
                 methods: list[str]) -> pd.DataFrame | None:
    """Methods × datasets cells ``mean ± sd`` (``mean`` alone from a single repeat); the
    best of each column in bold.

    Returns None when no method has the metric under ``protocol``.
    """
    part = summary[(summary["protocol"] == protocol) & (summary["metric"] == metric)]
    if part.empty:
        return None
    means = part.pivot(index="method", columns="dataset", values="mean")
    sds = part.pivot(index="method", columns="dataset", values="std")
    order = [m for m in methods if m in means.index]
    means, sds = means.loc[order], sds.loc[order]
    direction = DIRECTION.get(metric, 0)
    cells = (means.map(_fmt) + " ± " + sds.map(_fmt)).where(sds.notna(), means.map(_fmt))
    cells = cells.where(means.notna(), "–")
    if direction:
        best = means.eq(means.max() if direction > 0 else means.min())
        cells = cells.where(~best, "**" + cells + "**")
    return cells


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "nan"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e4 or magnitude < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}" if magnitude >= 100 else f"{value:.3f}"


def _markdown(table: pd.DataFrame, index_name: str = "method") -> str:
    header = f"| {index_name} | " + " | ".join(map(str, table.columns)) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    rows = [f"| {i} | " + " | ".join(map(str, r)) + " |" for i, r in table.iterrows()]
    return "\n".join([header, rule, *rows])


def runtime_ratios(summary: pd.DataFrame, metric: str, reference: str) -> pd.Series:
    """Per method: geometric mean over datasets and protocols of its ``metric`` divided by
    ``reference``'s on the same dataset and protocol."""
    part = summary[summary["metric"] == metric]
    table = part.pivot_table(index=["dataset", "protocol"], columns="method", values="mean")
    if reference not in table:
        return pd.Series(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(table.div(table[reference], axis=0))
    return np.exp(logs.replace([np.inf, -np.inf], np.nan).mean())


def _cost_table(summary: pd.DataFrame, metric: str, methods: list[str],
                reference: str) -> pd.DataFrame | None:
    """Mean ± sd of ``metric`` per method and dataset (over protocols and repeats)."""
    part = summary[summary["metric"] == metric]
    if part.empty:
        return None
    pooled = part.groupby(["method", "dataset"])["mean"].agg(["mean", "std"]).reset_index()
    pooled["std"] = pooled["std"].fillna(0.0)
    table = metric_table(pooled.assign(protocol="all", metric=metric), "all", metric, methods)
    ratios = runtime_ratios(summary, metric, reference)
    table[f"× {reference}"] = [f"{ratios.get(m, np.nan):.2f}" for m in table.index]
    return table


def _status_section(runs: pd.DataFrame) -> list[str]:
    counts = runs["status"].value_counts()
    lines = ["## Runs", "", ", ".join(f"{n} {s}" for s, n in counts.items()) + ".", ""]
    problems = runs[runs["status"] != "ok"]
    if not problems.empty:
        # one row per kind of problem: a message naming its dataset is grouped with the rest
        problems = problems.assign(message=[str(m).replace(str(d), "the dataset") for m, d
                                            in zip(problems["message"], problems["dataset"],
                                                   strict=True)])
        grouped = (problems.groupby(["method", "status", "message"], dropna=False)
                   .agg(n=("dataset", "size"), datasets=("dataset", lambda d: sorted(set(d))))
                   .reset_index())
        lines += ["| method | status | runs | datasets | message |", "|---|---|---:|---|---|"]
        for row in grouped.itertuples():
            shown = ", ".join(row.datasets[:4]) + (" …" if len(row.datasets) > 4 else "")
            message = str(row.message).replace("|", "/").replace("\n", " ")[:300]
            lines.append(f"| {row.method} | {row.status} | {row.n} | {shown} | {message} |")
        lines.append("")
    return lines


def _default(method: str, key: str) -> Any:
    import inspect

    from scfill.methods.base import get

    parameter = inspect.signature(get(method).__init__).parameters.get(key)
    return "?" if parameter is None else parameter.default


def _settings_section(settings: Mapping[str, Any], methods: list[str]) -> list[str]:
    """Every setting of the run that differs from a method's or scfill's default."""
    lines = ["## Settings", "", "What this run changed from the defaults (a method's "
             "parameter, or how the benchmark runs it):", ""]
    params = settings.get("params", {})
    changed = [f"- `{m}`: " + ", ".join(f"`{k}={v!r}` (default `{_default(m, k)!r}`)"
                                        for k, v in params[m].items())
               for m in methods if params.get(m)]
    lines += changed or ["- every method at its default parameters"]
    cells, genes = settings.get("max_cells"), settings.get("max_genes")
    if cells or genes:
        lines.append(f"- datasets subsampled once to at most {cells or 'all'} random cells "
                     f"and their {genes or 'all'} most variable genes (presets simulated at "
                     f"{cells or 'their'} cells); the methods see only those")
    if settings.get("threads"):
        lines.append(f"- {settings['threads']} thread(s) per run (numpy/BLAS/torch, and "
                     "TensorFlow for DCA/DeepImpute)")
    if settings.get("timeout_s"):
        lines.append(f"- runs killed after {settings['timeout_s']:g} s")
    if settings.get("repeats"):
        lines.append(f"- {settings['repeats']} repeat(s) per method × dataset × protocol "
                     "(masks/splits and method seeds differ by repeat)")
    lines.append(f"- device `{settings.get('device', 'cpu')}`, base seed "
                 f"{settings.get('seed', 0)}")
    return [*lines, ""]


def _comparison_section(summary: pd.DataFrame, protocol: str) -> list[str]:
    """Leaders and the best peer vs best scfill method per dataset, real and simulated
    apart, on the protocol's compared metric."""
    from scfill.bench import compare

    kind = str(protocol).split(":")[0]
    metric = COMPARED.get(kind)
    direction = DIRECTION.get(metric, 0)
    table = compare.best_versus(summary, protocol, metric, direction) if metric else None
    if table is None or table.empty:
        return []
    better = "lower" if direction < 0 else "higher"
    lines = [f"### Best peer vs best scfill method (`{metric}`, {better} is better)", "",
             f"Scored {SCORED.get(kind, '')}. "]
    for data_kind in ("real", "simulated"):
        if (table["kind"] == data_kind).any():
            board = compare.leaderboard(summary, protocol, metric, direction, data_kind)
            lines[-1] += (f"{compare.leader_sentence(board, data_kind)}; "
                          f"{compare.tally(table, data_kind)}. ")
    lines += ["", "| dataset | kind | best scfill method | value | best peer | value | "
              "no imputation | scfill / peer | winner |", "|---|---|---|---:|---|---:|---:|"
              "---:|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.dataset} | {row.kind} | {row.scfill or '–'} | "
                     f"{_fmt(row.scfill_value)} | {row.peer or '–'} | {_fmt(row.peer_value)} | "
                     f"{_fmt(row.floor_value)} | {_fmt(row.ratio)} | {row.winner or '–'} |")
    return [*lines, ""]


def _dataset_section(datasets: Mapping[str, Path]) -> list[str]:
    import anndata as ad

    lines = ["## Datasets", "", "| dataset | source | cells × genes (before) | "
             "cells × genes (benchmarked) |", "|---|---|---:|---:|"]
    for name, path in datasets.items():
        backed = ad.read_h5ad(path, backed="r")
        info = backed.uns.get("benchmark_dataset", {})
        before = " × ".join(map(str, info.get("shape_before", []))) or "?"
        lines.append(f"| {name} | `{info.get('source', '?')}` | {before} | "
                     f"{backed.n_obs} × {backed.n_vars} |")
        backed.file.close()
    return [*lines, ""]


def write_report(out: Path, results: pd.DataFrame, runs: pd.DataFrame, *, command: str = "",
                 datasets: Mapping[str, Path] | None = None,
                 umap: Mapping[str, Any] | None = None, reference: str | None = None,
                 settings: Mapping[str, Any] | None = None) -> Path:
    """Write ``out/report.md``, ``out/summary.csv`` and ``out/figures/*.png``.

    Parameters
    ----------
    out
        Run folder.
    results, runs
        The runner's tidy results and run table.
    command
        Command line quoted at the top.
    datasets
        Dataset name → prepared h5ad (for the datasets table).
    umap
        ``{"dataset": name, "path": h5ad, "imputed": {method: npz}}`` for the UMAP figure.
    reference
        Method the runtime and memory ratios are taken against (default: the first one
        other than the ``none`` floor).
    settings
        The run's settings (:meth:`~scfill.bench.runner.BenchmarkConfig.settings` plus
        ``threads``, ``timeout_s``, ``repeats``); default: ``out/settings.json``.
    """
    from scfill.bench import figures

    out = Path(out)
    methods = list(dict.fromkeys(runs["method"]))
    reference = reference or next((m for m in methods if m != "none"), "none")
    summary = summarize(results)
    summary.to_csv(out / "summary.csv", index=False)
    lines = ["# scfill benchmark", "",
             f"- Command: `{command}`" if command else "- Command: (API call)",
             f"- Machine: {machine_description()}",
             f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- Versions: {_versions()}",
             "- Cells: mean ± sd over repeats; **bold** = best in its column (lower is "
             "better for errors, distances, time and memory). All values in scfill's common "
             "space ln(1 + count · median / library size). Every metric of every run is in "
             "`results.csv`; means and sds in `summary.csv`.", ""]
    if settings is None and (out / "settings.json").exists():
        settings = json.loads((out / "settings.json").read_text())
    lines += _settings_section(settings or {}, methods)
    if (out / NOTES_FILE).exists():
        lines += ["## Provenance", "", (out / NOTES_FILE).read_text().strip(), ""]
    if datasets:
        lines += _dataset_section(datasets)
    lines += _status_section(runs)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    for protocol in dict.fromkeys(runs["protocol"]):
        kind = str(protocol).split(":")[0]
        shown = [m for m in HEADLINE.get(kind, ()) if
                 ((summary["protocol"] == protocol) & (summary["metric"] == m)).any()]
        if not shown:
            continue
        lines += [f"## Protocol `{protocol}`", ""]
        for metric in shown:
            lines += [f"### {metric}", "", _markdown(metric_table(summary, protocol, metric,
                                                                  methods)), ""]
        name = figures.metric_bars(summary, protocol, shown, methods, figure_dir)
        lines += [f"![{protocol}](figures/{name})", ""]
        lines += _comparison_section(summary, protocol)
    lines += ["## Cost", "",
              "`runtime_s`: the method's own run (fit, reconstruct, combine) as timed by "
              "`scfill.impute`; `peak_rss_mb`: peak resident memory of the run's process "
              "(Python, libraries, data and evaluation included; the `none` method shows "
              "that floor). Pooled over protocols; the last column is the geometric mean "
              f"over datasets and protocols of the ratio to `{reference}`.", ""]
    for metric in ("runtime_s", "peak_rss_mb"):
        table = _cost_table(summary, metric, methods, reference)
        if table is not None:
            lines += [f"### {metric}", "", _markdown(table), ""]
    if (summary["metric"] == "runtime_s").any():
        name = figures.cost_bars(summary, methods, figure_dir)
        lines += [f"![cost](figures/{name})", ""]
    if umap and umap.get("imputed"):
        name = figures.umaps(umap["path"], umap["imputed"], umap["dataset"], figure_dir)
        lines += [f"## UMAP of `{umap['dataset']}`", "",
                  "Original (common space) and each method's output, coloured by the "
                  "dataset's labels.", "", f"![umap](figures/{name})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
