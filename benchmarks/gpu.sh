#!/usr/bin/env bash
# GPU check and timings of the deep methods (issue 15), a few minutes in all on one GPU.
#
#   benchmarks/gpu.sh              on a machine with CUDA: writes benchmarks/results/gpu.md
#   benchmarks/gpu.sh --cpu-smoke  the same steps on the CPU at toy sizes (tests the script;
#                                  writes benchmarks/results/gpu_cpu_smoke.md)
#
# 1. `scfill impute --device cuda` end to end on a small simulation for MaskClass and
#    cnnImpute, beside the same command on the CPU. Training on the GPU draws its masks and
#    batches from CUDA generators, so the outputs are not the CPU's bit for bit; stated
#    tolerances: (a) the trained MaskClass network gives the same reconstruction on both
#    devices (max |difference| <= 1e-3, float32, TF32 off); (b) the masked-entry MSE of each
#    method's CUDA run is within 10 % of its CPU run's (protocol mask-nonzero:0.1, seed 0).
# 2. Times MaskClass and cnnImpute (fast profile, `scfill.impute`, everything included: the
#    dropout model, pre-clustering, training, reconstruction) at 100,000 and 1,000,000 cells
#    x 2,000 genes. Nothing can be downloaded on the GPU machine, so the data are simulated
#    there: 100,000 cells by `scfill.simulate` (30 % non-zeros); 1,000,000 cells as ten
#    binomially thinned copies (p = 0.9, one seed each) of that simulation, built chunk by
#    chunk as CSR (a dense 1M x 2,000 simulation would need 16 GB per float64 array).
#    Each timing runs in its own process with a limit (TIME_LIMIT seconds, default 420);
#    a run past it is reported as stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-$PWD/src}
if [[ "${1:-}" == "--cpu-smoke" ]]; then
    MODE=cpu-smoke
else
    MODE=gpu
fi
export SCFILL_GPU_MODE=$MODE TIME_LIMIT=${TIME_LIMIT:-420}
exec "$PYTHON" - <<'PY'
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

MODE = os.environ["SCFILL_GPU_MODE"]
SMOKE = MODE == "cpu-smoke"
LIMIT = float(os.environ["TIME_LIMIT"])
DEVICE = "cpu" if SMOKE else "cuda"
#: (check cells, check genes), timed sizes (cells; genes), and MaskClass epochs for the check.
CHECK = (300, 200) if SMOKE else (2000, 500)
SIZES = ([1000, 3000], 200) if SMOKE else ([100_000, 1_000_000], 2000)
OUT = Path("benchmarks/results") / ("gpu_cpu_smoke.md" if SMOKE else "gpu.md")
SCFILL = [shutil.which("scfill") or str(Path(sys.executable).with_name("scfill"))]


def simulate(path, n_cells, n_genes, seed=0):
    """Counts for a run: a simulation, or copies of one thinned by a seed each."""
    import anndata as ad
    import scfill

    base_cells = min(n_cells, 100_000)
    base = scfill.simulate(n_cells=base_cells, n_genes=n_genes, seed=seed,
                           group_prob=(0.4, 0.3, 0.2, 0.1), dropout_type="experiment",
                           dropout_mid=3.0, dropout_shape=-1.0)
    counts = sp.csr_matrix(base.X, dtype=np.float32)
    if n_cells > base_cells:
        parts = []
        for copy in range(-(-n_cells // base_cells)):
            rng = np.random.default_rng([seed, copy])
            part = counts.copy()
            part.data = rng.binomial(part.data.astype(np.int64), 0.9).astype(np.float32)
            part.eliminate_zeros()
            parts.append(part)
        counts = sp.vstack(parts, format="csr")[:n_cells]
    adata = ad.AnnData(counts)
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.var_names = [str(g) for g in base.var_names]
    adata.write_h5ad(path)
    return adata.n_obs, adata.n_vars, adata.X.nnz / (adata.n_obs * adata.n_vars)


def check(tmp):
    """Step 1: CLI end to end on both devices, and the stated tolerances."""
    import anndata as ad
    import torch
    import scfill
    from scfill.evaluate import evaluate_method

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    path = Path(tmp) / "check.h5ad"
    simulate(path, *CHECK)
    lines = []
    for method in ("maskclass", "cnnimpute"):
        for device in ("cpu", DEVICE):
            out = Path(tmp) / f"{method}_{device}.h5ad"
            start = time.perf_counter()
            subprocess.run([*SCFILL, "-q", "impute", str(path), "-o", str(out), "--method",
                            method, "--device", device, "--force"], check=True)
            result = ad.read_h5ad(out)
            finite = bool(np.isfinite(result.layers["imputed"].data).all())
            lines.append(f"| `scfill impute --method {method} --device {device}` | "
                         f"{time.perf_counter() - start:.1f} s | device "
                         f"{result.uns['scfill']['device']}, finite: {finite} |")
        errors = {}
        for device in ("cpu", DEVICE):
            rows = evaluate_method(ad.read_h5ad(path), method, protocol="mask-nonzero:0.1",
                                   seed=0, device=device)
            errors[device] = float(rows.loc[rows.metric == "mse", "value"].iloc[0])
        relative = abs(errors[DEVICE] - errors["cpu"]) / errors["cpu"]
        lines.append(f"| masked-entry MSE, {method} | cpu {errors['cpu']:.4f}, {DEVICE} "
                     f"{errors[DEVICE]:.4f} | relative difference {relative:.1%} "
                     f"({'within' if relative <= 0.10 else 'OUTSIDE'} 10 %) |")
    # the same trained MaskClass network on both devices
    model = scfill.get_method("maskclass")(epochs=5)
    adata = ad.read_h5ad(path)
    scfill.impute(adata, model, seed=0, device="cpu")
    x = torch.rand(256, model.module_.decoder[-1].out_features)
    cpu = model.module_.cpu().eval()(x)
    other = model.module_.to(DEVICE).eval()(x.to(DEVICE)).cpu()
    diff = float((cpu - other).abs().max())
    lines.append(f"| MaskClass network, same weights on cpu and {DEVICE} | max abs difference "
                 f"{diff:.2e} | {'within' if diff <= 1e-3 else 'OUTSIDE'} 1e-3 |")
    return lines


#: The timed child: impute one file with one method, print a JSON line of figures.
CHILD = """
import json, resource, sys, time
import scfill
path, method, device = sys.argv[1:4]
adata = scfill.read(path)
scfill.impute(adata, method, seed=0, device=device)
info = adata.uns["scfill"]
gpu_peak = 0.0
if device == "cuda":
    import torch
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps({"runtime_s": info["runtime_s"], "gpu_peak_mb": gpu_peak,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "settings": info.get("info", {}).get("settings")}, default=str))
"""


def timings(tmp):
    """Step 2: MaskClass and cnnImpute at the timed sizes, each in its own process."""
    cells_list, genes = SIZES
    lines = []
    for n_cells in cells_list:
        path = Path(tmp) / f"t{n_cells}.h5ad"
        start = time.perf_counter()
        shape = simulate(path, n_cells, genes)
        made = time.perf_counter() - start
        data = (f"{shape[0]:,} x {shape[1]:,} ({shape[2]:.0%} non-zero; simulated in "
                f"{made:.0f} s)")
        for method in ("maskclass", "cnnimpute"):
            try:
                done = subprocess.run([sys.executable, "-c", CHILD, str(path), method, DEVICE],
                                      check=True, capture_output=True, text=True,
                                      timeout=LIMIT)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                lines.append(f"| {method} | {data} | {r['runtime_s']:.1f} | "
                             f"{r['peak_rss_mb']:.0f} | {r['gpu_peak_mb']:.0f} | "
                             f"{r['settings']} |")
            except subprocess.TimeoutExpired:
                lines.append(f"| {method} | {data} | > {LIMIT:.0f} (stopped) | | | |")
            except subprocess.CalledProcessError as err:
                lines.append(f"| {method} | {data} | failed: "
                             f"{err.stderr.strip().splitlines()[-1][:200]} | | | |")
            print(lines[-1], flush=True)
    return lines


def main():
    import torch

    if not SMOKE and not torch.cuda.is_available():
        sys.exit("gpu.sh: no CUDA device; run with --cpu-smoke to test the script on the CPU")
    gpu = torch.cuda.get_device_name(0) if not SMOKE else "none (--cpu-smoke)"
    with tempfile.TemporaryDirectory() as tmp:
        checked = check(tmp)
        timed = timings(tmp)
    lines = [
        f"# Deep methods on {'the CPU (smoke test of benchmarks/gpu.sh)' if SMOKE else 'a GPU'}",
        "", f"Command: `benchmarks/gpu.sh{' --cpu-smoke' if SMOKE else ''}`. Machine: "
        f"{platform.node()}, {os.cpu_count()} CPU cores, GPU: {gpu}; torch "
        f"{torch.__version__}; load average {os.getloadavg()[0]:.1f}.",
        "", "## Check (small simulation "
        f"{CHECK[0]:,} x {CHECK[1]:,})", "", "| step | result | |", "|---|---|---|",
        *checked, "", "## Timings (fast profile, defaults, everything included)", "",
        "| method | data | method time (s) | peak RSS (MiB) | peak GPU memory (MiB) | "
        "settings |", "|---|---|---:|---:|---:|---|", *timed]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
PY
