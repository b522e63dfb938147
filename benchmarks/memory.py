"""Peak memory and wall time of ``scfill impute``: an older commit beside this tree, one run.

Issue 12's memory check: MaskClass (2 epochs) on 100,000 × 2,000 counts and cnnImpute
(1 epoch) on 20,000 × 2,000 counts, both from ``scfill simulate --genes 2000 --seed 1``
(Splatter defaults), each run as ``scfill impute ... -o out.h5ad`` (writing the output
included) under ``/usr/bin/time -v``; the peak is its "Maximum resident set size". The
older commit runs from a ``git worktree`` of ``--old``, this tree from ``src/``, with the
same interpreter and packages, one process at a time, one thread each.

The machine is shared: a watchdog stops a run when the machine's available memory falls
under ``--guard-gib`` (its peak is then a lower bound, marked so), so that a run never
pushes other jobs out of memory. The imputed layers of the two commits are compared
row block by row block from the files.

Usage::

    python benchmarks/memory.py --old c9d287f   # writes benchmarks/results/memory.md
    python benchmarks/memory.py --cases maskclass   # this tree alone
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCFILL = Path(sys.executable).with_name("scfill")
#: case → (cells, method, method parameter, further ``scfill impute`` options).
#: ``cnnimpute-labels`` gives both trees the simulated groups, so neither runs the
#: pre-clustering (the full 3-D t-SNE of the old code does not finish at 20,000 cells).
CASES = {"maskclass": (100_000, "maskclass", "epochs=2", ()),
         "cnnimpute": (20_000, "cnnimpute", "epochs=1", ()),
         "cnnimpute-labels": (20_000, "cnnimpute", "epochs=1", ("--labels-key", "group"))}
GENES = 2000
#: Rows compared at a time when the two outputs are read back.
COMPARE_ROWS = 4096


@dataclass
class Run:
    """One ``scfill impute`` process."""

    tree: str
    case: str
    peak_gib: float
    wall_s: float
    exit_code: int
    stopped: bool
    output: Path
    tail: str


def _available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def simulate(cells: int, tmp: Path) -> Path:
    """The case's input (simulated once with this tree, then reused)."""
    path = tmp / f"sim{cells // 1000}k.h5ad"
    if not path.exists():
        subprocess.run([str(SCFILL), "-q", "simulate", "--cells", str(cells), "--genes",
                        str(GENES), "--seed", "1", "-o", str(path)], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return path


def worktree(rev: str, tmp: Path) -> Path:
    """A detached worktree of ``rev`` (created once)."""
    folder = tmp / f"scfill-{rev}"
    if not folder.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder),
                        rev], check=True, capture_output=True)
    return folder


def measure(tree: Path, label: str, case: str, source: Path, tmp: Path, *,
            guard_gib: float) -> Run:
    """Run the case once under ``/usr/bin/time -v`` with the memory watchdog."""
    _, method, param, options = CASES[case]
    output = tmp / f"memory-{label}-{case}.h5ad"
    command = ["/usr/bin/time", "-v", str(SCFILL), "-q", "impute", str(source), "-o",
               str(output), "--method", method, "--param", param, *options, "--seed", "0",
               "--device", "cpu", "--force"]
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    stopped = threading.Event()

    def watch() -> None:
        while process.poll() is None:
            if _available_gib() < guard_gib:
                stopped.set()
                os.killpg(process.pid, 9)
                return
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    text, _ = process.communicate()
    wall = time.perf_counter() - start
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return Run(label, case, int(peak.group(1)) / 2**20 if peak else float("nan"), wall,
               process.returncode, stopped.is_set(), output,
               "\n".join(line for line in text.splitlines()[-40:]
                         if not line.startswith("\t"))[-600:])


def _rows(layer, start: int, stop: int) -> np.ndarray:
    """Rows of an h5ad layer (dense dataset or CSR group) as a dense array."""
    import scipy.sparse as sp

    if hasattr(layer, "shape") and not hasattr(layer, "keys"):
        return layer[start:stop]
    indptr = layer["indptr"][start:stop + 1]
    lo, hi = int(indptr[0]), int(indptr[-1])
    shape = tuple(int(v) for v in layer.attrs["shape"])
    return sp.csr_matrix((layer["data"][lo:hi], layer["indices"][lo:hi], indptr - lo),
                         shape=(stop - start, shape[1])).toarray()


def compare(old: Path, new: Path, layer: str = "imputed") -> float:
    """Largest absolute difference of ``layer`` between two outputs, read in row blocks."""
    import h5py

    with h5py.File(old, "r") as a, h5py.File(new, "r") as b:
        first, second = a["layers"][layer], b["layers"][layer]
        n_rows = int(first.attrs["shape"][0]) if "shape" in first.attrs else first.shape[0]
        worst = 0.0
        for start in range(0, n_rows, COMPARE_ROWS):
            stop = min(start + COMPARE_ROWS, n_rows)
            worst = max(worst, float(np.abs(_rows(first, start, stop)
                                            - _rows(second, start, stop)).max()))
    return worst


def _storage(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as store:
        return ", ".join(f"{name} {store['layers'][name].attrs['encoding-type']}"
                         for name in store["layers"])


def report(runs: list[Run], diffs: dict[str, str], *, rev: str, head: str, command: str,
           loads: tuple[str, str]) -> str:
    """The results page."""
    by = {(r.case, r.tree): r for r in runs}
    lines = [
        "# Memory: `scfill impute`, before and after the streamed output (issue 12)",
        "",
        f"Command: `{command}` (one run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{_meminfo_total():.1f} GiB RAM, shared with other jobs (load average "
        f"{loads[0]} at the start, {loads[1]} at the end): wall times are under that load; "
        "compare them only side by side. One thread per process (`OMP_NUM_THREADS=1`).",
        f"Old: {f'commit `{rev}`' if rev else 'not run'}; new: `{head}`. Inputs: "
        f"`scfill simulate --cells N --genes "
        f"{GENES} --seed 1` (Splatter defaults). Each run: `scfill -q impute IN -o OUT.h5ad "
        "--method M --param P --seed 0 --device cpu`, writing the .h5ad included; peak = "
        "`/usr/bin/time -v` maximum resident set size.",
        "",
        "| case | cells × genes | old peak (GiB) | new peak (GiB) | new / old | old wall | "
        "new wall | old exit | new exit | max abs diff of `imputed` | new layers on disk |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, (cells, method, param, options) in CASES.items():
        old, new = by.get((case, "old")), by.get((case, "new"))
        if new is None:
            continue

        def peak(run: Run | None) -> str:
            if run is None:
                return "not run"
            return f"≥ {run.peak_gib:.2f} (stopped)" if run.stopped else f"{run.peak_gib:.2f}"

        def wall(run: Run | None) -> str:
            return "-" if run is None else f"{run.wall_s / 60:.1f} min"

        storage = _storage(new.output) if new.exit_code == 0 and new.output.exists() else "-"
        ratio = "-" if old is None else f"{new.peak_gib / old.peak_gib:.2f}"
        flags = " ".join(("--param", param, *options))
        lines.append(
            f"| {method} `{flags}` | {cells:,} × {GENES:,} | {peak(old)} | "
            f"{peak(new)} | {ratio} | {wall(old)} | {wall(new)} | "
            f"{'-' if old is None else old.exit_code} | {new.exit_code} | "
            f"{diffs.get(case, '-')} | {storage} |")
    failed = [r for r in runs if r.exit_code != 0]
    if failed:
        lines += ["", "Runs that did not exit 0 (last lines of their output):", ""]
        for run in failed:
            lines += [f"- {run.tree} {run.case} (exit {run.exit_code}"
                      f"{', stopped by the memory watchdog' if run.stopped else ''}):",
                      "", "```", run.tail.strip(), "```", ""]
    return "\n".join(lines) + "\n"


def _meminfo_total() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", help="commit to compare with (before the work); without it "
                        "only this tree runs")
    parser.add_argument("--new", help="commit to measure as new (default: this tree)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--tmp", default="/tmp", help="folder for inputs, outputs, worktree")
    parser.add_argument("--guard-gib", type=float, default=1.5,
                        help="stop a run when the machine has less memory available")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/memory.md"))
    args = parser.parse_args(argv)
    tmp = Path(args.tmp)
    head = args.new or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                      capture_output=True, text=True, check=True).stdout.strip()
    trees = {"new": ROOT if args.new is None else worktree(args.new, tmp)}
    if args.old is not None:
        trees["old"] = worktree(args.old, tmp)
    start_load = _load()
    command = "python benchmarks/memory.py " + " ".join(argv or sys.argv[1:])
    runs, diffs = [], {}
    for case in args.cases.split(","):
        source = simulate(CASES[case][0], tmp)
        for label, tree in trees.items():
            print(f"{case} {label}: available {_available_gib():.1f} GiB, load {_load()}",
                  flush=True)
            run = measure(tree, label, case, source, tmp, guard_gib=args.guard_gib)
            print(f"  peak {run.peak_gib:.2f} GiB, {run.wall_s:.0f} s, exit {run.exit_code}",
                  flush=True)
            runs.append(run)
            # the page is rewritten after every run, so an interrupted run keeps what it had
            Path(args.out).write_text(report(runs, diffs, rev=args.old, head=head,
                                             command=command, loads=(start_load, _load())))
        if args.old is None:
            continue
        new, old = runs[-2], runs[-1]
        if old.exit_code == 0 and new.exit_code == 0:
            diffs[case] = f"{compare(old.output, new.output):.3g}"
    text = report(runs, diffs, rev=args.old, head=head, command=command,
                  loads=(start_load, _load()))
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
