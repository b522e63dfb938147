#!/usr/bin/env bash
# Benchmark scfill's methods against the peers (MAGIC, ALRA, scVI) and the baselines.
#
# Committed run (benchmarks/results/benchmark/): sized for a 2-core shared CPU without GPU:
# two datasets (the MaskClass Sim-Rare preset simulated at 1,000 cells x 1,000 genes, and the
# CellBench 10x 3-cell-line set, 895 cells x 894 genes, whole), one repeat,
# scVI trained for 50 epochs instead of scvi-tools' default (400 below 20,000 cells),
# one thread per run, a 15-minute limit per run. Re-running resumes: finished runs are
# skipped, so the grid can be widened (more datasets, protocols, repeats) in later calls.
#
# The full grid of issue 8 (every shared dataset, three protocols, 3 repeats) is
#   scfill benchmark --methods maskclass,cnnimpute,knn,magic,alra,scvi \
#     --datasets ../shared/data,preset:maskclass-rare \
#     --protocols truth,mask-nonzero:0.1,mask-nonzero:0.3 --repeats 3 --out report/
# and takes several hours on such a machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${SCFILL_DATA:-../shared/data}
OUT=${OUT:-benchmarks/results/benchmark}
export OMP_NUM_THREADS=1
nice -n 10 .venv/bin/scfill benchmark \
  --methods none,knn,maskclass,cnnimpute,alra,magic,scvi \
  --datasets "preset:maskclass-rare,$DATA/cellbench_sc_10x_3cl_subset.h5ad" \
  --protocols truth,mask-nonzero:0.1 --repeats 1 \
  --max-cells 1000 --max-genes 1000 --threads 1 --timeout 900 \
  --param scvi.epochs=50 \
  --umap-dataset cellbench_sc_10x_3cl_subset \
  --out "$OUT" "$@"
