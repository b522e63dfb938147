"""cnnImpute with its defaults at the bar's size: an older tree beside this one, one run.

Both trees impute the simulation of ``benchmarks/speed.py`` (5,000 × 2,000, seed 0) with
``scfill.impute(adata, "cnnimpute", seed=0)``, each in a fresh process (``PYTHONPATH`` at
the tree's ``src``), alternating old, new, old, new … for ``--repeats`` rounds so that load
on the shared machine hits both alike. Reports the method's own time
(``uns['scfill']['runtime_s']``), the epochs of each subset model, the process's peak RSS and
the load average, and the mean absolute difference of the two trees' imputed values at the
imputed entries.

Usage::

    python benchmarks/cnnimpute_side_by_side.py --old /path/to/old/tree [--repeats 1]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, write_report
from speed import make_data

HERE = Path(__file__).parent

#: The job each tree runs: impute, report time and epochs, save the imputed layer.
JOB = """
import json, sys, numpy as np, scfill
adata = scfill.read(sys.argv[1])
scfill.impute(adata, "cnnimpute", seed=0)
info = adata.uns["scfill"]
groups = info["info"]["groups"]
groups = groups.values() if isinstance(groups, dict) else groups
epochs = [int(m["epochs"]) for g in groups
          for m in (g["models"].values() if isinstance(g["models"], dict) else g["models"])]
np.save(sys.argv[2], adata.layers["imputed"].toarray())
print(json.dumps({"runtime_s": float(info["runtime_s"]), "epochs": epochs}))
"""


def run_tree(src: Path, data: str, out: str, threads: int) -> dict:
    """One imputation in a fresh process from the tree at ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", JOB, data, out], env=env, check=True,
                          capture_output=True, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_mib"] = peak / 1024 if peak > before else float("nan")
    result["load"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="root of the older tree (has src/)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "cnnimpute_side_by_side.md"))
    args = parser.parse_args()
    trees = {"old": Path(args.old) / "src", "new": HERE.parent / "src"}
    rows, imputed = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "counts.h5ad")
        zeros = make_data(data, 5000, 2000)
        for repeat in range(args.repeats):
            for name, src in trees.items():
                out = str(Path(tmp) / f"{name}.npy")
                result = run_tree(src, data, out, args.threads)
                imputed[name] = np.load(out)
                rows.append((name, repeat, result))
                print(name, repeat, result, flush=True)
    changed = (imputed["old"] != 0) | (imputed["new"] != 0)
    diff = float(np.abs(imputed["old"] - imputed["new"])[changed].mean())
    times = {name: [r["runtime_s"] for n, _, r in rows if n == name] for name in trees}
    lines = ["# cnnImpute defaults at 5,000 × 2,000: older tree beside this one", "",
             f"Command: `python benchmarks/cnnimpute_side_by_side.py "
             f"{' '.join(sys.argv[1:])}`", f"Machine: {machine()}, {args.threads} thread(s) "
             "per run; shared (load average after each run in the table): compare the two "
             "trees within this run only.",
             f"Data: the speed.py simulation, 5,000 × 2,000, {zeros}; "
             "`scfill.impute(adata, 'cnnimpute', seed=0)` (fast profile), each run in a "
             "fresh process, old and new alternating.", "",
             "| tree | round | method time (s) | epochs per subset | peak RSS (MiB) | load |",
             "|---|---:|---:|---|---:|---:|"]
    for name, repeat, result in rows:
        lines.append(f"| {name} | {repeat} | {result['runtime_s']:.1f} | "
                     f"{', '.join(map(str, result['epochs']))} | {result['peak_mib']:.0f} | "
                     f"{result['load']:.1f} |")
    ratio = np.mean(times["new"]) / np.mean(times["old"])
    lines += ["", f"new / old method time: {ratio:.2f}. Mean |old − new| of the imputed "
              f"values where either imputed (the last round): {diff:.4f} (the prefix "
              "computation rounds differently, and bfloat16 training amplifies it)."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
