"""Who wins where: scfill's methods against the peers, dataset by dataset, from a summary.

Every function reads the benchmark's ``summary.csv`` table (dataset, method, protocol,
metric, mean, std, count), so the report's prose and README's summary are computed from the
committed numbers, never typed. Real and simulated datasets are counted apart (a simulated
dataset's name starts with ``sim-``, :mod:`scfill.bench.datasets`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Method groups in the comparisons.
GROUPS = ("scfill", "peer", "baseline")
#: Methods of :mod:`scfill.methods.baselines` (the floor and kNN smoothing).
BASELINE_MODULE = "scfill.methods.baselines"
#: The method every ratio is taken against: no imputation.
FLOOR = "none"
#: Prefix of simulated datasets' names.
SIMULATED_PREFIX = "sim-"


def method_group(name: str) -> str:
    """``"scfill"`` (its own methods), ``"peer"`` (:mod:`scfill.external`), ``"baseline"``,
    or ``"other"`` for a name that is not registered."""
    from scfill.errors import InputError
    from scfill.methods.base import get

    try:
        module = get(name).__module__
    except InputError:
        return "other"
    if module.startswith("scfill.external"):
        return "peer"
    return "baseline" if module == BASELINE_MODULE else "scfill"


def dataset_kind(name: str) -> str:
    """``"simulated"`` or ``"real"``."""
    return "simulated" if str(name).startswith(SIMULATED_PREFIX) else "real"


def _means(summary: pd.DataFrame, protocol: str, metric: str) -> pd.DataFrame:
    """Datasets × methods table of means (NaN where a method did not run)."""
    part = summary[(summary["protocol"] == protocol) & (summary["metric"] == metric)]
    return part.pivot_table(index="dataset", columns="method", values="mean", aggfunc="first")


def leaderboard(summary: pd.DataFrame, protocol: str, metric: str, direction: int,
                kind: str) -> pd.DataFrame:
    """Per method, over the datasets of ``kind``: on how many it ran, on how many it is the
    best of the methods that ran there, and the median of its value divided by no
    imputation's on the same dataset.

    Returns columns ``method, group, wins, datasets, median_ratio`` sorted by wins, then
    ratio (best first). ``median_ratio`` is NaN without the floor.
    """
    means = _means(summary, protocol, metric)
    means = means[[dataset_kind(d) == kind for d in means.index]]
    if means.empty:
        return pd.DataFrame(columns=["method", "group", "wins", "datasets", "median_ratio"])
    best = means.min(axis=1) if direction < 0 else means.max(axis=1)
    wins = means.eq(best, axis=0).sum()
    if FLOOR in means:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = means.div(means[FLOOR], axis=0).median()
    else:
        ratio = pd.Series(np.nan, index=means.columns)
    table = pd.DataFrame({"method": means.columns, "group": [method_group(m) for m in
                                                             means.columns],
                          "wins": wins.to_numpy(), "datasets": means.notna().sum().to_numpy(),
                          "median_ratio": ratio.to_numpy()})
    order = table["median_ratio"] * (1 if direction < 0 else -1)
    return (table.assign(_order=order).sort_values(["wins", "_order"], ascending=[False, True])
            .drop(columns="_order").reset_index(drop=True))


def best_versus(summary: pd.DataFrame, protocol: str, metric: str,
                direction: int) -> pd.DataFrame:
    """Per dataset: scfill's best method and the best peer on ``metric``, and which wins.

    Returns columns ``dataset, kind, scfill, scfill_value, peer, peer_value, floor_value,
    ratio`` (scfill's best value / the best peer's) and ``winner`` (``"scfill"``,
    ``"peer"`` or ``"tie"``; empty when one side did not run), real datasets first.
    """
    means = _means(summary, protocol, metric)
    groups = {m: method_group(m) for m in means.columns}
    rows = []
    for dataset, values in means.iterrows():
        row = {"dataset": dataset, "kind": dataset_kind(dataset),
               "floor_value": values.get(FLOOR, np.nan)}
        for group in ("scfill", "peer"):
            side = values[[m for m, g in groups.items() if g == group]].dropna()
            pick = (side.idxmin() if direction < 0 else side.idxmax()) if len(side) else ""
            row[group], row[f"{group}_value"] = pick, side.get(pick, np.nan)
        ours, theirs = row["scfill_value"], row["peer_value"]
        row["ratio"] = ours / theirs if theirs else np.nan
        if np.isnan(ours) or np.isnan(theirs):
            row["winner"] = ""
        elif ours == theirs:
            row["winner"] = "tie"
        else:
            row["winner"] = "scfill" if (ours - theirs) * direction > 0 else "peer"
        rows.append(row)
    columns = ["dataset", "kind", "scfill", "scfill_value", "peer", "peer_value",
               "floor_value", "ratio", "winner"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["kind", "dataset"]).reset_index(drop=True)


def tally(table: pd.DataFrame, kind: str) -> str:
    """One sentence from :func:`best_versus`: how often scfill's best beats the best peer."""
    part = table[(table["kind"] == kind) & (table["winner"] != "")]
    if part.empty:
        return f"no {kind} dataset has both a scfill method and a peer"
    won = int((part["winner"] == "scfill").sum())
    return (f"scfill's best method beats the best peer on {won} of {len(part)} {kind} "
            f"dataset{'s' if len(part) != 1 else ''} (median of scfill's best / the best "
            f"peer's: {part['ratio'].median():.3g})")


def leader_sentence(board: pd.DataFrame, kind: str, top: int = 3) -> str:
    """``"real datasets: scvi best on 9 of 13 (median 0.131 × no imputation); ..."``."""
    if board.empty:
        return f"no {kind} dataset"
    parts = []
    for row in board.head(top).itertuples():
        ratio = "" if np.isnan(row.median_ratio) else \
            f" (median {row.median_ratio:.3g} × no imputation)"
        parts.append(f"{row.method} best on {row.wins} of {row.datasets}{ratio}")
    return f"{kind.capitalize()} datasets: " + "; ".join(parts)
