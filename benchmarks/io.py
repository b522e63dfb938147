"""Read + validate + write time and peak memory for a large sparse h5ad.

Usage: ``python benchmarks/io.py [--cells 100000] [--genes 2000] [--density 0.1]``.
Writes ``benchmarks/results/io.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure


def make_file(path: Path, n_cells: int, n_genes: int, density: float) -> int:
    """Write a random integer-count CSR h5ad; return its number of non-zeros."""
    rng = np.random.default_rng(0)
    nnz_per_row = rng.binomial(n_genes, density, n_cells)
    indptr = np.concatenate([[0], np.cumsum(nnz_per_row)])
    indices = np.concatenate([np.sort(rng.choice(n_genes, k, replace=False))
                              for k in nnz_per_row]).astype(np.int32)
    data = rng.geometric(0.4, indptr[-1]).astype(np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    adata = ad.AnnData(matrix, obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
                       var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    adata.write_h5ad(path)
    return matrix.nnz


def read_validate_write(src: str, dst: str) -> dict:
    """The measured job: scfill.read, validate_counts, scfill.write (gzip h5ad)."""
    import time

    import scfill
    from scfill.validate import validate_counts

    times = {}
    start = time.perf_counter()
    adata = scfill.read(src)
    times["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    validate_counts(adata)
    times["validate_s"] = time.perf_counter() - start
    start = time.perf_counter()
    scfill.write(adata, dst, force=True)
    times["write_s"] = time.perf_counter() - start
    times["sparse"] = sp.issparse(adata.X)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "io.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.h5ad", Path(tmp) / "out.h5ad"
        nnz = make_file(src, args.cells, args.genes, args.density)
        _, baseline_mib, _ = measure(_import_only)
        seconds, peak_mib, parts = measure(read_validate_write, str(src), str(dst))
        size_mb = src.stat().st_size / 2**20
    dense_mib = args.cells * args.genes * 4 / 2**20
    lines = [
        "# I/O benchmark: read + validate + write",
        "",
        f"Command: `python benchmarks/io.py --cells {args.cells} --genes {args.genes} "
        f"--density {args.density}`",
        f"Machine: {machine()}",
        "",
        f"Input: {args.cells:,} cells x {args.genes:,} genes, {nnz:,} non-zeros "
        f"({nnz / (args.cells * args.genes):.1%}), h5ad {size_mb:.0f} MiB on disk.",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| read | {parts['read_s']:.2f} |",
        f"| validate | {parts['validate_s']:.2f} |",
        f"| write (gzip h5ad, atomic) | {parts['write_s']:.2f} |",
        f"| total (fresh process, imports included) | {seconds:.2f} |",
        "",
        f"Peak RSS of the process: {peak_mib:.0f} MiB (imports alone: {baseline_mib:.0f} MiB). "
        f"Dense float32 size of the matrix: {dense_mib:.0f} MiB; ratio peak / dense = "
        f"{peak_mib / dense_mib:.2f}. X stayed sparse: {parts['sparse']}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


def _import_only() -> None:
    import scfill  # noqa: F401


if __name__ == "__main__":
    main()
