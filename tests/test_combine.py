"""The combine rules, block by block, and the checks on a method's row blocks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scfill.combine import combine, combine_block, reconstruction_blocks
from scfill.dropout import FixedDropout
from scfill.errors import InputError

OBSERVED = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=np.float32))
PROBABILITY = np.array([[0, 0.9, 0.2], [0.6, 0, 0.5]], dtype=np.float32)


def test_rules_on_one_block():
    recon = np.full((2, 3), 9.0, dtype=np.float32)
    np.testing.assert_array_equal(
        combine_block(OBSERVED, recon, rule="dropout", dropout=PROBABILITY),
        [[1, 9, 0], [9, 2, 0]])  # 0.5 is not above the threshold
    np.testing.assert_array_equal(combine_block(OBSERVED, recon, rule="zeros"),
                                  [[1, 9, 9], [9, 2, 9]])
    np.testing.assert_array_equal(combine_block(OBSERVED, recon, rule="all"), recon)
    np.testing.assert_array_equal(combine_block(OBSERVED, recon, rule="none"),
                                  OBSERVED.toarray())
    with pytest.raises(InputError, match="unknown combine rule"):
        combine_block(OBSERVED, recon, rule="mean")


def test_negative_reconstruction_counts_as_zero_and_input_is_untouched():
    recon = np.full((2, 3), -1.0, dtype=np.float32)
    out = combine_block(OBSERVED, recon, rule="all")
    assert not out.any() and (recon == -1).all()


def _random(n_cells: int = 700, n_genes: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_cells, n_genes)) < 0.5, 0, rng.random((n_cells, n_genes)))
    observed = sp.csr_matrix(dense.astype(np.float32))
    probability = np.where(dense == 0, rng.random(dense.shape), 0).astype(np.float32)
    recon = rng.random(dense.shape).astype(np.float32)
    return observed, probability, recon


@pytest.mark.parametrize("rule", ["dropout", "zeros", "all", "none"])
def test_streamed_blocks_equal_the_whole_matrix(monkeypatch, rule):
    import scfill.rows

    monkeypatch.setattr(scfill.rows, "BLOCK_ELEMENTS", 9 * 64)  # 64-row blocks
    observed, probability, recon = _random()
    whole = combine_block(observed, recon, rule=rule, dropout=probability)
    blocks = ((slice(a, a + 100), recon[a:a + 100]) for a in range(0, 700, 100))
    streamed = list(combine(observed, blocks, rule=rule, dropout=FixedDropout(probability)))
    assert [r.start for r, _, _ in streamed] == list(range(0, 700, 100))
    np.testing.assert_array_equal(np.vstack([b for _, b, _ in streamed]), whole)
    np.testing.assert_array_equal(np.vstack([p for _, _, p in streamed]), probability)
    # a CSR prediction goes through the same rule
    sparse = list(combine(observed, sp.csr_matrix(recon), rule=rule,
                          dropout=FixedDropout(probability)))
    np.testing.assert_array_equal(np.vstack([b for _, b, _ in sparse]), whole)


def test_bad_blocks_are_refused():
    observed, _, recon = _random(n_cells=10)

    def blocks(*spans):
        return ((slice(a, b), recon[a:b]) for a, b in spans)

    with pytest.raises(ValueError, match="does not continue at row 5"):
        list(reconstruction_blocks(blocks((0, 5), (6, 10)), observed.shape))
    with pytest.raises(ValueError, match="stopped at row 5 of 10"):
        list(reconstruction_blocks(blocks((0, 5)), observed.shape))
    with pytest.raises(ValueError, match="columns"):
        list(reconstruction_blocks(iter([(slice(0, 10), recon[:, :3])]), observed.shape))
    with pytest.raises(TypeError, match="returned a dense array"):
        list(reconstruction_blocks(recon, observed.shape))
    with pytest.raises(ValueError, match="needs a dropout model"):
        list(combine(observed, blocks((0, 10)), rule="dropout"))
