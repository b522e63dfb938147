"""Dropout identification and pre-clustering on simulations with known dropouts.

Usage::

    python benchmarks/dropout_identification.py [--presets scgacl-1 scgacl-4 scgacl-8 cnnimpute]
        [--seed 0] [--speed-cells 10000] [--speed-genes 2000 20000]

For each Splatter preset (``scfill.simulate``; all-zero cells and genes removed):

- dropout identification over the observed zeros, as scGACL reports it (a zero that is a
  dropout in truth is a positive; called a dropout when its probability > 0.5, the
  threshold of cnnImpute and scGACL): accuracy, F1, precision, false-positive rate for the
  Gamma–Normal model (both variants × both transforms, fitted per true group, and the
  default fitted per k-means pre-cluster), the ZINB model, and the trivial rules "every
  zero is a dropout" and "no zero is";
- pre-clustering ARI against the true groups, with the chosen k, for both methods;
- Gamma–Normal speed (default variant, 5 groups) on ``--speed-cells`` cells for each of
  ``--speed-genes``, in a fresh process.

Writes ``results/dropout_identification.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure

REPORT = Path(__file__).parent / "results" / "dropout_identification.md"
THRESHOLD = 0.5
GAMMA_NORMAL_RUNS = [(v, t) for v in ("scimpute", "scgacl") for t in ("log10_cpm", "ln_counts")]


def load(preset: str, seed: int, n_cells: int | None = None, n_genes: int | None = None):
    """Simulated counts (float32 CSR), true counts, true groups; empty cells/genes removed."""
    from scfill.preprocess import nonempty
    from scfill.simulate import simulate

    adata = simulate(preset=preset, n_cells=n_cells, n_genes=n_genes, seed=seed)
    cells, genes = nonempty(adata.X)
    adata = adata[cells][:, genes]
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    truth = sp.csr_matrix(adata.layers["true_counts"])
    groups = np.asarray(adata.obs["group"].astype(str))
    return counts, truth, groups


def score(counts, truth, probability) -> dict[str, float]:
    from scfill.evaluate.metrics import dropout_identification

    called = sp.csr_matrix(probability > THRESHOLD)
    return dropout_identification(counts, truth, called)


def identification_rows(counts, truth, groups, preclusters) -> list[tuple[str, dict, float]]:
    from scfill.dropout import estimate
    from scfill.preprocess import library_size

    lib = library_size(counts)
    rows = []
    for variant, transform in GAMMA_NORMAL_RUNS:
        start = time.perf_counter()
        res = estimate("gamma_normal", counts, lib, labels=groups, variant=variant,
                       transform=transform)
        rows.append((f"gamma_normal {variant}, {transform}, true groups",
                     score(counts, truth, res.matrix()), time.perf_counter() - start))
    start = time.perf_counter()
    res = estimate("gamma_normal", counts, lib, labels=preclusters)
    rows.append(("gamma_normal scimpute, log10_cpm, k-means pre-clusters",
                 score(counts, truth, res.matrix()), time.perf_counter() - start))
    for source in ("nonzero", "all"):
        start = time.perf_counter()
        res = estimate("zinb-paper", counts, lib, dispersion_counts=source)
        rows.append((f"zinb (MaskClass), dispersion from {source} counts",
                     score(counts, truth, res.matrix()), time.perf_counter() - start))
    zeros = sp.csr_matrix(np.ones(counts.shape, dtype=bool)) - (counts != 0)
    rows.append(("every zero is a dropout", score(counts, truth, zeros), 0.0))
    rows.append(("no zero is a dropout",
                 score(counts, truth, sp.csr_matrix(counts.shape, dtype=bool)), 0.0))
    return rows


def clustering_rows(counts, groups, seed) -> tuple[list[tuple[str, int, float, float]],
                                                   np.ndarray]:
    from sklearn.metrics import adjusted_rand_score

    from scfill.cluster import precluster
    from scfill.preprocess import LogNormalizer, library_size

    lib = library_size(counts)
    logcounts = LogNormalizer.median(lib).transform(counts, lib)
    rows, kmeans_labels = [], None
    for method in ("kmeans", "tsne_density_peaks"):
        start = time.perf_counter()
        labels = precluster(logcounts, method=method, seed=seed)
        seconds = time.perf_counter() - start
        rows.append((method, int(labels.max() + 1), adjusted_rand_score(groups, labels),
                     seconds))
        if method == "kmeans":
            kmeans_labels = labels
    return rows, kmeans_labels


def timed_fit(n_cells: int, n_genes: int, seed: int) -> tuple[float, tuple[int, int], float]:
    """In a fresh process: simulate, then time the Gamma–Normal model alone."""
    from scfill.dropout import estimate
    from scfill.preprocess import library_size

    counts, _, groups = load("cnnimpute", seed, n_cells=n_cells, n_genes=n_genes)
    density = counts.nnz / np.prod(counts.shape)
    start = time.perf_counter()
    estimate("gamma_normal", counts, library_size(counts), labels=groups)
    return time.perf_counter() - start, counts.shape, density


def fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+",
                        default=["scgacl-1", "scgacl-4", "scgacl-8", "cnnimpute"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-cells", type=int, default=10000)
    parser.add_argument("--speed-genes", type=int, nargs="*", default=[2000, 20000])
    args = parser.parse_args()

    lines = ["# Dropout identification and pre-clustering", "",
             "Command: `OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dropout_identification.py"
             + "".join(f" {a}" for a in sys.argv[1:]) + "`",
             f"Machine: {machine()}; load average at start "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine: wall times "
             "include contention).", "",
             f"Simulations: `scfill.simulate(preset=..., seed={args.seed})`, all-zero cells and "
             "genes removed. Scores over the observed zeros; a zero whose true count is "
             f"positive is a dropout (positive); called when its probability > {THRESHOLD}.", ""]
    for preset in args.presets:
        counts, truth, groups = load(preset, args.seed)
        zero_frac = 1 - counts.nnz / np.prod(counts.shape)
        true_nz = truth != 0
        dropouts = true_nz.nnz - true_nz.multiply(counts != 0).nnz
        zeros = np.prod(counts.shape) - counts.nnz
        cluster_rows, kmeans_labels = clustering_rows(counts, groups, args.seed)
        lines += [f"## {preset}: {counts.shape[0]} cells × {counts.shape[1]} genes, "
                  f"{np.unique(groups).size} groups",
                  "", f"Observed zeros {zero_frac:.1%}; "
                  f"dropouts among them {dropouts / zeros:.1%}.",
                  "", "| rule | accuracy | F1 | precision | FPR | seconds |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, s, seconds in identification_rows(counts, truth, groups, kmeans_labels):
            lines.append(f"| {name} | {fmt(s['dropout_accuracy'])} | {fmt(s['dropout_f1'])} | "
                         f"{fmt(s['dropout_precision'])} | {fmt(s['dropout_fpr'])} | "
                         f"{seconds:.2f} |")
        lines += ["", "| pre-clustering | k chosen | ARI vs true groups | seconds |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {m} | {k} | {ari:.3f} | {sec:.1f} |" for m, k, ari, sec in cluster_rows]
        lines.append("")
        print("\n".join(lines[-20:]), flush=True)
    if args.speed_genes:
        lines += ["## Gamma–Normal speed (scimpute, log10_cpm, 5 true groups, fresh process)", "",
                  "| cells × genes | non-zero fraction | seconds "
                  "| peak RSS MiB (incl. simulation) |",
                  "|---|---:|---:|---:|"]
        for n_genes in args.speed_genes:
            _, peak, (seconds, shape, density) = measure(timed_fit, args.speed_cells, n_genes,
                                                         args.seed)
            lines.append(f"| {shape[0]} × {shape[1]} | {density:.2f} | {seconds:.1f} | "
                         f"{peak:.0f} |")
            print(lines[-1], flush=True)
        lines.append("")
    REPORT.write_text("\n".join(lines))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
