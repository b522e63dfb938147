"""Peer adapters (MAGIC, scVI): run only where their packages are installed, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

import scfill
from scfill.errors import InputError, MissingDependency
from scfill.external.peers import MAGIC, PEERS_EXTRA, SCVI
from scfill.utils import missing_package


def test_missing_package_gives_the_install_hint():
    assert missing_package("numpy", "numpy") is None
    hint = missing_package("scfill_no_such_module", "nothing==1.0", extra=PEERS_EXTRA)
    assert "pip install 'scfill[peers]'" in hint
    assert "nothing==1.0" in hint


def test_missing_peer_raises_an_input_and_import_error(monkeypatch, counts_adata):
    monkeypatch.setattr(MAGIC, "module", "scfill_no_such_module")
    with pytest.raises(MissingDependency, match=r"method 'magic' needs magic-impute==3\.0\.0"):
        scfill.impute(counts_adata, method="magic", copy=True)
    assert issubclass(MissingDependency, InputError)
    assert issubclass(MissingDependency, ImportError)


@pytest.mark.parametrize(("cls", "params", "message"), [
    (MAGIC, {"t": 0}, "parameter t=0 is out of range"),
    (MAGIC, {"decay": 0.0}, "parameter decay=0.0 is out of range"),
    (SCVI, {"epochs": 0}, "parameter epochs=0 is out of range"),
    (SCVI, {"gene_likelihood": "gauss"}, "parameter gene_likelihood='gauss' is not allowed"),
])
def test_parameters_are_checked(cls, params, message):
    with pytest.raises(InputError, match=message):
        cls(**params).check_params()


def test_magic_smooths_in_the_common_space(counts_adata):
    pytest.importorskip("magic")
    out = scfill.impute(counts_adata, method="magic", seed=0, copy=True)
    imputed = out.layers["imputed"].toarray()
    observed = counts_adata.X.toarray()
    assert out.uns["scfill"]["combine_rule"] == "all"
    assert out.uns["scfill"]["dropout_model"] == "none"
    # diffusion fills most zeros and stays within the range of the log-normalised data
    assert (imputed[observed == 0] > 0).mean() > 0.9
    lib = observed.sum(1)
    logs = np.log1p(observed / lib[:, None] * np.median(lib))
    assert imputed.max() <= logs.max() + 1e-5
    again = scfill.impute(counts_adata, method="magic", seed=0, copy=True)
    np.testing.assert_array_equal(again.layers["imputed"].toarray(), imputed)


def test_scvi_returns_the_posterior_mean_in_the_common_space(counts_adata):
    pytest.importorskip("scvi")
    out = scfill.impute(counts_adata, method="scvi", seed=0, copy=True,
                        params={"epochs": 2, "n_samples": 3, "chunk_cells": 50})
    imputed = out.layers["imputed"].toarray()
    assert out.uns["scfill"]["info"]["epochs"] == 2
    assert np.isfinite(imputed).all() and (imputed > 0).all()
    # expected counts sum to each cell's library size: back on the count scale they do too
    observed = counts_adata.X.toarray()
    lib = observed.sum(1)
    counts = np.expm1(imputed) * lib[:, None] / np.median(lib)
    np.testing.assert_allclose(counts.sum(1), lib, rtol=1e-3)
