"""scMASKGAN's evaluation: the paper's clustering protocol, distances to the original,
masked-entry accuracy, and cost beside MAGIC.

Parts (``--part``):

``accuracy``
    The benchmark runner (:mod:`scfill.bench.runner`, each run isolated, resumable records
    under ``<out>/runs``) on real datasets subsampled like the cross-method benchmark
    (seed 0, at most ``--max-cells`` cells and ``--max-genes`` most variable genes), two
    protocols of :mod:`scfill.evaluate`:

    - ``mask-nonzero:0.1``: 10 % of the non-zeros hidden (masks ``default_rng([0, r])``,
      the same as every other method's at the same settings); Pearson and RMSE at the
      hidden entries, JS and Wasserstein distances of the imputed to the unmasked data.
    - ``downstream``: the data as given; Louvain on the imputed data's kNN graph vs the cell
      labels, ACC, F1 and AUC after Hungarian matching (scMASKGAN Tables 3–4), and the
      Pearson correlation, JS and Wasserstein distances to the original.

    The methods never see the labels (scMASKGAN pre-clusters with k-means).
``cost``
    Runtime and peak RSS of scMASKGAN and MAGIC at 1k, 5k and 20k simulated cells, one
    after the other in fresh processes in one run (``benchmarks/_measure.py``), scMASKGAN
    trained for ``--cost-epochs`` epochs (the time per epoch is reported so the full
    schedule can be read off).
``memory``
    Peak RSS of one scMASKGAN training epoch at 20,000 genes (the bounded-size claim).
``profile``
    One training step (discriminator then generator update, 1 thread) timed at
    ``--profile-genes`` genes for channel counts × batch sizes, with and without
    ``channels_last``, and torch's operator profile of the ``fast`` step: where the time
    goes. Writes ``scmaskgan_profile.csv`` and ``scmaskgan_profile_ops.csv``.
``sweep``
    Paired settings of scMASKGAN on the same masks (``mask-nonzero:0.1``, repeats ``r``
    with masks ``default_rng([0, r])`` and seed ``r``), knn beside them: ``--settings`` is a
    JSON object ``{name: params}``. One process, one setting after the other; each row
    holds the masked-entry Pearson/RMSE and what the fit recorded (epochs run, training
    seconds, k and the spread of Optuna's k objective). Rows are appended to
    ``--sweep-out`` as they finish (a rerun skips the rows already there).

The diagnostic method ``classmean`` (registered by this script for its runs) fills each zero
with the mean of the gene's observed non-zeros in the cell's k-means pre-cluster: what
scMASKGAN's generator converges to when the masked reconstruction dominates its loss and the
candidates collapse onto one profile per label (the k objective is then flat).

Usage::

    python benchmarks/scmaskgan.py --part accuracy --datasets cellbench_sc_10x_3cl_subset
    python benchmarks/scmaskgan.py --part cost
    python benchmarks/scmaskgan.py --part memory
    python benchmarks/scmaskgan.py --part report

Writes ``benchmarks/results/scmaskgan/`` (runner folder), ``scmaskgan_cost.csv``,
``scmaskgan_memory.csv`` and the summary ``benchmarks/results/scmaskgan.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure
from scfill.methods.base import Method, PreparedData, register


@register
class ClassMean(Method):
    """Diagnostic: each zero takes the mean of its gene's non-zeros in the cell's cluster."""

    name = "classmean"
    description = "diagnostic: per-cluster mean of the observed non-zeros (scmaskgan bench)"
    dropout_model = None
    combine_rule = "zeros"
    preclustering = "kmeans"

    def __init__(self) -> None:
        self.info_ = {}

    def fit(self, data: PreparedData) -> ClassMean:
        """Per-cluster sums and counts of the non-zeros of every gene."""
        codes = np.asarray(data.labels)
        onehot = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))))
        sums = np.asarray((onehot @ data.logcounts).todense())
        counts = np.asarray((onehot @ (data.logcounts != 0).astype(np.float32)).todense())
        self.means_ = (sums / np.maximum(counts, 1)).astype(np.float32)
        self.codes_ = codes
        return self

    def reconstruct(self, data: PreparedData) -> Iterator[tuple[slice, np.ndarray]]:
        """Each cell's cluster means (one block)."""
        yield slice(0, data.n_cells), self.means_[self.codes_]


RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PROTOCOLS = ["mask-nonzero:0.1", "downstream"]
#: The paper's datasets first (CellBench 10x, CEL-seq2, Drop-seq, ERCC, Darmanis).
DATASETS = ["cellbench_sc_10x_3cl_subset", "cellbench_sc_dropseq_3cl",
            "cellbench_sc_celseq2_3cl", "ercc_spikein_288", "darmanis_human_brain_adult"]
METHODS = ["none", "knn", "magic", "alra", "scvi", "maskclass", "cnnimpute", "classmean",
           "scmaskgan"]
#: The cross-method benchmark's settings for the peers (run_benchmark.sh).
PEER_PARAMS = {"scvi": {"epochs": 100}, "cnnimpute": {"epochs": 20}}
#: Table 3–4 of the paper (Louvain vs cell types), for the report.
PAPER_ACC = {"cellbench_sc_10x_3cl_subset": 0.999, "cellbench_sc_dropseq_3cl": 0.997,
             "cellbench_sc_celseq2_3cl": 0.969, "ercc_spikein_288": 0.54,
             "darmanis_human_brain_adult": 0.975}
REPORT_METRICS = {"mask-nonzero:0.1": ["pearson", "rmse", "js_distance", "wasserstein"],
                  "downstream": ["acc", "f1", "auc", "ari", "pearson_original",
                                 "js_distance", "wasserstein", "n_clusters"]}


def _clustered_job(clustering: str, *, path: str, method: str, protocol: str, repeat: int,
                   seed: int, params: dict, dataset: str, device: str,
                   resolution: float | str = 1.0) -> list[dict]:
    import anndata as ad

    from scfill.evaluate import evaluate_method

    rows = evaluate_method(ad.read_h5ad(path), method, protocol=protocol, seed=seed,
                           repeat=repeat, params=params, dataset=dataset, device=device,
                           clustering=clustering, resolution=resolution)
    return rows.to_dict(orient="records")


def louvain_job(**kwargs) -> list[dict]:
    """One grid cell: :func:`scfill.evaluate.evaluate_method` with Louvain clustering
    (resolution 1, scanpy's default)."""
    return _clustered_job("louvain", **kwargs)


def louvain_n_labels_job(**kwargs) -> list[dict]:
    """The same with the Louvain resolution that yields as many clusters as labelled types
    (what the paper's ACC after Hungarian matching implies)."""
    return _clustered_job("louvain", resolution="n_labels", **kwargs)


def louvain_both_job(*, path: str, method: str, protocol: str, repeat: int, seed: int,
                     params: dict, dataset: str, device: str) -> list[dict]:
    """Louvain at resolution 1 and, on the same imputed data, at the resolution that yields
    the labelled number of clusters (rows ``<metric>_n_labels``): one fit, both protocols."""
    import anndata as ad

    from scfill.evaluate import downstream, evaluate_method
    from scfill.evaluate.masking import degrade, parse_protocol
    from scfill.evaluate.space import reference_space, retarget

    adata = ad.read_h5ad(path)
    rows, shown = evaluate_method(adata, method, protocol=protocol, seed=seed, repeat=repeat,
                                  params=params, dataset=dataset, device=device,
                                  clustering="louvain", return_imputed=True)
    records = rows.to_dict(orient="records")
    if parse_protocol(protocol).kind != "downstream":
        return records
    degraded = degrade(adata, parse_protocol(protocol), np.random.default_rng([seed, repeat]))
    _, target = reference_space(degraded.reference)
    predicted = retarget(shown.layers["imputed"], shown.uns["scfill"]["normalizer"]["target"],
                         target)
    labels = np.asarray(adata.obs["label"].astype(str))[degraded.cells]
    scores = downstream.clustering_scores(predicted, labels, algorithm="louvain",
                                          seed=seed + repeat, resolution="n_labels")
    template = records[0]
    return records + [{**template, "metric": f"{name}_n_labels", "value": float(value)}
                      for name, value in scores.items()]


def kmeans_job(**kwargs) -> list[dict]:
    """The same with k-means at the true number of labels (a diagnostic of the clustering)."""
    return _clustered_job("kmeans", **kwargs)


def run_accuracy(args: argparse.Namespace) -> None:
    """The runner grid (records under ``<out>/runs``; finished cells are skipped)."""
    from scfill.bench.runner import BenchmarkConfig, run_grid

    methods = args.methods.split(",")
    params = {m: p for m, p in PEER_PARAMS.items() if m in methods}
    if "scmaskgan" in methods:
        params["scmaskgan"] = json.loads(args.params)
    config = BenchmarkConfig(
        methods=methods, protocols=args.protocols.split(","),
        datasets=[str(Path(args.data) / f"{d}.h5ad") for d in args.datasets.split(",")],
        out=Path(args.out), repeats=args.repeats, seed=0, max_cells=args.max_cells,
        max_genes=args.max_genes, timeout_s=args.timeout, threads=1, params=params,
        job=f"{Path(__file__).stem}:{args.clustering}_job", preload=(Path(__file__).stem,))
    results, runs, _ = run_grid(config)
    results.to_csv(Path(args.out) / "results.csv", index=False)
    runs.to_csv(Path(args.out) / "runs.csv", index=False)


def _cost_job(path: str, method: str, params: dict) -> dict:
    import scfill

    adata = scfill.read(path)
    scfill.impute(adata, method, seed=0, params=params)
    info = adata.uns["scfill"]
    return {"runtime_s": info["runtime_s"], "info": info.get("info", {})}


def run_cost(args: argparse.Namespace) -> None:
    """scMASKGAN and MAGIC at each size, side by side in one run."""
    import scfill

    rows = []
    gan = {**json.loads(args.params), "epochs": args.cost_epochs, "tune_k": False}
    with tempfile.TemporaryDirectory() as tmp:
        for n_cells in map(int, args.cost_cells.split(",")):
            path = str(Path(tmp) / f"sim_{n_cells}.h5ad")
            adata = scfill.simulate(n_cells=n_cells, n_genes=args.cost_genes, seed=0)
            del adata.layers["true_counts"], adata.layers["dropout"]
            scfill.write(adata, path, force=True)
            for method, params in (("magic", {}), ("scmaskgan", gan)):
                try:
                    wall, peak, result = measure(_cost_job, path, method, params,
                                                 timeout_s=args.timeout)
                except TimeoutError:
                    rows.append({"cells": n_cells, "method": method, "status": "timeout"})
                    continue
                info = result["info"]
                rows.append({"cells": n_cells, "genes": args.cost_genes, "method": method,
                             "status": "ok", "runtime_s": round(result["runtime_s"], 2),
                             "wall_s": round(wall, 2), "peak_rss_mb": round(peak),
                             "epochs": info.get("epochs_run"),
                             "train_s_per_epoch": round(info["train_seconds"]
                                                        / info["epochs_run"], 2)
                             if "train_seconds" in info else None})
                print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(RESULTS / "scmaskgan_cost.csv", index=False)


def _memory_job(n_cells: int, n_genes: int, params: dict) -> dict:
    import scipy.sparse as sp

    from scfill.methods.base import PreparedData
    from scfill.methods.scmaskgan import ScMaskGan
    from scfill.preprocess import LogNormalizer, library_size

    rng = np.random.default_rng(0)
    counts = sp.random(n_cells, n_genes, density=0.1, format="csr", random_state=rng,
                       data_rvs=lambda k: rng.poisson(3, k) + 1).astype(np.float32)
    lib = library_size(counts)
    normalizer = LogNormalizer.median(lib)
    data = PreparedData(counts=counts, library_size=lib, normalizer=normalizer,
                        logcounts=normalizer.transform(counts, lib),
                        var_names=np.array([f"g{j}" for j in range(n_genes)]),
                        obs_names=np.array([f"c{i}" for i in range(n_cells)]),
                        labels=rng.integers(0, 3, n_cells))
    model = ScMaskGan(**params).fit(data)
    for _ in model.reconstruct(data):
        pass
    return {k: model.info_[k] for k in ("image_side", "generator_parameters",
                                        "discriminator_parameters", "train_seconds")}


def run_memory(args: argparse.Namespace) -> None:
    """Peak RSS of a fit + reconstruct at ``--memory-genes`` genes."""
    params = {**json.loads(args.params), "epochs": 1, "tune_k": False}
    wall, peak, info = measure(_memory_job, args.memory_cells, args.memory_genes, params)
    row = {"cells": args.memory_cells, "genes": args.memory_genes, "epochs": 1,
           "wall_s": round(wall, 1), "peak_rss_mb": round(peak), **info,
           "params": json.dumps(params)}
    print(row)
    pd.DataFrame([row]).to_csv(RESULTS / "scmaskgan_memory.csv", index=False)


def _step_seconds(channels: int, batch: int, n_genes: int, *, channels_last: bool = False,
                  steps: int = 5, operators: bool = False):
    """Mean seconds of one plan step on random data (and the operator table)."""
    import time

    import torch

    from scfill.methods.scmaskgan.layout import GeneImage
    from scfill.methods.scmaskgan.model import BETAS, RECONSTRUCTION_WEIGHT
    from scfill.methods.scmaskgan.module import Discriminator, Generator
    from scfill.methods.scmaskgan.plan import ScMaskGanPlan

    torch.manual_seed(0)
    layout = GeneImage(n_genes)
    generator = Generator(layout.side, 3, layout.side, channels)
    discriminator = Discriminator(layout.side, 3, channels)
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    plan = ScMaskGanPlan(generator, discriminator, layout, n_classes=3,
                         latent_dim=layout.side, lr=1e-3, betas=BETAS,
                         reconstruction_weight=RECONSTRUCTION_WEIGHT, seed=0)
    optimizers = plan.configure_optimizers()

    class _Context:
        def optimize(self, name, loss):
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()

    genes = torch.rand(batch, n_genes) * (torch.rand(batch, n_genes) < 0.5)
    step = {"x": genes, "label": torch.randint(0, 3, (batch,))}
    for _ in range(2):
        plan.training_step(step, _Context())
    start = time.perf_counter()
    for _ in range(steps):
        plan.training_step(step, _Context())
    seconds = (time.perf_counter() - start) / steps
    if not operators:
        return seconds, None
    from torch.profiler import profile

    with profile() as prof:
        for _ in range(steps):
            plan.training_step(step, _Context())
    table = pd.DataFrame([{"operator": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3 / steps,
                           "calls": e.count // steps} for e in prof.key_averages()])
    table = table.sort_values("self_cpu_ms", ascending=False)
    table["share"] = table.self_cpu_ms / table.self_cpu_ms.sum()
    return seconds, table.head(15)


def run_profile(args: argparse.Namespace) -> None:
    """Step time per channels × batch × memory format, and the fast step's operators."""
    import torch

    from scfill.methods.scmaskgan.model import PROFILES

    torch.set_num_threads(1)
    rows = []
    for channels, batch, last in ((16, 32, False), (16, 64, False), (16, 128, False),
                                  (16, 256, False), (16, 64, True), (32, 32, False),
                                  (32, 64, False)):
        seconds, _ = _step_seconds(channels, batch, args.profile_genes, channels_last=last)
        rows.append({"genes": args.profile_genes, "channels": channels, "batch": batch,
                     "channels_last": last, "step_ms": round(seconds * 1e3, 1),
                     "ms_per_cell": round(seconds * 1e3 / batch, 2)})
        print(rows[-1], flush=True)
    fast = PROFILES["fast"]
    _, ops = _step_seconds(fast["channels"], fast["batch_size"], args.profile_genes,
                           operators=True)
    pd.DataFrame(rows).to_csv(RESULTS / "scmaskgan_profile.csv", index=False)
    ops.round(3).to_csv(RESULTS / "scmaskgan_profile_ops.csv", index=False)


def _sweep_row(path: Path, dataset: str, name: str, method: str, params: dict,
               repeat: int) -> dict:
    import time

    import anndata as ad

    from scfill.evaluate import evaluate_method

    start = time.perf_counter()
    rows, shown = evaluate_method(ad.read_h5ad(path), method, protocol="mask-nonzero:0.1",
                                  seed=0, repeat=repeat, params=params, dataset=dataset,
                                  return_imputed=True)
    scores = dict(zip(rows.metric, rows.value, strict=True))
    info = shown.uns["scfill"].get("info", {})
    objective = list(info.get("k_objective", {}).values())
    return {"dataset": dataset, "setting": name, "repeat": repeat,
            "pearson": scores["pearson"], "rmse": scores["rmse"],
            "wall_s": round(time.perf_counter() - start, 1),
            "epochs_run": info.get("epochs_run"), "best_epoch": info.get("best_epoch"),
            "train_s": info.get("train_seconds"),
            "k": info.get("k"),
            "k_objective_spread": (max(objective) - min(objective)) / min(objective)
            if objective else None,
            "reconstruction_last": info.get("reconstruction_last"),
            "params": json.dumps(params, sort_keys=True),
            "reconstruction_history": json.dumps(info.get("reconstruction_history"))}


def run_sweep(args: argparse.Namespace) -> None:
    """Each setting of ``--settings`` (and knn) on the same masks; rows appended as they
    finish."""
    from scfill.bench.datasets import DatasetSource, prepare_dataset

    settings = {"knn": ("knn", {})}
    settings.update({name: ("scmaskgan", params)
                     for name, params in json.loads(args.settings).items()})
    out = Path(args.sweep_out)
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(
        columns=["dataset", "setting", "repeat"])
    finished = set(zip(done.dataset, done.setting, done.repeat, strict=True))
    folder = Path(args.cache)
    for dataset in args.datasets.split(","):
        path = prepare_dataset(DatasetSource(dataset, Path(args.data) / f"{dataset}.h5ad"),
                               folder, max_cells=args.max_cells, max_genes=args.max_genes)
        for repeat in range(args.repeats):
            for name, (method, params) in settings.items():
                if (dataset, name, repeat) in finished:
                    continue
                row = _sweep_row(path, dataset, name, method, params, repeat)
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(),
                                           index=False)


def _records(out: Path) -> pd.DataFrame:
    """Metric rows of every finished run under ``out/runs`` (all streams), plus their wall
    time and peak RSS."""
    rows = []
    for path in sorted((out / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok" or "protocol" not in record:
            continue
        rows.extend(record["result"])
        for metric in ("wall_s", "peak_rss_mb"):
            rows.append({**{k: record[k] for k in ("dataset", "method", "protocol", "repeat")},
                         "metric": metric, "value": record[metric]})
    return pd.DataFrame(rows)


def _summary(out: Path, reference: Path) -> pd.DataFrame:
    """Mean ± sd over repeats: this run's records, plus the cross-method run's rows (same
    datasets, masks and settings) for the (dataset, method, protocol) cells this run did
    not run."""
    results = _records(out)
    if reference.exists():
        peers = pd.read_csv(reference)
        ran = set(zip(results.dataset, results.method, results.protocol, strict=True))
        mine = [key in ran for key in zip(peers.dataset, peers.method, peers.protocol,
                                          strict=True)]
        peers = peers[peers.dataset.isin(set(results.dataset))
                      & peers.protocol.isin(set(results.protocol)) & ~np.array(mine)]
        results = pd.concat([results, peers], ignore_index=True)
    keys = ["dataset", "protocol", "metric", "method"]
    return results.groupby(keys)["value"].agg(["mean", "std", "count"]).reset_index()


def _table(summary: pd.DataFrame, protocol: str, metric: str) -> list[str]:
    part = summary[(summary.protocol == protocol) & (summary.metric == metric)]
    if part.empty:
        return []
    methods = [m for m in METHODS if m in set(part.method)]
    lines = [f"**{metric}** ({protocol}; mean ± sd over repeats, n in brackets)", "",
             "| dataset | " + " | ".join(methods) + " |",
             "|---|" + "---:|" * len(methods)]
    for dataset, block in part.groupby("dataset"):
        cells = []
        for method in methods:
            row = block[block.method == method]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            sd = "" if np.isnan(r["std"]) else f" ± {r['std']:.3f}"
            cells.append(f"{r['mean']:.3f}{sd} ({int(r['count'])})")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _sweep_table(sweep: pd.DataFrame, baseline: str) -> list[str]:
    """Mean ± sd per dataset and setting, and the paired difference of the masked-entry
    Pearson from ``baseline``'s on the same masks (same repeat)."""
    base = sweep[sweep.setting == baseline].set_index(["dataset", "repeat"]).pearson
    lines = [f"Masked-entry Pearson (10 % of non-zeros hidden); Δ = setting − {baseline} on "
             "the same masks, mean ± sd over repeats.", "",
             "| dataset | setting | n | pearson | Δ pearson | rmse | epochs run | train s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]

    def cell(values: pd.Series) -> str:
        values = values.dropna()
        if values.empty:
            return ""
        sd = f" ± {values.std():.3f}" if len(values) > 1 else ""
        return f"{values.mean():.3f}{sd}"

    for (dataset, setting), block in sweep.groupby(["dataset", "setting"], sort=False):
        paired = block.set_index(["dataset", "repeat"]).pearson - base
        lines.append(f"| {dataset} | {setting} | {len(block)} | {cell(block.pearson)} | "
                     f"{cell(paired) if setting != baseline else ''} | {cell(block.rmse)} | "
                     f"{cell(block.epochs_run)} | {cell(block.train_s)} |")
    return lines


def write_report(args: argparse.Namespace) -> None:
    """``benchmarks/results/scmaskgan.md`` from the records and the cost files."""
    out = Path(args.out)
    summary = _summary(out, RESULTS / "benchmark" / "results.csv")
    summary.to_csv(RESULTS / "scmaskgan_summary.csv", index=False)
    lines = ["# scMASKGAN: paper protocol, masked entries, cost", "",
             f"Machine: {machine()}; 2 cores shared by ~8 engineers (timings under load).",
             f"Commands: `{args.command}`", "", Path(args.notes).read_text()
             if args.notes and Path(args.notes).exists() else ""]
    for protocol, metrics in REPORT_METRICS.items():
        lines += [f"## {protocol}", ""]
        for metric in metrics:
            lines += _table(summary, protocol, metric)
    for folder, title, metrics in (
            ("scmaskgan_downstream", "Downstream (paper protocol): Louvain at resolution 1 "
             "and at the resolution giving the labelled number of clusters (`_n_labels`), "
             "same imputed data", ["acc", "acc_n_labels", "f1", "f1_n_labels", "auc",
                                   "auc_n_labels", "n_clusters", "n_clusters_n_labels"]),
            ("scmaskgan_kmeans", "Diagnostic: downstream with k-means at the true k",
             ["acc", "ari", "n_clusters"]),
            ("scmaskgan_steps", "Diagnostic: scMASKGAN fast with 140 epochs",
             ["pearson", "rmse"])):
        if (RESULTS / folder / "runs").exists():
            part = _summary(RESULTS / folder, Path("/nonexistent"))
            lines += [f"## {title} (`{folder}/`)", ""]
            for protocol in sorted(set(part.protocol)):
                for metric in metrics:
                    lines += _table(part, protocol, metric)
    for name, baseline, title in (
            ("scmaskgan_sweep_lambda.csv", "fast_l100", "λ (reconstruction weight)"),
            ("scmaskgan_sweep_profiles.csv", "fast", "profiles: fast vs paper")):
        if (RESULTS / name).exists():
            lines += [f"## Paired sweep: {title} (`{name}`)", "",
                      *_sweep_table(pd.read_csv(RESULTS / name), baseline), ""]
    for name in ("scmaskgan_profile.csv", "scmaskgan_profile_ops.csv"):
        if (RESULTS / name).exists():
            lines += [f"## {name}", "", pd.read_csv(RESULTS / name).to_markdown(index=False),
                      ""]
    lines += ["Paper (Tables 3–4, Louvain ACC of scMASKGAN on the full data): "
              + ", ".join(f"{k} {v}" for k, v in PAPER_ACC.items()), ""]
    for name in ("scmaskgan_cost.csv", "scmaskgan_memory.csv"):
        if (RESULTS / name).exists():
            table = pd.read_csv(RESULTS / name)
            lines += [f"## {name}", "", table.to_markdown(index=False), ""]
    (RESULTS / "scmaskgan.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["accuracy", "cost", "memory", "profile", "sweep",
                                            "report"],
                        required=True)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=str(RESULTS / "scmaskgan"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clustering", choices=["louvain", "louvain_n_labels", "louvain_both",
                                                 "kmeans"],
                        default="louvain",
                        help="clustering of the downstream protocol (paper: Louvain; "
                        "louvain_n_labels: at the resolution giving the labelled number; "
                        "louvain_both: both from one fit)")
    parser.add_argument("--max-cells", type=int, default=1000)
    parser.add_argument("--max-genes", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--params", default="{}", help="scMASKGAN parameters as JSON")
    parser.add_argument("--cost-cells", default="1000,5000,20000")
    parser.add_argument("--cost-genes", type=int, default=1000)
    parser.add_argument("--cost-epochs", type=int, default=1)
    parser.add_argument("--memory-cells", type=int, default=256)
    parser.add_argument("--memory-genes", type=int, default=20000)
    parser.add_argument("--profile-genes", type=int, default=1000)
    parser.add_argument("--settings", default="{}",
                        help="sweep: JSON object {name: scMASKGAN parameters}")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir())
                                               / "scmaskgan_datasets"),
                        help="sweep: folder of the subsampled datasets")
    parser.add_argument("--sweep-out", default=str(RESULTS / "scmaskgan_sweep.csv"))
    parser.add_argument("--command", default="", help="commands quoted in the report")
    parser.add_argument("--notes", default="", help="a markdown file of settings/findings")
    args = parser.parse_args()
    {"accuracy": run_accuracy, "cost": run_cost, "memory": run_memory,
     "profile": run_profile, "sweep": run_sweep, "report": write_report}[args.part](args)


if __name__ == "__main__":
    main()
