"""scfill.pl: every function returns its Axes/Figure on the Agg backend, saves, and names a
bad key; the numbers it draws are the data's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import scfill
from scfill import pl
from scfill.cli import main
from scfill.errors import InputError

#: MaskClass settings small enough for a test (the dropout model is what matters here).
FAST_MASKCLASS = {"epochs": 2, "hidden_dim": 16, "latent_dim": 8}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def simulated():
    """A small simulation imputed by MaskClass, truth layers kept beside the result."""
    adata = scfill.simulate(preset="maskclass-unequal", n_cells=150, n_genes=60, seed=0)
    scfill.impute(adata, "maskclass", seed=0, params=FAST_MASKCLASS)
    return adata


@pytest.fixture(scope="module")
def summary():
    rows = [{"dataset": d, "method": m, "protocol": p, "metric": metric,
             "mean": 1.0 + i, "std": 0.1, "count": 3}
            for i, (d, m) in enumerate([("a", "knn"), ("a", "maskclass"), ("b", "knn"),
                                        ("b", "maskclass")])
            for p in ("truth", "mask-nonzero:0.1")
            for metric in ("rmse", "pearson", "runtime_s", "peak_rss_mb")]
    return pd.DataFrame(rows)


def _figure_calls(adata, summary):
    """Each function with arguments that suit the fixtures."""
    return {
        "dropout_probability": lambda **kw: pl.dropout_probability(adata, **kw),
        "imputed_vs_observed": lambda **kw: pl.imputed_vs_observed(adata, **kw),
        "embedding": lambda **kw: pl.embedding(adata, basis="pca", color="group", **kw),
        "recovery": lambda **kw: pl.recovery(adata, **kw),
        "benchmark": lambda **kw: pl.benchmark(summary, protocol="truth", **kw),
    }


@pytest.mark.parametrize("name", ["dropout_probability", "imputed_vs_observed", "embedding",
                                  "recovery", "benchmark"])
def test_returns_axes_figure_and_saves(name, simulated, summary, tmp_path):
    draw = _figure_calls(simulated, summary)[name]
    axes = draw(show=False)
    first = axes if isinstance(axes, Axes) else axes[0]
    assert isinstance(first, Axes)
    assert all(isinstance(a, Axes) for a in np.atleast_1d(axes))
    fig = draw(show=False, return_fig=True)
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    assert draw(save=path, show=False) is not None
    assert path.stat().st_size > 1000
    # on Agg, the default neither shows nor returns None; show=True returns None
    assert draw() is not None
    assert draw(show=True) is None


def test_save_into_a_missing_folder_is_an_input_error(simulated, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        pl.recovery(simulated, save=tmp_path / "nope" / "r.png", show=False)


def test_dropout_histogram_counts_every_observed_zero(simulated):
    left, right = pl.dropout_probability(simulated, show=False)
    heights = sum(p.get_height() for p in left.patches)
    assert heights == simulated.n_obs * simulated.n_vars - simulated.X.nnz
    threshold = simulated.uns["scfill"]["dropout_threshold"]
    assert left.lines[0].get_xdata()[0] == threshold
    zeros = (simulated.n_obs - simulated.X.getnnz(axis=0))
    assert len(right.collections[0].get_offsets()) == int((zeros > 0).sum())


def test_dropout_probability_without_a_dropout_model(counts_adata):
    scfill.impute(counts_adata, "knn", seed=0)
    with pytest.raises(InputError, match="no dropout model"):
        pl.dropout_probability(counts_adata, show=False)


def test_recovery_counts_the_dropout_mask_and_scores_a_perfect_imputation(simulated):
    ax = pl.recovery(simulated, show=False)
    assert f"{simulated.layers['dropout'].nnz} entries" in ax.get_title()
    perfect = simulated.copy()
    from scfill.evaluate.space import reference_space

    truth, target = reference_space(perfect.layers["true_counts"])
    perfect.layers["imputed"] = truth
    perfect.uns["scfill"] = {**perfect.uns["scfill"],
                             "normalizer": {**perfect.uns["scfill"]["normalizer"],
                                            "target": target}}
    ax = pl.recovery(perfect, show=False)
    assert "Pearson r = 1.00" in ax.get_title()
    # without the mask layer the removed entries are truth > 0 and observed == 0
    del perfect.layers["dropout"]
    removed = int(((perfect.layers["true_counts"].toarray() > 0)
                   & (perfect.X.toarray() == 0)).sum())
    assert f"{removed} entries" in pl.recovery(perfect, show=False).get_title()


def test_recovery_draws_into_a_given_axes(simulated):
    _, ax = plt.subplots()
    assert pl.recovery(simulated, ax=ax, show=False) is ax


def test_imputed_vs_observed_panels_and_default_genes(simulated):
    axes = pl.imputed_vs_observed(simulated, genes=["Gene1", "Gene2", "Gene3"], ncols=2,
                                  show=False)
    assert [a.get_title() for a in axes] == ["Gene1", "Gene2", "Gene3"]
    chosen = pl.most_filled_genes(simulated, 4)
    assert [a.get_title() for a in pl.imputed_vs_observed(simulated, show=False)] == chosen
    imputed, observed = simulated.layers["imputed"], simulated.X
    col = simulated.var_names.get_loc(chosen[0])
    filled = ((imputed[:, col].toarray() != 0) & (observed[:, col].toarray() == 0)).sum()
    assert filled > 0


def test_embedding_one_panel_per_layer_and_subset(simulated):
    axes = pl.embedding(simulated, basis="pca", layers=("X", "imputed", "true_counts"),
                        max_cells=50, show=False)
    assert [a.get_title() for a in axes] == ["observed", "imputed (maskclass)", "true_counts"]
    assert all(len(a.collections[0].get_offsets()) == 50 for a in axes)


def test_embedding_umap(simulated):
    pytest.importorskip("umap")
    axes = pl.embedding(simulated, color="group", show=False)
    assert axes[0].get_xlabel() == "UMAP 1"


def test_embedding_without_umap_learn_names_the_extra(simulated, monkeypatch):
    from scfill.pl import _embedding

    monkeypatch.setattr(_embedding, "has_umap", lambda: False)
    with pytest.raises(InputError, match=r"scfill\[cluster\]"):
        pl.embedding(simulated, basis="umap", show=False)


@pytest.mark.parametrize("call, message", [
    (lambda a: pl.imputed_vs_observed(a, genes=["NOT_A_GENE"]), "NOT_A_GENE"),
    (lambda a: pl.embedding(a, basis="pca", color="no_such_column"), "no_such_column"),
    (lambda a: pl.embedding(a, basis="pca", layers=("X", "nope")), "'nope'"),
    (lambda a: pl.embedding(a, basis="diffmap"), "diffmap"),
    (lambda a: pl.recovery(a, truth_layer="missing_truth"), "missing_truth"),
    (lambda a: pl.dropout_probability(a, layer="probabilities"), "probabilities"),
])
def test_bad_key_is_an_input_error_naming_it(simulated, call, message):
    with pytest.raises(InputError, match=message):
        call(simulated)


def test_not_imputed_data_is_an_input_error(counts_adata):
    for call in (pl.dropout_probability, pl.imputed_vs_observed, pl.embedding, pl.recovery):
        with pytest.raises(InputError, match="scfill.impute"):
            call(counts_adata, show=False)


def test_benchmark_panels_pooling_and_errors(summary, tmp_path):
    axes = pl.benchmark(summary, protocol="mask-nonzero:0.1", show=False)
    assert [a.get_title() for a in axes] == ["rmse (lower is better)",
                                             "pearson (higher is better)"]
    # one bar per dataset x method, heights the summary's means
    heights = sorted(p.get_height() for p in axes[0].patches)
    assert heights == [1.0, 2.0, 3.0, 4.0]
    cost = pl.benchmark(summary, show=False)
    assert axes[0].get_yscale() == "linear" and cost[0].get_yscale() == "log"
    assert len(cost) == 2 and cost[0].get_title().startswith("method runtime")
    summary.to_csv(tmp_path / "summary.csv", index=False)
    assert len(pl.benchmark(tmp_path, protocol="truth", metrics=["rmse"], show=False)) == 1
    with pytest.raises(InputError, match="downstream"):
        pl.benchmark(summary, protocol="downstream")
    with pytest.raises(InputError, match="ari"):
        pl.benchmark(summary, protocol="truth", metrics=["ari"])
    with pytest.raises(InputError, match="summary.csv"):
        pl.benchmark(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="columns"):
        pl.benchmark(summary.drop(columns="std"))


def test_cli_impute_writes_the_plots(tmp_path, counts_adata, capsys):
    source = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(source)
    plots = tmp_path / "plots"
    args = ["-q", "impute", str(source), "-o", str(tmp_path / "out.h5ad"), "--method",
            "maskclass", "--param", "epochs=2", "--labels-key", "group", "--plots", str(plots)]
    assert main(args) == 0
    assert sorted(p.name for p in plots.iterdir()) == sorted(pl.IMPUTE_PLOTS.values())
    assert all(p.stat().st_size > 1000 for p in plots.iterdir())
    # existing figures are not overwritten without --force, and nothing is imputed
    (tmp_path / "out.h5ad").unlink()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert not (tmp_path / "out.h5ad").exists()
    assert main([*args, "--force"]) == 0


def test_cli_plots_of_a_method_without_dropout_model(tmp_path, counts_adata):
    source = tmp_path / "counts.h5ad"
    counts_adata.write_h5ad(source)
    plots = tmp_path / "plots"
    assert main(["-q", "impute", str(source), "-o", str(tmp_path / "out.h5ad"), "--method",
                 "knn", "--plots", str(plots)]) == 0
    assert sorted(p.name for p in plots.iterdir()) == ["embedding.png",
                                                       "imputed_vs_observed.png"]



def test_draw_embeddings_titles_and_numeric_colour():
    from scfill.pl._embedding import draw_embeddings

    xy = np.arange(20, dtype=float).reshape(10, 2)
    fig, panels = draw_embeddings({"a": xy, "b": xy}, pd.Series(np.arange(10.0), name="t"),
                                  title="overall")
    assert fig._suptitle.get_text() == "overall"
    assert [a.get_title() for a in panels] == ["a", "b"]
    assert any(a.get_label() == "<colorbar>" for a in fig.axes)
