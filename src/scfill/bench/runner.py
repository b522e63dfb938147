"""The benchmark grid: methods × datasets × protocols × repeats, each run isolated.

Every grid cell is one call of a job function (default :func:`evaluate_job`, which is
:func:`scfill.evaluate.evaluate_method`) in its own process (:mod:`scfill.bench.isolate`),
with a time limit; its outcome, wall time and peak memory are written to
``OUT/runs/KEY.json`` at once, so an interrupted run resumes where it stopped and a re-run
skips finished cells (``force`` redoes them, ``retry_failed`` redoes the failed, crashed
and timed-out ones). Peers whose package is missing are recorded as skipped with the
install command, without starting a process.

Layout of ``OUT``::

    settings.json        what the grid's datasets and runs depend on
    datasets/NAME.h5ad   each dataset as the methods see it (subsampled once)
    runs/KEY.json        one record per grid cell (and per UMAP imputation)
    logs/KEY.log         the child's output
    imputed/KEY.npz      the UMAP dataset imputed by each method
    results.csv          tidy metric rows (plus wall_s and peak_rss_mb per run)
    runs.csv             one row per grid cell: status, message, wall time, memory
    report.md, summary.csv, figures/   written by :mod:`scfill.bench.report`
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scfill._logging import logger
from scfill.bench.datasets import DatasetSource, prepare_dataset, resolve_datasets
from scfill.bench.isolate import Outcome, run_isolated
from scfill.errors import InputError
from scfill.methods.base import registered

#: The job run for each grid cell, as ``module:function``.
EVALUATE_JOB = "scfill.bench.runner:evaluate_job"
IMPUTE_JOB = "scfill.bench.runner:impute_job"
#: Statuses a re-run with ``retry_failed`` runs again.
RETRY_STATUSES = ("failed", "crashed", "timeout")
RUN_COLUMNS = ["dataset", "method", "protocol", "repeat", "status", "message", "wall_s",
               "peak_rss_mb"]
RESULT_COLUMNS = ["dataset", "method", "protocol", "repeat", "seed", "metric", "value"]


@dataclass(frozen=True)
class Job:
    """One cell of the grid."""

    method: str
    dataset: str
    protocol: str
    repeat: int

    @property
    def key(self) -> str:
        """File-name-safe identifier."""
        text = f"{self.dataset}__{self.method}__{self.protocol}__r{self.repeat}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


@dataclass
class BenchmarkConfig:
    """Everything a benchmark run depends on.

    Parameters
    ----------
    methods
        Registered method names, or ``["all"]``.
    datasets
        h5ad files, folders of h5ad files, ``preset:NAME``.
    protocols
        Protocols of :mod:`scfill.evaluate.masking` (``truth``, ``mask-nonzero:0.3``, ...).
    out
        Run folder.
    repeats
        Repeats per method × dataset × protocol (masks and method seeds differ).
    seed
        Base seed: subsampling, simulation, masks (with the repeat), methods.
    max_cells, max_genes
        Subsample datasets to at most this many cells and genes (None: keep all).
    n_top_genes
        Methods impute only this many most variable genes of each dataset (the others are
        returned, and scored, as observed); None: each method's default.
    timeout_s
        Time limit of one run, seconds (None: none).
    threads
        Threads per run (numpy/BLAS/torch), None to inherit.
    params
        Method parameters: ``{"scvi": {"epochs": 50}}``.
    device
        Torch device for the methods.
    force, retry_failed
        Redo every cell / only the failed, crashed and timed-out ones.
    report_only
        Run nothing: report the finished cells (the others show as ``not run``).
    umap_dataset
        Dataset whose imputations are shown as UMAPs (default: the first one); ``""`` for
        none.
    job
        The per-cell job as ``module:function`` (tests point it at a fake job).
    preload
        Modules each run imports first (e.g. one registering extra methods).
    """

    methods: list[str]
    datasets: list[str]
    protocols: list[str]
    out: Path
    repeats: int = 3
    seed: int = 0
    max_cells: int | None = 2000
    max_genes: int | None = 2000
    n_top_genes: int | None = None
    timeout_s: float | None = 3600.0
    threads: int | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    force: bool = False
    retry_failed: bool = False
    report_only: bool = False
    umap_dataset: str | None = None
    job: str = EVALUATE_JOB
    preload: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """What finished records depend on: a change needs ``force``."""
        return {"seed": self.seed, "max_cells": self.max_cells, "max_genes": self.max_genes,
                "n_top_genes": self.n_top_genes,
                "params": {k: dict(v) for k, v in self.params.items()},
                "device": self.device, "job": self.job}


# --------------------------------------------------------------------- jobs (in the child)


def evaluate_job(*, path: str, method: str, protocol: str, repeat: int, seed: int,
                 params: dict[str, Any], dataset: str, device: str,
                 n_top_genes: int | None = None) -> list[dict[str, Any]]:
    """One grid cell: :func:`scfill.evaluate.evaluate_method` on a prepared dataset."""
    import anndata as ad

    from scfill.evaluate import evaluate_method

    adata = ad.read_h5ad(path)
    rows = evaluate_method(adata, method, protocol=protocol, seed=seed, repeat=repeat,
                           params=params, dataset=dataset, device=device,
                           n_top_genes=n_top_genes)
    return rows.to_dict(orient="records")


def impute_job(*, path: str, method: str, seed: int, params: dict[str, Any], device: str,
               output: str, n_top_genes: int | None = None) -> dict[str, Any]:
    """Impute a prepared dataset and save ``layers["imputed"]`` (CSR) to ``output`` (.npz)."""
    import anndata as ad
    import scipy.sparse as sp

    import scfill

    adata = ad.read_h5ad(path)
    adata.X = sp.csr_matrix(adata.X)
    scfill.impute(adata, method, seed=seed, params=params, device=device,
                  n_top_genes=n_top_genes)
    partial = Path(output).with_suffix(".part.npz")
    sp.save_npz(partial, sp.csr_matrix(adata.layers["imputed"]))
    partial.replace(output)
    return {"runtime_s": adata.uns["scfill"]["runtime_s"]}


# --------------------------------------------------------------------- the grid (parent)


def expand_methods(methods: list[str]) -> list[str]:
    """Check method names (``all`` = every registered method, the floor ``none`` included)."""
    from scfill.methods.base import get, registered

    if [m.lower() for m in methods] == ["all"]:
        return sorted(registered())
    return [get(m).name for m in methods]


def build_grid(methods: list[str], datasets: list[DatasetSource], protocols: list[str],
               repeats: int) -> list[Job]:
    """Every method × dataset × protocol × repeat, dataset-major (a dataset finishes first)."""
    return [Job(m, d.name, p, r) for d in datasets for p in protocols for r in range(repeats)
            for m in methods]


def _check_config(config: BenchmarkConfig) -> tuple[list[str], list[DatasetSource], list[str]]:
    from scfill.evaluate import parse_protocol
    from scfill.utils import check_number

    check_number("repeats", config.repeats, integer=True, low=1, method="benchmark")
    for name, low in (("max_cells", 2), ("max_genes", 2), ("n_top_genes", 1), ("threads", 1)):
        value = getattr(config, name)
        if value is not None:
            check_number(name, value, integer=True, low=low, method="benchmark")
    if config.timeout_s is not None:
        check_number("timeout", config.timeout_s, low=0, low_open=True, method="benchmark")
    if not config.methods or not config.datasets or not config.protocols:
        raise InputError("the benchmark needs at least one method, dataset and protocol.",
                         fix="give --methods, --datasets and --protocols.")
    methods = expand_methods(config.methods)
    # parameters of other registered methods are allowed, so that a grid split into streams
    # of methods (each its own process) shares one set of settings
    unknown = sorted(set(config.params) - set(registered()))
    if unknown:
        raise InputError(f"parameters given for unknown method(s): {', '.join(unknown)}.",
                         fix="use METHOD.KEY=VALUE with a method from `scfill methods`.")
    protocols = [str(parse_protocol(p)) for p in config.protocols]
    return methods, resolve_datasets(config.datasets), protocols


def _check_settings(config: BenchmarkConfig) -> None:
    """Refuse to mix records made under other settings into this run (unless forced).

    Method parameters are compared per method: a stream of other methods may add its own
    parameters to the run folder, but a method's parameters cannot change under it.
    """
    path = config.out / "settings.json"
    current = config.settings()
    if path.exists() and not config.force:
        previous = json.loads(path.read_text())
        changed = sorted(k for k in current if k != "params" and previous.get(k) != current[k])
        shared = set(previous.get("params", {})) & set(current["params"])
        changed += [f"params of {m}" for m in sorted(shared)
                    if previous["params"][m] != current["params"][m]]
        if changed:
            raise InputError(f"the run folder holds results made with other settings "
                             f"({', '.join(changed)}).", fix="use another --out, the same "
                             "settings, or --force to redo every run.", source=str(config.out))
        current["params"] = {**previous.get("params", {}), **current["params"]}
    config.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=1))


def _record_path(out: Path, key: str) -> Path:
    return out / "runs" / f"{key}.json"


def _load_record(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _save_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(record, indent=1, default=float))
    partial.replace(path)


def _needs_run(record: dict[str, Any] | None, config: BenchmarkConfig) -> bool:
    if record is None or config.force:
        return True
    return config.retry_failed and record["status"] in RETRY_STATUSES


def _missing_peer(method: str) -> str | None:
    """The install hint of a peer whose package is absent (checked without importing it)."""
    from scfill.methods.base import get

    missing = getattr(get(method), "missing", None)
    return missing() if callable(missing) else None


def _not_applicable(job: Job, path: Path) -> Outcome | None:
    """A skipped outcome for ``truth`` on data without true counts (no process started)."""
    if not job.protocol.startswith("truth"):
        return None
    import h5py

    from scfill.evaluate.masking import TRUE_COUNTS

    with h5py.File(path, "r") as handle:
        has_truth = TRUE_COUNTS in handle.get("layers", {})
    if has_truth:
        return None
    return Outcome("skipped", f"protocol 'truth' needs layers[{TRUE_COUNTS!r}]; the dataset "
                   "is not a simulation.")


def _run_one(config: BenchmarkConfig, target: str, kwargs: dict[str, Any], method: str,
             log: Path) -> Outcome:
    hint = _missing_peer(method)
    if hint is not None:
        return Outcome("skipped", hint)
    log.parent.mkdir(parents=True, exist_ok=True)
    return run_isolated(target, kwargs, timeout_s=config.timeout_s, threads=config.threads,
                        preload=config.preload, log_path=log)


def _outcome_record(job_fields: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    record = {**job_fields, "status": outcome.status, "message": outcome.message,
              "wall_s": round(outcome.wall_s, 3), "peak_rss_mb": round(outcome.peak_rss_mb, 1),
              "result": outcome.result}
    if outcome.traceback:
        record["traceback"] = outcome.traceback
    return record


def run_grid(config: BenchmarkConfig) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Path]]:
    """Run every unfinished cell of the grid; return tidy results, runs and dataset paths.

    Raises
    ------
    InputError
        Unknown method or protocol, a bad dataset, a bad setting, or a run folder made
        with other settings (without ``force``).
    """
    methods, sources, protocols = _check_config(config)
    _check_settings(config)
    paths = {s.name: _prepare(s, config) for s in sources}
    jobs = build_grid(methods, sources, protocols, config.repeats)
    records = []
    for number, job in enumerate(jobs, 1):
        path = _record_path(config.out, job.key)
        record = _load_record(path)
        if config.report_only and record is None:
            outcome = _not_applicable(job, paths[job.dataset]) or Outcome("not run",
                                                                         "not run yet")
            record = _outcome_record(asdict(job), outcome)
        elif not config.report_only and _needs_run(record, config):
            kwargs = {"path": str(paths[job.dataset]), "method": job.method,
                      "protocol": job.protocol, "repeat": job.repeat, "seed": config.seed,
                      "params": dict(config.params.get(job.method, {})),
                      "dataset": job.dataset, "device": config.device,
                      **_top_genes(config)}
            outcome = _not_applicable(job, paths[job.dataset]) or _run_one(
                config, config.job, kwargs, job.method, config.out / "logs" / f"{job.key}.log")
            record = _outcome_record(asdict(job), outcome)
            _save_record(path, record)
            logger.info("[%d/%d] %s: %s (%.1f s, %.0f MiB)%s", number, len(jobs), job.key,
                        outcome.status, outcome.wall_s, outcome.peak_rss_mb,
                        f" — {outcome.message[:200]}" if outcome.message else "")
        records.append(record)
    return _results_table(records), _runs_table(records), paths


def _top_genes(config: BenchmarkConfig) -> dict[str, int]:
    """The job argument ``n_top_genes`` when it is set (jobs without it still run)."""
    return {} if config.n_top_genes is None else {"n_top_genes": config.n_top_genes}


def _prepare(source: DatasetSource, config: BenchmarkConfig) -> Path:
    target = config.out / "datasets" / f"{source.name}.h5ad"
    if config.force and target.exists():
        target.unlink()
    return prepare_dataset(source, config.out / "datasets", max_cells=config.max_cells,
                           max_genes=config.max_genes, seed=config.seed)


def _runs_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in RUN_COLUMNS} for r in records],
                        columns=RUN_COLUMNS)


def _results_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Metric rows of successful runs, plus ``wall_s`` and ``peak_rss_mb`` as metrics."""
    rows = []
    for record in records:
        if record["status"] != "ok":
            continue
        rows.extend(record["result"])
        seed = record["result"][0]["seed"] if record["result"] else None
        for metric in ("wall_s", "peak_rss_mb"):
            rows.append({"dataset": record["dataset"], "method": record["method"],
                         "protocol": record["protocol"], "repeat": record["repeat"],
                         "seed": seed, "metric": metric, "value": record[metric]})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def run_umap_imputations(config: BenchmarkConfig, methods: list[str], dataset: str,
                         path: Path) -> dict[str, Path]:
    """Impute ``dataset`` with every method (isolated, resumable): method → .npz file."""
    outputs = {}
    for method in methods:
        key = Job(method, dataset, "impute", 0).key
        output = config.out / "imputed" / f"{key}.npz"
        record_path = _record_path(config.out, f"umap__{key}")
        record = _load_record(record_path)
        if config.report_only:
            pass
        elif _needs_run(record, config) or (record["status"] == "ok" and not output.exists()):
            output.parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"path": str(path), "method": method, "seed": config.seed,
                      "params": dict(config.params.get(method, {})), "device": config.device,
                      "output": str(output), **_top_genes(config)}
            outcome = _run_one(config, IMPUTE_JOB, kwargs, method,
                               config.out / "logs" / f"umap__{key}.log")
            record = _outcome_record({"method": method, "dataset": dataset}, outcome)
            _save_record(record_path, record)
            logger.info("UMAP input %s: %s (%.1f s)", key, outcome.status, outcome.wall_s)
        if record is not None and record["status"] == "ok" and output.exists():
            outputs[method] = output
    return outputs


def run_benchmark(config: BenchmarkConfig, *, command: str = "") -> Path:
    """Run the grid, the UMAP imputations and write the report; return ``report.md``.

    Parameters
    ----------
    config
        The run (:class:`BenchmarkConfig`).
    command
        The command line that started it, quoted in the report.
    """
    from scfill.bench.report import write_report

    results, runs, paths = run_grid(config)
    results.to_csv(config.out / "results.csv", index=False)
    runs.to_csv(config.out / "runs.csv", index=False)
    umap = {}
    umap_name = next(iter(paths)) if config.umap_dataset is None else config.umap_dataset
    if umap_name:
        if umap_name not in paths:
            raise InputError(f"UMAP dataset {umap_name!r} is not in the run.",
                             fix=f"use one of: {', '.join(paths)}.")
        methods = list(dict.fromkeys(runs["method"]))
        umap = {"dataset": umap_name, "path": paths[umap_name],
                "imputed": run_umap_imputations(config, methods, umap_name,
                                                paths[umap_name])}
    settings = {**config.settings(), "threads": config.threads, "timeout_s": config.timeout_s,
                "repeats": config.repeats}
    return write_report(config.out, results, runs, command=command, datasets=paths,
                        umap=umap, settings=settings)
