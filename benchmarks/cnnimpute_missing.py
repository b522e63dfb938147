"""Which hidden entries can cnnImpute fill? Its dropout model under the paper's protocol.

cnnImpute replaces only zeros whose Gamma–Normal dropout probability exceeds T = 0.5. Under
the masking protocol (``mask-expressed:0.1``) a hidden non-zero below T stays zero whatever
the network predicts, so the squared values of those entries, averaged over all hidden
entries, are a floor under cnnImpute's MSE that no training can lower. This script measures,
per dataset and repeat, with the masks, pre-clustering and probabilities of
``benchmarks/cnnimpute.py`` (same seeds, same gene cap):

- ``hidden_missing``: share of hidden entries with probability > T (the ones imputed);
- ``zeros_missing``: share of all zeros the method sees with probability > T;
- ``mse_floor``: mean over hidden entries of the squared reference value at the hidden
  entries left below T (common space), to set beside the methods' MSE in
  ``benchmarks/results/cnnimpute.md``.

The probabilities come from the pipeline itself (``scfill.impute`` with one training
epoch, whose network does not enter these figures).

Usage::

    python benchmarks/cnnimpute_missing.py --datasets all --repeats 2 --sim-cells 500 \
        --max-genes 2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine
from cnnimpute import PROTOCOL, expand, load


def missing_shares(adata, repeat: int) -> dict[str, float]:
    """The three figures of one dataset and repeat (see the module docstring)."""
    import scipy.sparse as sp

    import scfill
    from scfill.evaluate.masking import degrade, parse_protocol
    from scfill.evaluate.run import _method_input
    from scfill.evaluate.space import reference_space

    degraded = degrade(adata, parse_protocol(PROTOCOL), np.random.default_rng([0, repeat]))
    shown = _method_input(adata, degraded, None)
    scfill.impute(shown, "cnnimpute", seed=repeat, params={"epochs": 1}, device="cpu")
    threshold = scfill.get_method("cnnimpute")().dropout_threshold()
    missing = sp.csr_matrix(shown.layers["dropout_probability"] > threshold, dtype=np.float32)
    hidden = sp.csr_matrix(degraded.hidden, dtype=np.float32)
    reference, _ = reference_space(degraded.reference)
    imputed = hidden.multiply(missing)
    left = hidden - imputed
    n_zeros = np.prod(shown.shape) - degraded.counts.nnz
    return {"hidden_missing": imputed.nnz / hidden.nnz,
            "zeros_missing": missing.nnz / n_zeros,
            "mse_floor": float(reference.multiply(left).power(2).sum()) / hidden.nnz}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["all"])
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sim-cells", type=int, default=None)
    parser.add_argument("--max-genes", type=int, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "cnnimpute_missing"))
    args = parser.parse_args()
    rows = []
    for dataset in expand(args.datasets, args.data):
        for repeat in range(args.repeats):
            adata = load(dataset, args.data, repeat, args.sim_cells, args.max_genes)
            rows.append({"dataset": dataset, "repeat": repeat, **missing_shares(adata, repeat)})
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    frame.to_csv(out.with_suffix(".csv"), index=False)
    stats = frame.groupby("dataset", sort=False)[["hidden_missing", "zeros_missing",
                                                  "mse_floor"]].mean()
    lines = ["# cnnImpute: hidden entries above the dropout threshold", "",
             f"Command: `python benchmarks/cnnimpute_missing.py {' '.join(sys.argv[1:])}`",
             f"Machine: {machine()}", "",
             f"Protocol `{PROTOCOL}`; means over {args.repeats} repeats. `hidden imputed`: "
             "share of hidden non-zeros whose dropout probability exceeds T = 0.5 (only "
             "those are replaced); `zeros imputed`: the same over every zero; `MSE floor`: "
             "the part of the MSE at hidden entries that the entries below T contribute "
             "(they stay 0), common space.", "",
             "| dataset | hidden imputed | zeros imputed | MSE floor |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {row.hidden_missing:.3f} | {row.zeros_missing:.3f} | "
              f"{row.mse_floor:.4f} |" for name, row in stats.iterrows()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
