"""What cnnImpute's pre-clustering and the dropout models cost, and what sampling the t-SNE
changes.

1. ``tsne_density_peaks`` on all cells (``max_cells=None``) beside the default, which
   embeds a seeded sample of :data:`scfill.cluster.TSNE_MAX_CELLS` cells and assigns the
   others to their nearest sampled neighbours' cluster: time, k, ARI between the two
   labelings and ARI of each against the simulated groups, and cnnImpute's accuracy with
   each labeling as its clusters (``labels_key``: the Gamma–Normal dropout model is fitted
   per cluster) under the paper's protocol (``mask-nonzero:0.1``, seed 0; both labelings
   are computed on the counts before masking so the two runs differ only in the labels),
   at the sizes where the full embedding finishes (``--compare``).
2. Time of the sampled pre-clustering and of the two dropout models the deep methods use
   (Gamma–Normal per cluster for cnnImpute, ZINB for MaskClass) at ``--sizes``.

Data: the simulation of ``benchmarks/speed.py`` (4 groups), 2,000 genes. One process,
one thread (``OMP_NUM_THREADS=1``), sequential; the load average is printed beside each
figure. Usage: ``python benchmarks/scaling_tsne.py [--compare 2000 5000] [--sizes 5000
100000]``; writes ``benchmarks/results/scaling_tsne.md``.
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
from _measure import machine

OUT = Path(__file__).parent / "results" / "scaling_tsne.md"
#: The paper's masking protocol (Methods: 10 % of the non-zero values hidden).
PROTOCOL = "mask-nonzero:0.1"


def simulate(n_cells: int, n_genes: int):
    """Counts, library sizes, the common space and the true groups."""
    import scfill
    from scfill.preprocess import LogNormalizer, library_size

    adata = scfill.simulate(n_cells=n_cells, n_genes=n_genes, seed=0,
                            group_prob=(0.4, 0.3, 0.2, 0.1), dropout_type="experiment",
                            dropout_mid=3.0, dropout_shape=-1.0)
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    keep = counts.getnnz(axis=0) > 0
    counts = counts[:, keep]
    lib = library_size(counts)
    logcounts = LogNormalizer.median(lib).transform(counts, lib)
    return counts, lib, logcounts, np.asarray(adata.obs["group"].astype(str)), adata


def cnnimpute_scores(adata, labels: np.ndarray) -> tuple[float, float, float]:
    """cnnImpute (defaults) with ``labels`` as its clusters: masked-entry MSE, Pearson and
    the method's time."""
    from scfill.evaluate import evaluate_method

    adata.obs["clusters"] = labels.astype(str)
    rows = evaluate_method(adata, "cnnimpute", protocol=PROTOCOL, seed=0,
                           labels_key="clusters").set_index("metric")["value"]
    return rows["mse"], rows["pearson"], rows["runtime_s"]


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    from sklearn.metrics import adjusted_rand_score as ari

    from scfill import cluster
    from scfill.dropout import estimate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", type=int, nargs="*", default=[2000, 5000])
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 100000])
    parser.add_argument("--genes", type=int, default=2000)
    args = parser.parse_args()
    lines = [
        "# Pre-clustering and dropout-model cost; the t-SNE on a sample", "",
        f"Command: `OMP_NUM_THREADS=1 python benchmarks/scaling_tsne.py --compare "
        f"{' '.join(map(str, args.compare))} --sizes {' '.join(map(str, args.sizes))}`. "
        f"Machine: {machine()}, one thread, shared (load average beside each row). Data: "
        f"the speed.py simulation (4 groups), {args.genes:,} genes. Sample size "
        f"{cluster.TSNE_MAX_CELLS:,} cells, {cluster.ASSIGN_NEIGHBOURS} neighbours.", "",
        "## Full t-SNE against the sampled one", "",
        "| cells | full: s | full: k | sampled: s | sampled: k | ARI(full, sampled) | "
        "ARI(full, groups) | ARI(sampled, groups) | cnnImpute MSE full / sampled | "
        "Pearson full / sampled | cnnImpute s full / sampled | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.compare:
        _, _, logcounts, groups, adata = simulate(n, args.genes)
        (full, k_full), t_full = timed(cluster.tsne_density_peaks, logcounts, seed=0,
                                       max_cells=None)
        (part, k_part), t_part = timed(cluster.tsne_density_peaks, logcounts, seed=0)
        mse_full, r_full, s_full = cnnimpute_scores(adata, full)
        mse_part, r_part, s_part = cnnimpute_scores(adata, part)
        lines.append(f"| {n:,} | {t_full:.1f} | {k_full} | {t_part:.1f} | {k_part} | "
                     f"{ari(full, part):.3f} | {ari(groups, full):.3f} | "
                     f"{ari(groups, part):.3f} | {mse_full:.4f} / {mse_part:.4f} | "
                     f"{r_full:.4f} / {r_part:.4f} | {s_full:.0f} / {s_part:.0f} | "
                     f"{os.getloadavg()[0]:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "## Cost at scale", "",
              "| cells | sampled pre-clustering: s (k) | Gamma–Normal (cnnImpute): s | "
              "ZINB (MaskClass): s | load |", "|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        counts, lib, logcounts, _, _ = simulate(n, args.genes)
        (labels, k), t_cluster = timed(cluster.tsne_density_peaks, logcounts, seed=0)
        _, t_gamma = timed(estimate, "gamma_normal", counts, lib, labels=labels)
        _, t_zinb = timed(estimate, "zinb", counts, lib)
        lines.append(f"| {n:,} | {t_cluster:.1f} ({k}) | {t_gamma:.1f} | {t_zinb:.1f} | "
                     f"{os.getloadavg()[0]:.1f} |")
        print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
