"""scGACL under the paper's protocols, beside the peers, its ablations, profiles and speed.

Usage::

    python benchmarks/scgacl.py presets  [--methods ...] [--repeats 1] [--profile fast]
    python benchmarks/scgacl.py masks    [--datasets ...] [--rates 0.3 0.4 0.5] [--repeats 3]
                                         [--max-cells 300] [--max-genes 1000] [--profile fast]
    python benchmarks/scgacl.py ablation [--datasets ...] [--profile fast]
    python benchmarks/scgacl.py tune     [--presets scgacl-4] [--candidates paper fast]
                                         [--repeats 0 1 2]
    python benchmarks/scgacl.py dropout  [--seeds 0 1 2]
    python benchmarks/scgacl.py masked_filled [--datasets ...] [--rates 0.3 0.4 0.5]
    python benchmarks/scgacl.py diagnose [--presets scgacl-4 scgacl-8] [--profile fast]
    python benchmarks/scgacl.py profile  [--cells 1000] [--genes 2000] [--batch-sizes 32 128]
    python benchmarks/scgacl.py scaling  [--cells 1000 5000 10000] [--genes 2000] [--epochs 1]
    python benchmarks/scgacl.py report

- ``presets``: the paper's simulations (``scgacl-1`` … ``scgacl-8``, 500 cells × 1,000
  genes, 42–91 % observed zeros), protocol ``truth``: dropout identification (accuracy, F1,
  precision, FPR of the zeros a method filled) and RMSE, Pearson, cosine against the true
  counts, every method through ``scfill.evaluate`` (it sees only the observed counts and
  pre-clusters its groups).
- ``masks``: real datasets with 30/40/50 % of the non-zeros hidden (``mask-nonzero:r``),
  scored at the hidden entries; ``--repeats`` masks per rate (seeds 0, 1, 2).
- ``ablation``: the paper's ablations (no adversarial / no cell-level / no type-level / no
  discriminator; VAE instead of VaDE) and the code's two tricks (soft labels, annealed share
  of generated cells) switched off, on ``scgacl-5`` … ``scgacl-8`` (the paper's Simulated
  1–4, 71–91 % zeros) and on real sets with 50 % masked.
- ``tune``: ``paper`` against ``fast`` (and the other :data:`CANDIDATES` schedules) on
  the same simulations with paired method seeds.
- ``profile``: seconds per epoch of each phase at 1,000 × 2,000, single-tensor against
  fused Adam, per batch size.
- ``dropout``: the Gamma–Normal model alone on the eight presets: variant × transform, per
  true group and per k-means pre-cluster (``specs/dropout.md`` asks to measure both
  transforms).
- ``diagnose``: one fit per preset, its reconstruction scored under several fill rules
  (the run's dropout rule, the other Gamma–Normal variant's, every zero, the true dropouts)
  beside kNN at the true dropouts: how much of the error is identification and how much
  reconstruction.
- ``scaling``: time and peak memory of ``scfill impute`` with scGACL, MAGIC and MaskClass at
  1k, 5k and 10k cells × 2,000 genes, each in a fresh process, one after another in one run.
  Deep methods train ``--epochs`` epochs per phase there; the report gives the seconds per
  epoch and the full schedules' time extrapolated from them.

Grids run in one process (no per-run process start: the machine is shared), resumable, rows
in ``results/scgacl/<grid>/results.csv`` with the prepared datasets' settings beside them;
``report`` writes ``results/scgacl.md`` from them, keeping its hand-written ``## Findings``
section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure

HERE = Path(__file__).parent
RESULTS = HERE / "results"
OUT = RESULTS / "scgacl"
REPORT = RESULTS / "scgacl.md"
FINDINGS = "## Findings"
#: Prepared (subsampled) datasets: rebuilt identically from the seed, so not committed.
DATASETS = Path(tempfile.gettempdir()) / "scfill-scgacl-datasets"
DATA = HERE.parent.parent / "shared" / "data"
PRESETS = [f"scgacl-{i}" for i in range(1, 9)]
DROPOUT_VARIANTS = ("scgacl", "scimpute")
PEERS = ["none", "knn", "magic", "alra", "scvi", "maskclass", "cnnimpute"]
#: The peers' settings in every grid (as the cross-method benchmark runs them).
PEER_PARAMS = {"scvi": {"epochs": 100}, "cnnimpute": {"epochs": 20}}
#: The paper's real sets for the masking protocol and the ablation (CellBench).
CELLBENCH = ["cellbench_sc_celseq2_3cl", "cellbench_sc_dropseq_3cl",
             "cellbench_sc_10x_3cl_subset"]
ABLATIONS = {
    "full": {},
    "no_adversarial": {"adversarial": False},
    "no_cell_contrast": {"cell_contrast": False},
    "no_type_contrast": {"type_contrast": False},
    "no_discriminator": {"discriminator": False},
    "vae_prior": {"prior": "normal"},
    "hard_labels": {"soft_labels": False},
    "all_generated": {"anneal_generated": False},
}
TRUTH_METRICS = ["rmse", "pearson", "cosine", "dropout_accuracy", "dropout_f1",
                 "dropout_precision", "dropout_fpr", "runtime_s"]
MASK_METRICS = ["rmse", "pearson", "cosine", "runtime_s"]
COLUMNS = ["dataset", "method", "protocol", "repeat", "seed", "metric", "value"]


# ----------------------------------------------------------------------------- grids
def run(grid: str, methods: list[str], datasets: list[str], protocols: list[str],
        repeats: int, params: dict, max_cells: int | None, max_genes: int | None
        ) -> pd.DataFrame:
    """One grid, in this process, rows appended to ``results/scgacl/<grid>/results.csv``.

    Datasets are prepared as the benchmark runner prepares them
    (:func:`scfill.bench.datasets.prepare_dataset`: seeded cell subset, most variable
    genes, presets simulated at their size); every run is
    :func:`scfill.evaluate.evaluate_method` (seed 0, repeat r). Finished (dataset, method,
    protocol, repeat) cells are skipped, so a grid resumes and can be extended.
    """
    import anndata as ad
    import torch

    from scfill.bench.datasets import prepare_dataset, resolve_datasets
    from scfill.evaluate import evaluate_method

    torch.set_num_threads(1)
    out = OUT / grid
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "results.csv"
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=COLUMNS)
    finished = set(zip(done["dataset"], done["method"], done["protocol"], done["repeat"],
                       strict=True))
    settings = {"max_cells": max_cells, "max_genes": max_genes, "params": params}
    (out / "settings.json").write_text(json.dumps(settings, indent=1))
    for source in resolve_datasets(datasets):
        path = prepare_dataset(source, DATASETS / grid, max_cells=max_cells,
                               max_genes=max_genes, seed=0)
        adata = ad.read_h5ad(path)
        for protocol in protocols:
            for repeat in range(repeats):
                for method in methods:
                    if (source.name, method, protocol, repeat) in finished:
                        continue
                    rows = evaluate_method(adata, method, protocol=protocol, seed=0,
                                           repeat=repeat, params=params.get(method),
                                           dataset=source.name)
                    rows.to_csv(csv, mode="a", header=not csv.exists(), index=False)
                    scores = dict(zip(rows["metric"], rows["value"], strict=True))
                    print(grid, source.name, method, protocol, repeat,
                          {k: round(scores[k], 4) for k in ("rmse", "pearson", "runtime_s")
                           if k in scores}, flush=True)
    return pd.read_csv(csv)


def _scgacl_params(profile: str, **extra) -> dict:
    return {**PEER_PARAMS, "scgacl": {"profile": profile, **extra}}


def presets(args) -> None:
    """The eight simulations, protocol ``truth``."""
    run("presets", args.methods, [f"preset:{p}" for p in args.presets], ["truth"],
        args.repeats, _scgacl_params(args.profile), None, None)


def masks(args) -> None:
    """Real sets with ``--rates`` of the non-zeros hidden."""
    datasets = [str(DATA / f"{d}.h5ad") for d in args.datasets]
    run("masks", args.methods, datasets, [f"mask-nonzero:{r:g}" for r in args.rates],
        args.repeats, _scgacl_params(args.profile), args.max_cells, args.max_genes)


def ablation(args) -> None:
    """Every ablation on the simulations and the masked real sets (one grid per variant)."""
    for variant in args.variants:
        params = _scgacl_params(args.profile, **ABLATIONS[variant])
        run(f"ablation/{variant}/sim", ["scgacl"], [f"preset:{p}" for p in args.presets],
            ["truth"], 1, params, None, None)
        if args.datasets:
            run(f"ablation/{variant}/real", ["scgacl"],
                [str(DATA / f"{d}.h5ad") for d in args.datasets], ["mask-nonzero:0.5"], 1,
                params, args.max_cells, args.max_genes)


def dropout(args) -> None:
    """The Gamma–Normal model alone: variants × transforms, true groups and pre-clusters."""
    from dropout_identification import load, score
    from scfill.cluster import precluster
    from scfill.dropout import estimate
    from scfill.preprocess import LogNormalizer, library_size

    rows = []
    for seed in args.seeds:
        for preset in PRESETS:
            counts, truth, groups = load(preset, seed)
            lib = library_size(counts)
            pre = precluster(LogNormalizer.median(lib).transform(counts, lib), seed=seed)
            for labels_name, labels in (("true groups", groups), ("k-means pre-clusters", pre)):
                for variant in ("scgacl", "scimpute"):
                    for transform in ("ln_counts", "log10_cpm"):
                        res = estimate("gamma_normal", counts, lib, labels=labels,
                                       variant=variant, transform=transform)
                        rows.append({"preset": preset, "seed": seed, "labels": labels_name,
                                     "variant": variant, "transform": transform,
                                     **score(counts, truth, res.matrix())})
            print(preset, seed, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "dropout.csv", index=False)


def masked_filled(args) -> None:
    """Share of the hidden entries (``mask-nonzero:r``) that scGACL's dropout rule lets it
    fill: Gamma–Normal probability > 0.5 on the masked counts, per variant, with the
    k-means pre-clusters the pipeline computes (no network is trained)."""
    import anndata as ad

    from scfill.bench.datasets import prepare_dataset, resolve_datasets
    from scfill.cluster import precluster
    from scfill.dropout import estimate
    from scfill.evaluate.masking import degrade, parse_protocol
    from scfill.preprocess import LogNormalizer, library_size

    rows = []
    for source in resolve_datasets([str(DATA / f"{d}.h5ad") for d in args.datasets]):
        adata = ad.read_h5ad(prepare_dataset(source, DATASETS / "masks",
                                             max_cells=args.max_cells,
                                             max_genes=args.max_genes, seed=0))
        for rate in args.rates:
            for repeat in range(args.repeats):
                degraded = degrade(adata, parse_protocol(f"mask-nonzero:{rate:g}"),
                                   np.random.default_rng([0, repeat]))
                counts = degraded.counts
                lib = library_size(counts)
                labels = precluster(LogNormalizer.median(lib).transform(counts, lib),
                                    seed=repeat)
                hidden = degraded.hidden.astype(bool)
                row = {"dataset": source.name, "rate": rate, "repeat": repeat}
                for variant in DROPOUT_VARIANTS:
                    p = estimate("gamma_normal", counts, lib, labels=labels, variant=variant,
                                 transform="ln_counts").matrix()
                    row[f"filled_share_{variant}"] = float(
                        (p.multiply(hidden) > 0.5).sum() / hidden.sum())
                rows.append(row)
                print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "masked_filled.csv", index=False)


def _fill_rmse(observed: np.ndarray, truth: np.ndarray, recon: np.ndarray,
               fill: np.ndarray) -> float:
    """RMSE against the truth when the zeros in ``fill`` take the reconstruction."""
    imputed = np.where(fill & (observed == 0), recon, observed)
    return float(np.sqrt(np.mean((imputed - truth) ** 2)))


def diagnose(args) -> None:
    """Where scGACL's error comes from: one fit per preset, several fill rules scored.

    The fitted model's reconstruction R (common space, retargeted like the evaluation)
    fills (a) the zeros the pipeline's rule picks (Gamma–Normal probability > 0.5, the
    run's variant), (b) the zeros the other Gamma–Normal variant picks, (c) every zero,
    (d) exactly the true dropouts (an oracle). Beside it, kNN's output under (d). RMSE over
    all entries against the true counts; also R's RMSE at the true dropouts alone.
    """
    import anndata as ad
    import scipy.sparse as sp
    import torch

    import scfill
    from scfill.combine import reconstruction_blocks
    from scfill.dropout import estimate
    from scfill.evaluate.space import reference_space, retarget
    from scfill.methods.base import PreparedData
    from scfill.methods.scgacl import ScGACL
    from scfill.preprocess import LogNormalizer, library_size, nonempty

    torch.set_num_threads(1)
    rows = []
    for preset in args.presets:
        adata = scfill.simulate(preset=preset, seed=0)
        cells, genes = nonempty(sp.csr_matrix(adata.X))
        adata = adata[cells][:, genes].copy()
        counts = sp.csr_matrix(adata.X, dtype=np.float32)
        shown = ad.AnnData(counts.copy(), obs=adata.obs[[]], var=adata.var[[]])
        model = ScGACL(profile=args.profile)
        scfill.impute(shown, model, seed=0)
        lib = library_size(counts)
        normalizer = LogNormalizer.median(lib)
        data = PreparedData(counts=counts, library_size=lib, normalizer=normalizer,
                            logcounts=normalizer.transform(counts, lib),
                            var_names=np.asarray(shown.var_names),
                            obs_names=np.asarray(shown.obs_names))
        truth_space, target = reference_space(adata.layers["true_counts"])
        truth = truth_space.toarray()
        blocks = reconstruction_blocks(model.reconstruct(data), data.counts.shape)
        recon = retarget(sp.csr_matrix(np.vstack([block for _, block in blocks])),
                         normalizer.target, target).toarray()
        observed = retarget(data.logcounts, normalizer.target, target).toarray()
        labels = np.asarray(shown.obs["scfill_cluster"].astype(str))
        chosen = shown.layers["dropout_probability"].toarray() > 0.5
        other = "scimpute" if model.dropout_variant == "scgacl" else "scgacl"
        other_p = estimate("gamma_normal", counts, lib, labels=labels, variant=other,
                           transform=model.dropout_transform).matrix().toarray() > 0.5
        dropout = (truth > 0) & (observed == 0)
        knn = scfill.impute(ad.AnnData(counts.copy()), "knn", seed=0, copy=True)
        knn_values = retarget(knn.layers["imputed"], normalizer.target, target).toarray()
        row = {"preset": preset, "profile": args.profile,
               "observed_rmse": float(np.sqrt(np.mean((observed - truth) ** 2))),
               f"rule_{model.dropout_variant}": _fill_rmse(observed, truth, recon, chosen),
               f"rule_{other}": _fill_rmse(observed, truth, recon, other_p),
               "every_zero": _fill_rmse(observed, truth, recon, np.ones_like(chosen)),
               "oracle_dropouts": _fill_rmse(observed, truth, recon, dropout),
               "knn_oracle_dropouts": _fill_rmse(observed, truth, knn_values, dropout),
               "recon_rmse_at_dropouts": float(np.sqrt(np.mean(
                   (recon[dropout] - truth[dropout]) ** 2))),
               "knn_rmse_at_dropouts": float(np.sqrt(np.mean(
                   (knn_values[dropout] - truth[dropout]) ** 2))),
               "called_share_of_dropouts": float((chosen & dropout).sum() / dropout.sum()),
               "called_share_other": float((other_p & dropout).sum() / dropout.sum())}
        rows.append(row)
        print(row, flush=True)
        frame = pd.DataFrame([row])
        path = OUT / "diagnose.csv"
        frame.to_csv(path, mode="a", header=not path.exists(), index=False)


def _schedule(batch_size: int, epochs: tuple[int, int, int], lr_factor: float) -> dict:
    """scGACL parameters: batch, epochs of the three phases, the code's rates × a factor."""
    return {"batch_size": batch_size, **dict(zip(
        ("pretrain_epochs", "vade_epochs", "joint_epochs"), epochs, strict=True)),
        "pretrain_lr": 1e-3 * lr_factor, "vade_lr": 1e-3 * lr_factor,
        "joint_lr": 1e-4 * lr_factor}


#: Schedules tried against ``paper`` (``tune``): batch, epochs of the phases, lr factor.
CANDIDATES = {
    "paper": {"profile": "paper"},
    "fast": {"profile": "fast"},
    "b128_lr2_40_40_10": _schedule(128, (40, 40, 10), 2),
    "b128_lr2_20_40_20": _schedule(128, (20, 40, 20), 2),
    "b128_lr4_20_40_20": _schedule(128, (20, 40, 20), 4),
    "b128_lr2_40_40_0": _schedule(128, (40, 40, 0), 2),
}
TUNE_METRICS = ("rmse", "pearson", "cosine", "dropout_f1", "runtime_s")


def tune(args) -> None:
    """Candidate schedules on presets, paired method seeds (repeats), protocol ``truth``
    without the clustering and DE scores (the accuracy metrics only, to save time)."""
    import anndata as ad
    import torch

    import scfill.evaluate.run as evaluation
    from scfill.bench.datasets import prepare_dataset, resolve_datasets

    torch.set_num_threads(1)
    evaluation.downstream.clustering_scores = lambda *a, **k: {}
    evaluation.downstream.deg_agreement = lambda *a, **k: {}
    path = OUT / "tune.csv"
    for preset in args.presets:
        source = resolve_datasets([f"preset:{preset}"])[0]
        adata = ad.read_h5ad(prepare_dataset(source, DATASETS / "tune", max_cells=None,
                                             max_genes=None, seed=0))
        for name in args.candidates:
            for repeat in args.repeats:
                rows = evaluation.evaluate_method(adata, "scgacl", protocol="truth", seed=0,
                                                  repeat=repeat, params=CANDIDATES[name],
                                                  dataset=source.name)
                scores = dict(zip(rows["metric"], rows["value"], strict=True))
                row = {"preset": preset, "candidate": name, "repeat": repeat,
                       **{k: round(scores[k], 4) for k in TUNE_METRICS},
                       "load_average_1min": os.getloadavg()[0]}
                print(row, flush=True)
                pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(),
                                           index=False)


def _epoch_seconds(data, batch_size: int, fused: bool) -> dict[str, float]:
    """Seconds of one epoch of each phase (1 thread): the per-phase difference of fits
    with 1, 1 + 1 and 1 + 1 + 1 epochs (the prior's GMM counted with the VaDE phase)."""
    import time

    import torch

    from scfill.methods.scgacl import ScGACL, plan

    make = plan.AdamSettings.make

    def single_tensor(self, params):
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas,
                                weight_decay=self.weight_decay, fused=False, foreach=False)

    plan.AdamSettings.make = make if fused else single_tensor
    try:
        totals = []
        for epochs in ((1, 0, 0), (1, 1, 0), (1, 1, 1)):
            model = ScGACL(pretrain_epochs=epochs[0], vade_epochs=epochs[1],
                           joint_epochs=epochs[2], batch_size=batch_size)
            start = time.perf_counter()
            model.fit(data)
            totals.append(time.perf_counter() - start)
    finally:
        plan.AdamSettings.make = make
    return {"pretrain_s": totals[0], "vade_s": totals[1] - totals[0],
            "joint_s": totals[2] - totals[1]}


def profile(args) -> None:
    """Seconds per epoch of each phase, single-tensor against fused Adam, per batch size."""
    import scipy.sparse as sp
    import torch

    import scfill
    from scfill.methods.base import PreparedData
    from scfill.preprocess import LogNormalizer, library_size

    torch.set_num_threads(1)
    adata = scfill.simulate(n_cells=args.cells, n_genes=args.genes, seed=0,
                            group_prob=(0.4, 0.3, 0.2, 0.1))
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    lib = library_size(counts)
    normalizer = LogNormalizer.median(lib)
    data = PreparedData(counts=counts, library_size=lib, normalizer=normalizer,
                        logcounts=normalizer.transform(counts, lib),
                        var_names=np.asarray(adata.var_names),
                        obs_names=np.asarray(adata.obs_names),
                        labels=np.asarray(adata.obs["group"]))
    rows = []
    for batch_size in args.batch_sizes:
        for fused in (False, True):
            load = os.getloadavg()[0]
            row = {"cells": args.cells, "genes": args.genes, "batch_size": batch_size,
                   "adam": "fused" if fused else "single-tensor",
                   **{k: round(v, 3) for k, v in _epoch_seconds(data, batch_size,
                                                                fused).items()},
                   "load_average_1min": load}
            rows.append(row)
            print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "profile.csv", index=False)


def _scaling_job(path: str, method: str, epochs: int) -> dict:
    import torch

    import scfill

    torch.set_num_threads(1)
    params = {"scgacl": {"profile": "fast", "pretrain_epochs": epochs,
                         "vade_epochs": epochs, "joint_epochs": epochs},
              "maskclass": {"epochs": epochs}}.get(method)
    adata = scfill.read(path)
    scfill.impute(adata, method, seed=0, params=params)
    info = adata.uns["scfill"]
    return {"runtime_s": info["runtime_s"], "info": info.get("info", {})}


def scaling(args) -> None:
    """Time and peak RSS at each size, the three methods one after another."""
    import scfill

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_cells in args.cells:
            path = str(Path(tmp) / f"counts_{n_cells}.h5ad")
            adata = scfill.simulate(n_cells=n_cells, n_genes=args.genes, seed=0,
                                    group_prob=(0.4, 0.3, 0.2, 0.1), dropout_type="experiment",
                                    dropout_mid=3.0, dropout_shape=-1.0)
            observed = adata.copy()
            del observed.layers["true_counts"], observed.layers["dropout"]
            scfill.write(observed, path, force=True)
            for method in args.methods:
                wall, peak, result = measure(_scaling_job, path, method, args.epochs,
                                             timeout_s=args.timeout)
                info = result["info"]
                rows.append({"cells": n_cells, "genes": args.genes, "method": method,
                             "epochs_per_phase": args.epochs if method != "magic" else 0,
                             "runtime_s": result["runtime_s"], "wall_s": round(wall, 2),
                             "peak_rss_mb": round(peak, 1),
                             "train_s": info.get("train_seconds"),
                             "info": json.dumps(info.get("schedule", {}))})
                print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "scaling.csv", index=False)


# ----------------------------------------------------------------------------- report
def _table(frame: pd.DataFrame, index: list[str], columns: str, metric: str,
           digits: int = 3) -> list[str]:
    pivot = frame[frame["metric"] == metric].groupby([*index, columns])["value"].agg(
        ["mean", "std", "count"])
    cells = pivot.apply(lambda r: f"{r['mean']:.{digits}f}" + (
        f" ± {r['std']:.{digits}f}" if r["count"] > 1 else ""), axis=1).unstack(columns)
    head = "| " + " | ".join(index + [str(c) for c in cells.columns]) + " |"
    lines = [head, "|" + "---|" * len(index) + "---:|" * len(cells.columns)]
    for key, row in cells.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        lines.append("| " + " | ".join(map(str, key)) + " | "
                     + " | ".join("" if pd.isna(v) else v for v in row) + " |")
    return lines


def _sections(frame: pd.DataFrame, index: list[str], columns: str,
              metrics: list[str] | tuple[str, ...]) -> list[str]:
    """One ``### metric`` table per metric."""
    lines = []
    for metric in metrics:
        lines += [f"### {metric}", "", *_table(frame, index, columns, metric), ""]
    return lines


def _plain_table(frame: pd.DataFrame) -> list[str]:
    """``frame`` as a Markdown table, floats to 3 decimals."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return lines


def _read(grid: str) -> pd.DataFrame | None:
    path = OUT / grid / "results.csv"
    return pd.read_csv(path) if path.exists() else None


def _settings(grid: str) -> str:
    path = OUT / grid / "settings.json"
    return json.dumps(json.loads(path.read_text())) if path.exists() else ""


def report(args) -> None:
    """``results/scgacl.md`` from the grids' results."""
    lines = ["# scGACL: the paper's protocols, ablations, profiles and speed", "",
             f"Machine: {machine()}; one thread per run; shared by several engineers, so "
             "wall times include contention (compare within a table only).",
             "Commands: `python benchmarks/scgacl.py <grid>` as in the script's docstring; "
             "per-run records, logs and tidy rows under `results/scgacl/<grid>/`.", ""]
    frame = _read("presets")
    if frame is not None:
        lines += ["## Simulations (`scgacl-1` … `scgacl-8`), protocol `truth`", "",
                  f"Settings: `{_settings('presets')}`", ""]
        lines += _sections(frame, ["method"], "dataset", TRUTH_METRICS)
    frame = _read("masks")
    if frame is not None:
        lines += ["## Real datasets, non-zeros masked, scored at the hidden entries", "",
                  f"Settings: `{_settings('masks')}`", ""]
        lines += _sections(frame, ["dataset", "protocol"], "method", MASK_METRICS)
    ablations = [_read(f"ablation/{v}/{part}") for v in ABLATIONS for part in ("sim", "real")]
    ablations = [f.assign(method=v) for v, f in zip(np.repeat(list(ABLATIONS), 2), ablations,
                                                     strict=True) if f is not None]
    presets_frame = _read("presets")
    if ablations and _read("ablation/full/sim") is None and presets_frame is not None:
        # the full model on the same simulations is the presets grid's scGACL run
        datasets = set(pd.concat(ablations)["dataset"])
        ablations.append(presets_frame[(presets_frame["method"] == "scgacl")
                                       & presets_frame["dataset"].isin(datasets)]
                         .assign(method="full (presets grid)"))
    if ablations:
        frame = pd.concat(ablations)
        lines += ["## Ablations", "",
                  f"Settings: `{_settings('ablation/no_adversarial/sim')}`; real sets "
                  f"`{_settings('ablation/no_adversarial/real')}`", ""]
        lines += _sections(frame, ["method"], "dataset",
                           ("rmse", "pearson", "cosine", "dropout_rmse", "runtime_s"))
    tuned = OUT / "tune.csv"
    if tuned.exists():
        summary = pd.read_csv(tuned).groupby(["preset", "candidate"])[list(TUNE_METRICS)].agg(
            lambda v: f"{v.mean():.3f}" + (f" ± {v.std():.3f}" if len(v) > 1 else ""))
        summary.insert(0, "n", pd.read_csv(tuned).groupby(["preset", "candidate"]).size())
        lines += ["## Profiles: `paper` against `fast` and other schedules (`tune`)", "",
                  "Protocol `truth` (accuracy metrics only), paired method seeds = repeats; "
                  "mean ± sd over the `n` repeats run. Settings: "
                  f"`{json.dumps(CANDIDATES)}`", "", *_plain_table(summary.reset_index()), ""]
    path = OUT / "profile.csv"
    if path.exists():
        frame = pd.read_csv(path)
        lines += ["## Profile: seconds per epoch of each phase (`profile`)", "",
                  *_plain_table(frame), ""]
    path = OUT / "dropout.csv"
    if path.exists():
        frame = pd.read_csv(path).melt(id_vars=["preset", "seed", "labels", "variant",
                                                "transform"], var_name="metric")
        frame["rule"] = frame["variant"] + ", " + frame["transform"]
        lines += ["## Dropout identification by the Gamma–Normal model alone", "",
                  "Zeros with probability > 0.5 called dropouts; means over seeds.", ""]
        lines += _sections(frame.rename(columns={"preset": "dataset"}), ["labels", "rule"],
                           "dataset", ("dropout_accuracy", "dropout_f1", "dropout_precision",
                                       "dropout_fpr"))
    path = OUT / "diagnose.csv"
    if path.exists():
        frame = pd.read_csv(path)
        lines += ["## Where the error comes from (`diagnose`)", "",
                  "RMSE against the truth over all entries when scGACL's reconstruction "
                  "fills the zeros each rule picks; kNN under the oracle rule beside it; "
                  "RMSE at the true dropouts alone; share of true dropouts each rule calls.",
                  "", *_plain_table(frame), ""]
    path = OUT / "masked_filled.csv"
    if path.exists():
        lines += ["## Hidden entries the dropout rule lets scGACL fill (`masked_filled`)", "",
                  "Share of the masked non-zeros whose Gamma–Normal dropout probability on "
                  "the masked counts exceeds 0.5 (the rest stay 0 in the output), per "
                  "variant.", "", *_plain_table(pd.read_csv(path)), ""]
    path = OUT / "scaling.csv"
    if path.exists():
        frame = pd.read_csv(path)
        lines += ["## Time and memory (one run, methods one after another)", "",
                  "| cells | method | epochs per phase | runtime (s) | train (s) | "
                  "peak RSS (MiB) | time / MAGIC |", "|---:|---|---:|---:|---:|---:|---:|"]
        for cells, group in frame.groupby("cells"):
            magic = group.loc[group["method"] == "magic", "runtime_s"]
            for _, r in group.iterrows():
                ratio = f"{r['runtime_s'] / magic.iloc[0]:.1f}" if len(magic) else ""
                train = "" if pd.isna(r["train_s"]) else f"{r['train_s']:.1f}"
                lines.append(f"| {cells} | {r['method']} | {r['epochs_per_phase']} | "
                             f"{r['runtime_s']:.1f} | {train} | {r['peak_rss_mb']:.0f} | "
                             f"{ratio} |")
        lines.append("")
    findings = ""
    if REPORT.exists() and FINDINGS in REPORT.read_text():
        findings = REPORT.read_text()[REPORT.read_text().index(FINDINGS):]
    REPORT.write_text("\n".join(lines) + "\n" + (findings or f"{FINDINGS}\n"))
    print(REPORT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("presets")
    p.add_argument("--methods", nargs="+", default=[*PEERS, "scgacl"])
    p.add_argument("--presets", nargs="+", default=PRESETS)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--profile", default="fast")
    p = sub.add_parser("masks")
    p.add_argument("--methods", nargs="+", default=[*PEERS, "scgacl"])
    p.add_argument("--datasets", nargs="+", default=CELLBENCH)
    p.add_argument("--rates", nargs="+", type=float, default=[0.3, 0.4, 0.5])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-cells", type=int, default=300)
    p.add_argument("--max-genes", type=int, default=1000)
    p.add_argument("--profile", default="fast")
    p = sub.add_parser("masked_filled")
    p.add_argument("--datasets", nargs="+", default=CELLBENCH)
    p.add_argument("--rates", nargs="+", type=float, default=[0.3, 0.4, 0.5])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--max-cells", type=int, default=300)
    p.add_argument("--max-genes", type=int, default=1000)
    p = sub.add_parser("ablation")
    p.add_argument("--presets", nargs="+", default=PRESETS[4:])
    p.add_argument("--datasets", nargs="*", default=CELLBENCH)
    p.add_argument("--variants", nargs="+", default=list(ABLATIONS))
    p.add_argument("--max-cells", type=int, default=300)
    p.add_argument("--max-genes", type=int, default=1000)
    p.add_argument("--profile", default="fast")
    p = sub.add_parser("diagnose")
    p.add_argument("--presets", nargs="+", default=["scgacl-4", "scgacl-8"])
    p.add_argument("--profile", default="fast")
    p = sub.add_parser("dropout")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p = sub.add_parser("tune")
    p.add_argument("--presets", nargs="+", default=["scgacl-4"])
    p.add_argument("--candidates", nargs="+", default=["paper", "fast"])
    p.add_argument("--repeats", nargs="+", type=int, default=[0, 1, 2])
    p = sub.add_parser("profile")
    p.add_argument("--cells", type=int, default=1000)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 128])
    p = sub.add_parser("scaling")
    p.add_argument("--cells", nargs="+", type=int, default=[1000, 5000, 10000])
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--methods", nargs="+", default=["magic", "maskclass", "scgacl"])
    p.add_argument("--timeout", type=float, default=1800.0)
    sub.add_parser("report")
    args = parser.parse_args()
    commands = {"presets": presets, "masks": masks, "profile": profile, "tune": tune,
                "masked_filled": masked_filled,
                "ablation": ablation, "dropout": dropout, "diagnose": diagnose,
                "scaling": scaling, "report": report}
    commands[args.command](args)


if __name__ == "__main__":
    main()
