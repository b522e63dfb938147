"""Each bad input gets an error that names the problem and the fix."""

from __future__ import annotations

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
