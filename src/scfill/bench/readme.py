"""README's benchmark summary, written from the committed results, never typed.

:func:`summary_block` reads each run folder's ``summary.csv`` and ``settings.json`` (and
the speed benchmark's ``speed.csv``) and words the leaders and the "best scfill method vs
best peer" tally per protocol, real and simulated datasets apart
(:mod:`scfill.bench.compare`); :func:`update_readme` puts it between
:data:`START` and :data:`END` in README.md. ``benchmarks/readme_summary.py`` runs both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scfill.bench import compare
from scfill.bench.report import COMPARED, DIRECTION, SCORED
from scfill.errors import InputError

START = "<!-- benchmark-summary:start -->"
END = "<!-- benchmark-summary:end -->"


def _changed_settings(folder: Path) -> str:
    path = folder / "settings.json"
    if not path.exists():
        return "settings not recorded"
    settings = json.loads(path.read_text())
    params = [f"{m} {k}={v}" for m, values in settings.get("params", {}).items()
              for k, v in values.items()]
    size = (f"datasets cut to at most {settings['max_cells']} cells x {settings['max_genes']} "
            "genes; " if settings.get("max_cells") or settings.get("max_genes") else "")
    return size + "parameters changed from the defaults: " + (", ".join(params) if params
                                                              else "none")


def _run_lines(folder: Path, root: Path) -> list[str]:
    summary = pd.read_csv(folder / "summary.csv")
    repeats = int(summary["count"].max()) if len(summary) else 0
    link = folder.relative_to(root).as_posix()
    lines = [f"- [`{folder.name}`]({link}/report.md) ({repeats} repeat(s) per cell; "
             f"{_changed_settings(folder)}):"]
    for protocol in dict.fromkeys(summary["protocol"]):
        kind = str(protocol).split(":")[0]
        metric = COMPARED.get(kind)
        if metric is None or not ((summary["protocol"] == protocol)
                                  & (summary["metric"] == metric)).any():
            continue
        direction = DIRECTION[metric]
        table = compare.best_versus(summary, protocol, metric, direction)
        parts = []
        for data_kind in ("real", "simulated"):
            if not (table["kind"] == data_kind).any():
                continue
            board = compare.leaderboard(summary, protocol, metric, direction, data_kind)
            parts.append(f"{compare.leader_sentence(board, data_kind)}; "
                         f"{compare.tally(table, data_kind)}")
        lines.append(f"  - `{protocol}`, `{metric}` {SCORED[kind]}. " + ". ".join(parts) + ".")
    return lines


def _speed_lines(speed_csv: Path, root: Path) -> list[str]:
    table = pd.read_csv(speed_csv)
    stopped = table.loc[table["runtime_s"].isna(), "method"].tolist()
    speed = table.dropna(subset=["runtime_s"]).set_index("method")
    if speed.empty:
        return []
    link = speed_csv.with_suffix(".md").relative_to(root).as_posix()
    references = [m for m in ("magic", "dca") if m in speed.index]
    parts = []
    for method, row in speed.iterrows():
        ratios = ", ".join(f"{row.runtime_s / speed.loc[m, 'runtime_s']:.2g} × {m}"
                           for m in references if m != method)
        parts.append(f"{method} {row.runtime_s:.1f} s" + (f" ({ratios})" if ratios else ""))
    parts += [f"{method} stopped at the time limit" for method in stopped]
    load = f"{speed['load_before'].iloc[0]:.1f}–{speed['load_after'].iloc[0]:.1f}"
    return [f"- [Speed at 5,000 × 2,000]({link}), each method at its defaults, all in one "
            f"run on the shared 2-core machine (load average {load}): " + "; ".join(parts)
            + "."]


def summary_block(folders: list[Path], *, speed_csv: Path | None = None,
                  root: Path = Path(".")) -> str:
    """The README block (markers included) for the run ``folders`` and the speed CSV.

    Links are relative to ``root`` (the folder README.md is in).
    """
    lines = [START, "<!-- written by `python benchmarks/readme_summary.py` from the "
             "committed summary.csv / speed.csv files: rerun it, do not edit -->", "",
             "In short, computed from the committed results (ratios are medians over "
             "datasets of a method's error divided by no imputation's; real and simulated "
             "datasets are counted apart):", ""]
    for folder in folders:
        lines += _run_lines(Path(folder), root)
    if speed_csv is not None and Path(speed_csv).exists():
        lines += _speed_lines(Path(speed_csv), root)
    return "\n".join([*lines, "", END])


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the markers in ``readme`` (they must be there once)."""
    text = Path(readme).read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise InputError(f"{readme} needs one {START} and one {END} line.",
                         fix="add the two markers where the summary belongs.")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    Path(readme).write_text(head + block + tail)
