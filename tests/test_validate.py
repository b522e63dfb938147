"""Each bad input gets an error that names the problem and the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

import scfill
from scfill.errors import InputError


def _impute(adata, **kwargs):
    return scfill.impute(adata, "knn", copy=True, **kwargs)


def test_nan(counts_adata):
    counts_adata.X = counts_adata.X.toarray()
    counts_adata.X[0, 0] = np.nan
    with pytest.raises(InputError, match="1 value.*NaN or infinite.*Fix: replace missing"):
        _impute(counts_adata)


def test_inf(counts_adata):
    counts_adata.X.data[0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        _impute(counts_adata)


def test_negative(counts_adata):
    counts_adata.X.data[:3] = -1
    with pytest.raises(InputError, match="3 value.*negative.*give raw counts"):
        _impute(counts_adata)


def test_non_integer_log_like(counts_adata):
    counts_adata.X.data = np.log1p(counts_adata.X.data) + 0.01
    with pytest.raises(InputError, match="not whole numbers.*look log-normalised"):
        _impute(counts_adata)


def test_non_integer_large(counts_adata):
    counts_adata.X.data = counts_adata.X.data * 100.5
    with pytest.raises(InputError, match="not whole numbers but counts") as err:
        _impute(counts_adata)
    assert "log-normalised" not in str(err.value)


def test_empty_matrix(counts_adata):
    with pytest.raises(InputError, match="matrix is empty \\(0 cells"):
        _impute(counts_adata[:0].copy())


def test_all_zero_matrix(counts_adata):
    counts_adata.X = sp.csr_matrix(counts_adata.shape, dtype=np.float32)
    with pytest.raises(InputError, match="every value is zero"):
        _impute(counts_adata)


def test_duplicate_cells(counts_adata):
    names = list(counts_adata.obs_names)
    names[1] = names[0]
    counts_adata.obs_names = names
    with pytest.raises(InputError, match="1 duplicate cell name.*'cell0'.*obs_names_make_unique"):
        _impute(counts_adata)


def test_duplicate_genes(counts_adata):
    names = list(counts_adata.var_names)
    names[2] = names[3] = "ACTB"
    counts_adata.var_names = names
    with pytest.raises(InputError, match="duplicate gene name.*'ACTB'"):
        _impute(counts_adata)


def test_labels_key_missing(counts_adata):
    with pytest.raises(InputError, match="label column 'celltype' not found.*group"):
        _impute(counts_adata, labels_key="celltype")


def test_labels_with_missing_values(counts_adata):
    counts_adata.obs["celltype"] = counts_adata.obs["group"].astype(object)
    counts_adata.obs.iloc[[0, 5], -1] = None
    with pytest.raises(InputError, match="2 missing value.*fill them"):
        _impute(counts_adata, labels_key="celltype")


def test_too_few_cells(counts_adata):
    with pytest.raises(InputError, match="needs at least 3 cells.*has 2 cells"):
        _impute(counts_adata[:2].copy())


def test_parameter_out_of_range(counts_adata):
    with pytest.raises(InputError, match="k=0 is out of range.*>= 1"):
        _impute(counts_adata, params={"k": 0})


def test_parameter_wrong_type(counts_adata):
    with pytest.raises(InputError, match="k='ten' must be an integer"):
        _impute(counts_adata, params={"k": "ten"})


def test_unknown_parameter(counts_adata):
    with pytest.raises(InputError, match="bad parameters for method 'knn'"):
        _impute(counts_adata, params={"epochs": 3})


def test_unknown_method(counts_adata):
    with pytest.raises(InputError, match="unknown method 'magicc'.*knn"):
        scfill.impute(counts_adata, "magicc")


def test_unknown_device(counts_adata):
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        _impute(counts_adata, device="tpu")


@pytest.mark.parametrize(("layer", "key_added", "counts_layer"), [
    ("counts", "counts", False),
    ("dropout_probability", "imputed", False),
    ("imputed_counts", "imputed", True),
])
def test_output_layer_never_replaces_the_input(counts_adata, layer, key_added, counts_layer):
    """key_added equal to the input layer overwrote the user's counts (issue 18, defect 4)."""
    counts_adata.layers[layer] = counts_adata.X.copy()
    before = counts_adata.layers[layer].copy()
    with pytest.raises(InputError, match=f"would replace the input layer '{layer}'"):
        scfill.impute(counts_adata, "knn", layer=layer, key_added=key_added,
                      counts_layer=counts_layer)
    assert (counts_adata.layers[layer] != before).nnz == 0


@pytest.mark.parametrize("n_top_genes", [0, -5, 2.5, "10"])
def test_n_top_genes_checked(counts_adata, n_top_genes):
    """0 used to impute every gene, a negative number to drop genes (defect 5)."""
    with pytest.raises(InputError, match=re.escape(f"n_top_genes={n_top_genes!r}")):
        _impute(counts_adata, n_top_genes=n_top_genes)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, 1e20, "0", True])
def test_seed_checked(counts_adata, seed):
    """Seeds outside what numpy accepts, or not whole numbers (defects 11 and 13)."""
    with pytest.raises(InputError, match=re.escape(f"seed={seed!r} is not a whole number")):
        _impute(counts_adata, seed=seed)


def test_largest_seed_accepted(counts_adata):
    _impute(counts_adata, seed=2**32 - 1)


def test_missing_layer_is_an_input_error(counts_adata):
    """layer='nope' was a raw KeyError (defect 13)."""
    with pytest.raises(InputError, match="layer 'nope' not found \\(layers: none\\)"):
        _impute(counts_adata, layer="nope")


def test_numpy_integer_parameter_accepted(counts_adata):
    """params={'k': np.int64(5)} was refused as not an integer (defect 13)."""
    out = _impute(counts_adata, params={"k": np.int64(5)})
    assert out.uns["scfill"]["params"]["k"] == 5


@pytest.mark.parametrize("value", [float("nan"), float("inf"), np.float64("nan")])
def test_non_finite_parameter_refused(value):
    """NaN passed every range check (defect 7)."""
    from scfill.utils import check_number

    with pytest.raises(InputError, match="is not a finite number"):
        check_number("p", value, low=0, high=1)
    with pytest.raises(InputError, match="is not a finite number"):
        check_number("lr", value, low=0, low_open=True)


def test_labels_one_cell_per_group_refused(counts_adata):
    """Cell ids as labels left cnnImpute nothing to impute, silently (defect 2)."""
    counts_adata.obs["barcode"] = counts_adata.obs_names
    with pytest.raises(InputError, match="120 distinct values for 120 cells.*identifier"):
        _impute(counts_adata, labels_key="barcode")


def test_continuous_labels_refused(counts_adata):
    counts_adata.obs["score"] = np.linspace(0, 1, counts_adata.n_obs)
    with pytest.raises(InputError, match="'score' holds non-integer numbers"):
        _impute(counts_adata, labels_key="score")


def test_integer_cluster_numbers_are_labels(counts_adata):
    counts_adata.obs["cluster"] = counts_adata.obs["group"].astype(int).astype(float)
    out = _impute(counts_adata, labels_key="cluster")
    assert out.uns["scfill"]["labels"] == "obs['cluster']"


def test_cnnimpute_warns_when_nothing_can_be_imputed(counts_adata, caplog):
    """No zero above the dropout threshold: a warning, not a silent no-op (defect 2)."""
    with caplog.at_level("WARNING", logger="scfill"):
        scfill.impute(counts_adata, "cnnimpute", copy=True,
                      params={"threshold": 1.0, "epochs": 1, "subset_size": 16})
    assert "nothing will be imputed" in caplog.text
