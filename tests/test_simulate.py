"""The Splatter-model simulator: statistics of each model step, ground truth, presets, errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from scfill.cli import main
from scfill.errors import InputError
from scfill.simulate import (
    PRESETS,
    SplatParams,
    brownian_bridges,
    gene_means,
    lognormal_factors,
    simulate,
)


def test_library_sizes_follow_the_lognormal():
    adata = simulate(n_cells=20_000, n_genes=5, lib_loc=10.0, lib_scale=0.3, seed=1)
    log_lib = np.log(adata.obs["library_size"].to_numpy())
    assert abs(log_lib.mean() - 10.0) < 0.01
    assert abs(log_lib.std() - 0.3) < 0.01
    assert stats.kstest(log_lib, stats.norm(10.0, 0.3).cdf).pvalue > 1e-3


def test_counts_add_up_to_the_drawn_library_size():
    # Base means sum to the library size; Gamma and Poisson keep the mean.
    adata = simulate(n_cells=2_000, n_genes=200, lib_loc=8.0, seed=2)
    realised = np.asarray(adata.layers["true_counts"].sum(axis=1)).ravel()
    ratio = realised / adata.obs["library_size"].to_numpy()
    assert abs(ratio.mean() - 1.0) < 0.02


def test_normal_library_sizes():
    adata = simulate(n_cells=5_000, n_genes=5, lib_norm=True, lib_loc=1000.0, lib_scale=100.0)
    lib = adata.obs["library_size"].to_numpy()
    assert abs(lib.mean() - 1000.0) < 10 and abs(lib.std() - 100.0) < 5


def test_gene_means_follow_the_gamma():
    base, outlier, mean = gene_means(np.random.default_rng(0), 200_000, out_prob=0.0)
    shape, _, scale = stats.gamma.fit(base, floc=0)
    assert shape == pytest.approx(0.6, rel=0.03)
    assert 1.0 / scale == pytest.approx(0.3, rel=0.03)
    assert np.all(outlier == 1.0) and np.array_equal(base, mean)


def test_outlier_genes_are_median_times_a_lognormal_factor():
    base, outlier, mean = gene_means(np.random.default_rng(1), 100_000)
    is_outlier = outlier != 1.0
    assert is_outlier.mean() == pytest.approx(0.05, abs=0.003)
    np.testing.assert_allclose(mean[is_outlier], np.median(base) * outlier[is_outlier])
    log_factor = np.log(outlier[is_outlier])
    assert log_factor.mean() == pytest.approx(4.0, abs=0.03)
    assert log_factor.std() == pytest.approx(0.5, abs=0.03)


def test_lognormal_factors_select_direct_and_scale():
    factors = lognormal_factors(np.random.default_rng(3), 200_000, 0.3, 0.2, 0.1, 0.4)
    chosen = factors[factors != 1.0]
    assert chosen.size / factors.size == pytest.approx(0.3, abs=0.005)
    # After the flip of factors below 1, a factor is down exactly when its direction is -1.
    assert (chosen < 1).mean() == pytest.approx(0.2, abs=0.005)
    folded = stats.foldnorm(0.1 / 0.4, scale=0.4)
    assert stats.kstest(np.abs(np.log(chosen)), folded.cdf).pvalue > 1e-3


def test_fraction_of_de_genes_per_group_matches_de_prob():
    de_prob = (0.05, 0.1, 0.2, 0.4)
    adata = simulate(n_cells=8, n_genes=20_000, group_prob=(0.25,) * 4, de_prob=de_prob,
                     de_down_prob=0.3, seed=4)
    for g, p in enumerate(de_prob, start=1):
        factor = adata.var[f"de_factor_group{g}"].to_numpy()
        de = factor != 1.0
        assert de.mean() == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / factor.size))
        assert (factor[de] < 1).mean() == pytest.approx(0.3, abs=0.05)


def test_group_expression_follows_the_de_factors():
    adata = simulate(n_cells=3_000, n_genes=300, group_prob=(0.5, 0.5), de_prob=0.5,
                     de_fac_loc=1.0, lib_scale=0.0, seed=5)
    true = adata.layers["true_counts"].toarray().astype(float)
    group = adata.obs["group"].to_numpy()
    mean1, mean2 = true[group == "Group1"].mean(0), true[group == "Group2"].mean(0)
    expressed = (mean1 > 5) & (mean2 > 5)
    observed = np.log(mean2[expressed] / mean1[expressed])
    expected = np.log(adata.var["de_factor_group2"] / adata.var["de_factor_group1"])[expressed]
    # Normalising each cell to its library size shifts all genes by one constant.
    assert np.corrcoef(observed, expected)[0, 1] > 0.95


def test_bcv_gives_the_set_overdispersion():
    # Fixed library sizes, no χ² factor: Var = μ + BCV²μ² with BCV = bcv_common + 1/√μ.
    adata = simulate(n_cells=4_000, n_genes=100, lib_scale=0.0, lib_loc=9.0, bcv_df=np.inf,
                     out_prob=0.0, seed=6)
    true = adata.layers["true_counts"].toarray().astype(float)
    mu = adata.var["gene_mean"].to_numpy() / adata.var["gene_mean"].sum() * np.exp(9.0)
    top = np.argsort(mu)[-20:]
    bcv2 = (true[:, top].var(0) - mu[top]) / mu[top] ** 2
    expected = (0.1 + 1 / np.sqrt(mu[top])) ** 2
    assert np.median(bcv2 / expected) == pytest.approx(1.0, abs=0.1)


def test_dropout_only_zeroes_true_counts():
    adata = simulate(n_cells=300, n_genes=200, group_prob=(0.5, 0.5), dropout_type="cell",
                     dropout_mid=tuple(np.linspace(0, 4, 300)), seed=7)
    x, true = adata.X.toarray(), adata.layers["true_counts"].toarray()
    dropped = adata.layers["dropout"].toarray()
    assert np.all(x <= true)
    assert np.array_equal(x[~dropped], true[~dropped])
    assert np.all(x[dropped] == 0) and np.all(true[dropped] > 0)
    assert dropped.sum() == np.count_nonzero(true) - np.count_nonzero(x)
    assert x.dtype == np.int32 and sp.isspmatrix_csr(adata.X)


def test_zero_fraction_rises_with_dropout_mid():
    runs = [simulate(n_cells=200, n_genes=200, dropout_type="experiment", dropout_mid=mid,
                     seed=8) for mid in (-1.0, 1.0, 3.0, 5.0)]
    zeros = [a.uns["simulation"]["zero_fraction_observed"] for a in runs]
    assert np.all(np.diff(zeros) > 0.02)
    # The truth does not depend on the dropout settings.
    for a in runs[1:]:
        assert (a.layers["true_counts"] != runs[0].layers["true_counts"]).nnz == 0


def test_dropout_probability_per_group_follows_the_logistic():
    # Shape 0 gives p = 1/2 everywhere; shape -1 with mid -50 gives p ≈ 0.
    adata = simulate(n_cells=400, n_genes=200, group_prob=(0.5, 0.5), dropout_type="group",
                     dropout_mid=(0.0, -50.0), dropout_shape=(0.0, -1.0), seed=9)
    true, dropped = adata.layers["true_counts"], adata.layers["dropout"]
    for name, rate in (("Group1", 0.5), ("Group2", 0.0)):
        cells = (adata.obs["group"] == name).to_numpy()
        assert dropped[cells].nnz / true[cells].nnz == pytest.approx(rate, abs=0.01)


def test_batch_dropout_and_batch_effects():
    adata = simulate(n_cells=300, n_genes=100, batch_cells=(100, 200), dropout_type="batch",
                     dropout_mid=(0.0, -50.0), dropout_shape=(0.0, -1.0))
    assert list(adata.obs["batch"].value_counts().sort_index()) == [100, 200]
    assert np.all(adata.var["batch_factor_batch1"] != 1.0)
    b2 = (adata.obs["batch"] == "Batch2").to_numpy()
    assert adata.layers["dropout"][b2].nnz == 0 and adata.layers["dropout"][~b2].nnz > 0
    removed = simulate(n_cells=300, n_genes=100, batch_cells=(100, 200),
                       batch_rm_effect=True)
    assert np.all(removed.var["batch_factor_batch2"] == 1.0)


def test_same_seed_same_matrices_different_seed_different():
    kwargs = {"n_cells": 150, "n_genes": 80, "group_prob": (0.3, 0.7),
              "dropout_type": "experiment", "dropout_mid": 2.0}
    a, b, c = simulate(seed=3, **kwargs), simulate(seed=3, **kwargs), simulate(seed=4, **kwargs)
    for layer in ("true_counts", "dropout"):
        assert (a.layers[layer] != b.layers[layer]).nnz == 0
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs) and a.var.equals(b.var)
    assert (a.X != c.X).nnz > 0


def test_paths_place_cells_on_steps_with_the_skew():
    end = simulate(n_cells=2_000, n_genes=50, method="paths", group_prob=(0.5, 0.5),
                   path_from=(0, 1), path_skew=0.0, path_n_steps=50, seed=1)
    assert set(end.obs["group"].unique()) == {"Path1", "Path2"}
    steps = end.obs["step"].to_numpy()
    assert steps.min() >= 1 and steps.max() <= 50
    # Skew 0: step probabilities rise linearly, mean step ≈ (2n + 1) / 3 of n steps.
    assert steps.mean() == pytest.approx((2 * 50 + 1) / 3, abs=1.0)
    uniform = simulate(n_cells=2_000, n_genes=50, method="paths", path_n_steps=50, seed=1)
    assert uniform.obs["step"].mean() == pytest.approx(25.5, abs=1.0)


def test_brownian_bridges_are_pinned_and_linear_without_noise():
    rng = np.random.default_rng(0)
    start, end = rng.lognormal(size=500), rng.lognormal(size=500)
    sigma = np.where(np.arange(500) < 250, 0.8, 0.0)
    path = brownian_bridges(rng, start, end, sigma, 100)
    assert path.shape == (100, 500) and np.all(path > 0)
    np.testing.assert_allclose(path[0], start)
    np.testing.assert_allclose(path[-1], end)
    np.testing.assert_allclose(path[:, 250:], np.linspace(start, end, 100)[:, 250:])
    assert np.abs(path[:, :250] - np.linspace(start, end, 100)[:, :250]).max() > 0.05


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_land_in_their_documented_zero_ranges(name):
    preset = PRESETS[name]
    adata = simulate(preset=name, n_cells=120, seed=0)
    info = adata.uns["simulation"]
    assert info["preset"] == name
    low, high = preset.true_zeros
    assert low <= info["zero_fraction_true"] <= high
    low, high = preset.observed_zeros
    assert low <= info["zero_fraction_observed"] <= high


@pytest.mark.parametrize("name", [n for n in sorted(PRESETS) if n.startswith("maskclass")])
def test_maskclass_presets_zero_rate_follows_the_drawn_dropout(name):
    """The MaskClass presets' wide observed-zero window (0.40–0.90) comes from the drawn
    dropout parameters: each seed draws one midpoint and shape per unit from the paper's
    U[1, 5] and U[-1.5, -0.5], and across seeds the observed-zero rate ranks as the
    cell-weighted mean drawn midpoint (a later midpoint drops more). A simulator that
    ignored the draws, or drew outside the ranges, fails here though it may stay inside
    the window."""
    from scipy.stats import spearmanr

    from scfill.simulate.presets import MASKCLASS_MID, MASKCLASS_SHAPE

    zeros, mids = [], []
    for seed in range(6):
        info = simulate(preset=name, n_cells=120, seed=seed).uns["simulation"]
        mid, shape = (np.asarray(info["params"][k]) for k in ("dropout_mid", "dropout_shape"))
        share = np.asarray(PRESETS[name].params["batch_cells"] if name.endswith("batch")
                           else PRESETS[name].params["group_prob"], dtype=float)
        share /= share.sum()  # the cells each unit's parameters apply to
        assert mid.shape == shape.shape == share.shape
        assert np.all((MASKCLASS_MID[0] <= mid) & (mid <= MASKCLASS_MID[1]))
        assert np.all((MASKCLASS_SHAPE[0] <= shape) & (shape <= MASKCLASS_SHAPE[1]))
        zeros.append(info["zero_fraction_observed"])
        mids.append(float(share @ mid))
    assert spearmanr(zeros, mids).statistic > 0.9
    assert max(zeros) - min(zeros) > 0.1  # the draws move the rate


def test_maskclass_batch_preset_scales_batches_and_draws_dropout_per_batch():
    adata = simulate(preset="maskclass-batch", n_cells=300, seed=5)
    params = adata.uns["simulation"]["params"]
    assert params["batch_cells"] == [100, 100, 100]
    assert len(params["dropout_mid"]) == 3
    assert all(1 <= m <= 5 for m in params["dropout_mid"])
    assert all(-1.5 <= s <= -0.5 for s in params["dropout_shape"])
    other = simulate(preset="maskclass-batch", n_cells=300, seed=6)
    assert other.uns["simulation"]["params"]["dropout_mid"] != params["dropout_mid"]


def test_uns_parameters_reproduce_the_simulation(tmp_path):
    adata = simulate(preset="maskclass-rare", n_cells=100, n_genes=60, seed=2)
    path = tmp_path / "sim.h5ad"
    adata.write_h5ad(path)
    params = dict(ad.read_h5ad(path).uns["simulation"]["params"])
    again = simulate(seed=2, **params)
    assert (again.X != adata.X).nnz == 0


def test_params_dataclass_defaults_are_splatters():
    p = SplatParams()
    assert (p.n_genes, p.n_cells, p.mean_shape, p.mean_rate, p.lib_loc) == (10000, 100, 0.6,
                                                                           0.3, 11.0)
    assert (p.de_prob, p.de_down_prob, p.de_fac_loc, p.de_fac_scale) == (0.1, 0.5, 0.1, 0.4)
    assert (p.bcv_common, p.bcv_df, p.dropout_mid, p.dropout_shape) == (0.1, 60.0, 0.0, -1.0)
    assert p.resolved_method == "single"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"group_prob": (0.5, 0.3)}, "group_prob [0.5, 0.3] sums to 0.8, not 1"),
    ({"n_cells": -5}, "n_cells=-5 is out of range"),
    ({"n_genes": 0}, "n_genes=0 is out of range"),
    ({"batch_cells": (10, -1)}, "batch_cells=-1 is out of range"),
    ({"dropout_type": "gene"}, "dropout_type='gene' is not allowed"),
    ({"dropout_type": "group", "group_prob": (0.5, 0.5), "dropout_mid": (1.0, 2.0, 3.0)},
     "needs one dropout_mid value or one per group (2 groups), got 3"),
    ({"dropout_type": "cell", "n_cells": 10, "dropout_shape": (-1.0, -2.0)},
     "one per cell (10 cells), got 2"),
    ({"de_prob": 1.5}, "de_prob=[1.5] is out of range"),
    ({"group_prob": (0.5, 0.5), "de_prob": (0.1, 0.2, 0.3)},
     "de_prob has 3 values but there are 2 group(s)"),
    ({"mean_shape": 0.0}, "mean_shape=0.0 is out of range"),
    ({"method": "tree"}, "method='tree' is not allowed"),
    ({"method": "paths", "group_prob": (0.5, 0.5), "path_from": (2, 1)}, "has a cycle"),
    ({"method": "paths", "group_prob": (0.5, 0.5), "path_from": (0, 2)},
     "path 2 starts from itself"),
    ({"n_cells": 10, "batch_cells": (5, 6)}, "batch_cells [5, 6] add up to 11, not n_cells=10"),
    ({"preset": "splat-huge"}, "unknown preset 'splat-huge'"),
    ({"dropout_rate": 0.3}, "unknown parameter(s) dropout_rate"),
    ({"seed": -1}, "seed=-1 is out of range"),
    ({"lib_norm": "yes"}, "lib_norm='yes' must be True or False"),
])
def test_bad_parameters_raise_input_error(kwargs, message):
    with pytest.raises(InputError) as err:
        simulate(**kwargs)
    assert message in str(err.value)
    assert err.value.fix


def test_cli_writes_a_simulation(tmp_path, capsys):
    out = tmp_path / "sim.h5ad"
    args = ["simulate", "-o", str(out), "--preset", "scgacl-3", "--cells", "50", "--genes",
            "100", "--seed", "1"]
    assert main(args) == 0
    adata = ad.read_h5ad(out)
    assert adata.shape == (50, 100)
    assert adata.uns["simulation"]["preset"] == "scgacl-3"
    assert set(adata.layers) == {"true_counts", "dropout"}
    assert main(args) == 2
    assert "output already exists" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0


def test_cli_passes_groups_batches_and_dropout(tmp_path):
    out = tmp_path / "sim.h5ad"
    assert main(["simulate", "-o", str(out), "--genes", "30", "--groups", "0.5,0.5",
                 "--batches", "20,30", "--dropout-type", "batch", "--dropout-mid", "1,2",
                 "--dropout-shape", "-1", "--de-prob", "0.2"]) == 0
    params = ad.read_h5ad(out).uns["simulation"]["params"]
    assert list(params["batch_cells"]) == [20, 30]
    assert list(params["group_prob"]) == [0.5, 0.5] and params["de_prob"] == [0.2]
    assert list(params["dropout_mid"]) == [1.0, 2.0]


def test_cli_bad_parameters_exit_2(tmp_path, capsys):
    out = tmp_path / "sim.h5ad"
    assert main(["simulate", "-o", str(out), "--groups", "0.5,0.3"]) == 2
    assert "sums to 0.8, not 1" in capsys.readouterr().err
    assert main(["simulate", "-o", str(out), "--batches", "10.5,3"]) == 2
    assert main(["simulate", "-o", str(out), "--preset", "nope"]) == 2
    assert not out.exists()
