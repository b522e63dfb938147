#!/usr/bin/env bash
# Benchmark scfill's methods beside the peers (MAGIC, ALRA, scVI) and the baselines on the
# simulator presets and every dataset in ../shared/data. Output: benchmarks/results/benchmark/.
#
# Sized for our 2-core CPU without GPU: datasets subsampled to 1,000 random cells and their
# 1,000 most variable genes (presets simulated at 1,000 cells), one repeat, one thread per
# run, scVI trained for 100 epochs (scvi-tools' default at 1,000 cells would be 400),
# cnnImpute capped at 20 epochs per model (paper: at most 150 with early stopping, patience
# 5; benchmarks/results/cnnimpute*.md measure the cap's cost), a 30-minute limit per run. The grid is split over parallel streams of methods (METHODS=...),
# each writing its own records into the same folder; `--report-only` with every method
# then writes the combined report. Re-running resumes: finished runs are skipped.
#
#   METHODS=none,knn,alra,magic benchmarks/run_benchmark.sh &
#   METHODS=scvi                 benchmarks/run_benchmark.sh &
#   METHODS=maskclass            benchmarks/run_benchmark.sh &
#   METHODS=cnnimpute DATASETS=../shared/data                      benchmarks/run_benchmark.sh &
#   METHODS=cnnimpute DATASETS="$PRESETS" PROTOCOLS=truth          benchmarks/run_benchmark.sh
#   (the committed run left cnnImpute x presets x mask-nonzero:0.1 out for time: 8 "not run")
#   benchmarks/run_benchmark.sh --report-only
# (PRESETS is the preset list set below.)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${SCFILL_DATA:-../shared/data}
OUT=${OUT:-benchmarks/results/benchmark}
METHODS=${METHODS:-none,knn,maskclass,cnnimpute,alra,magic,scvi}
PRESETS=preset:maskclass-equal,preset:maskclass-unequal,preset:maskclass-rare,preset:maskclass-batch,preset:cnnimpute,preset:scgacl-1,preset:scgacl-4,preset:scgacl-8
export OMP_NUM_THREADS=1
.venv/bin/scfill benchmark \
  --methods "$METHODS" \
  --datasets "${DATASETS:-$PRESETS,$DATA}" \
  --protocols "${PROTOCOLS:-truth,mask-nonzero:0.1}" --repeats 1 \
  --max-cells 1000 --max-genes 1000 --threads 1 --timeout 1800 \
  --param scvi.epochs=100 --param cnnimpute.epochs=20 \
  --umap-dataset cellbench_sc_10x_3cl_subset \
  --out "$OUT" "$@"
