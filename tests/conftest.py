"""Shared fixtures: tiny count matrices with structure, written to every input format."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp


def make_counts(n_cells: int = 120, n_genes: int = 40, *, seed: int = 0,
                n_groups: int = 3) -> ad.AnnData:
    """Counts from a few cell groups with different gene means, some dropout, as AnnData."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n_cells)
    means = rng.gamma(0.8, 2.0, size=(n_groups, n_genes))
    library = rng.lognormal(0, 0.3, n_cells)[:, None]
    counts = rng.poisson(means[groups] * library)
    counts[rng.random(counts.shape) < 0.3] = 0
    adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)),
                       obs=pd.DataFrame({"group": pd.Categorical(groups.astype(str))},
                                        index=[f"cell{i}" for i in range(n_cells)]),
                       var=pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)]))
    return adata


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--slow``, ``--gpu`` and ``--peers-tf``: opt in to the tests marked ``slow``,
    ``gpu`` and ``peers_tf`` (the real DCA/DeepImpute env, built by `scfill peers setup`)."""
    parser.addoption("--slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--gpu", action="store_true", help="also run tests marked gpu (CUDA)")
    parser.addoption("--peers-tf", action="store_true",
                     help="also run tests marked peers_tf (the real DCA/DeepImpute env)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for flag, marker in (("slow", "slow"), ("gpu", "gpu"), ("peers-tf", "peers_tf")):
        if config.getoption(f"--{flag}"):
            continue
        skip = pytest.mark.skip(reason=f"marked {marker}: run with --{flag}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


def prepared(adata: ad.AnnData, method=None, *, dropout=None, **options):
    """``scfill.prepare(adata, method)`` on the CPU; ``dropout`` (a cells × genes matrix of
    made-up probabilities at zeros) replaces the dropout model when given."""
    import scfill
    from scfill.dropout import FixedDropout

    data = scfill.prepare(adata, method, device="cpu", **options)
    if dropout is not None:
        data.dropout = FixedDropout(dropout)
    return data


def random_dropout(counts: sp.spmatrix, *, seed: int = 1, low: float = 0.0,
                   high: float = 1.0) -> sp.csr_matrix:
    """Made-up dropout probabilities, uniform in [low, high) at the zeros of ``counts``."""
    dense = sp.csr_matrix(counts).toarray()
    values = np.random.default_rng(seed).uniform(low, high, dense.shape)
    return sp.csr_matrix(np.where(dense == 0, values, 0), dtype=np.float32)


def reconstructed(model, data) -> np.ndarray:
    """A fitted model's reconstruction of ``data`` as one dense array (small tests only)."""
    from scfill.combine import reconstruction_blocks

    blocks = reconstruction_blocks(model.reconstruct(data), data.counts.shape)
    return np.vstack([block for _, block in blocks])


@pytest.fixture
def counts_adata() -> ad.AnnData:
    """120 cells × 40 genes of integer counts in three groups."""
    return make_counts()


@pytest.fixture(autouse=True)
def _quiet_scfill():
    logging.getLogger("scfill").setLevel(logging.WARNING)
    yield
