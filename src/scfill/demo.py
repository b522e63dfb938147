"""``scfill demo``: the main job end to end on an embedded default.

Simulates a small Splatter dataset with known dropouts, imputes it with the default method,
scores it against the ground truth beside "no imputation", and writes the imputed h5ad, a
short markdown report and a figure into one folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from scfill._logging import logger
from scfill.errors import InputError

#: The simulator preset the demo draws from (MaskClass's three unequal groups).
DEMO_PRESET = "maskclass-unequal"


def run_demo(
    out: str | Path,
    *,
    method: str | None = None,
    n_cells: int = 1000,
    n_genes: int = 500,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Run the demo; return the path of its report.

    Parameters
    ----------
    out
        Folder to create (refused when it exists, unless ``force``).
    method
        Method to demonstrate (default :data:`scfill.pipeline.DEFAULT_METHOD`).
    n_cells, n_genes
        Size of the simulated dataset.
    seed
        Seed of the simulation and of the method.
    force
        Replace an existing folder.
    """
    import scfill
    from scfill.evaluate.run import evaluate_method, summarize
    from scfill.pipeline import DEFAULT_METHOD

    method = method or DEFAULT_METHOD
    out = Path(out)
    if out.exists():
        if not force:
            raise InputError("demo folder already exists.", fix="pass --force or --out DIR.",
                             source=str(out))
        shutil.rmtree(out)
    out.mkdir(parents=True)

    logger.info("simulating %d cells x %d genes (preset %s)", n_cells, n_genes, DEMO_PRESET)
    sim = scfill.simulate(preset=DEMO_PRESET, n_cells=n_cells, n_genes=n_genes, seed=seed)
    scfill.write(sim, out / "simulated.h5ad")

    baseline = evaluate_method(sim, "none", protocol="truth", seed=seed, dataset="demo")
    # the method is fitted once: its evaluation's result is the imputed output
    scored, imputed = evaluate_method(sim, method, protocol="truth", seed=seed,
                                      dataset="demo", device="auto", return_imputed=True)
    import pandas as pd

    scores = pd.concat([baseline, scored], ignore_index=True)
    summarize(scores).to_csv(out / "scores.csv", index=False)
    table = _headline(scores, method)

    observed = _with_result(sim, imputed)
    scfill.write(observed, out / "imputed.h5ad")
    figure = _figure(sim, observed, out / "dropout_recovery.png")
    report = out / "report.md"
    report.write_text(_report(sim, observed, table, method, figure))
    return report


def _with_result(sim, imputed):
    """The simulation's observed counts (with its obs, var and uns) and the method's output.

    The truth protocol shows the method every cell and gene in order
    (:func:`scfill.evaluate.masking.degrade`), so the layers line up.
    """
    observed = sim.copy()
    del observed.layers["true_counts"], observed.layers["dropout"]
    observed.layers.update(imputed.layers)
    for column in imputed.obs.columns:
        observed.obs[column] = imputed.obs[column].to_numpy()
    observed.uns["scfill"] = imputed.uns["scfill"]
    return observed


#: Metrics of the report's table: (column in the scores, heading).
HEADLINE_METRICS = {
    "mse": "MSE",
    "dropout_mse": "dropout MSE",
    "biozero_mse": "biozero MSE",
    "pearson": "Pearson",
    "ari": "ARI (k-means)",
    "runtime_s": "runtime (s)",
}


def _headline(scores, method: str):
    """One row per method with the headline metrics, and the MSE ratio to no imputation."""
    wide = scores[scores["metric"].isin(HEADLINE_METRICS)].pivot_table(
        index="method", columns="metric", values="value")
    wide = wide.reindex(index=["none", method], columns=list(HEADLINE_METRICS))
    wide["MSE / no imputation"] = wide["mse"] / wide.loc["none", "mse"]
    return wide.rename(columns=HEADLINE_METRICS).reset_index()


def _figure(sim, imputed, path: Path) -> Path:
    """True vs imputed expression at the entries dropout removed (:func:`scfill.pl.recovery`).

    The truth joins the imputed AnnData only after it has been written.
    """
    import matplotlib.pyplot as plt

    from scfill import pl

    imputed.layers["true_counts"] = sim.layers["true_counts"]
    imputed.layers["dropout"] = sim.layers["dropout"]
    plt.close(pl.recovery(imputed, save=path, show=False, return_fig=True))
    return path


def _report(sim, imputed, table, method: str, figure: Path) -> str:
    info = imputed.uns["scfill"]
    zeros_obs = 1 - sim.X.nnz / np.prod(sim.shape)
    zeros_true = 1 - sim.layers["true_counts"].nnz / np.prod(sim.shape)
    lines = [
        "# scfill demo",
        "",
        f"Simulated {sim.n_obs} cells x {sim.n_vars} genes (Splatter model, preset "
        f"`{DEMO_PRESET}`): {zeros_true:.0%} zeros in the true counts, {zeros_obs:.0%} "
        "observed after dropout.",
        f"Imputed with `{method}` in {info['runtime_s']:.1f} s on {info['device']} "
        f"(scfill {info['version']}, seed {info['seed']}).",
        "",
        "## Error against the ground truth (log-normalised space)",
        "",
        table.to_markdown(index=False, floatfmt=".4g"),
        "",
        f"![true vs imputed]({figure.name})",
        "",
        "Files: `simulated.h5ad` (observed counts with `true_counts`), `imputed.h5ad` "
        "(layer `imputed`, `uns['scfill']`), `scores.csv` (every metric of "
        "`scfill.evaluate`'s truth protocol).",
        "",
    ]
    return "\n".join(lines)
