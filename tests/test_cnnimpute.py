"""cnnImpute: gene selection, the masked loss, the network, fit/reconstruct and the pipeline."""

from __future__ import annotations

import dataclasses

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scfill
from conftest import prepared
from scfill.dropout import FixedDropout
from scfill.errors import InputError
from scfill.methods.base import PreparedData
from scfill.methods.cnnimpute import coexpression
from scfill.methods.cnnimpute.coexpression import (
    PAD,
    SubsetLayout,
    correlation_block,
    input_layout,
    split_size,
    target_and_pool,
    top_correlated,
)
from scfill.methods.cnnimpute.model import (
    CnnImpute,
    entry_slots,
    subset_matrices,
    subset_rows,
    target_slots,
)
from scfill.methods.cnnimpute.module import CoexpressionCNN, flat_length, masked_mse
from scfill.preprocess import LogNormalizer, library_size

#: Parameters that keep a fit to a fraction of a second (tiny subsets, one epoch).
FAST = {"subset_size": 8, "epochs": 1, "batch_size": 16, "epoch_steps": 1}


def _prepared(n_cells: int = 120, n_genes: int = 30, seed: int = 0,
              labels: bool = False) -> PreparedData:
    """Correlated counts (three latent programmes) with random probabilities at zeros."""
    rng = np.random.default_rng(seed)
    latent = rng.gamma(2.0, 1.0, (n_cells, 3))
    counts = rng.poisson(latent @ rng.gamma(1.0, 1.0, (3, n_genes))).astype(np.float32)
    prob = sp.csr_matrix(((counts == 0) * rng.uniform(0, 1, counts.shape)).astype(np.float32))
    groups = np.array(["a", "b"])[rng.integers(0, 2, n_cells)]
    adata = ad.AnnData(sp.csr_matrix(counts),
                       obs=pd.DataFrame({"group": pd.Categorical(groups)},
                                        index=[f"c{i}" for i in range(n_cells)]),
                       var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    return prepared(adata, labels_key="group" if labels else None, seed=seed, dropout=prob)


# -- gene selection ----------------------------------------------------------------------


def _correlated_genes(n_cells: int = 400) -> np.ndarray:
    """Gene 0 is a target; genes 1..5 follow it with rising noise (falling correlation);
    gene 6 is a perfect copy of gene 0; genes 7..9 are independent noise."""
    rng = np.random.default_rng(1)
    signal = rng.normal(size=n_cells)
    noise_sd = [0.1, 0.3, 0.6, 1.0, 2.0]
    follow = [signal + s * rng.normal(size=n_cells) for s in noise_sd]
    copy = signal.copy()
    other = [rng.normal(size=n_cells) for _ in range(3)]
    return np.column_stack([signal, *follow, copy, *other]) + 10.0


def test_correlation_block_matches_numpy_dense_and_sparse():
    values = _correlated_genes()
    expected = np.corrcoef(values.T)[[0, 6]][:, 1:]
    dense = correlation_block(values, np.array([0, 6]), np.arange(1, 10))
    sparse = correlation_block(sp.csr_matrix(values), np.array([0, 6]), np.arange(1, 10))
    np.testing.assert_allclose(dense, expected, atol=1e-4)
    np.testing.assert_allclose(sparse, expected, atol=1e-4)
    assert dense.dtype == np.float32


def test_cross_product_in_cell_blocks_equals_the_sparse_product():
    """The co-expression's XᵣᵀX꜀ and moments are summed over densified blocks of cells (a
    sparse product of mostly filled matrices does not finish at 100,000 cells): the same
    result whatever the block."""
    rng = np.random.default_rng(4)
    dense = np.where(rng.random((257, 30)) < 0.6, rng.poisson(3, (257, 30)), 0)
    values = sp.csr_matrix(dense.astype(np.float32))
    rows, cols = np.array([0, 3, 9]), np.arange(5, 30)
    expected = dense[:, rows].T @ dense[:, cols]
    for block_entries in (30, 1000, 1 << 24):  # one cell a block, several, all at once
        cross, (mean_r, _), (_, sd_c) = coexpression._cross_product(
            values, rows, cols, block_entries=block_entries)
        np.testing.assert_allclose(cross, expected, rtol=1e-6)
        np.testing.assert_allclose(mean_r, dense[:, rows].mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(sd_c, dense[:, cols].std(axis=0), rtol=1e-5)


def test_top_correlated_picks_known_inputs_in_order():
    values = _correlated_genes()
    pool = np.arange(1, 10)
    # gene 6 correlates perfectly with gene 0, so it is its best input ...
    np.testing.assert_array_equal(top_correlated(values, np.array([0]), pool, 3), [[6, 1, 2]])
    # ... unless it is in the same target subset: then the next ones by correlation
    top = top_correlated(values, np.array([0, 6]), pool, 3)
    np.testing.assert_array_equal(top[0], [1, 2, 3])


def test_top_correlated_skips_constant_genes_and_pads_a_small_pool():
    values = _correlated_genes()
    values[:, 3] = 7.0  # constant: no correlation is defined
    top = top_correlated(values, np.array([0]), np.array([2, 3, 4]), 5)
    np.testing.assert_array_equal(top, [[2, 4, PAD, PAD, PAD]])


def test_input_layout_removes_duplicates_and_keeps_the_length():
    top = np.array([[5, 6, 7], [6, 8, PAD], [7, 5, 9]])
    np.testing.assert_array_equal(input_layout(top, 9), [5, 6, 7, 8, 9, PAD, PAD, PAD, PAD])


def test_target_and_pool_follow_the_paper_rules():
    # 4 cells x 4 genes; gene 0 never missing, gene 1 missing in 1/4, gene 2 in 3/4,
    # gene 3 all-zero (not expressed)
    missing = sp.csr_matrix(np.array([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]],
                                     dtype=bool))
    expressed = np.array([True, True, True, False])
    targets, pool = target_and_pool(missing, expressed, 0.5)
    np.testing.assert_array_equal(targets, [1, 2])
    np.testing.assert_array_equal(pool, [0, 1])


def test_split_size_halves_targets_that_fit_in_one_subset():
    assert split_size(1000, 512, 2) == 512  # paper: subsets of N
    assert split_size(173, 512, 2) == 87  # one subset would leave no inputs: two halves
    assert split_size(3, 512, 2) == 2  # never below the network's minimum


def test_a_small_panel_still_gets_inputs():
    data = _prepared(n_genes=30)
    model = CnnImpute(subset_size=512, epochs=1, batch_size=16).fit(data)
    group = model.info_["groups"][0]
    assert group["subset_size"] == -(-group["targets"] // 2)
    assert len(group["models"]) == 2
    assert all(m["unique_inputs"] > 0 for m in group["models"])


# -- loss, padding, network --------------------------------------------------------------


def test_padding_and_missing_entries_are_masked_out_of_the_loss():
    values = sp.csr_matrix(np.arange(1, 25, dtype=np.float32).reshape(4, 6))
    missing = np.zeros((4, 6), dtype=bool)
    missing[0, 1] = True
    missing = sp.csr_matrix(missing)
    layout = SubsetLayout(targets=np.array([0, 1, PAD, PAD]),
                          inputs=np.array([2, 3, 4, PAD, PAD, PAD, PAD, PAD]))
    x, y, miss = subset_matrices(layout, values, missing)
    batch = subset_rows(x, y, miss, 4, torch.device("cpu"))[np.arange(4)]
    xb, yb, mb = batch["x"], batch["y"], batch["observed"]
    assert xb.shape == (4, 8) and torch.all(xb[:, 3:] == 0)  # inputs padded with zeros
    assert torch.all(yb[:, 2:] == PAD)  # targets padded with -1 (paper)
    assert not mb[:, 2:].any() and not mb[0, 1] and mb[1, 1]
    pred = yb.clone()
    pred[:, :2] += 1.0
    base = masked_mse(pred, yb, mb)
    assert base.item() == pytest.approx(1.0)
    pred[:, 2:] = 1e3  # anything at padding ...
    pred[0, 1] = -1e3  # ... or at a missing entry
    assert masked_mse(pred, yb, mb).item() == pytest.approx(1.0)


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_network_shapes_and_non_negative_output(head):
    net = CoexpressionCNN(40, 8, head=head).eval()
    out = net(torch.randn(5, 40))
    assert out.shape == (5, 8) and torch.all(out >= 0)


def test_flatten_length_of_the_paper_network():
    # 2560 → conv 2558 → pool 1279 → conv 1277 → pool 638
    assert flat_length(2560) == 638


# -- fit / reconstruct -------------------------------------------------------------------


def test_reconstruct_changes_only_missing_entries():
    data = _prepared()
    model = CnnImpute(**FAST).fit(data)
    recon = model.reconstruct(data)
    assert sp.issparse(recon) and recon.shape == data.counts.shape
    missing = (data.dropout.matrix() > 0.5).toarray() & (data.counts.toarray() == 0)
    predicted = recon.toarray() != 0
    assert predicted.any()
    assert not predicted[~missing].any()
    assert model.info_["groups"][0]["targets"] > 0


def test_predictions_fill_every_missing_entry_of_the_targets():
    """The prediction shares the missing entries' structure, and a model's predictions land
    at its own targets' entries (the slots)."""
    data = _prepared()
    model = CnnImpute(**FAST).fit(data)
    missing = data.dropout.above(0.5)
    prediction = model.prediction_
    np.testing.assert_array_equal(prediction.indptr, missing.indptr)
    np.testing.assert_array_equal(prediction.indices, missing.indices)
    assert np.count_nonzero(prediction.data) > 0.9 * missing.nnz  # ReLU may give exact 0s


def test_slots_address_the_entries_of_the_chosen_columns():
    missing = sp.random(40, 9, density=0.4, format="csr", random_state=1) > 0
    slots = entry_slots(missing)
    layout = SubsetLayout(targets=np.array([7, 2, 5, PAD]), inputs=np.zeros(8, np.int64))
    coo = target_slots(layout, slots).tocoo()
    coords = missing.tocoo()
    place = {(r, c): i for i, (r, c) in enumerate(zip(coords.row, coords.col, strict=True))}
    genes = np.array([7, 2, 5])[coo.col]
    assert coo.nnz == missing[:, [7, 2, 5]].nnz
    assert all(place[(r, g)] == s - 1 for r, g, s in zip(coo.row, genes, coo.data, strict=True))


@pytest.mark.parametrize("space", ["cpm", "log1p_counts"])
def test_predictions_return_to_the_common_space_through_counts(space):
    data = _prepared()
    model = CnnImpute(space=space, **FAST).fit(data)
    # a prediction of 3 counts at one missing entry, written in the work space
    row, col = np.argwhere((data.dropout.matrix() > 0.5).toarray())[0]
    work_lib = data.library_size[row] if space == "cpm" else 1.0
    target = 1e6 if space == "cpm" else 1.0
    model.prediction_ = sp.csr_matrix(([np.log1p(3 * target / work_lib)], ([row], [col])),
                                      shape=data.counts.shape, dtype=np.float32)
    expected = np.log1p(3 * data.normalizer.target / data.library_size[row])
    assert model.reconstruct(data)[row, col] == pytest.approx(expected, rel=1e-4)


def test_same_seed_same_result_other_seed_differs():
    first = CnnImpute(**FAST).fit(_prepared()).prediction_
    again = CnnImpute(**FAST).fit(_prepared()).prediction_
    other_data = _prepared()
    other_data.seed = 1
    other = CnnImpute(**FAST).fit(other_data).prediction_
    assert (first != again).nnz == 0
    assert (first != other).nnz > 0


def test_per_cluster_trains_within_each_group():
    """Each group's models see only that group's cells: changing the other group's counts
    leaves a group's predictions as they were (and changes them without per_cluster)."""
    data = _prepared(labels=True)
    model = CnnImpute(per_cluster=True, **FAST).fit(data)
    groups = model.info_["groups"]
    assert [g["group"] for g in groups] == ["a", "b"]
    assert [g["cells"] for g in groups] == np.bincount(data.labels).tolist()
    assert all(g["models"] for g in groups)

    in_a = data.labels == 0
    rng = np.random.default_rng(5)
    dense = data.counts.toarray()
    dense[~in_a] = rng.permutation(dense[~in_a].ravel()).reshape(dense[~in_a].shape)
    prob = np.where(in_a[:, None], data.dropout.matrix().toarray(),
                    (dense == 0) * rng.uniform(0, 1, dense.shape))
    counts = sp.csr_matrix(dense)  # group b scrambled, group a as it was
    lib = library_size(counts)
    other = dataclasses.replace(data, counts=counts, library_size=lib,
                                logcounts=data.normalizer.transform(counts, lib),
                                dropout=FixedDropout(prob))
    for changed in (False, True):
        first = CnnImpute(per_cluster=changed, **FAST).fit(data).prediction_
        second = CnnImpute(per_cluster=changed, **FAST).fit(other).prediction_
        same_a = (first[in_a] != second[in_a]).nnz == 0
        assert same_a == changed, f"per_cluster={changed}"


def test_per_cluster_without_labels_is_refused():
    with pytest.raises(InputError, match="per_cluster=True needs cell labels"):
        CnnImpute(per_cluster=True, **FAST).fit(_prepared())


def test_missing_dropout_probabilities_are_refused():
    data = _prepared()
    data.dropout = None
    with pytest.raises(InputError, match="needs dropout probabilities"):
        CnnImpute(**FAST).fit(data)


def test_reconstruct_refuses_other_data():
    model = CnnImpute(**FAST).fit(_prepared())
    with pytest.raises(InputError, match="transductive"):
        model.reconstruct(_prepared(n_cells=100))


@pytest.mark.parametrize(("params", "message"), [
    ({"threshold": 1.5}, "threshold=1.5 is out of range"),
    ({"pool_fraction": -0.1}, "pool_fraction=-0.1 is out of range"),
    ({"subset_size": 0}, "subset_size=0 is out of range"),
    ({"subset_size": 1, "inputs_per_target": 5}, "5 inputs is too short"),
    ({"inputs_per_target": 2.5}, "inputs_per_target=2.5 must be an integer"),
    ({"head": "dense"}, "head='dense' is not allowed"),
    ({"space": "log2"}, "space='log2' is not allowed"),
    ({"per_cluster": "yes"}, "per_cluster='yes' is not allowed"),
    ({"dropout": 1.0}, "dropout=1 would drop every feature"),
    ({"learning_rate": 0}, "learning_rate=0 is out of range"),
    ({"batch_size": 1}, "batch_size=1 is out of range"),
    ({"epochs": 0}, "epochs=0 is out of range"),
    ({"patience": 0}, "patience=0 is out of range"),
    ({"validation_fraction": 0.0}, "validation_fraction=0.0 is out of range"),
])
def test_bad_parameters_raise_clear_errors(params, message):
    with pytest.raises(InputError, match=message):
        CnnImpute(**params).check_params()


# -- through the pipeline ----------------------------------------------------------------


def test_impute_changes_only_high_probability_zeros(counts_adata):
    scfill.impute(counts_adata, method="cnnimpute", labels_key="group", seed=0,
                  device="cpu", params=FAST)
    observed = LogNormalizer.median(library_size(sp.csr_matrix(counts_adata.X))).transform(
        sp.csr_matrix(counts_adata.X), library_size(sp.csr_matrix(counts_adata.X))).toarray()
    imputed = counts_adata.layers["imputed"].toarray()
    prob = counts_adata.layers["dropout_probability"].toarray()
    changed = ~np.isclose(imputed, observed)
    assert changed.any()
    assert not changed[(prob <= 0.5) | (observed > 0)].any()
    assert counts_adata.uns["scfill"]["dropout_threshold"] == 0.5
    assert counts_adata.uns["scfill"]["params"]["head"] == "flatten"


# -- epochs of at least epoch_steps steps ------------------------------------------------


def test_steps_loader_passes_until_an_epoch_has_enough_steps():
    from scfill.methods.cnnimpute.loader import StepsLoader
    from scfill.nn import RowDataset

    rows = RowDataset({"x": np.arange(50, dtype=np.float32)[:, None]})
    loader = StepsLoader(rows, 16, shuffle=True, rng=0, rows=np.arange(45), min_batch=2,
                         min_steps=7)
    # 45 rows at 16 a batch: 3 batches a pass, so 3 passes reach 7 steps
    assert loader.passes == 3 and len(loader) == 9
    epoch = [batch["x"][:, 0].numpy() for batch in loader]
    assert len(epoch) == 9
    for p in range(3):  # each pass sees every training row once, in its own order
        seen = np.concatenate(epoch[3 * p:3 * p + 3])
        np.testing.assert_array_equal(np.sort(seen), np.arange(45))
    assert not np.array_equal(np.concatenate(epoch[:3]), np.concatenate(epoch[3:6]))
    assert StepsLoader(rows, 16, rows=np.arange(45), min_steps=1).passes == 1
    assert StepsLoader(rows, 16, rows=np.arange(45), min_steps=3).passes == 1


def test_epoch_steps_sets_the_passes_an_epoch_trains():
    data = _prepared()
    one = CnnImpute(**FAST).fit(data)
    more = CnnImpute(**{**FAST, "epoch_steps": 20}).fit(data)
    assert one.info_["settings"]["epoch_steps"] == 1
    assert more.info_["settings"]["epoch_steps"] == 20
    assert (one.prediction_ != more.prediction_).nnz > 0  # more training, other weights
