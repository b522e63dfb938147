"""Wall time of `scfill --help` and of a call with a wrong path, two source trees side by side.

Each command runs in a fresh interpreter with ``PYTHONPATH=<tree>/src``, the trees
alternating, ``--repeats`` times; the table gives the median wall time, the ratio, and what
the call imported (the number of modules, and whether torch, scanpy, anndata were among
them). Usage::

    git archive c229892 | tar -x -C /tmp/before     # the tree before the change
    python benchmarks/cli_startup.py --before /tmp/before --after . \\
        --out benchmarks/results/cli_startup.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The calls measured: a name and the arguments after ``scfill``.
CALLS = {
    "scfill --help": ["--help"],
    "scfill impute --help": ["impute", "--help"],
    "scfill impute missing.h5ad -o out.h5ad": ["impute", "missing.h5ad", "-o", "out.h5ad"],
}
#: Heavy packages whose import the fast paths should avoid.
HEAVY = ("torch", "scanpy", "anndata")
#: Runs the CLI in the child and prints what it imported (on stdout's last line).
CHILD = f"""
import json, sys
from scfill.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # argparse's --help exits (both trees)
    pass
print(json.dumps([len(sys.modules), [m for m in {HEAVY!r} if m in sys.modules]]))
"""


def run_once(tree: Path, argv: list[str], cwd: Path) -> tuple[float, int, list[str]]:
    """Seconds of wall time, modules imported and heavy packages among them."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    n_modules, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, n_modules, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree before")
    parser.add_argument("--after", type=Path, required=True, help="source tree after")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="markdown result")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, argv in CALLS.items():
            times = {"before": [], "after": []}
            imported = {}
            for _ in range(args.repeats):
                for label in ("before", "after"):
                    seconds, n_modules, heavy = run_once(getattr(args, label), argv,
                                                         Path(scratch))
                    times[label].append(seconds)
                    imported[label] = (n_modules, heavy)
            before, after = (statistics.median(times[k]) for k in ("before", "after"))
            rows.append(f"| `{name}` | {before:.2f} | {after:.2f} | {before / after:.1f} × | "
                        f"{imported['before'][0]} ({', '.join(imported['before'][1]) or '-'}) "
                        f"| {imported['after'][0]} ({', '.join(imported['after'][1]) or '-'}) |")
    load = os.getloadavg()
    text = "\n".join([
        "# CLI start-up: `--help` and a wrong path, before and after lazy imports",
        "",
        f"Command: `python benchmarks/cli_startup.py --before {args.before} --after "
        f"{args.after} --repeats {args.repeats} --out {args.out}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {load[0]:.1f} at the end), Python {platform.python_version()}. "
        "Wall times under that load: read the ratios.",
        "",
        f"Median wall time of {args.repeats} runs per tree (fresh interpreter each, trees "
        "alternating), and the modules each call imported (heavy packages in brackets).",
        "",
        "| call | before (s) | after (s) | before / after | modules before | modules after |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
